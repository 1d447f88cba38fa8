// Format 2 and 3 lmdb logs store events in blocks of BLOCK, keyed by the seq of their first event
// (format 3: each value a CRC-32 and the block). These tests look at the stored layout itself (raw
// lmdb), the block still filling (written again when it grows, on disk within OPEN_BLOCK_MS), damaged
// blocks, and logs of format 1 (one value per event).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from 'lmdb';
import type { KrsiEvent } from '../../signals/events.ts';
import { LogWriter, lmdbInfo, readEvents } from '../../engine/eventlog/index.ts';
import { BLOCK, OPEN_BLOCK_MS } from '../../engine/eventlog/lmdb.ts';
import { decodeBlock, encodeBlock } from '../../engine/eventlog/block.ts';
import { generateEvents } from '../../bench/gen.ts';

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'krsi-blocks-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

const INDEX = fileURLToPath(new URL('../../engine/eventlog/index.ts', import.meta.url));
const gen = (count: number, seed = 1, startTs?: number) => [...generateEvents({ count, seed, startTs })];
const strip = (e: KrsiEvent) => ({ ...e, seq: undefined });

async function all(path: string, o = {}): Promise<KrsiEvent[]> {
  const out: KrsiEvent[] = [];
  for await (const b of readEvents(path, o)) out.push(...b);
  return out;
}

/** the raw events database: key -> block bytes (format 3, without the checksum) or decoded values (format 1) */
function raw(path: string, binary = true): Map<number, unknown> {
  const root = open({ path, maxDbs: 4, readOnly: true, noSubdir: false, compression: false });
  try {
    const db = binary ? root.openDB<Buffer, number>({ name: 'events', encoding: 'binary' }) : root.openDB<unknown, number>({ name: 'events', sharedStructuresKey: Symbol.for('structures') });
    return new Map([...db.getRange({})].filter((e) => typeof e.key === 'number').map((e) => [e.key, binary ? Buffer.from(e.value as Buffer).subarray(4) : e.value]));
  } finally {
    void root.close();
  }
}

describe('lmdb log format 3: checksummed blocks', () => {
  test('events are stored in blocks of BLOCK keyed by their first seq, and read back in order', async () => {
    const log = join(dir, 'layout');
    const evs = gen(2 * BLOCK + 500);
    const w = LogWriter.open(log);
    assert.equal(w.format, 'krsi-eventlog-3');
    w.append(evs.map((e) => ({ ...e })));
    await w.close();
    const blocks = raw(log);
    assert.deepEqual([...blocks.keys()], [1, BLOCK + 1, 2 * BLOCK + 1]);
    assert.deepEqual([...blocks.values()].map((b) => decodeBlock(b as Buffer).length), [BLOCK, BLOCK, 500]);
    // stored as given: no seq in the stored events (the reader numbers them)
    assert.deepEqual(decodeBlock(blocks.get(BLOCK + 1) as Buffer)[0], evs[BLOCK]);
    const back = await all(log);
    assert.deepEqual(back.map((e) => e.seq), evs.map((_, i) => i + 1));
    assert.deepEqual(back.map(strip), evs.map(strip));
    assert.deepEqual(lmdbInfo(log), { count: evs.length, first_ts: evs[0].ts, last_ts: evs.at(-1)!.ts, format: 'krsi-eventlog-3' });
  });

  test('a writer opened on a log whose last block is not full goes on filling that block', async () => {
    const log = join(dir, 'reopen');
    const evs = gen(BLOCK + 100, 2);
    for (const [a, b] of [[0, 1000], [1000, 1010], [1010, BLOCK + 100]]) {
      const w = LogWriter.open(log);
      const part = evs.slice(a, b).map((e) => ({ ...e }));
      w.append(part);
      assert.deepEqual(part.map((e) => e.seq), part.map((_, i) => a + i + 1), 'append numbers events after the stored ones');
      await w.close();
    }
    const blocks = raw(log);
    assert.deepEqual([...blocks.keys()], [1, BLOCK + 1]);
    assert.deepEqual([...blocks.values()].map((b) => decodeBlock(b as Buffer).length), [BLOCK, 100]);
    assert.deepEqual((await all(log)).map(strip), evs.map(strip));
    // since/until seek inside and across blocks
    const since = evs[1000].ts;
    const until = evs[BLOCK + 50].ts;
    const want = evs.filter((e) => e.ts >= since && e.ts < until);
    assert.deepEqual((await all(log, { since, until })).map(strip), want.map(strip));
  });

  test('an event that cannot be stored throws; the events before it, in that call and earlier, are kept', async () => {
    const log = join(dir, 'unstorable');
    const evs = gen(10, 8);
    const w = LogWriter.open(log);
    w.append({ ...evs[0] });
    // a BigInt in an unknown field passes validation but has no JSON form
    assert.throws(() => w.append([{ ...evs[1] }, { ...evs[2] }, { ...evs[3], big: 1n } as never, { ...evs[4] }]), TypeError);
    assert.equal(w.count, 3);
    assert.throws(() => w.append([{ ...evs[5] }, { ...evs[0] }]), /before the log's last ts/);
    assert.equal(w.count, 4);
    const more = { ...evs[6] };
    w.append(more);
    assert.equal(more.seq, 5, 'numbering goes on without a gap');
    await w.close();
    assert.deepEqual((await all(log)).map(strip), [evs[0], evs[1], evs[2], evs[5], evs[6]].map(strip));
  });

  test('the block still filling is on disk within OPEN_BLOCK_MS, without flush or close', () => {
    const log = join(dir, 'timer');
    // a writer appends 10 events, then its process is killed: after the timer they are there
    const code = (waitMs: number) => `import { LogWriter } from ${JSON.stringify(INDEX)};
      const { generateEvents } = await import(${JSON.stringify(fileURLToPath(new URL('../../bench/gen.ts', import.meta.url)))});
      const w = LogWriter.open(${JSON.stringify(log)});
      w.append([...generateEvents({ count: 10, seed: 4 })]);
      setTimeout(() => process.kill(process.pid, 'SIGKILL'), ${waitMs});`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code(OPEN_BLOCK_MS * 4)], { stdio: ['ignore', 'inherit', 'inherit'] });
    assert.equal(r.signal, 'SIGKILL');
    assert.equal(lmdbInfo(log).count, 10);
  });

  test('a damaged block stops the read with an error naming the log and the block, after the events before it', async () => {
    const log = join(dir, 'damaged');
    const w = LogWriter.open(log);
    w.append(gen(3 * BLOCK, 3));
    await w.close();
    const root = open({ path: log, maxDbs: 4, noSubdir: false, compression: false });
    const db = root.openDB<Buffer, number>({ name: 'events', encoding: 'binary' });
    const bytes = Buffer.from(db.getBinary(BLOCK + 1)!);
    await db.put(BLOCK + 1, bytes.subarray(0, bytes.length - 10));
    await root.close();
    const got: KrsiEvent[] = [];
    await assert.rejects(
      (async () => {
        for await (const b of readEvents(log, { batch: 100 })) got.push(...b);
      })(),
      (e: Error) => e.message.startsWith(`${log}:${BLOCK + 1}: event block at seq ${BLOCK + 1}: damaged: checksum mismatch`),
    );
    assert.equal(got.length, BLOCK);
  });
});

