// The fast path must agree with json-rules-engine on every condition and event: seeded random events
// of every type, random condition trees over every operator, and every condition of rules/*.json.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT_TYPES } from '../../signals/events.ts';
import { compileCondition, compileConditionClosures } from '../../engine/rules/compile.ts';
import { BUNDLED_RULES_DIR } from '../../engine/rules/load.ts';
import type { OperatorContext } from '../../engine/operators/index.ts';
import type { ConditionJson, Facts } from '../../engine/rules/types.ts';
import { Gen, LISTS, bundledConditions, bundledLists, differential, prng, randomEvent, randomRoot, type DiffResult } from './differential-harness.ts';

function ctxOf(lists: Record<string, (string | number)[]>): OperatorContext {
  return { lists: Object.fromEntries(Object.entries(lists).map(([k, v]) => [k, new Set(v)])) };
}

function explain(r: DiffResult): string {
  return r.mismatches.slice(0, 5).map((m) => `jre=${m.jre} fast=${m.fast}\n  cond=${JSON.stringify(m.cond)}\n  facts=${JSON.stringify(m.facts)}`).join('\n');
}

function events(seed: number, perType: number): Facts[] {
  const g = new Gen(prng(seed));
  const out: Facts[] = [];
  for (const t of EVENT_TYPES) for (let i = 0; i < perType; i++) out.push(randomEvent(g, t));
  return out;
}

describe('differential: fast path vs json-rules-engine', () => {
  test('random condition trees over every operator agree on random events of every type', async () => {
    const g = new Gen(prng(0xc0ffee));
    const ctx = ctxOf(LISTS);
    const conds: ConditionJson[] = Array.from({ length: 300 }, () => randomRoot(g));
    const evs = events(7, 20); // 160 events
    const r = await differential(conds, evs, ctx, (c) => compileCondition(c, ctx));
    assert.equal(r.mismatches.length, 0, `generated code: ${r.mismatches.length} mismatches of ${r.compared}:\n${explain(r)}`);
    const rc = await differential(conds, evs, ctx, (c) => compileConditionClosures(c, ctx));
    assert.equal(rc.mismatches.length, 0, `closures: ${rc.mismatches.length} mismatches of ${rc.compared}:\n${explain(rc)}`);
    assert.ok(r.compared > 40_000, `compared ${r.compared}`);
    // the generator must produce both outcomes in quantity, or the comparison proves little
    assert.ok(r.trueCount > r.compared * 0.1 && r.trueCount < r.compared * 0.9, `true ${r.trueCount} of ${r.compared}`);
  });

  test('every condition of the bundled rules/*.json agrees on thousands of events', async (t) => {
    const conds = bundledConditions(BUNDLED_RULES_DIR);
    if (conds.length === 0) return t.skip('no bundled rules yet');
    const ctx = ctxOf({ ...LISTS, ...bundledLists(BUNDLED_RULES_DIR) });
    const compilable = conds.filter(({ cond }) => {
      try {
        compileCondition(cond, ctx);
        return true;
      } catch {
        return false; // `krsi check` reports it; nothing to compare
      }
    });
    const evs = events(11, 250); // 2000 events
    const r = await differential(compilable.map((c) => c.cond), evs, ctx, (c) => compileCondition(c, ctx));
    assert.equal(r.mismatches.length, 0, explain(r));
    assert.ok(r.compared >= compilable.length * evs.length - r.jreErrors);
  });

  test('it catches a deliberately wrong operator (lessThan compiled as lessThanInclusive)', async () => {
    const ctx = ctxOf(LISTS);
    const cond: ConditionJson = { all: [{ fact: 'code', operator: 'lessThan', value: 1 }] };
    const wrong = (c: ConditionJson) => compileCondition(JSON.parse(JSON.stringify(c).replace('"lessThan"', '"lessThanInclusive"')), ctx);
    const evs = events(3, 50);
    const r = await differential([cond], evs, ctx, wrong);
    assert.ok(r.mismatches.length > 0, 'the harness must detect a wrong operator');
    assert.ok(r.mismatches.every((m) => m.facts.type === 'exit' && (m.facts as { code: number }).code === 1));
  });

  test('it catches a wrong path resolution (path applied to a non-object fact)', async () => {
    const ctx = ctxOf(LISTS);
    // json-rules-engine ignores the path when the fact is not an object: pid at "$.x" is the pid
    const cond: ConditionJson = { all: [{ fact: 'pid', path: '$.x', operator: 'equal', value: 100 }] };
    const wrong = () => (f: Facts) => (f.pid as unknown as Record<string, unknown>)?.x === 100;
    const r = await differential([cond], events(5, 20), ctx, wrong);
    assert.ok(r.mismatches.length > 0);
    const right = await differential([cond], events(5, 20), ctx, (c) => compileCondition(c, ctx));
    assert.equal(right.mismatches.length, 0);
  });
});
