// Mutated rule files and rule test files never crash the loader or `krsi test`: every outcome is either a
// loaded set whose predicates run on any event, or located issues. Bounded: seeded, a few thousand cases in
// process with the real loader, and a few hundred files through the real CLI (`krsi check`, `krsi test`) in
// child processes with timeouts, which may only exit 0, 1 or 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EVENT_TYPES } from '../../signals/events.ts';
import { BUNDLED_RULES_DIR, loadRuleSources, type LoadResult } from '../../engine/rules/load.ts';
import { BUNDLED_TESTS_DIR, RuleCache, RuleTestError, parseTestFile, runCase } from '../../engine/ruletest/index.ts';
import type { Facts } from '../../engine/rules/types.ts';
import { Gen, prng, randomEvent } from './differential-harness.ts';
import { krsiAsync } from '../helpers/krsi.ts';
import { ATTACKER_STRINGS, hostileText } from './hostile-gen.ts';

const JUNK: unknown[] = [null, 0, -1, 1.5, '', 'x', '10s', 'exec', true, [], [1], {}, { fact: 'pid' }, { all: [] }, 'startsWith', '$.ino'];

function mutate(g: Gen, v: unknown, depth = 0): unknown {
  if (Array.isArray(v)) {
    const xs = v.map((x) => (g.chance(0.15) ? mutate(g, x, depth + 1) : x));
    if (g.chance(0.05)) xs.splice(g.int(xs.length + 1), 0, g.pick(JUNK));
    if (g.chance(0.05) && xs.length) xs.splice(g.int(xs.length), 1);
    return xs;
  }
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (g.chance(0.03)) continue; // drop a key
      const key = g.chance(0.02) ? k + 'x' : k;
      out[key] = g.chance(0.2) ? mutate(g, x, depth + 1) : x;
    }
    if (g.chance(0.03)) out[g.pick(['all', 'any', 'not', 'fact', 'path', 'extra', 'by', 'from'])] = g.pick(JUNK);
    return out;
  }
  return g.chance(0.3) ? g.pick(JUNK) : v;
}

test('1000 mutated copies of the bundled rule files: no crash, issues are located, loaded sets evaluate', () => {
  const files = readdirSync(BUNDLED_RULES_DIR).filter((f) => f.endsWith('.json') && f !== 'schema.json');
  const docs = files.map((f) => ({ file: f, data: JSON.parse(readFileSync(join(BUNDLED_RULES_DIR, f), 'utf8')) }));
  if (docs.length === 0) return;
  const g = new Gen(prng(2024));
  const events = EVENT_TYPES.flatMap((t) => Array.from({ length: 5 }, () => randomEvent(g, t)));
  let loaded = 0;
  let failed = 0;
  for (let i = 0; i < 1000; i++) {
    const sources = docs.map((d) => ({ file: d.file, text: JSON.stringify(g.chance(0.7) ? mutate(g, d.data) : d.data, null, 1) }));
    const r = loadRuleSources(sources);
    for (const is of r.issues) {
      assert.ok(is.line >= 1 && is.column >= 1 && typeof is.pointer === 'string' && is.message.length > 0, JSON.stringify(is));
      assert.notEqual(is.code, 'INTERNAL', `${is.message}\n${sources.map((s) => s.text).join('\n')}`);
    }
    if (r.ok) {
      loaded++;
      for (const rule of r.set!.rules) {
        for (const e of events) {
          assert.equal(typeof rule.match(e), 'boolean');
          const c = rule.correlation;
          if (c?.kind === 'sequence') for (const s of c.steps) s.match(e);
          if (c && c.kind !== 'absent') c.key(e);
        }
      }
    } else {
      failed++;
      assert.equal(r.set, undefined);
    }
  }
  assert.ok(loaded > 50 && failed > 50, `loaded ${loaded}, failed ${failed}`);
});

// ---------- hostile inputs (issue 8) ----------

const ruleDocs = () =>
  readdirSync(BUNDLED_RULES_DIR).filter((f) => f.endsWith('.json') && f !== 'schema.json').map((f) => ({ file: f, data: JSON.parse(readFileSync(join(BUNDLED_RULES_DIR, f), 'utf8')) }));
const testDocs = () =>
  readdirSync(BUNDLED_TESTS_DIR).filter((f) => f.endsWith('.json')).map((f) => ({ file: join(BUNDLED_TESTS_DIR, f), data: JSON.parse(readFileSync(join(BUNDLED_TESTS_DIR, f), 'utf8')) }));

/** events whose strings an attacker chose */
function attackerEvents(g: Gen): Facts[] {
  return EVENT_TYPES.map((t) => {
    const e = randomEvent(g, t) as Record<string, unknown>;
    const s = () => g.pick(ATTACKER_STRINGS);
    Object.assign(e, { comm: s(), filename: s(), path: s(), name: s(), argv: [s(), s()], env: { LD_PRELOAD: s(), LD_LIBRARY_PATH: s(), ['__proto__']: s() } });
    return e as Facts;
  });
}

