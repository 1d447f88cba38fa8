// Replay throughput of krsi's engine with the bundled rules, against the straightforward design measured
// in the same run: json-rules-engine's engine.run() awaited for every event (engine/rules/jre.ts).
//
//   node --import tsx bench/replay.ts [--events 1000000] [--baseline 100000] [--runs 3] [--seed 1]
//   node --expose-gc --import tsx bench/replay.ts --memory [--events 10000000]
//       heap (live, after a full GC) and RSS samples while streaming, with the engine state sizes
//   node --expose-gc --import tsx bench/replay.ts --memory --lmdb [--events 10000000]
//       the same for `krsi replay` of an lmdb log of those events (reader + engine; RSS includes the
//       log's mmap'ed pages, which the kernel can drop at any time: heap is the figure to watch)
//
// Figures (medians of --runs runs):
//   engine        events already in memory -> Engine.push (the generator runs outside the timed part)
//   replay lmdb   an lmdb log (krsi log import of the file below) -> replayLog, what `krsi replay LOG` runs
//   cli lmdb      `krsi replay LOG --format json` in a fresh process (cold JIT, as a user runs it): the
//                 events/s of its summary (replay time, without node's start-up)
//   replay jsonl  a JSON Lines file on disk -> replayLog: streaming read, JSON.parse, validation, engine
//   baseline      json-rules-engine, one awaited engine.run per event, on the first --baseline events
//
// On one core: taskset -c 0 node --import tsx bench/replay.ts (GC and lmdb threads share that core too;
// per CPU-s then equals events/s).
import { mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { KrsiEvent } from '../signals/events.ts';
import type { CompiledRuleSet } from '../engine/rules/types.ts';
import type { Output } from '../engine/types.ts';
import { loadRuleDirs } from '../engine/rules/load.ts';
import { Engine } from '../engine/engine.ts';
import { createJreBaseline } from '../engine/rules/jre.ts';
import { importLog } from '../engine/eventlog/index.ts';
import { replayLog } from '../cli/commands/replay.ts';
import { generateBatches, writeJsonl, type GenOptions } from './gen.ts';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string' },
    baseline: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    memory: { type: 'boolean', default: false },
    lmdb: { type: 'boolean', default: false },
  },
});
const memory = args.memory!;
const N = Number(args.events ?? (memory ? 10_000_000 : 1_000_000));
const BASE_N = Math.min(N, Number(args.baseline));
const RUNS = Math.max(1, Number(args.runs));
const gen: GenOptions = { count: N, seed: Number(args.seed), attackEvery: 50_000 };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** accumulates wall-clock and CPU time (user + system, this process) over timed sections */
class Timer {
  wall = 0n;
  cpu = 0;
  private w0 = 0n;
  private c0 = process.cpuUsage();
  start(): void {
    this.c0 = process.cpuUsage();
    this.w0 = process.hrtime.bigint();
  }
  stop(): void {
    this.wall += process.hrtime.bigint() - this.w0;
    const c = process.cpuUsage(this.c0);
    this.cpu += (c.user + c.system) / 1e6;
  }
  /** events/s by wall clock and by CPU time (the latter is robust to other load on shared cores) */
  rates(n: number): Rate {
    return { wall: n / (Number(this.wall) / 1e9), cpu: n / this.cpu };
  }
}
interface Rate {
  wall: number;
  cpu: number;
}
const fmtRate = (r: Rate) => `${fmt(r.wall)} ev/s (${fmt(r.cpu)} per CPU-s)`;

interface Counts {
  alert: number;
  verdict: number;
  denied: number;
}
function counter(): [Counts, (o: Output) => void] {
  const c: Counts = { alert: 0, verdict: 0, denied: 0 };
  return [c, (o) => void (o.kind !== 'summary' && c[o.kind]++)];
}

/** engine only: generated batches pushed through a fresh Engine; only push() is timed */
function runEngine(rules: CompiledRuleSet): { rate: Rate; counts: Counts } {
  const engine = new Engine({ rules });
  const [counts, emit] = counter();
  const timer = new Timer();
  let n = 0;
  for (const batch of generateBatches(gen)) {
    timer.start();
    for (let i = 0; i < batch.length; i++) {
      batch[i].seq = ++n;
      engine.push(batch[i], emit);
    }
    timer.stop();
  }
  timer.start();
  engine.finish(emit);
  timer.stop();
  return { rate: timer.rates(n), counts };
}

