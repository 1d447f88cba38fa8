// The lmdb event log: a directory holding an lmdb environment with an `events` database and a `meta`
// database. Format krsi-eventlog-2 (written by this version) stores events in blocks: the key is the
// seq of the block's first event (1, 1 + BLOCK, ...; events are numbered 1, 2, 3, ... in append
// order) and the value one block of up to BLOCK events (block.ts: its own string table and object
// shapes), each event encoded when it was appended, as given, so import -> export gives back the same
// JSON Lines. A replay reads one value and makes one decode call per BLOCK events: the per-entry cursor
// step and msgpack decode of format 1 were two thirds of a replay's time.
// Format krsi-eventlog-1 (one msgpack value per event, keyed by seq) is still read, and appended to as
// such; `krsi log export OLD - | krsi log import - NEW` converts one.
//
// Durability: appends go through lmdb's asynchronous batched transactions. A full block is written
// when it fills; the block still filling is written (again, under the same key) at most OPEN_BLOCK_MS
// after its first unwritten event, and by flush()/close(). So a crash loses at most the events of the
// last OPEN_BLOCK_MS (plus lmdb's commit in flight), and the log on disk is always a prefix, in order.
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
import { BlockEncoder, BlockError, decodeBlock } from './block.ts';

const FORMAT_1 = 'krsi-eventlog-1';
const FORMAT_2 = 'krsi-eventlog-2';
type Format = typeof FORMAT_1 | typeof FORMAT_2;

/** events per block (format 2): a replay's batch, and the unit of a since/until seek */
export const BLOCK = 1024;
/** the block still filling is written at most this long after its first unwritten event */
export const OPEN_BLOCK_MS = 100;

interface Handles {
  path: string;
  root: RootDatabase;
  /** format 1: one event per key; format 2: a block (array of events) per key */
  events: Database<unknown, number>;
  meta: Database<unknown, string>;
  format: Format;
}

/** `fast`: format 1 values are decoded with EventDecoder (replay); writers use lmdb's own encoder */
function openLog(path: string, readOnly: boolean, fast = false): Handles {
  if (readOnly && !isLmdbLog(path)) throw new Error(`${path}: not an lmdb event log (no ${join(path, 'data.mdb')})`);
  const root = open({ path, maxDbs: 4, readOnly, compression: false, noSubdir: false });
  const meta = root.openDB<unknown, string>({ name: 'meta' });
  let format = meta.get('format');
  if (format === undefined && !readOnly) {
    // an empty environment is a new log: the current format
    meta.putSync('format', FORMAT_2);
    format = FORMAT_2;
  }
  if (format !== FORMAT_1 && format !== FORMAT_2) {
    void root.close();
    throw new Error(`${path}: unsupported event log format ${JSON.stringify(format)} (this krsi reads ${FORMAT_1} and ${FORMAT_2})`);
  }
  const events =
    format === FORMAT_2
      ? root.openDB<unknown, number>({ name: 'events', encoding: 'binary' })
      : root.openDB<unknown, number>({
          name: 'events',
          sharedStructuresKey: Symbol.for('structures'),
          ...(fast ? { encoder: { Encoder: EventDecoder } } : {}),
        });
  return { path, root, events, meta, format };
}

/** true for a directory holding an lmdb environment (what LogWriter.open creates) */
export function isLmdbLog(path: string): boolean {
  try {
    return statSync(path).isDirectory() && existsSync(join(path, 'data.mdb'));
  } catch {
    return false;
  }
}

function lastKey(events: Database<unknown, number>): number {
  for (const k of events.getKeys({ reverse: true, limit: 1 })) if (typeof k === 'number') return k;
  return 0;
}

/**
 * Random access to the events of a log by seq, for the ends of the log and since/until seeks (not
 * for scans): format 2 decodes the block holding the event, keeping the last one.
 */
class Seeker {
  private key = 0;
  private block: KrsiEvent[] = [];
  constructor(private readonly h: Handles) {}

  /** seq of the last event (0 when empty) */
  count(): number {
    const k = lastKey(this.h.events);
    if (this.h.format === FORMAT_1 || k === 0) return k;
    return k + this.blockAt(k).length - 1;
  }

  /** the event with this seq (1 <= seq <= count()) */
  get(seq: number): KrsiEvent {
    if (this.h.format === FORMAT_1) return this.h.events.get(seq) as KrsiEvent;
    const key = blockKey(seq);
    return this.blockAt(key)[seq - key];
  }

  blockAt(key: number): KrsiEvent[] {
    if (key !== this.key) {
      this.block = readBlock(this.h, key, this.h.events.getBinary(key));
      this.key = key;
    }
    return this.block;
  }

  /** lowest seq in [lo, hi] whose ts >= t (hi + 1 when none); the log is in ts order */
  lowerBound(lo: number, hi: number, t: number): number {
    let a = lo;
    let b = hi + 1;
    while (a < b) {
      const mid = Math.floor((a + b) / 2);
      if (this.get(mid).ts < t) a = mid + 1;
      else b = mid;
    }
    return a;
  }
}

/** the events of the block stored under `key` (format 2); a damaged one is an error naming log and seq */
function readBlock(h: Handles, key: number, bytes: Uint8Array | undefined, setSeq = false): KrsiEvent[] {
  if (bytes === undefined) throw new Error(`${h.path}: no event block at seq ${key}`);
  try {
    return decodeBlock(bytes, setSeq ? key : undefined) as KrsiEvent[];
  } catch (e) {
    if (e instanceof BlockError) throw new Error(`${h.path}: event block at seq ${key}: ${e.message}`);
    throw e;
  }
}

/** key of the block holding event `seq` (format 2) */
const blockKey = (seq: number) => seq - ((seq - 1) % BLOCK);

