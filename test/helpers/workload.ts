// Issue 11's false-positive guard, reusable: runs the ordinary workload (test/live/fixtures/workload.sh: a JVM
// and node doing JIT work, make, python, git, tar, a package upgraded under a running copy, an allowlisted preload) as real
// processes under `krsi run --record` with the bundled rules, then reads the recorded log to find which events,
// alerts, verdicts and denials are the workload's. Used by test/live/workload.test.ts (host, monitor mode) and
// test/vm/guest/evasion/workload.ts (BPF-LSM VM, enforce mode).
//
// Attribution, so that other processes on a shared host count neither way: the workload runs in a cgroup v2 of
// its own (events carry the cgroup id) and is also followed through krsi's own fork and exit events from its
// root pid (a pid is the workload's from its fork to its exit, so a reused pid is not). An alert or verdict is
// the workload's when one of its events is, or its pid or subject is a workload process at its time; a denial
// when its event or pid is. Readiness and the end of the run are marked by canary execs with a non-allowlisted
// LD_PRELOAD (any alert naming the canary's pid: no rule of the test's own), run by this process, not the
// workload.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readEvents } from '../../engine/eventlog/index.ts';
import type { Output, SummaryOut } from '../../engine/types.ts';
import type { KrsiEvent } from '../../signals/events.ts';

export const WORKLOAD_SH = fileURLToPath(new URL('../live/fixtures/workload.sh', import.meta.url));
export const WORKLOAD_STEPS = ['jvm', 'node', 'make', 'python', 'git', 'tar', 'dpkg', 'preload'] as const;

export interface WorkloadOptions {
  /** the CLI's argv before `run`, e.g. [process.execPath, KRSI] */
  cli: string[];
  mode: 'monitor' | 'enforce';
  /** scratch directory: the workload's files, the recorded log, the verdict store */
  dir: string;
  /** more `krsi run` arguments (--rules: default the bundled rules) */
  args?: string[];
  /** steps of workload.sh (default: all) */
  steps?: string[];
  /** environment for workload.sh (KRSI_WORKLOAD_JIT_SECONDS, KRSI_WORKLOAD_CLASSES) */
  env?: Record<string, string>;
  /** waits: krsi's start (first canary alert), the workload, krsi's stop */
  startTimeoutMs?: number;
  workloadTimeoutMs?: number;
  stopTimeoutMs?: number;
  progress?: (line: string) => void;
}

export interface StepResult {
  name: string;
  code: number;
  ms: number;
  info: string[];
  /** the tail of a failed step's output */
  out: string[];
}

type Flagged = Exclude<Output, SummaryOut>;

export interface WorkloadReport {
  steps: StepResult[];
  /** workload.sh's own exit (0 once every step ran) */
  script: { code: number | null; signal: string | null; stderr: string };
  rootPid: number;
  /** the cgroup v2 id the workload ran in, or why there was none */
  cgroup: number | string;
  /** the workload's processes seen in the log */
  pids: number;
  /** the workload's events per type */
  counts: Record<string, number>;
  /** the workload's alerts, verdicts and denials: what must be empty */
  alerts: Flagged[];
  verdicts: Flagged[];
  denied: Flagged[];
  /** other outputs (host noise, canaries, krsi itself) per kind and rule: not the workload's */
  others: Record<string, number>;
  /** the first few of them, described */
  othersSample: string[];
  /** the workload's processes with more than 100 mprotects (what mprotect-storm and the kernel's counter see) */
  busy: Busy[];
  summary?: SummaryOut & { lost?: unknown };
  /** events lost in the kernel (the summary's `lost`, summed when it is per class); -1: no summary */
  lost: number;
  krsi: { code: number | null; signal: string | null; stderr: string };
  ms: { start: number; workload: number; stop: number; analyse: number };
}

/** a process's memory-protection changes (mprotect, and mmap where a signal reports it) */
export interface Busy {
  pid: number;
  comm: string;
  mprotect: number;
  /** mprotect/mmap events asking PROT_EXEC; of those, after the 100th mprotect (what the counter refuses) */
  exec: number;
  execAfter100: number;
  /** PROT_WRITE and PROT_EXEC at once (or `wx`, where the signal says so) */
  wx: number;
  mmap: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** the cgroup v2 mount (cgroup2 in /proc/self/mountinfo), or undefined */
function cgroup2Mount(): string | undefined {
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [pre, post] = line.split(' - ');
      if (post?.split(' ')[0] === 'cgroup2') return pre.split(' ')[4].replace(/\\040/g, ' ');
    }
  } catch { /* no /proc */ }
  return undefined;
}

