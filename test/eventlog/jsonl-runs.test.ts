// The JSON Lines reader parses runs of lines with one JSON.parse call; these tests pin that it reads
// exactly what parsing line by line would: same events, same line numbers, same located errors.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KrsiEvent } from '../../signals/events.ts';
import { EventError, readEvents } from '../../engine/eventlog/index.ts';

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'krsi-jsonl-runs-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

const ev = (ts: number, extra: object = {}) => ({ ts, type: 'exit', pid: 10, ppid: 1, uid: 0, comm: 'x', exe: { path: '/x', dev: 1, ino: 2 }, code: 0, ...extra });
const line = (ts: number, extra: object = {}) => JSON.stringify(ev(ts, extra));

async function read(text: string, o: object = {}): Promise<{ evs: KrsiEvent[]; err?: EventError; bad: EventError[] }> {
  const p = join(dir, `f${Math.random().toString(36).slice(2)}.jsonl`);
  writeFileSync(p, text);
  const evs: KrsiEvent[] = [];
  const bad: EventError[] = [];
  try {
    for await (const b of readEvents(p, { ...o, onBad: (e) => bad.push(e) })) evs.push(...b);
  } catch (e) {
    if (!(e instanceof EventError)) throw e;
    return { evs, err: e, bad };
  }
  return { evs, bad };
}

describe('JSON Lines reader: runs of lines parsed together', () => {
  test('a bad field deep in a long run: exact line and field, every event before it yielded', async () => {
    const lines = Array.from({ length: 1000 }, (_, i) => line(i + 1));
    lines[699] = JSON.stringify({ ...ev(700), exe: { path: '/x', dev: 1, ino: -1 } });
    const r = await read(lines.join('\n') + '\n');
    assert.equal(r.err?.line, 700);
    assert.equal(r.err?.field, 'exe.ino');
    assert.equal(r.evs.length, 699);
    assert.deepEqual(r.evs.map((e) => e.seq), Array.from({ length: 699 }, (_, i) => i + 1));
  });

  test('a line holding two objects that continue into the next line is invalid JSON on that line', async () => {
    // joined with a comma these two lines would parse as two objects; line by line the first is bad
    const a = line(2).slice(0, -1) + ',"x":{"a":[1]},"y":[{"b":1}';
    const text = `${line(1)}\n${line(2)},${a}\n{"c":2}]}\n${line(3)}\n`;
    const r = await read(text);
    assert.equal(r.err?.line, 2);
    assert.equal(r.err?.field, '');
    assert.match(r.err!.message, /:2: invalid JSON/);
    assert.equal(r.evs.length, 1);
  });

  test('a string holding "}, {" reads the same (per-line path)', async () => {
    const r = await read(`${line(1)}\n${line(2, { note: '}, {' })}\n${line(3)}\n`);
    assert.equal(r.err, undefined);
    assert.deepEqual(r.evs.map((e) => [e.ts, e.seq]), [[1, 1], [2, 2], [3, 3]]);
    assert.equal(r.evs[1].note, '}, {');
  });

  test('blank, indented, CRLF and unterminated last lines keep their line numbers', async () => {
    const text = `${line(1)}\r\n\r\n   ${line(2)}  \n\n${line(3)}\r\n${line(4)}\n \t \n${line(5)}`;
    const r = await read(text);
    assert.equal(r.err, undefined);
    assert.deepEqual(r.evs.map((e) => [e.ts, e.seq]), [[1, 1], [2, 3], [3, 5], [4, 6], [5, 8]]);
  });

  test('two objects on one line, a truncated line, a non-object: each located', async () => {
    for (const [bad, why] of [
      [`${line(2)}${line(2)}`, /:2: invalid JSON/],
      [line(2).slice(0, -3), /:2: invalid JSON/],
      ['[1,2]', /:2: expected a JSON object, got an array/],
      ['{"ts":2}', /:2: field type: missing/],
    ] as const) {
      const r = await read(`${line(1)}\n${bad}\n${line(3)}\n`);
      assert.match(r.err?.message ?? 'no error', why, bad);
      assert.equal(r.evs.length, 1);
    }
  });

  test('--skip-bad inside a run: the bad lines are counted, the rest keep order and line numbers', async () => {
    const lines = Array.from({ length: 600 }, (_, i) => line(i + 1));
    lines[9] = '{"ts": 10, "type": "nope"}';
    lines[299] = line(1); // ts goes backwards
    lines[599] = '{';
    const r = await read(lines.join('\n') + '\n', { skipBad: true });
    assert.equal(r.err, undefined);
    assert.deepEqual(r.bad.map((e) => [e.line, e.field]), [[10, 'type'], [300, 'ts'], [600, '']]);
    assert.equal(r.evs.length, 597);
    assert.deepEqual(r.evs.slice(8, 11).map((e) => e.seq), [9, 11, 12]);
    assert.equal(r.evs.at(-1)!.seq, 599);
  });

  test('--until stops inside a run; --since skips inside a run', async () => {
    const lines = Array.from({ length: 1000 }, (_, i) => line(i + 1));
    const r = await read(lines.join('\n') + '\n', { since: 100, until: 701 });
    assert.equal(r.evs.length, 601);
    assert.equal(r.evs[0].seq, 100);
    assert.equal(r.evs.at(-1)!.seq, 700);
  });
});
