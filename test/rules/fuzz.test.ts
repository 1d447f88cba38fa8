// Mutated rule files never crash the loader: every outcome is either a loaded set whose predicates run
// on any event, or located issues.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EVENT_TYPES } from '../../signals/events.ts';
import { BUNDLED_RULES_DIR, loadRuleSources } from '../../engine/rules/load.ts';
import { Gen, prng, randomEvent } from './differential-harness.ts';

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
