// module_load, module_unload and module_list on a kernel with modules (the VM: Debian's stock kernel):
// insmod dummy.ko gives a module_load event named dummy, then a module_list snapshot that lists it;
// rmmod dummy a module_unload and a snapshot without it; with kprobes there, an unlink of another file
// carries that file's inode as target. Then the hidden-kernel-module rule on what the kernel reported:
// a module that really hides itself (test/live/fixtures/hide, built against Debian's headers for the
// guest kernel) is reported, the rmmod'ed dummy is not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needCc, needLiveBpf } from '../helpers/prereq.ts';
import { runTsInVm, vmAvailable, vmHeaders, vmKernelLabel, VM_KERNELS, type VmKernel } from '../vm/vm.ts';
import type { KrsiEvent } from '../../signals/events.ts';
import type { AlertOut, Output } from '../../engine/types.ts';

const GUEST = fileURLToPath(new URL('./guest/modules.ts', import.meta.url));
const HELPER_C = fileURLToPath(new URL('./fixtures/helper.c', import.meta.url));
const HIDE_SRC = fileURLToPath(new URL('./fixtures/hide', import.meta.url));

/** builds the self-hiding test module for the guest kernel into dir: its path, or a one-line reason */
function buildHideModule(dir: string, kernel: VmKernel): { ko?: string; why?: string } {
  const headers = vmHeaders(kernel); // the guest kernel's headers, unpacked into the VM cache
  if (!headers.dir) return { why: headers.why };
  const src = join(dir, 'hide');
  cpSync(HIDE_SRC, src, { recursive: true });
  // no BTF for the test module (6.12's kbuild would need pahole; the module needs none)
  const r = spawnSync('make', ['-s', '-C', headers.dir, `M=${src}`, 'CONFIG_DEBUG_INFO_BTF_MODULES=', 'modules'], { encoding: 'utf8' });
  if (r.status !== 0) return { why: `building krsi_hide.ko for ${vmKernelLabel(kernel)} failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}` };
  return { ko: join(src, 'krsi_hide.ko') };
}

/** the bundled rules over recorded events, as krsi replay runs them */
async function replay(events: KrsiEvent[]): Promise<AlertOut[]> {
  const { loadRuleDirs, BUNDLED_RULES_DIR } = await import('../../engine/rules/load.ts');
  const { Engine } = await import('../../engine/engine.ts');
  const engine = new Engine({ rules: await loadRuleDirs([BUNDLED_RULES_DIR]) });
  const out: Output[] = [];
  events.forEach((e, i) => engine.push({ ...e, seq: i + 1 }, (o) => out.push(o)));
  return out.filter((o): o is AlertOut => o.kind === 'alert');
}