function checkResult(r: LoadResult, what: () => string, events: Facts[]): void {
  for (const is of r.issues) {
    assert.ok(is.line >= 1 && is.column >= 1 && typeof is.pointer === 'string' && is.message.length > 0, JSON.stringify(is));
    assert.notEqual(is.code, 'INTERNAL', `${is.message}\n${what()}`);
  }
  if (!r.ok) return assert.equal(r.set, undefined);
  for (const rule of r.set!.rules) {
    for (const e of events) {
      assert.equal(typeof rule.match(e), 'boolean');
      const c = rule.correlation;
      if (c?.kind === 'sequence') for (const s of c.steps) s.match(e);
      if (c?.until) c.until.match(e);
    }
  }
}

test('800 hostile rule files: no exception, no stall, issues located, loaded sets run on attacker strings', () => {
  const docs = ruleDocs();
  const g = new Gen(prng(88));
  const events = attackerEvents(g);
  const seen = new Set<string>();
  let slowest = { ms: 0, i: -1 };
  for (let i = 0; i < 800; i++) {
    const d = g.pick(docs);
    const text = hostileText(g, d.data);
    const t = performance.now();
    let r: LoadResult;
    try {
      r = loadRuleSources([{ file: d.file, text }]);
    } catch (e) {
      return assert.fail(`case ${i} threw ${(e as Error).stack}\n${text.slice(0, 2000)}`);
    }
    checkResult(r, () => text.slice(0, 2000), events);
    for (const is of r.issues) seen.add(is.code);
    const ms = performance.now() - t;
    if (ms > slowest.ms) slowest = { ms, i };
  }
  console.log(`slowest case ${slowest.i}: ${slowest.ms.toFixed(0)} ms; codes: ${[...seen].sort().join(' ')}`);
  // the hostile shapes were reached, not only generic junk
  for (const code of ['TOO_DEEP', 'TOO_MANY', 'RESERVED_KEY', 'BAD_REGEX', 'BAD_DURATION', 'PARSE_ERROR']) assert.ok(seen.has(code), code);
});

test('300 hostile rule test files: parse errors are located, cases run to a result, nothing throws', async () => {
  const docs = testDocs();
  const g = new Gen(prng(89));
  const cache = new RuleCache();
  let parsed = 0;
  let located = 0;
  for (let i = 0; i < 300; i++) {
    const d = g.pick(docs);
    const text = hostileText(g, d.data);
    let cases;
    try {
      cases = parseTestFile(d.file, text).cases;
      parsed++;
    } catch (e) {
      if (!(e instanceof RuleTestError)) assert.fail(`case ${i} threw ${(e as Error).stack}\n${text.slice(0, 2000)}`);
      for (const is of e.issues) assert.ok(is.line >= 1 && is.column >= 1 && is.message.length > 0, JSON.stringify(is));
      located++;
      continue;
    }
    for (const c of cases.slice(0, 3)) {
      const r = await runCase(c, cache);
      assert.equal(typeof r.ok, 'boolean');
    }
  }
  assert.ok(parsed >= 10 && located > 75, `parsed ${parsed}, refused ${located}`);
});

test('the real CLI: 240 hostile rule files through krsi check and 80 test files through krsi test exit 0, 1 or 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-fuzz-cli-'));
  const g = new Gen(prng(90));
  const rules = ruleDocs();
  const tests = testDocs();
  const runs: { args: string[]; files: string[] }[] = [];
  for (let b = 0; b < 12; b++) {
    const files = Array.from({ length: 20 }, (_, k) => {
      const f = join(dir, `check-${b}-${k}.json`);
      writeFileSync(f, hostileText(g, g.pick(rules).data));
      return f;
    });
    runs.push({ args: ['check', ...files], files });
  }
  for (let b = 0; b < 4; b++) {
    const files = Array.from({ length: 20 }, (_, k) => {
      const f = join(dir, `test-${b}-${k}.json`);
      const d = structuredClone(g.pick(tests).data);
      d.rules = BUNDLED_RULES_DIR; // the original ".." is relative to rules/tests/
      writeFileSync(f, hostileText(g, d));
      return f;
    });
    runs.push({ args: ['test', ...files], files });
  }
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < runs.length) {
      const run = runs[next++];
      const r = await krsiAsync(run.args, 90_000);
      const uncaught = /\n\s+at .+:\d+:\d+\)?\n/.test(r.stderr);
      if (r.signal || r.code === null || r.code > 2 || uncaught) failures.push(`krsi ${run.args[0]} (files kept in ${dir}): exit ${r.code} signal ${r.signal}\n${r.stderr.slice(-3000)}`);
    }
  };
  await Promise.all([worker(), worker()]);
  assert.deepEqual(failures, []);
  rmSync(dir, { recursive: true, force: true });
});
