// `krsi verdicts list|rm|clear` on the store (without pinned maps: no enforcement loaded on this host;
// `add` and the map side run in the VM, test/vm/e2e.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VerdictStore, now } from '../../enforcers/store.ts';
import { enforcementLoaded } from '../../enforcers/programs.ts';
import { krsiSync } from '../helpers/krsi.ts';

const krsi = (args: string[], state: string) =>
  krsiSync(['verdicts', ...args, '--state', state], { env: { ...process.env, KRSI_LOG_LEVEL: 'error' } });

test('verdicts list, rm and clear work on the store', { skip: enforcementLoaded() ? 'enforcement is pinned on this host: covered in the VM' : undefined }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-vcli-'));
  try {
    const s = VerdictStore.open(dir);
    const n = now();
    for (const [id, ino] of [['r:exec:inode:1:10', 10], ['r:exec:inode:1:11', 11]] as const) {
      s.putSync({ verdict: { id, rule: 'r', op: 'exec', subject: { kind: 'inode', dev: 1, ino }, ts: n.boot, ttl_ns: 0, expires: 0, mode: 'enforce' }, deadline: 0, expires_wall: 0, boot_id: n.bootId, applied_wall: n.wall });
    }
    await s.close();
    let r = krsi(['list', '--format', 'json'], dir);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').map((l) => JSON.parse(l).id).sort(), ['r:exec:inode:1:10', 'r:exec:inode:1:11']);
    r = krsi(['rm', 'r:exec:inode:1:10'], dir);
    assert.equal(r.status, 0, r.stderr);
    r = krsi(['rm', 'r:exec:inode:1:10'], dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no such verdict: r:exec:inode:1:10/);
    r = krsi(['list'], dir);
    assert.match(r.stdout, /verdicts in .*: 1\n/);
    assert.match(r.stdout, /r:exec:inode:1:11/);
    r = krsi(['clear'], dir);
    assert.equal(r.stdout, 'removed 1 verdict(s)\n');
    r = krsi(['add', '--op', 'exec', '--pid', '5', '--inode', '/bin/sh'], dir);
    assert.equal(r.status, 2, 'two subjects is a usage error');
    r = krsi(['add', '--op', 'quarantine', '--inode', '/bin/sh'], dir);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--op quarantine cannot apply to a inode subject \(it can: pid\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
