// bench/ringbuf: how fast a burst of ring buffer records drains into JS, and whether the event loop
// stays responsive meanwhile. Compares krsi's RingBuffer (mmapped ring parsed in JS) with libbpf's own
// consumer (ring_buffer__consume, one koffi callback per record) measured in the same run.
// usage (root): node --import tsx bench/ringbuf.ts [records=1000000] [runs=5]
import { fileURLToPath } from 'node:url';
import { ensureObject } from '../bpf/build.ts';
import { BpfObject, LibbpfRingBuffer, RingBuffer, requireLiveBpf } from '../bpf/libbpf.ts';

const N = Number(process.argv[2] ?? 1_000_000);
const RUNS = Number(process.argv[3] ?? 5);
const BURST = 1 << 16; // records per getppid() call
const FIXTURE = fileURLToPath(new URL('../test/bpf/fixtures/basic.bpf.c', import.meta.url));

requireLiveBpf();
const u32 = (n: number) => Buffer.from(new Uint32Array([n]).buffer);
const obj = BpfObject.open(ensureObject(FIXTURE));
obj.setGlobal('burst', u32(BURST));
obj.setGlobal('magic', Buffer.from(new BigUint64Array([0x6b727369n]).buffer));
obj.setMaxEntries('events', 64 << 20);
obj.load();
obj.attach();
const targets = obj.map('targets');
const events = obj.map('events');
const me = u32(process.pid);

// fill the ring with n records from this process; returns production seconds
function produce(n: number): number {
  const t0 = process.hrtime.bigint();
  targets.update(me, Buffer.alloc(8));
  for (let i = 0; i < Math.ceil(n / BURST); i++) void process.ppid;
  targets.delete(me);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

type Consumer = { add(m: typeof events): number; drainAll(): number; start(): void; stop(): Promise<void>; count: number };
const makers: Record<string, (cb: (d: Buffer) => void) => Consumer> = {
  'RingBuffer (mmap, JS parse)': (cb) => new RingBuffer(cb, { budget: 1 << 30, sliceMs: Infinity }),
  'LibbpfRingBuffer (ring_buffer__consume)': (cb) => new LibbpfRingBuffer(cb),
};

// burst drain: everything produced first, then drained synchronously
const rates: Record<string, number> = {};
let sink = 0;
for (const [name, make] of Object.entries(makers)) {
  const rs: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const c = make((d) => (sink += d.readUInt32LE(8)));
    c.add(events);
    produce(N);
    const t0 = process.hrtime.bigint();
    let got = 0;
    while (got < N) {
      const k = c.drainAll();
      if (k === 0) break;
      got += k;
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    await c.stop();
    rs.push(got / s);
  }
  rates[name] = median(rs);
}
const base = rates['LibbpfRingBuffer (ring_buffer__consume)'];
console.log(`burst drain of ${N} records (${RUNS} runs, median):`);
for (const [name, r] of Object.entries(rates)) console.log(`  ${name.padEnd(42)} ${(r / 1e6).toFixed(2)} M records/s  x${(r / base).toFixed(1)} vs libbpf`);

// live drain from the event loop: a 1 ms interval measures the loop's lag while the burst drains
for (const [budget, sliceMs] of [[1 << 30, Infinity], [65536, 4], [65536, 1]]) {
  const lags: number[] = [];
  const rs: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    let count = 0;
    const rb = new RingBuffer((d) => { sink += d.readUInt32LE(8); count++; }, { budget, sliceMs });
    rb.add(events);
    produce(N);
    let last = performance.now();
    let maxLag = 0;
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        const now = performance.now();
        maxLag = Math.max(maxLag, now - last);
        last = now;
        if (count >= N) {
          clearInterval(t);
          resolve();
        }
      }, 1);
      rb.start();
    });
    rs.push(N / ((performance.now() - t0) / 1000));
    lags.push(maxLag);
    await rb.stop();
  }
  console.log(`event-loop drain, slice ${sliceMs} ms, budget ${budget}: ${(median(rs) / 1e6).toFixed(2)} M records/s, max timer gap ${median(lags).toFixed(1)} ms (median of ${RUNS})`);
}
console.log(`(production in the kernel for comparison: ${(N / produce(N) / 1e6).toFixed(2)} M records/s; checksum ${sink % 7})`);
// leave the ring empty and detach
const drain = new RingBuffer(() => {}, { budget: 1 << 30, sliceMs: Infinity });
drain.add(events);
drain.drainAll();
await drain.stop();
obj.close();

// ---- readiness: how soon one record reaches onRecord after the syscall that emits it ----
// libuv poll on the map fd (what RingBuffer does) vs a koffi async epoll_wait on the worker pool
// followed by the same JS drain on the main thread.
const one = BpfObject.open(ensureObject(FIXTURE));
one.setGlobal('burst', u32(1));
one.load();
one.attach();
const oneTargets = one.map('targets');
const oneEvents = one.map('events');
const ITER = 300;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

async function latency(startWaiting: (onRecord: () => void) => { stop(): Promise<void> }): Promise<number[]> {
  const lat: number[] = [];
  let resolveOne: (() => void) | undefined;
  const w = startWaiting(() => resolveOne?.());
  oneTargets.update(me, Buffer.alloc(8));
  try {
    for (let i = 0; i < ITER; i++) {
      const got = new Promise<void>((r) => (resolveOne = r));
      const t0 = process.hrtime.bigint();
      void process.ppid;
      await got;
      lat.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
  } finally {
    oneTargets.delete(me);
    await w.stop();
  }
  return lat;
}

const viaPoll = await latency((cb) => {
  const rb = new RingBuffer(cb);
  rb.add(oneEvents);
  rb.start();
  return rb;
});

const koffi = (await import('koffi')).default;
const libc = koffi.load('libc.so.6');
const epoll_create1 = libc.func('int epoll_create1(int flags)');
const epoll_ctl = libc.func('int epoll_ctl(int epfd, int op, int fd, void *ev)');
const epoll_wait = libc.func('int epoll_wait(int epfd, _Out_ uint8_t *evs, int max, int timeout)');
const closeFd = libc.func('int close(int fd)');
const viaAsync = await latency((cb) => {
  const rb = new RingBuffer(cb);
  rb.add(oneEvents);
  const ep = epoll_create1(0) as number;
  const ev = Buffer.alloc(12); // struct epoll_event is packed on x86-64: u32 events, u64 data
  ev.writeUInt32LE(1 /* EPOLLIN */, 0);
  epoll_ctl(ep, 1 /* EPOLL_CTL_ADD */, oneEvents.fd, ev);
  const out = Buffer.alloc(12);
  let running = true;
  let inflight: Promise<void> = Promise.resolve();
  const wait = () => {
    inflight = new Promise<void>((res) => epoll_wait.async(ep, out, 1, 50, () => {
      res();
      if (!running) return;
      rb.drainAll();
      wait();
    }));
  };
  wait();
  return { async stop() { running = false; await inflight; await rb.stop(); closeFd(ep); } };
});
one.close();
const fmt = (xs: number[]) => `median ${pct(xs, 0.5).toFixed(0)} us, p99 ${pct(xs, 0.99).toFixed(0)} us`;
console.log(`one record, syscall -> onRecord (${ITER} iterations):`);
console.log(`  libuv poll on the map fd (RingBuffer)       ${fmt(viaPoll)}`);
console.log(`  koffi async epoll_wait on the worker pool   ${fmt(viaAsync)}  (x${(pct(viaAsync, 0.5) / pct(viaPoll, 0.5)).toFixed(1)} the poll median)`);
