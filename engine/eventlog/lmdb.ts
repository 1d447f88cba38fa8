// The lmdb event log: a directory holding an lmdb environment with an `events` database and a `meta`
// database. Format krsi-eventlog-2 stores events in blocks: the key is the
// seq of the block's first event (1, 1 + BLOCK, ...; events are numbered 1, 2, 3, ... in append
// order) and the value one block of up to BLOCK events (block.ts: its own string table and object
// shapes), each event encoded when it was appended, as given, so import -> export gives back the same
// JSON Lines. A replay reads one value and makes one decode call per BLOCK events: the per-entry cursor
// step and msgpack decode of format 1 were two thirds of a replay's time.
// Format krsi-eventlog-3 (written by this version) is format 2 with a CRC-32 per block (checksum.ts)
// and meta `count` (events written, kept with each block write): a damaged block is a located error
// naming log and seq (--skip-bad skips it, counted), a missing block too, and a log whose blocks hold
// fewer events than its `count` is an error, never a shorter or empty log.
// Formats krsi-eventlog-1 (one msgpack value per event, keyed by seq) and -2 are still read, and
// appended to as such; `krsi log export OLD - | krsi log import - NEW` converts one.
//
// Hostile files: before lmdb maps a log, its directory and files pass the path checks (lib/fsafe.ts)
// and data.mdb the structural check (lib/lmdbfile.ts), so a cut or damaged file is a located error,
// not SIGBUS/SIGSEGV. One writer per log (lock.ts). New logs are 0700 directories of 0600 files.
//
// Durability: appends go through lmdb's asynchronous batched transactions. A full block is written
// when it fills; the block still filling is written (again, under the same key) at most OPEN_BLOCK_MS
// after its first unwritten event, and by flush()/close(). So a crash loses at most the events of the
// last OPEN_BLOCK_MS (plus lmdb's commit in flight), and the log on disk is always a prefix, in order.
//
// meta `validated` = true says every event in the log passed validateEvent when it was appended
// (importLog validates as it reads; other writers validate in append). Readers validate every event
// whatever it says (a file can be changed after it was written), with errors located as
// `<log>:<seq>: field ...`.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { KrsiEvent } from '../../signals/events.ts';
import { EventError, LogValidator, validateEvent } from '../../signals/event-contract.ts';
import type { ReadOptions, TimeBounds } from './types.ts';
import { EventDecoder } from './msgpack-values.ts';
import { BlockEncoder, BlockError, decodeBlock } from './block.ts';
import { seal, unseal } from './checksum.ts';
import { quickValid } from './quickcheck.ts';
import { lockLog, type WriterLock } from './lock.ts';
import { checkPath, secureDir, secureFiles, type SafeOptions } from '../../lib/fsafe.ts';
import { checkLmdbFile } from '../../lib/lmdbfile.ts';

const FORMAT_1 = 'krsi-eventlog-1';
const FORMAT_2 = 'krsi-eventlog-2';
const FORMAT_3 = 'krsi-eventlog-3';
type Format = typeof FORMAT_1 | typeof FORMAT_2 | typeof FORMAT_3;
const SAFE: SafeOptions = { what: 'event log', exitCode: 1 };

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

/** the files of a log directory, checked before lmdb maps them (see the header) */
function checkLogFiles(path: string): void {
  const st = checkPath(path, SAFE);
  if (!st?.isDirectory()) throw new Error(`${path}: not an lmdb event log (not a directory)`);
  const data = join(path, 'data.mdb');
  if (!checkPath(data, SAFE)) throw new Error(`${path}: not an lmdb event log (no ${data})`);
  checkPath(join(path, 'lock.mdb'), SAFE);
  checkLmdbFile(data);
}

