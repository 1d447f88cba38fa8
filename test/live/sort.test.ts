// sortByTs (signals/live.ts): the drained batch order, against Array.prototype.sort on nearly ordered
// and on shuffled batches (stable: equal ts keep their drain order).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KrsiEvent } from '../../signals/events.ts';
import { sortByTs } from '../../signals/live.ts';

const ev = (ts: number, seq: number) => ({ ts, seq }) as unknown as KrsiEvent;

function check(batch: KrsiEvent[]): void {
  const want = [...batch].sort((a, b) => a.ts - b.ts).map((e) => e.seq);
  sortByTs(batch);
  assert.deepEqual(batch.map((e) => e.seq), want);
}

test('sortByTs orders like a stable sort: in order, nearly in order, equal ts, shuffled, tiny', () => {
  // a deterministic generator (no Math.random: a failure must reproduce)
  let x = 12345;
  const rnd = () => ((x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  check([]);
  check([ev(5, 0)]);
  check([ev(2, 0), ev(1, 1)]);
  check(Array.from({ length: 1000 }, (_, i) => ev(i * 10, i)));
  // records of another CPU crossing by a few microseconds
  check(Array.from({ length: 1000 }, (_, i) => ev(i * 10 + (i % 7 === 0 ? -25 : 0), i)));
  check(Array.from({ length: 500 }, (_, i) => ev(Math.floor(i / 3), i)).reverse());
  check(Array.from({ length: 2000 }, (_, i) => ev(Math.floor(rnd() * 100), i)));
  check(Array.from({ length: 2000 }, (_, i) => ev(i + (rnd() < 0.05 ? -Math.floor(rnd() * 50) : 0), i)));
});