for (const kernel of VM_KERNELS) {
test(`module_load, module_list and resolved unlink targets in a VM [${vmKernelLabel(kernel)}] (modules, kprobes)`, { skip: needLiveBpf() ?? needCc() ?? vmAvailable(kernel) }, async (ctx) => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-vmlive-'));
  const helper = join(dir, 'helper');
  assert.equal(spawnSync('cc', ['-O2', '-static', '-o', helper, HELPER_C]).status, 0, 'cc -static helper.c');
  const hide = buildHideModule(dir, kernel);
  if (hide.why) ctx.diagnostic(`self-hiding module part skipped: ${hide.why}`);
  let r;
  try {
    r = await runTsInVm(GUEST, [], { timeoutMs: 240_000, kernel, env: { KRSI_HELPER: helper, ...(hide.ko ? { KRSI_HIDE_KO: hide.ko } : {}) } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(r.code, 0, `guest failed (${r.code}):\n${r.stderr.slice(-3000)}`);
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{"unavailable"')).pop();
  assert.ok(line, `no result line in:\n${r.stdout.slice(-2000)}`);
  const res = JSON.parse(line) as {
    unavailable: Record<string, string>; insmod: { status: number }; loads: string[]; lists: boolean[]; lost: number; victim: unknown; unlinkTarget: unknown;
    selfDelete?: { target?: { dev: number; ino: number; nlink: number }; exe: { dev: number; ino: number } };
    rmmod: { status: number; stderr: string }; unloads: string[]; hide?: { status: number; stderr: string; inProcModules: boolean }; moduleEvents: KrsiEvent[];
  };
  assert.deepEqual(res.unavailable, {}, 'every signal available on a kernel with modules');
  assert.equal(res.insmod.status, 0, 'insmod dummy.ko');
  assert.ok(res.loads.includes('dummy'), `module_load dummy (got ${res.loads.join(', ')})`);
  assert.equal(res.lists[0], false, 'the first snapshot (at start) has no dummy');
  assert.ok(res.lists.includes(true), 'a snapshot after the load lists dummy');
  assert.equal(res.rmmod.status, 0, `rmmod dummy: ${res.rmmod.stderr}`);
  assert.deepEqual(res.unloads.filter((n) => n === 'dummy'), ['dummy'], 'module_unload dummy');
  assert.equal(res.lists[res.lists.length - 1], false, 'the snapshot after rmmod does not list dummy');
  // the guest's / is an overlayfs: the kernel's inode carries the overlay superblock's dev, while stat(2)
  // reports a per-layer pseudo device there; inode number and link count agree
  // an rm of a file no process runs is not an event since issue 11 (only unlinks that matter to a rule are
  // reported: a running target, the caller's own executable, an ETXTBSY refusal)
  assert.equal(res.unlinkTarget, undefined, 'rm of a file with two links that nobody runs: no unlink event');
  // on overlayfs too, a copy deleting itself has target == its exe (what the self-delete rule compares)
  const sd = res.selfDelete;
  assert.ok(sd?.target, 'the self-deleting copy\'s unlink has a target');
  assert.deepEqual(sd.target, { dev: sd.exe.dev, ino: sd.exe.ino, nlink: 0 });

  // the hidden-module rule on what the kernel reported: the unloaded dummy is not hidden ...
  const alerts = await replay(res.moduleEvents);
  const hidden = alerts.filter((a) => a.rule === 'hidden-kernel-module').map((a) => a.message);
  assert.ok(!hidden.some((m) => m.includes('dummy')), `dummy reported hidden: ${hidden.join('; ')}`);
  // ... even when no snapshot caught it listed (one taken only after the rmmod, as on a busy host):
  // the module_unload is what tells the two apart; without it the same events look like hiding
  const load = res.moduleEvents.findIndex((e) => e.type === 'module_load' && e.name === 'dummy');
  const unload = res.moduleEvents.findIndex((e) => e.type === 'module_unload' && e.name === 'dummy');
  assert.ok(load >= 0 && unload > load);
  const late = res.moduleEvents.filter((e, i) => !(e.type === 'module_list' && i > load && i < unload));
  const isDummy = (a: AlertOut) => a.rule === 'hidden-kernel-module' && a.message.includes('dummy');
  assert.ok(!(await replay(late)).some(isDummy), 'rmmod before the first snapshot: not hidden');
  assert.ok((await replay(late.filter((e) => e.type !== 'module_unload'))).some(isDummy), 'without the module_unload the rule cannot tell');
  if (!hide.ko) return;
  // ... and a module that really unlinked itself from the module list is
  assert.equal(res.hide?.status, 0, `insmod krsi_hide.ko: ${res.hide?.stderr}`);
  assert.equal(res.hide?.inProcModules, false, '/proc/modules does not list krsi_hide');
  assert.ok(res.loads.includes('krsi_hide'), 'module_load krsi_hide');
  assert.ok(!res.unloads.includes('krsi_hide'), 'no module_unload for a module that hid');
  assert.deepEqual(hidden.filter((m) => m.includes('krsi_hide')).length, 1, `hidden-kernel-module on krsi_hide (alerts: ${hidden.join('; ')})`);
});
}
