// Live exe hashing: a user-space enrichment stage that sets `sha256` on exec events (signals/events.ts),
// so rules can match an executable by content wherever the copy lives. It only runs when a loaded rule
// reads `sha256` on exec (engine/rules/reads.ts needsExeHash), or when events are recorded (a log should carry what replay
// may need): otherwise the signals pass through untouched, at no cost.
//
// Off the event path: every stat, open and read of an executable happens in a child process
// (signals/hash-reader.ts), never on krsi's event loop nor in its libuv threadpool, because any of them
// can block for ever on a file an attacker serves (FUSE, a hung NFS server). The reader caches hashes
// per (dev, ino, size, mtime, ctime), refuses files over maxBytes, and reads one file at a time.
//
// The pipeline stage that holds batches for their hashes, in order and never beyond a deadline, is
// signals/exe-hashes.ts. An exec event that gets no hash carries `sha256_error` saying why (gone,
// replaced, too_large, unreadable, timeout, queue_full, unavailable), counted by reason; a rule on
// sha256 cannot match it, a rule can read sha256_error.
// A reader with an answer outstanding for stuckMs is killed and replaced; when `maxStuck` killed readers
// have not died yet (a read the kernel cannot interrupt), hashing is `unavailable` until one does.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SHA256_ERRORS, type ExecEvent, type Sha256Error } from './events.ts';
import { childLogger } from '../lib/logger.ts';
import { READER_ARG, type HashJob, type ReaderConfig, type ReaderMessage } from './hash-reader.ts';

const log = childLogger('hash');

export interface ExeHashOptions {
  /** cached hashes (LRU, in the reader), default 4096 */
  cacheSize?: number;
  /** files above this size are not hashed (`too_large`), default 256 MiB */
  maxBytes?: number;
  /** how long an exec event may wait for its hash, default 250 ms; then it goes on with `timeout` */
  deadlineMs?: number;
  /** events that may wait (in batches behind a hash); past that the oldest batch goes on, default 65536 */
  maxQueued?: number;
  /** how long a reader may take to start (krsi's first seconds, after a replacement): deadlines count from
   *  its start, events wait for it at most this long on top, default 2000 ms */
  startupMs?: number;
  /** a reader with an answer outstanding this long is killed and replaced, default 5000 ms */
  stuckMs?: number;
  /** killed readers still alive at which hashing stops (`unavailable`), default 3 */
  maxStuck?: number;
  /** where /proc is (tests) */
  procRoot?: string;
}

/** why an exec event carries no sha256 (its `sha256_error`): what the reader says, or the stage */
export type HashFailure = Sha256Error;
const HASH_FAILURES: readonly HashFailure[] = SHA256_ERRORS;

export type HashOutcome = { sha256: string; error?: undefined } | { sha256?: undefined; error: HashFailure };

export interface HashStats {
  /** exec events that got a sha256 */
  hashed: number;
  /** answers served from the reader's cache */
  hits: number;
  /** files read and hashed */
  misses: number;
  /** bytes read for hashing */
  bytes: number;
  /** exec events that went on without sha256, by reason (their sha256_error) */
  failed: number;
  failures: Record<HashFailure, number>;
  /** cached hashes (as the reader last said) */
  cached: number;
  /** answers outstanding now */
  pending: number;
  /** batches waiting for a hash now */
  waiting: number;
  /** readers killed because an answer was outstanding for stuckMs */
  restarts: number;
}

/** the reader script: hash-reader.ts beside this module (.js once compiled), run without a JIT */
function readerArgs(cfg: ReaderConfig): string[] {
  const self = fileURLToPath(import.meta.url);
  const script = self.replace(/hash\.([cm]?[jt]s)$/, 'hash-reader.$1');
  // from the TypeScript sources (tests, development): through the same loader as this process
  const loader = script.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : [];
  // --jitless: no executable memory, so no W+X mprotect for krsi's own rules to see
  return [...loader, '--jitless', '--inspect-publish-uid=stderr', script, JSON.stringify(cfg), READER_ARG];
}

