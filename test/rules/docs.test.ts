// rules/README.md documents every issue code, operator and correlation kind; the schema compiles strictly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { MESSAGES } from '../../engine/rules/messages.ts';
import { OPERATORS } from '../../engine/operators/index.ts';

const readme = readFileSync(new URL('../../rules/README.md', import.meta.url), 'utf8');
const schema = JSON.parse(readFileSync(new URL('../../rules/schema.json', import.meta.url), 'utf8'));

test('every issue code is documented in rules/README.md', () => {
  const missing = Object.keys(MESSAGES).filter((c) => !readme.includes('`' + c + '`'));
  assert.deepEqual(missing, []);
});

test('every operator and correlation kind is documented with an example', () => {
  for (const op of OPERATORS.keys()) assert.ok(readme.includes(`"operator": "${op}"`) || readme.includes('`' + op + '`'), op);
  for (const k of ['sequence', 'count', 'distinct', 'absent']) assert.ok(readme.includes(`"${k}"`), k);
});

test('rules/schema.json compiles under ajv strict mode (draft-07, for editors)', () => {
  const ajv = new Ajv({ allErrors: true, allowUnionTypes: true, strict: true, strictRequired: false });
  const v = ajv.compile(schema);
  assert.equal(v({ rules: [] }), true);
  assert.equal(v({ rules: [{ id: 'x' }] }), false);
});

test('the README examples load: the rule example, and each correlation example inside a rule', async () => {
  const { loadRuleSources, formatIssue } = await import('../../engine/rules/load.ts');
  const blocks = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]);
  const rule = blocks.find((b) => b.trimStart().startsWith('{\n  "id": "ld-preload-exec"'));
  assert.ok(rule);
  const base = JSON.parse(rule);
  const corr = blocks.filter((b) => b.trimStart().startsWith('"correlation"')).map((b) => JSON.parse(`{${b}}`).correlation);
  assert.equal(corr.length, 5);
  const rules = [base, ...corr.map((c, i) => ({ ...base, id: `c${i}`, match: { all: [] }, correlation: c }))];
  const r = loadRuleSources([{ file: 'readme.json', text: JSON.stringify({ rules }, null, 2) }]);
  assert.deepEqual(r.issues.map(formatIssue), []);
  assert.equal(r.set!.rules.length, 6);
});
