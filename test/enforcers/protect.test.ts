// Self-protection's user-space side on the host (the LSM programs themselves: test/vm/protect.test.ts):
// the denied-event decoder on tamper records as bpf/protect.bpf.c lays them out, and what krsi learns from
// the kernel about its own objects and about other processes holding fds on them (real maps, real fds).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LAYOUTS, decodeDenied, devToKernel } from '../../enforcers/maps.ts';
import { KRSI_DENY, KRSI_OP } from '../../engine/enforcement/semantics.ts';
import { foreignHolders, krsiObjects } from '../../enforcers/protect.ts';
import { createMap, mapInfo, unpinPath } from '../../bpf/libbpf.ts';
import { needCc, needLiveBpf } from '../helpers/prereq.ts';

/** a struct krsi_denied_event as protect.bpf.c's tamper() writes it */
function record(reason: number, what: number, dev: number, enforced = 1): Buffer {
  const L = LAYOUTS.krsi_denied_event;
  const b = Buffer.alloc(L.size);
  b.writeUInt32LE(7, 8); // KRSI_EV_DENIED
  b.writeUInt32LE(4242, 12);
  b.write('bpftool', 56);
  b.writeUInt32LE(KRSI_OP.TAMPER, L.fields.op);
  b.writeUInt32LE(reason, L.fields.reason);
  b.writeUInt32LE(enforced, L.fields.enforced);
  b.writeBigUInt64LE(BigInt(what), L.fields.inode);
  b.writeUInt32LE(dev, L.fields.inode + 8);
  return b;
}

test('tamper records decode to op "tamper" with a key per reason (krsi.h krsi_deny_reason)', () => {
  const d = (reason: number, what: number, dev: number, enforced?: number) => {
    const ev = decodeDenied(record(reason, what, dev, enforced))!;
    return { op: ev.op, reason: ev.reason, key: ev.key, enforced: ev.enforced, pid: ev.pid };
  };
  assert.deepEqual(d(KRSI_DENY.TAMPER_MAP, 41, 3), { op: 'tamper', reason: 'TAMPER_MAP', key: { map_id: 41, fmode: 3 }, enforced: true, pid: 4242 });
  assert.deepEqual(d(KRSI_DENY.TAMPER_LINK, 7, 34).key, { link_id: 7, cmd: 34 });
  assert.deepEqual(d(KRSI_DENY.TAMPER_PIN, 1234, devToKernel(2049)).key, { dev: 2049, ino: 1234 });
  assert.deepEqual(d(KRSI_DENY.TAMPER_MOUNT, 0, devToKernel(2049)).key, { dev: 2049 });
  assert.deepEqual(d(KRSI_DENY.TAMPER_PTRACE, 300, 0x12).key, { target: 300, mode: 0x12 });
  assert.deepEqual(d(KRSI_DENY.TAMPER_SIGNAL, 300, 19, 0), { op: 'tamper', reason: 'TAMPER_SIGNAL', key: { target: 300, signal: 19 }, enforced: false, pid: 4242 });
});

test("krsiObjects finds the maps this process holds (fdinfo); foreignHolders names another process holding one", { skip: needLiveBpf() ?? needCc() }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-protect-'));
  const pin = `/sys/fs/bpf/krsi-protect-test-${process.pid}`;
  const m = createMap(1 /* HASH */, 'krsi_prot_test', 4, 4, 4);
  let holder: ReturnType<typeof spawn> | undefined;
  try {
    const id = mapInfo(m.fd).id;
    assert.ok(krsiObjects().maps.has(id), 'a map this process holds is one of krsi\'s');
    const cc = spawnSync('cc', ['-O2', '-static', '-o', join(dir, 'ph'), 'test/vm/helpers/protecthelper.c'], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    m.pin(pin);
    holder = spawn(join(dir, 'ph'), ['hold', pin], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    holder.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    for (let i = 0; i < 100 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /^held fd=\d+/);
    assert.deepEqual(foreignHolders(new Set([id]), new Set()), [{ pid: holder.pid, comm: 'ph', map: id }]);
    assert.deepEqual(foreignHolders(new Set([id + 100000]), new Set()), [], 'another id: nobody');
  } finally {
    holder?.kill('SIGKILL');
    unpinPath(pin);
    m.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
