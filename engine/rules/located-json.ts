// Reading JSON that may be hostile (rule files, rule test files), in one place:
//  - one linear, iterative scan: where each value and key is (JSON pointer -> line/column), keys repeated in
//    an object, and nesting deeper than a limit (so nothing recursive ever sees a document too deep);
//  - the data from JSON.parse (iterative), which makes a "__proto__" key an own property, never a
//    prototype (json-source-map, used before, assigned keys: "__proto__" became the object's prototype,
//    and it recursed: valid JSON 2000 deep was "invalid JSON"); it now only says where invalid JSON is.
import jsonMap from 'json-source-map';

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

const seg = (s: string) => '/' + (s.includes('~') || s.includes('/') ? s.replace(/~/g, '~0').replace(/\//g, '~1') : s);

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

/** 0-based, as json-source-map had them; a tab is one column */
export interface Position {
  line: number;
  column: number;
  pos: number;
}

export interface PointerInfo {
  value: Position;
  key?: Position;
}

/** one pass over the text: where each value (and key) is, repeated keys, and the first bracket nested deeper
 *  than maxDepth. Iterative and linear; it does not validate (JSON.parse does). */
export function scanJson(text: string, maxDepth = MAX_DEPTH): { pointers: Record<string, PointerInfo>; duplicates: ParsedJson['duplicates']; tooDeep?: Spot } {
  const pointers: Record<string, PointerInfo> = Object.create(null);
  const duplicates: ParsedJson['duplicates'] = [];
  // each open array/object: its own pointer, and the pointer of the child being read
  type Frame = { obj: boolean; keys: Set<string>; self: string; child: string; index: number; wantKey: boolean };
  const stack: Frame[] = [];
  const ptr = () => (stack.length ? stack[stack.length - 1].child : '');
  let line = 0;
  let lineStart = 0;
  let expectValue = true;
  const here = (i: number): Position => ({ line, column: i - lineStart, pos: i });
  /** a value starts at i: record where, under the pointer it has */
  const value = (i: number): void => {
    if (!expectValue) return;
    const top = stack[stack.length - 1];
    if (top && !top.obj) top.child = `${top.self}/${top.index}`;
    const p = ptr();
    const info = pointers[p];
    if (info && top?.obj) info.value = here(i);
    else pointers[p] = { value: here(i) };
    expectValue = false;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\n') {
      line++;
      lineStart = i + 1;
    } else if (ch === ' ' || ch === '\t' || ch === '\r') {
      continue;
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
        const p = (top.child = top.self + seg(key));
        if (top.keys.has(key)) duplicates.push({ pointer: p, key, line: line + 1, column: start - lineStart + 1 });
        top.keys.add(key);
        top.wantKey = false;
        pointers[p] = { key: here(start), value: here(start) };
      } else value(start);
      i = j;
    } else if (ch === ':') {
      expectValue = true;
    } else if (ch === ',') {
      const top = stack[stack.length - 1];
      if (top?.obj) top.wantKey = true;
      else if (top) top.index++;
      expectValue = !top?.obj;
    } else if (ch === '{' || ch === '[') {
      value(i);
      if (stack.length >= maxDepth) return { pointers, duplicates, tooDeep: { pointer: ptr(), line: line + 1, column: i - lineStart + 1 } };
      stack.push({ obj: ch === '{', keys: new Set(), self: ptr(), child: '', index: 0, wantKey: ch === '{' });
      expectValue = ch === '[';
    } else if (ch === '}' || ch === ']') {
      stack.pop();
      expectValue = false;
    } else {
      // a number or literal: skip to its end
      value(i);
      while (i + 1 < text.length && !' \t\r\n,]}:"'.includes(text[i + 1])) i++;
    }
  }
  return { pointers, duplicates };
}

/** some of V8's messages give no position: json-source-map's do (it recurses: only within the depth limit) */
function withPosition(text: string, e: unknown, shallow: boolean): unknown {
  if (!shallow || /position \d+/.test((e as Error).message)) return e;
  try {
    jsonMap.parse(text);
  } catch (e2) {
    return e2;
  }
  return e;
}

function parseError(text: string, e: unknown): NonNullable<ParsedJson['error']> {
  const reason = (e as Error).message;
  const m = /position (\d+)/.exec(reason);
  return { code: 'PARSE_ERROR', reason, pointer: '', ...lineCol(text, m ? Number(m[1]) : text.length) };
}

/** parse a JSON document with positions, within the depth limit; never throws */
export function parseJson(text: string, maxDepth = MAX_DEPTH): ParsedJson {
  const { pointers, duplicates, tooDeep } = scanJson(text, maxDepth);
  let data: unknown;
  try {
    data = JSON.parse(text); // iterative in V8, and "__proto__" stays an own key
  } catch (e) {
    return { pointers: {}, duplicates, error: parseError(text, withPosition(text, e, !tooDeep)) };
  }
  if (tooDeep) return { data, pointers: {}, duplicates, error: { ...tooDeep, code: 'TOO_DEEP', reason: `nested deeper than ${maxDepth} arrays and objects` } };
  return { data, pointers, duplicates };
}
