// The PinnedMapWriter against real BPF hash maps of the enforcement maps' shapes (created here, on
// any root host: no LSM program involved, so this checks the encoding round trip, not enforcement;
// the kernel's side is checked in the VM by test/vm/e2e.test.ts).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needLiveBpf } from '../helpers/prereq.ts';
import { Enforcer, PinnedMapWriter, keyString, type VerdictMaps } from '../../enforcers/index.ts';
import { VerdictStore, bootTimeNs } from '../../enforcers/store.ts';
import { LAYOUTS } from '../../enforcers/maps.ts';
import type { Verdict } from '../../engine/types.ts';

const HASH = 1, ARRAY = 2;

describe('pinned map writer', () => {
  test('verdicts round-trip through real BPF maps', { skip: needLiveBpf() }, async () => {
    const { createMap } = await import('../../bpf/libbpf.ts');
    const V = LAYOUTS.krsi_verdict.size, K = LAYOUTS.krsi_inode_key.size;
    const maps: VerdictMaps = {
      deny_tgid: createMap(HASH, 't_deny_tgid', 4, V, 64),
      deny_inode: createMap(HASH, 't_deny_inode', K, V, 64),
      module_allow: createMap(HASH, 't_mod_allow', K, V, 64),
      module_deny: createMap(HASH, 't_mod_deny', K, V, 64),
      config: createMap(ARRAY, 't_config', 4, LAYOUTS.krsi_config.size, 1),
    };
    const dir = mkdtempSync(join(tmpdir(), 'krsi-pinned-'));
    const enf = new Enforcer(VerdictStore.open(dir), new PinnedMapWriter(maps), { selfPid: process.pid });
    try {
      const now = bootTimeNs();
      const vs: Verdict[] = [
        { id: 'a:quarantine:pid:4242', rule: 'a', op: 'quarantine', subject: { kind: 'pid', pid: process.ppid }, ts: now, ttl_ns: 60e9, expires: now + 60e9, mode: 'enforce' },
        { id: 'b:exec:inode', rule: 'b', op: 'exec', subject: { kind: 'inode', dev: 0x10305, ino: 123456789 }, ts: now, ttl_ns: 0, expires: 0, mode: 'enforce' },
      ];
      for (const v of vs) assert.equal(enf.apply(v), true);
      const dump = enf.maps.dump();
      const got = new Map(dump.entries.map((e) => [keyString(e.key), e.value]));
      const want = new Map(enf.desired().map((e) => [keyString(e.key), e.value]));
      assert.deepEqual(got, want);
      assert.deepEqual(got.get(`deny_tgid:${process.ppid}`), { ops: 7, expires: now + 60e9, rule_id: enf.store.ruleId('a') });
      assert.equal(got.get('deny_inode:66309:123456789')?.ops, 1);
      assert.equal(dump.config?.krsi_tgid, process.pid);
      assert.equal(dump.config?.enforce, 1);
      enf.remove(vs[0].id);
      assert.equal(enf.maps.dump().entries.length, 1);
    } finally {
      await enf.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