describe('lmdb log format 1 (one value per event) is still read and appended to', () => {
  test('read with seq = key, since/until, info; appends stay one value per event', async () => {
    const log = join(dir, 'v1');
    const evs = gen(3000, 6);
    // what the previous krsi wrote: meta format, msgpack records with shared structures, key = seq
    const root = open({ path: log, maxDbs: 4, noSubdir: false, compression: false });
    const meta = root.openDB<unknown, string>({ name: 'meta' });
    const events = root.openDB<unknown, number>({ name: 'events', sharedStructuresKey: Symbol.for('structures') });
    await meta.put('format', 'krsi-eventlog-1');
    await meta.put('validated', true);
    await events.transaction(() => evs.slice(0, 2900).forEach((e, i) => events.put(i + 1, e)));
    await root.close();

    assert.deepEqual(lmdbInfo(log), { count: 2900, first_ts: evs[0].ts, last_ts: evs[2899].ts, format: 'krsi-eventlog-1' });
    const w = LogWriter.open(log);
    assert.equal(w.format, 'krsi-eventlog-1');
    w.append(evs.slice(2900).map((e) => ({ ...e })));
    await w.close();
    assert.equal(raw(log, false).size, 3000, 'one key per event');
    const back = await all(log);
    assert.deepEqual(back.map((e) => e.seq), evs.map((_, i) => i + 1));
    assert.deepEqual(back.map(strip), evs.map(strip));
    const since = evs[1234].ts;
    assert.deepEqual((await all(log, { since })).map(strip), evs.filter((e) => e.ts >= since).map(strip));
  });

  test('an unknown format is refused by name', async () => {
    const log = join(dir, 'v9');
    const root = open({ path: log, maxDbs: 4, noSubdir: false, compression: false });
    await root.openDB<unknown, string>({ name: 'meta' }).put('format', 'krsi-eventlog-9');
    await root.close();
    await assert.rejects(all(log), /unsupported event log format "krsi-eventlog-9" \(this krsi reads krsi-eventlog-1, krsi-eventlog-2 and krsi-eventlog-3\)/);
    assert.throws(() => LogWriter.open(log), /unsupported event log format/);
  });
});

test('encodeBlock of one event is what a writer stores for a log of one event', async () => {
  const log = join(dir, 'one');
  const [e] = gen(1, 7);
  const w = LogWriter.open(log);
  w.append({ ...e });
  await w.close();
  assert.deepEqual(raw(log).get(1), encodeBlock([e]));
});
