// Limits on what a rule file or rule test file may hold, checked on the parsed data before anything else
// reads it, so validation time stays linear and no key can act on an object's prototype. Documented in
// rules/README.md ("Limits"). The depth limit is checked on the text (located-json.ts).
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** an array inside a rule (conditions, steps, actions, tags, by) may hold at most this many items, and all
 *  the arrays of one rule together MAX_RULE_ITEMS: ajv's allErrors validation concatenates each failing
 *  sub-schema's errors onto all the earlier ones (1000 x 1000 bad conditions in one rule: 29 s) */
export const MAX_ITEMS = 1000;
export const MAX_RULE_ITEMS = 10_000;

/** keys that act on a JavaScript object's prototype when assigned; refused wherever a key is not data */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export interface LimitIssue {
  code: 'RESERVED_KEY' | 'TOO_MANY';
  pointer: string;
  key?: string;
  /** TOO_MANY: the limit and what it counts */
  limit?: number;
  what?: string;
  /** point at the key (RESERVED_KEY) rather than the value */
  atKey: boolean;
}

export interface LimitOptions {
  /** keys whose values are data: any keys inside are allowed (e.g. a condition's "value", an event's "env") */
  dataKeys: ReadonlySet<string>;
  /** the value at a pointer this matches (a rule) may hold at most MAX_ITEMS per array and MAX_RULE_ITEMS in
   *  all its arrays (except inside data) */
  limitItemsOf?: RegExp;
}

const seg = (s: string) => '/' + s.replace(/~/g, '~0').replace(/\//g, '~1');

/** every reserved key and over-long array in data (whose depth located-json.ts has bounded) */
export function limitIssues(data: unknown, o: LimitOptions): LimitIssue[] {
  const out: LimitIssue[] = [];
  // the items counted so far in the limited value being walked (a rule), if any
  let budget: { ptr: string; n: number } | undefined;
  const walk = (v: unknown, ptr: string): void => {
    const top = !budget && o.limitItemsOf?.test(ptr);
    if (top) budget = { ptr, n: 0 };
    try {
      if (Array.isArray(v)) {
        if (budget && v.length > MAX_ITEMS) return void out.push({ code: 'TOO_MANY', pointer: ptr, atKey: false, limit: MAX_ITEMS, what: 'items in an array of a rule' });
        if (budget && (budget.n += v.length) > MAX_RULE_ITEMS) throw budget;
        v.forEach((x, i) => walk(x, `${ptr}/${i}`));
        return;
      }
      if (v === null || typeof v !== 'object') return;
      for (const k of Object.keys(v)) {
        const p = ptr + seg(k);
        if (RESERVED_KEYS.has(k)) out.push({ code: 'RESERVED_KEY', pointer: p, key: k, atKey: true });
        else if (!o.dataKeys.has(k)) walk((v as Record<string, unknown>)[k], p);
      }
    } catch (e) {
      if (e !== budget || !top) throw e;
      out.push({ code: 'TOO_MANY', pointer: ptr, atKey: false, limit: MAX_RULE_ITEMS, what: 'items in all the arrays of one rule' });
    } finally {
      if (top) budget = undefined;
    }
  };
  walk(data, '');
  return out;
}

/** a rule test case may expand to at most this many events (repeats included) */
export const MAX_CASE_EVENTS = 100_000;

/** a rule file or rule test file may be at most this large */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;

/** a file's text, read without blocking on a FIFO or a device and never past MAX_FILE_BYTES (even when it
 *  grows while read); throws an Error whose message says why it is refused */
export function readBoundedFile(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES / 2 ** 20} MiB (${st.size} bytes)`);
    const buf = Buffer.alloc(Math.min(st.size, MAX_FILE_BYTES) + 1);
    let n = 0;
    for (let got; n < buf.length && (got = readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += got;
    if (n > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES / 2 ** 20} MiB`);
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}
