// Guest side of the modules area (test/vm/evasion/modules.ts builds the modules into dir): real modules
// hiding from the module views while krsi's live signals run with a short inventory period, then the
// module allowlist in the kernel (BPF-LSM) against a look-alike, a file rewritten in place, kexec and a
// firmware read. Returns what it observed; the host asserts.
import { spawnSync, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSignals } from '../../../../signals/live.ts';
import type { KrsiEvent } from '../../../../signals/events.ts';
import { plainModule } from '../kmod.ts';
import { loadEnforcement, unloadEnforcement } from '../../../../enforcers/programs.ts';
import { Enforcer, ModuleResolver, PinnedMapWriter, type VerdictMaps } from '../../../../enforcers/index.ts';
import { VerdictStore } from '../../../../enforcers/store.ts';
import type { CompiledRuleSet } from '../../../../engine/rules/types.ts';
import type { DecodedDenied } from '../../../../enforcers/maps.ts';
import type { AlertOut, Output } from '../../../../engine/types.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sh = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
};
const listed = (name: string) => readFileSync('/proc/modules', 'utf8').split('\n').some((l) => l.split(' ')[0] === name);

async function inventory(dir: string): Promise<Record<string, unknown>> {
  const rk = (n: string) => join(dir, 'rk', `${n}.ko`);
  // before krsi: one module already hidden (list_del in its init), one that hides on command once krsi runs
  const pre = { hide: sh('insmod', [join(dir, 'hide', 'krsi_hide.ko')]), pre: sh('insmod', [rk('krsi_pre'), 'mode=1', 'delay_ms=-1']) };
  // what the seeding at start can read (kernels differ: kallsyms' data symbols, the sections sysfs shows root)
  const seedSources = (() => {
    const r: Record<string, unknown> = {};
    try { r.kallsyms = (readFileSync('/proc/kallsyms', 'utf8').match(/__this_module\t\[krsi_pre\]/g) ?? []).length; } catch (e) { r.kallsyms = String(e); }
    try { r.sections = readFileSync('/sys/module/krsi_pre/sections/.gnu.linkonce.this_module', 'utf8').trim(); } catch (e) { r.sections = String(e); }
    try { r.kptr = readFileSync('/proc/sys/kernel/kptr_restrict', 'utf8').trim(); } catch (e) { r.kptr = String(e); }
    return r;
  })();
  const live = await startSignals({ lostInterval: 0, modulesInterval: 0, inventoryInterval: 1000, inventoryConfirmMs: 300 });
  const seen: KrsiEvent[] = [];
  live.events$.subscribe((e) => {
    if (e.type === 'module_inventory' || e.type === 'module_load' || e.type === 'module_unload' || e.type === 'module_list') seen.push(e);
  });
  const waitFor = async (ok: () => boolean, ms = 8000) => {
    for (let t = 0; t < ms && !ok(); t += 100) await sleep(100);
  };
  const invOf = (n: string) => seen.filter((e) => e.type === 'module_inventory' && e.name === n);
  const out: Record<string, any> = { pre, seedSources };
  try {
    await waitFor(() => invOf('krsi_hide').length > 0, 5000);
    // krsi runs (and seeded its kernel view at start): the module loaded before it hides now, on command
    writeFileSync('/sys/module/krsi_pre/parameters/hide_now', '1');
    let firstLoadTs = 0;
    // the negative: a shipped module, from the kernel's module tree, that stays listed, then leaves
    {
      const rel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
      mkdirSync(`/lib/modules/${rel}/kernel/drivers/net`, { recursive: true });
      const lib = plainModule('drivers/net/dummy', `/lib/modules/${rel}/kernel/drivers/net/dummy.ko`);
      const mark = seen.length;
      const ins = sh(join(dir, 'modhelper'), ['finit', lib]);
      await waitFor(() => seen.slice(mark).some((e) => e.type === 'module_load'));
      firstLoadTs = seen.slice(mark).find((e) => e.type === 'module_load')?.ts ?? 0;
      await sleep(2500);
      const rm = sh('rmmod', ['dummy']);
      await sleep(1500);
      // a module named like an allowlisted one from another file: stays listed (no inventory event), alerts by its path
      const fake = sh(join(dir, 'modhelper'), ['finit', join(dir, 'fake', 'dummy.ko'), 'mode=0']);
      await sleep(1500);
      const rm2 = sh('rmmod', ['dummy']);
      await sleep(1500);
      out.dummy = {
        insmod: ins.out === 'ok' ? 0 : 1, rmmod: rm.code, out: ins.out + rm.out, fake: fake.out, rmFake: rm2.code,
        real: [realpathSync(lib), realpathSync(join(dir, 'fake', 'dummy.ko'))],
      };
    }
    out.firstLoadTs = firstLoadTs;
    // unlinks itself and deletes its kobject in its init; then a decoy of the same name that stays
    {
      const hide = sh(join(dir, 'modhelper'), ['finit', rk('krsi_rk'), 'mode=2']);
      await waitFor(() => invOf('krsi_rk').length > 0);
      const decoy = sh(join(dir, 'modhelper'), ['finit', rk('krsi_rk'), 'mode=0']);
      await waitFor(() => invOf('krsi_rk').length > 1);
      out.rk = { hide: hide.out, decoy: decoy.out };
    }
    // a real module, then an impostor that fakes its list entry, deletes its kobject and takes the real one's name
    {
      const real = sh(join(dir, 'modhelper'), ['finit', rk('krsi_twin'), 'mode=0']);
      const ren = sh(join(dir, 'modhelper'), ['finit', rk('krsi_ren'), 'mode=4 as=krsi_twin']);
      const proc = readFileSync('/proc/modules', 'utf8').split('\n').map((l) => l.split(' ')[0]);
      const views = { procTwin: proc.filter((n) => n === 'krsi_twin').length, procRen: proc.filter((n) => n === 'krsi_ren').length, sysRen: existsSync('/sys/module/krsi_ren') };
      await waitFor(() => invOf('krsi_twin').length > 0);
      out.twin = { real: real.out, ren: ren.out, views };
    }
    // hides 3 s after its load: listed at first
    {
      const mark = seen.length;
      sh('insmod', [rk('krsi_late'), 'mode=1', 'delay_ms=3000']);
      await waitFor(() => seen.slice(mark).some((e) => e.type === 'module_load'));
      const loadTs = seen.slice(mark).find((e) => e.type === 'module_load')?.ts ?? 0;
      const listedAfterLoad = listed('krsi_late');
      await waitFor(() => invOf('krsi_late').length > 0, 10_000);
      out.late = { loadTs, listedAfterLoad };
    }
    // hidden from /proc/modules only, 500 ms after its load (its state set back to UNFORMED)
    sh('insmod', [rk('krsi_filt'), 'mode=3', 'delay_ms=500']);
    await waitFor(() => invOf('krsi_filt').length > 0);
    await waitFor(() => invOf('krsi_pre').length > 0, 10_000);
    out.unavailable = live.unavailable;
  } finally {
    await live.stop();
  }
  out.events = seen.filter((e) => e.type === 'module_inventory').map(({ pid: _p, ppid: _pp, uid: _u, comm: _c, exe: _e, ...rest }) => rest);
  // the bundled rules on what the kernel reported. The kernel names a module file from the mount namespace's
  // root, and this guest runs chrooted at the initramfs' /root (test/vm/run-in-vm.sh): its /lib/modules is
  // /root/usr/lib/modules there, outside the module tree as the rule reads it; on a host that is not
  // chrooted the path is /usr/lib/modules/... So the rules see the paths with that prefix taken off
  const CHROOT = '/root';
  out.rawPaths = seen.filter((e) => e.type === 'module_load' && (e as { path?: string }).path).map((e) => (e as { path: string }).path);
  for (const e of seen) {
    const m = e as { type: string; path?: string };
    if (m.type === 'module_load' && m.path?.startsWith(`${CHROOT}/`)) m.path = m.path.slice(CHROOT.length);
  }
  const { loadRuleDirs, BUNDLED_RULES_DIR } = await import('../../../../engine/rules/load.ts');
  const { Engine } = await import('../../../../engine/engine.ts');
  const engine = new Engine({ rules: await loadRuleDirs([BUNDLED_RULES_DIR]) });
  const alerts: Output[] = [];
  seen.forEach((e, i) => engine.push({ ...e, seq: i + 1 }, (o) => alerts.push(o)));
  // kernel-module-not-allowlisted on what module_load reported: the path of each alert's load
  out.notAllowlisted = alerts
    .filter((o): o is AlertOut => o.kind === 'alert' && o.rule === 'kernel-module-not-allowlisted')
    .map((a) => seen[a.events[0] - 1] as { name?: string; path?: string })
    .map((e) => ({ name: e.name, path: e.path }));
  out.dummyLoads = seen.filter((e) => e.type === 'module_load' && e.name === 'dummy').map((e) => ({ path: (e as { path?: string }).path, file: (e as { file?: unknown }).file }));
  out.alerts = alerts
    .filter((o): o is AlertOut => o.kind === 'alert' && o.rule === 'kernel-module-hidden-from-a-view')
    .map((a) => /kernel module (\S+)/.exec(a.message)?.[1]);
  return out;
}

