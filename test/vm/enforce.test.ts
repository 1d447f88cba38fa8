// Kernel-side enforcement, proven in a BPF-LSM VM: one boot runs every case (test/vm/guest/enforce-cases.ts)
// and these tests assert what the guest observed, each with its positive and its negative.
// The expected denials follow engine/enforcement/semantics.ts (SEMANTICS).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MAP_NAMES, PROG_NAMES } from '../../enforcers/maps.ts';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vmAvailable, runTsInVm, REPO_ROOT, VM_KERNELS, vmKernelLabel, type VmKernel, type VmResult } from './vm.ts';
import { needCc, needClang } from '../helpers/prereq.ts';
import { ensureObject } from '../../bpf/build.ts';

const EPERM = 1;
// every case on each kernel of the matrix (Debian's 6.1 and 6.12): one boot per kernel
for (const kernel of VM_KERNELS) cases(kernel);

function cases(kernel: VmKernel): void {
const skip = vmAvailable(kernel) ?? needCc() ?? needClang();

interface Run { code: number | null; out: string; pid: number }
interface Ev { pid: number; op: string; reason: string; key: Record<string, unknown>; rule_id: number; enforced: boolean; comm: string }

describe(`BPF-LSM enforcement in the VM [${vmKernelLabel(kernel)}]`, { skip }, () => {
  let dir = '';
  let vm: VmResult;
  let r: any;
  let pid1 = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'krsi-vm-enforce-'));
    // C probes built on the host, static (the guest shares the host's /, but static avoids ld.so's mprotects)
    const cc = spawnSync('cc', ['-O2', '-Wall', '-static', '-o', join(dir, 'vmhelper'), join(REPO_ROOT, 'test/vm/helpers/vmhelper.c')], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    ensureObject('enforce'); // CO-RE object built here, relocated against the guest kernel's BTF at load
    vm = await runTsInVm(join(REPO_ROOT, 'test/vm/guest/enforce-cases.ts'), [join(dir, 'vmhelper'), dir], { rw: dir, timeoutMs: 400_000, kernel });
    const f = join(dir, 'results.json');
    assert.ok(existsSync(f), `guest wrote no results (code ${vm.code}):\n${vm.stdout}\n${vm.stderr}`);
    r = JSON.parse(readFileSync(f, 'utf8'));
    pid1 = existsSync(join(dir, 'pid1.out')) ? readFileSync(join(dir, 'pid1.out'), 'utf8') : '';
    console.log(`# enforcement VM run [${vmKernelLabel(kernel)}]: ${vm.ms} ms (boot + load + cases; cases alone ${r.casesMs} ms)`);
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const events = (pred: (e: Ev) => boolean): Ev[] => (r.events as Ev[]).filter(pred);

  test('the guest ran every case and exited 0', () => {
    assert.equal(vm.code, 0, vm.stderr);
  });

  test('krsi status features: every signal and enforcement program finds its hook or tracepoint in this kernel', () => {
    const f = r.features as import('../../bpf/features.ts').KernelFeatures;
    assert.equal(f.btf, true);
    // hooks that came after 6.1, which signals/live.ts loads only where they exist (the LSM hooks cover them there)
    const newer: Record<string, string> = {
      krsi_uring_submit: 'io_uring_submit_req (6.4)', krsi_uring_complete: 'io_uring_complete (6.4 layout)', krsi_lsm_file_truncate: 'file_truncate (6.2)',
    };
    const missing = f.programs.filter((p) => p.present !== true && !(p.object === 'signals' && newer[p.program])).map((p) => `${p.object}/${p.program} (${p.needs}): ${p.present}`);
    assert.deepEqual(missing, []);
    assert.ok(f.programs.some((p) => p.section === 'lsm/bprm_check_security'));
    assert.ok(f.programs.some((p) => p.section === 'tp_btf/module_load'), 'module signals are checked too');
    assert.equal(f.enums['kernel_read_file_id.READING_MODULE'], true);
  });

  test('exec: a deny-listed binary fails with EPERM; an identical copy at another inode runs', () => {
    assert.equal(r.exec.denied.out, `errno=${EPERM}`);
    assert.equal(r.exec.denied.code, 100);
    assert.equal(r.exec.other.code, 0, r.exec.other.out);
    const ev = events((e) => e.pid === r.exec.denied.pid);
    assert.equal(ev.length, 1);
    assert.deepEqual([ev[0].op, ev[0].reason, ev[0].rule_id, ev[0].enforced], ['exec', 'INODE', 11, true]);
    assert.equal(events((e) => e.pid === r.exec.other.pid).length, 0);
  });

  test("overlayfs: a key from kernelFileId() denies the file; stat()'s (the layer's pseudo device) would not match", () => {
    assert.equal(r.overlay.kernelId.out, `errno=${EPERM}`);
    assert.equal(r.overlay.statId.code, 0, r.overlay.statId.out);
    assert.notEqual(r.overlay.statDev, r.overlay.kernelDev);
  });

  test('monitor mode (config.enforce 0): the denied binary runs and the denial is recorded as not enforced', () => {
    assert.equal(r.monitor.denied.code, 0, r.monitor.denied.out);
    const ev = events((e) => e.pid === r.monitor.denied.pid);
    assert.equal(ev.length, 1);
    assert.equal(ev[0].enforced, false);
  });

  test("mprotect counter (the talk's example, counting W->X flips): a process's 101st flip fails with EPERM; another process is unaffected", () => {
    const a = r.mprotectLimit.a;
    const m = /^fail=(\d+) errno=(\d+)$/.exec(a.out);
    assert.ok(m, a.out);
    // base: the process's flips before the helper's loop (none: the static startup's RELRO mprotect is not one)
    assert.equal(a.base + Number(m[1]), 101, `failed at the process's mprotect #${a.base + Number(m[1])}`);
    assert.equal(Number(m[2]), EPERM);
    assert.equal(r.mprotectLimit.b.out, 'ok=50', 'another process (50 calls, after the first was denied) is unaffected');
    const ev = events((e) => e.pid === a.pid);
    assert.equal(ev.length, 1, 'the denial is recorded (the helper stops at its first failure)');
    assert.deepEqual([ev[0].op, ev[0].reason], ['mprotect_exec', 'MPROTECT_LIMIT']);
    assert.equal(events((e) => e.pid === r.mprotectLimit.b.pid).length, 0);
    assert.equal(r.mprotectLimit.countKeptAfterExitA, false, 'the counter is cleared when the process exits');
  });

  test('tgid verdict: MPROTECT_EXEC denies that process; an EXEC-only verdict leaves its mprotect alone; both cleared at exit', () => {
    assert.equal(r.tgid.c.out, `fail=1 errno=${EPERM}`);
    assert.equal(r.tgid.d.out, 'ok=3');
    const ev = events((e) => e.pid === r.tgid.c.pid);
    assert.deepEqual([ev[0].op, ev[0].reason, ev[0].rule_id], ['mprotect_exec', 'TGID', 12]);
    assert.equal(r.tgid.clearedOnExit, true);
  });

  test("krsi's own tgid is never denied (config.krsi_tgid), whatever deny_tgid says; the same verdict denies anyone else", () => {
    assert.equal(r.self.asKrsi.out, 'ok=3');
    assert.equal(r.self.notKrsi.out, `fail=1 errno=${EPERM}`);
    assert.deepEqual(r.self.node, { rc: 0, errno: 0 }, 'the quarantined krsi process itself could mprotect(PROT_EXEC)');
    assert.equal(events((e) => e.pid === r.self.asKrsi.pid || e.pid === r.selfPid).length, 0);
  });

  test('pid 1 is never denied: quarantined pid 1 execs a deny-listed binary that mprotects PROT_EXEC; another process cannot exec it', () => {
    assert.equal(r.pid1Negative.out, `errno=${EPERM}`);
    assert.equal(pid1.trim(), 'pid=1 mprotect=0');
    assert.equal(events((e) => e.pid === 1).length, 0);
  });

  test('restart: a second load reuses the pinned programs and maps (entries survive); a reload keeps the maps and still denies', () => {
    assert.equal(r.restart.reused, true);
    assert.equal(r.restart.reusedEntry, true);
    assert.equal(r.restart.reloaded, true);
    assert.equal(r.restart.reloadedEntry, true);
    assert.equal(r.restart.afterReload.out, `errno=${EPERM}`);
  });

  test('unload: every pin under /sys/fs/bpf/krsi/enforce goes, the programs detach, the denied binary runs again', () => {
    assert.equal(r.unload.pins, PROG_NAMES.length + MAP_NAMES.length); // a link per program + the maps
    assert.equal(r.unload.loaded, false);
    assert.equal(r.unload.dirGone, true);
    assert.equal(r.unload.afterUnload.code, 0, r.unload.afterUnload.out);
    assert.equal(events((e) => e.pid === r.unload.afterUnload.pid).length, 0);
  });

  test('TTL: a verdict denies before its deadline and expires in the kernel after it (entry still in the map)', () => {
    assert.equal(r.ttl.beforeInTime, true, 'the first exec ran before the deadline');
    assert.equal(r.ttl.before.out, `errno=${EPERM}`);
    assert.equal(r.ttl.after.code, 0, r.ttl.after.out);
    assert.equal(r.ttl.entryStillThere, true);
    assert.equal(events((e) => e.pid === r.ttl.after.pid).length, 0);
  });

  test('modules, allowlist: busybox insmod of a module not allowed fails with EPERM; an allowed one loads', () => {
    assert.equal(r.moduleAllow.notAllowed.code, 1);
    assert.match(r.moduleAllow.notAllowed.out, /Operation not permitted/);
    assert.equal(r.moduleAllow.ifbLoaded, false);
    assert.equal(r.moduleAllow.allowed.code, 0, r.moduleAllow.allowed.out);
    assert.equal(r.moduleAllow.dummyLoaded, true, '/proc/modules lists dummy');
    // busybox tries finit_module (file: not on the list), then init_module from memory (refused in allowlist mode)
    const ev = events((e) => e.pid === r.moduleAllow.notAllowed.pid);
    assert.deepEqual(ev.map((e) => [e.op, e.reason, 'ino' in e.key]), [['module_load', 'MODULE_ALLOW', true], ['module_load', 'MODULE_ALLOW', false]]);
    assert.equal(events((e) => e.pid === r.moduleAllow.allowed.pid).length, 0);
  });

  test('modules, denylist: finit_module of a listed module file fails with EPERM; another module loads', () => {
    assert.equal(r.moduleDeny.listed.out, `errno=${EPERM}`);
    assert.equal(r.moduleDeny.nlmonLoaded, false);
    assert.equal(r.moduleDeny.other.out, 'ok');
    assert.equal(r.moduleDeny.bfsLoaded, true);
    const ev = events((e) => e.pid === r.moduleDeny.listed.pid);
    assert.deepEqual(ev.map((e) => [e.op, e.reason, e.rule_id]), [['module_load', 'MODULE_DENY', 18]]);
  });

  test('modules, compressed (.ko.xz through finit_module(MODULE_INIT_COMPRESSED_FILE), where the kernel ships them): refused unless on the allowlist', (t) => {
    if (!r.moduleCompressed) {
      t.skip(`${vmKernelLabel(kernel)} ships plain .ko modules`);
      return;
    }
    const m = r.moduleCompressed;
    assert.equal(m.notAllowed.out, `errno=${EPERM}`);
    assert.equal(m.qnx4Loaded, false);
    assert.equal(m.allowed.out, 'ok', 'the allowed compressed module loads');
    assert.equal(m.qnx6Loaded, true);
    const ev = events((e) => e.pid === m.notAllowed.pid);
    assert.deepEqual(ev.map((e) => [e.op, e.reason]), [['module_load', 'MODULE_ALLOW']]);
    assert.equal(events((e) => e.pid === m.allowed.pid).length, 0);
  });

  test('modules, tgid verdict (MODULE_LOAD bit): that process cannot load a module; another process can', () => {
    assert.equal(r.moduleTgid.denied.out, `errno=${EPERM}`);
    assert.equal(r.moduleTgid.vethLoaded, false);
    assert.equal(r.moduleTgid.other.out, 'ok');
    assert.equal(r.moduleTgid.minixLoaded, true);
    const ev = events((e) => e.pid === r.moduleTgid.denied.pid);
    assert.deepEqual(ev.map((e) => [e.op, e.reason, e.rule_id]), [['module_load', 'TGID', 20]]);
  });

  test('quarantine through fork: the child of a quarantined process inherits the entry (same expiry) and cannot exec; an unrelated process can', () => {
    const f = r.fork;
    assert.ok(f.child > 0, f.parent.out);
    assert.deepEqual(f.childEntry, { expires: f.expires, ops: 7, rule_id: 22 }, 'the child has the parent\'s deny_tgid entry');
    assert.match(f.parent.out, new RegExp(`child errno=${EPERM}`));
    assert.match(f.parent.out, /status=100/);
    assert.equal(f.unrelated.code, 0, f.unrelated.out);
    const ev = events((e) => e.pid === f.child);
    assert.deepEqual(ev.map((e) => [e.op, e.reason, e.rule_id]), [['exec', 'TGID', 22]]);
    assert.equal(events((e) => e.pid === f.unrelated.pid).length, 0);
    assert.equal(f.childClearedOnExit, true, 'the inherited entry ends with the child');
  });

  test('overlayfs: the enforcer\'s keys from paths (deny_exec_paths, a module name) deny on the guest\'s overlay /', () => {
    const o = r.enforcerOverlay;
    assert.equal(o.applied, true);
    assert.equal(o.exec.out, `errno=${EPERM}`);
    assert.equal(o.mod.out, `errno=${EPERM}`);
    assert.equal(o.ifbLoaded, false);
    assert.equal(o.after.code, 0, 'deny_exec_paths gone from the rules: the binary runs again');
    assert.deepEqual(events((e) => e.pid === o.exec.pid).map((e) => [e.op, e.reason]), [['exec', 'INODE']]);
    assert.deepEqual(events((e) => e.pid === o.mod.pid).map((e) => [e.op, e.reason]), [['module_load', 'INODE']]);
  });

  test('modules, denylist + busybox insmod: the file load and its fallback from memory are both refused; another process from memory is not (a denylist is weak)', () => {
    const m = r.moduleDenyFallback;
    assert.equal(m.listed.code, 1, m.listed.out);
    assert.match(m.listed.out, /Operation not permitted/);
    assert.equal(m.loadedAfterListed, false, 'busybox insmod did not get the module in through init_module');
    const ev = events((e) => e.pid === m.listed.pid);
    assert.deepEqual(ev.map((e) => [e.op, e.reason, e.rule_id, 'ino' in e.key]), [['module_load', 'MODULE_DENY', 23, true], ['module_load', 'MODULE_DENY', 23, false]]);
    assert.equal(m.fromMemory.out, 'ok', 'documented limit: init_module from another process is not on an inode denylist');
    assert.equal(m.loadedAfterMemory, true);
  });

  test('sweep: an expired verdict leaves the pinned map; a short one merged into a permanent entry does not', () => {
    const s = r.sweep;
    assert.equal(s.deniedBefore.out, `errno=${EPERM}`, 'the short verdict denied before its deadline');
    assert.equal(s.swept, 1, 'only the verdict whose whole entry expired');
    assert.equal(s.shortEntry, false, 'its map entry is gone');
    assert.equal(s.shortRuns.code, 0, s.shortRuns.out);
    assert.equal(s.longEntry, true);
    assert.equal(s.longDenied.out, `errno=${EPERM}`, 'the permanent verdict still denies');
  });

  test('every denial reached the ring buffer and the per-reason counters agree; nothing lost', () => {
    const byReason: Record<string, number> = {};
    for (const e of r.events as Ev[]) byReason[e.reason] = (byReason[e.reason] ?? 0) + 1;
    assert.deepEqual(r.counts, byReason);
    assert.equal(r.lost, 0);
  });
});
}
