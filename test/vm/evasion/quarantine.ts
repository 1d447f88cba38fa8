// Host side of the quarantine area (test/vm/guest/evasion/quarantine.ts): builds the helper and the preload
// library, asserts what the guest observed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../vm.ts';
import type { HostArea } from './index.ts';

const EPERM = 1;

export const area: HostArea = {
  prepare(dir) {
    for (const args of [
      ['-O2', '-Wall', '-pthread', '-o', join(dir, 'qhelper'), join(REPO_ROOT, 'test/vm/helpers/qhelper.c')],
      ['-O2', '-Wall', '-shared', '-fPIC', '-o', join(dir, 'qpreload.so'), join(REPO_ROOT, 'test/vm/helpers/qpreload.c')],
    ]) {
      const cc = spawnSync('cc', args, { encoding: 'utf8' });
      if (cc.status !== 0) return `cc failed: ${cc.stderr}`;
    }
    return undefined;
  },
  register(result) {
    test('quarantine covers a child forked before the verdict: it cannot exec; the kernel\'s fork copy alone did not cover it', () => {
      const r = result().tree;
      assert.match(r.control.out, /child status=0/, 'no verdict: the child execs');
      assert.match(r.parentOnly.out, /child status=0/, 'the parent\'s entry alone: a child forked before it is free');
      assert.match(r.covered.out, new RegExp(`child exec errno=${EPERM}`), JSON.stringify(r.covered));
      assert.match(r.unrelated.out, /child status=0/, 'an unrelated process runs');
      assert.match(r.walked.out, new RegExp(`child exec errno=${EPERM}`), `a child found in /proc (no process table): ${JSON.stringify(r.walked)}`);
    });
    test('kill op: the kernel kills at the next guarded operation; krsi kills at once; a gone process is not applied to', () => {
      const r = result().kill;
      assert.equal(r.kernel.signal, 'SIGKILL', JSON.stringify(r.kernel));
      assert.doesNotMatch(r.kernel.out, /survived/);
      assert.ok(r.records.some((d: { pid: number; reason: string }) => d.pid === r.kernelPid && d.reason === 'TGID'), JSON.stringify(r.records));
      assert.equal(r.user.applied, true);
      assert.equal(r.user.signal, 'SIGKILL', JSON.stringify(r.user));
      assert.equal(r.user.kills.killed, 1);
      assert.equal(r.gone, false);
      assert.match(r.unrelated.out, /survived/);
    });
    test('ld.so ./denied-copy and mmap/mprotect PROT_EXEC of a deny-listed file are refused; a non-denied binary through ld.so runs', () => {
      const r = result().doors;
      assert.notEqual(r.exec.code, 0, 'exec refused (bprm_check)');
      assert.notEqual(r.ldso.code, 0, `ld.so ./denied-true: ${r.ldso.out}`);
      assert.match(r.ldso.out, /map|Operation not permitted/i);
      assert.equal(r.ldsoOther.code, 0, r.ldsoOther.out);
      assert.match(r.mmap.out, new RegExp(`mmap errno=${EPERM}`));
      assert.match(r.mmap.out, new RegExp(`mprotect errno=${EPERM}`));
      assert.match(r.mmapOther.out, /mmap ok\s+mprotect ok/);
      assert.equal(r.unrelated.code, 0);
      assert.ok(r.records.some((d: { op: string; reason: string }) => d.op === 'exec' && d.reason === 'INODE'), JSON.stringify(r.records));
    });
    test('btrfs subvolume: a deny-listed binary (kernelFileId key) is refused; a copy runs; stat()\'s st_dev is not the kernel\'s', () => {
      const r = result().btrfs;
      assert.equal(r.mkfs?.code, 0, `btrfs setup: ${JSON.stringify(r)}`);
      assert.notEqual(r.statDev, r.kernelDev, 'the subvolume device differs from the superblock\'s');
      assert.notEqual(r.denied.code, 0, JSON.stringify(r.denied));
      assert.equal(r.copy.code, 0, JSON.stringify(r.copy));
      assert.equal(r.statKeyed.code, 0, 'a key from stat() never matches (the bug fixed)');
    });
    test('krsi run, bundled chain rule: LD_PRELOAD exec -> fork -> the child\'s W+X kills the child; the parent\'s W+X after a fork kills both; no preload: nothing', () => {
      const r = result().krsi;
      assert.equal(r.error, undefined, r.error);
      assert.match(r.child.out, /child signal=9/, JSON.stringify(r));
      assert.equal(r.child.code, 0, 'the parent (no W+X, not a descendant) lives');
      assert.equal(r.parent.signal, 'SIGKILL', JSON.stringify(r.parent));
      assert.doesNotMatch(r.parent.out, /survived/);
      assert.match(r.plain.out, /child survived/);
      assert.ok(r.outputs.some((o: { kind: string; op: string; applied: boolean }) => o.kind === 'verdict' && o.op === 'kill' && o.applied), JSON.stringify(r.outputs));
    });
  },
};
