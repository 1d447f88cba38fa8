// The lmdb event log: a directory holding an lmdb environment with an `events` database keyed by
// seq (1, 2, 3, ... in append order) and a `meta` database. Values are the events as given
// (msgpack with shared structures), so import -> export gives back the same JSON Lines.
// Writes go through lmdb's asynchronous batched transactions: every append is part of a committed
// transaction by the next event-loop turn, and flush() waits until it is synced to disk.
//
// meta `validated` = true says every event in the log passed validateEvent when it was appended
// (importLog validates as it reads; other writers validate in append). Readers then skip validation;
// a log without it (an older writer, or one that stored an event that failed) is validated on read,
// with errors located as `<log>:<seq>: field ...`.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { KrsiEvent } from '../../signals/events.ts';
import { EventError, LogValidator, validateEvent } from '../../signals/validate.ts';
import type { ReadOptions, TimeBounds } from './types.ts';
import { EventDecoder } from './decode.ts';

const FORMAT = 'krsi-eventlog-1';

interface Handles {
  root: RootDatabase;
  events: Database<KrsiEvent, number>;
  meta: Database<unknown, string>;
}

/** `fast`: decode values with EventDecoder (replay); writers use lmdb's own msgpackr encoder */
function openLog(path: string, readOnly: boolean, fast = false): Handles {
  if (readOnly && !isLmdbLog(path)) throw new Error(`${path}: not an lmdb event log (no ${join(path, 'data.mdb')})`);
  const root = open({ path, maxDbs: 4, readOnly, compression: false, noSubdir: false });
  const events = root.openDB<KrsiEvent, number>({
    name: 'events',
    sharedStructuresKey: Symbol.for('structures'),
    ...(fast ? { encoder: { Encoder: EventDecoder } } : {}),
  });
  const meta = root.openDB<unknown, string>({ name: 'meta' });
  if (!readOnly && meta.get('format') === undefined) meta.putSync('format', FORMAT);
  const format = meta.get('format');
  if (format !== undefined && format !== FORMAT) {
    root.close();
    throw new Error(`${path}: unsupported event log format ${JSON.stringify(format)} (expected ${FORMAT})`);
  }
  return { root, events, meta };
}

/** true for a directory holding an lmdb environment (what LogWriter.open creates) */
export function isLmdbLog(path: string): boolean {
  try {
    return statSync(path).isDirectory() && existsSync(join(path, 'data.mdb'));
  } catch {
    return false;
  }
}

function lastKey(events: Database<KrsiEvent, number>): number {
  for (const k of events.getKeys({ reverse: true, limit: 1 })) if (typeof k === 'number') return k;
  return 0;
}

/** Appends events to an lmdb log (created when missing), in order, each with the next seq. */
export class LogWriter {
  private readonly h: Handles;
  private seq: number;
  private lastTs: number;
  private closed = false;
  /** every event in the log so far passed validation (meta `validated`) */
  private valid: boolean;

  private constructor(
    readonly path: string,
    private readonly prevalidated: boolean,
  ) {
    this.h = openLog(path, false);
    this.seq = lastKey(this.h.events);
    this.lastTs = this.seq ? (this.h.events.get(this.seq)?.ts ?? 0) : 0;
    this.valid = this.h.meta.get('validated') === true;
    if (this.seq === 0 && !this.valid) {
      this.h.meta.putSync('validated', true);
      this.valid = true;
    }
  }

  /**
   * Opens the lmdb log at `path` (a directory), creating it when missing. `validated`: the caller
   * guarantees every appended event passed validateEvent (importLog); otherwise append checks each.
   */
  static open(path: string, o: { validated?: boolean } = {}): LogWriter {
    if (existsSync(path) && !isLmdbLog(path)) {
      const st = statSync(path);
      if (!st.isDirectory()) throw new Error(`${path}: exists and is not an lmdb event log (a log is a directory; JSON Lines are written by krsi log export)`);
      if (readdirSync(path).length) throw new Error(`${path}: a non-empty directory that is not an lmdb event log (no data.mdb)`);
    }
    return new LogWriter(path, o.validated === true);
  }

  /** ts of the last event in the log (0 when empty) */
  get lastEventTs(): number {
    return this.lastTs;
  }

  /** events in the log so far (appended, committed or not) */
  get count(): number {
    return this.seq;
  }

