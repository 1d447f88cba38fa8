// engine/rules/located-json.ts: positions from the linear scan equal json-source-map's (which the loader used before)
// on every bundled rule and test file and on random documents; the data is JSON.parse's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import jsonMap from 'json-source-map';
import { parseJson } from '../../engine/rules/located-json.ts';
import { BUNDLED_RULES_DIR } from '../../engine/rules/load.ts';
import { Gen, prng } from './differential-harness.ts';
import { hostileMutate } from './hostile-gen.ts';

function samePositions(text: string, what: string): void {
  const mine = parseJson(text);
  assert.equal(mine.error, undefined, `${what}: ${JSON.stringify(mine.error)}`);
  const theirs = jsonMap.parse(text).pointers;
  assert.deepEqual(Object.keys(mine.pointers).sort(), Object.keys(theirs).sort(), what);
  for (const [p, t] of Object.entries(theirs)) {
    const m = mine.pointers[p];
    assert.deepEqual([m.value.line, m.value.column, m.value.pos], [t.value.line, t.value.column, t.value.pos], `${what} ${p} value`);
    if (t.key) assert.deepEqual([m.key?.line, m.key?.column, m.key?.pos], [t.key.line, t.key.column, t.key.pos], `${what} ${p} key`);
  }
  assert.deepEqual(mine.data, JSON.parse(text));
}

test('positions equal json-source-map on the bundled rule and test files', () => {
  for (const dir of [BUNDLED_RULES_DIR, join(BUNDLED_RULES_DIR, 'tests')]) {
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) samePositions(readFileSync(join(dir, f), 'utf8'), f);
  }
});

test('positions equal json-source-map on 300 random documents, compact and indented', () => {
  const g = new Gen(prng(64));
  const base = JSON.parse(readFileSync(join(BUNDLED_RULES_DIR, 'suspicious-env.json'), 'utf8'));
  for (let i = 0; i < 300; i++) {
    const doc = hostileMutate(g, structuredClone(base));
    const text = JSON.stringify(doc, null, g.pick([undefined, 1, 2, '  ']));
    if (text.length > 50_000 || parseJson(text).error) continue; // too deep for json-source-map; too big to compare quickly
    samePositions(text, `case ${i}`);
  }
});

test('"__proto__" stays an own key; repeated keys and depth are found by the same scan', () => {
  const p = parseJson('{"a": {"__proto__": {"x": 1}}, "a": 2}');
  assert.deepEqual(p.duplicates.map((d) => [d.pointer, d.line, d.column]), [['/a', 1, 32]]);
  const q = parseJson('{"v": {"__proto__": {"x": 1}}}').data as { v: object };
  assert.equal(Object.getPrototypeOf(q.v), Object.prototype);
  assert.deepEqual(Object.keys(q.v), ['__proto__']);
  const deep = parseJson(`{"a": ${'['.repeat(100)}${']'.repeat(100)}}`, 10);
  assert.deepEqual([deep.error?.code, deep.error?.pointer, deep.error?.column], ['TOO_DEEP', '/a' + '/0'.repeat(9), 16]);
  const bad = parseJson('{"a": [1, 2,, 3]}');
  assert.deepEqual([bad.error?.code, bad.error?.line, bad.error?.column], ['PARSE_ERROR', 1, 13]);
});
