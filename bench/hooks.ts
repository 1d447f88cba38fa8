// bench/hooks: what issue 11's memory programs cost per call, from the kernel's BPF stats
// (kernel.bpf_stats_enabled=1: run_time_ns / run_cnt, `bpftool prog show -j`), beside empty programs on the
// same hooks, in the BPF-LSM VM (LSM programs load only there):
//   - LSM: krsi_file_mprotect (effective prot, the W->X flip counter) and krsi_mmap_file vs
//     bench/enforce-noop.bpf.c's noop_file_mprotect and noop_mmap_file
//   - tracepoints: the mprotect signal (krsi_mprotect: filtered at once for a call that makes nothing
//     executable, bpf_find_vma and a bulk-ring record for a flip) and the mmap signal (krsi_mmap_enter,
//     krsi_mmap_exit) vs bench/signals-noop.bpf.c
// Each workload (memory.c: bflood = mprotect(PROT_READ), bflips = W->X flips, bmmap = mmap(R|X)+munmap)
// runs in every round with krsi's programs and with the empty ones; the figures are medians over rounds of
// each program's ns per call during that workload, and of the workload's own ns per operation.
// TCG inflates absolute ns: read them against the empty programs of the same run.
// --host: the tracepoint programs only, on this host's kernel (real CPU, no LSM), against the same empty
// programs; bpf_stats is switched on for the run and back to what it was.
//   node --import tsx bench/hooks.ts [--rounds 5] [--ops 20000] [--host]
import { spawnSync, execFileSync } from 'node:child_process';
import { copyFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    guest: { type: 'string' }, // internal: path of the memory binary (we are in the VM)
    host: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '5' },
    ops: { type: 'string', default: '20000' },
  },
});
const ROUNDS = Number(opt.rounds);
const OPS = Number(opt.ops);
const median = (v: number[]) => { const s = [...v].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : NaN; };

