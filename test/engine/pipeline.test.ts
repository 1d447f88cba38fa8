import { describe, test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { TestScheduler } from 'rxjs/testing';
import { from, lastValueFrom, map, toArray } from 'rxjs';
import { krsiEngine } from '../../engine/pipeline.ts';
import { Engine } from '../../engine/engine.ts';
import type { AlertOut, Output } from '../../engine/types.ts';
import { ev, isType, keyOf, resetSeq, rule, ruleSet, step } from './helpers.ts';

const MS = 1_000_000; // virtual ms -> event ns

const newScheduler = () => new TestScheduler((actual, expected) => assert.deepEqual(actual, expected));

// A not followed by B (unlink) for the same pid within 10 ms
const absent = () =>
  ruleSet([
    rule({
      id: 'no-unlink',
      correlation: { kind: 'absent', key: keyOf(['pid']), keyFields: ['pid'], within: 10 * MS, first: step('a', ['exec'], isType('exec')), then: step('b', ['unlink'], isType('unlink')) },
      actions: [{ type: 'alert', message: 'pid {pid} never unlinked' }],
    }),
  ]);

const short = (o: Output) => (o.kind === 'alert' ? `${o.rule}@${(o as AlertOut).ts}` : o.kind);

beforeEach(() => resetSeq());

describe('krsiEngine (RxJS)', () => {
  test('events and batches in, outputs out in the same frame; completes after the source', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const rules = ruleSet([rule({ id: 'exec', types: ['exec'], match: isType('exec') })]);
      const src = cold('-a-----b---|', { a: [ev('exec', 1, 1), ev('fork', 2, 1, { child_pid: 2 }), ev('exec', 3, 2)], b: ev('exec', 4, 3) });
      expectObservable(src.pipe(krsiEngine({ rules }), map(short))).toBe('-(xy)--z---|', { x: 'exec@1', y: 'exec@3', z: 'exec@4' });
    });
  });

  test('replay: an absence fires when the next event passes its deadline, not before', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      // the second event arrives at frame 30 with ts 30 ms: the alert comes out with it, stamped at the deadline
      const src = cold('a 29ms b|', { a: ev('exec', 0, 1), b: ev('fork', 30 * MS, 2, { child_pid: 9 }) });
      const out = src.pipe(krsiEngine({ rules: absent() }), map(short));
      expectObservable(out).toBe('30ms x|', { x: `no-unlink@${10 * MS}` });
    });
  });

  test('live: a heartbeat fires the absence at the first tick past the deadline', () => {
    const ts = newScheduler();
    ts.run(({ cold, expectObservable }) => {
      const src = cold('a 99ms |', { a: ev('exec', 0, 1) });
      const out = src.pipe(krsiEngine({ rules: absent(), heartbeat: { every: 4, clock: () => ts.now() * MS, scheduler: ts } }), map(short));
      // ticks at 4, 8, 12: 12 ms is the first past the 10 ms deadline; the alert is stamped at the deadline
      expectObservable(out).toBe('12ms x 87ms |', { x: `no-unlink@${10 * MS}` });
    });
  });

  test('live: a B within the window cancels; ticks alone never fire it', () => {
    const ts = newScheduler();
    ts.run(({ cold, expectObservable }) => {
      const src = cold('a 7ms b 50ms |', { a: ev('exec', 0, 1), b: ev('unlink', 8 * MS, 1, { path: '/x' }) });
      const out = src.pipe(krsiEngine({ rules: absent(), heartbeat: { every: 4, clock: () => ts.now() * MS, scheduler: ts } }));
      expectObservable(out).toBe('59ms |');
    });
  });

  test('summary last on completion, with the engine\'s counts', async () => {
    const engine = new Engine({ rules: ruleSet([rule({ id: 'exec', types: ['exec'], match: isType('exec') })]) });
    const out = await lastValueFrom(from([[ev('exec', 1, 1), ev('exec', 2, 1)], ev('exit', 3, 1, { code: 0 })]).pipe(krsiEngine({ engine, summary: true }), toArray()));
    assert.deepEqual(out.map((o) => o.kind), ['alert', 'alert', 'summary']);
    const s = out[2];
    assert.ok(s.kind === 'summary');
    assert.equal(s.events, 3);
    assert.equal(s.alerts, 2);
    assert.deepEqual(s.per_rule.exec, { alerts: 2, verdicts: 0, denied: 0 });
    assert.equal(engine.stats().events, 3);
  });

  test('a thrown error becomes the stream\'s error notification', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const src = cold('-a-b-c|', { a: ev('exec', 1, 1), b: null as any, c: ev('exec', 3, 1) });
      expectObservable(src.pipe(krsiEngine({ rules: ruleSet([]) }))).toBe('---#', undefined, new TypeError('evaluate: expected an event, a batch or a tick, got null'));
    });
  });

  test('a downstream subscriber throwing does not count as a rule error', () => {
    const e = new Engine({ rules: ruleSet([rule({ id: 'exec', types: ['exec'] })]) });
    assert.throws(() => e.push(ev('exec', 1, 1), () => { throw new Error('sink down'); }), /sink down/);
    assert.equal(e.stats().errors, 0);
  });
});