/** what `krsi replay LOG` does (the same function): read (+ parse + validate for JSON Lines) + engine */
async function runReplay(rules: CompiledRuleSet, log: string, want: Counts): Promise<Rate> {
  const [counts, emit] = counter();
  const timer = new Timer();
  timer.start();
  const s = await replayLog({ log, rules }, emit);
  timer.stop();
  if (s.events !== N || counts.alert !== want.alert || counts.verdict !== want.verdict || counts.denied !== want.denied)
    throw new Error(`replay of ${log} differs from the engine run: ${s.events} events, ${JSON.stringify(counts)} vs ${JSON.stringify(want)}`);
  return timer.rates(s.events);
}

const KRSI = fileURLToPath(new URL('../bin/krsi.js', import.meta.url));

/** `krsi replay LOG --format json` in a fresh process: the events/s its summary reports */
function runCli(log: string, want: Counts): Rate {
  const r = spawnSync(process.execPath, [KRSI, 'replay', log, '--format', 'json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`krsi replay ${log} exited ${r.status}: ${r.stderr}`);
  const s = JSON.parse(r.stdout.trimEnd().split('\n').at(-1)!) as { events: number; alerts: number; verdicts: number; denied: number; events_per_sec: number };
  if (s.events !== N || s.alerts !== want.alert || s.verdicts !== want.verdict || s.denied !== want.denied)
    throw new Error(`krsi replay ${log} differs from the engine run: ${JSON.stringify(s)} vs ${JSON.stringify(want)}`);
  return { wall: s.events_per_sec, cpu: NaN };
}

/** json-rules-engine: one awaited engine.run per event, on the first BASE_N events */
async function runBaseline(rules: CompiledRuleSet): Promise<Rate> {
  const events: KrsiEvent[] = [];
  for (const batch of generateBatches({ ...gen, count: BASE_N })) events.push(...batch);
  const base = createJreBaseline(rules);
  const timer = new Timer();
  timer.start();
  for (const ev of events) await base.run(ev);
  timer.stop();
  return timer.rates(events.length);
}

async function bench(): Promise<void> {
  const rules = await loadRuleDirs();
  console.log(`krsi replay bench: ${fmt(N)} generated events (seed ${gen.seed}), ${rules.rules.length} bundled rules, ${RUNS} runs, node ${process.version}`);
  const dir = mkdtempSync(join(tmpdir(), 'krsi-bench-'));
  try {
    const file = join(dir, 'events.jsonl');
    await writeJsonl(file, gen);
    const log = join(dir, 'events.lmdb');
    const t0 = process.hrtime.bigint();
    await importLog(file, log);
    console.log(`(krsi log import of the JSON Lines file: ${fmt(N / (Number(process.hrtime.bigint() - t0) / 1e9))} events/s, not part of the figures)`);
    const engine: Rate[] = [];
    const lmdb: Rate[] = [];
    const cli: Rate[] = [];
    const replay: Rate[] = [];
    const baseline: Rate[] = [];
    let counts: Counts | undefined;
    for (let r = 0; r < RUNS; r++) {
      const e = runEngine(rules);
      counts = e.counts;
      engine.push(e.rate);
      lmdb.push(await runReplay(rules, log, counts));
      cli.push(runCli(log, counts));
      replay.push(await runReplay(rules, file, counts));
      baseline.push(await runBaseline(rules));
      console.log(
        `  run ${r + 1}: engine ${fmtRate(e.rate)}; replay lmdb ${fmtRate(lmdb[r])}; cli lmdb ${fmt(cli[r].wall)} ev/s; replay jsonl ${fmtRate(replay[r])}; baseline ${fmtRate(baseline[r])}`,
      );
    }
    const med = (rs: Rate[]): Rate => ({ wall: median(rs.map((r) => r.wall)), cpu: median(rs.map((r) => r.cpu)) });
    const [e, l, c, p, b] = [med(engine), med(lmdb), med(cli), med(replay), med(baseline)];
    const row = (label: string, r: Rate, note = '') =>
      console.log(`${label.padEnd(34)} ${fmt(r.wall).padStart(12)} ${(Number.isNaN(r.cpu) ? '-' : fmt(r.cpu)).padStart(12)}${note}`);
    console.log(`outputs per run: ${counts!.alert} alerts, ${counts!.verdict} verdicts, ${counts!.denied} denied`);
    console.log(`${'medians'.padEnd(34)} ${'events/s'.padStart(12)} ${'per CPU-s'.padStart(12)}`);
    row('engine (events in memory)', e);
    row('krsi replay, lmdb log', l);
    row('krsi replay CLI, lmdb log (cold)', c, '  (a fresh process per run)');
    row('krsi replay, JSON Lines file', p);
    row('json-rules-engine baseline', b, `  (first ${fmt(BASE_N)} events)`);
    const ratio = (label: string, x: Rate) =>
      console.log(`${label.padEnd(34)} ${(x.wall / b.wall).toFixed(1).padStart(11)}x ${(x.cpu / b.cpu).toFixed(1).padStart(11)}x`);
    ratio('ratio engine / baseline', e);
    ratio('ratio replay lmdb / baseline', l);
    console.log(`${'ratio replay CLI lmdb / baseline'.padEnd(34)} ${(c.wall / b.wall).toFixed(1).padStart(11)}x`);
    ratio('ratio replay jsonl / baseline', p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** streams N generated events through one Engine, printing heap and RSS every N/20 events */
async function memoryRun(): Promise<void> {
  const rules = await loadRuleDirs();
  const engine = new Engine({ rules });
  const [counts, emit] = counter();
  const every = Math.max(4096, Math.floor(N / 20));
  console.log(`krsi memory bench: ${fmt(N)} generated events streamed through the engine with ${rules.rules.length} bundled rules`);
  const gc = (globalThis as { gc?: () => void }).gc;
  console.log(`(heap after a full GC: ${gc ? 'yes' : 'no, run node --expose-gc for live-heap figures'})`);
  console.log('      events    heapUsed         rss   engine ev/s   procs  corr.keys  model entries');
  let n = 0;
  let next = every;
  let ns = 0n;
  let mark = 0;
  const samples: number[] = [];
  for (const batch of generateBatches(gen)) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < batch.length; i++) {
      batch[i].seq = ++n;
      engine.push(batch[i], emit);
    }
    ns += process.hrtime.bigint() - t;
    if (n >= next) {
      next += every;
      gc?.();
      const m = process.memoryUsage();
      samples.push(m.heapUsed);
      const st = engine.stats();
      const keys = Object.values(st.correlation).reduce((a, c) => a + c.keys, 0);
      const model = Object.values(st.enforcement).reduce((a, c) => a + c, 0);
      console.log(
        `${fmt(n).padStart(12)} ${mib(m.heapUsed).padStart(11)} ${mib(m.rss).padStart(11)} ${fmt((n - mark) / (Number(ns) / 1e9)).padStart(13)}` +
          ` ${fmt(st.procs.size).padStart(7)} ${fmt(keys).padStart(10)} ${fmt(model).padStart(14)}`,
      );
      mark = n;
      ns = 0n;
    }
  }
  engine.finish(emit);
  const half = samples.slice(Math.floor(samples.length / 2));
  console.log(`outputs: ${counts.alert} alerts, ${counts.verdict} verdicts, ${counts.denied} denied`);
  console.log(`heapUsed over the second half: min ${mib(Math.min(...half))}, max ${mib(Math.max(...half))}`);
}

/** heap and RSS while `krsi replay` (replayLog) reads an lmdb log of N generated events */
async function memoryReplay(): Promise<void> {
  const rules = await loadRuleDirs();
  const dir = mkdtempSync(join(tmpdir(), 'krsi-bench-'));
  try {
    const file = join(dir, 'events.jsonl');
    await writeJsonl(file, gen);
    const log = join(dir, 'events.lmdb');
    await importLog(file, log);
    rmSync(file);
    const gc = (globalThis as { gc?: () => void }).gc;
    console.log(`krsi memory bench: krsi replay of an lmdb log of ${fmt(N)} generated events, ${rules.rules.length} bundled rules`);
    console.log(`(heap after a full GC: ${gc ? 'yes' : 'no, run node --expose-gc for live-heap figures'})`);
    console.log('      events    heapUsed         rss');
    const every = Math.max(4096, Math.floor(N / 20));
    let next = every;
    const samples: number[] = [];
    const [counts, emit] = counter();
    const progress = {
      update(done: number) {
        if (done < next) return;
        next += every;
        gc?.();
        const m = process.memoryUsage();
        samples.push(m.heapUsed);
        console.log(`${fmt(done).padStart(12)} ${mib(m.heapUsed).padStart(11)} ${mib(m.rss).padStart(11)}`);
      },
      clear() {},
      stop() {},
    };
    const s = await replayLog({ log, rules, progress }, emit);
    const half = samples.slice(Math.floor(samples.length / 2));
    console.log(`outputs: ${counts.alert} alerts, ${counts.verdict} verdicts, ${counts.denied} denied; ${fmt(s.events_per_sec)} events/s (with the GC calls)`);
    console.log(`heapUsed over the second half: min ${mib(Math.min(...half))}, max ${mib(Math.max(...half))}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await (memory ? (args.lmdb ? memoryReplay() : memoryRun()) : bench());
