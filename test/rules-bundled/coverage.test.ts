// Coverage of the bundled rules by their tests and by the sample log: each bundled rule has at
// least one positive and one negative case in rules/tests/, fires on the sample log, and the sample
// log is what rules/samples/make-sample.ts generates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadRuleDirs } from '../../engine/rules/load.ts';
import { BUNDLED_TESTS_DIR, loadTestFile, testFilePaths, type TestCase } from '../../engine/ruletest/index.ts';
import { Engine } from '../../engine/engine.ts';
import { readEvents, SAMPLE_LOG } from '../../engine/eventlog/index.ts';
import type { Mode, Output } from '../../engine/types.ts';

const cases: TestCase[] = testFilePaths([BUNDLED_TESTS_DIR]).flatMap((f) => loadTestFile(f).cases);
const loads = (c: TestCase, id: string) => !c.only || c.only.includes(id);

test('every bundled rule has a positive and a negative test case', async () => {
  const set = await loadRuleDirs();
  assert.ok(set.rules.length >= 9, `expected the 9 bundled rules, got ${set.rules.map((r) => r.id)}`);
  const missing: string[] = [];
  for (const { id } of set.rules) {
    const positive = cases.some((c) => [...c.expect.alerts, ...c.expect.verdicts, ...c.expect.denied].some((m) => m.rule === id && m.count !== 0));
    // a negative: a case that loads the rule, expects nothing from it, and expects nothing positive of it
    const negative = cases.some(
      (c) =>
        loads(c, id) &&
        c.expect.none.some((m) => m.rule === id || (m.rule === undefined && m.pid === undefined && m.seq === undefined)) &&
        ![...c.expect.alerts, ...c.expect.verdicts, ...c.expect.denied].some((m) => m.rule === id),
    );
    if (!positive) missing.push(`${id}: no positive case`);
    if (!negative) missing.push(`${id}: no negative case`);
  }
  assert.deepEqual(missing, []);
});

async function replaySample(mode?: Mode): Promise<Output[]> {
  const engine = new Engine({ rules: await loadRuleDirs(), mode });
  const out: Output[] = [];
  const emit = (o: Output) => void out.push(o);
  for await (const batch of readEvents(SAMPLE_LOG)) for (const ev of batch) engine.push(ev, emit);
  engine.finish(emit);
  return out;
}

test('the sample log makes every bundled rule fire, and shows denials with and without --mode enforce', async () => {
  const set = await loadRuleDirs();
  const own = await replaySample();
  const enforce = await replaySample('enforce');
  const fired = new Set([...own, ...enforce].flatMap((o) => (o.kind === 'alert' ? [o.rule] : [])));
  assert.deepEqual(set.rules.map((r) => r.id).filter((id) => !fired.has(id)), [], 'rules that never alert on the sample');
  assert.ok(own.some((o) => o.kind === 'denied'), 'default replay (rules\' own modes) shows denials');
  const deniedOps = new Set(enforce.flatMap((o) => (o.kind === 'denied' ? [o.op] : [])));
  assert.deepEqual([...deniedOps].sort(), ['exec', 'kill', 'module_load', 'mprotect_exec']);
});

test('the sample log is in ts order, carries no seq, and is what make-sample.ts generates', () => {
  const text = readFileSync(SAMPLE_LOG, 'utf8');
  const lines = text.trimEnd().split('\n');
  assert.ok(lines.length >= 300, `a few hundred lines, got ${lines.length}`);
  let last = -1;
  for (const [i, l] of lines.entries()) {
    const ev = JSON.parse(l);
    assert.equal(ev.seq, undefined, `line ${i + 1} carries seq`);
    assert.ok(ev.ts >= last, `line ${i + 1}: ts goes back`);
    last = ev.ts;
  }
  const gen = fileURLToPath(new URL('../../rules/samples/make-sample.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', 'tsx', gen], { encoding: 'utf8', maxBuffer: 1 << 24 });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout === text, 'rules/samples/sample.jsonl differs from make-sample.ts output: regenerate it');
});
