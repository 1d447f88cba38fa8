// End to end in the BPF-LSM VM: live signals -> rule -> verdict -> pinned map -> the next exec by that
// process fails with EPERM and the kernel's `denied` event reaches the output and the recorded log;
// persistence (krsi killed: the pinned maps keep denying; maps gone: a restart restores the verdict
// from lmdb); differential (the recorded log replayed through the model denies exactly what the
// kernel denied); a replay of that recording reports each refused operation once, with its rule, in
// every --mode (a refused mprotect leaves both its event and the kernel's record; a refused exec only
// the record). The rules are inline test rules keyed on a marker environment variable, so the test
// only ever denies processes it started itself.
// The same file is the guest driver: with KRSI_E2E_GUEST=<results dir> it runs the scenario in the VM.
// The guest runs the compiled CLI (dist/cli/main.js, built on the host first), not bin/krsi.js: the
// checkout is the guest's / over 9p, live, and the launcher refuses a dist/ that an edit on the host
// made stale while the VM runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RULES = {
  rules: [
    {
      id: 'e2e-canary',
      description: 'readiness probe: krsi run sees execs',
      tags: ['test'],
      severity: 'info',
      mode: 'monitor',
      match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'env', path: '$.KRSI_E2E_CANARY', operator: 'exists', value: true }] },
      actions: [{ type: 'alert', message: 'canary' }],
    },
    {
      id: 'e2e-quarantine-marker',
      description: 'a process started with KRSI_E2E=quarantine-me is quarantined',
      tags: ['test'],
      severity: 'high',
      mode: 'enforce',
      match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'env', path: '$.KRSI_E2E', operator: 'equal', value: 'quarantine-me' }] },
      actions: [{ type: 'verdict', op: 'quarantine', subject: 'pid', ttl: '10m' }],
    },
  ],
};
const WATCH = ['KRSI_E2E', 'KRSI_E2E_CANARY'];

interface Results {
  steps: string[];
  victim: number;
  other: number;
  krsiPid1: number;
  krsiPid2: number;
  verdict1?: Record<string, unknown>;
  otherVerdict: boolean;
  attempt1: string;
  otherExit: number | null;
  otherOut: string;
  denied1?: Record<string, unknown>;
  bpftool: string;
  attemptDown: string;
  mapGone: boolean;
  restored: boolean;
  mapBack: string;
  attempt2: string;
  denied2?: Record<string, unknown>;
  exit2: number | null;
  stderr1: string;
  stderr2: string;
  /** a static helper, quarantined by its exec, then refused one mprotect(PROT_EXEC) */
  mprot?: { pid: number; out: string; code: number | null; verdict?: Record<string, unknown>; denied?: Record<string, unknown>; deniedLive?: number };
  cli?: { add: Cli; execCopy: string; execOrig: number | null; list: Cli; rm: Cli; execAfterRm: number | null };
  error?: string;
}
interface Cli { code: number | null; signal?: string | null; out: string; err: string }

// ---------------------------------------------------------------- guest side
const CLI = 'dist/cli/main.js';