/** the parent's side of the reader: jobs out, answers in, a watchdog, replacement of a stuck reader */
export class ExeHasher {
  readonly deadlineMs: number;
  readonly maxQueued: number;
  private readonly cfg: ReaderConfig;
  private readonly stuckMs: number;
  private readonly maxStuck: number;
  private child?: ChildProcess;
  private ready?: Promise<void>;
  /** when the reader answered it was up (Date.now()), undefined while it starts */
  private readyAt?: number;
  private readonly startupMs: number;
  /** called when a reader is up (the stage re-arms its deadline) */
  onReady?: () => void;
  private readonly waiting = new Map<number, { resolve: (o: HashOutcome) => void; at: number }>();
  private nextId = 1;
  /** killed readers that have not exited */
  private stuck = 0;
  private outbox: HashJob[] = [];
  private watchdog?: NodeJS.Timeout;
  private closed = false;
  private readonly s = { hashed: 0, hits: 0, misses: 0, bytes: 0, failed: 0, cached: 0, restarts: 0 };
  private readonly failures = Object.fromEntries(HASH_FAILURES.map((f) => [f, 0])) as Record<HashFailure, number>;
  /** batches waiting, set by the stage (signals/exe-hashes.ts) */
  queued = 0;
  /** ts of the oldest event the stage holds back for a hash, if any: a heartbeat must not move event
   *  time past it. Set by the stage */
  heldFrom: () => number | undefined = () => undefined;

  constructor(o: ExeHashOptions = {}) {
    this.cfg = { cacheSize: o.cacheSize ?? 4096, maxBytes: o.maxBytes ?? 256 << 20, procRoot: o.procRoot ?? '/proc' };
    this.deadlineMs = o.deadlineMs ?? 250;
    this.maxQueued = o.maxQueued ?? 65536;
    this.stuckMs = o.stuckMs ?? 5000;
    this.startupMs = o.startupMs ?? 2000;
    this.maxStuck = o.maxStuck ?? 3;
  }

  stats(): HashStats {
    return { ...this.s, failures: { ...this.failures }, pending: this.waiting.size, waiting: this.queued };
  }

  /** the reader's pid (tests) */
  get readerPid(): number | undefined {
    return this.child?.pid;
  }

