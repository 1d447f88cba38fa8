import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KrsiEvent } from '../../signals/events.ts';
import { EventError, LogWriter, exportLog, importLog, logInfo, readEvents } from '../../engine/eventlog/index.ts';
import { generateEvents } from '../../bench/gen.ts';

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'krsi-eventlog-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

async function all(path: string, o = {}): Promise<KrsiEvent[]> {
  const out: KrsiEvent[] = [];
  for await (const b of readEvents(path, o)) out.push(...b);
  return out;
}

function lines(events: object[]): string {
  return events.map((e) => JSON.stringify(e) + '\n').join('');
}

const ev = (ts: number, extra: object = {}) => ({ ts, type: 'exit', pid: 10, ppid: 1, uid: 0, comm: 'x', exe: { path: '/x', dev: 1, ino: 2 }, code: 0, ...extra });

describe('JSON Lines reader', () => {
  test('streams in batches, in order, seq = line number when absent, extra fields kept', async () => {
    const p = join(dir, 'a.jsonl');
    writeFileSync(p, lines([ev(1), ev(2, { seq: 77 })]) + '\n        \n' + lines([ev(3, { note: 'kept' })]));
    const batches: KrsiEvent[][] = [];
    for await (const b of readEvents(p, { batch: 1 })) batches.push(b);
    assert.deepEqual(batches.map((b) => b.length), [1, 1, 1]);
    const evs = batches.flat();
    assert.deepEqual(evs.map((e) => [e.ts, e.seq]), [[1, 1], [2, 77], [3, 5]]);
    assert.equal(evs[2].note, 'kept');
  });

  test('a bad line throws file:line: field, after yielding the events before it', async () => {
    const p = join(dir, 'bad.jsonl');
    writeFileSync(p, lines([ev(1), ev(2)]) + lines([{ ...ev(3), exe: { path: '/x', dev: 1, ino: 'no' } }]) + lines([ev(4)]));
    const got: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const b of readEvents(p)) got.push(...b.map((e) => e.ts));
      })(),
      (e: EventError) => e instanceof EventError && e.message === `${p}:3: field exe.ino: expected an integer, got "no"` && e.line === 3 && e.field === 'exe.ino',
    );
    assert.deepEqual(got, [1, 2]);
  });

  test('invalid JSON and ts going back are located', async () => {
    const p = join(dir, 'json.jsonl');
    writeFileSync(p, lines([ev(5)]) + '{"ts": 6,\n');
    await assert.rejects(all(p), (e: EventError) => e.line === 2 && e.field === '' && /:2: invalid JSON/.test(e.message));
    writeFileSync(p, lines([ev(5), ev(4)]));
    await assert.rejects(all(p), (e: EventError) => e.line === 2 && e.field === 'ts');
  });

  test('skipBad counts bad lines and goes on', async () => {
    const p = join(dir, 'skip.jsonl');
    writeFileSync(p, lines([ev(1), { ...ev(2), pid: -1 }, ev(3)]) + 'nope\n' + lines([ev(0), ev(4)]));
    const bad: EventError[] = [];
    const evs = await all(p, { skipBad: true, onBad: (e: EventError) => bad.push(e) });
    assert.deepEqual(evs.map((e) => e.ts), [1, 3, 4]);
    assert.deepEqual(bad.map((e) => [e.line, e.field]), [[2, 'pid'], [4, ''], [5, 'ts']]);
  });

  test('multi-byte UTF-8 across read chunk boundaries', async () => {
    const p = join(dir, 'utf8.jsonl');
    const comm = 'é€😀'.repeat(50);
    // ~3 MiB of lines made mostly of 2-, 3- and 4-byte characters: chunk ends fall inside them
    const n = Math.floor((3 * 2 ** 20) / (comm.length * 3));
    writeFileSync(p, lines(Array.from({ length: n }, (_, i) => ev(i, { comm: comm + i }))));
    const evs = await all(p);
    assert.equal(evs.length, n);
    assert.ok(evs.every((e, i) => e.comm === comm + i));
  });

  test('a last line without newline, CRLF line ends', async () => {
    const p = join(dir, 'crlf.jsonl');
    writeFileSync(p, JSON.stringify(ev(1)) + '\r\n' + JSON.stringify(ev(2)));
    assert.deepEqual((await all(p)).map((e) => e.ts), [1, 2]);
  });
});

