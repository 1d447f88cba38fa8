// Streaming JSON Lines event reader: reads the file in chunks (never whole), parses, validates
// (signals/event-contract.ts) and yields batches of events in file order. A bad line throws a located
// EventError after the events before it have been yielded, or with skipBad is counted and skipped.
// `seq`, when absent, is the event's line number.
//
// Speed: JSON.parse is most of the cost of a replay from JSON Lines, and a call per line (with a string
// per line) costs more than the parsing itself. So each chunk is decoded to one string, and runs of
// plain lines (each starting with '{' and ending with '}') are parsed together as one JSON array: the
// lines joined by commas. That gives the same events as parsing line by line when the array has one
// element per line and no line holds two top-level objects (`}, {`; see `SPLIT`): then every joining
// comma is at the array's top level, so each line is exactly one JSON value. Anything else (a parse
// error, a count mismatch, a bad event, a `}, {` even inside a string) makes that run go through the
// per-line path, which names the exact line and field; so do blank and otherwise irregular lines.
import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { KrsiEvent } from '../../signals/events.ts';
import { EventError, LogValidator } from '../../signals/event-contract.ts';
import type { ReadOptions, TimeBounds } from './types.ts';

const CHUNK = 1 << 20;
/** longest line read: a longer one is a located error (V8 strings end at 512 MiB; JSON.parse needs more) */
const MAX_LINE = 64 << 20;
/** lines parsed per JSON.parse call (about 40 KiB of text for typical events: fits the young generation) */
const RUN_LINES = 256;
/** two top-level objects on one line: such a line could be misread as part of a multi-line object */
const SPLIT = /\}[ \t\r]*,[ \t\r]*\{/;
const LBRACE = 123;
const RBRACE = 125;
const CR = 13;

export async function* readJsonl(path: string, o: ReadOptions, bounds: TimeBounds): AsyncGenerator<KrsiEvent[]> {
  const stdin = path === '-';
  const file = stdin ? '<stdin>' : path;
  const total = stdin ? 0 : statSync(path).size;
  const input: Readable = stdin ? process.stdin : createReadStream(path, { highWaterMark: CHUNK });
  const validator = new LogValidator(file, o.after);
  const batchSize = o.batch ?? 4096;
  const setSeq = !o.noSeq;
  const lineOf = o.lineOf;
  const skipLines = o.skipLines ?? 0;
  let batch: KrsiEvent[] = [];
  let lineNo = 0;
  let bytes = 0;

  /** a validated event of line `line`: kept when within the bounds; false once the until bound is passed */
  const accept = (ev: KrsiEvent, line: number): boolean => {
    if (ev.seq === undefined && setSeq) ev.seq = line;
    if (!bounds.resolved) bounds.resolve(ev.ts);
    if (ev.ts < bounds.since) return true;
    if (ev.ts >= bounds.until) return false;
    batch.push(ev);
    lineOf?.push(line);
    return true;
  };

  /** the per-line path: parse and validate one line (without its '\n' and trailing '\r') */
  const take = (text: string, line: number): boolean => {
    if (text.length === 0) return true;
    let ev: KrsiEvent;
    try {
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch (e) {
        if (text.trim() === '') return true; // blank lines are allowed
        throw new EventError({ file, line }, '', `invalid JSON: ${(e as Error).message}`);
      }
      ev = validator.check(v, line);
    } catch (e) {
      if (!(e instanceof EventError) || !o.skipBad) throw e;
      o.onBad?.(e);
      return true;
    }
    return accept(ev, line);
  };

  /** `n` plain lines text[a, b) (b excludes the last line's '\r\n'), numbered from lineNo + 1 */
  const run = (text: string, a: number, b: number, n: number): boolean => {
    const s = text.slice(a, b);
    let arr: unknown;
    if (!SPLIT.test(s)) {
      try {
        arr = JSON.parse('[' + s.replaceAll('\n', ',') + ']');
      } catch {
        // located by the per-line path below
      }
    }
    const line0 = lineNo;
    if (Array.isArray(arr) && arr.length === n) {
      const mark = validator.mark();
      const resolved = bounds.resolved;
      const kept = batch.length;
      try {
        for (let i = 0; i < n; i++) {
          const line = line0 + i + 1;
          if (!accept(validator.check(arr[i], line), line)) {
            lineNo = line;
            return false;
          }
        }
        lineNo = line0 + n;
        return true;
      } catch (e) {
        if (!(e instanceof EventError)) throw e;
        // undo this run and let the per-line path locate (or skip) the bad line
        validator.reset(mark);
        if (!resolved) bounds.resolved = false;
        batch.length = kept;
        if (lineOf) lineOf.length = kept;
      }
    }
    let p = a;
    for (let i = 0; i < n; i++) {
      let nl = text.indexOf('\n', p);
      if (nl === -1 || nl > b) nl = b;
      const e = nl > p && text.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
      if (!take(text.slice(p, e), ++lineNo)) return false;
      p = nl + 1;
    }
    return true;
  };

  /** every line of `text`: complete lines without the last one's '\n' (so "" is one empty line);
   *  false once the until bound is passed */
  function* lines(text: string): Generator<KrsiEvent[], boolean> {
    const len = text.length;
    let pos = 0;
    // lines an earlier import already took: counted, not parsed
    while (lineNo < skipLines && pos <= len) {
      const nl = text.indexOf('\n', pos);
      pos = nl === -1 ? len + 1 : nl + 1;
      lineNo++;
    }
    while (pos <= len) {
      const a = pos;
      let b = pos;
      let n = 0;
      let odd = -1;
      let oddEnd = 0;
      const cap = Math.max(1, Math.min(RUN_LINES, batchSize - batch.length));
      while (n < cap && pos <= len) {
        let nl = text.indexOf('\n', pos);
        if (nl === -1) nl = len;
        const e = nl > pos && text.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
        if (e - pos >= 2 && text.charCodeAt(pos) === LBRACE && text.charCodeAt(e - 1) === RBRACE) {
          n++;
          b = e;
          pos = nl + 1;
        } else {
          odd = pos;
          oddEnd = e;
          pos = nl + 1;
          break;
        }
      }
      if (n !== 0 && !run(text, a, b, n)) return false;
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
        if (lineOf) lineOf.length = 0;
      }
      if (odd !== -1 && !take(text.slice(odd, oddEnd), ++lineNo)) return false;
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
        if (lineOf) lineOf.length = 0;
      }
    }
    return true;
  }

  try {
    let more = true;
    // complete lines are split off on '\n' bytes (never inside a UTF-8 sequence) and decoded at once
    let carry: Buffer | undefined;
    // a line still without its '\n': its chunks (joined once, not per chunk) and their length
    let parts: Buffer[] = [];
    let partLen = 0;
    for await (const chunk of input as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      const last = chunk.lastIndexOf(10);
      if (last === -1) {
        if (carry) parts.push(carry);
        parts.push(chunk);
        partLen += (carry?.length ?? 0) + chunk.length;
        carry = undefined;
        // /dev/zero, or a file with no newline: a located error, not memory until the process dies
        if (partLen > MAX_LINE) throw new EventError({ file, line: lineNo + 1 }, '', `a line longer than ${MAX_LINE >> 20} MiB`);
        continue;
      }
      if (parts.length) {
        carry = Buffer.concat(carry ? [...parts, carry] : parts);
        parts = [];
        partLen = 0;
      }
      const head = carry ? Buffer.concat([carry, chunk.subarray(0, last)]) : chunk.subarray(0, last);
      carry = last + 1 < chunk.length ? chunk.subarray(last + 1) : undefined;
      try {
        more = yield* lines(head.toString('utf8'));
      } catch (e) {
        // everything before the bad line goes out first, so writers can commit it
        if (batch.length) yield batch;
        throw e;
      }
      if (!more) break;
      o.onProgress?.(bytes, total);
    }
    if (parts.length) {
      carry = Buffer.concat(carry ? [...parts, carry] : parts);
      parts = [];
    }
    if (more && carry) {
      try {
        yield* lines(carry.toString('utf8'));
      } catch (e) {
        if (batch.length) yield batch;
        throw e;
      }
    }
    if (batch.length) yield batch;
  } finally {
    if (!stdin) input.destroy();
  }
}