  /** starts the reader (if it is not running); resolves once it answers, or fails */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('exe hasher closed'));
    if (this.child && this.ready) return this.ready;
    if (this.stuck >= this.maxStuck) return Promise.reject(new Error(`${this.stuck} exe hash readers stuck`));
    const child = spawn(process.execPath, readerArgs(this.cfg), {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, // no NODE_OPTIONS of krsi's caller
      serialization: 'json',
    });
    this.child = child;
    this.ready = new Promise<void>((resolve, reject) => {
      child.once('message', () => {
        if (this.child !== child) return;
        this.readyAt = Date.now();
        this.send();
        resolve();
        this.onReady?.();
      });
      child.once('exit', (code, sig) => reject(new Error(`exe hash reader exited (${sig ?? code}) before it was ready`)));
      child.once('error', reject);
    });
    this.ready.catch(() => {});
    child.on('message', (m: ReaderMessage) => this.answers(m));
    // what it says goes to krsi's log, but V8's notice that --jitless turns WebAssembly off
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      for (const line of d.split('\n')) if (line && !line.includes('--expose_wasm')) log.warn({ pid: child.pid }, `exe hash reader: ${line}`);
    });
    (child.stderr as Socket).unref(); // nor does its stderr keep krsi alive
    child.on('error', (e) => log.warn({ err: String(e) }, 'exe hash reader failed'));
    child.once('exit', (code, sig) => {
      if (this.child === child) {
        // died on its own: what it had is unavailable, the next job starts a new one
        if (!this.closed) log.warn({ code, sig }, 'exe hash reader exited');
        this.child = this.ready = this.readyAt = undefined;
        this.failAll('unavailable');
      }
    });
    // it never keeps krsi alive on its own: referenced only until it is ready and while answers are outstanding
    child.unref();
    void this.ready.then(() => this.child === child && !this.waiting.size && child.channel?.unref(), () => {});
    this.watchdog ??= setInterval(() => this.check(), Math.max(10, this.stuckMs / 4));
    this.watchdog.unref();
    return this.ready;
  }

  /**
   * when an exec event that arrived at `arrival` (Date.now()) goes on without its hash: deadlineMs after
   * it arrived or after the reader came up, whichever is later; while a reader starts, at most startupMs later
   */
  deadlineOf(arrival: number): number {
    return this.readyAt !== undefined ? Math.max(arrival, this.readyAt) + this.deadlineMs : arrival + this.deadlineMs + this.startupMs;
  }

  /** the hash of the event's executable, or why not; resolves (never rejects) by stuckMs at the latest */
  hash(e: ExecEvent, arrival = Date.now()): Promise<HashOutcome> {
    if (this.closed || (!this.child && this.stuck >= this.maxStuck)) return Promise.resolve({ error: 'unavailable' });
    if (!this.child) void this.start().catch((err) => log.warn({ err: String(err) }, 'exe hash reader did not start'));
    const id = this.nextId++;
    const job: HashJob = { id, pid: e.pid, ino: e.exe.ino, path: e.exe.path, deadline: arrival };
    if (!this.outbox.length && this.readyAt !== undefined) queueMicrotask(() => this.send());
    this.outbox.push(job);
    if (!this.waiting.size) this.child?.channel?.ref();
    return new Promise((resolve) => this.waiting.set(id, { resolve, at: Date.now() }));
  }

  /** counts one exec event's outcome (the stage calls it once per event) */
  count(o: HashOutcome): void {
    if (o.sha256 !== undefined) this.s.hashed++;
    else {
      this.s.failed++;
      this.failures[o.error]++;
    }
  }

  /** stops the reader; what is outstanding resolves `unavailable` */
  close(): void {
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    const child = this.child;
    this.child = this.ready = this.readyAt = undefined;
    child?.kill('SIGKILL');
    for (const j of this.outbox.splice(0)) this.settle(j.id, { error: 'unavailable' });
    this.failAll('unavailable');
  }

  /** the jobs so far to a reader that is up (deadline: from arrival to the reader's clock) */
  private send(): void {
    if (this.readyAt === undefined) return; // sent once it is up
    const jobs = this.outbox;
    this.outbox = [];
    if (!jobs.length) return;
    for (const j of jobs) j.deadline = this.deadlineOf(j.deadline);
    const child = this.child;
    if (!child?.connected) {
      for (const j of jobs) this.settle(j.id, { error: 'unavailable' });
      return;
    }
    child.send(jobs, (err) => {
      if (err) for (const j of jobs) this.settle(j.id, { error: 'unavailable' });
    });
  }

  private answers(m: ReaderMessage): void {
    this.s.cached = m.cached;
    for (const a of m.answers) {
      if (a.hit) this.s.hits++;
      else if (a.sha256 !== undefined && a.bytes) this.s.misses++;
      this.s.bytes += a.bytes ?? 0;
      this.settle(a.id, a.sha256 !== undefined ? { sha256: a.sha256 } : { error: a.error ?? 'unreadable' });
    }
  }

  private settle(id: number, o: HashOutcome): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    if (!this.waiting.size) this.child?.channel?.unref();
    w.resolve(o);
  }

  private failAll(why: HashFailure): void {
    for (const id of [...this.waiting.keys()]) this.settle(id, { error: why });
  }

  /** the watchdog: a reader with an answer outstanding for stuckMs is stuck in a read; kill, replace */
  private check(): void {
    const child = this.child;
    if (!child) return;
    const now = Date.now();
    let oldest = now;
    for (const w of this.waiting.values()) if (w.at < oldest) oldest = w.at;
    if (now - oldest < this.stuckMs) return;
    this.s.restarts++;
    this.child = this.ready = this.readyAt = undefined;
    this.stuck++;
    child.once('exit', () => this.stuck--);
    child.kill('SIGKILL');
    log.warn({ pid: child.pid, stuck: this.stuck }, `exe hash reader stuck for ${this.stuckMs} ms (a file that does not answer): killed`);
    this.failAll('timeout');
    // the next one starts now: the next exec event should not wait for its start-up
    if (this.stuck < this.maxStuck) void this.start().catch((err) => log.warn({ err: String(err) }, 'exe hash reader did not start'));
  }
}
