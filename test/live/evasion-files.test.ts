// Live tests (issue 11, items 4 and 5): a running executable deleted by another route than its own
// unlink, on this host's kernel (syscall tracepoints; the BPF-LSM route is test/vm/evasion/files.ts). Each
// case runs real processes in a temp dir, keeps the file events naming its own files, and checks the
// events and what the bundled rules say of them. Signals are stopped in after(), always.
import { evaluate } from '../helpers/evaluate.ts';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needCc, needLiveBpf } from '../helpers/prereq.ts';
import type { FileEvent, KrsiEvent } from '../../signals/events.ts';
import type { LiveSignals } from '../../signals/live.ts';
import type { AlertOut } from '../../engine/types.ts';
import type { CompiledRuleSet } from '../../engine/rules/types.ts';

const skip = needLiveBpf() ?? needCc();
const URING_C = fileURLToPath(new URL('./fixtures/uring.c', import.meta.url));
const FLOOD_C = fileURLToPath(new URL('./fixtures/unlinkflood.c', import.meta.url));
const FILE_TYPES = new Set(['unlink', 'rename', 'truncate']);
const SELF_DELETE_RULES = ['self-deleting-executable', 'running-executable-deleted', 'running-executable-link-removed'];

/** the bundled rules through the engine, over the given events only */
async function alerts(events: KrsiEvent[], rules: CompiledRuleSet): Promise<AlertOut[]> {
  return (await evaluate(events, rules)).filter((o): o is AlertOut => o.kind === 'alert');
}

const rulesOf = (a: AlertOut[]) => a.map((x) => x.rule).sort();

