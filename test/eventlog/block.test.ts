// The block codec of format 2 lmdb logs: a block decodes to exactly what JSON would give back, and a
// damaged block is an error, never wrong events.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockEncoder, BlockError, decodeBlock, encodeBlock } from '../../engine/eventlog/block.ts';
import { generateEvents } from '../../bench/gen.ts';

const asJson = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;

const base = { ts: 1_000_000_000_123, type: 'exec', pid: 7, ppid: 1, uid: 0, comm: 'sh', exe: { path: '/bin/sh', dev: 2049, ino: 42 } };
const odd: object[] = [
  { ...base, comm: 'héllo wörld ✓ 🙂', filename: '/tmp/∂', argv: ['a', '', 'ü'.repeat(40), 'x'.repeat(24), 'y'.repeat(25)] },
  { ...base, pid: 0, ppid: 4294967295, uid: 65534, code: -1, neg: [-1, -127, -128, -129, -32769, -2147483648, -2147483649, 4294967296] },
  { ...base, big: 2 ** 40, bigger: Number.MAX_SAFE_INTEGER, frac: 1.5, tiny: -0.25, minus0: -0, nan: NaN, inf: -Infinity, t: true, f: false, n: null },
  { ...base, huge: 'w'.repeat(70000), nested: { a: [{ b: [1, [2, [3]]] }], c: {} }, empty: [], list: new Array(300).fill(0).map((_, i) => i) },
  { ...base, undef: undefined, inArray: [undefined, () => 1, 3], fn: () => 1, 'key with space': 1, '': 'empty key', 'quote"key': 2 },
  JSON.parse('{"__proto__": {"polluted": true}, "ts": 5, "type": "exit"}'),
  { ...base, env: { LD_PRELOAD: '/tmp/x.so', 'WEIRD-NAME': 'v', ünï: 'c' } },
  { ...base, when: new Date(0) },
  { ...base, keys: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, `v${i}`])) },
];

describe('event block codec', () => {
  test('generated events and odd values decode to what JSON.parse(JSON.stringify(x)) gives', () => {
    const values: unknown[] = [...generateEvents({ count: 5000, seed: 5, attackEvery: 500 })];
    for (let i = 0; i < 3; i++) values.push(...odd); // shapes and strings seen again in a block
    const back = decodeBlock(encodeBlock(values));
    assert.equal(back.length, values.length);
    for (let i = 0; i < values.length; i++) assert.deepStrictEqual(back[i], asJson(values[i]), `value ${i}`);
    // __proto__ stays an own member, as JSON.parse makes it; no prototype was set
    const proto = back[5000 + 5] as Record<string, unknown>;
    assert.ok(Object.hasOwn(proto, '__proto__'));
    assert.equal(Object.getPrototypeOf(proto), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('decodeBlock(bytes, firstSeq) numbers events stored without seq; a stored seq is kept', () => {
    const evs = [{ ...base }, { ...base, seq: 77 }, { ...base, pid: 8 }, 5, { ...base, exe: { ...base.exe } }];
    const back = decodeBlock(encodeBlock(evs), 10) as Record<string, unknown>[];
    assert.deepStrictEqual(back, [{ ...base, seq: 10 }, { ...base, seq: 77 }, { ...base, pid: 8, seq: 12 }, 5, { ...base, seq: 14 }]);
    assert.equal((back[4].exe as Record<string, unknown>).seq, undefined, 'nested objects are not numbered');
    assert.deepStrictEqual(decodeBlock(encodeBlock(evs)), evs);
  });

  test('each event is encoded as it was when added (later changes to the object are not stored)', () => {
    const e = new BlockEncoder();
    const ev = { ...base };
    e.add(ev);
    (ev as Record<string, unknown>).seq = 1;
    ev.pid = 99;
    e.add({ ...base, pid: 8 });
    assert.deepEqual(decodeBlock(e.bytes()), [base, { ...base, pid: 8 }]);
    // bytes() can be taken again as the block grows (the writer rewrites the block still filling)
    e.add(base);
    assert.equal(decodeBlock(e.bytes()).length, 3);
  });

  test('a lone UTF-16 surrogate is stored as U+FFFD (UTF-8 cannot hold it); everything else in strings is kept', () => {
    assert.deepEqual(decodeBlock(encodeBlock(['a\ud800b', '\u0000\u001f\u007f\u0080\uffff', '\ud83d\ude42'])), ['a\ufffdb', '\u0000\u001f\u007f\u0080\uffff', '\ud83d\ude42']);
  });

  test('values JSON cannot hold are refused, not stored as something else', () => {
    assert.throws(() => encodeBlock([undefined]), TypeError);
    assert.throws(() => encodeBlock([Symbol('x')]), TypeError);
  });

  test('a damaged block is a BlockError: truncated, trailing bytes, unknown version, bad tag, bad index', () => {
    const good = encodeBlock([...generateEvents({ count: 50, seed: 2 })]);
    for (let cut = 0; cut < good.length; cut += 7) assert.throws(() => decodeBlock(good.subarray(0, cut)), BlockError, `cut at ${cut}`);
    assert.throws(() => decodeBlock(Buffer.concat([good, Buffer.from([0])])), /trailing bytes/);
    const v = Buffer.from(good);
    v[0] = 9;
    assert.throws(() => decodeBlock(v), /unknown block version 9/);
    // every single-byte corruption either decodes to something or throws a BlockError, nothing else
    let errors = 0;
    for (let i = 1; i < good.length; i += 3) {
      const bad = Buffer.from(good);
      bad[i] ^= 0xa5;
      try {
        decodeBlock(bad);
      } catch (e) {
        assert.ok(e instanceof BlockError, `byte ${i}: ${String(e)}`);
        errors++;
      }
    }
    assert.ok(errors > 0);
  });
});
