// The quarantine's reach in the enforcer (issue 11): a pid verdict covers the descendants the process table
// knew (forked before the verdict), a child forked between the verdict's event and its map write is covered
// when its fork is seen, and the kill op sends SIGKILL from user space to each, never to a reused pid.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Enforcer, MemoryMapWriter } from '../../enforcers/index.ts';
import { VerdictStore } from '../../enforcers/store.ts';
import { killProcess, startNs } from '../../enforcers/kill.ts';
import type { Verdict } from '../../engine/types.ts';

const SELF = 4242;
const v = (op: 'quarantine' | 'kill', pid: number, ts = 5_000_000_000): Verdict => ({ id: `r:${op}:pid:${pid}`, rule: 'r', op, subject: { kind: 'pid', pid }, ts, ttl_ns: 0, expires: 0, mode: 'enforce' });

function setup(born: Record<number, number>, children: Record<number, { pid: number; born: number }[]> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-q-'));
  const maps = new MemoryMapWriter();
  const kills: [number, number][] = [];
  const e = new Enforcer(VerdictStore.open(join(dir, 'state')), maps, {
    selfPid: SELF,
    clock: () => ({ boot: 6_000_000_000, wall: 1e12, bootId: 'b1' }),
    procStart: (pid) => (pid in born ? 77 : undefined),
    startNs: (pid) => born[pid],
    kill: (pid, ns) => { kills.push([pid, ns]); return born[pid] === undefined ? 'gone' : 'killed'; },
    children: (pid) => children[pid] ?? [],
  });
  return { e, maps, kills, done: async () => { await e.close(); rmSync(dir, { recursive: true, force: true }); } };
}
const tgid = (maps: MemoryMapWriter, pid: number) => maps.get({ map: 'deny_tgid', tgid: pid });

describe('quarantine: descendants and kill', () => {
  test('a pid verdict covers the live descendants forked before it; not pid 1, krsi, a gone one or a reused pid', async () => {
    const s = setup({ 100: 1e9, 101: 2e9, 102: 3e9, 103: 9e9 /* started after the event: reused */ });
    try {
      assert.equal(s.e.apply(v('quarantine', 100), [101, 102, 103, 104, 1, SELF]), true);
      for (const p of [100, 101, 102]) assert.equal(tgid(s.maps, p)?.ops, 7, `pid ${p} covered`);
      for (const p of [103, 104, 1, SELF]) assert.equal(tgid(s.maps, p), undefined, `pid ${p} not covered`);
      assert.deepEqual(s.kills, [], 'no kill for a quarantine');
      // removing the verdict lifts the descendants' copies
      assert.equal(s.e.remove('r:quarantine:pid:100'), true);
      for (const p of [100, 101, 102]) assert.equal(tgid(s.maps, p), undefined);
    } finally { await s.done(); }
  });

  test('kill: SIGKILL from user space to the process and each descendant, with the event time as the reuse guard', async () => {
    const s = setup({ 200: 1e9, 201: 2e9 });
    try {
      assert.equal(s.e.apply(v('kill', 200), [201]), true);
      assert.deepEqual(s.kills, [[200, 5e9], [201, 5e9]]);
      assert.equal(tgid(s.maps, 200)?.ops, 16);
      assert.equal(s.e.kills.killed, 2);
    } finally { await s.done(); }
  });

  test('a child forked before the entry reached the map (the kernel had nothing to copy) is covered, and killed, when its fork is seen', async () => {
    const s = setup({ 300: 1e9, 301: 5.5e9 });
    try {
      s.e.apply(v('kill', 300));
      s.kills.length = 0;
      assert.equal(tgid(s.maps, 301), undefined);
      assert.equal(s.e.forked(300, 301, 5.5e9), 1);
      assert.equal(tgid(s.maps, 301)?.ops, 16, 'written by krsi');
      assert.deepEqual(s.kills.map(([p]) => p), [301]);
    } finally { await s.done(); }
  });
});

