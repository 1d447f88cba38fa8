// Event logs: JSON Lines files and lmdb logs, read the same way (readEvents detects which).
//   readEvents(path, {skipBad, since, until, batch, onBad, onProgress}) -> batches of events in log order
//   LogWriter.open(path).append(ev) -> lmdb log, seq keys, batched commits; flush()/close()
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { KrsiEvent } from '../../signals/events.ts';
import { readJsonl } from './jsonl.ts';
import { LogWriter, detectFormat, lmdbInfo, readLmdb } from './lmdb.ts';
import { TimeBounds, type ReadOptions } from './types.ts';
import { packagePath } from '../package.ts';

export { LogWriter, isLmdbLog, lmdbInfo, detectFormat, type LogInfo } from './lmdb.ts';
export { parseBound, type ReadOptions } from './types.ts';
export { EventError } from '../../signals/validate.ts';

/** the bundled sample log, replayed by `krsi replay` without a LOG argument */
export const SAMPLE_LOG = packagePath('rules', 'samples', 'sample.jsonl');

/**
 * Reads a log in order, in batches: a .jsonl/.ndjson file, '-' for stdin, or an lmdb log directory.
 * JSON Lines events are validated (a bad line throws a located EventError, after the events before it
 * were yielded; with skipBad it goes to onBad and is skipped). `seq` is set when absent: the line
 * number for JSON Lines, the log position for lmdb.
 */
export function readEvents(path: string, o: ReadOptions = {}): AsyncIterable<KrsiEvent[]> {
  const bounds = new TimeBounds(o);
  return detectFormat(path) === 'lmdb' ? readLmdb(path, o, bounds) : readJsonl(path, o, bounds);
}

export interface ImportResult {
  /** events appended by this import */
  imported: number;
  /** bad lines skipped (skipBad) */
  bad: number;
  /** events in the log afterwards */
  total: number;
}

/**
 * Appends a JSON Lines log (or any readable log) to an lmdb log. A bad line stops the import with its
 * located EventError, after every event before it is committed; with skipBad it is counted and skipped.
 */
export async function importLog(src: string, dst: string, o: Pick<ReadOptions, 'skipBad' | 'onBad' | 'onProgress'> = {}): Promise<ImportResult> {
  // the events come validated by readEvents
  const w = LogWriter.open(dst, { validated: true });
  const start = w.count;
  let bad = 0;
  let pending = 0;
  try {
    const after = start ? { ts: w.lastEventTs, what: `the last event of ${dst}` } : undefined;
    for await (const batch of readEvents(src, { ...o, after, noSeq: true, onBad: (e) => (bad++, o.onBad?.(e)) })) {
      w.append(batch);
      // let lmdb commit what we have (its batches run on a worker thread) before reading further
      if ((pending += batch.length) >= 65536) {
        await w.flush();
        pending = 0;
      }
    }
  } finally {
    await w.close();
  }
  return { imported: w.count - start, bad, total: w.count };
}

/** writes a log as JSON Lines to `dst` ('-' = stdout), the events as stored; resolves with the count */
export async function exportLog(src: string, dst: string, o: Pick<ReadOptions, 'since' | 'until' | 'onProgress'> = {}): Promise<number> {
  const out = dst === '-' ? process.stdout : createWriteStream(dst);
  let n = 0;
  try {
    for await (const batch of readEvents(src, { ...o, noSeq: true })) {
      let text = '';
      for (const ev of batch) text += JSON.stringify(ev) + '\n';
      n += batch.length;
      if (!out.write(text)) await once(out, 'drain');
    }
  } finally {
    if (dst !== '-') await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())));
  }
  return n;
}

export interface LogSummary {
  format: 'lmdb' | 'jsonl';
  /** lmdb logs: the storage format (krsi-eventlog-2 is written by this version; -1 is still read) */
  version?: string;
  count: number;
  first_ts?: number;
  last_ts?: number;
  types: Record<string, number>;
  bad_lines: number;
}

/** count, first/last ts and a histogram of event types (a full scan) */
export async function logInfo(path: string, o: Pick<ReadOptions, 'skipBad' | 'onBad' | 'onProgress'> = {}): Promise<LogSummary> {
  const format = detectFormat(path);
  const s: LogSummary = { format, ...(format === 'lmdb' ? { version: lmdbInfo(path).format } : {}), count: 0, types: {}, bad_lines: 0 };
  for await (const batch of readEvents(path, { ...o, noSeq: true, onBad: (e) => (s.bad_lines++, o.onBad?.(e)) })) {
    if (s.first_ts === undefined) s.first_ts = batch[0].ts;
    s.last_ts = batch[batch.length - 1].ts;
    s.count += batch.length;
    for (const ev of batch) s.types[ev.type] = (s.types[ev.type] ?? 0) + 1;
  }
  return s;
}
