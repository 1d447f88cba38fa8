// The json-rules-engine baseline (one Engine with every rule's per-event matches) agrees with the
// compiled rule set, rule by rule and step by step, on generated events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT_TYPES } from '../../signals/events.ts';
import { createJreBaseline, evaluateWithJre } from '../../engine/rules/jre.ts';
import { loadRuleSources, loadRuleDirs, BUNDLED_RULES_DIR } from '../../engine/rules/load.ts';
import type { CompiledRuleSet, Facts } from '../../engine/rules/types.ts';
import { Gen, prng, randomEvent } from './differential-harness.ts';

function fastNames(set: CompiledRuleSet, f: Facts): string[] {
  const out: string[] = [];
  for (const r of set.rules) {
    const c = r.correlation;
    if (!c || c.kind === 'count' || c.kind === 'distinct') {
      if (r.match(f)) out.push(r.id);
      if (c && c.until?.match(f)) out.push(`${r.id}#until`);
    } else if (c.kind === 'sequence') {
      for (const s of c.steps) if (s.match(f)) out.push(`${r.id}#${s.id}`);
      if (c.until?.match(f)) out.push(`${r.id}#until`);
    } else {
      for (const s of [c.first, c.then]) if (s.match(f)) out.push(`${r.id}#${s.id}`);
      if (c.until?.match(f)) out.push(`${r.id}#until`);
    }
  }
  return out.sort();
}

async function compare(set: CompiledRuleSet, n: number): Promise<number> {
  const base = createJreBaseline(set);
  const g = new Gen(prng(99));
  let matched = 0;
  for (let i = 0; i < n; i++) {
    const f = randomEvent(g, EVENT_TYPES[i % EVENT_TYPES.length]);
    const want = (await base.run(f)).sort();
    assert.deepEqual(fastNames(set, f), want, JSON.stringify(f));
    matched += want.length;
  }
  return matched;
}

test('oracle: custom operators and lists are registered in json-rules-engine', async () => {
  const lists = { mods: new Set<string | number>(['ext4']) };
  assert.equal(await evaluateWithJre({ all: [{ fact: 'name', operator: 'inList', value: 'mods' }] }, { name: 'ext4' }, { lists }), true);
  assert.equal(await evaluateWithJre({ all: [{ fact: 'prot', operator: 'bitsSet', value: 6 }] }, { prot: 5 }), false);
  assert.equal(await evaluateWithJre({ not: { fact: 'env', path: '$.X', operator: 'exists', value: true } }, {}), true);
});

test('baseline agrees with the compiled inline rule set, including steps and until', async () => {
  const text = JSON.stringify({
    lists: { mods: ['ext4'] },
    rules: [
      { id: 'p', description: 'd', tags: [], severity: 'low', match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'comm', operator: 'startsWith', value: 'b' }] }, actions: [{ type: 'alert' }] },
      { id: 'c', description: 'd', tags: [], severity: 'low', match: { all: [{ fact: 'prot', operator: 'bitsSet', value: 4 }] },
        correlation: { count: { by: ['pid'], within: '1s', threshold: 2, until: { match: { all: [{ fact: 'type', operator: 'equal', value: 'exit' }] } } } }, actions: [{ type: 'alert' }] },
      { id: 's', description: 'd', tags: [], severity: 'low', match: { any: [{ fact: 'pid', operator: 'equal', value: 100 }] },
        correlation: { sequence: { by: ['pid'], within: '1s', steps: [
          { match: { all: [{ fact: 'type', operator: 'equal', value: 'fork' }] } },
          { id: 'x', match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }] } }] } }, actions: [{ type: 'alert' }] },
      { id: 'a', description: 'd', tags: [], severity: 'low', match: { all: [] },
        correlation: { absent: { within: '1s', first: { match: { all: [{ fact: 'name', operator: 'notInList', value: 'mods' }] } },
          then: { match: { all: [{ fact: 'type', operator: 'equal', value: 'module_list' }] }, lacks: { field: 'modules', from: 'name' } },
          until: { match: { all: [{ fact: 'type', operator: 'equal', value: 'module_unload' }] } } } }, actions: [{ type: 'alert' }] },
    ],
  });
  const r = loadRuleSources([{ file: 'inline.json', text }]);
  assert.ok(r.ok, JSON.stringify(r.issues));
  assert.ok((await compare(r.set!, 800)) > 100);
});

test('baseline agrees with the compiled bundled rules', async () => {
  const set = await loadRuleDirs([BUNDLED_RULES_DIR]);
  assert.equal(createJreBaseline(set).size > 0, set.rules.length > 0);
  await compare(set, 1600);
});
