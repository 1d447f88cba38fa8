// Each operator on its own, and the operator registry against rules/schema.json's enum.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { OPERATORS, CUSTOM_OPERATORS } from '../../engine/operators/index.ts';
import { parsesAsNumber } from '../../engine/operators/builtin.ts';

const ctx = { lists: { mods: new Set<string | number>(['ext4', 'xfs']), nums: new Set<string | number>([4, 42]) } };

function ev(name: string, a: unknown, b: unknown): boolean {
  const op = OPERATORS.get(name)!;
  const p = op.prepare ? op.prepare(b, ctx) : b;
  return (op.accepts ? op.accepts(a) : true) && op.test(a, p);
}

describe('operators', () => {
  test('startsWith / endsWith need two strings', () => {
    assert.equal(ev('startsWith', '/tmp/x', '/tmp/'), true);
    assert.equal(ev('startsWith', '/usr/tmp/x', '/tmp/'), false);
    assert.equal(ev('startsWith', 5, '5'), false);
    assert.equal(ev('endsWith', 'libx.so', '.so'), true);
    assert.equal(ev('endsWith', undefined, ''), false);
  });

  test('matches compiles once, supports (?i), is false for non-strings and bad regexes', () => {
    assert.equal(ev('matches', 'ncat', '^(nc|ncat)$'), true);
    assert.equal(ev('matches', 'BASH', '(?i)^bash$'), true);
    assert.equal(ev('matches', 'BASH', '^bash$'), false);
    assert.equal(ev('matches', 12, '1'), false);
    assert.equal(ev('matches', '(', '('), false);
    const m = OPERATORS.get('matches')!;
    assert.equal(m.checkValue!('(', ctx)?.code, 'BAD_REGEX');
    assert.equal(m.checkValue!('^a', ctx), undefined);
  });

  test('inList / notInList resolve a named list; arrays match on any element', () => {
    assert.equal(ev('inList', 'ext4', 'mods'), true);
    assert.equal(ev('inList', 'rootkit', 'mods'), false);
    assert.equal(ev('inList', ['a', 'xfs'], 'mods'), true);
    assert.equal(ev('notInList', 'rootkit', 'mods'), true);
    assert.equal(ev('notInList', ['rootkit', 'ext4'], 'mods'), false);
    assert.equal(ev('inList', 42, 'nums'), true);
    assert.equal(ev('inList', '42', 'nums'), false);
    // an unknown list never matches either way (the loader reports UNKNOWN_LIST)
    assert.equal(ev('inList', 'x', 'nope'), false);
    assert.equal(ev('notInList', 'x', 'nope'), false);
    assert.equal(OPERATORS.get('inList')!.checkValue!('nope', ctx)?.code, 'UNKNOWN_LIST');
  });

  test('bitsSet / anyBitsSet on prot bits and beyond 32 bits', () => {
    assert.equal(ev('bitsSet', 7, 6), true);
    assert.equal(ev('bitsSet', 5, 6), false);
    assert.equal(ev('anyBitsSet', 5, 6), true);
    assert.equal(ev('anyBitsSet', 1, 6), false);
    assert.equal(ev('bitsSet', 2 ** 40 + 6, 2 ** 40 + 4), true);
    assert.equal(ev('bitsSet', 2 ** 40, 2 ** 41), false);
    assert.equal(ev('anyBitsSet', 2 ** 33 + 1, 2 ** 33), true);
    assert.equal(ev('bitsSet', '7', 6), false);
    assert.equal(ev('bitsSet', -1, 1), false);
    assert.equal(ev('bitsSet', 1.5, 1), false);
  });

  test('exists distinguishes undefined/null from any value, including falsy ones', () => {
    assert.equal(ev('exists', undefined, true), false);
    assert.equal(ev('exists', null, true), false);
    assert.equal(ev('exists', 0, true), true);
    assert.equal(ev('exists', '', true), true);
    assert.equal(ev('exists', undefined, false), true);
    assert.equal(ev('exists', 'x', false), false);
  });

  test('built-ins follow json-rules-engine (numberValidator, contains on arrays only, in via indexOf)', () => {
    assert.equal(parsesAsNumber('12abc'), true);
    assert.equal(parsesAsNumber('abc'), false);
    assert.equal(parsesAsNumber([5]), true);
    assert.equal(parsesAsNumber(undefined), false);
    assert.equal(ev('lessThan', '5', 10), true);
    assert.equal(ev('lessThan', 'x', 10), false);
    assert.equal(ev('contains', 'bash', 'a'), false);
    assert.equal(ev('contains', ['a'], 'a'), true);
    assert.equal(ev('doesNotContain', 'bash', 'z'), false);
    assert.equal(ev('in', 'a', ['a', 'b']), true);
    assert.equal(ev('in', 'as', 'bash'), true); // json-rules-engine: b.indexOf(a) on a string
    assert.equal(ev('in', 'a', undefined), false); // json-rules-engine would throw
    assert.equal(ev('notIn', 'c', ['a']), true);
    assert.equal(ev('equal', 1, '1'), false);
  });

  test('every operator returns a boolean and never throws, whatever it is given', () => {
    const vals = [undefined, null, 0, 1, -1, 'x', '', [], ['x'], {}, { a: 1 }, true, NaN, 2 ** 60];
    for (const op of OPERATORS.values()) {
      for (const a of vals) for (const b of [...vals, 'mods']) {
        const r = ev(op.name, a, b);
        assert.equal(typeof r, 'boolean', `${op.name}(${String(a)}, ${String(b)})`);
      }
    }
  });

  test('the schema lists exactly the registered operators', () => {
    const schema = JSON.parse(readFileSync(new URL('../../rules/schema.json', import.meta.url), 'utf8'));
    assert.deepEqual([...schema.definitions.operator.enum].sort(), [...OPERATORS.keys()].sort());
    assert.equal(CUSTOM_OPERATORS.length, 10);
  });
});
