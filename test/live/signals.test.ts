// Live tests: the real kernel, real processes. Each scenario runs a small C helper (fixtures/helper.c)
// or /bin/true, keeps only the events of the pids it started (host noise never counts), and checks
// the decoded events and the bundled rules' verdict on them. Signals are stopped in after(), always.
import { evaluate } from '../helpers/evaluate.ts';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, linkSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needCc, needLiveBpf } from '../helpers/prereq.ts';
import type { ExecEvent, KrsiEvent, MprotectEvent, UnlinkEvent } from '../../signals/events.ts';
import type { LiveSignals } from '../../signals/live.ts';
import type { AlertOut, Output, VerdictOut } from '../../engine/types.ts';
import type { CompiledRuleSet } from '../../engine/rules/types.ts';

const skip = needLiveBpf() ?? needCc();
const HELPER_C = fileURLToPath(new URL('./fixtures/helper.c', import.meta.url));

/** events of these pids, in order, from the time the scenario starts */
class Collector {
  readonly events: KrsiEvent[] = [];
  constructor(live: LiveSignals) {
    live.events$.subscribe((e) => this.events.push(e));
  }
  of(pids: Set<number> | number): KrsiEvent[] {
    const set = typeof pids === 'number' ? new Set([pids]) : pids;
    return this.events.filter((e) => set.has(e.pid));
  }
  /** waits (up to 5 s) until pred holds for the events of pids */
  async waitFor(pids: Set<number> | number, pred: (evs: KrsiEvent[]) => boolean): Promise<KrsiEvent[]> {
    for (let i = 0; i < 100; i++) {
      const evs = this.of(pids);
      if (pred(evs)) return evs;
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.of(pids);
  }
}

/** the alerts (or verdicts) of one rule */
function fired(out: Output[], rule: string, kind: 'alert' | 'verdict' = 'alert'): (AlertOut | VerdictOut)[] {
  return out.filter((o): o is AlertOut | VerdictOut => o.kind === kind && o.rule === rule);
}

const exited = (pid: number) => (evs: KrsiEvent[]) => evs.some((e) => e.type === 'exit' && e.pid === pid);

describe('live signals', { skip }, () => {
  let live: LiveSignals | undefined;
  let col: Collector;
  let dir: string;
  let helper: string;
  let rules: CompiledRuleSet;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'krsi-live-'));
    helper = join(dir, 'helper');
    const cc = spawnSync('cc', ['-O2', '-o', helper, HELPER_C], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `cc helper.c: ${cc.stderr}`);
    const so = spawnSync('cc', ['-shared', '-fPIC', '-o', join(dir, 'preload.so'), '-x', 'c', '-'], { input: 'int krsi_preload_marker;\n', encoding: 'utf8' });
    assert.equal(so.status, 0, `cc preload.so: ${so.stderr}`);
    const { loadRuleDirs, BUNDLED_RULES_DIR } = await import('../../engine/rules/load.ts');
    rules = await loadRuleDirs([BUNDLED_RULES_DIR]);
    const { startSignals } = await import('../../signals/live.ts');
    live = await startSignals({ lostInterval: 0, modulesInterval: 0, watchEnv: ['KRSI_WATCH_ME'] });
    col = new Collector(live);
  });

  after(async () => {
    await live?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a copy that deletes its own executable: unlink event with target == own exe, and the rule fires', async () => {
    const r = spawnSync(helper, ['selfdel', dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const [pid, ino] = r.stdout.trim().split(' ').map(Number);
    assert.equal(pid, r.pid, 'the copy runs in the same process (exec)');
    const evs = await col.waitFor(pid, exited(pid));
    const exec = evs.find((e): e is ExecEvent => e.type === 'exec' && e.exe.ino === ino);
    assert.ok(exec, `exec of the copy (ino ${ino}) seen: ${JSON.stringify(evs.map((e) => e.type))}`);
    assert.equal(exec.exe.path, join(dir, 'selfdel-copy'));
    assert.equal(exec.exe.dev, statSync(dir).dev, 'exe.dev is the user-space st_dev');
    const unlink = evs.find((e): e is UnlinkEvent => e.type === 'unlink');
    assert.ok(unlink, 'unlink event seen');
    assert.equal(unlink.path, join(dir, 'selfdel-copy'));
    assert.deepEqual(unlink.target, { dev: statSync(dir).dev, ino, nlink: 0 });
    assert.equal(unlink.exe.ino, ino);

    const alerts = fired(await evaluate(evs, rules), 'self-deleting-executable');
    assert.equal(alerts.length, 1, 'self-deleting-executable fires once');
    assert.equal(alerts[0].pid, pid);
    // evaluate() numbers the events 1.. in order: the alert points at the unlink of the copy's inode
    assert.deepEqual(alerts[0].events, [evs.indexOf(unlink) + 1]);
  });

  test('deleting some other file, or one of two links: not reported (only a running target or the caller\'s own exe is)', async () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'x');
    const r = spawnSync(helper, ['delete-other', victim], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const pid = r.pid!;
    const evs = await col.waitFor(pid, exited(pid));
    assert.equal(evs.find((e) => e.type === 'unlink'), undefined, 'no unlink event for a file nobody runs');
    assert.deepEqual(fired(await evaluate(evs, rules), 'self-deleting-executable'), []);

    const victim2 = join(dir, 'victim2');
    writeFileSync(victim2, 'x');
    linkSync(victim2, victim2 + '.link');
    const rm = spawnSync('rm', [victim2]);
    assert.equal(rm.status, 0);
    const evs2 = await col.waitFor(rm.pid!, exited(rm.pid!));
    assert.equal(evs2.find((e) => e.type === 'unlink'), undefined, 'no unlink event for an ordinary file');
  });

  test('env LD_PRELOAD=<a real .so> /bin/true: exec with that env, the LD_PRELOAD rule fires; without it, not', async () => {
    const so = join(dir, 'preload.so');
    const withEnv = spawnSync('env', [`LD_PRELOAD=${so}`, '/bin/true']);
    assert.equal(withEnv.status, 0);
    const plain = spawnSync('env', ['/bin/true']);
    assert.equal(plain.status, 0);
    const a = await col.waitFor(withEnv.pid!, exited(withEnv.pid!));
    const b = await col.waitFor(plain.pid!, exited(plain.pid!));
    const execA = a.filter((e): e is ExecEvent => e.type === 'exec').find((e) => e.filename === '/bin/true');
    const execB = b.filter((e): e is ExecEvent => e.type === 'exec').find((e) => e.filename === '/bin/true');
    assert.ok(execA && execB, 'both execs of /bin/true seen');
    assert.equal(execA.env?.LD_PRELOAD, so);
    assert.equal(execB.env?.LD_PRELOAD, undefined);
    const preload = async (evs: KrsiEvent[]) => fired(await evaluate(evs, rules), 'ld-preload-at-exec');
    const fa = await preload(a);
    assert.equal(fa.length, 1, 'ld-preload-at-exec fires for the preloaded exec');
    assert.equal(fa[0].pid, withEnv.pid);
    assert.deepEqual(await preload(b), []);
  });

  test('the whole environment is scanned: LD_PRELOAD after 3 KB of other variables', async () => {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    for (let i = 0; i < 60; i++) env[`KRSI_FILLER_${i}`] = 'y'.repeat(50);
    env.LD_PRELOAD = join(dir, 'preload.so');
    const r = spawnSync('/bin/true', [], { env });
    const evs = await col.waitFor(r.pid!, exited(r.pid!));
    const exec = evs.find((e): e is ExecEvent => e.type === 'exec');
    assert.equal(exec?.env?.LD_PRELOAD, env.LD_PRELOAD);
  });

  test('exe path: a path longer than the record keeps its last whole components behind /.../', async () => {
    let deep = dir;
    for (let i = 0; i < 30; i++) deep = join(deep, `level_${i}_abcdef`);
    mkdirSync(deep, { recursive: true });
    copyFileSync('/bin/true', join(deep, 'true'));
    chmodSync(join(deep, 'true'), 0o755);
    const r = spawnSync(join(deep, 'true'));
    assert.equal(r.status, 0);
    const evs = await col.waitFor(r.pid!, exited(r.pid!));
    const exec = evs.find((e): e is ExecEvent => e.type === 'exec');
    assert.ok(exec, 'exec seen');
    assert.match(exec.exe.path, /^\/\.\.\.\/level_\d+_abcdef\//);
    assert.ok(join(deep, 'true').endsWith(exec.exe.path.slice(4)), `${exec.exe.path} is the tail of the real path`);
    assert.ok(exec.exe.path.length < 256);
  });

  test('a configured watched variable is reported, an unwatched one is not', async () => {
    const r = spawnSync('/bin/true', [], { env: { KRSI_WATCH_ME: 'yes', KRSI_NOT_WATCHED: 'no', LD_AUDIT: '/x.so' } });
    const evs = await col.waitFor(r.pid!, exited(r.pid!));
    const exec = evs.find((e): e is ExecEvent => e.type === 'exec');
    assert.deepEqual(exec?.env, { KRSI_WATCH_ME: 'yes', LD_AUDIT: '/x.so' });
  });

  test('150 mprotect calls making nothing executable: filtered in the kernel, no event, no storm (issue 11)', async () => {
    const r = spawnSync(helper, ['mprotect', '150'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const pid = r.pid!;
    const evs = await col.waitFor(pid, exited(pid));
    assert.deepEqual(evs.filter((e) => e.type === 'mprotect' && e.len === 4096), []);
    const out = await evaluate(evs, rules);
    assert.equal(fired(out, 'mprotect-storm', 'verdict').length, 0);
  });
});

test('a full ring buffer: every event that did not fit is counted as lost, none silently dropped', { skip }, async () => {
  const { startSignals } = await import('../../signals/live.ts');
  const dir = mkdtempSync(join(tmpdir(), 'krsi-lost-'));
  const small = await startSignals({ lostInterval: 0, modulesInterval: 0, memRingBytes: 16 << 10 });
  try {
    const helper = join(dir, 'memory');
    assert.equal(spawnSync('cc', ['-O2', '-o', helper, fileURLToPath(new URL('./fixtures/memory.c', import.meta.url))]).status, 0, 'cc memory.c');
    const got: KrsiEvent[] = [];
    small.events$.subscribe((e) => got.push(e));
    const lost0 = small.lostByKind().mprotect ?? 0;
    // spawnSync holds the event loop: nothing drains while the helper runs, the 16 KiB bulk ring overflows
    // (2000 W->X flips: one event each)
    const r = spawnSync(helper, ['flips', '2000']);
    assert.equal(r.status, 0);
    await new Promise((res) => setTimeout(res, 300));
    const ours = got.filter((e) => e.pid === r.pid && e.type === 'mprotect').length;
    const lost = (small.lostByKind().mprotect ?? 0) - lost0;
    assert.ok(ours < 2000, `the ring overflowed (${ours} of 2000 delivered)`);
    assert.ok(lost >= 2000 - ours, `lost ${lost} >= the ${2000 - ours} missing`);
  } finally {
    await small.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
