// Guest side of the `files` evasion area (issue 11, items 4 and 5) on a BPF-LSM kernel: running executables
// deleted by another route, caught by the inode_unlink / inode_rename / path_truncate (file_truncate) hooks,
// io_uring's unlinkat included; the bind-mount trick on /usr/bin/dpkg; and the negatives (a file nobody
// runs, a package upgrade by dpkg, dpkg upgrading its own executable). Everything runs on a tmpfs of its own
// (the guest's / is an overlay, whose inodes stat(2) and the kernel number differently). Returns, per case,
// the file events of its files and the bundled rules' alerts on them; the host (test/vm/evasion/files.ts)
// asserts. `dir` holds what the host built: uring (static), the .debs.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSignals } from '../../../../signals/live.ts';
import type { FileEvent, KrsiEvent } from '../../../../signals/events.ts';
import { BUNDLED_RULES_DIR, loadRuleDirs } from '../../../../engine/rules/load.ts';
import { Engine } from '../../../../engine/engine.ts';
import { unenforced } from '../../../../engine/enforcement/enforcement.ts';
import type { AlertOut, Output } from '../../../../engine/types.ts';

const T = '/run/krsi-files';
const FILE_TYPES = new Set(['unlink', 'rename', 'truncate']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sh(script: string): { code: number | null; out: string[]; err: string } {
  const r = spawnSync('sh', ['-c', script], { cwd: T, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: (r.stdout ?? '').trim().split('\n'), err: `${r.stderr ?? ''}${r.error ?? ''}`.slice(-800) };
}

export async function run(dir: string): Promise<Record<string, unknown>> {
  const steps: string[] = [];
  const step = (s: string) => { steps.push(s); process.stderr.write(`files: ${s}\n`); };
  mkdirSync(T, { recursive: true });
  spawnSync('mount', ['-t', 'tmpfs', 'krsi-files', T]);
  const copy = (name: string, from = '/bin/sleep') => {
    copyFileSync(from, join(T, name));
    chmodSync(join(T, name), 0o755);
    return statSync(join(T, name)).ino;
  };
  const ino = (name: string) => statSync(join(T, name)).ino;
  copyFileSync(join(dir, 'uring'), join(T, 'uring'));
  chmodSync(join(T, 'uring'), 0o755);

  // the guest's "real" dpkg: a copy on the tmpfs at R/usr/bin/dpkg, bind-mounted over /usr/bin/dpkg before
  // the rules load (so that krsi resolves /usr/bin/dpkg to it, as the kernel numbers it)
  const R = join(T, 'root');
  for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', 'usr/bin']) mkdirSync(join(R, d), { recursive: true });
  writeFileSync(join(R, 'var/lib/dpkg/status'), '');
  writeFileSync(join(R, 'var/lib/dpkg/available'), '');
  copyFileSync('/usr/bin/dpkg', join(R, 'usr/bin/dpkg'));
  chmodSync(join(R, 'usr/bin/dpkg'), 0o755);
  const bind = spawnSync('mount', ['--bind', join(R, 'usr/bin/dpkg'), '/usr/bin/dpkg'], { encoding: 'utf8' });
  if (bind.status !== 0) throw new Error(`bind mount of the guest dpkg: ${bind.stderr}`);
  const dpkgIno = statSync('/usr/bin/dpkg').ino;

  // a process that started before krsi: the map is seeded from /proc
  const pre = copy('pre');
  const preProc = spawn(join(T, 'pre'), ['600'], { stdio: 'ignore' }); // killed below

  const rules = await loadRuleDirs([BUNDLED_RULES_DIR]);
  const t0 = Date.now();
  const live = await startSignals({ lostInterval: 0, modulesInterval: 0 });
  const startMs = Date.now() - t0;
  step(`signals started in ${startMs} ms, unavailable: ${JSON.stringify(live.unavailable)}`);
  const events: KrsiEvent[] = [];
  live.events$.subscribe((e) => events.push(e));
  const fileEvs = (pred: (e: FileEvent) => boolean) => events.filter((e): e is FileEvent => FILE_TYPES.has(e.type) && pred(e as FileEvent));
  async function waitFor(pred: (e: FileEvent) => boolean, n = 1): Promise<FileEvent[]> {
    for (let i = 0; i < 80 && fileEvs(pred).length < n; i++) await sleep(100);
    return fileEvs(pred);
  }
  const alerts = (evs: KrsiEvent[]): string[] => {
    const engine = new Engine({ rules, enforcement: unenforced() });
    const out: Output[] = [];
    evs.forEach((e, i) => engine.push({ ...e, seq: i + 1 }, (o) => out.push(o)));
    engine.finish((o) => out.push(o));
    return out.filter((o): o is AlertOut => o.kind === 'alert').map((a) => a.rule).sort();
  };
  const slim = (e: FileEvent) => ({ type: e.type, comm: e.comm, pid: e.pid, path: e.path, from: (e as { from?: string }).from, target: e.target, ret: e.ret, route: e.route, running: e.running, unconfirmed: e.unconfirmed });
  const cases: Record<string, unknown> = {};
  const record = (name: string, evs: FileEvent[], extra: Record<string, unknown> = {}) => {
    cases[name] = { events: evs.map(slim), alerts: alerts(evs), ...extra };
    step(`${name}: ${evs.length} event(s), alerts ${JSON.stringify((cases[name] as { alerts: string[] }).alerts)}`);
  };
  const byIno = (i: number) => (e: FileEvent) => e.target?.ino === i;

  try {
    // another process unlinks a running executable (unlinkat)
    let i = copy('x1');
    let r = sh('./x1 5 >/dev/null 2>&1 & echo $!; sleep 0.3; rm x1; kill $!');
    record('unlinkat', await waitFor(byIno(i)), { pids: r.out.map(Number) });

    // rename over it
    i = copy('x2');
    copy('x2n', '/bin/true');
    r = sh('./x2 5 >/dev/null 2>&1 & echo $!; sleep 0.3; mv x2n x2; kill $!');
    record('rename', await waitFor(byIno(i)), { pids: r.out.map(Number) });

    // a hard link made first, then rm of both names
    i = copy('x3');
    r = sh('ln x3 x3l; ./x3 5 >/dev/null 2>&1 & echo $!; sleep 0.3; rm x3; rm x3l; kill $!');
    record('hardlink', await waitFor(byIno(i), 2), { pids: r.out.map(Number) });

    // truncation: a running binary (ETXTBSY), a running script by open(O_TRUNC) and by truncate(1)
    copy('x4');
    r = sh('./x4 3 >/dev/null 2>&1 & sleep 0.3; : > x4; kill $!');
    record('truncate-binary', await waitFor((e) => e.type === 'truncate' && e.path === 'x4'), { stderr: r.err });
    writeFileSync(join(T, 's5.sh'), '#!/bin/sh\nsleep 2\n' + '#\n'.repeat(100));
    writeFileSync(join(T, 's6.sh'), '#!/bin/sh\nsleep 2\n' + '#\n'.repeat(100));
    chmodSync(join(T, 's5.sh'), 0o755);
    chmodSync(join(T, 's6.sh'), 0o755);
    const i5 = ino('s5.sh'), i6 = ino('s6.sh');
    r = sh('./s5.sh & echo $!; ./s6.sh & echo $!; sleep 0.5; : > s5.sh; truncate -s 0 s6.sh; wait');
    record('truncate-script', [...await waitFor(byIno(i5)), ...await waitFor(byIno(i6))], { pids: r.out.map(Number) });

    // a script deleting itself
    writeFileSync(join(T, 's7.sh'), '#!/bin/sh\nrm -- "$0"\nsleep 0.2\n');
    chmodSync(join(T, 's7.sh'), 0o755);
    i = ino('s7.sh');
    sh('./s7.sh');
    record('script-self-delete', await waitFor(byIno(i)));

    // io_uring unlinkat and renameat (executed by an io-wq worker: no unlink/rename syscall at all)
    i = copy('x8');
    const j = copy('x9');
    copy('x9n', '/bin/true');
    r = sh('./x8 5 >/dev/null 2>&1 & a=$!; echo $a; ./x9 5 >/dev/null 2>&1 & b=$!; echo $b; sleep 0.3; ./uring unlink x8; ./uring rename x9n x9; kill $a $b');
    record('io_uring', [...await waitFor(byIno(i)), ...await waitFor(byIno(j))], { pids: r.out.slice(0, 2).map(Number), results: r.out.slice(2) });

    // a running executable moved away (its name gone, the inode kept under another): inode_rename's old dentry
    i = copy('x10');
    r = sh('./x10 5 >/dev/null 2>&1 & echo $!; sleep 0.3; mv x10 .x10; kill $!');
    record('moved-away', await waitFor(byIno(i)), { pids: r.out.map(Number) });

    // a process that started before krsi
    sh('rm pre');
    record('pre-existing', await waitFor(byIno(pre)), { pids: [preProc.pid] });
    preProc.kill('SIGKILL');

    // the bind-mount trick: an implant mounted over /usr/bin/dpkg in its own mount namespace deletes itself
    i = copy('implant', join(dir, 'selfdel'));
    r = sh(`unshare -m sh -c 'mount --bind ${T}/implant /usr/bin/dpkg && /usr/bin/dpkg ${T}/implant'`);
    record('bind-mount-dpkg', await waitFor(byIno(i)), { code: r.code, err: r.err });

    // negatives: a file nobody runs; a binary whose process exited
    writeFileSync(join(T, 'n1'), 'data');
    copy('n2', '/bin/true');
    const n1 = ino('n1'), n2 = ino('n2');
    sh('rm n1; ./n2; rm n2');
    await sleep(1000); // no event is expected: wait a moment, not for one
    record('negatives', fileEvs((e) => e.path === 'n1' || e.path === 'n2'), { inodes: [n1, n2] });

    // a package upgrade: dpkg replaces a binary a process runs
    const dpkg = (deb: string, exe = '/usr/bin/dpkg') => sh(`${exe} --root=${R} --force-script-chrootless --force-bad-path -i ${join(dir, deb)}`);
    let d = dpkg('ftest1.deb');
    if (d.code !== 0) throw new Error(`dpkg -i ftest1.deb: ${d.err}`);
    const bin = join(R, 'usr/lib/krsi-ftest/krsi-ftest');
    const old = statSync(bin).ino;
    const running = spawn(bin, ['10'], { stdio: 'ignore' });
    await sleep(300);
    d = dpkg('ftest2.deb');
    record('dpkg-upgrade', await waitFor(byIno(old), 2), { code: d.code, err: d.err, pid: running.pid });
    running.kill('SIGKILL');

    // dpkg upgrading itself: R/usr/bin/dpkg (which /usr/bin/dpkg is) installs a package holding usr/bin/dpkg,
    // renaming the new file over its own running executable
    d = dpkg('dpkgself.deb', join(R, 'usr/bin/dpkg'));
    record('dpkg-self-upgrade', await waitFor(byIno(dpkgIno), 2), { code: d.code, err: d.err, replaced: statSync(join(R, 'usr/bin/dpkg')).ino !== dpkgIno });
  } finally {
    await live.stop();
    preProc.kill('SIGKILL');
    spawnSync('umount', ['/usr/bin/dpkg']);
  }
  return { steps, startMs, unavailable: live.unavailable, cases };
}
