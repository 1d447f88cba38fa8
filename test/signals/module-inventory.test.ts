// The module inventory (signals/module-inventory.ts): the views compared, /sys/module and kallsyms read,
// and the checks in virtual time over views in temp files (the test seam for /proc/modules and /sys/module)
// and a fake kernel view: a clean start reports nothing, a disagreement that holds over two reads is
// reported once, one that is gone by the second read is not, a changed one is reported again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestScheduler } from 'rxjs/testing';
import { map } from 'rxjs';
import {
  compareViews, kallsymsModules, moduleInventory$, seedKernelView, summary, sysModules, type KernelModule, type KernelModuleView,
} from '../../signals/module-inventory.ts';

const km = (name: string, o: Partial<KernelModule> = {}): KernelModule => ({
  addr: `ffffffffc0${name.length}01040`, name, recorded: name, linked: true, sysfs: true, readable: true, state: 0, seeded: false, ...o,
});

test('compareViews: agreeing views say nothing; each disagreement says what every view has', () => {
  assert.deepEqual(compareViews(['ext4', 'dummy'], ['dummy', 'ext4'], [km('dummy')]), []);
  // a name the kernel view never recorded (loaded before krsi) is no disagreement
  assert.deepEqual(compareViews(['ext4'], ['ext4'], []), []);
  // list_del: not in /proc/modules, still in /sys/module, unlinked in the kernel's view
  const [hid] = compareViews(['ext4'], ['ext4', 'rk'], [km('rk', { linked: false })]);
  assert.deepEqual(hid, {
    name: 'rk', proc_modules: false, sys_module: true, missing_from: ['proc_modules', 'module_list'], present_in: ['sys_module', 'kernel'],
    kernel: { recorded: 1, linked: 0, unlinked: 1, sysfs: 1, seeded: 0, addrs: [km('rk').addr] },
  });
  // list_del + kobject_del: only the kernel view has it
  assert.deepEqual(compareViews(['ext4'], ['ext4'], [km('rk', { linked: false, sysfs: false })])[0].present_in, ['kernel']);
  // a decoy under a hidden module's name: both files list the name, the kernel holds two, one unlinked
  const [decoy] = compareViews(['rk'], ['rk'], [km('rk', { linked: false, sysfs: false }), km('rk', { addr: 'ffffffffc0b02040' })]);
  assert.deepEqual(decoy.missing_from, ['module_list']);
  assert.equal(decoy.kernel?.recorded, 2);
  // a filtered /proc/modules: on the list, in sysfs, not in the read
  assert.deepEqual(compareViews([], ['rk'], [km('rk')])[0].missing_from, ['proc_modules']);
  // /sys/module without /proc/modules (no kernel view): still a disagreement
  assert.deepEqual(compareViews(['a'], ['a', 'b'], undefined).map((f) => f.name), ['b']);
  // an unreadable kernel record says nothing
  assert.deepEqual(compareViews(['a'], ['a'], [km('zz', { readable: false, linked: false })]), []);
  // a view that could not be read says nothing
  assert.deepEqual(compareViews(undefined, ['a'], [km('a')]), []);
});

test('compareViews: a module that fakes its list entry and copies a loaded module\'s name: renamed and a second of that name on the list', () => {
  const ext4 = km('ext4', { seeded: true, addr: 'ffffffffc0a00000' });
  // rk: next/prev at a private node pointing back (reads as linked), mod->name overwritten with "ext4";
  // /proc/modules and /sys/module list ext4 once (the real one); sysfs keeps rk's kobject or not
  const rk = km('ext4', { recorded: 'krsi_rk', addr: 'ffffffffc0b00000', sysfs: false });
  const [f] = compareViews(['ext4'], ['ext4'], [ext4, rk]);
  assert.equal(f.name, 'ext4');
  assert.deepEqual(f.missing_from, ['load_name', 'unique_name']);
  assert.deepEqual(f.present_in, ['proc_modules', 'sys_module', 'kernel']);
  assert.equal(f.kernel?.renamed, 1);
  assert.deepEqual(f.kernel?.load_names, ['krsi_rk']);
  assert.match(summary(f), /loaded as krsi_rk and renamed since/);
  // renamed to a name no module has: the rename alone is a finding
  assert.deepEqual(compareViews(['ext4'], ['ext4'], [ext4, km('e1000e', { recorded: 'krsi_rk' })])[0].missing_from, ['proc_modules', 'sys_module', 'load_name']);
  // renamed to "" (read as readable): grouped under its recorded name, still the rename
  assert.deepEqual(compareViews(['ext4'], ['ext4'], [ext4, km('', { recorded: 'krsi_rk' })]).map((x) => [x.name, x.missing_from]), [['krsi_rk', ['proc_modules', 'sys_module', 'load_name']]]);
  // a seeded module kept its kallsyms name only if unchanged; but a duplicate with a seeded one still counts
  assert.deepEqual(compareViews(['ext4'], ['ext4'], [ext4, km('ext4', { seeded: true, addr: 'ffffffffc0c00000' })])[0].missing_from, ['unique_name']);
  // two of a name without a rename, both on the list: the impostor loaded before under the same name cannot be
  assert.deepEqual(compareViews(['dummy'], ['dummy'], [km('dummy'), km('dummy', { addr: 'ffffffffc0d00000' })])[0].missing_from, ['unique_name']);
  // negatives: a seeded module whose name differs from its record is not judged (kallsyms' read), one module per name is quiet
  assert.deepEqual(compareViews(['ext4'], ['ext4'], [km('ext4', { seeded: true, recorded: 'ext4x' })]), []);
  assert.deepEqual(compareViews(['ext4', 'dummy'], ['ext4', 'dummy'], [ext4, km('dummy')]), []);
});

