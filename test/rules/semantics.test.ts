// json-rules-engine's condition semantics that krsi documents (rules/README.md), pinned against
// json-rules-engine itself and the fast path (generated code and closures).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateWithJre } from '../../engine/rules/jre.ts';
import { compileCondition, compileConditionClosures } from '../../engine/rules/compile.ts';
import type { ConditionJson, Facts } from '../../engine/rules/types.ts';

const ctx = { lists: { l: new Set<string | number>(['a']) } };

const CASES: [string, ConditionJson, Record<string, unknown>, boolean][] = [
  ['a missing fact is not equal to anything', { all: [{ fact: 'comm', operator: 'equal', value: null }] }, {}, false],
  ['a missing fact is notEqual to everything', { all: [{ fact: 'comm', operator: 'notEqual', value: 'x' }] }, {}, true],
  ['equal is strict', { all: [{ fact: 'uid', operator: 'equal', value: '0' }] }, { uid: 0 }, false],
  ['a path on a non-object fact is ignored', { all: [{ fact: 'pid', path: '$.anything', operator: 'equal', value: 5 }] }, { pid: 5 }, true],
  ['a missing path step is undefined', { all: [{ fact: 'exe', path: '$.a.b', operator: 'exists', value: false }] }, { exe: { a: 1 } }, true],
  ['strings have an own length', { all: [{ fact: 'exe', path: '$.path.length', operator: 'equal', value: 4 }] }, { exe: { path: '/bin' } }, true],
  ['inherited properties are not followed', { all: [{ fact: 'exe', path: '$.constructor', operator: 'exists', value: false }] }, { exe: {} }, true],
  ['numeric operators compare numeric strings as numbers', { all: [{ fact: 'comm', operator: 'lessThan', value: 20 }] }, { comm: '12' }, true],
  ['a numeric-prefixed string passes the number check but compares as NaN', { all: [{ fact: 'comm', operator: 'lessThan', value: 20 }] }, { comm: '12abc' }, false],
  ['numeric operators reject non-numbers', { all: [{ fact: 'comm', operator: 'greaterThan', value: -1 }] }, { comm: 'abc' }, false],
  ['contains needs an array fact', { all: [{ fact: 'comm', operator: 'contains', value: 'a' }] }, { comm: 'bash' }, false],
  ['doesNotContain needs an array fact too', { all: [{ fact: 'comm', operator: 'doesNotContain', value: 'z' }] }, { comm: 'bash' }, false],
  ['fact-to-fact comparison', { all: [{ fact: 'exe', path: '$.ino', operator: 'equal', value: { fact: 'target', path: '$.ino' } }] }, { exe: { ino: 7 }, target: { ino: 7 } }, true],
  ['fact-to-fact in against a string is a substring test', { all: [{ fact: 'comm', operator: 'in', value: { fact: 'filename' } }] }, { comm: 'as', filename: 'bash' }, true],
  ['an empty all is true', { all: [] }, {}, true],
  ['not negates', { not: { fact: 'pid', operator: 'equal', value: 1 } }, { pid: 1 }, false],
  ['inList on an array fact: any element', { all: [{ fact: 'argv', operator: 'inList', value: 'l' }] }, { argv: ['x', 'a'] }, true],
];

for (const [name, cond, facts, expected] of CASES) {
  test(name, async () => {
    assert.equal(await evaluateWithJre(cond, facts, ctx), expected, 'json-rules-engine');
    assert.equal(compileCondition(cond, ctx)(facts as Facts), expected, 'generated code');
    assert.equal(compileConditionClosures(cond, ctx)(facts as Facts), expected, 'closures');
  });
}

test('where json-rules-engine rejects the run, krsi says false', async () => {
  const cond: ConditionJson = { all: [{ fact: 'pid', operator: 'in', value: { fact: 'missing' } }] };
  await assert.rejects(evaluateWithJre(cond, { pid: 1 }, ctx));
  assert.equal(compileCondition(cond, ctx)({ pid: 1 } as unknown as Facts), false);
});
