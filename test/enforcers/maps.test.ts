// enforcers/maps.ts: dev conversion, key/value encoders round-trip at the LAYOUTS offsets, denied decoder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import {
  LAYOUTS, MAP_PINS, devToKernel, devFromKernel, encodeInodeKey, decodeInodeKey, encodeVerdict, decodeVerdict,
  encodeConfig, decodeConfig, decodeDenied, encodeTgidKey, kernelFileId,
} from '../../enforcers/maps.ts';

test('dev conversion: st_dev <-> MAJOR<<20|MINOR, both ways', () => {
  // 8:1 (sda1): st_dev 0x801, kernel 0x800001
  assert.equal(devToKernel(0x801), (8 << 20) | 1);
  assert.equal(devFromKernel((8 << 20) | 1), 0x801);
  // 0:45 (tmpfs, overlay anonymous devs)
  assert.equal(devToKernel(45), 45);
  // a minor above 255 and a major above 255 (259:65536 nvme partitions / big minors)
  const kdev = (259 << 20) | 0x12345;
  const user = devFromKernel(kdev);
  assert.equal(user, 0x45 | (259 << 8) | (0x12300 << 12));
  assert.equal(devToKernel(user), kdev);
  // this machine's root fs round-trips
  const d = statSync('/').dev;
  assert.equal(devFromKernel(devToKernel(d)), d);
});

test('inode key, verdict, config encode at the LAYOUTS offsets and round-trip', () => {
  const k = encodeInodeKey({ dev: 0x801, ino: 2 ** 40 + 5 });
  assert.equal(k.length, LAYOUTS.krsi_inode_key.size);
  assert.equal(k.readBigUInt64LE(LAYOUTS.krsi_inode_key.fields.ino), 2n ** 40n + 5n);
  assert.equal(k.readUInt32LE(LAYOUTS.krsi_inode_key.fields.dev), (8 << 20) | 1);
  assert.deepEqual(decodeInodeKey(k), { dev: 0x801, ino: 2 ** 40 + 5 });

  const v = { expires: 123_456_789_012_345, ops: 7, rule_id: 42 };
  const vb = encodeVerdict(v);
  assert.equal(vb.length, LAYOUTS.krsi_verdict.size);
  assert.equal(vb.readUInt32LE(LAYOUTS.krsi_verdict.fields.ops), 7);
  assert.deepEqual(decodeVerdict(vb), v);

  const c = { krsi_tgid: 4242, mprotect_limit: 100, module_mode: 1, enforce: 1 };
  const cb = encodeConfig(c);
  assert.equal(cb.length, LAYOUTS.krsi_config.size);
  assert.equal(cb.readUInt32LE(LAYOUTS.krsi_config.fields.mprotect_limit), 100);
  assert.deepEqual(decodeConfig(cb), c);
  assert.equal(encodeTgidKey(77).readUInt32LE(0), 77);
  assert.match(MAP_PINS.deny_inode, /^\/sys\/fs\/bpf\/krsi\//);
});

function deniedRecord(o: { op: number; reason: number; rule_id?: number; enforced?: number; dev?: number; ino?: number }): Buffer {
  const L = LAYOUTS.krsi_denied_event;
  const b = Buffer.alloc(L.size);
  b.writeBigUInt64LE(1_000_000n, 0); // ts
  b.writeUInt32LE(7, 8); // KRSI_EV_DENIED
  b.writeUInt32LE(321, 12); // pid
  b.writeUInt32LE(322, 16); // tid
  b.writeUInt32LE(1, 20); // ppid
  b.writeUInt32LE(0, 24); // uid
  b.writeBigUInt64LE(99n, 40); // exe.ino
  b.writeUInt32LE((8 << 20) | 1, 48); // exe.dev
  b.write('victim', 56);
  b.writeUInt32LE(o.op, L.fields.op);
  b.writeUInt32LE(o.reason, L.fields.reason);
  b.writeUInt32LE(o.rule_id ?? 0, L.fields.rule_id);
  b.writeUInt32LE(o.enforced ?? 1, L.fields.enforced);
  b.writeBigUInt64LE(BigInt(o.ino ?? 0), L.fields.inode);
  b.writeUInt32LE(o.dev ?? 0, L.fields.inode + 8);
  return b;
}

test('denied events decode to DeniedEvent with op, reason, key and rule', () => {
  const e = decodeDenied(deniedRecord({ op: 1, reason: 1, rule_id: 3, dev: (8 << 20) | 1, ino: 1234 }), (id) => (id === 3 ? 'vuln-bin' : undefined))!;
  assert.equal(e.type, 'denied');
  assert.equal(e.op, 'exec');
  assert.equal(e.reason, 'INODE');
  assert.deepEqual(e.key, { dev: 0x801, ino: 1234 });
  assert.equal(e.rule, 'vuln-bin');
  assert.equal(e.pid, 321);
  assert.equal(e.comm, 'victim');
  assert.deepEqual(e.exe, { dev: 0x801, ino: 99, path: '' });
  assert.equal(e.enforced, true);

  const m = decodeDenied(deniedRecord({ op: 2, reason: 3, enforced: 0 }))!;
  assert.equal(m.op, 'mprotect_exec');
  assert.deepEqual(m.key, { counter: 'mprotect_limit', pid: 321 });
  assert.equal(m.enforced, false);
  assert.equal(m.rule, undefined);

  assert.deepEqual(decodeDenied(deniedRecord({ op: 4, reason: 2 }))!.key, { pid: 321 });
  assert.equal(decodeDenied(deniedRecord({ op: 4, reason: 4, dev: 45, ino: 7 }))!.op, 'module_load');
  // not a denied event / truncated
  const other = deniedRecord({ op: 1, reason: 1 });
  other.writeUInt32LE(1, 8);
  assert.equal(decodeDenied(other), undefined);
  assert.equal(decodeDenied(Buffer.alloc(10)), undefined);
});

test('kernelFileId: stat()\'s {dev, ino} off overlayfs', () => {
  const st = statSync(process.execPath);
  const id = kernelFileId(process.execPath);
  if (id.dev === st.dev) assert.deepEqual(id, { dev: st.dev, ino: st.ino });
  else assert.equal(id.ino, st.ino); // this host's / is an overlay: the overlay mount's device
});
