// Streaming JSON Lines event reader: reads the file in chunks (never whole), splits lines, parses,
// validates (signals/validate.ts) and yields batches of events in file order. A bad line throws a
// located EventError after the events before it have been yielded, or with skipBad is counted and
// skipped. `seq`, when absent, is the event's line number.
import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { KrsiEvent } from '../../signals/events.ts';
import { EventError, LogValidator } from '../../signals/validate.ts';
import type { ReadOptions, TimeBounds } from './types.ts';

const CHUNK = 1 << 20;

export async function* readJsonl(path: string, o: ReadOptions, bounds: TimeBounds): AsyncGenerator<KrsiEvent[]> {
  const stdin = path === '-';
  const file = stdin ? '<stdin>' : path;
  const total = stdin ? 0 : statSync(path).size;
  const input: Readable = stdin ? process.stdin : createReadStream(path, { highWaterMark: CHUNK });
  const validator = new LogValidator(file, o.after);
  const batchSize = o.batch ?? 4096;
  let batch: KrsiEvent[] = [];
  let lineNo = 0;
  let bytes = 0;

  // parse one line; returns false once the until bound is passed (the rest of the log is later)
  const take = (text: string): boolean => {
    lineNo++;
    if (text.length === 0) return true;
    let ev: KrsiEvent;
    try {
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch (e) {
        if (text.trim() === '') return true; // blank lines are allowed
        throw new EventError({ file, line: lineNo }, '', `invalid JSON: ${(e as Error).message}`);
      }
      ev = validator.check(v, lineNo);
    } catch (e) {
      if (!(e instanceof EventError) || !o.skipBad) throw e;
      o.onBad?.(e);
      return true;
    }
    if (ev.seq === undefined && !o.noSeq) ev.seq = lineNo;
    if (!bounds.resolved) bounds.resolve(ev.ts);
    if (ev.ts < bounds.since) return true;
    if (ev.ts >= bounds.until) return false;
    batch.push(ev);
    return true;
  };

  try {
    let more = true;
    // split on '\n' bytes (never inside a UTF-8 sequence) and decode one line at a time
    let carry: Buffer | undefined;
    for await (const chunk of input as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      let start = 0;
      let nl: number;
      while ((nl = chunk.indexOf(10, start)) !== -1) {
        let line: string;
        if (carry) {
          line = Buffer.concat([carry, chunk.subarray(0, nl)]).toString('utf8');
          carry = undefined;
        } else line = chunk.toString('utf8', start, nl);
        if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
        start = nl + 1;
        try {
          more = take(line);
        } catch (e) {
          // everything before the bad line goes out first, so writers can commit it
          if (batch.length) yield batch;
          throw e;
        }
        if (!more) break;
        if (batch.length >= batchSize) {
          yield batch;
          batch = [];
        }
      }
      if (!more) break;
      if (start < chunk.length) carry = carry ? Buffer.concat([carry, chunk.subarray(start)]) : chunk.subarray(start);
      o.onProgress?.(bytes, total);
    }
    if (more && carry) {
      let last = carry.toString('utf8');
      if (last.endsWith('\r')) last = last.slice(0, -1);
      try {
        take(last);
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