async function host(): Promise<void> {
  const { vmAvailable, runTsInVm, REPO_ROOT } = await import('../test/vm/vm.ts');
  const { ensureObject } = await import('../bpf/build.ts');
  const why = vmAvailable();
  if (why) {
    console.error(`bench/hooks: cannot run: ${why}`);
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), 'krsi-bench-hooks-'));
  try {
    const cc = spawnSync('cc', ['-O2', '-static', '-o', join(dir, 'memory'), join(REPO_ROOT, 'test/live/fixtures/memory.c')], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`cc failed: ${cc.stderr}`);
    for (const o of ['enforce', 'signals', join(REPO_ROOT, 'bench/enforce-noop.bpf.c'), join(REPO_ROOT, 'bench/signals-noop.bpf.c')]) ensureObject(o);
    const r = await runTsInVm(fileURLToPath(import.meta.url), ['--guest', join(dir, 'memory'), '--rounds', String(ROUNDS), '--ops', String(OPS)], {
      timeoutMs: 900_000, env: { KRSI_LOG_LEVEL: 'warn' },
    });
    process.stdout.write(r.stdout);
    if (r.code !== 0) {
      process.stderr.write(r.stderr);
      process.exit(r.code || 1);
    }
    console.log(`(VM run, boot included: ${(r.ms / 1000).toFixed(1)} s)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const WORKLOADS = ['bflood', 'bflips', 'bmmap'] as const;
const PAIRS: [string, string][] = [
  ['krsi_file_mprotect', 'noop_file_mprotect'], ['krsi_mmap_file', 'noop_mmap_file'],
  ['krsi_mprotect', 'noop_mprotect'], ['krsi_mmap_enter', 'noop_mmap_enter'], ['krsi_mmap_exit', 'noop_mmap_exit'],
];
/** the programs each workload exercises (the others' few calls in a window are bpftool's own) */
const EXERCISES: Record<(typeof WORKLOADS)[number], string[]> = {
  bflood: ['krsi_file_mprotect', 'krsi_mprotect'],
  bflips: ['krsi_file_mprotect', 'krsi_mprotect'],
  bmmap: ['krsi_mmap_file', 'krsi_mmap_enter', 'krsi_mmap_exit'],
};

/** the measurement, in the VM (LSM and tracepoint programs) or on this host (tracepoints only) */
async function guest(memSrc: string, lsm = true): Promise<void> {
  const { loadEnforcement, unloadEnforcement } = await import('../enforcers/programs.ts');
  const { startSignals } = await import('../signals/live.ts');
  const { BpfObject } = await import('../bpf/libbpf.ts');
  const { ensureObject } = await import('../bpf/build.ts');
  const D = lsm ? '/mnt/krsi-bench' : mkdtempSync(join(tmpdir(), 'krsi-bench-hooks-'));
  if (lsm) {
    mkdirSync(D, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', D]);
  }
  copyFileSync(memSrc, `${D}/memory`);
  chmodSync(`${D}/memory`, 0o755);
  const statsWas = readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
  writeFileSync('/proc/sys/kernel/bpf_stats_enabled', '1');
  /** name (as the kernel keeps it, 15 characters) -> cumulative [run_time_ns, run_cnt] */
  const stats = () => {
    const m = new Map<string, [number, number]>();
    for (const p of JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8' })) as { name?: string; run_time_ns?: number; run_cnt?: number }[]) {
      if (p.name) m.set(p.name, [p.run_time_ns ?? 0, p.run_cnt ?? 0]);
    }
    return m;
  };
  // bpftool shows the whole function name (from BTF) where the kernel keeps 15 characters
  const find = (m: Map<string, [number, number]>, name: string) => m.get(name) ?? m.get(name.slice(0, 15)) ?? [0, 0];
  // per workload, per program: ns per call in each round; per workload and side: ns per operation
  const perCall = new Map<string, number[]>();
  const perOp = new Map<string, number[]>();
  const push = (m: Map<string, number[]>, k: string, v: number) => m.set(k, [...(m.get(k) ?? []), v]);
  const measure = (side: 'krsi' | 'noop' | 'none', progs: string[]) => {
    for (const w of WORKLOADS) {
      const a = stats();
      const ns = Number(execFileSync(`${D}/memory`, [w, String(OPS)], { encoding: 'utf8' }).trim());
      const b = stats();
      push(perOp, `${w}/${side}`, ns);
      for (const p of progs) {
        const [t0, c0] = find(a, p), [t1, c1] = find(b, p);
        if (c1 > c0) push(perCall, `${w}/${p}`, (t1 - t0) / (c1 - c0));
      }
    }
  };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      measure('none', []);
      if (round === 0) { perOp.clear(); measure('none', []); } // the first pass warms the page cache: measured again
      const h = lsm ? await loadEnforcement({ selfPid: process.pid, reload: true, config: { enforce: 1, mprotect_limit: 0xffffffff, module_mode: 0 } }) : undefined;
      const live = await startSignals({ lostInterval: 0, modulesInterval: 0 });
      const sub = live.events$.subscribe(() => {});
      try {
        measure('krsi', PAIRS.map(([k]) => k));
      } finally {
        sub.unsubscribe();
        await live.stop();
        h?.close();
        if (h) unloadEnforcement();
      }
      const noops = [...(lsm ? [ensureObject(fileURLToPath(new URL('./enforce-noop.bpf.c', import.meta.url)))] : []), ensureObject(fileURLToPath(new URL('./signals-noop.bpf.c', import.meta.url)))].map((p) => BpfObject.open(p));
      try {
        for (const o of noops) {
          o.load();
          o.attach();
        }
        measure('noop', PAIRS.map(([, n]) => n));
      } finally {
        for (const o of noops) o.close();
      }
    }
  } finally {
    writeFileSync('/proc/sys/kernel/bpf_stats_enabled', statsWas);
    if (!lsm) rmSync(D, { recursive: true, force: true });
  }
  console.log(`bench/hooks (${lsm ? 'in the BPF-LSM VM, TCG' : 'this host, tracepoints only'}; kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}; ${ROUNDS} rounds of ${OPS} operations, medians)`);
  console.log('ns per call (kernel BPF stats)         krsi     empty   ratio   workload');
  for (const w of WORKLOADS) {
    for (const [k, n] of PAIRS) {
      if (!EXERCISES[w].includes(k)) continue;
      const kv = median(perCall.get(`${w}/${k}`) ?? []), nv = median(perCall.get(`${w}/${n}`) ?? []);
      if (Number.isNaN(kv) && Number.isNaN(nv)) continue;
      console.log(`  ${k.padEnd(22)} ${String(Math.round(kv)).padStart(12)} ${String(Math.round(nv)).padStart(9)}   x${(kv / nv).toFixed(2).padEnd(6)} ${w}`);
    }
  }
  console.log('ns per operation (the workload itself)  none   krsi    empty   krsi/none  empty/none');
  for (const w of WORKLOADS) {
    const [a, b, c] = ['none', 'krsi', 'noop'].map((s) => median(perOp.get(`${w}/${s}`) ?? []));
    console.log(`  ${w.padEnd(24)} ${String(a).padStart(9)} ${String(b).padStart(7)} ${String(c).padStart(7)}   x${(b / a).toFixed(2).padEnd(9)} x${(c / a).toFixed(2)}`);
  }
}

if (opt.guest) await guest(opt.guest);
else if (opt.host) {
  const { REPO_ROOT } = await import('../test/vm/vm.ts');
  const dir = mkdtempSync(join(tmpdir(), 'krsi-bench-hooks-'));
  try {
    const cc = spawnSync('cc', ['-O2', '-o', join(dir, 'memory'), join(REPO_ROOT, 'test/live/fixtures/memory.c')], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`cc failed: ${cc.stderr}`);
    await guest(join(dir, 'memory'), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} else await host();
