// The quarantine's reach in the enforcer (issue 11): a pid verdict covers the descendants the process table
// knew (forked before the verdict), a child forked between the verdict's event and its map write is covered
// when its fork is seen, and the kill op sends SIGKILL from user space to each, never to a reused pid.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Enforcer, MemoryMapWriter } from '../../enforcers/index.ts';
import { VerdictStore } from '../../enforcers/store.ts';
import { killProcess, startNs } from '../../enforcers/kill.ts';
import type { Verdict } from '../../engine/types.ts';

const SELF = 4242;
const v = (op: 'quarantine' | 'kill', pid: number, ts = 5_000_000_000): Verdict => ({ id: `r:${op}:pid:${pid}`, rule: 'r', op, subject: { kind: 'pid', pid }, ts, ttl_ns: 0, expires: 0, mode: 'enforce' });

function setup(born: Record<number, number>) {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-q-'));
  const maps = new MemoryMapWriter();
  const kills: [number, number][] = [];
  const e = new Enforcer(VerdictStore.open(join(dir, 'state')), maps, {
    selfPid: SELF,
    clock: () => ({ boot: 6_000_000_000, wall: 1e12, bootId: 'b1' }),
    procStart: (pid) => (pid in born ? 77 : undefined),
    startNs: (pid) => born[pid],
    kill: (pid, ns) => { kills.push([pid, ns]); return born[pid] === undefined ? 'gone' : 'killed'; },
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
