// Event logs: JSON Lines files and lmdb logs, read the same way (readEvents detects which).
//   readEvents(path, {skipBad, since, until, batch, onBad, onProgress}) -> batches of events in log order
//   LogWriter.open(path).append(ev) -> lmdb log, seq keys, batched commits; flush()/close()
import { closeSync, constants, createWriteStream, existsSync, openSync, rmSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { once } from 'node:events';
import type { KrsiEvent } from '../../signals/events.ts';
import { readJsonl } from './jsonl.ts';
import { LogWriter, detectFormat, lmdbInfo, readLmdb } from './lmdb.ts';
import { TimeBounds, type ReadOptions } from './types.ts';
import { packagePath } from '../../lib/package.ts';

export { LogWriter, isLmdbLog, lmdbInfo, detectFormat, type LogInfo } from './lmdb.ts';
export { parseBound, type ReadOptions } from './types.ts';
export { EventError } from '../../signals/event-contract.ts';
import { EventError } from '../../signals/event-contract.ts';

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
  /** lines of this source an earlier import into this log already took (skipped, not read again) */
  resumedAfter: number;
}

/** the meta key under which a log records how far it imported a JSON Lines file (its device and inode) */
function sourceKey(src: string): string | undefined {
  if (src === '-' || detectFormat(src) !== 'jsonl') return undefined;
  const st = statSync(src);
  return st.isFile() ? `import:${st.dev}:${st.ino}` : undefined;
}

/**
 * Appends a JSON Lines log (or any readable log) to an lmdb log. A bad line stops the import with its
 * located EventError, after every event before it is committed; with skipBad it is counted and skipped.
 * Resumable: the log records, with the events, the last line it took of each source file (keyed by
 * the file's device and inode), and an import of the same file into it reads on after that line; stdin
 * is not resumable. A failed import into a log it created leaves no log behind when nothing was stored.
 */
export async function importLog(src: string, dst: string, o: Pick<ReadOptions, 'skipBad' | 'onBad' | 'onProgress'> = {}): Promise<ImportResult> {
  // the source first: a missing or unreadable one is an error before any log is created
  if (src !== '-') closeSync(openSync(src, 'r'));
  const key = sourceKey(src);
  const created = !existsSync(dst);
  // the events come validated by readEvents
  const w = LogWriter.open(dst, { validated: true });
  const start = w.count;
  const done = key ? (w.getMeta(key) as { line?: number } | undefined)?.line : undefined;
  const resumedAfter = typeof done === 'number' && Number.isSafeInteger(done) && done > 0 ? done : 0;
  let bad = 0;
  let pending = 0;
  let failed = true;
  const lineOf: number[] = [];
  // the source line of each event of the batch being appended, seq `base` first: the progress mark
  // is written in the same transaction as the events up to it
  let base = 0;
  let lines: number[] = [];
  if (key) {
    const path = resolve(src);
    w.onWrite((seq) => {
      const line = lines[seq - base];
      return line === undefined ? undefined : { [key]: { path, line, count: seq } };
    });
  }
  try {
    const after = start ? { ts: w.lastEventTs, what: `the last event of ${dst}` } : undefined;
    const read = readEvents(src, { ...o, after, noSeq: true, skipLines: resumedAfter, lineOf, onBad: (e) => (bad++, o.onBad?.(e)) });
    for await (const batch of read) {
      const before = w.count;
      base = before + 1;
      lines = lineOf.slice();
      try {
        w.append(batch);
      } catch (e) {
        // an event valid but not storable (nested too deeply, ...): located at its line
        const line = lineOf[w.count - before];
        throw new EventError({ file: src === '-' ? '<stdin>' : src, line: line ?? 0 }, '', `cannot store the event: ${(e as Error).message}`);
      }
      // let lmdb commit what we have (its batches run on a worker thread) before reading further
      if ((pending += batch.length) >= 65536) {
        await w.flush();
        pending = 0;
      }
    }
    failed = false;
  } finally {
    await w.close();
    if (failed && created && w.count === 0) rmSync(dst, { recursive: true, force: true });
  }
  return { imported: w.count - start, bad, total: w.count, resumedAfter };
}

/** writes a log as JSON Lines to `dst` ('-' = stdout), the events as stored; resolves with the count */
export async function exportLog(src: string, dst: string, o: Pick<ReadOptions, 'since' | 'until' | 'onProgress' | 'skipBad' | 'onBad'> = {}): Promise<number> {
  // 0600 (events hold other users' environment values), and never through a symlink planted at dst
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;
  const out = dst === '-' ? process.stdout : createWriteStream(dst, { fd: openSync(dst, flags, 0o600) });
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
  /** lmdb logs: the storage format (krsi-eventlog-3 is written by this version; -1 and -2 are still read) */
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
