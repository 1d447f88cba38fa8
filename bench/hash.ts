// bench/hash: what live exe hashing (signals/hash.ts) costs.
//   - per exec event, cached: ExeHasher.hash() (a round trip to the reader process) for a running process
//     (stat /proc/PID/exe) and for one that is gone (stat of exe.path), one at a time and many at once
//   - cold hashing in the reader: MiB/s on a 64 MiB file, with krsi's event loop's longest stall while
//     it runs (gaps of a 1 ms timer; the idle gap is the baseline)
//   - live (root): an exec storm from the load generator through the signals, with and without the
//     hashing stage in the same run: exec events drained per second, hash hits/misses/failures
// Medians of several rounds; figures, not assertions.
// usage: node --import tsx bench/hash.ts [--quick] [--no-live]
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExeHasher } from '../signals/hash.ts';
import { liveEvents } from '../cli/live-runs.ts';
import type { ExecEvent, KrsiEvent } from '../signals/events.ts';

const QUICK = process.argv.includes('--quick');
const ROUNDS = QUICK ? 3 : 7;
const N = QUICK ? 20_000 : 100_000;
const dir = mkdtempSync(join(tmpdir(), 'krsi-bench-hash-'));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

function deadPid(): number {
  let pid = 4_000_000;
  while (existsSync(`/proc/${pid}`)) pid--;
  return pid;
}

function execEvent(pid: number, path: string): ExecEvent {
  const st = statSync(path);
  return { ts: 1, type: 'exec', pid, ppid: 1, uid: 0, comm: 'b', exe: { dev: st.dev, ino: st.ino, path }, filename: path };
}

/** ms per call of f over n calls in a row, each awaited (an exec event's wait for its answer) */
async function perCall(f: () => Promise<unknown>, n: number): Promise<number> {
  const r: number[] = [];
  for (let k = 0; k < ROUNDS; k++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await f();
    r.push(Number(process.hrtime.bigint() - t) / 1e6 / n);
  }
  return median(r);
}

async function cached(): Promise<void> {
  const bin = join(dir, 'sleeper');
  copyFileSync('/bin/sleep', bin);
  const child = spawn(bin, ['60'], { stdio: 'ignore' });
  await new Promise((r) => child.once('spawn', r));
  const h = new ExeHasher();
  try {
    await h.start();
    const alive = execEvent(child.pid!, bin);
    const gone = execEvent(deadPid(), bin);
    await h.hash(alive); // fill the cache
    const n = N / 20;
    const viaProc = await perCall(() => h.hash(alive), n);
    const viaPath = await perCall(() => h.hash(gone), n);
    // many at once, as in a batch: the answers of one turn come back in one message
    const t = process.hrtime.bigint();
    await Promise.all(Array.from({ length: n }, () => h.hash(alive)));
    const batched = Number(process.hrtime.bigint() - t) / 1e3 / n;
    console.log(`cached hash per exec event (round trip to the reader process): one at a time ${fmt(viaProc * 1e3)} µs via /proc/PID/exe, ${fmt(viaPath * 1e3)} µs by path (process gone); ${fmt(n)} at once ${fmt(batched, 1)} µs each (${fmt(1e6 / batched)} exec events/s)`);
  } finally {
    h.close();
    child.kill('SIGKILL');
  }
}

async function cold(): Promise<void> {
  const big = join(dir, 'big');
  const size = 64 << 20;
  writeFileSync(big, randomBytes(size));
  const ev = execEvent(deadPid(), big);
  /** hash: no hashing, the timer alone for 100 ms (the stall baseline) */
  const run = async (hash: boolean) => {
    const secs: number[] = [];
    const stalls: number[] = [];
    for (let k = 0; k < Math.min(ROUNDS, 5); k++) {
      const h = new ExeHasher({ cacheSize: 0, deadlineMs: 60_000 });
      await h.start();
      // a 1 ms timer: the longest gap between its ticks is how long the loop could not run
      let prev = performance.now();
      let gap = 0;
      const tick = setInterval(() => {
        const now = performance.now();
        gap = Math.max(gap, now - prev);
        prev = now;
      }, 1);
      await new Promise((r) => setTimeout(r, 20));
      gap = 0;
      const t = process.hrtime.bigint();
      if (!hash) await new Promise((r) => setTimeout(r, 100));
      else if ((await h.hash(ev)).sha256 === undefined) throw new Error('not hashed');
      await new Promise((r) => setTimeout(r, 2));
      secs.push(Number(process.hrtime.bigint() - t) / 1e9);
      clearInterval(tick);
      stalls.push(gap);
      h.close();
    }
    return { mbs: size / (1 << 20) / median(secs), stall: median(stalls) };
  };
  const idle = await run(false);
  const read = await run(true);
  console.log(`cold hash of 64 MiB in the reader process: ${fmt(read.mbs)} MiB/s, krsi's event loop longest stall ${fmt(read.stall, 1)} ms; idle loop (baseline) longest stall ${fmt(idle.stall, 1)} ms`);
}