test('sysModules: loadable modules only (an initstate file); kallsymsModules: __this_module of each module', () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-sysmod-'));
  try {
    for (const n of ['dummy', 'ext4']) {
      mkdirSync(join(dir, n));
      writeFileSync(join(dir, n, 'initstate'), 'live\n');
    }
    mkdirSync(join(dir, 'printk')); // built in: parameters only
    mkdirSync(join(dir, 'printk', 'parameters'));
    assert.deepEqual(sysModules(dir), ['dummy', 'ext4']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ks = 'ffffffffc0a01040 d __this_module\t[dummy]\nffffffffc0a00000 t dummy_init\t[dummy]\n0000000000000000 d __this_module\t[ext4]\nffffffff81000000 T _stext\n';
  assert.deepEqual(kallsymsModules(ks), [{ addr: 0xffffffffc0a01040n, name: 'dummy' }]);
});

/** a fake kernel view the test changes as time goes */
function fakeKernel(mods: KernelModule[]): KernelModuleView & { mods: KernelModule[] } {
  const v = {
    mods,
    read: () => v.mods.map((m) => ({ ...m })),
    seed: (list: { addr: bigint; name: string }[]) => {
      for (const m of list) v.mods.push(km(m.name, { addr: m.addr.toString(16), seeded: true }));
      return list.length;
    },
    drop: (addr: string) => void (v.mods = v.mods.filter((m) => m.addr !== addr)),
    full: () => 0,
  };
  return v;
}

function views(): { dir: string; proc: string; sys: string; set: (proc: string[], sys: string[]) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-inv-'));
  const proc = join(dir, 'modules');
  const sys = join(dir, 'sys');
  mkdirSync(sys);
  const set = (p: string[], s: string[]) => {
    writeFileSync(proc, p.map((n) => `${n} 16384 0 - Live 0x0000000000000000\n`).join(''));
    rmSync(sys, { recursive: true, force: true });
    mkdirSync(sys);
    for (const n of s) {
      mkdirSync(join(sys, n));
      writeFileSync(join(sys, n, 'initstate'), 'live\n');
    }
  };
  return { dir, proc, sys, set };
}

test('moduleInventory$: a clean start says nothing; a module hiding later is reported at the next period, once', () => {
  const v = views();
  try {
    v.set(['dummy', 'ext4'], ['dummy', 'ext4']);
    const kernel = fakeKernel([km('dummy'), km('ext4')]);
    const ts = new TestScheduler((a, b) => assert.deepEqual(a, b));
    ts.run(({ expectObservable }) => {
      // at 15 the module unlinks itself (list_del_init: /sys/module keeps it)
      ts.schedule(() => {
        kernel.mods[0].linked = false;
        v.set(['ext4'], ['dummy', 'ext4']);
      }, 15);
      const out$ = moduleInventory$({ interval: 10, confirmMs: 2, kernel, procModules: v.proc, sysModule: v.sys, now: () => 7, scheduler: ts })
        .pipe(map((e) => `${e.name}:${e.missing_from.join('+')}:${e.ts}`));
      // checks at 0, 10 (clean), 20 (confirmed at 22), 30, 40 (the same: not again)
      expectObservable(out$, '^ 45ms !').toBe('----------------------h', { h: 'dummy:proc_modules+module_list:7' });
    });
  } finally {
    rmSync(v.dir, { recursive: true, force: true });
  }
});

test('moduleInventory$: a disagreement gone by the confirming read is not reported; a changed one is reported again', () => {
  const v = views();
  try {
    v.set(['ext4'], ['ext4']);
    const kernel = fakeKernel([km('ext4')]);
    const ts = new TestScheduler((a, b) => assert.deepEqual(a, b));
    ts.run(({ expectObservable }) => {
      // at 9 a module appears in /sys/module before /proc/modules (a load between two reads), gone at 11
      ts.schedule(() => v.set(['ext4'], ['ext4', 'fresh']), 9);
      ts.schedule(() => v.set(['ext4', 'fresh'], ['ext4', 'fresh']), 11);
      // at 25 a module hides (list_del + kobject_del), at 35 a decoy takes its name
      ts.schedule(() => kernel.mods.push(km('rk', { linked: false, sysfs: false })), 25);
      ts.schedule(() => {
        kernel.mods.push(km('rk', { addr: 'ffffffffc0b02040' }));
        v.set(['ext4', 'fresh', 'rk'], ['ext4', 'fresh', 'rk']);
      }, 35);
      const out$ = moduleInventory$({ interval: 10, confirmMs: 2, kernel, procModules: v.proc, sysModule: v.sys, now: () => 1, scheduler: ts })
        .pipe(map((e) => `${e.name}:${e.missing_from.join('+')}:${e.present_in.join('+')}`));
      expectObservable(out$, '^ 45ms !').toBe('--------------------------------a---------b', {
        a: 'rk:proc_modules+sys_module+module_list:kernel',
        b: 'rk:module_list:proc_modules+sys_module+kernel',
      });
    });
  } finally {
    rmSync(v.dir, { recursive: true, force: true });
  }
});

test('moduleInventory$: checks settleMs after each module_load or module_unload too', () => {
  const v = views();
  try {
    v.set([], ['rk']);
    const ts = new TestScheduler((a, b) => assert.deepEqual(a, b));
    ts.run(({ cold, expectObservable }) => {
      const events$ = cold('-----l', { l: { type: 'module_load', name: 'rk' } as never });
      // the /sys/module-only module is there from the start: found at 0+2; the load's check (5+3) finds the same: not again
      const out$ = moduleInventory$({ interval: 0, confirmMs: 2, settleMs: 3, events$, procModules: v.proc, sysModule: v.sys, now: () => 1, scheduler: ts })
        .pipe(map((e) => e.name));
      expectObservable(out$, '^ 20ms !').toBe('--r', { r: 'rk' });
    });
  } finally {
    rmSync(v.dir, { recursive: true, force: true });
  }
});

test('seedKernelView: kallsyms modules go into the kernel view; a seeded one no longer listed (freed meanwhile) is dropped', () => {
  const v = views();
  try {
    v.set(['dummy'], ['dummy']);
    const ks = join(v.dir, 'kallsyms');
    writeFileSync(ks, 'ffffffffc0a01040 d __this_module\t[dummy]\nffffffffc0b01040 d __this_module\t[gone]\n');
    const kernel = fakeKernel([]);
    assert.equal(seedKernelView({ interval: 0, kernel, kallsyms: ks, procModules: v.proc }), 2);
    assert.deepEqual(kernel.mods.map((m) => [m.name, m.seeded]), [['dummy', true]]);
    // no __this_module in kallsyms (a kernel without CONFIG_KALLSYMS_ALL): the section address sysfs shows root
    mkdirSync(join(v.sys, 'dummy', 'sections'), { recursive: true });
    writeFileSync(join(v.sys, 'dummy', 'sections', '.gnu.linkonce.this_module'), '0xffffffffc0a01040\n');
    const k2 = fakeKernel([]);
    assert.equal(seedKernelView({ interval: 0, kernel: k2, kallsyms: join(v.dir, 'none'), procModules: v.proc, sysModule: v.sys }), 1);
    assert.deepEqual(k2.mods.map((m) => [m.name, m.addr]), [['dummy', 'ffffffffc0a01040']]);
    // neither: nothing seeded, no error
    assert.equal(seedKernelView({ interval: 0, kernel: fakeKernel([]), kallsyms: join(v.dir, 'none'), procModules: v.proc, sysModule: join(v.dir, 'nosys') }), 0);
  } finally {
    rmSync(v.dir, { recursive: true, force: true });
  }
});

test('moduleInventory$: a flood of module events asks for one check per settleMs, not one per event', () => {
  const v = views();
  try {
    v.set(['ext4'], ['ext4']);
    const kernel = fakeKernel([km('ext4')]);
    let reads = 0;
    const read = kernel.read;
    kernel.read = () => {
      reads++;
      return read();
    };
    const ts = new TestScheduler((a, b) => assert.deepEqual(a, b));
    ts.run(({ cold, expectObservable }) => {
      // 40 loads, one per ms
      const events$ = cold('l'.repeat(40), { l: { type: 'module_load', name: 'x' } as never });
      const out$ = moduleInventory$({ interval: 0, confirmMs: 2, settleMs: 10, events$, kernel, procModules: v.proc, sysModule: v.sys, now: () => 1, scheduler: ts });
      expectObservable(out$, '^ 60ms !').toBe('');
    });
    // the check at start, then one per 10 ms of the flood (at 10, 21, 32, 43): 5, not 41
    assert.ok(reads <= 6, `${reads} reads`);
  } finally {
    rmSync(v.dir, { recursive: true, force: true });
  }
});
