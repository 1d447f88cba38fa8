// module_load and module_list on a kernel with modules (the VM: Debian's stock kernel): insmod
// dummy.ko gives a module_load event named dummy, then a module_list snapshot that lists it; and,
// with kprobes there, an unlink of another file carries that file's inode as target.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needCc, needLiveBpf } from '../helpers/prereq.ts';
import { runTsInVm, vmAvailable } from '../vm/vm.ts';

const GUEST = fileURLToPath(new URL('./guest/modules.ts', import.meta.url));
const HELPER_C = fileURLToPath(new URL('./fixtures/helper.c', import.meta.url));

test('module_load, module_list and resolved unlink targets in a VM (modules, kprobes)', { skip: needLiveBpf() ?? needCc() ?? vmAvailable() }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-vmlive-'));
  const helper = join(dir, 'helper');
  assert.equal(spawnSync('cc', ['-O2', '-static', '-o', helper, HELPER_C]).status, 0, 'cc -static helper.c');
  let r;
  try {
    r = await runTsInVm(GUEST, [], { timeoutMs: 240_000, env: { KRSI_HELPER: helper } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(r.code, 0, `guest failed (${r.code}):\n${r.stderr.slice(-3000)}`);
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{"unavailable"')).pop();
  assert.ok(line, `no result line in:\n${r.stdout.slice(-2000)}`);
  const res = JSON.parse(line) as { unavailable: Record<string, string>; insmod: { status: number }; loads: string[]; lists: boolean[]; lost: number; victim: unknown; unlinkTarget: unknown; selfDelete?: { target?: { dev: number; ino: number; nlink: number }; exe: { dev: number; ino: number } } };
  assert.deepEqual(res.unavailable, {}, 'every signal available on a kernel with modules');
  assert.equal(res.insmod.status, 0, 'insmod dummy.ko');
  assert.ok(res.loads.includes('dummy'), `module_load dummy (got ${res.loads.join(', ')})`);
  assert.equal(res.lists[0], false, 'the first snapshot (at start) has no dummy');
  assert.equal(res.lists[res.lists.length - 1], true, 'the snapshot after the load lists dummy');
  // the guest's / is an overlayfs: the kernel's inode carries the overlay superblock's dev, while stat(2)
  // reports a per-layer pseudo device there; inode number and link count agree
  const t = res.unlinkTarget as { ino: number; nlink: number } | undefined;
  const v = res.victim as { ino: number; nlink: number };
  assert.deepEqual(t && { ino: t.ino, nlink: t.nlink }, { ino: v.ino, nlink: v.nlink }, 'rm of a file with two links: its inode, one link left');
  // on overlayfs too, a copy deleting itself has target == its exe (what the self-delete rule compares)
  const sd = res.selfDelete;
  assert.ok(sd?.target, 'the self-deleting copy\'s unlink has a target');
  assert.deepEqual(sd.target, { dev: sd.exe.dev, ino: sd.exe.ino, nlink: 0 });
});