describe('lmdb log', () => {
  const gen = [...generateEvents({ count: 20000, seed: 7, attackEvery: 2000 })];
  const src = () => {
    const p = join(dir, 'gen.jsonl');
    writeFileSync(p, lines(gen));
    return p;
  };

  test('import -> export gives back identical JSON Lines; read gives seq = position', async () => {
    const p = src();
    const log = join(dir, 'rt.lmdb');
    const r = await importLog(p, log);
    assert.deepEqual(r, { imported: 20000, bad: 0, total: 20000, resumedAfter: 0 });
    const out = join(dir, 'rt.jsonl');
    assert.equal(await exportLog(log, out), 20000);
    assert.equal(readFileSync(out, 'utf8'), readFileSync(p, 'utf8'));
    const evs = await all(log);
    assert.equal(evs.length, 20000);
    assert.deepEqual(evs.map((e) => e.seq).slice(0, 3), [1, 2, 3]);
    assert.deepEqual({ ...evs[999], seq: undefined }, { ...gen[999], seq: undefined });
  });

  test('crash safety: a bad line midway stops the import; everything before it stays committed', async () => {
    const p = join(dir, 'mid.jsonl');
    const good = gen.slice(0, 10000);
    writeFileSync(p, lines(good) + '{"ts":\n' + lines(gen.slice(10000, 10010)));
    const log = join(dir, 'mid.lmdb');
    await assert.rejects(importLog(p, log), (e: EventError) => e.line === 10001 && /invalid JSON/.test(e.message));
    // reopened from disk, as another process would
    const back = await all(log);
    assert.equal(back.length, 10000);
    assert.equal(back[9999].ts, good[9999].ts);
    // appending goes on after the last committed event
    const more = join(dir, 'more.jsonl');
    writeFileSync(more, lines(gen.slice(10000, 10010)));
    assert.deepEqual(await importLog(more, log), { imported: 10, bad: 0, total: 10010, resumedAfter: 0 });
    // the same file again: the log recorded how far it got, so nothing is imported twice
    assert.deepEqual(await importLog(more, log), { imported: 0, bad: 0, total: 10010, resumedAfter: 10 });
    // and refuses to go back in time: a located error for imports, a RangeError for direct appends
    const copy = join(dir, 'more-copy.jsonl');
    writeFileSync(copy, lines(gen.slice(10000, 10010)));
    await assert.rejects(importLog(copy, log), (e: EventError) => e.line === 1 && e.field === 'ts' && e.message.includes(`(the last event of ${log})`));
    const w = LogWriter.open(log);
    assert.throws(() => w.append({ ...gen[0] }), /before the log's last ts/);
    await w.close();
  });

  test('skip-bad import counts the bad lines', async () => {
    const p = join(dir, 'skipimp.jsonl');
    writeFileSync(p, lines(gen.slice(0, 5)) + 'garbage\n' + lines([{ ...gen[5], type: 'nope' }]) + lines(gen.slice(6, 10)));
    const log = join(dir, 'skip.lmdb');
    const r = await importLog(p, log, { skipBad: true });
    assert.deepEqual(r, { imported: 9, bad: 2, total: 9, resumedAfter: 0 });
    const info = await logInfo(log);
    assert.equal(info.count, 9);
    assert.equal(info.first_ts, gen[0].ts);
    assert.equal(info.last_ts, gen[9].ts);
    assert.equal(Object.values(info.types).reduce((a, b) => a + b, 0), 9);
  });

  test('since/until: ns bounds and durations after the first event, same for both formats', async () => {
    const p = src();
    const log = join(dir, 'range.lmdb');
    await importLog(p, log);
    const t0 = gen[0].ts;
    const since = gen[5000].ts;
    const until = gen[12000].ts;
    const want = gen.filter((e) => e.ts >= since && e.ts < until).map((e) => e.ts);
    const rel = gen.filter((e) => e.ts >= t0 + 50e6 && e.ts < t0 + 100e6).map((e) => e.ts);
    assert.ok(want.length > 6000 && rel.length > 100);
    for (const path of [p, log]) {
      assert.deepEqual((await all(path, { since, until })).map((e) => e.ts), want, path);
      assert.deepEqual((await all(path, { since: String(since), until: String(until) })).map((e) => e.ts), want, path);
      assert.deepEqual((await all(path, { since: '50ms', until: '100ms' })).map((e) => e.ts), rel, path);
      assert.equal((await all(path, { since: gen[19999].ts + 1 })).length, 0);
    }
    assert.throws(() => readEvents(p, { since: '5 parsecs' }), /--since: expected integer nanoseconds or a duration/);
  });
});
