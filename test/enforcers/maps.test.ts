// enforcers/maps.ts: the map key/value encoders it re-exports from bpf/abi.ts round-trip at the LAYOUTS
// offsets; pin paths; kernelFileId. The denied decoder: test/signals/decode.test.ts (one decoder, both paths).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import {
  LAYOUTS, MAP_PINS, encodeInodeKey, decodeInodeKey, encodeVerdict, decodeVerdict, encodeConfig, decodeConfig, encodeTgidKey, kernelFileId,
} from '../../enforcers/maps.ts';

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

  const c = { krsi_tgid: 4242, mprotect_limit: 100, module_mode: 1, enforce: 1, flags: 1 };
  const cb = encodeConfig(c);
  assert.equal(cb.length, LAYOUTS.krsi_config.size);
  assert.equal(cb.readUInt32LE(LAYOUTS.krsi_config.fields.mprotect_limit), 100);
  assert.equal(cb.readUInt32LE(LAYOUTS.krsi_config.fields.flags), 1);
  assert.deepEqual(decodeConfig(cb), c);
  assert.equal(encodeTgidKey(77).readUInt32LE(0), 77);
  assert.match(MAP_PINS.deny_inode, /^\/sys\/fs\/bpf\/krsi\//);
});

test('kernelFileId: stat()\'s {dev, ino} off overlayfs', () => {
  const st = statSync(process.execPath);
  const id = kernelFileId(process.execPath);
  if (id.dev === st.dev) assert.deepEqual(id, { dev: st.dev, ino: st.ino });
  else assert.equal(id.ino, st.ino); // this host's / is an overlay: the overlay mount's device
});