async function allowlist(dir: string): Promise<Record<string, unknown>> {
  const helper = join(dir, 'modhelper');
  // the module tree the resolver reads, on a tmpfs (cp over a file keeps its inode there)
  const lib = '/mnt/krsi-modlib';
  mkdirSync(lib, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', lib]);
  mkdirSync(join(lib, 'kernel/drivers/net'), { recursive: true });
  const allowed = plainModule('drivers/net/dummy', join(lib, 'kernel/drivers/net/dummy.ko'));
  mkdirSync('/lib/firmware', { recursive: true });
  writeFileSync('/lib/firmware/krsi-test.bin', 'krsi');
  // the firmware loader resolves paths in init's root, where the guest's / is /root (run-in-vm.sh chroots)
  const fwPath = '/sys/module/firmware_class/parameters/path';
  try {
    writeFileSync(fwPath, '/root/lib/firmware');
  } catch {
    // no custom path parameter: the default paths are tried
  }
  const out: Record<string, any> = {};
  const h = await loadEnforcement({ selfPid: process.pid });
  const denied: DecodedDenied[] = [];
  const stop = h.onDenied((e) => denied.push(e));
  const enf = new Enforcer(VerdictStore.open('/root/krsi-modstate'), new PinnedMapWriter(h.maps as unknown as VerdictMaps, true, () => {}), {
    selfPid: process.pid, modules: new ModuleResolver(lib),
  });
  const set = {
    rules: [{ id: 'kernel-module-not-allowlisted', mode: 'enforce', kernel: { module_allowlist: 'al' }, source: { enabled: true } }],
    lists: { al: new Set(['dummy']) },
    byType: new Map(),
  } as unknown as CompiledRuleSet;
  const last = async (pid: () => number) => {
    await sleep(200);
    return denied.filter((d) => d.pid === pid()).pop()?.reason;
  };
  try {
    // a firmware read from a module's work, 1.5 s after its load (loaded before the allowlist is on)
    const fw = sh(helper, ['finit', join(dir, 'rk', 'krsi_fw.ko'), 'fw=1 delay_ms=1500']);
    enf.configure(set);
    const deniedBefore = denied.length;
    await sleep(2500);
    out.firmware = {
      load: fw.out, result: Number(readFileSync('/sys/module/krsi_fw/parameters/fw_result', 'utf8').trim()),
      denied: denied.slice(deniedBefore).map((d) => d.reason),
    };
    // the allowlisted file
    out.original = sh(helper, ['finit', allowed]).out;
    sh('rmmod', ['dummy']);
    // a module named dummy from another file
    let pid = 0;
    const run = (args: string[]) => {
      const r = spawnSync(helper, args, { encoding: 'utf8' });
      pid = r.pid ?? 0;
      return r.stdout.trim();
    };
    const lookalike = run(['finit', join(dir, 'fake', 'dummy.ko')]);
    out.lookalike = { out: lookalike, reason: await last(() => pid) };
    // the allowlisted file rewritten in place with it
    const before = statSync(allowed).ino;
    copyFileSync(join(dir, 'fake', 'dummy.ko'), allowed);
    const sameInode = statSync(allowed).ino === before;
    const rewritten = run(['finit', allowed]);
    out.rewritten = { sameInode, out: rewritten, reason: await last(() => pid) };
    // kexec: any file, and kexec_load
    const kf = run(['kexec_file', '/bin/true']);
    out.kexecFile = { out: kf, reason: await last(() => pid) };
    const kl = run(['kexec_load']);
    out.kexecLoad = { out: kl, reason: await last(() => pid) };
    // resolved again (as at krsi's start), the rewritten file is the allowlisted one (our look-alike: mode 0)
    enf.configure(set);
    out.reresolved = run(['finit', allowed]);
    sh('rmmod', ['dummy']);
    // the allowlist off: kexec is the kernel's business again
    enf.configure({ rules: [], lists: {}, byType: new Map() } as unknown as CompiledRuleSet);
    const ko = run(['kexec_file', '/bin/true']);
    out.kexecOff = { out: ko, reason: await last(() => pid) };
  } finally {
    await enf.close();
    await stop();
    h.setConfig({ module_mode: 0 });
    h.close();
    try {
      writeFileSync(fwPath, '');
    } catch {
      // as above
    }
    unloadEnforcement(); // the next area starts from no enforcement
  }
  return out;
}

export async function run(dir: string): Promise<Record<string, unknown>> {
  return { inventory: await inventory(dir), allow: await allowlist(dir) };
}
