// The VM harness itself: boots, reports the guest's exit status and output, has BPF LSM active,
// shares the checkout read-only (writes stay in the guest) and a read-write results directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vmAvailable, runInVm, VM_KERNELS, vmKernelLabel, vmKernelVersion } from './vm.ts';

for (const kernel of VM_KERNELS) {
test(`VM harness [${vmKernelLabel(kernel)}]: exit status, stdout/stderr, BPF LSM, BTF, shares, node, kernel modules`, { skip: vmAvailable(kernel) }, async () => {
  const rw = mkdtempSync(join(tmpdir(), 'krsi-vm-'));
  try {
    const marker = join(rw, '..', `krsi-vm-ro-${process.pid}`);
    const r = await runInVm(
      [
        'cat /sys/kernel/security/lsm; echo',
        'uname -r',
        `echo written > ${rw}/result`,
        `touch ${marker}`, // the host's / is read-only under an overlay: this stays in the guest
        'test -f package.json && echo cwd-ok',
        'node -e "console.log(\'node\', process.versions.node)"',
        'ls "$KRSI_VM_MODULES"/kernel/drivers/net/dummy.ko* >/dev/null && echo dummy-ok',
        'test -f /sys/kernel/btf/vmlinux && echo btf-ok',
        'echo to-stderr >&2',
        'exit 7',
      ].join('\n'),
      { rw, timeoutMs: 120_000, kernel },
    );
    assert.equal(r.code, 7, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0], /(^|,)bpf(,|$)/);
    assert.equal(lines[1], vmKernelVersion(kernel), 'the kernel asked for is the one booted');
    assert.ok(lines[1].startsWith(`${kernel}.`), lines[1]);
    assert.ok(lines.includes('cwd-ok'), r.stdout);
    assert.ok(lines.some((l) => l.startsWith('node 20')), r.stdout);
    assert.ok(lines.includes('dummy-ok'), r.stdout);
    assert.ok(lines.includes('btf-ok'), r.stdout);
    assert.match(r.stderr, /to-stderr/);
    assert.equal(readFileSync(join(rw, 'result'), 'utf8'), 'written\n');
    assert.equal(existsSync(marker), false, 'a guest write leaked to the host');
    console.log(`# VM run took ${r.ms} ms`);
  } finally {
    rmSync(rw, { recursive: true, force: true });
  }
});

}

test('VM harness: a guest that never finishes is stopped by the timeout', { skip: vmAvailable() }, async () => {
  const r = await runInVm('sleep 600', { timeoutMs: 10_000 });
  assert.equal(r.code, 255);
  assert.match(r.stderr, /timed out|no exit status/);
});