/** `fast`: format 1 values are decoded with EventDecoder (replay); writers use lmdb's own encoder */
function openLog(path: string, readOnly: boolean, fast = false): Handles {
  if (readOnly) checkLogFiles(path);
  let root: RootDatabase;
  try {
    root = open({ path, maxDbs: 4, readOnly, compression: false, noSubdir: false });
  } catch (e) {
    throw new Error(`${path}: cannot open the log: ${(e as Error).message}`);
  }
  let meta: Database<unknown, string>;
  let format: unknown;
  try {
    meta = root.openDB<unknown, string>({ name: 'meta' });
    format = meta.get('format');
  } catch (e) {
    void root.close();
    throw new Error(`${path}: cannot read the log's metadata: ${(e as Error).message}`);
  }
  if (format === undefined && !readOnly && lastKey(root.openDB<unknown, number>({ name: 'events', encoding: 'binary' })) === 0) {
    // an empty environment is a new log: the current format
    meta.putSync('format', FORMAT_3);
    format = FORMAT_3;
  }
  if (format !== FORMAT_1 && format !== FORMAT_2 && format !== FORMAT_3) {
    void root.close();
    throw new Error(`${path}: unsupported event log format ${JSON.stringify(format)} (this krsi reads ${FORMAT_1}, ${FORMAT_2} and ${FORMAT_3})`);
  }
  const events =
    format !== FORMAT_1
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
  // numbers sort before strings: start from the highest number, past any stray non-numeric key
  for (const k of events.getKeys({ reverse: true, start: Number.MAX_SAFE_INTEGER, limit: 1 })) if (typeof k === 'number') return k;
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

  /** seq of the last event (0 when empty); format 3: fewer than meta `count` says is an error */
  count(): number {
    const k = lastKey(this.h.events);
    const n = this.h.format === FORMAT_1 || k === 0 ? k : k + this.blockAt(k).length - 1;
    const want = this.written();
    if (n < want) throw new Error(`${this.h.path}: damaged log: its metadata says ${want} events were written, its blocks hold ${n} (blocks missing or cut)`);
    return n;
  }

  /** format 3: the events written, as meta `count` says (0 for older formats) */
  written(): number {
    if (this.h.format !== FORMAT_3) return 0;
    const c = this.h.meta.get('count') ?? 0;
    if (!Number.isSafeInteger(c) || (c as number) < 0) throw new Error(`${this.h.path}: damaged log: meta count ${JSON.stringify(c)}`);
    return c as number;
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

/** a damaged or missing block: located at its log and first seq (an EventError, so that --skip-bad
 *  counts and skips it like a bad line) */
const blockError = (h: Handles, key: number, what: string) => new EventError({ file: h.path, line: key }, '', `event block at seq ${key}: ${what}`);

/** the events of the block stored under `key` (formats 2 and 3); a damaged one is an error naming log and seq */
function readBlock(h: Handles, key: number, bytes: Uint8Array | undefined, setSeq = false): KrsiEvent[] {
  if (bytes === undefined) throw blockError(h, key, 'missing');
  let block: Uint8Array | string = bytes;
  if (h.format === FORMAT_3) block = unseal(key, bytes);
  if (typeof block === 'string') throw blockError(h, key, `damaged: ${block}`);
  let evs: KrsiEvent[];
  try {
    evs = decodeBlock(block, setSeq ? key : undefined) as KrsiEvent[];
  } catch (e) {
    if (e instanceof BlockError) throw blockError(h, key, e.message);
    throw e;
  }
  if (evs.length === 0 || evs.length > BLOCK) throw blockError(h, key, `damaged: ${evs.length} events`);
  return evs;
}

/** key of the block holding event `seq` (format 2) */
const blockKey = (seq: number) => seq - ((seq - 1) % BLOCK);

/** Appends events to an lmdb log (created when missing), in order, each with the next seq. */
export class LogWriter {
  private readonly h: Handles;
  private seq = 0;
  private lastTs = 0;
  private closed = false;
  /** every event in the log so far passed validation (meta `validated`) */
  private valid = false;
  /** formats 2 and 3: the block still filling (its key is blockKey(seq)) */
  private open = new BlockEncoder();
  /** formats 2 and 3: some of `open` is not written yet; the timer that writes it */
  private unwritten = false;
  private timer: NodeJS.Timeout | undefined;
  /** meta values to write in the same transaction as the events up to a seq (onWrite) */
  private progress: ((seq: number) => Record<string, unknown> | undefined) | undefined;
  /** the last write transaction queued (flush waits for it) */
  private lastWrite: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly path: string,
    private readonly prevalidated: boolean,
    private readonly lock: WriterLock,
  ) {
    this.h = openLog(path, false);
    try {
      secureFiles([join(path, 'data.mdb'), join(path, 'lock.mdb')], SAFE);
      const seeker = new Seeker(this.h);
      this.seq = seeker.count();
      this.lastTs = this.seq ? seeker.get(this.seq).ts : 0;
      if (this.h.format !== FORMAT_1 && this.seq % BLOCK !== 0) {
        // go on filling the last block: its events, encoded again (the same values)
        for (const e of seeker.blockAt(blockKey(this.seq))) this.open.add(e);
      }
      this.valid = this.h.meta.get('validated') === true;
      if (this.seq === 0 && !this.valid) {
        this.h.meta.putSync('validated', true);
        this.valid = true;
      }
    } catch (e) {
      void this.h.root.close();
      throw e;
    }
  }

  /**
   * Opens the lmdb log at `path` (a directory), creating it (0700) when missing. `validated`: the
   * caller guarantees every appended event passed validateEvent (importLog); otherwise append checks
   * each. Takes the log's writer lock (lock.ts) until close(): a log another process writes is refused.
   */
  static open(path: string, o: { validated?: boolean } = {}): LogWriter {
    if (existsSync(path) && !isLmdbLog(path)) {
      const st = statSync(path);
      if (!st.isDirectory()) throw new Error(`${path}: exists and is not an lmdb event log (a log is a directory; JSON Lines are written by krsi log export)`);
      if (readdirSync(path).some((f) => f !== 'krsi.lock')) throw new Error(`${path}: a non-empty directory that is not an lmdb event log (no data.mdb)`);
    }
    secureDir(path, SAFE);
    const lock = lockLog(path);
    try {
      const data = join(path, 'data.mdb');
      if (checkPath(data, SAFE)) checkLmdbFile(data);
      checkPath(join(path, 'lock.mdb'), SAFE);
      return new LogWriter(path, o.validated === true, lock);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /** a meta value of the log (undefined when absent) */
  getMeta(key: string): unknown {
    return this.h.meta.get(key);
  }

  /**
   * `f(seq)` gives meta values to store in the same lmdb transaction as the events up to `seq` (called
   * when they are queued for writing): an import records how far it got in the source, exactly as
   * far as the events committed with it, never more or less.
   */
  onWrite(f: (seq: number) => Record<string, unknown> | undefined): void {
    this.progress = f;
  }

  /** ts of the last event in the log (0 when empty) */
  get lastEventTs(): number {
    return this.lastTs;
  }

  /** events in the log so far (appended, committed or not) */
  get count(): number {
    return this.seq;
  }

  /** the log's format: krsi-eventlog-3 for a log created by this version */
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
      if (v1 && this.progress) for (const [k, v] of Object.entries(this.progress(this.seq) ?? {})) void this.h.meta.put(k, v);
      // also when an event threw: the ones before it are written like any others
      if (this.unwritten) this.armTimer();
    }
  }

  private armTimer(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => this.writeOpen(false), OPEN_BLOCK_MS);
    this.timer.unref();
  }

  /** writes the block still filling under its key (`full`: it is complete, the next event starts a
   *  new one); format 3 with meta `count` and the onWrite values, in one transaction */
  private writeOpen(full: boolean): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.open.count || (!full && !this.unwritten)) return;
    const key = full ? this.seq - BLOCK + 1 : blockKey(this.seq);
    const bytes = this.open.bytes();
    this.unwritten = false;
    if (full) this.open = new BlockEncoder();
    if (this.h.format !== FORMAT_3) {
      void this.h.events.put(key, bytes);
      return;
    }
    const seq = this.seq;
    const marks = this.progress?.(seq);
    const { events, meta } = this.h;
    this.lastWrite = this.h.root.transaction(() => {
      void events.put(key, seal(key, bytes));
      void meta.put('count', seq);
      if (marks) for (const [k, v] of Object.entries(marks)) void meta.put(k, v);
    });
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
    await this.lastWrite;
    await this.h.events.committed;
    await this.h.events.flushed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    try {
      await this.h.root.close();
    } finally {
      this.lock.release();
    }
  }
}

