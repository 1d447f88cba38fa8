// Live exe hashing: a user-space enrichment stage that sets `sha256` on exec events (signals/events.ts),
// so rules can match an executable by content wherever the copy lives. It only runs when a loaded rule
// reads `sha256` on exec (needsExeHash), or when events are recorded (a log should carry what replay
// may need): otherwise the signals pass through untouched, at no cost.
//
// Per exec event: stat /proc/<pid>/exe (the very file the process runs, also when it was deleted or
// renamed), or exe.path when the process is already gone; the file must be the event's inode. The
// hash is cached per (dev, ino, size, mtime, ctime) in a bounded LRU: an exec storm of one binary costs
// one stat per event. Files up to syncMaxBytes are hashed synchronously (about a millisecond at most);
// larger ones through a crypto stream without blocking the event loop. Events stay in order: a batch
// with an exec whose hash is being computed waits, and every later batch waits behind it (the engine
// needs non-decreasing time); batches without pending hashes pass synchronously when nothing waits.
// Failures (process and path gone, file replaced, too large, read error) are counted by reason; the
// event then goes on without sha256 (a rule on sha256 cannot match it), never dropped.
import { closeSync, createReadStream, fstatSync, openSync, readFileSync, statSync, type BigIntStats } from 'node:fs';
import { createHash } from 'node:crypto';
import { Subject } from 'rxjs';
import type { ExecEvent, KrsiEvent } from './events.ts';
import type { LiveSignals } from './live.ts';
import type { CompiledRuleSet } from '../engine/rules/types.ts';
import { childLogger } from '../engine/log.ts';

const log = childLogger('hash');

export interface ExeHashOptions {
  /** cached hashes (LRU), default 4096 */
  cacheSize?: number;
  /** files up to this size are hashed synchronously, default 256 KiB (about a millisecond); larger ones asynchronously */
  syncMaxBytes?: number;
  /** files above this size are not hashed (a `too_large` failure), default 512 MiB */
  maxBytes?: number;
  /** where /proc is (tests) */
  procRoot?: string;
}

export type HashFailure = 'gone' | 'replaced' | 'too_large' | 'read';

export interface HashStats {
  /** exec events that got a sha256 */
  hashed: number;
  /** of those, served from the cache (or joined a hash in progress) */
  hits: number;
  /** files read and hashed */
  misses: number;
  /** of the misses, hashed asynchronously (above syncMaxBytes) */
  async: number;
  /** bytes read for hashing */
  bytes: number;
  /** exec events left without sha256, by reason */
  failed: number;
  failures: Record<HashFailure, number>;
  /** cached hashes now */
  cached: number;
  /** hashes in progress now */
  pending: number;
  /** batches waiting for a hash now */
  waiting: number;
}

/** does any rule read the `sha256` fact of exec events (a condition, a key, a field or a template) */
export function needsExeHash(rules: CompiledRuleSet): boolean {
  return rules.rules.some((r) => (r.types === '*' || r.types.includes('exec')) && mentionsSha256(r.source));
}

const SHA_PATH = /^sha256(\.|$)/;

function mentionsSha256(node: unknown, key?: string): boolean {
  if (typeof node === 'string') {
    if ((key === 'fact' || key === 'field' || key === 'from' || key === 'by') && SHA_PATH.test(node)) return true;
    return key === 'message' && /\{\s*sha256\s*\}/.test(node);
  }
  if (Array.isArray(node)) return node.some((n) => mentionsSha256(n, key));
  if (node && typeof node === 'object') {
    // a fact-to-fact comparison names the other fact in value: {fact: "sha256"}
    return Object.entries(node).some(([k, v]) => (k === 'value' && v && typeof v === 'object' ? mentionsSha256(v) : mentionsSha256(v, k)));
  }
  return false;
}