/** Appends events to an lmdb log (created when missing), in order, each with the next seq. */
export class LogWriter {
  private readonly h: Handles;
  private seq: number;
  private lastTs: number;
  private closed = false;
  /** every event in the log so far passed validation (meta `validated`) */
  private valid: boolean;
  /** format 2: the block still filling (its key is blockKey(seq)) */
  private open = new BlockEncoder();
  /** format 2: some of `open` is not written yet; the timer that writes it */
  private unwritten = false;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    readonly path: string,
    private readonly prevalidated: boolean,
  ) {
    this.h = openLog(path, false);
    const seeker = new Seeker(this.h);
    this.seq = seeker.count();
    this.lastTs = this.seq ? seeker.get(this.seq).ts : 0;
    if (this.h.format === FORMAT_2 && this.seq % BLOCK !== 0) {
      // go on filling the last block: its events, encoded again (the same values)
      for (const e of seeker.blockAt(blockKey(this.seq))) this.open.add(e);
    }
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

  /** the log's format: krsi-eventlog-2 for a log created by this version */
  get format(): string {
    return this.h.format;
  }

  /** Queues the events for writing; sets `seq` on events that have none. */
  append(ev: KrsiEvent | KrsiEvent[]): void {
    if (this.closed) throw new Error(`${this.path}: log is closed`);
    const list = Array.isArray(ev) ? ev : [ev];
    const db = this.h.events;
    const v1 = this.h.format === FORMAT_1;
    try {
      for (const e of list) {
        if (e.ts < this.lastTs) throw new RangeError(`${this.path}: event ts ${e.ts} is before the log's last ts ${this.lastTs}; a log is in ts order`);
        if (this.valid && !this.prevalidated) this.check(e);
        const seq = this.seq + 1;
        // the event is encoded here, as given, before seq is set on the caller's object; one that
        // cannot be encoded throws and is not counted (the events before it are kept)
        if (v1) db.put(seq, e);
        else {
          this.open.add(e);
          this.unwritten = true;
        }
        this.seq = seq;
        this.lastTs = e.ts;
        if (!v1 && this.open.count === BLOCK) this.writeOpen(true);
        if (e.seq === undefined) e.seq = seq;
      }
    } finally {
      // also when an event threw: the ones before it are written like any others
      if (this.unwritten && this.timer === undefined) {
        this.timer = setTimeout(() => this.writeOpen(false), OPEN_BLOCK_MS);
        this.timer.unref();
      }
    }
  }

  /** writes the block still filling under its key; `full`: it is complete, the next event starts a new one */
  private writeOpen(full: boolean): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.open.count) return;
    const key = full ? this.seq - BLOCK + 1 : blockKey(this.seq);
    void this.h.events.put(key, this.open.bytes());
    this.unwritten = false;
    if (full) this.open = new BlockEncoder();
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
    if (this.unwritten) this.writeOpen(false);
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
  /** krsi-eventlog-1 or krsi-eventlog-2 */
  format: string;
}

/** count, first/last ts and format, read from the ends of the log (no scan) */
export function lmdbInfo(path: string): LogInfo {
  const h = openLog(path, true);
  try {
    const seek = new Seeker(h);
    const n = seek.count();
    if (!n) return { count: 0, format: h.format };
    return { count: n, first_ts: seek.get(1).ts, last_ts: seek.get(n).ts, format: h.format };
  } finally {
    void h.root.close();
  }
}

export async function* readLmdb(path: string, o: ReadOptions, bounds: TimeBounds): AsyncGenerator<KrsiEvent[]> {
  const h = openLog(path, true, true);
  try {
    const seek = new Seeker(h);
    const n = seek.count();
    if (!n) return;
    if (!bounds.resolved) bounds.resolve(seek.get(1).ts);
    // since/until by binary search over seq: events are in ts order
    const first = bounds.since > 0 ? seek.lowerBound(1, n, bounds.since) : 1;
    const end = bounds.until === Infinity ? n + 1 : seek.lowerBound(first, n, bounds.until);
    const total = end - first;
    if (total <= 0) return;
    const v1 = h.format === FORMAT_1;
    const batchSize = o.batch ?? 4096;
    const setSeq = !o.noSeq;
    // events appended by an older or unknown writer, or after a bad one, are validated here
    const validator = h.meta.get('validated') === true ? undefined : new LogValidator(path);
    let batch: KrsiEvent[] = [];
    let done = 0;
    // one ordered range over one read snapshot (a writer appending meanwhile is not seen); format 1
    // has one event per key, format 2 a block of events whose first has the key's seq
    for (const { key, value } of h.events.getRange({ start: v1 ? first : blockKey(first), end, snapshot: true })) {
      let evs: KrsiEvent[];
      try {
        evs = v1 ? [value as KrsiEvent] : readBlock(h, key, value as Uint8Array, setSeq);
      } catch (e) {
        // the events before a damaged block are given first, as for a bad event
        if (batch.length) yield batch;
        throw e;
      }
      const to = Math.min(evs.length, end - key);
      for (let i = Math.max(0, first - key); i < to; i++) {
        const ev = evs[i];
        if (validator !== undefined) {
          try {
            validator.check(ev, key + i);
          } catch (e) {
            if (!(e instanceof EventError) || !o.skipBad) {
              if (batch.length) yield batch;
              throw e;
            }
            o.onBad?.(e);
            continue;
          }
        }
        if (setSeq && ev.seq === undefined) ev.seq = key + i;
        batch.push(ev);
        if (batch.length >= batchSize) {
          done += batch.length;
          yield batch;
          batch = [];
          o.onProgress?.(done, total);
        }
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
