// Self-protection while enforcing, proven in the BPF-LSM VM: one boot (test/vm/guest/protect-cases.ts) runs
// `krsi run --mode enforce`, attacks it as another root process (bpftool on its maps and links, rm/mv of its
// pins, umount of bpffs, ptrace / process_vm_readv / /proc/PID/mem, SIGSTOP), checks the negatives (other
// processes' bpf, ptrace and unlink; `krsi verdicts` through the control socket; krsi's own map updates),
// then shows the same attacks succeed against `krsi run --no-self-protect`.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vmAvailable, runTsInVm, bundleForVm, REPO_ROOT, VM_KERNELS, vmKernelLabel, type VmKernel, type VmResult } from './vm.ts';
import { needCc, needClang } from '../helpers/prereq.ts';
import { ensureObject } from '../../bpf/build.ts';

const EPERM = 1;
const EACCES = 13;

interface Cmd { code: number | null; out: string; pid: number }
interface Out { kind: string; op: string; pid: number; reason?: string; key?: Record<string, number>; enforced?: boolean; verdict?: string; rule?: string }

// every case on each kernel of the matrix (Debian's 6.1 and 6.12): one boot per kernel
for (const kernel of VM_KERNELS) cases(kernel);

function cases(kernel: VmKernel): void {
const skip = vmAvailable(kernel) ?? needCc() ?? needClang();

describe(`self-protection in the VM [${vmKernelLabel(kernel)}]`, { skip }, () => {
  let dir = '';
  let cli = '';
  let vm: VmResult;
  let r: any;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'krsi-vm-protect-'));
    const cc = spawnSync('cc', ['-O2', '-Wall', '-static', '-o', join(dir, 'protecthelper'), join(REPO_ROOT, 'test/vm/helpers/protecthelper.c')], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    for (const o of ['signals', 'enforce', 'protect']) ensureObject(o); // CO-RE objects, built here
    cli = await bundleForVm(join(REPO_ROOT, 'cli/main.ts')); // `krsi` without tsx's start-up cost under TCG
    vm = await runTsInVm(join(REPO_ROOT, 'test/vm/guest/protect-cases.ts'), [cli, join(dir, 'protecthelper'), dir], { rw: dir, timeoutMs: 900_000, kernel });
    const f = join(dir, 'results.json');
    assert.ok(existsSync(f), `guest wrote no results (code ${vm.code}):\n${vm.stdout}\n${vm.stderr}`);
    r = JSON.parse(readFileSync(f, 'utf8'));
    console.log(`# self-protection VM run [${vmKernelLabel(kernel)}, guest ${r.kernel}]: ${vm.ms} ms; steps:\n# ${r.steps.join('\n# ')}`);
    for (const [k, c] of Object.entries({ ...r.attacks, ...r.off } as Record<string, Cmd>)) if (c?.out !== undefined) console.log(`# ${k}: ${c.code} ${c.out.split('\n').pop()}`);
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (cli) rmSync(cli, { force: true });
  });

  const refused = (c: Cmd, what: string) => {
    assert.notEqual(c.code, 0, `${what} succeeded: ${c.out}`);
    assert.match(c.out, /Operation not permitted|EPERM|must be superuser/, `${what}: ${c.out}`); // util-linux umount words EPERM so
  };
  const tamper = (reason: string, pid?: number): Out[] => (r.tampers1 as Out[]).filter((e) => e.reason === reason && (pid === undefined || e.pid === pid));

  test('the guest ran every case', () => {
    assert.equal(r.error, undefined, `${r.error}\n--- krsi #1 stderr:\n${r.stderr1}\n--- krsi #2 stderr:\n${r.stderr2}`);
    assert.equal(vm.code, 0, vm.stderr.slice(-3000));
  });

  test("another root process cannot open krsi's maps: bpftool map update / delete / dump are refused", () => {
    refused(r.attacks.mapUpdate, 'bpftool map update deny_tgid');
    refused(r.attacks.mapDelete, 'bpftool map delete deny_inode');
    refused(r.attacks.mapDump, 'bpftool map dump config');
    const ev = tamper('TAMPER_MAP', r.attacks.mapUpdate.pid);
    assert.ok(ev.length >= 1, 'a denied op:tamper event for the map open');
    assert.equal(ev[0].enforced, true);
    assert.ok(ev[0].key!.map_id > 0);
  });

  test('an fd on the config map taken while krsi was down: krsi names its holder; rewriting krsi_tgid through it does not switch protection off', () => {
    assert.match(r.held.out, /held fd=\d+\nupdate=0$/, 'the old fd still writes (protection cannot revoke it)');
    assert.match(r.holderWarning, new RegExp(`"pid":${r.held.pid},"comm":"protecthelper","map":\\d+.*opened before self-protection`));
    refused(r.attacks.mapDumpAfterStaleWrite, 'bpftool map dump after config.krsi_tgid was zeroed');
  });

  test("krsi's links: detach through a pin or by id is refused", () => {
    refused(r.attacks.linkDetachPinned, 'bpftool link detach pinned');
    refused(r.attacks.linkDetachId, 'bpftool link detach id');
    assert.ok(tamper('TAMPER_LINK').length >= 2);
  });

  test("krsi's pins, pin directory and control socket cannot be removed or moved; bpffs cannot be unmounted", () => {
    refused(r.attacks.rmLinkPin, 'rm link pin');
    refused(r.attacks.mvLinkPin, 'mv link pin');
    refused(r.attacks.mvMapPin, 'mv map pin');
    refused(r.attacks.rmdirPinDir, 'rmdir pin dir');
    refused(r.attacks.rmControlSock, 'rm control socket');
    refused(r.attacks.umountBpffs, 'umount /sys/fs/bpf');
    assert.equal(r.attacks.pinsAfter, true, 'every pin is still there');
    assert.ok(tamper('TAMPER_PIN').length >= 5);
    assert.equal(tamper('TAMPER_MOUNT').length, 1);
  });

  test('ptrace attach, process_vm_readv and /proc/PID/mem of krsi are refused; the same on another process work', () => {
    // /proc/PID/mem: mm_access() turns a refused access check into EACCES
    assert.equal(r.attacks.ptrace.out, `ptrace=${EPERM} vmread=${EPERM} mem=${EACCES} getfd=${EPERM}`);
    assert.equal(tamper('TAMPER_PTRACE', r.attacks.ptrace.pid).length, 4);
    assert.match(r.negatives.ptraceOther.out, /^ptrace=0 vmread=(0|14) mem=0 getfd=0$/);
  });

  test('SIGSTOP to krsi is reported (not refused), except from the --allow-stop-from executable', () => {
    assert.equal(r.attacks.stop.code, 0, r.attacks.stop.out);
    const ev = tamper('TAMPER_SIGNAL', r.attacks.stop.pid);
    assert.equal(ev.length, 1);
    assert.deepEqual([ev[0].enforced, ev[0].key!.signal, ev[0].key!.target], [false, 19, r.pid1]);
    assert.equal(r.attacks.allowedStop.code, 0);
    assert.equal(tamper('TAMPER_SIGNAL', r.attacks.allowedStop.pid).length, 0);
  });

  test("other processes' bpf, ptrace and unlink are unaffected", () => {
    for (const k of ['otherMapCreate', 'otherMapUpdate', 'otherMapDump', 'otherMapRm', 'progShow', 'rmOther']) assert.equal(r.negatives[k].code, 0, `${k}: ${r.negatives[k].out}`);
    const attackers = new Set(Object.values(r.attacks as Record<string, Cmd>).map((c) => c?.pid));
    for (const e of r.tampers1 as Out[]) {
      // `bpftool prog show` opens every pin under /sys/fs/bpf to name them: krsi's are refused it, and it still lists
      if (e.pid === r.negatives.progShow.pid && e.reason === 'TAMPER_MAP') continue;
      assert.ok(attackers.has(e.pid), `a tamper event from a process that did not attack: ${JSON.stringify(e)}`);
    }
  });

  test('krsi verdicts add / list / rm work through the control socket; the verdict krsi applies after the attacks denies', () => {
    const n = r.negatives;
    assert.equal(n.execBefore, 'status 0');
    assert.equal(n.add.code, 0, n.add.out);
    assert.equal(n.execDenied, 'EPERM');
    assert.equal(n.list.code, 0, n.list.out);
    assert.match(n.list.out, /"kind":"map_entry","map":"deny_inode"/);
    assert.equal(n.rm.code, 0, n.rm.out);
    assert.equal(n.execAfterRm, 'status 0');
    assert.ok((r.denied1 as Out[]).some((d) => d.op === 'exec' && d.rule === 'protect-test'), 'the exec denial reached krsi run output');
  });

  test('each attempt is counted: krsi_tamper_total{reason} in the metrics agrees with the events', () => {
    assert.ok(Array.isArray(r.metrics), String(r.metrics));
    const metric = (reason: string) => Number(new RegExp(`^krsi_tamper_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec((r.metrics as string[]).join('\n'))?.[1]);
    for (const reason of ['TAMPER_MAP', 'TAMPER_LINK', 'TAMPER_PIN', 'TAMPER_MOUNT', 'TAMPER_PTRACE', 'TAMPER_SIGNAL']) assert.equal(metric(reason), tamper(reason).length, reason);
    assert.equal(metric('lost'), 0);
  });

  test('krsi run stops cleanly on SIGTERM and removes its control socket', () => {
    assert.equal(r.exit1, 0, r.stderr1);
    assert.equal(r.sockGone, true);
  });

  test('--no-self-protect: the same tampering succeeds, no tamper event; krsi verdicts still work', () => {
    const o = r.off;
    for (const k of ['mapUpdate', 'mapDelete', 'mapDump', 'mvLinkPin', 'mvBack']) assert.equal(o[k].code, 0, `${k}: ${o[k].out}`);
    assert.match(o.ptrace.out, /^ptrace=0 vmread=(0|14) mem=0 getfd=0$/);
    assert.equal(o.add.code, 0, o.add.out);
    assert.equal(o.execDenied, 'EPERM');
    assert.equal(o.clear.code, 0, o.clear.out);
    assert.deepEqual(r.tampers2, []);
    assert.equal(r.exit2, 0, r.stderr2);
  });
});
}
