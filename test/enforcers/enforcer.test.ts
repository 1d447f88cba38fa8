// Enforcer behaviour around the translation: restore after a restart or a reboot, processes that are
// gone, stale entries from an older configuration, module names with no file. (MemoryMapWriter only
// records entries: enforcement itself is checked in the VM, test/vm/e2e.test.ts.)
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Enforcer, KernelEnforcement, MemoryMapWriter, ModuleResolver, keyString } from '../../enforcers/index.ts';
import { VerdictStore, type Now } from '../../enforcers/store.ts';
import type { Verdict } from '../../engine/types.ts';
import type { DeniedEvent, KrsiEvent } from '../../signals/events.ts';
import type { CompiledRule, CompiledRuleSet } from '../../engine/rules/types.ts';

const SELF = 4242;
function withEnforcer(f: (mk: (o?: { clock?: Now; procStart?: (pid: number) => number | undefined; modules?: ModuleResolver; maps?: MemoryMapWriter }) => Enforcer, dir: string) => Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-enf-'));
    const open: Enforcer[] = [];
    try {
      await f((o = {}) => {
        const e = new Enforcer(VerdictStore.open(join(dir, 'state')), o.maps ?? new MemoryMapWriter(), {
          selfPid: SELF,
          clock: () => o.clock ?? { boot: 1_000, wall: 1e12, bootId: 'b1' },
          procStart: o.procStart ?? (() => 77),
          modules: o.modules,
        });
        open.push(e);
        return e;
      }, dir);
    } finally {
      for (const e of open) await e.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    }
  };
}
const pidV = (pid: number, ttl = 0, ts = 1_000): Verdict => ({ id: `r:quarantine:pid:${pid}`, rule: 'r', op: 'quarantine', subject: { kind: 'pid', pid }, ts, ttl_ns: ttl, expires: ttl ? ts + ttl : 0, mode: 'enforce' });
const inoV = (ino: number, ttl = 0, ts = 1_000): Verdict => ({ id: `r:exec:inode:9:${ino}`, rule: 'r', op: 'exec', subject: { kind: 'inode', dev: 9, ino }, ts, ttl_ns: ttl, expires: ttl ? ts + ttl : 0, mode: 'enforce' });

