// The exe hash reader: a child process (`node --jitless`) that does every file system call of exe
// hashing, so that none runs on krsi's event loop or in its libuv threadpool. A stat, open or read can
// block for ever (a FUSE daemon that never answers, a hung NFS server): here that stalls only this
// process, which krsi kills and replaces (signals/hash.ts). It imports nothing but node: builtins.
//
// Requests come over the IPC channel as arrays of jobs; answers go back batched per turn. Per job:
// find the file (/proc/PID/exe while the process lives, else the path; the inode must be the event's),
// answer from the cache (dev, ino, size, mtime, ctime) at once, else queue a read. Up to MAX_READS
// reads run at once, one per file version (hits never wait behind them); a read whose deadline passed
// before it started is answered `timeout` unread, one that started runs to the end and fills the cache.
import { constants, promises as fsp, type BigIntStats } from 'node:fs';
import { createHash } from 'node:crypto';

/** the reader's share of signals/events.ts SHA256_ERRORS */
export type ReadFailure = 'gone' | 'replaced' | 'too_large' | 'unreadable' | 'timeout';

/** one exec event's executable, to hash before `deadline` (Date.now() ms) */
export interface HashJob {
  id: number;
  pid: number;
  ino: number;
  path: string;
  deadline: number;
}

export interface HashAnswer {
  id: number;
  sha256?: string;
  error?: ReadFailure;
  /** served from the cache, or by a read of the same file version that another job started */
  hit?: boolean;
  /** bytes read for it */
  bytes?: number;
}

/** reader -> krsi: answers of one turn (none: the reader is ready), and the cache size */
export interface ReaderMessage {
  answers: HashAnswer[];
  cached: number;
}

export interface ReaderConfig {
  maxBytes: number;
  cacheSize: number;
  procRoot: string;
}

const CHUNK = 1 << 20;
/** reads at once (libuv has 4 threads: one stays for the stats of cache hits) */
const MAX_READS = 3;