export interface LogInfo {
  count: number;
  first_ts?: number;
  last_ts?: number;
  /** krsi-eventlog-1, -2 or -3 */
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
    let n: number;
    try {
      n = seek.count();
    } catch (e) {
      // the last block is damaged: with skipBad, read up to what meta says (the range reports it)
      if (!(e instanceof EventError) || !o.skipBad) throw e;
      n = Math.max(seek.written(), lastKey(h.events));
    }
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
    // every event is validated, whatever meta `validated` says: the file may have changed since
    const validator = new LogValidator(path);
    let [lastTs, lastSeq] = validator.mark();
    let batch: KrsiEvent[] = [];
    let done = 0;
    /** a bad event or block: thrown after the events before it, or with skipBad counted and skipped */
    function* bad(e: unknown): Generator<KrsiEvent[]> {
      if (!(e instanceof EventError) || !o.skipBad) {
        if (batch.length) yield batch;
        throw e;
      }
      o.onBad?.(e);
    }
    // the key the next block must have (formats 2 and 3: blocks of BLOCK events, keyed 1, 1 + BLOCK, ...)
    let next = v1 ? first : blockKey(first);
    // one ordered range over one read snapshot (a writer appending meanwhile is not seen); format 1
    // has one event per key, format 2 a block of events whose first has the key's seq
    for (const { key, value } of h.events.getRange({ start: next, end, snapshot: true })) {
      let evs: KrsiEvent[];
      if (typeof key !== 'number' || !Number.isSafeInteger(key) || key < next) {
        yield* bad(blockError(h, next, `a stored key ${JSON.stringify(key)} that is not the seq of a block`));
        continue;
      }
      try {
        if (key !== next) throw blockError(h, next, `missing (the next block is at seq ${key})`);
        evs = v1 ? [value as KrsiEvent] : readBlock(h, key, value as Uint8Array, setSeq);
        if (!v1 && evs.length !== BLOCK && key + evs.length < n + 1) throw blockError(h, key, `damaged: ${evs.length} events in a block that is not the last`);
      } catch (e) {
        yield* bad(e);
        if (key === next) {
          next = key + (v1 ? 1 : BLOCK);
          continue;
        }
        // the missing blocks were reported: read this one
        next = key;
        try {
          evs = v1 ? [value as KrsiEvent] : readBlock(h, key, value as Uint8Array, setSeq);
        } catch (e2) {
          yield* bad(e2);
          next = key + (v1 ? 1 : BLOCK);
          continue;
        }
      }
      next = key + (v1 ? 1 : BLOCK);
      const to = Math.min(evs.length, end - key);
      for (let i = Math.max(0, first - key); i < to; i++) {
        const ev = evs[i];
        // the fast yes (quickcheck.ts) and the ordering rule here; else the validator decides and locates
        if (quickValid(ev) && ev.ts >= lastTs) {
          lastTs = ev.ts;
          lastSeq = key + i;
        } else {
          validator.reset([lastTs, lastSeq]);
          try {
            validator.check(ev, key + i);
          } catch (e) {
            yield* bad(e);
            continue;
          }
          [lastTs, lastSeq] = validator.mark();
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
    if (next < end) yield* bad(blockError(h, next, `missing (the log ends at seq ${next - 1}, ${n} events expected)`));
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
