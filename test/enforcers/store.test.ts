import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VerdictStore, isExpired, deadlineNow, stateDir, bootTimeNs, type StoredVerdict, type Now } from '../../enforcers/store.ts';
import type { Verdict } from '../../engine/types.ts';

const BOOT = 'boot-a';
function sv(id: string, subject: Verdict['subject'], deadline: number, expiresWall: number, bootId = BOOT): StoredVerdict {
  return {
    verdict: { id, rule: 'r1', op: 'exec', subject, ts: 1000, ttl_ns: deadline ? deadline - 1000 : 0, expires: deadline, mode: 'enforce' },
    deadline, expires_wall: expiresWall, boot_id: bootId, applied_wall: 1,
  };
}
const at = (boot: number, wall: number, bootId = BOOT): Now => ({ boot, wall, bootId });

function withDir(f: (dir: string) => Promise<void> | void) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-store-'));
    try { await f(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
  };
}

describe('verdict store', () => {
  test('verdicts survive close and reopen, keyed by id', withDir(async (dir) => {
    let s = VerdictStore.open(dir);
    s.putSync(sv('a', { kind: 'pid', pid: 42 }, 0, 0));
    s.putSync(sv('b', { kind: 'inode', dev: 2049, ino: 77 }, 5000, 99));
    s.putSync(sv('a', { kind: 'pid', pid: 43 }, 0, 0)); // same id replaces
    await s.close();
    s = VerdictStore.open(dir);
    const all = s.list().sort((x, y) => x.verdict.id.localeCompare(y.verdict.id));
    assert.deepEqual(all.map((x) => x.verdict.id), ['a', 'b']);
    assert.deepEqual(s.get('a')?.verdict.subject, { kind: 'pid', pid: 43 });
    assert.equal(s.remove('a'), true);
    assert.equal(s.remove('a'), false);
    assert.equal(s.clear(), 1);
    assert.deepEqual(s.list(), []);
    await s.close();
  }));

  test('prune removes what expired by boot-time deadline, keeps the rest', withDir(async (dir) => {
    const s = VerdictStore.open(dir);
    s.putSync(sv('past', { kind: 'pid', pid: 1000 }, 5000, 10));
    s.putSync(sv('future', { kind: 'pid', pid: 1001 }, 9000, 10));
    s.putSync(sv('never', { kind: 'inode', dev: 1, ino: 2 }, 0, 0));
    const gone = s.prune(at(6000, 1_000_000));
    assert.deepEqual(gone.map((g) => g.verdict.id), ['past']);
    assert.deepEqual(s.list().map((x) => x.verdict.id).sort(), ['future', 'never']);
    await s.close();
  }));

  test('after a reboot pid verdicts are void and inode verdicts expire by wall clock', () => {
    const other = at(10, 500, 'boot-b');
    assert.equal(isExpired(sv('p', { kind: 'pid', pid: 5 }, 0, 0), other), true);
    assert.equal(isExpired(sv('i', { kind: 'inode', dev: 1, ino: 2 }, 0, 0), other), false);
    assert.equal(isExpired(sv('i', { kind: 'inode', dev: 1, ino: 2 }, 1e12, 400), other), true);
    const live = sv('i', { kind: 'inode', dev: 1, ino: 2 }, 1e12, 800);
    assert.equal(isExpired(live, other), false);
    // 300 ms of wall time left -> the deadline in the new boot is now + 300 ms
    assert.equal(deadlineNow(live, other), 10 + 300e6);
    assert.equal(deadlineNow(live, at(7, 500)), 1e12);
  });

  test('rule ids are small, stable and survive reopen', withDir(async (dir) => {
    let s = VerdictStore.open(dir);
    const a = s.ruleId('rule-a'), b = s.ruleId('rule-b');
    assert.notEqual(a, 0);
    assert.notEqual(a, b);
    assert.equal(s.ruleId('rule-a'), a);
    await s.close();
    s = VerdictStore.open(dir);
    assert.equal(s.ruleId('rule-b'), b);
    assert.equal(s.ruleName(a), 'rule-a');
    assert.equal(s.ruleName(999), undefined);
    await s.close();
  }));

  test('state dir: flag, then KRSI_STATE_DIR, then /var/lib/krsi', () => {
    const saved = process.env.KRSI_STATE_DIR;
    try {
      process.env.KRSI_STATE_DIR = '/x/env';
      assert.equal(stateDir('/x/flag'), '/x/flag');
      assert.equal(stateDir(), '/x/env');
      delete process.env.KRSI_STATE_DIR;
      assert.equal(stateDir(), '/var/lib/krsi');
    } finally {
      if (saved === undefined) delete process.env.KRSI_STATE_DIR; else process.env.KRSI_STATE_DIR = saved;
    }
  });

  test('boot time is monotonic and close to /proc/uptime', async () => {
    const { readFileSync } = await import('node:fs');
    const up = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1e9;
    const a = bootTimeNs(), b = bootTimeNs();
    assert.ok(b >= a);
    assert.ok(Math.abs(a - up) < 2e9, `boot ${a} vs uptime ${up}`);
  });
});