function cacheKey(st: BigIntStats): string {
  // ctime too: mtime can be set back by the file's owner, ctime cannot
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

interface Read {
  job: HashJob;
  file: string;
  key: string;
  /** other jobs for the same file version */
  joined: HashJob[];
}

export class Reader {
  private readonly cache = new Map<string, string>();
  private readonly reads: Read[] = [];
  /** the reads queued or running, by cache key */
  private readonly byKey = new Map<string, Read>();
  /** the reads running now, each with the latest deadline of its requesters */
  private readonly running = new Set<{ deadline: number }>();

  constructor(
    private readonly cfg: ReaderConfig,
    private readonly answer: (a: HashAnswer) => void,
  ) {}

  async take(job: HashJob): Promise<void> {
    const found = await this.locate(job);
    if (typeof found === 'string') return this.answer({ id: job.id, error: found });
    const { file, st } = found;
    const key = cacheKey(st);
    const hex = this.cache.get(key);
    if (hex !== undefined) {
      this.cache.delete(key); // most recently used last
      this.cache.set(key, hex);
      return this.answer({ id: job.id, sha256: hex, hit: true });
    }
    if (st.size > BigInt(this.cfg.maxBytes)) return this.answer({ id: job.id, error: 'too_large' });
    // one read per file version, queued or running: the others join it
    const joined = this.byKey.get(key);
    if (joined) joined.joined.push(job);
    else if (this.saturated()) {
      // every read slot is taken by reads already late (files changed and exec'd in a loop, or
      // that do not answer): this one could not be done in time, say so now instead of at the deadline
      return this.answer({ id: job.id, error: 'timeout' });
    } else {
      const r = { job, file, key, joined: [] };
      this.byKey.set(key, r);
      this.reads.push(r);
    }
    this.startReads();
  }

  /** the file the exec event ran, with its stat, or why there is none */
  private async locate(job: HashJob): Promise<{ file: string; st: BigIntStats } | ReadFailure> {
    let replaced = false;
    for (const file of [`${this.cfg.procRoot}/${job.pid}/exe`, job.path]) {
      if (!file || file.startsWith('/.../')) continue; // a path cut to its tail names nothing
      let st: BigIntStats;
      try {
        st = await fsp.stat(file, { bigint: true });
      } catch {
        continue; // gone, EACCES, ELOOP, ...
      }
      // the inode decides: the pid may have exec'd again or been reused, the path may name a new file.
      // The device is not compared: on overlayfs stat() reports the layer's pseudo device while the
      // kernel reports the real one (see enforcers/maps.ts kernelFileId)
      if (Number(st.ino) === job.ino && st.isFile()) return { file, st };
      replaced = true;
    }
    return replaced ? 'replaced' : 'gone';
  }

  /** every read slot busy with a read whose requesters are all past their deadline */
  private saturated(): boolean {
    const now = Date.now();
    return this.running.size >= MAX_READS && [...this.running].every((r) => r.deadline < now);
  }

  /** starts queued reads, MAX_READS at once: a read that never returns holds one slot, not the others */
  private startReads(): void {
    const now = Date.now();
    while (this.reads.length && this.running.size < MAX_READS) {
      const r = this.reads.shift()!;
      const jobs = () => [r.job, ...r.joined];
      // nobody waits for it any more: the next exec of the file asks again
      if (jobs().every((j) => j.deadline < now)) {
        this.byKey.delete(r.key);
        for (const j of jobs()) this.answer({ id: j.id, error: 'timeout' });
        continue;
      }
      const slot = { deadline: Math.max(...jobs().map((j) => j.deadline)) };
      this.running.add(slot);
      void this.read(r.file, r.job).then((res) => {
        this.running.delete(slot);
        this.byKey.delete(r.key);
        if (res.hex !== undefined) this.remember(res.key!, res.hex);
        // the others joined the read: counted as hits, as the old in-process hasher did
        jobs().forEach((j, i) => this.answer({ id: j.id, sha256: res.hex, error: res.error, bytes: i ? 0 : res.bytes, hit: i > 0 && res.hex !== undefined }));
        this.startReads();
      });
    }
  }

  /** the file, or when it cannot be opened (/proc/PID/exe of a process that exited since) the path */
  private async read(file: string, job: HashJob): Promise<{ hex?: string; key?: string; error?: ReadFailure; bytes: number }> {
    const res = await this.readOne(file, job.ino);
    if (res.error !== 'gone' || file === job.path || job.path.startsWith('/.../')) return res;
    return this.readOne(job.path, job.ino);
  }

  private async readOne(file: string, ino: number): Promise<{ hex?: string; key?: string; error?: ReadFailure; bytes: number }> {
    let fh: fsp.FileHandle | undefined;
    let bytes = 0;
    try {
      // O_NONBLOCK: a FIFO renamed into place since the stat must not block the open
      fh = await fsp.open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY).catch(() => undefined);
      if (!fh) return { error: 'gone', bytes };
      const st = await fh.stat({ bigint: true });
      if (Number(st.ino) !== ino || !st.isFile()) return { error: 'replaced', bytes };
      if (st.size > BigInt(this.cfg.maxBytes)) return { error: 'too_large', bytes };
      const h = createHash('sha256');
      const buf = Buffer.allocUnsafe(CHUNK);
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
        if (!bytesRead) break;
        bytes += bytesRead;
        if (bytes > this.cfg.maxBytes) return { error: 'too_large', bytes }; // grew while read
        h.update(buf.subarray(0, bytesRead));
      }
      return { hex: h.digest('hex'), key: cacheKey(st), bytes };
    } catch {
      return { error: 'unreadable', bytes };
    } finally {
      await fh?.close().catch(() => {});
    }
  }

  cached(): number {
    return this.cache.size;
  }

  private remember(key: string, hex: string): void {
    this.cache.set(key, hex);
    if (this.cache.size > this.cfg.cacheSize) this.cache.delete(this.cache.keys().next().value!);
  }
}

/** the child's main: config from argv[2] (JSON), jobs from the parent, answers batched per turn */
function main(): void {
  const cfg = JSON.parse(process.argv[2]) as ReaderConfig;
  let out: HashAnswer[] = [];
  const flush = () => {
    const answers = out;
    out = [];
    // krsi gone meanwhile: the send fails (the callback takes the error), 'disconnect' ends this process
    if (answers.length && process.connected) process.send!({ answers, cached: reader.cached() } satisfies ReaderMessage, undefined, {}, () => {});
  };
  const reader = new Reader(cfg, (a) => {
    if (!out.length) setImmediate(flush);
    out.push(a);
  });
  process.on('message', (jobs: HashJob[]) => {
    for (const j of jobs) void reader.take(j);
  });
  // krsi went away: nothing to answer to
  process.on('disconnect', () => process.exit(0));
  process.send!({ answers: [], cached: 0 } satisfies ReaderMessage); // ready
}

/** the argument that makes this module the reader's main (the parent passes it; an import never does) */
export const READER_ARG = 'krsi-hash-reader';
if (process.argv[3] === READER_ARG && process.send) {
  // a root process: SIGUSR1 must not open Node's inspector in it (as in bin/krsi.js, a listener of our own
  // replaces that signal handler; --inspect-publish-uid=stderr keeps a URL from being served meanwhile)
  process.on('SIGUSR1', () => {});
  main();
}