interface Krsi { p: ChildProcess; out: Output[]; err: () => string; exit: Promise<void> }

function startKrsi(o: WorkloadOptions, log: string): Krsi {
  const args = [...o.cli.slice(1), 'run', '--mode', o.mode, '--format', 'json', '--record', log, '--state', join(o.dir, 'state'), ...(o.args ?? [])];
  const p = spawn(o.cli[0], args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Output[] = [];
  let buf = '';
  let err = '';
  p.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) {
      try { out.push(JSON.parse(buf.slice(0, i))); } catch { err += `stdout: ${buf.slice(0, i)}\n`; }
    }
  });
  p.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-20_000)));
  const exit = new Promise<void>((r) => p.once('close', () => r()));
  return { p, out, err: () => err, exit };
}

/** exec /bin/true with a non-allowlisted LD_PRELOAD until krsi alerts on it; returns the alert's ts */
async function canary(k: Krsi, dir: string, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  const pids = new Set<number>();
  for (;;) {
    if (k.p.exitCode !== null || k.p.signalCode !== null) throw new Error(`krsi run exited (${k.p.exitCode ?? k.p.signalCode}): ${k.err().slice(-3000)}`);
    const seen = k.out.find((x): x is Flagged => x.kind === 'alert' && pids.has(x.pid));
    if (seen) return seen.ts;
    if (Date.now() > end) throw new Error(`krsi run raised no alert on a canary LD_PRELOAD exec within ${timeoutMs} ms: ${k.err().slice(-3000)}`);
    const c = spawnSync('/bin/true', [], { env: { PATH: process.env.PATH, LD_PRELOAD: join(dir, 'krsi-workload-canary.so') }, stdio: 'ignore' });
    if (c.pid) pids.add(c.pid);
    await sleep(pids.size < 4 ? 500 : 1000);
  }
}

function parseSteps(stdout: string): StepResult[] {
  const steps: StepResult[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(step|info|out) (\S+) ?(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === 'step') {
      const [code, ms] = m[3].split(' ').map(Number);
      steps.push({ name: m[2], code, ms, info: [], out: [] });
    } else {
      const s = [...steps].reverse().find((x) => x.name === m[2]);
      if (s) (m[1] === 'info' ? s.info : s.out).push(m[3]);
    }
  }
  return steps;
}

function lostTotal(v: unknown): number {
  const sum = (x: unknown): number => (typeof x === 'number' ? x : x && typeof x === 'object' ? Object.values(x).reduce((n: number, y) => n + sum(y), 0) : 0);
  return v === undefined ? -1 : sum(v);
}