describe('enforcer', () => {
  test('a restart restores stored verdicts into empty maps, with the same deadlines', withEnforcer(async (mk) => {
    const a = mk();
    assert.equal(a.apply(pidV(100, 5_000)), true);
    assert.equal(a.apply(inoV(7)), true);
    await a.close();
    const maps = new MemoryMapWriter();
    const b = mk({ maps, clock: { boot: 2_000, wall: 1e12 + 1, bootId: 'b1' } });
    assert.equal(b.restore(), 2);
    assert.deepEqual(maps.entries.get('deny_tgid:100')?.value, { ops: 7, expires: 6_000, rule_id: b.store.ruleId('r') });
    assert.deepEqual(maps.entries.get('deny_inode:9:7')?.value.expires, 0);
  }));

  test('restore drops expired verdicts, pids whose process is gone or was replaced, and pids after a reboot', withEnforcer(async (mk) => {
    const a = mk();
    a.apply(pidV(100)); a.apply(pidV(101)); a.apply(pidV(102)); a.apply(pidV(103, 500)); a.apply(inoV(8, 10_000));
    await a.close();
    const maps = new MemoryMapWriter();
    const b = mk({ maps, clock: { boot: 2_000, wall: 1e12, bootId: 'b1' }, procStart: (p) => (p === 100 ? 77 : p === 101 ? 78 : undefined) });
    assert.equal(b.restore(), 2); // 100 (same process) and the inode; 101 reused, 102 gone, 103 expired
    assert.deepEqual([...maps.entries.keys()].sort(), ['deny_inode:9:8', 'deny_tgid:100']);
    await b.close();
    // another boot: the pid is meaningless, the inode verdict keeps its remaining wall-clock time
    const maps2 = new MemoryMapWriter();
    const c = mk({ maps: maps2, clock: { boot: 50, wall: 1e12, bootId: 'b2' } });
    assert.equal(c.restore(), 1);
    assert.deepEqual([...maps2.entries.keys()], ['deny_inode:9:8']);
  }));

  test('pid verdicts: never pid 1 or krsi, not a process that is gone; an exit ends them', withEnforcer(async (mk) => {
    const e = mk({ procStart: (p) => (p === 300 ? undefined : 5) });
    assert.equal(e.apply(pidV(1)), false);
    assert.equal(e.apply(pidV(SELF)), false);
    assert.equal(e.apply(pidV(300)), false);
    assert.equal(e.apply(pidV(301)), true);
    e.exited(301);
    assert.deepEqual(e.list(), []);
    assert.equal(e.store.get('r:quarantine:pid:301'), undefined);
  }));

  test('an exit also deletes the map entry: one written after the kernel\'s exit cleaner ran must not deny the pid\'s next process', withEnforcer(async (mk) => {
    const maps = new MemoryMapWriter();
    const e = mk({ maps, procStart: () => 5 });
    assert.equal(e.apply(pidV(302)), true);
    assert.ok(maps.get({ map: 'deny_tgid', tgid: 302 }));
    e.exited(302);
    assert.equal(maps.get({ map: 'deny_tgid', tgid: 302 }), undefined);
  }));

  test('a fork naming a pid krsi still holds a verdict for (its exit was lost): the dead process\'s records go', withEnforcer(async (mk) => {
    const starts = new Map<number, number>([[500, 5], [600, 5], [700, 5], [7, 3], [8, 3]]);
    const maps = new MemoryMapWriter();
    const e = mk({ maps, procStart: (p) => starts.get(p) });
    assert.equal(e.apply(pidV(500)), true);
    e.forked(500, 500); // a thread: the same process
    assert.deepEqual(e.list().map((v) => v.id), ['r:quarantine:pid:500']);
    // pid 500 exited unseen (its entry, written by krsi, outlived the kernel's exit cleaner); pid 7,
    // with no verdict, forks a new 500: nothing was copied, so the stale entry leaves the map too
    starts.set(500, 9);
    e.forked(7, 500);
    assert.deepEqual(e.list(), []);
    assert.equal(e.store.get('r:quarantine:pid:500'), undefined);
    assert.equal(maps.get({ map: 'deny_tgid', tgid: 500 }), undefined);
    // a later verdict on the new process does not merge with the dead one's
    assert.equal(e.apply({ ...pidV(500, 5_000), id: 'r2:mprotect_exec:pid:500', rule: 'r2', op: 'mprotect_exec' }), true);
    assert.deepEqual(maps.get({ map: 'deny_tgid', tgid: 500 })?.ops, 2);

    // the parent holds a live verdict: krsi_fork copied it over the child's slot; the kernel's copy stays
    assert.equal(e.apply(pidV(600)), true);
    assert.equal(e.apply(pidV(8)), true);
    starts.set(600, 9);
    maps.put({ map: 'deny_tgid', tgid: 600 }, maps.get({ map: 'deny_tgid', tgid: 8 })!); // what krsi_fork did
    e.forked(8, 600);
    assert.deepEqual(e.list().map((v) => v.id).sort(), ['r2:mprotect_exec:pid:500', 'r:quarantine:pid:8', 'r:quarantine:pid:8@pid:600']);
    assert.ok(maps.get({ map: 'deny_tgid', tgid: 600 }));

    // a verdict applied to the new process before its (late) fork event: same start time, kept
    assert.equal(e.apply(pidV(700)), true);
    e.forked(7, 700);
    assert.ok(e.list().some((v) => v.id === 'r:quarantine:pid:700'));
    assert.ok(maps.get({ map: 'deny_tgid', tgid: 700 }));
  }));

  test('sweep: verdicts past their deadline leave the maps and the store; the others stay', withEnforcer(async (mk) => {
    const maps = new MemoryMapWriter();
    const e = mk({ maps, procStart: () => 5 });
    assert.equal(e.apply(pidV(100, 500)), true); // expires at 1_500
    assert.equal(e.apply(inoV(7, 10_000)), true);
    assert.equal(e.apply(inoV(8)), true); // no expiry
    assert.equal(e.sweep(1_499), 0);
    assert.equal(e.sweep(1_500), 1);
    assert.equal(maps.get({ map: 'deny_tgid', tgid: 100 }), undefined);
    assert.equal(e.store.get('r:quarantine:pid:100'), undefined);
    assert.deepEqual(e.list().map((v) => v.id).sort(), ['r:exec:inode:9:7', 'r:exec:inode:9:8']);
    assert.equal(e.sweep(1e15), 1);
    assert.deepEqual([...maps.entries.keys()], [keyString({ map: 'deny_inode', dev: 9, ino: 8 })]);
  }));

  test('sweep: a short verdict merged into a longer entry stays until the entry expires (its bits may be the long one\'s)', withEnforcer(async (mk) => {
    const maps = new MemoryMapWriter();
    const e = mk({ maps, procStart: () => 5 });
    assert.equal(e.apply(pidV(100)), true); // permanent quarantine
    assert.equal(e.apply({ ...pidV(100, 500), id: 'r2:exec:pid:100', rule: 'r2', op: 'exec' }), true); // exec bit, 500 ns
    assert.equal(e.sweep(1e15), 0);
    assert.equal(maps.get({ map: 'deny_tgid', tgid: 100 })?.ops, 7, 'the process still cannot exec');
  }));

  test('an inode verdict on the node binary krsi runs on is never applied (krsi\'s hash reader and krsi verdicts run on it)', withEnforcer(async (mk) => {
    const { kernelFileId } = await import('../../enforcers/maps.ts');
    const node = kernelFileId(process.execPath);
    const maps = new MemoryMapWriter();
    const e = mk({ maps });
    const v: Verdict = { id: `r:exec:inode:${node.dev}:${node.ino}`, rule: 'r', op: 'exec', subject: { kind: 'inode', dev: node.dev, ino: node.ino }, ts: 1_000, ttl_ns: 0, expires: 0, mode: 'enforce' };
    assert.equal(e.apply(v), false);
    assert.equal(maps.get({ map: 'deny_inode', dev: node.dev, ino: node.ino }), undefined);
    assert.equal(e.apply(inoV(5)), true, 'another inode is applied');
  }));

  test('a verdict already expired is not applied; an unknown module name is not applied', withEnforcer(async (mk) => {
    const e = mk({ modules: new ModuleResolver('/nonexistent') });
    assert.equal(e.apply(pidV(100, 10, 100)), false);
    assert.equal(e.apply({ id: 'r:module_load:module:nope', rule: 'r', op: 'module_load', subject: { kind: 'module', name: 'nope' }, ts: 1_000, ttl_ns: 0, expires: 0, mode: 'enforce' }), false);
    assert.throws(() => e.apply({ ...inoV(5), op: 'quarantine' }), /cannot apply to a inode/);
  }));

  test('module names resolve to .ko files (dashes and underscores alike) under the modules dir', withEnforcer(async (_mk, dir) => {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'mods/kernel/drivers/net'), { recursive: true });
    writeFileSync(join(dir, 'mods/kernel/drivers/net/dummy.ko'), '');
    writeFileSync(join(dir, 'mods/kernel/drivers/net/snd-dummy.ko.xz'), '');
    const m = new ModuleResolver(join(dir, 'mods'));
    assert.equal(m.inode('dummy')?.ino, statSync(join(dir, 'mods/kernel/drivers/net/dummy.ko')).ino);
    assert.equal(m.path('snd_dummy'), join(dir, 'mods/kernel/drivers/net/snd-dummy.ko.xz'));
    assert.equal(m.inode('nope'), undefined);
  }));

  test('module lists report the names with no .ko on this kernel; an allowlist with none at all is flagged', withEnforcer(async (mk, dir) => {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'mods/kernel/drivers/net'), { recursive: true });
    writeFileSync(join(dir, 'mods/kernel/drivers/net/dummy.ko'), '');
    const rules = (names: string[]) =>
      ({ rules: [{ id: 'allow', mode: 'enforce', kernel: { module_allowlist: 'ok' }, source: {} } as unknown as CompiledRule], lists: { ok: new Set(names) }, byType: new Map() }) as unknown as CompiledRuleSet;
    const maps = new MemoryMapWriter();
    const e = mk({ maps, modules: new ModuleResolver(join(dir, 'mods')) });
    e.configure(rules(['dummy', 'ext4', 'vfat']));
    assert.deepEqual(e.moduleLists, [{ map: 'module_allow', rule: 'allow', names: 3, files: 1, missing: ['ext4', 'vfat'] }]);
    assert.equal([...maps.entries.keys()].filter((k) => k.startsWith('module_allow')).length, 1);
    e.configure(rules(['ext4']));
    assert.deepEqual(e.moduleLists.map((s) => [s.files, s.names]), [[0, 1]], 'every module load from a file would be refused');
  }));

  test('reconcile deletes entries an older configuration left behind, keeps what is wanted', withEnforcer(async (mk, dir) => {
    const maps = new MemoryMapWriter();
    const stalePath = join(dir, 'old-vuln');
    writeFileSync(stalePath, '');
    const st = statSync(stalePath);
    maps.put({ map: 'deny_inode', dev: st.dev, ino: st.ino }, { ops: 1, expires: 0, rule_id: 3 });
    maps.put({ map: 'module_allow', dev: 1, ino: 2 }, { ops: 4, expires: 0, rule_id: 3 });
    const e = mk({ maps });
    e.apply(pidV(100));
    const rules = { rules: [{ id: 'k', mode: 'enforce', kernel: { mprotect_limit: 50 }, source: {} } as unknown as CompiledRule], lists: {}, byType: new Map() } as CompiledRuleSet;
    e.configure(rules);
    assert.equal(e.reconcile(), 2);
    assert.deepEqual([...maps.entries.keys()], [keyString({ map: 'deny_tgid', tgid: 100 })]);
    assert.equal(maps.cfg?.mprotect_limit, 50);
    assert.equal(maps.cfg?.krsi_tgid, SELF);
    e.release();
    assert.equal(maps.cfg?.krsi_tgid, 0, 'a stopped krsi\'s pid is exempt no more');
    assert.equal(maps.cfg?.mprotect_limit, 50);
  }));

  test('fork: the child\'s inherited copy is recorded, restored after a restart, and lifted with its parent\'s verdict', withEnforcer(async (mk) => {
    const maps = new MemoryMapWriter();
    const a = mk({ maps });
    a.apply(pidV(200, 5_000));
    // the kernel (krsi_fork) copied the parent's entry to 201; 202's fork happened before the verdict (no copy)
    maps.put({ map: 'deny_tgid', tgid: 201 }, maps.get({ map: 'deny_tgid', tgid: 200 })!);
    assert.equal(a.forked(200, 201, 1_500), 1);
    assert.equal(a.forked(200, 202, 1_500), 0, 'the kernel holds no copy: nothing recorded');
    assert.deepEqual(a.list().map((v) => v.id).sort(), ['r:quarantine:pid:200', 'r:quarantine:pid:200@pid:201']);
    await a.close();
    const maps2 = new MemoryMapWriter();
    const b = mk({ maps: maps2, clock: { boot: 2_000, wall: 1e12, bootId: 'b1' } });
    assert.equal(b.restore(), 2);
    assert.deepEqual(maps2.get({ map: 'deny_tgid', tgid: 201 }), { ops: 7, expires: 6_000, rule_id: b.store.ruleId('r') });
    assert.equal(b.deniedOut({ ts: 2_100, type: 'denied', pid: 201, ppid: 200, uid: 0, comm: 'c', exe: { path: '', dev: 0, ino: 0 }, op: 'exec', key: { pid: 201 }, reason: 'TGID', rule_id: 1 } as never).verdict, 'r:quarantine:pid:200');
    assert.equal(b.remove('r:quarantine:pid:200'), true);
    assert.equal(maps2.get({ map: 'deny_tgid', tgid: 201 }), undefined, 'the child\'s copy went with the parent\'s verdict');
    assert.deepEqual(b.store.list(), []);
  }));

  test('reconcile keeps (adopts) a live deny_tgid entry of a running process it does not know: a copy made at a fork while krsi was down', withEnforcer(async (mk) => {
    const maps = new MemoryMapWriter();
    const a = mk({ maps, procStart: (p) => (p === 301 ? 5 : undefined) });
    const rid = a.store.ruleId('ld-preload');
    maps.put({ map: 'deny_tgid', tgid: 301 }, { ops: 7, expires: 9_000, rule_id: rid }); // running child
    maps.put({ map: 'deny_tgid', tgid: 302 }, { ops: 7, expires: 9_000, rule_id: rid }); // process gone
    maps.put({ map: 'deny_tgid', tgid: 303 }, { ops: 7, expires: 500, rule_id: rid }); // expired
    assert.equal(a.reconcile(), 2);
    assert.deepEqual([...maps.entries.keys()], ['deny_tgid:301']);
    assert.deepEqual(a.list().map((v) => [v.id, v.rule, v.op]), [['kernel:inherited@pid:301', 'ld-preload', 'quarantine']]);
    assert.equal(a.remove('kernel:inherited@pid:301'), true, 'krsi verdicts rm lifts it');
    assert.equal(maps.entries.size, 0);
  }));
});

