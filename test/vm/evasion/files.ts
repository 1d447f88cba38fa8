// Host side of the `files` evasion area (issue 11, items 4 and 5): builds the guest's static helpers
// (io_uring unlinkat/renameat, a self-deleting implant) and the .debs of a package upgrade and of a dpkg
// self-upgrade, then asserts what test/vm/guest/evasion/files.ts saw through the BPF-LSM hooks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../vm.ts';
import type { HostArea } from './index.ts';

function deb(dir: string, name: string, pkg: string, version: string, files: Record<string, string>): string | undefined {
  const p = join(dir, `${name}-pkg`);
  mkdirSync(join(p, 'DEBIAN'), { recursive: true });
  for (const [to, from] of Object.entries(files)) {
    mkdirSync(join(p, to, '..'), { recursive: true });
    copyFileSync(from, join(p, to));
    appendFileSync(join(p, to), version); // another inode, other bytes
    chmodSync(join(p, to), 0o755);
  }
  writeFileSync(join(p, 'DEBIAN/control'), `Package: ${pkg}\nVersion: ${version}\nArchitecture: all\nMaintainer: krsi <krsi@localhost>\nDescription: krsi test package\n`);
  const r = spawnSync('dpkg-deb', ['--build', '-Zgzip', p, join(dir, `${name}.deb`)], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `dpkg-deb --build ${name}: ${r.stderr}${r.error ?? ''}`;
}

type Ev = { type: string; comm: string; pid: number; path: string; target?: { dev: number; ino: number; nlink?: number }; ret?: number; route?: string; running?: { count: number; pids: number[]; by?: string }; unconfirmed?: boolean };
type Case = { events: Ev[]; alerts: string[]; pids?: number[]; [k: string]: unknown };

export const area: HostArea = {
  prepare(dir) {
    for (const [out, src] of [['uring', 'uring.c'], ['selfdel', 'selfdel.c']]) {
      const r = spawnSync('cc', ['-static', '-O2', '-o', join(dir, out), join(REPO_ROOT, 'test/live/fixtures', src)], { encoding: 'utf8' });
      if (r.status !== 0) return `cc -static ${src}: ${r.stderr}${r.error ?? ''}`;
    }
    if (spawnSync('dpkg-deb', ['--version']).status !== 0) return 'no dpkg-deb';
    return deb(dir, 'ftest1', 'krsi-ftest', '1.0', { 'usr/lib/krsi-ftest/krsi-ftest': '/bin/sleep' })
      ?? deb(dir, 'ftest2', 'krsi-ftest', '2.0', { 'usr/lib/krsi-ftest/krsi-ftest': '/bin/sleep' })
      ?? deb(dir, 'dpkgself', 'krsi-dpkg-self', '1.0', { 'usr/bin/dpkg': '/usr/bin/dpkg' });
  },

  register(result) {
    const c = (name: string): Case | undefined => {
      const r = result();
      return r?.cases?.[name];
    };
    const skipped = (t: { skip: (m: string) => void }) => {
      if (result() === undefined) {
        t.skip('prepare skipped the area');
        return true;
      }
      return false;
    };

    test('files: the LSM programs ran (no lsm_files gap)', (t) => {
      if (skipped(t)) return;
      assert.equal(result().unavailable.lsm_files, undefined, JSON.stringify(result().unavailable));
    });

    test('files: another process unlinks a running executable: inode_unlink names it', (t) => {
      if (skipped(t)) return;
      const k = c('unlinkat')!;
      assert.equal(k.events.length, 1, JSON.stringify(k));
      const [e] = k.events;
      assert.equal(e.route, 'lsm');
      assert.equal(e.target?.nlink, 0);
      assert.deepEqual(e.running, { count: 1, pids: [k.pids![0]], by: 'other' });
      assert.deepEqual(k.alerts, ['running-executable-deleted']);
    });

    test('files: rename over a running executable: inode_rename names it', (t) => {
      if (skipped(t)) return;
      const k = c('rename')!;
      const e = k.events.find((x) => x.type === 'rename');
      assert.ok(e, JSON.stringify(k));
      assert.equal(e.route, 'lsm');
      assert.equal(e.target?.nlink, 0);
      assert.deepEqual(e.running?.pids, [k.pids![0]]);
      assert.deepEqual(k.alerts, ['running-executable-deleted']);
    });

    test('files: a hard link made first: nlink 1 then 0, medium then high', (t) => {
      if (skipped(t)) return;
      const k = c('hardlink')!;
      assert.deepEqual(k.events.map((e) => [e.path, e.target?.nlink, e.route]), [['x3', 1, 'lsm'], ['x3l', 0, 'lsm']]);
      assert.deepEqual(k.alerts, ['running-executable-deleted', 'running-executable-link-removed']);
    });

    test('files: truncation of a running binary is refused (ETXTBSY, reported, no alert); of a running script, caught', (t) => {
      if (skipped(t)) return;
      const b = c('truncate-binary')!;
      assert.match(String(b.stderr), /Text file busy/);
      assert.deepEqual(b.events.map((e) => [e.type, e.ret]), [['truncate', -26]]);
      assert.deepEqual(b.alerts, []);
      const s = c('truncate-script')!;
      assert.equal(s.events.length, 2, JSON.stringify(s));
      assert.ok(s.events.every((e) => e.type === 'truncate' && e.running?.by === 'other' && e.ret === undefined), JSON.stringify(s.events));
      assert.deepEqual(s.alerts, ['running-executable-deleted', 'running-executable-deleted']);
    });

    test('files: a script deleting itself (rm, whose parent interprets it)', (t) => {
      if (skipped(t)) return;
      const k = c('script-self-delete')!;
      assert.equal(k.events.length, 1, JSON.stringify(k));
      assert.equal(k.events[0].running?.by, 'parent');
      assert.deepEqual(k.alerts, ['self-deleting-executable']);
    });

    test('files: io_uring unlinkat and renameat of running executables (inode_unlink/inode_rename in an io-wq worker)', (t) => {
      if (skipped(t)) return;
      const k = c('io_uring')!;
      assert.deepEqual(k.results, ['0', '0'], 'both requests succeeded');
      assert.deepEqual(k.events.map((e) => [e.type, e.route]), [['unlink', 'io_uring'], ['rename', 'io_uring']], JSON.stringify(k.events));
      assert.deepEqual(k.events.map((e) => e.running?.pids), [[k.pids![0]], [k.pids![1]]]);
      assert.deepEqual(k.alerts, ['running-executable-deleted', 'running-executable-deleted']);
    });

    test('files: a running executable moved away (mv implant .x): inode_rename names the moved inode', (t) => {
      if (skipped(t)) return;
      const k = c('moved-away')!;
      assert.equal(k.events.length, 1, JSON.stringify(k));
      const [e] = k.events as (Ev & { from?: string })[];
      assert.equal(e.type, 'rename');
      assert.equal(e.path, '.x10');
      assert.equal(e.from, 'x10');
      assert.equal(e.route, 'lsm');
      assert.equal(e.target?.nlink, 1);
      assert.deepEqual(e.running, { count: 1, pids: [k.pids![0]], by: 'other' });
      assert.deepEqual(k.alerts, ['running-executable-link-removed']);
    });

    test('files: a process that started before krsi (seeded from /proc)', (t) => {
      if (skipped(t)) return;
      const k = c('pre-existing')!;
      assert.equal(k.events.length, 1, JSON.stringify(k));
      assert.deepEqual(k.events[0].running?.pids, k.pids);
      assert.deepEqual(k.alerts, ['running-executable-deleted']);
    });

    test('files: an implant bind-mounted over /usr/bin/dpkg in its own mount namespace deletes itself: not exempt', (t) => {
      if (skipped(t)) return;
      const k = c('bind-mount-dpkg')!;
      assert.equal(k.code, 0, String(k.err));
      assert.equal(k.events.length, 1, JSON.stringify(k));
      assert.equal(k.events[0].running?.by, 'self');
      assert.deepEqual(k.alerts, ['self-deleting-executable']);
    });

    test('files: negatives: a file nobody runs, a binary whose process exited', (t) => {
      if (skipped(t)) return;
      const k = c('negatives')!;
      assert.equal(k.events.length, 0, `an unlink nobody runs is not reported: ${JSON.stringify(k)}`);
      assert.deepEqual(k.alerts, []);
    });

    test('files: dpkg upgrades a package whose binary a process runs: no alert', (t) => {
      if (skipped(t)) return;
      const k = c('dpkg-upgrade')!;
      assert.equal(k.code, 0, String(k.err));
      assert.ok(k.events.length >= 1, JSON.stringify(k));
      assert.ok(k.events.every((e) => e.comm === 'dpkg' && e.running?.pids.includes(k.pid as number)), JSON.stringify(k.events));
      assert.deepEqual(k.alerts, []);
    });

    test('files: dpkg upgrading its own executable: no alert', (t) => {
      if (skipped(t)) return;
      const k = c('dpkg-self-upgrade')!;
      assert.equal(k.code, 0, String(k.err));
      assert.equal(k.replaced, true, 'the running dpkg\'s file was replaced');
      assert.ok(k.events.length >= 1, JSON.stringify(k));
      assert.ok(k.events.every((e) => e.running?.by === 'self'), JSON.stringify(k.events));
      assert.deepEqual(k.alerts, []);
    });
  },
};
