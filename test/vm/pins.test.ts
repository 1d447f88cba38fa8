// Issue 8 in the BPF-LSM VM, one boot (test/vm/guest/pins-cases.ts): pins only root can touch, fake pins
// never trusted, link pins that do not detach while krsi runs, and the exemption of a SIGKILLed krsi.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vmAvailable, runTsInVm, bundleForVm, REPO_ROOT, VM_KERNELS, vmKernelLabel, type VmKernel, type VmResult } from './vm.ts';
import { needClang } from '../helpers/prereq.ts';
import { ensureObject } from '../../bpf/build.ts';

const refused = (r: any, re: RegExp) => {
  assert.notEqual(r, 'loaded', 'loadEnforcement went ahead');
  assert.equal(r.exitCode, 3, r.message);
  assert.match(r.message, re);
};

// one boot per kernel of the matrix (Debian's 6.1 and 6.12)
for (const kernel of VM_KERNELS) cases(kernel);

function cases(kernel: VmKernel): void {
describe(`pins and the exemption, in the VM [${vmKernelLabel(kernel)}]`, { skip: vmAvailable(kernel) ?? needClang() }, () => {
  let dir = '';
  let cli = '';
  let vm: VmResult;
  let r: any;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'krsi-vm-pins-'));
    ensureObject('enforce');
    cli = await bundleForVm(join(REPO_ROOT, 'cli/main.ts')); // the real CLI, without tsx's start-up under TCG
    vm = await runTsInVm(join(REPO_ROOT, 'test/vm/guest/pins-cases.ts'), [cli, dir], { rw: dir, timeoutMs: 500_000, kernel });
    const f = join(dir, 'results.json');
    assert.ok(existsSync(f), `guest wrote no results (code ${vm.code}):\n${vm.stdout}\n${vm.stderr}`);
    r = JSON.parse(readFileSync(f, 'utf8'));
    console.log(`# pins VM run [${vmKernelLabel(kernel)}]: ${vm.ms} ms`);
  });
  after(() => {
    if (cli) rmSync(cli, { force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the guest ran every case', () => {
    const errors = Object.entries(r).filter(([, v]: [string, any]) => v?.error).map(([k, v]: [string, any]) => `${k}: ${v.error}`);
    assert.deepEqual(errors, [], `${errors.join('\n')}\n${vm.stderr.slice(-3000)}`);
    assert.equal(vm.code, 0, vm.stderr);
  });

  test('a user who creates /sys/fs/bpf/krsi/enforce first: krsi run --mode enforce exits 3 naming it, pins nothing there', () => {
    assert.equal(r.userDir.uid, 65534);
    assert.equal(r.userDir.run.code, 3, r.userDir.run.err);
    assert.match(r.userDir.run.err, /\/sys\/fs\/bpf\/krsi(\/enforce)?.*owned by uid 65534/);
    assert.deepEqual(r.userDir.pins, []);
  });

  test('a symlink in place of the pin directory, or a world-writable one, is refused (exit 3)', () => {
    refused(r.symlinkDir.refusal, /enforce.*symlink/);
    assert.deepEqual(r.symlinkDir.targetPins, [], 'nothing was pinned into the symlink\'s target');
    refused(r.writableDir.refusal, /enforce.*writable/);
  });

  test('a symlink in place of a link pin is not trusted: replaced, and the hook denies again', () => {
    assert.equal(r.fakeLink.reused, false);
    assert.equal(r.fakeLink.symlinkLeft, false);
    assert.equal(r.fakeLink.exec, 'EPERM');
  });

  test('an impostor map pinned with the same name and shape is not trusted: replaced, and verdicts reach the programs', () => {
    assert.equal(r.fakeMap.reused, false);
    assert.equal(r.fakeMap.exec, 'EPERM');
  });

  test('programs attached from another build of enforce.o (an older krsi) are reloaded; the same build is reused', () => {
    const b = r.otherBuild;
    assert.equal(b.sameReused, true);
    assert.equal(b.reused, false);
    assert.match(b.markBefore, /^enforce\.o-[0-9a-f]{16}$/);
    assert.equal(b.markAfter, b.markBefore);
    assert.equal(b.linkReplaced, true);
  });

  test('a link pin unlinked while krsi runs does not detach the program; krsi pins it again', () => {
    const u = r.unlinkWhileRunning;
    assert.equal(u.execBefore, 'EPERM');
    assert.equal(u.execAfterUnlink, 'EPERM');
    assert.equal(u.repinned, true);
    assert.match(u.linkShow, /"type":\s*"tracing"/);
  });

  test('krsi run SIGKILLed: the kernel clears config.krsi_tgid', () => {
    assert.equal(r.killed.tgidAfter, 0, r.killed.configDump);
    assert.match(r.killed.configDump, /"krsi_tgid":\s*0\b/);
  });

  test("a process that gets the dead krsi's pid is not exempt: its verdict denies its exec (EPERM)", () => {
    const p = r.pidReuse;
    assert.equal(p.dryPid, r.killed.pid, 'ns_last_pid gave the forked process the dead krsi\'s pid');
    assert.equal(p.configTgid, 0);
    assert.match(p.out, /rc=126/);
    assert.deepEqual(p.events.filter((e: { pid: number }) => e.pid === r.killed.pid), [{ pid: r.killed.pid, op: 'exec', reason: 'TGID', rule_id: 31 }]);
  });
});
}
