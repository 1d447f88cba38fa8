// The bundled rules' conditions mean what json-rules-engine says they mean: every per-event match and
// correlation step of every bundled rule, evaluated on every event of the sample log and of the rule
// tests, gives the same answer through krsi's compiled predicates and through json-rules-engine itself
// (engine/rules/jre.ts, with the same custom operators and lists).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadRuleDirs } from '../../engine/rules/load.ts';
import { JreOracle } from '../../engine/rules/jre.ts';
import type { CompiledRule, ConditionJson, Facts, Predicate } from '../../engine/rules/types.ts';
import { BUNDLED_TESTS_DIR, loadTestFile, testFilePaths } from '../../engine/ruletest/index.ts';
import { readEvents, SAMPLE_LOG } from '../../engine/eventlog/index.ts';
import type { KrsiEvent } from '../../signals/events.ts';
import { ProcessTable } from '../../engine/process-table.ts';

/** the events with the `proc` fact the engine gives them (a process table per sequence of events) */
function withProc(evs: KrsiEvent[]): KrsiEvent[] {
  const t = new ProcessTable();
  return evs.map((ev) => {
    const proc = structuredClone(t.observe(ev));
    if (ev.type === 'exit') t.release(ev.pid);
    return { ...ev, proc } as KrsiEvent;
  });
}

test('bundled rule conditions agree with json-rules-engine on the sample log and the test events', async () => {
  const set = await loadRuleDirs();
  const oracle = new JreOracle({ lists: set.lists });

  // (name, compiled predicate, its source condition, the event types the engine evaluates it on)
  const checks: [string, Predicate, ConditionJson, CompiledRule['types']][] = [];
  const push = (r: CompiledRule, name: string, p: Predicate, c: ConditionJson) => checks.push([name, p, c, r.types]);
  for (const r of set.rules) {
    push(r, r.id, r.match, r.source.match);
    const c = r.correlation;
    const src = r.source.correlation;
    if (c?.kind === 'sequence' && src && 'sequence' in src) {
      c.steps.forEach((s, i) => push(r, `${r.id}#${s.id}`, (f) => r.match(f) && s.match(f), { all: [r.source.match, src.sequence.steps[i].match] }));
    } else if (c?.kind === 'absent' && src && 'absent' in src) {
      push(r, `${r.id}#${c.first.id}`, (f) => r.match(f) && c.first.match(f), { all: [r.source.match, src.absent.first.match] });
      push(r, `${r.id}#${c.then.id}`, (f) => r.match(f) && c.then.match(f), { all: [r.source.match, src.absent.then.match] });
    }
  }

  const all: KrsiEvent[] = [];
  const sample: KrsiEvent[] = [];
  for await (const b of readEvents(SAMPLE_LOG)) sample.push(...b);
  all.push(...withProc(sample));
  for (const f of testFilePaths([BUNDLED_TESTS_DIR])) for (const c of loadTestFile(f).cases) all.push(...withProc(c.events ?? []));
  // events that differ only in ts/seq (repeats, the mprotect storms) are one case for a condition
  const distinct = new Map<string, KrsiEvent>();
  for (const ev of all) distinct.set(JSON.stringify({ ...ev, ts: 0, seq: 0 }), ev);
  const events = [...distinct.values()];

  const differ: string[] = [];
  const hits = new Map<string, number>();
  const misses = new Map<string, number>();
  for (const ev of events) {
    const facts = ev as Facts;
    for (const [name, fast, cond, types] of checks) {
      if (types !== '*' && !types.includes(ev.type)) continue; // the engine never asks
      const a = fast(facts);
      const b = await oracle.evaluate(cond, facts);
      const seen = a ? hits : misses;
      seen.set(name, (seen.get(name) ?? 0) + 1);
      if (a !== b) differ.push(`${name} on ${JSON.stringify(ev)}: krsi ${a}, json-rules-engine ${b}`);
    }
  }
  assert.deepEqual(differ.slice(0, 5), []);
  // the comparison must have seen every condition both match and not match
  const neverTrue = checks.map(([n]) => n).filter((n) => !hits.get(n));
  assert.deepEqual(neverTrue, [], 'conditions that no event satisfies');
  // (a correlation rule's own match is often only its event types: it may be true on all of them)
  const filters = new Set(set.rules.filter((r) => r.correlation).map((r) => r.id));
  const neverFalse = checks.map(([n]) => n).filter((n) => !filters.has(n) && !misses.get(n));
  assert.deepEqual(neverFalse, [], 'conditions that every event of their types satisfies');
});
