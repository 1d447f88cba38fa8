// lmdb logs record whether every event was validated when written (meta `validated`); readers validate
// every event whatever the mark says (a file can be changed after it was written).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import type { KrsiEvent } from '../../signals/events.ts';
import { EventError, LogWriter, importLog, readEvents } from '../../engine/eventlog/index.ts';

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'krsi-lmdb-valid-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

const ev = (ts: number, extra: object = {}) =>
  ({ ts, type: 'exit', pid: 10, ppid: 1, uid: 0, comm: 'x', exe: { path: '/x', dev: 1, ino: 2 }, code: 0, ...extra }) as KrsiEvent;
const bad = (ts: number) => ({ ...ev(ts), exe: { path: '/x', dev: 1, ino: 'two' } }) as unknown as KrsiEvent;

function meta(path: string): unknown {
  const root = open({ path, maxDbs: 4, readOnly: true, noSubdir: false, compression: false });
  try {
    return root.openDB({ name: 'meta' }).get('validated');
  } finally {
    void root.close();
  }
}

async function read(path: string, o: object = {}): Promise<{ evs: KrsiEvent[]; err?: EventError; bad: EventError[] }> {
  const evs: KrsiEvent[] = [];
  const badOnes: EventError[] = [];
  try {
    for await (const b of readEvents(path, { batch: 2, ...o, onBad: (e) => badOnes.push(e) })) evs.push(...b);
  } catch (e) {
    if (!(e instanceof EventError)) throw e;
    return { evs, err: e, bad: badOnes };
  }
  return { evs, bad: badOnes };
}

describe('lmdb log: validated when written, or validated on read', () => {
  test('an imported log is marked validated and reads back unchanged', async () => {
    const src = join(dir, 'a.jsonl');
    writeFileSync(src, [1, 2, 3].map((t) => JSON.stringify(ev(t))).join('\n') + '\n');
    const log = join(dir, 'a.log');
    await importLog(src, log);
    assert.equal(meta(log), true);
    const r = await read(log);
    assert.deepEqual(r.evs.map((e) => [e.ts, e.seq]), [[1, 1], [2, 2], [3, 3]]);
  });

  test('a writer that stores a bad event marks the log; the reader then names log, seq and field', async () => {
    const log = join(dir, 'b.log');
    const w = LogWriter.open(log);
    w.append([ev(1), ev(2), bad(3), ev(4)]);
    await w.close();
    assert.equal(meta(log), false);
    const r = await read(log);
    assert.equal(r.err?.message, `${log}:3: field exe.ino: expected an integer, got "two"`);
    assert.deepEqual(r.evs.map((e) => e.seq), [1, 2]);
    const skipped = await read(log, { skipBad: true });
    assert.deepEqual(skipped.evs.map((e) => e.seq), [1, 2, 4]);
    assert.deepEqual(skipped.bad.map((e) => [e.line, e.field]), [[3, 'exe.ino']]);
  });

  test('a log marked validated is still validated on read (the mark is no licence to skip)', async () => {
    const log = join(dir, 'c.log');
    // the caller vouches for its events (as importLog does), so the bad one is stored unmarked
    const w = LogWriter.open(log, { validated: true });
    w.append([ev(1), bad(2)]);
    await w.close();
    assert.equal(meta(log), true);
    const marked = await read(log);
    assert.deepEqual([marked.err?.line, marked.err?.field, marked.evs.length], [2, 'exe.ino', 1], 'a log marked validated is checked again');
    const root = open({ path: log, maxDbs: 4, noSubdir: false, compression: false });
    await root.openDB({ name: 'meta' }).remove('validated');
    await root.close();
    const r = await read(log);
    assert.equal(r.err?.line, 2);
    assert.equal(r.err?.field, 'exe.ino');
  });

  test('appending unvouched events to a validated log keeps the mark only while they pass', async () => {
    const log = join(dir, 'd.log');
    const w = LogWriter.open(log);
    w.append([ev(1), ev(2)]);
    await w.close();
    assert.equal(meta(log), true);
    const w2 = LogWriter.open(log);
    w2.append(bad(3));
    await w2.close();
    assert.equal(meta(log), false);
    assert.equal((await read(log)).err?.line, 3);
  });
});
