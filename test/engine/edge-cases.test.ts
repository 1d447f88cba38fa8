import { describe, test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../engine/engine.ts';
import type { AlertOut, Output } from '../../engine/types.ts';
import { ev, isType, keyOf, resetSeq, rule, ruleSet, step } from './helpers.ts';

beforeEach(() => resetSeq());

function collect(_e: Engine) {
  const out: Output[] = [];
  return { out, emit: (o: Output) => out.push(o) };
}

const absentRule = () =>
  rule({
    id: 'no-b',
    correlation: { kind: 'absent', key: keyOf(['pid']), keyFields: ['pid'], within: 10, first: step('a', ['exec'], isType('exec')), then: step('b', ['unlink'], isType('unlink')) },
  });

describe('engine edge cases', () => {
  test('a late event (ts going back) is evaluated but does not move event time back', () => {
    const e = new Engine({ rules: ruleSet([absentRule()]) });
    const { out, emit } = collect(e);
    e.push(ev('exec', 100, 1), emit);
    e.push(ev('fork', 50, 2, { child_pid: 3 }), emit);
    assert.equal(e.time, 100);
    assert.equal(e.stats().late, 1);
    assert.equal(out.length, 0);
    e.push(ev('fork', 111, 2, { child_pid: 4 }), emit);
    assert.deepEqual(out.map((o) => (o as AlertOut).ts), [110]);
  });

  test('absent: pending keys beyond the cap are evicted and counted, never fired', () => {
    const e = new Engine({ rules: ruleSet([absentRule()]), maxKeysPerRule: 2 });
    const { out, emit } = collect(e);
    for (let pid = 1; pid <= 5; pid++) e.push(ev('exec', pid, pid), emit);
    e.push(ev('fork', 1000, 9, { child_pid: 10 }), emit);
    assert.deepEqual(out.map((o) => (o as AlertOut).pid), [4, 5]);
    assert.equal(e.stats().correlation['no-b'].evictions, 3);
  });

  test('absent fires several keys in deadline order when time jumps', () => {
    const e = new Engine({ rules: ruleSet([absentRule()]) });
    const { out, emit } = collect(e);
    e.push(ev('exec', 1, 1), emit);
    e.push(ev('exec', 2, 2), emit);
    e.push(ev('unlink', 3, 2, { path: '/x' }), emit);
    e.push(ev('exec', 4, 3), emit);
    e.push(ev('fork', 100, 9, { child_pid: 10 }), emit);
    assert.deepEqual(out.map((o) => [(o as AlertOut).pid, (o as AlertOut).ts]), [
      [1, 11],
      [3, 14],
    ]);
  });

  test('count with threshold 1 fires once per window per key', () => {
    const r = rule({ id: 'c1', types: ['unlink'], match: isType('unlink'), correlation: { kind: 'count', key: keyOf(['pid']), keyFields: ['pid'], within: 10, threshold: 1 } });
    const e = new Engine({ rules: ruleSet([r]) });
    const { out, emit } = collect(e);
    for (const t of [0, 5, 10, 11, 30]) e.push(ev('unlink', t, 1, { path: '/x' }), emit);
    assert.deepEqual(out.map((o) => (o as AlertOut).ts), [0, 11, 30]);
  });

  test('a step taking any event type', () => {
    const r = rule({
      id: 'any',
      correlation: { kind: 'sequence', key: keyOf(['pid']), keyFields: ['pid'], within: 10, steps: [step('x', ['exec'], isType('exec')), step('y', '*', (f) => f.uid === 0)] },
    });
    const e = new Engine({ rules: ruleSet([r]) });
    const { out, emit } = collect(e);
    e.push(ev('exec', 1, 1, { uid: 1000 }), emit);
    e.push(ev('unlink', 2, 1, { uid: 0, path: '/y' }), emit);
    assert.equal(out.length, 1);
  });

  test('kernel denied events in a log are reported and still meet rules on type denied', () => {
    const r = rule({ id: 'on-denied', types: ['denied'], match: isType('denied') });
    const e = new Engine({ rules: ruleSet([r]) });
    const { out, emit } = collect(e);
    e.push(ev('denied', 1, 7, { op: 'exec', key: { pid: 7 }, rule: 'q', reason: 'TGID' }), emit);
    assert.deepEqual(out.map((o) => o.kind), ['denied', 'alert']);
    assert.equal(out[0].kind === 'denied' && out[0].rule, 'q');
    assert.equal(e.stats().per_rule['on-denied'].alerts, 1);
  });
});