export class ExeHasher {
  private readonly cache = new Map<string, string>();
  private readonly inflight = new Map<string, Promise<string | undefined>>();
  private readonly cacheSize: number;
  private readonly syncMax: number;
  private readonly maxBytes: number;
  private readonly proc: string;
  private readonly s = { hashed: 0, hits: 0, misses: 0, async: 0, bytes: 0, failed: 0 };
  private readonly failures: Record<HashFailure, number> = { gone: 0, replaced: 0, too_large: 0, read: 0 };
  /** batches waiting, set by the stage */
  waiting = 0;

  constructor(o: ExeHashOptions = {}) {
    this.cacheSize = o.cacheSize ?? 4096;
    this.syncMax = o.syncMaxBytes ?? 256 << 10;
    this.maxBytes = o.maxBytes ?? 512 << 20;
    this.proc = o.procRoot ?? '/proc';
  }

  stats(): HashStats {
    return { ...this.s, failures: { ...this.failures }, cached: this.cache.size, pending: this.inflight.size, waiting: this.waiting };
  }

  /**
   * the sha256 of the event's executable: a string now (cached, or small enough to hash at once), a
   * promise (being hashed asynchronously; resolves to undefined on failure), or undefined (failed,
   * counted). Never throws.
   */
  hash(e: ExecEvent): string | Promise<string | undefined> | undefined {
    const found = this.locate(e);
    if (typeof found === 'string') return this.fail(found, e);
    const { file, st } = found;
    const key = cacheKey(st);
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.cache.delete(key); // most recently used last
      this.cache.set(key, cached);
      this.s.hits++, this.s.hashed++;
      return cached;
    }
    const running = this.inflight.get(key);
    if (running) {
      this.s.hits++;
      return running.then((h) => {
        if (h !== undefined) this.s.hashed++;
        else this.fail('read', e);
        return h;
      });
    }
    if (Number(st.size) > this.maxBytes) return this.fail('too_large', e);
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch {
      return this.fail('gone', e);
    }
    this.s.misses++;
    let opened: string;
    try {
      // the key of what was opened (a change between stat and open gets its own key)
      const fst = fstatSync(fd, { bigint: true });
      opened = cacheKey(fst);
      if (Number(fst.ino) !== e.exe.ino) {
        closeSync(fd);
        return this.fail('replaced', e);
      }
      if (Number(fst.size) <= this.syncMax) {
        const data = readFileSync(fd);
        closeSync(fd);
        this.s.bytes += data.length;
        const h = createHash('sha256').update(data).digest('hex');
        this.remember(opened, h);
        this.s.hashed++;
        return h;
      }
    } catch (err) {
      try { closeSync(fd); } catch { /* already closed */ }
      log.debug({ pid: e.pid, path: e.exe.path, err: String(err) }, 'exe hash: read failed');
      return this.fail('read', e);
    }
    this.s.async++;
    const p = hashStream(file, fd).then(
      ({ hex, bytes }) => {
        this.s.bytes += bytes;
        this.s.hashed++;
        this.remember(opened, hex);
        return hex;
      },
      (err) => {
        log.debug({ pid: e.pid, path: e.exe.path, err: String(err) }, 'exe hash: read failed');
        this.fail('read', e);
        return undefined;
      },
    ).finally(() => this.inflight.delete(opened));
    this.inflight.set(opened, p);
    return p;
  }

  /** the file the exec event ran, with its stat, or why there is none */
  private locate(e: ExecEvent): { file: string; st: BigIntStats } | HashFailure {
    let replaced = false;
    for (const file of [`${this.proc}/${e.pid}/exe`, e.exe.path]) {
      if (!file || file.startsWith('/.../')) continue; // a path cut to its tail names nothing
      let st: BigIntStats | undefined;
      try {
        st = statSync(file, { bigint: true, throwIfNoEntry: false });
      } catch {
        continue; // EACCES, ELOOP, ...
      }
      if (!st) continue;
      // the inode decides: the pid may have exec'd again or been reused, the path may name a new
      // file. The device is not compared: on overlayfs stat() reports the layer's pseudo device while
      // the kernel reports the real one (see enforcers/maps.ts kernelFileId)
      if (Number(st.ino) === e.exe.ino && st.isFile()) return { file, st };
      replaced = true;
    }
    return replaced ? 'replaced' : 'gone';
  }

  private fail(why: HashFailure, e: ExecEvent): undefined {
    this.s.failed++;
    this.failures[why]++;
    log.debug({ pid: e.pid, path: e.exe.path, ino: e.exe.ino, why }, 'exe not hashed');
    return undefined;
  }

  private remember(key: string, hex: string): void {
    this.cache.set(key, hex);
    if (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
  }
}

