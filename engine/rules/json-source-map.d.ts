declare module 'json-source-map' {
  export interface Position { line: number; column: number; pos: number }
  export interface PointerInfo { value: Position; valueEnd: Position; key?: Position; keyEnd?: Position }
  export function parse(text: string, reviver?: unknown, options?: { bigint?: boolean }): { data: unknown; pointers: Record<string, PointerInfo> };
  export function stringify(data: unknown, replacer?: unknown, space?: string | number): { json: string; pointers: Record<string, PointerInfo> };
}