describe('quarantine: children forked right after the event (mmap RWX; fork), before the table knows them', () => {
  test('found as the subject\'s children in /proc: covered and killed even though they started after the event; a changed start is not', async () => {
    // 401 forked 1 ms after the event (5e9), 402 its child; 403's start changed since it was found (its pid reused)
    const s = setup({ 400: 1e9, 401: 5.001e9, 402: 5.002e9, 403: 9e9 }, { 400: [{ pid: 401, born: 5.001e9 }, { pid: 402, born: 5.002e9 }, { pid: 403, born: 5.003e9 }, { pid: 1, born: 0 }] });
    try {
      assert.equal(s.e.apply(v('kill', 400)), true);
      assert.deepEqual(s.kills.map(([p]) => p), [400, 401, 402]);
      for (const p of [400, 401, 402]) assert.equal(tgid(s.maps, p)?.ops, 16, `pid ${p} covered`);
      for (const p of [403, 1]) assert.equal(tgid(s.maps, p), undefined, `pid ${p} not covered`);
    } finally { await s.done(); }
  });

  test('a subject that started after the event (its pid reused) gets no /proc children', async () => {
    const s = setup({ 500: 9e9, 501: 9.1e9 }, { 500: [{ pid: 501, born: 9.1e9 }] });
    try {
      s.e.apply(v('quarantine', 500));
      assert.equal(tgid(s.maps, 501), undefined);
    } finally { await s.done(); }
  });
});

describe('quarantine: the process exited before its verdict was applied (mmap RWX; fork(); _exit())', () => {
  test('its fork seen after the verdict gives the child the verdicts (kill and quarantine); its exit ends that', async () => {
    const s = setup({ 601: 5.2e9, 602: 5.3e9 });
    try {
      assert.equal(s.e.apply(v('kill', 600)), false, 'gone');
      assert.equal(s.e.apply(v('quarantine', 600)), false, 'gone');
      assert.equal(s.e.forked(600, 601, 5.2e9), 2);
      assert.equal(tgid(s.maps, 601)?.ops, 16 | 7);
      assert.deepEqual(s.kills.map(([p]) => p), [601]);
      s.e.exited(600);
      assert.equal(s.e.forked(600, 602, 5.3e9), 0, 'after its exit the pid is another process\'s');
      assert.equal(tgid(s.maps, 602), undefined);
    } finally { await s.done(); }
  });
});

