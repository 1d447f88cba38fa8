// Runs in the VM guest (a kernel with modules and kprobes): start the live signals, insmod dummy.ko,
// rm a file with two links, rmmod dummy, insmod a module that hides itself ($KRSI_HIDE_KO, when the
// host could build one), and print what module_load, module_unload, module_list and unlink reported,
// as one JSON line (with the module events themselves, for the host to replay through the rules).
import { spawnSync } from 'node:child_process';
import { linkSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { startSignals } from '../../../signals/live.ts';
import type { KrsiEvent } from '../../../signals/events.ts';
import { shippedModule } from '../../vm/guest/kmod.ts';

// snapshots every second besides those after module events
const live = await startSignals({ lostInterval: 0, modulesInterval: 1000 });
const seen: KrsiEvent[] = [];
live.events$.subscribe((e) => {
  if (e.type === 'module_load' || e.type === 'module_unload' || e.type === 'module_list' || e.type === 'unlink') seen.push(e);
});
let insmod = { status: -1 as number | null, stderr: '' };
let victim: { dev: number; ino: number } | undefined;
let rmPid = 0;
let selfPid = 0;
let rmmod = { status: -1 as number | null, stderr: '' };
let hide: { status: number | null; stderr: string; inProcModules: boolean } | undefined;
const wait = async (done: () => boolean, tries = 100) => {
  for (let i = 0; i < tries && !done(); i++) await new Promise((r) => setTimeout(r, 100));
};
const listedAfter = (i: number, name: string, want: boolean) =>
  seen.slice(i).some((e) => e.type === 'module_list' && e.modules.includes(name) === want);
try {
  // the snapshot at start comes first
  for (let i = 0; i < 50 && !seen.some((e) => e.type === 'module_list'); i++) await new Promise((r) => setTimeout(r, 100));
  const r = spawnSync('insmod', [shippedModule('drivers/net/dummy')], { encoding: 'utf8' }); // kmod's insmod reads .ko.xz too
  insmod = { status: r.status, stderr: r.stderr };
  const done = () => seen.some((e) => e.type === 'module_list' && e.modules.includes('dummy'));
  for (let i = 0; i < 100 && !done(); i++) await new Promise((r) => setTimeout(r, 100));
  // an unlink of another file: its inode comes from the vfs_unlink kprobe
  writeFileSync('/tmp/krsi-victim', 'x');
  linkSync('/tmp/krsi-victim', '/tmp/krsi-victim.link');
  victim = statSync('/tmp/krsi-victim');
  const rm = spawnSync('rm', ['/tmp/krsi-victim']);
  rmPid = rm.pid ?? 0;
  for (let i = 0; i < 50 && !seen.some((e) => e.type === 'unlink' && e.pid === rmPid); i++) await new Promise((r) => setTimeout(r, 100));
  // a copy of the helper deleting its own executable, on the guest's overlayfs
  if (process.env.KRSI_HELPER) {
    const sd = spawnSync(process.env.KRSI_HELPER, ['selfdel', '/tmp'], { encoding: 'utf8' });
    selfPid = sd.pid ?? 0;
    for (let i = 0; i < 50 && !seen.some((e) => e.type === 'unlink' && e.pid === selfPid); i++) await new Promise((r) => setTimeout(r, 100));
  }
  // rmmod dummy: a module_unload, then a snapshot without it
  let mark = seen.length;
  const rm2 = spawnSync('rmmod', ['dummy'], { encoding: 'utf8' });
  rmmod = { status: rm2.status, stderr: rm2.stderr };
  await wait(() => seen.slice(mark).some((e) => e.type === 'module_unload') && listedAfter(mark, 'dummy', false));
  // a module that unlinks itself from the module list: loaded, never unloaded, missing from snapshots
  if (process.env.KRSI_HIDE_KO) {
    mark = seen.length;
    const h = spawnSync('insmod', [process.env.KRSI_HIDE_KO], { encoding: 'utf8' });
    await wait(() => seen.slice(mark).some((e) => e.type === 'module_load') && listedAfter(mark, 'krsi_hide', false));
    hide = { status: h.status, stderr: h.stderr, inProcModules: readFileSync('/proc/modules', 'utf8').includes('krsi_hide') };
  }
} finally {
  await live.stop();
}
const loads = seen.filter((e) => e.type === 'module_load').map((e) => (e as { name: string }).name);
const lists = seen.filter((e) => e.type === 'module_list').map((e) => (e as { modules: string[] }).modules);
const unlink = seen.find((e) => e.type === 'unlink' && e.pid === rmPid) as { target?: unknown } | undefined;
const selfUnlink = seen.find((e) => e.type === 'unlink' && e.pid === selfPid) as { target?: unknown; exe: unknown } | undefined;
process.stdout.write(JSON.stringify({
  unavailable: live.unavailable, insmod, loads, lists: lists.map((m) => m.includes('dummy')), lost: live.lost(),
  victim: victim && { dev: victim.dev, ino: victim.ino, nlink: 1 }, unlinkTarget: unlink?.target,
  selfDelete: selfUnlink && { target: selfUnlink.target, exe: selfUnlink.exe },
  rmmod, unloads: seen.filter((e) => e.type === 'module_unload').map((e) => (e as { name: string }).name), hide,
  moduleEvents: seen.filter((e) => e.type !== 'unlink'),
}) + '\n');
