// The modules area of the evasion VM run (issue 11 items 6 and 7): prepare builds the test modules
// (test/vm/evasion/modules/krsi_rk.c under several names, the self-hiding test/live/fixtures/hide) against
// the guest kernel's headers and the static modhelper; register asserts what test/vm/guest/evasion/modules.ts
// observed. Inventory: a module hidden before krsi started, one hiding after it started, one that also
// deletes its kobject, a decoy under its name, one hiding seconds after its load (krsi's period shortened),
// one hidden from /proc/modules only; the negative: dummy loaded and removed. Allowlist: a module named like
// an allowlisted one, an allowlisted file rewritten in place, kexec, a firmware read, the allowlisted file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { vmHeaders, vmKernelLabel, type VmKernel } from '../vm.ts';
import type { HostArea } from './index.ts';

const SRC = fileURLToPath(new URL('./modules', import.meta.url));
const HIDE_SRC = fileURLToPath(new URL('../../live/fixtures/hide', import.meta.url));
/** the names krsi_rk.c is built under (module name = object name) */
const RK_NAMES = ['krsi_rk', 'krsi_pre', 'krsi_late', 'krsi_filt', 'krsi_fw', 'krsi_twin', 'krsi_ren'];

function make(headers: string, dir: string): string | undefined {
  // no BTF for the test modules (6.12's kbuild would need pahole; they need none)
  const r = spawnSync('make', ['-s', '-C', headers, `M=${dir}`, 'CONFIG_DEBUG_INFO_BTF_MODULES=', 'modules'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ');
}

type Inv = { name: string; proc_modules?: boolean; sys_module?: boolean; kernel?: { recorded: number; linked: number; unlinked: number; sysfs: number; seeded: number; renamed?: number; load_names?: string[] }; missing_from: string[]; present_in: string[]; ts: number };

export const area: HostArea = {
  prepare(dir: string, kernel: VmKernel) {
    const headers = vmHeaders(kernel);
    if (!headers.dir) return headers.why;
    const rk = join(dir, 'rk');
    mkdirSync(rk, { recursive: true });
    for (const n of RK_NAMES) copyFileSync(join(SRC, 'krsi_rk.c'), join(rk, `${n}.c`));
    writeFileSync(join(rk, 'Kbuild'), `obj-m := ${RK_NAMES.map((n) => `${n}.o`).join(' ')}\n`);
    const fake = join(dir, 'fake');
    mkdirSync(fake, { recursive: true });
    copyFileSync(join(SRC, 'krsi_rk.c'), join(fake, 'dummy.c'));
    writeFileSync(join(fake, 'Kbuild'), 'obj-m := dummy.o\n');
    const hide = join(dir, 'hide');
    cpSync(HIDE_SRC, hide, { recursive: true });
    for (const d of [rk, fake, hide]) {
      const why = make(headers.dir, d);
      if (why) return `building the test modules for ${vmKernelLabel(kernel)} failed: ${why}`;
    }
    const cc = spawnSync('cc', ['-O2', '-static', '-o', join(dir, 'modhelper'), join(SRC, 'modhelper.c')], { encoding: 'utf8' });
    if (cc.status !== 0) return `cc -static modhelper.c: ${cc.stderr.trim()}`;
    return undefined;
  },

  register(result: () => any) {
    const inv = (name: string): Inv[] => (result().inventory.events as Inv[]).filter((e) => e.name === name);

    test('inventory: dummy loaded and removed (a module that stays listed) raises nothing', (t) => {
      const r = result();
      if (!r) return t.skip('not prepared');
      assert.equal(r.inventory.dummy.insmod, 0, r.inventory.dummy.out);
      assert.equal(r.inventory.dummy.rmmod, 0, r.inventory.dummy.out);
      assert.deepEqual(inv('dummy'), []);
      // and nothing else the guest runs is reported: only the test's own hidden modules
      const names = new Set((r.inventory.events as Inv[]).map((e) => e.name));
      assert.deepEqual([...names].sort(), ['krsi_filt', 'krsi_hide', 'krsi_late', 'krsi_pre', 'krsi_rk', 'krsi_twin'], JSON.stringify(r.inventory.events));
      assert.deepEqual(r.inventory.unavailable, {}, 'every view available');
    });

    test('module_load names the file; a module named like an allowlisted one from another file alerts, the one from /lib/modules does not', (t) => {
      const r = result();
      if (!r) return t.skip('not prepared');
      assert.equal(r.inventory.dummy.fake, 'ok', 'the look-alike loads (no enforcement in this part)');
      const loads = r.inventory.dummyLoads as { path?: string; file?: { ino: number } }[];
      assert.equal(loads.length, 2, JSON.stringify(loads));
      // the kernel's paths, from the namespace root: the guest's files under its chroot (/root)
      assert.deepEqual(r.inventory.rawPaths.filter((p: string) => p.endsWith('/dummy.ko')), r.inventory.dummy.real.map((p: string) => `/root${p}`));
      assert.match(loads[0].path ?? '', /^\/(usr\/)?lib\/modules\/[^/]+\/kernel\/drivers\/net\/dummy\.ko$/);
      assert.match(loads[1].path ?? '', /\/fake\/dummy\.ko$/);
      assert.ok(loads.every((l) => l.file && l.file.ino > 0), 'each load from a file names its inode');
      const dummyAlerts = (r.inventory.notAllowlisted as { name: string; path?: string }[]).filter((a) => a.name === 'dummy');
      assert.deepEqual(dummyAlerts.map((a) => a.path), [loads[1].path]);
    });

    test('inventory: a module hidden (list_del) before krsi started: /sys/module still has it, /proc/modules does not', (t) => {
      const r = result();
      if (!r) return t.skip('not prepared');
      const e = inv('krsi_hide');
      assert.equal(e.length, 1, JSON.stringify(e));
      assert.deepEqual([e[0].proc_modules, e[0].sys_module, e[0].kernel], [false, true, undefined]);
      assert.ok(e[0].ts < r.inventory.firstLoadTs, 'found by the check at start');
    });

    test('inventory: a module loaded before krsi and hiding after it started is in the kernel view (seeded at start), unlinked', (t) => {
      const r = result();
      if (!r) return t.skip('not prepared');
      const e = inv('krsi_pre');
      t.diagnostic(`seed sources: ${JSON.stringify(r.inventory.seedSources)}`);
      assert.equal(e.length, 1, JSON.stringify(e));
      assert.deepEqual(e[0].missing_from, ['proc_modules', 'module_list'], JSON.stringify(r.inventory.seedSources));
      assert.equal(e[0].kernel?.seeded, 1);
      assert.equal(e[0].kernel?.unlinked, 1);
    });

    test('inventory: a module that unlinks itself and deletes its kobject, then a decoy loaded under its name', (t) => {
      const r = result();
      if (!r) return t.skip('not prepared');
      const e = inv('krsi_rk');
      assert.equal(r.inventory.rk.hide, 'ok', r.inventory.rk.hide);
      assert.equal(r.inventory.rk.decoy, 'ok', `the decoy loads under the hidden module's name: ${r.inventory.rk.decoy}`);
      assert.equal(e.length, 2, JSON.stringify(e));
      // hidden: in no file view, only in the kernel's, off the list and out of sysfs
      assert.deepEqual([e[0].proc_modules, e[0].sys_module], [false, false]);
      assert.deepEqual(e[0].kernel && { linked: e[0].kernel.linked, unlinked: e[0].kernel.unlinked, sysfs: e[0].kernel.sysfs }, { linked: 0, unlinked: 1, sysfs: 0 });
      // decoy: both file views list the name; the kernel holds two modules of it, one unlinked
      assert.deepEqual([e[1].proc_modules, e[1].sys_module], [true, true]);
      assert.deepEqual(e[1].kernel && { recorded: e[1].kernel.recorded, linked: e[1].kernel.linked, unlinked: e[1].kernel.unlinked }, { recorded: 2, linked: 1, unlinked: 1 });
      assert.deepEqual(e[1].missing_from, ['module_list']);
    });

    test('inventory: a module hiding seconds after its load (after the old rule\'s first snapshot) is caught by the periodic check', (t) => {
      const r = result();
      if (!r) return t.skip('not prepared');
      const e = inv('krsi_late');
      assert.equal(e.length, 1, JSON.stringify(e));
      assert.ok(e[0].ts - r.inventory.late.loadTs >= 3e9, `found after it hid (${(e[0].ts - r.inventory.late.loadTs) / 1e9} s after the load)`);
      assert.ok(r.inventory.late.listedAfterLoad, '/proc/modules listed it at first');
      assert.deepEqual(e[0].missing_from, ['proc_modules', 'module_list']);
    });

    test('inventory: a module hidden from /proc/modules while it stays on the module list (a filtered read)', (t) => {
      const r = result();
      if (!r) return t.skip('not prepared');
      const e = inv('krsi_filt');
      assert.equal(e.length, 1, JSON.stringify(e));
      assert.deepEqual(e[0].missing_from, ['proc_modules']);
      assert.deepEqual([e[0].sys_module, e[0].kernel?.linked], [true, 1]);
    });

    test('inventory: a module that fakes its list entry (a private node pointing back), deletes its kobject and copies a loaded module\'s name', (t) => {
      const r = result();
      if (!r) return t.skip('not prepared');
      assert.equal(r.inventory.twin.real, 'ok', r.inventory.twin.real);
      assert.equal(r.inventory.twin.ren, 'ok', r.inventory.twin.ren);
      // every file view shows krsi_twin once and no krsi_ren: the impostor agrees with them all
      assert.deepEqual(r.inventory.twin.views, { procTwin: 1, procRen: 0, sysRen: false }, JSON.stringify(r.inventory.twin.views));
      const e = inv('krsi_twin');
      assert.equal(e.length, 1, JSON.stringify(e));
      assert.deepEqual(e[0].missing_from, ['load_name', 'unique_name']);
      assert.deepEqual([e[0].proc_modules, e[0].sys_module], [true, true]);
      assert.deepEqual(e[0].kernel && { recorded: e[0].kernel.recorded, linked: e[0].kernel.linked, renamed: e[0].kernel.renamed, load_names: e[0].kernel.load_names },
        { recorded: 2, linked: 2, renamed: 1, load_names: ['krsi_ren'] }, 'the fake list entry reads as linked; the name is not the one it loaded under');
    });

    test('inventory: the bundled rule alerts on each of them', (t) => {
      const r = result();
      if (!r) return t.skip('not prepared');
      assert.deepEqual([...new Set(r.inventory.alerts as string[])].sort(), ['krsi_filt', 'krsi_hide', 'krsi_late', 'krsi_pre', 'krsi_rk', 'krsi_twin']);
    });

    test('allowlist: the allowlisted module file loads', (t) => {
      const r = result();
      if (!r) return t.skip('not prepared');
      assert.equal(r.allow.original, 'ok');
    });

    test('allowlist: a module named like an allowlisted one (dummy, another file) is refused', (t) => {
      const r = result();
      if (!r) return t.skip('not prepared');
      assert.equal(r.allow.lookalike.out, 'errno=1');
      assert.equal(r.allow.lookalike.reason, 'MODULE_ALLOW');
    });

    test('allowlist: the allowlisted file rewritten in place (same inode) is refused as changed; resolved again, it loads', (t) => {
      const r = result();
      if (!r) return t.skip('not prepared');
      assert.equal(r.allow.rewritten.sameInode, true, 'cp kept the inode');
      assert.equal(r.allow.rewritten.out, 'errno=1');
      assert.equal(r.allow.rewritten.reason, 'MODULE_CHANGED');
      assert.equal(r.allow.reresolved, 'ok', 'the allowlist resolved again takes the file as it is now');
    });

    test('allowlist: kexec_file_load and kexec_load are refused with the KEXEC reason; without the allowlist they are not', (t) => {
      const r = result();
      if (!r) return t.skip('not prepared');
      assert.equal(r.allow.kexecFile.out, 'errno=1');
      assert.equal(r.allow.kexecFile.reason, 'KEXEC');
      assert.equal(r.allow.kexecLoad.out, 'errno=1');
      assert.equal(r.allow.kexecLoad.reason, 'KEXEC');
      assert.equal(r.allow.kexecOff.reason, undefined, 'no denial with the allowlist off');
    });

    test('allowlist: a firmware read still passes', (t) => {
      const r = result();
      if (!r) return t.skip('not prepared');
      assert.equal(r.allow.firmware.load, 'ok');
      assert.equal(r.allow.firmware.result, 0, 'request_firmware succeeded under the allowlist');
      assert.deepEqual(r.allow.firmware.denied, []);
    });
  },
};
