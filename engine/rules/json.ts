// Reading JSON that may be hostile (rule files, rule test files), in one place:
//  - one linear, iterative scan first: keys repeated in an object, and nesting deeper than a limit, each
//    with its JSON pointer and 1-based line/column (nothing recursive ever sees a document too deep);
//  - the data from JSON.parse, which makes a "__proto__" key an own property, never a prototype
//    (json-source-map assigns keys, so "__proto__" became the object's prototype);
//  - positions from json-source-map (recursive, so only once the depth is known to be bounded).
import jsonMap from 'json-source-map';
import type { PointerInfo } from 'json-source-map';

/** nesting of arrays and objects beyond this is refused (TOO_DEEP) */
export const MAX_DEPTH = 64;

export interface Spot {
  pointer: string;
  line: number;
  column: number;
}

export interface ParsedJson {
  /** undefined when the text is not valid JSON */
  data?: unknown;
  /** JSON pointer -> position; empty when the text is invalid or too deep */
  pointers: Record<string, PointerInfo>;
  /** keys repeated within one object (JSON keeps only the last) */
  duplicates: (Spot & { key: string })[];
  /** the document cannot be used: not JSON, or nested deeper than MAX_DEPTH */
  error?: Spot & { code: 'PARSE_ERROR' | 'TOO_DEEP'; reason: string };
}

const seg = (s: string) => '/' + s.replace(/~/g, '~0').replace(/\//g, '~1');

/** line/column (1-based) of a character offset */
export function lineCol(text: string, pos: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < pos && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return { line, column: Math.max(1, pos - start + 1) };
}

/** one pass over the text: repeated keys, and the first bracket nested deeper than maxDepth */
export function scanJson(text: string, maxDepth = MAX_DEPTH): { duplicates: ParsedJson['duplicates']; tooDeep?: Spot } {
  const duplicates: ParsedJson['duplicates'] = [];
  type Frame = { obj: boolean; keys: Set<string>; seg: string; index: number; wantKey: boolean };
  const stack: Frame[] = [];
  const ptr = (n = stack.length) => stack.slice(0, n).map((f) => seg(f.seg)).join('');
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\n') {
      line++;
      lineStart = i + 1;
    } else if (ch === '"') {
      const start = i;
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.obj && top.wantKey) {
        let key: string;
        try {
          key = JSON.parse(text.slice(start, j + 1)) as string;
        } catch {
          key = text.slice(start + 1, j);
        }
        top.seg = key;
        if (top.keys.has(key)) duplicates.push({ pointer: ptr(), key, line, column: start - lineStart + 1 });
        top.keys.add(key);
        top.wantKey = false;
      }
      i = j;
    } else if (ch === '{' || ch === '[') {
      const top = stack[stack.length - 1];
      if (top && !top.obj) top.seg = String(top.index);
      if (stack.length >= maxDepth) return { duplicates, tooDeep: { pointer: ptr(), line, column: i - lineStart + 1 } };
      stack.push({ obj: ch === '{', keys: new Set(), seg: '', index: 0, wantKey: ch === '{' });
    } else if (ch === '}' || ch === ']') {
      stack.pop();
    } else if (ch === ',') {
      const top = stack[stack.length - 1];
      if (top?.obj) top.wantKey = true;
      else if (top) top.index++;
    }
  }
  return { duplicates };
}

function parseError(text: string, e: unknown): NonNullable<ParsedJson['error']> {
  const reason = (e as Error).message;
  const m = /position (\d+)/.exec(reason);
  return { code: 'PARSE_ERROR', reason, pointer: '', ...lineCol(text, m ? Number(m[1]) : text.length) };
}

/** parse a JSON document with positions, within the depth limit; never throws */
export function parseJson(text: string, maxDepth = MAX_DEPTH): ParsedJson {
  const { duplicates, tooDeep } = scanJson(text, maxDepth);
  if (tooDeep) {
    let data: unknown;
    try {
      data = JSON.parse(text); // iterative in V8: the data still names the rule the error is in
    } catch (e) {
      return { pointers: {}, duplicates, error: parseError(text, e) };
    }
    return { data, pointers: {}, duplicates, error: { ...tooDeep, code: 'TOO_DEEP', reason: `nested deeper than ${maxDepth} arrays and objects` } };
  }
  try {
    const { pointers } = jsonMap.parse(text);
    return { data: JSON.parse(text), pointers, duplicates };
  } catch (e) {
    return { pointers: {}, duplicates, error: parseError(text, e) };
  }
}