async function live(): Promise<void> {
  if (process.getuid?.() !== 0 || process.argv.includes('--no-live')) {
    console.log('live exec storm: skipped (needs root; --no-live)');
    return;
  }
  const { startSignals } = await import('../signals/live.ts');
  const gen = join(dir, 'krsi-loadgen');
  const cc = spawnSync('cc', ['-O2', '-o', gen, fileURLToPath(new URL('../test/live/fixtures/loadgen.c', import.meta.url))], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cc loadgen.c: ${cc.stderr}`);
  const seconds = QUICK ? 1.5 : 3;
  const storm = (hashed: boolean) => async () => {
    const raw = await startSignals({ lostInterval: 0, modulesInterval: 0 });
    const hasher = hashed ? new ExeHasher() : undefined;
    let ended!: () => void;
    const end = new Promise<void>((r) => (ended = r));
    let execs = 0;
    let withSha = 0;
    let first = 0;
    let last = 0;
    const sub = liveEvents(raw, { hasher }).events$.subscribe({ complete: () => ended(), next: (b: KrsiEvent[]) => {
      for (const e of b) {
        if (e.type !== 'exec' || e.comm !== 'krsi-loadgen') continue;
        execs++;
        if ((e as ExecEvent).sha256) withSha++;
      }
      const now = Number(process.hrtime.bigint());
      if (!first) first = now;
      last = now;
    } });
    /** the rest of the ring, and the hashes still running */
    const stop = async () => {
      await raw.stop();
      await end;
      hasher?.close();
    };
    try {
      // the generator runs beside the event loop (not spawnSync: the ring drains meanwhile)
      const out = await new Promise<string>((resolve, reject) => {
        const p = spawn(gen, ['exec', '0', String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
        let o = '';
        p.stdout.on('data', (d) => (o += d));
        p.on('error', reject);
        p.on('exit', () => resolve(o));
      });
      const [ops, ns] = out.trim().split(' ').map(Number);
      await new Promise((r) => setTimeout(r, 300));
      const inTime = execs;
      await stop();
      return { ops, rate: ops / (ns / 1e9), execs, inTime, withSha, lost: raw.lost(), drainS: (last - first) / 1e9, stats: hasher?.stats() };
    } finally {
      await stop();
      sub.unsubscribe();
    }
  };
  const plain = await storm(false)();
  const hashed = await storm(true)();
  console.log(
    `live exec storm ${seconds}s: without hashing ${fmt(plain.rate)} execs/s generated, ${fmt(plain.execs)} exec events for ${fmt(plain.ops)} execs (${fmt(plain.inTime)} within 300 ms of the end, lost ${plain.lost}); ` +
      `with hashing ${fmt(hashed.rate)} execs/s (ratio ${(hashed.rate / plain.rate).toFixed(2)}), ${fmt(hashed.execs)} exec events for ${fmt(hashed.ops)} execs (${fmt(hashed.inTime)} within 300 ms, lost ${hashed.lost}), ` +
      `${fmt(hashed.withSha)} with sha256 (hits ${fmt(hashed.stats!.hits)}, misses ${hashed.stats!.misses}, failed ${hashed.stats!.failed})`,
  );
}

try {
  console.log(`bench/hash${QUICK ? ' (quick)' : ''}: load ${loadavg()[0].toFixed(1)}, ${cpus().length} cpus, ${ROUNDS} rounds`);
  await cached();
  await cold();
  await live();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
