// bench/enforce: what krsi's BPF-LSM enforcement programs cost, measured in the BPF-LSM VM.
//   node --import tsx bench/enforce.ts [--rounds 2] [--execs 100] [--mprotects 2000] [--json]
// On the host it boots the VM (test/vm/vm.ts) and runs itself inside. In the guest:
//  - per-invocation cost of each program from the kernel's BPF stats (kernel.bpf_stats_enabled=1,
//    run_time_ns / run_cnt from `bpftool prog show -j`),
//  - exec (fork + execve + wait) and mprotect (adding PROT_EXEC) latency medians with and without the
//    programs attached, in alternating rounds of one run, as ratios (attached / baseline).
// The maps hold 1000 deny_inode and 1000 deny_tgid entries that never match, the mprotect counter is
// on (limit 2^32-1): the programs take their full lookup path and allow. Note: the VM runs under TCG
// (emulated CPU), so absolute ns are inflated several times over; read them against the empty LSM programs
// (bench/enforce-noop.bpf.c) measured on the same hooks in the same run, and read the ratios.
import { spawnSync, execFileSync } from 'node:child_process';
import { copyFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    guest: { type: 'string' }, // internal: path of the vmhelper binary (we are in the VM)
    rounds: { type: 'string', default: '2' },
    execs: { type: 'string', default: '100' },
    mprotects: { type: 'string', default: '2000' },
    json: { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(opt.rounds);
const EXECS = Number(opt.execs);
const MPROTECTS = Number(opt.mprotects);

const median = (v: number[]) => { const s = [...v].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : NaN; };

async function host(): Promise<void> {
  const { vmAvailable, runTsInVm, REPO_ROOT } = await import('../test/vm/vm.ts');
  const { ensureObject } = await import('../bpf/build.ts');
  const why = vmAvailable();
  if (why) {
    console.error(`bench/enforce: cannot run: ${why}`);
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), 'krsi-bench-enforce-'));
  try {
    const cc = spawnSync('cc', ['-O2', '-static', '-o', join(dir, 'vmhelper'), join(REPO_ROOT, 'test/vm/helpers/vmhelper.c')], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`cc failed: ${cc.stderr}`);
    ensureObject('enforce');
    ensureObject(join(REPO_ROOT, 'bench/enforce-noop.bpf.c'));
    const args = ['--guest', join(dir, 'vmhelper'), '--rounds', String(ROUNDS), '--execs', String(EXECS), '--mprotects', String(MPROTECTS)];
    if (opt.json) args.push('--json');
    const r = await runTsInVm(fileURLToPath(import.meta.url), args, { timeoutMs: 900_000, env: { KRSI_LOG_LEVEL: 'warn' } });
    process.stdout.write(r.stdout);
    if (r.code !== 0) {
      process.stderr.write(r.stderr);
      process.exit(r.code || 1);
    }
    if (!opt.json) console.log(`(VM run, boot included: ${(r.ms / 1000).toFixed(1)} s)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function guest(helperSrc: string): Promise<void> {
  const { loadEnforcement, unloadEnforcement } = await import('../enforcers/programs.ts');
  const { BpfObject } = await import('../bpf/libbpf.ts');
  const { ensureObject } = await import('../bpf/build.ts');
  const { PROG_NAMES, encodeInodeKey, encodeTgidKey, encodeVerdict, KRSI_OP } = await import('../enforcers/maps.ts');
  const D = '/mnt/krsi-bench';
  mkdirSync(D, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', D]);
  copyFileSync(helperSrc, `${D}/vmhelper`);
  copyFileSync('/bin/true', `${D}/true`);
  chmodSync(`${D}/vmhelper`, 0o755);
  chmodSync(`${D}/true`, 0o755);
  writeFileSync('/proc/sys/kernel/bpf_stats_enabled', '1');
  const helper = (args: string[]) => Number(execFileSync(`${D}/vmhelper`, args, { encoding: 'utf8' }).trim());

  const lat: Record<'base' | 'krsi' | 'noop', { exec: number[]; mprotect: number[] }> = {
    base: { exec: [], mprotect: [] }, krsi: { exec: [], mprotect: [] }, noop: { exec: [], mprotect: [] },
  };
  const stats = new Map<string, { ns: number; cnt: number }>();
  const progStats = () => JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8' })) as { name?: string; run_time_ns?: number; run_cnt?: number }[];
  const addStats = (names: readonly string[]) => {
    const progs = progStats();
    for (const name of names) {
      const p = progs.find((x) => x.name && name.startsWith(x.name));
      const s = stats.get(name) ?? { ns: 0, cnt: 0 };
      s.ns += p?.run_time_ns ?? 0;
      s.cnt += p?.run_cnt ?? 0;
      stats.set(name, s);
    }
  };
  const measure = (into: { exec: number[]; mprotect: number[] }) => {
    into.exec.push(helper(['bexec', String(EXECS), `${D}/true`]));
    into.mprotect.push(helper(['bmprot', String(MPROTECTS)]));
  };

  measure({ exec: [], mprotect: [] }); // warm-up (page cache, first execs), discarded
  for (let round = 0; round < ROUNDS; round++) {
    measure(lat.base);
    const h = await loadEnforcement({ selfPid: process.pid, reload: true, config: { enforce: 1, mprotect_limit: 0xffffffff, module_mode: 0 } });
    try {
      const v = encodeVerdict({ expires: 0, ops: KRSI_OP.QUARANTINE, rule_id: 1 });
      for (let i = 0; i < 1000; i++) {
        h.maps.deny_inode.update(encodeInodeKey({ dev: 0xfe01, ino: 1_000_000 + i }), v);
        h.maps.deny_tgid.update(encodeTgidKey(3_000_000 + i), v);
      }
      measure(lat.krsi);
      addStats(PROG_NAMES); // per-program kernel stats, accumulated over rounds (each round loads new programs)
    } finally {
      h.close();
      unloadEnforcement();
    }
  }
  measure(lat.base); // a closing baseline: rounds alternate base, krsi, ..., base
  // empty LSM programs on the same hooks: what any BPF LSM program costs there (trampoline, call)
  for (let round = 0; round < ROUNDS; round++) {
    const noop = BpfObject.open(ensureObject(fileURLToPath(new URL('./enforce-noop.bpf.c', import.meta.url))));
    try {
      noop.load();
      noop.attach();
      measure(lat.noop);
      addStats(['noop_bprm_check', 'noop_file_mprotect']);
    } finally {
      noop.close();
    }
    measure(lat.base);
  }

  const out = {
    rounds: ROUNDS,
    execs_per_round: EXECS,
    mprotects_per_round: MPROTECTS,
    programs: Object.fromEntries([...stats].map(([n, s]) => [n, { run_cnt: s.cnt, ns_per_call: s.cnt ? Math.round(s.ns / s.cnt) : null }])),
    exec_ns: { base: median(lat.base.exec), krsi: median(lat.krsi.exec), ratio: median(lat.krsi.exec) / median(lat.base.exec) },
    mprotect_ns: { base: median(lat.base.mprotect), krsi: median(lat.krsi.mprotect), ratio: median(lat.krsi.mprotect) / median(lat.base.mprotect) },
    noop_exec_ratio: median(lat.noop.exec) / median(lat.base.exec),
    noop_mprotect_ratio: median(lat.noop.mprotect) / median(lat.base.mprotect),
  };
  if (opt.json) {
    console.log(JSON.stringify(out));
    return;
  }
  console.log(`bench/enforce (in the BPF-LSM VM, TCG; kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}; ${ROUNDS} rounds, medians)`);
  console.log('per-invocation cost (kernel BPF stats, run_time_ns / run_cnt):');
  for (const [n, s] of Object.entries(out.programs)) console.log(`  ${n.padEnd(24)} ${String(s.ns_per_call ?? '-').padStart(7)} ns  (${s.run_cnt} runs)`);
  const row = (what: string, x: { base: number; krsi: number; ratio: number }, unit: number, u: string) =>
    console.log(`  ${what.padEnd(24)} ${(x.base / unit).toFixed(2).padStart(9)} ${u}  ${(x.krsi / unit).toFixed(2).padStart(9)} ${u}  x${x.ratio.toFixed(3)}`);
  console.log(`latency (median of medians)      baseline        attached   ratio`);
  row('exec (fork+exec+wait)', out.exec_ns, 1e6, 'ms');
  row('mprotect +PROT_EXEC', out.mprotect_ns, 1e3, 'us');
  console.log(`  empty LSM programs on the same hooks: exec x${out.noop_exec_ratio.toFixed(3)}, mprotect x${out.noop_mprotect_ratio.toFixed(3)} (vs baseline)`);
}

if (opt.guest) await guest(opt.guest);
else await host();