function cacheKey(st: BigIntStats): string {
  // ctime too: mtime can be set back by the file's owner, ctime cannot
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

async function hashStream(file: string, fd: number): Promise<{ hex: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  // autoClose: the stream closes fd at the end or on error
  for await (const chunk of createReadStream(file, { fd, highWaterMark: 256 << 10 })) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { hex: h.digest('hex'), bytes };
}

/** LiveSignals whose exec events carry sha256, in the original order; stop() waits for pending hashes */
export interface HashedSignals extends LiveSignals {
  hasher: ExeHasher;
  /** ts of the oldest event held back for a hash, if any: a heartbeat must not move time past it */
  heldFrom(): number | undefined;
}

/** the hashing stage over live signals (see the top of this file) */
export function withExeHashes(live: LiveSignals, hasher: ExeHasher = new ExeHasher()): HashedSignals {
  const batches = new Subject<KrsiEvent[]>();
  const events = new Subject<KrsiEvent>();
  const queue: { batch: KrsiEvent[]; ready?: Promise<unknown> }[] = [];
  let pumping: Promise<void> | undefined;
  let ended = false;

  const emit = (batch: KrsiEvent[]) => {
    batches.next(batch);
    if (events.observed) for (const e of batch) events.next(e);
  };
  // hands the queued batches over in order, each when its hashes are done
  const pump = async () => {
    while (queue.length) {
      await queue[0].ready;
      const { batch } = queue.shift()!;
      hasher.waiting = queue.length;
      emit(batch);
    }
    pumping = undefined;
  };
  const end = () => {
    if (ended) return;
    ended = true;
    batches.complete();
    events.complete();
  };

  const sub = live.batches$.subscribe({
    next(batch) {
      let waits: Promise<unknown>[] | undefined;
      for (const e of batch) {
        if (e.type !== 'exec' || e.sha256 !== undefined) continue;
        const h = hasher.hash(e);
        if (typeof h === 'string') e.sha256 = h;
        else if (h) (waits ??= []).push(h.then((x) => { if (x !== undefined) e.sha256 = x; }));
      }
      if (!waits && !pumping) return emit(batch);
      queue.push({ batch, ready: waits && Promise.all(waits) });
      hasher.waiting = queue.length;
      pumping ??= pump();
    },
    error(err) {
      void (pumping ?? Promise.resolve()).then(() => {
        ended = true;
        batches.error(err);
        events.error(err);
      });
    },
    complete() {
      void (pumping ?? Promise.resolve()).then(end);
    },
  });

  return {
    hasher,
    heldFrom: () => queue[0]?.batch[0]?.ts,
    events$: events.asObservable(),
    batches$: batches.asObservable(),
    lost: () => live.lost(),
    lostByKind: () => live.lostByKind(),
    unavailable: live.unavailable,
    stats: () => live.stats(),
    async stop() {
      await live.stop(); // the last events go through the stage
      while (pumping) await pumping;
      sub.unsubscribe();
      end();
      const s = hasher.stats();
      if (s.failed) log.warn({ failures: s.failures, hashed: s.hashed }, `${s.failed} exec events without sha256 (executable not readable)`);
    },
  };
}