/** run the workload under `krsi run` (monitor or enforce) and say what of it krsi flagged */
export async function runWorkload(o: WorkloadOptions): Promise<WorkloadReport> {
  const say = o.progress ?? (() => {});
  const work = join(o.dir, 'work');
  const log = join(o.dir, 'log');
  mkdirSync(work, { recursive: true });
  const pkg = `krsi-workload-${process.pid}-${Date.now().toString(36)}`;
  const t0 = Date.now();
  const k = startKrsi(o, log);
  let script: WorkloadReport['script'] = { code: null, signal: null, stderr: '' };
  let stdout = '';
  let rootPid = 0;
  let cg: string | undefined;
  let cgroup: number | string = 'no cgroup2 mount';
  let startTs = 0;
  const ms = { start: 0, workload: 0, stop: 0, analyse: 0 };
  try {
    startTs = await canary(k, o.dir, o.startTimeoutMs ?? 120_000);
    ms.start = Date.now() - t0;
    say(`krsi run (${o.mode}) ready after ${ms.start} ms`);

    // a cgroup of its own: events carry its id, and cgroup.kill ends whatever the workload left behind
    const mnt = cgroup2Mount();
    if (mnt) {
      try {
        cg = join(mnt, pkg);
        mkdirSync(cg);
        cgroup = statSync(cg).ino;
      } catch (e) {
        cgroup = `cgroup ${cg}: ${(e as Error).message}`;
        cg = undefined;
      }
    }
    const t1 = Date.now();
    const sh = spawn('/bin/sh', ['-c', 'if [ -n "$1" ]; then echo $$ > "$1/cgroup.procs" || exit 97; fi; shift; exec /bin/sh "$@"', 'sh', cg ?? '', WORKLOAD_SH, work, ...(o.steps ?? [])], {
      // a plain environment: what the test runner carries (NODE_OPTIONS, ...) is not the workload's
      env: { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', LANG: 'C.UTF-8', ...o.env, KRSI_WORKLOAD_PKG: pkg },
      stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    rootPid = sh.pid!;
    sh.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      for (const l of d.split('\n')) if (l.startsWith('step ')) say(l);
    });
    sh.stderr!.setEncoding('utf8').on('data', (d: string) => (script.stderr = (script.stderr + d).slice(-5000)));
    const timer = setTimeout(() => {
      script.stderr += `\nworkload killed after ${o.workloadTimeoutMs ?? 600_000} ms`;
      try { process.kill(-rootPid, 'SIGKILL'); } catch { /* gone */ }
    }, o.workloadTimeoutMs ?? 600_000);
    script = await new Promise((r) => sh.once('close', (code, signal) => r({ code, signal, stderr: script.stderr })));
    clearTimeout(timer);
    ms.workload = Date.now() - t1;

    // every workload event is ahead of the end canary's exec in the ring and the pipeline
    await canary(k, o.dir, o.stopTimeoutMs ?? 60_000);
  } finally {
    const t2 = Date.now();
    if (k.p.exitCode === null && k.p.signalCode === null) {
      k.p.kill('SIGTERM');
      const killer = setTimeout(() => k.p.kill('SIGKILL'), o.stopTimeoutMs ?? 60_000);
      await k.exit;
      clearTimeout(killer);
    }
    ms.stop = Date.now() - t2;
    if (cg) {
      if (existsSync(join(cg, 'cgroup.kill'))) try { writeFileSync(join(cg, 'cgroup.kill'), '1'); } catch { /* empty */ }
      for (let i = 0; i < 50; i++) {
        try { rmdirSync(cg); break; } catch { await sleep(100); }
      }
    }
    // the script purges its package (a database of its own, in work/) on any exit; a SIGKILL'd script cannot
    if (existsSync(join('/opt', pkg))) {
      spawnSync('dpkg', [`--admindir=${join(work, 'dpkg-admin')}`, '--purge', pkg], { stdio: 'ignore' });
      rmSync(join('/opt', pkg), { recursive: true, force: true });
    }
  }

  const t3 = Date.now();
  const r = await attribute(log, k.out, rootPid, startTs, typeof cgroup === 'number' ? cgroup : undefined);
  ms.analyse = Date.now() - t3;
  const summary = k.out.find((x): x is SummaryOut & { lost?: unknown } => x.kind === 'summary');
  return {
    steps: parseSteps(stdout), script, rootPid, cgroup, ...r, summary, lost: lostTotal(summary?.lost),
    krsi: { code: k.p.exitCode, signal: k.p.signalCode, stderr: k.err().slice(-5000) }, ms,
  };
}

/** which events and outputs are the workload's (see the top of this file) */
export async function attribute(log: string, outs: Output[], rootPid: number, since: number, cgroup?: number) {
  // pid -> [from, to] intervals of workload membership
  const spans = new Map<number, [number, number][]>();
  const open = (pid: number, ts: number) => {
    const s = spans.get(pid) ?? [];
    if (!s.length || s.at(-1)![1] !== Infinity) s.push([ts, Infinity]);
    spans.set(pid, s);
  };
  const member = (pid: number, ts: number) => spans.get(pid)?.some(([a, b]) => a <= ts && ts <= b) ?? false;
  const ours = new Set<number>();
  const counts: Record<string, number> = {};
  const mem = new Map<number, Busy>();
  let rootSeen = false;
  for await (const batch of readEvents(log)) {
    for (const ev of batch as (KrsiEvent & { seq: number; cgroup?: number; child_pid?: number })[]) {
      if (!rootSeen && ev.ts >= since && (ev.pid === rootPid || (ev.type === 'fork' && ev.child_pid === rootPid))) {
        // the root is the workload's from its fork (the first such event after the start canary's alert)
        rootSeen = true;
        open(rootPid, ev.ts);
      }
      if (cgroup !== undefined && ev.cgroup === cgroup) open(ev.pid, ev.ts);
      if (ev.type === 'fork' && member(ev.pid, ev.ts)) open(ev.child_pid!, ev.ts);
      if (!member(ev.pid, ev.ts)) continue;
      ours.add(ev.seq);
      counts[ev.type] = (counts[ev.type] ?? 0) + 1;
      if (ev.type === 'mprotect' || (ev.type as string) === 'mmap') {
        const b = mem.get(ev.pid) ?? { pid: ev.pid, comm: ev.comm, mprotect: 0, exec: 0, execAfter100: 0, wx: 0, mmap: 0 };
        mem.set(ev.pid, b);
        const { prot, wx } = ev as unknown as { prot: number; wx?: boolean };
        if (ev.type === 'mprotect') b.mprotect++;
        else b.mmap++;
        if (prot & 4) b.exec++;
        if (prot & 4 && b.mprotect > 100) b.execAfter100++;
        if (wx ?? (prot & 6) === 6) b.wx++;
      }
      if (ev.type === 'exit') spans.get(ev.pid)!.at(-1)![1] = ev.ts;
    }
  }
  const alerts: Flagged[] = [];
  const verdicts: Flagged[] = [];
  const denied: Flagged[] = [];
  const others: Record<string, number> = {};
  const othersSample: string[] = [];
  for (const x of outs) {
    if (x.kind === 'summary') continue;
    const subject = x.kind === 'verdict' ? (x as unknown as { subject?: { pid?: number } }).subject?.pid : undefined;
    const mine = x.kind === 'denied'
      ? ours.has(x.seq) || member(x.pid, x.ts)
      : x.events.some((s) => ours.has(s)) || member(x.pid, x.ts) || (subject !== undefined && member(subject, x.ts));
    if (mine) (x.kind === 'alert' ? alerts : x.kind === 'verdict' ? verdicts : denied).push(x);
    else {
      const k = `${x.kind} ${(x as { rule?: string }).rule ?? '?'}`;
      others[k] = (others[k] ?? 0) + 1;
      if (othersSample.length < 8) othersSample.push(describeFlagged([x]));
    }
  }
  const busy = [...mem.values()].filter((b) => b.mprotect > 100);
  return { pids: spans.size, counts, alerts, verdicts, denied, others, othersSample, busy };
}

/** one line per flagged output: kind, rule, pid, what */
export function describeFlagged(xs: Flagged[]): string {
  return xs.map((x) => {
    if (x.kind === 'alert') return `alert ${x.rule} pid ${x.pid}: ${x.message}`;
    if (x.kind === 'verdict') return `verdict ${x.rule} pid ${x.pid}: ${x.op} on ${JSON.stringify(x.subject)}${x.applied ? ' (applied)' : ''}`;
    return `denied ${x.rule} pid ${x.pid}: ${x.op} ${x.reason ?? ''} ${JSON.stringify(x.key ?? {})}${x.enforced === false ? ' (not enforced)' : ''}`;
  }).join('\n');
}

/** what a run did, for a test's log: steps, timings, the workload's events per type, other outputs */
export function reportLines(r: WorkloadReport): string[] {
  const out = [`steps ${r.steps.map((s) => `${s.name} ${s.code === 0 ? '' : `exit ${s.code} `}${s.ms} ms`).join(', ')}`];
  for (const s of r.steps) for (const i of s.info) out.push(`  ${s.name}: ${i}`);
  out.push(`krsi start ${r.ms.start} ms, workload ${r.ms.workload} ms, stop ${r.ms.stop} ms, analysis ${r.ms.analyse} ms`);
  out.push(`workload: ${r.pids} processes (cgroup ${r.cgroup}), events ${Object.entries(r.counts).sort().map(([k, v]) => `${k} ${v}`).join(', ')}`);
  out.push(`krsi: ${r.summary?.events ?? '?'} events in all, ${r.lost} lost; not the workload's: ${JSON.stringify(r.others)}`);
  for (const o of r.othersSample) out.push(`  not the workload's: ${o}`);
  for (const b of r.busy) out.push(`  ${b.comm} (${b.pid}): ${b.mprotect} mprotects, ${b.exec} asking PROT_EXEC (${b.execAfter100} after the 100th), ${b.wx} W+X, ${b.mmap} mmap events`);
  const flagged = [...r.alerts, ...r.verdicts, ...r.denied];
  if (flagged.length) out.push(`the workload's:`, ...describeFlagged(flagged).split('\n'));
  return out;
}