  /** Queues the events for the next batched commit; sets `seq` on events that have none. */
  append(ev: KrsiEvent | KrsiEvent[]): void {
    if (this.closed) throw new Error(`${this.path}: log is closed`);
    const list = Array.isArray(ev) ? ev : [ev];
    const db = this.h.events;
    for (const e of list) {
      if (e.ts < this.lastTs) throw new RangeError(`${this.path}: event ts ${e.ts} is before the log's last ts ${this.lastTs}; a log is in ts order`);
      if (this.valid && !this.prevalidated) this.check(e);
      this.lastTs = e.ts;
      const seq = ++this.seq;
      // the value is encoded synchronously here, before seq is set on the caller's object
      db.put(seq, e);
      if (e.seq === undefined) e.seq = seq;
    }
  }

  /** a bad event is stored as before, but the log is marked for validation on read: the flag is
   *  committed (synchronously) before the event's own batched commit */
  private check(e: KrsiEvent): void {
    try {
      validateEvent(e, { file: this.path, line: this.seq + 1 });
    } catch (err) {
      if (!(err instanceof EventError)) throw err;
      this.valid = false;
      this.h.meta.putSync('validated', false);
    }
  }

  /** resolves once everything appended so far is committed and synced to disk */
  async flush(): Promise<void> {
    await this.h.events.committed;
    await this.h.events.flushed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await this.h.root.close();
  }
}

export interface LogInfo {
  count: number;
  first_ts?: number;
  last_ts?: number;
}

/** count and first/last ts, read from the ends of the log (no scan) */
export function lmdbInfo(path: string): LogInfo {
  const h = openLog(path, true);
  try {
    const n = lastKey(h.events);
    if (!n) return { count: 0 };
    return { count: n, first_ts: h.events.get(1)?.ts, last_ts: h.events.get(n)?.ts };
  } finally {
    void h.root.close();
  }
}

/** lowest seq in [lo, hi] whose ts >= t (hi + 1 when none); the log is in ts order */
function lowerBound(events: Database<KrsiEvent, number>, lo: number, hi: number, t: number): number {
  let a = lo;
  let b = hi + 1;
  while (a < b) {
    const mid = Math.floor((a + b) / 2);
    if (events.get(mid)!.ts < t) a = mid + 1;
    else b = mid;
  }
  return a;
}

export async function* readLmdb(path: string, o: ReadOptions, bounds: TimeBounds): AsyncGenerator<KrsiEvent[]> {
  const h = openLog(path, true, true);
  try {
    const n = lastKey(h.events);
    if (!n) return;
    if (!bounds.resolved) bounds.resolve(h.events.get(1)!.ts);
    // since/until by binary search over seq: events are in ts order
    const first = bounds.since > 0 ? lowerBound(h.events, 1, n, bounds.since) : 1;
    const end = bounds.until === Infinity ? n + 1 : lowerBound(h.events, first, n, bounds.until);
    const total = end - first;
    const batchSize = o.batch ?? 4096;
    const setSeq = !o.noSeq;
    // events appended by an older or unknown writer, or after a bad one, are validated here
    const validator = h.meta.get('validated') === true ? undefined : new LogValidator(path);
    let batch: KrsiEvent[] = [];
    let done = 0;
    // one ordered range over one read snapshot (a writer appending meanwhile is not seen)
    for (const { key, value } of h.events.getRange({ start: first, end, snapshot: true })) {
      if (validator !== undefined) {
        try {
          validator.check(value, key);
        } catch (e) {
          if (!(e instanceof EventError) || !o.skipBad) {
            if (batch.length) yield batch;
            throw e;
          }
          o.onBad?.(e);
          continue;
        }
      }
      if (setSeq && value.seq === undefined) value.seq = key;
      batch.push(value);
      if (batch.length >= batchSize) {
        done += batch.length;
        yield batch;
        batch = [];
        o.onProgress?.(done, total);
      }
    }
    if (batch.length) {
      done += batch.length;
      yield batch;
      o.onProgress?.(done, total);
    }
  } finally {
    void h.root.close();
  }
}

/** guesses the format of a log file: 'lmdb' for an lmdb log directory, else 'jsonl' */
export function detectFormat(path: string): 'lmdb' | 'jsonl' {
  if (path === '-') return 'jsonl';
  if (isLmdbLog(path)) return 'lmdb';
  if (statSync(path).isDirectory()) throw new Error(`${path}: a directory but not an lmdb event log (no data.mdb)`);
  return 'jsonl';
}