describe('live: an injected process makes memory W+X and forks at once', () => {
  const skip = process.getuid?.() !== 0 ? 'needs root (pidfd kill of any process)' : spawnSync('cc', ['--version']).status !== 0 ? 'needs cc' : false;
  test('the verdict\'s kill reaches the child the table does not know yet (/proc), and its quarantine covers it', { skip }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-wxfork-'));
    const so = join(dir, 'qwxfork.so');
    const cc = spawnSync('cc', ['-O2', '-Wall', '-shared', '-fPIC', '-o', so, fileURLToPath(new URL('../vm/helpers/qwxfork.c', import.meta.url))], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    const maps = new MemoryMapWriter();
    const e = new Enforcer(VerdictStore.open(join(dir, 'state')), maps, { selfPid: process.pid });
    const p = spawn('sleep', ['30'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LD_PRELOAD: so } });
    const ended = new Promise<string | null>((r) => p.on('exit', (_c, sig) => r(sig)));
    let child = 0;
    try {
      let err = '';
      p.stderr!.setEncoding('utf8');
      const line = await new Promise<string>((r) => p.stderr!.on('data', (d: string) => { err += d; if (err.includes('\n')) r(err); }));
      const m = /wx=(\d+) child=(\d+) mmap=ok/.exec(line);
      assert.ok(m, line);
      const wxNs = Number(m[1]);
      child = Number(m[2]);
      assert.ok(startNs(child)! >= startNs(p.pid!)!, 'the child is alive and younger than the event\'s process');
      // the engine's table does not know the child: its fork event is behind the W+X one
      assert.equal(e.apply(v('quarantine', p.pid!, wxNs)), true);
      assert.equal(tgid(maps, child)?.ops, 7, 'the child is quarantined');
      assert.equal(e.apply(v('kill', p.pid!, wxNs)), true);
      assert.equal(tgid(maps, child)?.ops, 16 | 7, 'the child got the kill too');
      assert.equal(await ended, 'SIGKILL', 'the process itself');
      const end = Date.now() + 5_000;
      while (startNs(child) !== undefined && !/\) Z /.test(readState(child)) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      assert.ok(startNs(child) === undefined || /\) Z /.test(readState(child)), `the child ${child} was killed too`);
      assert.ok(e.kills.killed >= 2, JSON.stringify(e.kills));
    } finally {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      if (child && startNs(child) !== undefined) try { process.kill(child, 'SIGKILL'); } catch { /* gone */ }
      await e.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('live: an injected process makes memory W+X, forks and exits at once', () => {
  const skip = process.getuid?.() !== 0 ? 'needs root (pidfd kill of any process)' : spawnSync('cc', ['--version']).status !== 0 ? 'needs cc' : false;
  test('the verdict finds its process gone; the child\'s fork event, seen after, gets the kill', { skip }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-wxfork-'));
    const so = join(dir, 'qwxfork.so');
    const cc = spawnSync('cc', ['-O2', '-Wall', '-shared', '-fPIC', '-o', so, fileURLToPath(new URL('../vm/helpers/qwxfork.c', import.meta.url))], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    const maps = new MemoryMapWriter();
    const e = new Enforcer(VerdictStore.open(join(dir, 'state')), maps, { selfPid: process.pid });
    const p = spawn('sleep', ['30'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LD_PRELOAD: so, QWXFORK_EXIT: '1' } });
    let err = '';
    p.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
    await new Promise((r) => p.once('exit', r)); // exited and reaped: gone from /proc
    const m = /wx=(\d+) child=(\d+) mmap=ok/.exec(err);
    assert.ok(m, err);
    p.stderr!.destroy();
    const child = Number(m[2]);
    try {
      assert.ok(startNs(child) !== undefined, 'the child lives');
      // the engine's order: the W+X (the verdict, its process already reaped), then the fork event
      assert.equal(e.apply(v('kill', p.pid!, Number(m[1]))), false);
      assert.equal(e.forked(p.pid!, child, Number(m[1]) + 1_000), 1, "the fork event, just after the W+X one");
      const end = Date.now() + 5_000;
      while (startNs(child) !== undefined && !/\) Z /.test(readState(child)) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      assert.ok(startNs(child) === undefined || /\) Z /.test(readState(child)), `the child ${child} was killed`);
    } finally {
      if (startNs(child) !== undefined) try { process.kill(child, 'SIGKILL'); } catch { /* gone */ }
      await e.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function readState(pid: number): string {
  try { return readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return ') Z '; }
}

describe('kill.ts on real processes', () => {
  test('kills the process it names; refuses a process that started after the event (pid reuse); gone and exempt', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const exited = new Promise<string | null>((r) => child.on('exit', (_c, sig) => r(sig)));
    const pid = child.pid!;
    const born = startNs(pid)!;
    assert.ok(born > 0);
    assert.equal(killProcess(pid, born - 1e9, process.pid), 'reused', 'a process younger than the event is another one');
    assert.equal(killProcess(1, born, process.pid), 'exempt');
    assert.equal(killProcess(process.pid, born, process.pid), 'exempt');
    assert.equal(killProcess(pid, born + 1e9, process.pid), 'killed');
    assert.equal(await exited, 'SIGKILL');
    assert.equal(killProcess(pid, born + 1e9, process.pid), 'gone');
  });
});
