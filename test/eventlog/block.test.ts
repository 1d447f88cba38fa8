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

  test('values JSON cannot hold are refused, not stored as something else; the block stays as it was', () => {
    assert.throws(() => encodeBlock([undefined]), TypeError);
    assert.throws(() => encodeBlock([Symbol('x')]), TypeError);
    assert.throws(() => encodeBlock([{ ...base, n: 1n }]), TypeError);
    assert.throws(() => encodeBlock([[1n]]), TypeError, 'a BigInt in an array too (JSON.stringify throws)');
    const cyclic: Record<string, unknown> = { ...base };
    cyclic.self = cyclic;
    assert.throws(() => encodeBlock([cyclic]), /nested deeper than 64 levels \(or a cycle\)/);
    let deep: unknown = 1;
    for (let i = 0; i < 70; i++) deep = [deep];
    assert.throws(() => encodeBlock([deep]), TypeError);
    // a failed add leaves the block readable, with the values before it
    const e = new BlockEncoder();
    e.add(base);
    assert.throws(() => e.add({ ...base, half: 'written', bad: 1n }));
    e.add({ ...base, pid: 9 });
    assert.deepEqual(decodeBlock(e.bytes()), [base, { ...base, pid: 9 }]);
  });

  test('toJSON is used as JSON uses it: its result is stored, an undefined result drops the member', () => {
    const v = { ...base, when: { toJSON: (k: string) => `key ${k}` }, gone: { toJSON: () => undefined }, list: [{ toJSON: () => undefined }] };
    assert.deepStrictEqual(decodeBlock(encodeBlock([v])), [asJson(v)]);
  });

  test('objects whose key lists only differ by an empty key or a NUL inside a key get their own reader', () => {
    // joined with a separator, [] and [""] (or ["a\0b"] and ["a", "b"]) would share a compiled reader
    const values = [{ x: {} }, { y: { '': 5 }, z: 7 }, { '': 1 }, { 'a\u0000b': 1 }, { p: {}, q: { a: 7, b: 8 } }];
    assert.deepStrictEqual(decodeBlock(encodeBlock(values)), values);
    assert.deepStrictEqual(decodeBlock(encodeBlock(values.slice(4))), values.slice(4));
  });

  test('events of more than 128 shapes (two-byte shape ids) are numbered too', () => {
    const evs = Array.from({ length: 300 }, (_, i) => ({ ...base, [`extra${i}`]: i }));
    const back = decodeBlock(encodeBlock(evs), 1) as Record<string, unknown>[];
    assert.deepStrictEqual(back.map((e) => e.seq), evs.map((_, i) => i + 1));
    assert.deepStrictEqual(back.map((e) => ({ ...e, seq: undefined })), evs.map((e) => ({ ...e, seq: undefined })));
  });

  test('a damaged block is a BlockError: truncated, trailing bytes, unknown version, bad tag, bad index', () => {
    const good = encodeBlock([...generateEvents({ count: 50, seed: 2 })]);
    for (let cut = 0; cut < good.length; cut += 7) assert.throws(() => decodeBlock(good.subarray(0, cut)), BlockError, `cut at ${cut}`);
    assert.throws(() => decodeBlock(Buffer.concat([good, Buffer.from([0])])), /trailing bytes/);
    const v = Buffer.from(good);
    v[0] = 9;
    assert.throws(() => decodeBlock(v), /unknown block version 9/);
    // an array longer than the bytes left, and arrays inside arrays 5000 deep: refused without
    // allocating for the length or recursing that deep
    assert.throws(() => decodeBlock(Buffer.from([1, 1, 0, 0, 0xdc, 0xff, 0x7f, 0, 0])), /bad array length/);
    const nested = Buffer.concat([Buffer.from([1, 1, 0, 0]), Buffer.alloc(5000 * 2, Buffer.from([0xdc, 1])), Buffer.from([0])]);
    assert.throws(() => decodeBlock(nested), /nested too deeply/);
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

  // last: it fills the process-wide cache of compiled readers, so what follows it reads generically
  test('objects used as maps (thousands of key lists) read back the same past the compiled-reader cap', () => {
    const values = Array.from({ length: 5000 }, (_, i) => ({ ...base, env: { [`VAR_${i}`]: String(i), ...(i % 7 ? {} : { __proto__x: 1 }) } }));
    values.push(JSON.parse('{"ts": 5, "type": "exit", "m": {"__proto__": {"polluted": 1}, "zz_new_shape": 1}}'));
    const back = decodeBlock(encodeBlock(values), 1) as Record<string, unknown>[];
    assert.deepStrictEqual(back.map((e) => ({ ...e, seq: undefined })), values.map((e) => ({ ...asJson(e) as object, seq: undefined })));
    assert.ok(Object.hasOwn(back.at(-1)!.m as object, '__proto__'));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});