describe('live: running executables deleted by another route (tracepoint route on this kernel)', { skip }, () => {
  let live: LiveSignals | undefined;
  let rules: CompiledRuleSet;
  let dir: string;
  let uring: string;
  let flood: string;
  const events: KrsiEvent[] = [];

  /** the file events whose path (or rename's from) is one of names (as given, relative to dir) */
  const fileEvents = (names: string[]) =>
    events.filter((e): e is FileEvent => FILE_TYPES.has(e.type) && (names.includes((e as FileEvent).path) || names.includes(String((e as { from?: string }).from))));

  /** waits up to 5 s for pred over the file events of names */
  async function waitFile(names: string[], pred: (evs: FileEvent[]) => boolean): Promise<FileEvent[]> {
    for (let i = 0; i < 100 && !pred(fileEvents(names)); i++) await new Promise((r) => setTimeout(r, 50));
    return fileEvents(names);
  }

  /** a shell script in dir; stdout lines */
  function sh(script: string): string[] {
    const r = spawnSync('sh', ['-c', script], { cwd: dir, encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, `sh -c ${script}: ${r.stderr}`);
    return r.stdout.trim().split('\n');
  }

  const ino = (name: string) => statSync(join(dir, name)).ino;
  const dev = () => statSync(dir).dev;
  const copy = (name: string, from = '/bin/sleep') => {
    copyFileSync(from, join(dir, name));
    chmodSync(join(dir, name), 0o755);
    return ino(name);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'krsi-files-'));
    uring = join(dir, 'uring');
    const cc = spawnSync('cc', ['-O2', '-o', uring, URING_C], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `cc uring.c: ${cc.stderr}`);
    flood = join(dir, 'unlinkflood');
    const cf = spawnSync('cc', ['-O2', '-o', flood, FLOOD_C], { encoding: 'utf8' });
    assert.equal(cf.status, 0, `cc unlinkflood.c: ${cf.stderr}`);
    chmodSync(dir, 0o755); // nobody runs the flooder from here
    const { loadRuleDirs, BUNDLED_RULES_DIR } = await import('../../engine/rules/load.ts');
    rules = await loadRuleDirs([BUNDLED_RULES_DIR]);
    const { startSignals } = await import('../../signals/live.ts');
    live = await startSignals({ lostInterval: 0, modulesInterval: 0 });
    live.events$.subscribe((e) => events.push(e));
  });

  after(async () => {
    await live?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('./x & rm x: another process unlinks a running executable (unlinkat)', async () => {
    const i = copy('x1');
    const [pid] = sh('./x1 5 & echo $!; sleep 0.3; rm x1; kill $!');
    const [u] = await waitFile(['x1'], (e) => e.length > 0);
    assert.ok(u, 'an unlink event');
    assert.equal(u.type, 'unlink');
    assert.deepEqual(u.target, { dev: dev(), ino: i, nlink: 0 });
    assert.equal(u.route, 'syscall');
    assert.equal(u.comm, 'rm');
    assert.deepEqual(u.running, { count: 1, pids: [Number(pid)], by: 'other' });
    assert.deepEqual(rulesOf(await alerts([u], rules)), ['running-executable-deleted']);
  });

  test('unlink(2) and a parent deleting its child\'s binary', async () => {
    const i = copy('x2');
    // sh starts x2, then becomes unlink (exec): the deleter is x2's parent
    const [parent, child] = sh('echo $$; ./x2 5 >/dev/null 2>&1 & echo $!; sleep 0.3; exec unlink x2');
    const [u] = await waitFile(['x2'], (e) => e.length > 0);
    assert.ok(u, 'an unlink event');
    spawnSync('kill', [child]);
    assert.equal(u.comm, 'unlink');
    assert.equal(u.pid, Number(parent), 'x2\'s parent deletes it');
    assert.deepEqual(u.target, { dev: dev(), ino: i, nlink: 0 });
    assert.deepEqual(u.running?.pids, [Number(child)]);
    assert.equal(u.running?.by, 'other');
    assert.deepEqual(rulesOf(await alerts([u], rules)), ['running-executable-deleted']);
  });

  test('rename(2) over a running executable', async () => {
    const i = copy('x3');
    copy('x3n', '/bin/true');
    const [pid] = sh('./x3 5 & echo $!; sleep 0.3; mv x3n x3; kill $!');
    const [r] = await waitFile(['x3'], (e) => e.some((x) => x.type === 'rename'));
    assert.ok(r, 'a rename event');
    assert.equal(r.type, 'rename');
    assert.equal((r as { from?: string }).from, 'x3n');
    assert.deepEqual(r.target, { dev: dev(), ino: i, nlink: 0 });
    assert.deepEqual(r.running, { count: 1, pids: [Number(pid)], by: 'other' });
    assert.deepEqual(rulesOf(await alerts([r], rules)), ['running-executable-deleted']);

    // moved away first (not reported: nothing replaced), then deleted under its new name
    const j = copy('x12');
    const [p12] = sh('./x12 5 >/dev/null 2>&1 & echo $!; sleep 0.3; mv x12 x12b; rm x12b; kill $!');
    const [u] = await waitFile(['x12b'], (e) => e.some((x) => x.type === 'unlink'));
    assert.ok(u, 'the unlink under the new name');
    assert.deepEqual(u.target, { dev: dev(), ino: j, nlink: 0 });
    assert.deepEqual(u.running?.pids, [Number(p12)]);
    assert.deepEqual(rulesOf(await alerts([u], rules)), ['running-executable-deleted']);
  });

  test('a hard link made first: rm leaves nlink 1 (medium), rm of the last link (high)', async () => {
    const i = copy('x4');
    const [pid] = sh('ln x4 x4l; ./x4 5 & echo $!; sleep 0.3; rm x4; rm x4l; kill $!');
    const evs = await waitFile(['x4', 'x4l'], (e) => e.length >= 2);
    const first = evs.find((e) => e.path === 'x4')!;
    const last = evs.find((e) => e.path === 'x4l')!;
    assert.deepEqual(first.target, { dev: dev(), ino: i, nlink: 1 });
    assert.deepEqual(last.target, { dev: dev(), ino: i, nlink: 0 });
    assert.deepEqual(first.running?.pids, [Number(pid)]);
    assert.deepEqual(rulesOf(await alerts([first], rules)), ['running-executable-link-removed']);
    assert.deepEqual(rulesOf(await alerts([last], rules)), ['running-executable-deleted']);
  });

  test('truncation: a running binary cannot be opened for writing (ETXTBSY, reported, no alert); a running script can', async () => {
    copy('x5');
    const r = spawnSync('sh', ['-c', './x5 3 >/dev/null 2>&1 & sleep 0.3; : > x5; kill $!'], { cwd: dir, encoding: 'utf8' });
    assert.match(r.stderr, /Text file busy/);
    const [t] = await waitFile(['x5'], (e) => e.length > 0);
    assert.ok(t, 'a truncate event for the refused open(O_TRUNC)');
    assert.equal(t.type, 'truncate');
    assert.equal(t.ret, -26, 'ETXTBSY');
    assert.equal(t.target, undefined, 'the kernel refused it before krsi could name the inode');
    assert.deepEqual(await alerts([t], rules), []);

    // a script being interpreted is no text file: another process truncates it by open(O_TRUNC), then by
    // truncate(1) (open without O_TRUNC, then ftruncate)
    writeFileSync(join(dir, 's6.sh'), '#!/bin/sh\nsleep 2\n' + '#\n'.repeat(100));
    writeFileSync(join(dir, 's7.sh'), '#!/bin/sh\nsleep 2\n' + '#\n'.repeat(100));
    chmodSync(join(dir, 's6.sh'), 0o755);
    chmodSync(join(dir, 's7.sh'), 0o755);
    const i6 = ino('s6.sh');
    const i7 = ino('s7.sh');
    const [p6, p7] = sh('./s6.sh & echo $!; ./s7.sh & echo $!; sleep 0.4; : > s6.sh; truncate -s 0 s7.sh; wait');
    const [t6] = await waitFile(['s6.sh'], (e) => e.length > 0);
    assert.ok(t6, 'open(O_TRUNC) of a running script');
    assert.equal(t6.type, 'truncate');
    assert.deepEqual(t6.target, { dev: dev(), ino: i6, nlink: 1 });
    assert.deepEqual(t6.running, { count: 1, pids: [Number(p6)], by: 'other' });
    assert.deepEqual(rulesOf(await alerts([t6], rules)), ['running-executable-deleted']);
    const t7 = events.find((e): e is FileEvent => e.type === 'truncate' && (e as FileEvent).target?.ino === i7);
    assert.ok(t7, 'ftruncate of a running script');
    assert.deepEqual(t7.running?.pids, [Number(p7)]);
    assert.deepEqual(rulesOf(await alerts([t7], rules)), ['running-executable-deleted']);
  });

  test('a script deleting itself: rm, whose parent interprets it (the exe is the interpreter)', async () => {
    writeFileSync(join(dir, 's8.sh'), '#!/bin/sh\nrm -- "$0"\nsleep 0.2\n');
    chmodSync(join(dir, 's8.sh'), 0o755);
    const i = ino('s8.sh');
    sh('./s8.sh');
    const [u] = await waitFile(['./s8.sh'], (e) => e.length > 0);
    assert.ok(u, 'the unlink of the script');
    assert.equal(u.comm, 'rm');
    assert.deepEqual(u.target, { dev: dev(), ino: i, nlink: 0 });
    assert.equal(u.running?.by, 'parent');
    assert.deepEqual(rulesOf(await alerts([u], rules)), ['self-deleting-executable']);

    // #!/usr/bin/env sh: env execs the interpreter, which opens the script
    writeFileSync(join(dir, 's9.sh'), '#!/usr/bin/env sh\nrm -- "$0"\nsleep 0.2\n');
    chmodSync(join(dir, 's9.sh'), 0o755);
    const i9 = ino('s9.sh');
    sh('./s9.sh');
    const [u9] = await waitFile(['./s9.sh'], (e) => e.length > 0);
    assert.ok(u9, 'the unlink of the env script');
    assert.deepEqual(u9.target, { dev: dev(), ino: i9, nlink: 0 });
    assert.equal(u9.running?.by, 'parent');
    assert.deepEqual(rulesOf(await alerts([u9], rules)), ['self-deleting-executable']);
  });

  test('io_uring unlinkat and renameat of a running executable (the io_uring tracepoints)', async () => {
    const i = copy('x9');
    const j = copy('x10');
    copy('x10n', '/bin/true');
    const [p9, p10] = sh(`./x9 5 >/dev/null & a=$!; echo $a; ./x10 5 >/dev/null & b=$!; echo $b; sleep 0.3; ${uring} unlink x9 >/dev/null; ${uring} rename x10n x10 >/dev/null; kill $a $b`);
    const uringEvs = async (target: number) => {
      for (let k = 0; k < 100; k++) {
        const e = events.find((x): x is FileEvent => FILE_TYPES.has(x.type) && (x as FileEvent).route === 'io_uring' && (x as FileEvent).target?.ino === target);
        if (e) return e;
        await new Promise((r) => setTimeout(r, 50));
      }
      return undefined;
    };
    const u = await uringEvs(i);
    assert.ok(u, 'io_uring unlinkat seen');
    assert.equal(u.type, 'unlink');
    assert.deepEqual(u.target, { dev: dev(), ino: i, nlink: 0 });
    assert.deepEqual(u.running, { count: 1, pids: [Number(p9)], by: 'other' });
    assert.deepEqual(rulesOf(await alerts([u], rules)), ['running-executable-deleted']);
    const r = await uringEvs(j);
    assert.ok(r, 'io_uring renameat seen');
    assert.equal(r.type, 'rename');
    assert.deepEqual(r.running?.pids, [Number(p10)]);
    assert.deepEqual(rulesOf(await alerts([r], rules)), ['running-executable-deleted']);
  });

  test('another mount namespace deletes a running executable (inodes, not paths)', async (t) => {
    if (spawnSync('unshare', ['-m', 'true']).status !== 0) return t.skip('unshare -m unavailable');
    const i = copy('x11');
    const [pid] = sh('./x11 5 & echo $!; sleep 0.3; unshare -m sh -c "mount -t tmpfs none /mnt && rm x11"; kill $!');
    const [u] = await waitFile(['x11'], (e) => e.length > 0);
    assert.ok(u);
    assert.deepEqual(u.target, { dev: dev(), ino: i, nlink: 0 });
    assert.deepEqual(u.running?.pids, [Number(pid)]);
    assert.deepEqual(rulesOf(await alerts([u], rules)), ['running-executable-deleted']);
  });

  test('a forked child keeps running the binary its parent exec\'d: it is named', async () => {
    copy('sh12', '/bin/sh');
    // the subshell is a fork of sh12 that stays sh12 while it waits for sleep
    const [sub] = sh('./sh12 -c \'(sleep 1; :) & echo $!\'; sleep 0.3; rm sh12');
    const [u] = await waitFile(['sh12'], (e) => e.length > 0);
    assert.ok(u);
    assert.ok(u.running?.pids.includes(Number(sub)), `the fork ${sub} runs it: ${JSON.stringify(u.running)}`);
    assert.deepEqual(rulesOf(await alerts([u], rules)), ['running-executable-deleted']);
  });

  test('negatives: a file nobody runs, a binary whose process exited or exec\'d another, a path deleted then recreated, a running binary renamed (not replaced)', async () => {
    writeFileSync(join(dir, 'n1'), 'data');
    copy('n2', '/bin/true');
    copy('n3', '/bin/sh');
    copy('n4');
    copy('n5');
    sh('rm n1; ./n2; rm n2; ./n3 -c "exec sleep 0.5" & sleep 0.2; rm n3; wait');
    // n4 runs; rm n4; a new n4 (nobody runs it) is deleted again; n5 runs and is renamed to n5b
    sh('./n4 3 & a=$!; sleep 0.2; rm n4; cp /bin/true n4; rm n4; ./n5 3 & b=$!; sleep 0.2; mv n5 n5b; kill $a $b');
    // a program that is no interpreter keeps a file named by its first argument open: that file is not "run"
    writeFileSync(join(dir, 'n6'), 'data\n');
    sh('tail n6 -f >/dev/null & a=$!; sleep 0.3; rm n6; kill $a');
    const evs = await waitFile(['n1', 'n2', 'n3', 'n4', 'n5b', 'n6'], (e) => e.filter((x) => x.path === 'n4').length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    const byPath = (p: string) => fileEvents([p]);
    // only unlinks that matter to a rule are reported (a running target, the caller's own executable)
    for (const p of ['n1', 'n2', 'n3', 'n6']) assert.deepEqual(byPath(p), [], `${p}: nobody runs it, not reported`);
    const n4 = byPath('n4');
    assert.equal(n4.length, 1, 'the first n4 ran; the recreated n4 is another inode nobody runs: not reported');
    assert.ok(n4[0].running);
    assert.deepEqual(evs.filter((e) => e.path === 'n5b'), [], 'renaming a running binary away replaces nothing');
  });

  test('a package upgrade by dpkg replaces a running binary: no alert (dpkg exempt by its host inode)', async (t) => {
    if (spawnSync('dpkg-deb', ['--version']).status !== 0) return t.skip('no dpkg-deb');
    const root = join(dir, 'dpkg-root');
    for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'var/lib/dpkg/status'), '');
    writeFileSync(join(root, 'var/lib/dpkg/available'), '');
    for (const v of [1, 2]) {
      const p = join(dir, `pkg${v}`);
      mkdirSync(join(p, 'DEBIAN'), { recursive: true });
      mkdirSync(join(p, 'usr/lib/krsi-ftest'), { recursive: true });
      copyFileSync('/bin/sleep', join(p, 'usr/lib/krsi-ftest/krsi-ftest'));
      if (v === 2) writeFileSync(join(p, 'usr/lib/krsi-ftest/krsi-ftest'), '\n', { flag: 'a' });
      chmodSync(join(p, 'usr/lib/krsi-ftest/krsi-ftest'), 0o755);
      writeFileSync(join(p, 'DEBIAN/control'), `Package: krsi-ftest\nVersion: ${v}.0\nArchitecture: all\nMaintainer: krsi <krsi@localhost>\nDescription: krsi test package\n`);
      const b = spawnSync('dpkg-deb', ['--build', '-Zgzip', p, `${p}.deb`], { encoding: 'utf8' });
      assert.equal(b.status, 0, b.stderr);
    }
    const dpkg = (deb: string) => {
      const r = spawnSync('dpkg', [`--root=${root}`, '--force-script-chrootless', '-i', deb], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    dpkg(join(dir, 'pkg1.deb'));
    const bin = join(root, 'usr/lib/krsi-ftest/krsi-ftest');
    const old = statSync(bin).ino;
    const oldDev = statSync(bin).dev;
    const running = spawn(bin, ['5'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    dpkg(join(dir, 'pkg2.deb'));
    const evs = await (async () => {
      for (let k = 0; k < 100; k++) {
        const e = events.filter((x): x is FileEvent => FILE_TYPES.has(x.type) && (x as FileEvent).target?.ino === old && (x as FileEvent).target?.dev === oldDev);
        if (e.length >= 2) return e;
        await new Promise((r) => setTimeout(r, 50));
      }
      return events.filter((x): x is FileEvent => FILE_TYPES.has(x.type) && (x as FileEvent).target?.ino === old && (x as FileEvent).target?.dev === oldDev);
    })();
    running.kill('SIGKILL');
    // dpkg: link to .dpkg-tmp, rename the new file over (nlink 2 -> 1), unlink .dpkg-tmp (1 -> 0)
    assert.deepEqual(evs.map((e) => [e.type, e.comm, e.target?.nlink]), [['rename', 'dpkg', 1], ['unlink', 'dpkg', 0]]);
    assert.ok(evs.every((e) => e.running?.pids.includes(running.pid!)), 'the running process is named');
    const fired = (await alerts(evs, rules)).filter((a) => SELF_DELETE_RULES.includes(a.rule));
    assert.deepEqual(fired, [], 'dpkg (its host inode) is exempt');
    // the same events from a dpkg that is not the host's (a bind mount over /usr/bin/dpkg): alerts
    const impostor = evs.map((e) => ({ ...e, exe: { ...e.exe, ino: e.exe.ino + 1_000_000_000 } }));
    assert.deepEqual(rulesOf(await alerts(impostor, rules)), ['running-executable-deleted', 'running-executable-link-removed']);
  });

  test('an unprivileged flood of failed unlinks: no record at all, no rare event lost, a deletion meanwhile still seen', async () => {
    const i = copy('x20');
    const before = live!.lostByKind();
    const nFailed = () => events.filter((e) => e.type === 'unlink' && (e as FileEvent).path === '/nonexistent').length;
    const floods = [0, 1].map(() => new Promise<number>((res) => {
      const p = spawn(flood, ['3'], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.on('exit', () => res(Number(out.trim())));
    }));
    await new Promise((r) => setTimeout(r, 500));
    const [pid] = sh('./x20 5 >/dev/null 2>&1 & echo $!; sleep 0.3; rm x20; kill $!');
    const counts = await Promise.all(floods);
    const [u] = await waitFile(['x20'], (e) => e.length > 0);
    assert.ok(counts.every((n) => n > 100_000), `the flooders ran: ${counts}`);
    assert.ok(u, 'the deletion of a running executable during the flood');
    assert.deepEqual(u.target, { dev: dev(), ino: i, nlink: 0 });
    assert.deepEqual(u.running?.pids, [Number(pid)]);
    assert.deepEqual(rulesOf(await alerts([u], rules)), ['running-executable-deleted']);
    assert.equal(nFailed(), 0, `${counts} failed unlinks: no record`);
    const after = live!.lostByKind();
    for (const k of Object.keys(after)) if (k !== 'mprotect' && k !== 'mmap') assert.equal(after[k], before[k], `rare ${k} events lost: ${JSON.stringify(after)}`);
  });

  test('a path longer than the 256 bytes read (./././...): the walk finds the running inode', async () => {
    mkdirSync(join(dir, 'd'));
    copyFileSync('/bin/sleep', join(dir, 'd/impl'));
    chmodSync(join(dir, 'd/impl'), 0o755);
    const i = ino('d/impl');
    const long = 'd/' + './'.repeat(150) + 'impl';
    const [pid] = sh(`./d/impl 5 >/dev/null 2>&1 & echo $!; sleep 0.3; rm ${long}; kill $!`);
    let u: FileEvent | undefined;
    for (let k = 0; k < 100 && !u; k++) {
      u = events.find((e): e is FileEvent => e.type === 'unlink' && (e as FileEvent).target?.ino === i);
      if (!u) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(u, 'the unlink through the long path');
    assert.deepEqual(u.target, { dev: dev(), ino: i, nlink: 0 });
    assert.deepEqual(u.running?.pids, [Number(pid)]);
    assert.deepEqual(rulesOf(await alerts([u], rules)), ['running-executable-deleted']);
  });

  test('`sh script.sh` deleting itself (the interpreter given the script as argv[1])', async () => {
    writeFileSync(join(dir, 's21.sh'), 'rm -- "$0"\nsleep 1\n');
    const i = ino('s21.sh');
    sh(`sh ${join(dir, 's21.sh')}`);
    const [u] = await waitFile([join(dir, 's21.sh')], (e) => e.length > 0);
    assert.ok(u, 'the unlink of the script run as `sh s21.sh`');
    assert.equal(u.comm, 'rm');
    assert.deepEqual(u.target, { dev: dev(), ino: i, nlink: 0 });
    assert.equal(u.running?.by, 'parent');
    assert.deepEqual(rulesOf(await alerts([u], rules)), ['self-deleting-executable']);

    // `python3 x.py` is not bound: Python (3.9 on) opens its script by the absolute path, not argv[1] (signals/LIVE.md)
  });

  test('five running executables each hard-linked then unlinked by name: the unnamed index empties when they exit', async () => {
    const names = [0, 1, 2, 3, 4].map((k) => `h${k}`);
    for (const n of names) copy(n);
    sh(names.map((n) => `ln ${n} ${n}l; ./${n} 1 & sleep 0.1; rm ${n};`).join(' ') + ' wait');
    await waitFile(names, (e) => e.length >= 5);
    await new Promise((r) => setTimeout(r, 300));
    // run_names[RUN_UNNAMED = 1]: 4 slots and an overflow count (offset 64), back to nothing once they all left
    const key = Buffer.alloc(8);
    key.writeBigUInt64LE(1n);
    const v = live!.map!('run_names').lookup(key);
    assert.ok(v === undefined || v.readUInt32LE(64) === 0, `overflow left set: ${v?.readUInt32LE(64)}`);
  });
});

describe('live: the running-executable maps full (a lost event, class running)', { skip }, () => {
  test('run_inode full: the bundled events-lost rule fires', async () => {
    const { startSignals } = await import('../../signals/live.ts');
    const { loadRuleDirs, BUNDLED_RULES_DIR } = await import('../../engine/rules/load.ts');
    const rules = await loadRuleDirs([BUNDLED_RULES_DIR]);
    const live = await startSignals({ lostInterval: 100, modulesInterval: 0, runInodeEntries: 4 });
    const evs: KrsiEvent[] = [];
    live.events$.subscribe((e) => evs.push(e));
    const dir = mkdtempSync(join(tmpdir(), 'krsi-full-'));
    try {
      for (const n of ['f1', 'f2', 'f3']) {
        copyFileSync('/bin/true', join(dir, n));
        chmodSync(join(dir, n), 0o755);
        spawnSync(join(dir, n));
      }
      const lost = async () => {
        for (let k = 0; k < 50; k++) {
          const e = evs.find((x) => x.type === 'lost' && (x as { class: string }).class === 'running');
          if (e) return e;
          await new Promise((r) => setTimeout(r, 100));
        }
        return undefined;
      };
      const e = await lost();
      assert.ok(e, 'a lost event of class running');
      assert.ok(((e as { kinds: Record<string, number> }).kinds.run_inode ?? 0) > 0, JSON.stringify(e));
      assert.deepEqual(rulesOf(await alerts([e], rules)), ['events-lost']);
    } finally {
      await live.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