async function guest(results: string): Promise<void> {
  const { unloadEnforcement } = await import('../../enforcers/programs.ts');
  const D = '/mnt/e2e';
  mkdirSync(D, { recursive: true });
  spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', D]);
  const rulesFile = join(D, 'rules.json');
  writeFileSync(rulesFile, JSON.stringify(RULES));
  const state = join(D, 'state');
  const r: Results = { steps: [], victim: 0, other: 0, krsiPid1: 0, krsiPid2: 0, otherVerdict: false, attempt1: '', otherExit: null, otherOut: '', bpftool: '', attemptDown: '', mapGone: false, restored: false, mapBack: '', attempt2: '', exit2: null, stderr1: '', stderr2: '' };
  const step = (s: string) => { r.steps.push(`${new Date().toISOString()} ${s}`); process.stderr.write(`e2e: ${s}\n`); };
  const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
  async function until<T>(what: string, f: () => T | undefined, ms: number): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = f();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await sleep(200);
    }
  }

  interface Krsi { p: ChildProcess; out: Record<string, unknown>[]; err: () => string; exit: Promise<number | null> }
  function startKrsi(log: string): Krsi {
    // --no-self-protect: this test reads the pinned maps with bpftool while krsi runs, which self-protection
    // refuses (that has its own VM test: protect.test.ts)
    const p = spawn(process.execPath, [CLI, 'run', '--rules', rulesFile, '--mode', 'enforce', '--no-self-protect', '--record', log, '--format', 'json', '--state', state, '--watch-env', ...WATCH], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Record<string, unknown>[] = [];
    let buf = '', err = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try { out.push(JSON.parse(line)); } catch { err += `stdout: ${line}\n`; }
      }
    });
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exit = new Promise<number | null>((res) => p.once('exit', (c, sig) => {
      if (sig) err += `\n--- krsi run killed by ${sig}; guest dmesg tail:\n${dmesgTail()}`;
      res(c);
    }));
    return { p, out, err: () => err, exit };
  }
  async function ready(k: Krsi): Promise<void> {
    let n = 0;
    await until('krsi run to see a canary exec', () => {
      if (k.p.exitCode !== null) throw new Error(`krsi run exited ${k.p.exitCode}: ${k.err().slice(-2000)}`);
      if (k.out.some((o) => o.kind === 'alert' && o.rule === 'e2e-canary')) return true;
      spawnSync('/bin/true', [], { env: { ...process.env, KRSI_E2E_CANARY: String(++n) } });
      return undefined;
    }, 240_000);
  }
  /** a bash that execs /bin/true in its own process (not a child) each time it reads a line */
  function victim(marker: string) {
    const p = spawn('/bin/bash', ['-c', 'shopt -s execfail; while read x; do exec /bin/true; echo exec-failed; done'], { env: { ...process.env, KRSI_E2E: marker }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exit = new Promise<number | null>((res) => p.once('exit', (c) => res(c)));
    return { p, out: () => out, exit };
  }
  async function attempt(v: ReturnType<typeof victim>): Promise<string> {
    const before = v.out().length;
    v.p.stdin!.write('go\n');
    await until('the exec attempt', () => (v.out().slice(before).includes('exec-failed') || v.p.exitCode !== null ? true : undefined), 30_000);
    return v.out().slice(before);
  }
  const dmesgTail = () => `${spawnSync('free', ['-m'], { encoding: 'utf8' }).stdout ?? ''}${spawnSync('dmesg', [], { encoding: 'utf8' }).stdout?.split('\n').slice(-40).join('\n') ?? ''}`;
  const dumpTgid = () => spawnSync('bpftool', ['-j', 'map', 'dump', 'pinned', '/sys/fs/bpf/krsi/enforce/deny_tgid'], { encoding: 'utf8' }).stdout ?? '';

  let k1: Krsi | undefined, k2: Krsi | undefined, v: ReturnType<typeof victim> | undefined;
  try {
    step('start krsi run #1');
    k1 = startKrsi(join(D, 'log1'));
    r.krsiPid1 = k1.p.pid!;
    await ready(k1);
    step('krsi #1 ready; start the victim and the other process');
    v = victim('quarantine-me');
    const other = victim('leave-me');
    r.victim = v.p.pid!;
    r.other = other.p.pid!;
    r.verdict1 = await until('the verdict on the victim', () => k1!.out.find((o) => o.kind === 'verdict' && (o.subject as { pid?: number })?.pid === r.victim), 60_000);
    await sleep(1000);
    r.otherVerdict = k1.out.some((o) => o.kind === 'verdict' && (o.subject as { pid?: number })?.pid === r.other);
    step('verdict seen; exec attempts');
    r.attempt1 = await attempt(v);
    other.p.stdin!.write('go\n');
    r.otherExit = await other.exit;
    r.otherOut = other.out();
    r.denied1 = await until('the denied event in krsi run output', () => k1!.out.find((o) => o.kind === 'denied' && o.pid === r.victim), 30_000);
    r.bpftool = dumpTgid();

    step('a quarantined helper tries mprotect(PROT_EXEC): its event and the kernel\'s record both go into the log');
    const h = spawn(join(results, 'vmhelper'), ['mprotect', '1', 'wait'], { env: { ...process.env, KRSI_E2E: 'quarantine-me' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let hout = '';
    h.stdout!.setEncoding('utf8').on('data', (d: string) => (hout += d));
    h.stderr!.setEncoding('utf8').on('data', (d: string) => (hout += d));
    const hexit = new Promise<number | null>((res) => h.once('exit', (c) => res(c)));
    r.mprot = { pid: h.pid!, out: '', code: null };
    r.mprot.verdict = await until('the verdict on the helper', () => k1!.out.find((o) => o.kind === 'verdict' && (o.subject as { pid?: number })?.pid === h.pid), 60_000);
    h.stdin!.write('go\n');
    r.mprot.code = await hexit;
    r.mprot.out = hout;
    r.mprot.denied = await until('the helper\'s denied mprotect in krsi run output', () => k1!.out.find((o) => o.kind === 'denied' && o.pid === h.pid), 30_000);
    await sleep(1500); // the log commits by the next event-loop turn; leave it time before the hard kill
    r.mprot.deniedLive = k1.out.filter((o) => o.kind === 'denied' && o.pid === h.pid).length;

    step('kill -9 krsi #1: the pinned maps keep denying');
    k1.p.kill('SIGKILL');
    await k1.exit;
    r.stderr1 = k1.err();
    r.attemptDown = await attempt(v);

    step('unpin programs and maps: only lmdb remembers the verdict');
    unloadEnforcement();
    r.mapGone = !existsSync('/sys/fs/bpf/krsi/enforce/deny_tgid');

    step('start krsi run #2 with the same state');
    k2 = startKrsi(join(D, 'log2'));
    r.krsiPid2 = k2.p.pid!;
    await ready(k2);
    r.restored = /"restored":1\b/.test(k2.err());
    r.mapBack = dumpTgid();
    r.attempt2 = await attempt(v);
    r.denied2 = await until('the denied event after the restart', () => k2!.out.find((o) => o.kind === 'denied' && o.pid === r.victim), 30_000);
    k2.p.kill('SIGTERM');
    r.exit2 = await k2.exit;
    r.stderr2 = k2.err();

    step('krsi verdicts add / list / rm against the pinned maps (krsi run stopped)');
    const copy = join(D, 'true-copy');
    copyFileSync('/bin/true', copy);
    chmodSync(copy, 0o755);
    const cli = (...a: string[]): Cli => {
      const c = spawnSync(process.execPath, [CLI, 'verdicts', ...a, '--state', state], { encoding: 'utf8' });
      const res: Cli = { code: c.status, signal: c.signal, out: c.stdout ?? '', err: (c.stderr ?? '').slice(-2000) };
      // status null is a signal or a failed spawn: say which, with the guest's kernel log
      if (c.signal || c.error) res.err += `\n--- ${c.signal ? `killed by ${c.signal}` : `spawn failed: ${String(c.error)}`}; guest dmesg tail:\n${dmesgTail()}`;
      return res;
    };
    const add = cli('add', '--op', 'exec', '--inode', copy, '--ttl', '5m', '--rule', 'e2e-cli');
    const tryExec = (f: string) => spawnSync(f, [], { encoding: 'utf8' });
    const denied = tryExec(copy);
    const execCopy = denied.error ? String((denied.error as NodeJS.ErrnoException).code) : `status ${denied.status}`;
    const execOrig = tryExec('/bin/true').status;
    const list = cli('list', '--format', 'json');
    const rm = cli('rm', add.out.trim());
    r.cli = { add, execCopy, execOrig, list, rm, execAfterRm: tryExec(copy).status };
    step('done');
  } catch (e) {
    r.error = `${(e as Error).stack ?? String(e)}\n--- guest dmesg tail:\n${dmesgTail()}`;
    r.stderr1 ||= k1?.err() ?? '';
    r.stderr2 ||= k2?.err() ?? '';
  } finally {
    v?.p.kill('SIGKILL');
    for (const k of [k1, k2]) if (k && k.p.exitCode === null) { k.p.kill('SIGKILL'); await k.exit; }
    unloadEnforcement();
    for (const l of ['log1', 'log2']) if (existsSync(join(D, l))) cpSync(join(D, l), join(results, l), { recursive: true });
    writeFileSync(join(results, 'results.json'), JSON.stringify(r, null, 1));
  }
}

if (process.env.KRSI_E2E_GUEST) {
  await guest(process.env.KRSI_E2E_GUEST);
} else {
  // ---------------------------------------------------------------- host side
  const { vmAvailable, runInVm, REPO_ROOT, VM_KERNELS, vmKernelLabel } = await import('./vm.ts');
  const { krsiSync } = await import('../helpers/krsi.ts');
  const { needCc } = await import('../helpers/prereq.ts');

  for (const kernel of VM_KERNELS)
  test(`end to end in the VM [${vmKernelLabel(kernel)}]: signal -> rule -> verdict -> map -> EPERM; persistence; differential`, { skip: vmAvailable(kernel) ?? needCc(), timeout: 900_000 }, async (t) => {
    const rw = mkdtempSync(join(tmpdir(), 'krsi-e2e-'));
    try {
      const build = spawnSync(process.execPath, ['bin/build.mjs'], { cwd: REPO_ROOT, encoding: 'utf8' });
      assert.equal(build.status, 0, `npm run build: ${build.stderr}`);
      // static: no ld.so mprotects of its own
      const cc = spawnSync('cc', ['-O2', '-Wall', '-static', '-o', join(rw, 'vmhelper'), join(REPO_ROOT, 'test/vm/helpers/vmhelper.c')], { encoding: 'utf8' });
      assert.equal(cc.status, 0, cc.stderr);
      const vm = await runInVm(`node --import tsx test/vm/e2e.test.ts`, { rw, env: { KRSI_E2E_GUEST: rw }, timeoutMs: 780_000, cwd: REPO_ROOT, kernel });
      const file = join(rw, 'results.json');
      assert.ok(existsSync(file), `no results from the guest (exit ${vm.code}): ${vm.stderr.slice(-3000)}`);
      const r = JSON.parse(readFileSync(file, 'utf8')) as Results;
      t.diagnostic(`VM run ${vm.ms} ms; steps:\n${r.steps.join('\n')}`);
      assert.equal(r.error, undefined, `${r.error}\n--- krsi #1 stderr:\n${r.stderr1.slice(-3000)}\n--- krsi #2 stderr:\n${r.stderr2.slice(-3000)}`);

      await t.test('chain: the marked process gets a quarantine verdict, the other does not', () => {
        assert.equal(r.verdict1?.rule, 'e2e-quarantine-marker');
        assert.equal(r.verdict1?.op, 'quarantine');
        assert.equal(r.verdict1?.applied, true);
        assert.equal(r.otherVerdict, false);
      });
      await t.test('chain: its next exec fails with EPERM; the other process execs', () => {
        assert.match(r.attempt1, /Operation not permitted/);
        assert.match(r.attempt1, /exec-failed/);
        assert.equal(r.otherExit, 0);
        assert.doesNotMatch(r.otherOut, /exec-failed/);
      });
      await t.test('chain: the kernel\'s denied event reaches the output, attributed to the verdict', () => {
        assert.equal(r.denied1?.op, 'exec');
        assert.equal(r.denied1?.reason, 'TGID');
        assert.equal(r.denied1?.verdict, `e2e-quarantine-marker:quarantine:pid:${r.victim}`);
        assert.equal(r.denied1?.rule, 'e2e-quarantine-marker');
      });
      await t.test('the maps are readable with bpftool', () => {
        const entries = JSON.parse(r.bpftool) as { key: unknown; formatted?: { key: number } }[];
        const keys = entries.map((e) => e.formatted?.key ?? e.key);
        assert.ok(keys.some((k) => k === r.victim || (Array.isArray(k) && Buffer.from((k as string[]).map((b) => parseInt(b, 16))).readUInt32LE(0) === r.victim)), r.bpftool);
      });
      await t.test('persistence: krsi killed, the pinned maps keep denying', () => {
        assert.match(r.attemptDown, /Operation not permitted/);
      });
      await t.test('persistence: maps unpinned, a restart restores the verdict from lmdb and denies again', () => {
        assert.equal(r.mapGone, true);
        assert.equal(r.restored, true, r.stderr2.slice(-2000));
        assert.match(r.mapBack, new RegExp(`\\b${r.victim}\\b`));
        assert.match(r.attempt2, /Operation not permitted/);
        assert.equal(r.denied2?.verdict, `e2e-quarantine-marker:quarantine:pid:${r.victim}`);
        assert.equal(r.exit2, 0);
      });
      await t.test('krsi verdicts add denies exec of one inode (not an identical binary), list shows store and map, rm lifts it', () => {
        const c = r.cli!;
        assert.equal(c.add.code, 0, c.add.err);
        assert.match(c.add.out, /^e2e-cli:exec:inode:\d+:\d+\n$/);
        assert.equal(c.execCopy, 'EPERM');
        assert.equal(c.execOrig, 0);
        assert.equal(c.list.code, 0, c.list.err);
        const lines = c.list.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
        assert.ok(lines.some((l) => l.kind === 'verdict' && l.id === c.add.out.trim()), c.list.out);
        assert.ok(lines.some((l) => l.kind === 'map_entry' && l.map === 'deny_inode'), c.list.out);
        assert.ok(lines.some((l) => l.kind === 'map_entry' && l.map === 'deny_tgid' && (l.key as { tgid: number }).tgid === r.victim), c.list.out);
        assert.equal(c.rm.code, 0, c.rm.err);
        assert.equal(c.execAfterRm, 0);
      });
      const applied = r.stderr1.split('\n').find((l) => l.includes('"verdict applied"'));
      if (applied) t.diagnostic(`live verdict -> map entry: ${applied}`);
      await t.test('the recorded log has the kernel\'s denied event', async () => {
        const { readEvents } = await import('../../engine/eventlog/index.ts');
        const denied: unknown[] = [];
        for await (const b of readEvents(join(rw, 'log1'))) for (const e of b) if (e.type === 'denied') denied.push(e);
        assert.ok(denied.some((e) => (e as { pid: number }).pid === r.victim), JSON.stringify(denied));
      });
      await t.test('differential: replaying the log through the model denies exactly what the kernel denied', async () => {
        const { deniedDifferential } = await import('../../enforcers/index.ts');
        const { readEvents } = await import('../../engine/eventlog/index.ts');
        const { loadRuleDirs } = await import('../../engine/rules/load.ts');
        const rulesFile = join(rw, 'rules.json');
        writeFileSync(rulesFile, JSON.stringify(RULES));
        const d = await deniedDifferential(readEvents(join(rw, 'log1')), await loadRuleDirs([rulesFile]));
        assert.ok(d.kernel.length >= 1, 'the log holds the kernel\'s denials');
        assert.deepEqual(d.model, d.kernel);
        assert.deepEqual(d.modelOnly, [], 'the model would have denied recorded events the kernel allowed');
        // and the CLI: krsi replay --mode enforce reproduces the live verdicts
        const rep = krsiSync(['replay', join(rw, 'log1'), '--rules', rulesFile, '--mode', 'enforce', '--format', 'json'], { cwd: REPO_ROOT });
        assert.equal(rep.status, 0, rep.stderr);
        const outs = rep.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
        const verdicts = outs.filter((o) => o.kind === 'verdict').map((o) => o.id);
        assert.ok(verdicts.includes(`e2e-quarantine-marker:quarantine:pid:${r.victim}`), rep.stdout);
      });
      await t.test('live: the helper\'s mprotect(PROT_EXEC) is refused (EPERM) and reported once', () => {
        const m = r.mprot!;
        assert.equal(m.verdict?.applied, true);
        assert.match(m.out, /fail=1 errno=1\b/);
        assert.equal(m.code, 1);
        assert.deepEqual([m.denied?.op, m.denied?.reason, m.denied?.rule], ['mprotect_exec', 'TGID', 'e2e-quarantine-marker']);
        assert.equal(m.deniedLive, 1);
      });
      await t.test('replaying the recording (krsi replay, every --mode): one denial per refused operation, with its rule', async () => {
        const { readEvents } = await import('../../engine/eventlog/index.ts');
        const m = r.mprot!;
        const logged: { type: string; pid: number; op?: string }[] = [];
        for await (const b of readEvents(join(rw, 'log1'))) for (const e of b) logged.push(e as never);
        const records = (pid: number, op: string) => logged.filter((e) => e.type === 'denied' && e.pid === pid && e.op === op).length;
        // what makes the double report possible: the refused mprotect is in the log twice
        assert.equal(records(m.pid, 'mprotect_exec'), 1, 'the kernel\'s record of the refused mprotect');
        assert.ok(logged.some((e) => e.type === 'mprotect' && e.pid === m.pid && ((e as { prot?: number }).prot! & 4) !== 0), 'the refused mprotect\'s own event');
        assert.equal(records(r.victim, 'exec'), 1, 'the kernel\'s record of the refused exec (its only trace)');
        const at = (f: (e: (typeof logged)[number]) => boolean) => logged.findIndex(f);
        t.diagnostic(`the refused mprotect in the log: its event at ${at((e) => e.type === 'mprotect' && e.pid === m.pid && ((e as { prot?: number }).prot! & 4) !== 0)}, the kernel's record at ${at((e) => e.type === 'denied' && e.pid === m.pid)}`);
        const rulesFile = join(rw, 'rules.json');
        writeFileSync(rulesFile, JSON.stringify(RULES));
        for (const mode of [[], ['--mode', 'enforce'], ['--mode', 'monitor']]) {
          const rep = krsiSync(['replay', join(rw, 'log1'), '--rules', rulesFile, ...mode, '--format', 'json'], { cwd: REPO_ROOT });
          assert.equal(rep.status, 0, rep.stderr);
          const outs = rep.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
          const denied = outs.filter((o) => o.kind === 'denied').map((o) => ({ pid: o.pid, op: o.op, rule: o.rule, reason: o.reason }));
          const what = `krsi replay ${mode.join(' ') || '(rules\' own modes)'}: ${JSON.stringify(denied)}`;
          assert.deepEqual(denied.sort((a, b) => Number(a.pid) - Number(b.pid)), [
            { pid: r.victim, op: 'exec', rule: 'e2e-quarantine-marker', reason: 'TGID' },
            { pid: m.pid, op: 'mprotect_exec', rule: 'e2e-quarantine-marker', reason: 'TGID' },
          ].sort((a, b) => a.pid - b.pid), what);
          assert.equal(outs.at(-1)?.denied, 2, what);
        }
      });
    } finally {
      rmSync(rw, { recursive: true, force: true });
    }
  });
}
