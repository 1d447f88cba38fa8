// EventDecoder (the replay-side reader of lmdb log values) must give exactly what msgpackr gives.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { EventDecoder } from '../../engine/eventlog/msgpack-values.ts';
import { generateEvents } from '../../bench/gen.ts';

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'krsi-decode-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

const base = { ts: 1_000_000_000_123, type: 'exec', pid: 7, ppid: 1, uid: 0, comm: 'sh', exe: { path: '/bin/sh', dev: 2049, ino: 42 } };
const odd: object[] = [
  { ...base, comm: 'héllo wörld ✓', filename: '/tmp/∂', argv: ['a', '', 'ü'.repeat(40)] },
  { ...base, pid: 0, ppid: 4294967295, uid: 65534, code: -1, neg: [-1, -32, -33, -128, -129, -32768, -32769, -2147483648] },
  { ...base, big: 2 ** 40, bigger: Number.MAX_SAFE_INTEGER, frac: 1.5, tiny: -0.25, inf: null, t: true, f: false },
  { ...base, long: 'x'.repeat(47), longer: 'y'.repeat(48), longest: 'z'.repeat(49), huge: 'w'.repeat(70000) },
  { ...base, nested: { a: [{ b: [1, [2, [3]]] }], c: {} }, list: new Array(20).fill('m'), empty: [] },
  { ...base, undef: undefined, 'key with space': 1, __proto__x: 2 },
  { ...base, env: { LD_PRELOAD: '/tmp/x.so', 'WEIRD-NAME': 'v', ünï: 'c' } },
  { ...base, comm: 'a' },
  { ...base, comm: 'ab', exe: { path: '/', dev: 0, ino: 0 } },
];

test('EventDecoder reads lmdb log values exactly as msgpackr does (generated events and odd values)', async () => {
  const path = join(dir, 'log');
  const root = open({ path, maxDbs: 4, compression: false, noSubdir: false });
  const plain = root.openDB<unknown, number>({ name: 'events', sharedStructuresKey: Symbol.for('structures') });
  const values: unknown[] = [...generateEvents({ count: 20_000, seed: 3, attackEvery: 2000 })];
  for (let i = 0; i < 3; i++) values.push(...odd); // a structure seen again is read by the compiled reader
  await plain.transaction(() => values.forEach((v, i) => plain.put(i + 1, v)));
  const fastOptions = { name: 'events', sharedStructuresKey: Symbol.for('structures'), encoder: { Encoder: EventDecoder } };
  const fast = root.openDB<unknown, number>(fastOptions);
  const want = [...plain.getRange({})];
  const got = [...fast.getRange({})];
  assert.equal(got.length, values.length);
  for (let i = 0; i < got.length; i++) assert.deepEqual(got[i], want[i], `value ${i + 1}`);
  const dec = (fast as unknown as { decoder: EventDecoder }).decoder;
  // non-ASCII text, undefined, large numbers, long strings: msgpackr; events: the fast path
  assert.ok(dec.fallbacks < 40, `fallbacks ${dec.fallbacks}`);
  await root.close();
});