describe('the live Enforcement (KernelEnforcement)', () => {
  test('apply writes the maps and says whether it took effect; a verdict the kernel cannot take is not applied, krsi goes on', withEnforcer(async (mk) => {
    const maps = new MemoryMapWriter();
    const k = new KernelEnforcement(mk({ maps, procStart: (p) => (p === 300 ? undefined : 5) }), () => 2_000);
    assert.equal(k.apply(pidV(100)), true);
    assert.equal(maps.entries.get('deny_tgid:100')?.value.ops, 7);
    assert.equal(k.apply(pidV(SELF)), false, 'krsi itself');
    assert.equal(k.apply(pidV(300)), false, 'a process already gone');
    assert.equal(k.apply({ ...inoV(7), op: 'mprotect_exec' }), false, 'an op/subject pair with no map');
    assert.equal(k.latency().event_to_map.count, 1);
  }));

  test('check answers nothing and keeps the books: exit ends a pid verdict, fork records the copy the kernel made', withEnforcer(async (mk) => {
    const maps = new MemoryMapWriter();
    const e = mk({ maps });
    const k = new KernelEnforcement(e, () => 2_000);
    const ev = (type: string, pid: number, extra = {}): KrsiEvent => ({ ts: 1_500, type, pid, ppid: 1, uid: 0, comm: 'c', exe: { path: '/c', dev: 1, ino: 1 }, ...extra }) as KrsiEvent;
    k.apply(pidV(200));
    maps.put({ map: 'deny_tgid', tgid: 201 }, maps.get({ map: 'deny_tgid', tgid: 200 })!); // krsi_fork's copy
    assert.equal(k.check(ev('fork', 200, { child_pid: 201 })), undefined);
    assert.deepEqual(e.list().map((v) => v.id).sort(), ['r:quarantine:pid:200', 'r:quarantine:pid:200@pid:201']);
    assert.equal(k.check(ev('exit', 200, { code: 0 })), undefined);
    assert.deepEqual(e.list().map((v) => v.id), ['r:quarantine:pid:200@pid:201']);
    assert.equal(maps.get({ map: 'deny_tgid', tgid: 200 }), undefined);
    // a kernel record of the child's refused exec names the parent's verdict
    const d = k.denied(ev('denied', 201, { op: 'exec', key: { pid: 201 }, reason: 'TGID' }) as DeniedEvent);
    assert.deepEqual([d.verdict, d.rule], ['r:quarantine:pid:200', 'r']);
    assert.deepEqual(k.sizes(), { entries: 1, lists: 0, verdicts: 1 });
  }));
});
