// Reading a test file's parsed JSON field by field: every problem collected with where it was written
// (file:line:column and JSON pointer), never the first one only.
import type { PointerInfo } from '../rules/located-json.ts';
import type { SourceLoc } from '../rules/types.ts';
import type { TestIssue } from './types.ts';

export type Obj = Record<string, unknown>;

export class Reader {
  readonly issues: TestIssue[] = [];
  constructor(
    readonly file: string,
    readonly pointers: Record<string, PointerInfo>,
  ) {}

  where(pointer: string): SourceLoc {
    // the closest enclosing value that has a position (a missing field: its object)
    let p = pointer;
    while (!(p in this.pointers) && p !== '') p = p.slice(0, p.lastIndexOf('/'));
    const info = this.pointers[p];
    const pos = info?.key ?? info?.value ?? { line: 0, column: 0 };
    return { file: this.file, line: pos.line + 1, column: pos.column + 1, pointer };
  }

  fail(pointer: string, message: string): undefined {
    // messages quote names from the file, which a hostile one makes megabytes long
    this.issues.push({ ...this.where(pointer), message: message.length > 1000 ? `${message.slice(0, 1000)}…` : message });
    return undefined;
  }

  object(v: unknown, pointer: string, allowed: string[]): Obj | undefined {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return this.fail(pointer, `must be an object, got ${describe(v)}`);
    for (const k of Object.keys(v)) {
      if (!allowed.includes(k)) this.fail(`${pointer}/${esc(k)}`, `unknown field ${JSON.stringify(k)} (allowed: ${allowed.join(', ')})`);
    }
    return v as Obj;
  }

  string(o: Obj, k: string, pointer: string, required = false): string | undefined {
    const v = o[k];
    if (v === undefined) return required ? this.fail(pointer, `missing required field ${JSON.stringify(k)}`) : undefined;
    if (typeof v !== 'string' || v === '') return this.fail(`${pointer}/${k}`, `must be a non-empty string, got ${describe(v)}`);
    return v;
  }

  uint(o: Obj, k: string, pointer: string): number | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return this.fail(`${pointer}/${k}`, `must be a non-negative integer, got ${describe(v)}`);
    return v;
  }

  oneOf<T extends string>(o: Obj, k: string, pointer: string, allowed: readonly string[]): T | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !allowed.includes(v)) return this.fail(`${pointer}/${k}`, `must be one of ${allowed.join(' | ')}, got ${describe(v)}`);
    return v as T;
  }

  strings(o: Obj, k: string, pointer: string): string[] | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || list.length === 0 || list.some((s) => typeof s !== 'string' || s === '')) {
      return this.fail(`${pointer}/${k}`, `must be a string or a non-empty array of strings, got ${describe(v)}`);
    }
    return list as string[];
  }
}

/** a key as a JSON pointer token */
export function esc(k: string): string {
  return k.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** a value in a message: its kind, or a short string or number */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  return String(v);
}
