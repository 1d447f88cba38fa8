// Compile-stage pieces: event-type inference, paths, keys and fields.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileCondition, compileField, compileGetter, compileKey, inferTypes, parsePath, typeList } from '../../engine/rules/compile.ts';
import type { ConditionJson, Facts } from '../../engine/rules/types.ts';
import { EVENT_TYPES } from '../../signals/events.ts';

const T = (c: ConditionJson) => typeList(inferTypes(c));
const ty = (v: string) => ({ fact: 'type', operator: 'equal', value: v });
const f = (o: Record<string, unknown>) => o as unknown as Facts;

describe('event type inference', () => {
  test('equal / in / notEqual / notIn on type', () => {
    assert.deepEqual(T({ all: [ty('exec')] }), ['exec']);
    assert.deepEqual(T({ all: [{ fact: 'type', operator: 'in', value: ['fork', 'exec', 'nope'] }] }), ['exec', 'fork']);
    assert.deepEqual(T({ all: [{ fact: 'type', operator: 'notIn', value: ['exec', 'fork', 'exit', 'unlink', 'mprotect', 'denied'] }] }), EVENT_TYPES.filter((t) => !['exec', 'fork', 'exit', 'unlink', 'mprotect', 'denied'].includes(t)));
    assert.deepEqual(T({ all: [{ fact: 'type', operator: 'notEqual', value: 'exec' }] }).length, EVENT_TYPES.length - 1);
  });
  test('all intersects, any unites, not complements only exact type conditions', () => {
    assert.deepEqual(T({ all: [ty('exec'), { fact: 'comm', operator: 'equal', value: 'x' }] }), ['exec']);
    assert.deepEqual(T({ all: [{ fact: 'type', operator: 'in', value: ['exec', 'fork'] }, ty('fork')] }), ['fork']);
    assert.deepEqual(T({ any: [{ all: [ty('exec')] }, { all: [ty('mprotect')] }] }), ['exec', 'mprotect']);
    assert.equal(T({ any: [{ all: [ty('exec')] }, { fact: 'pid', operator: 'equal', value: 1 }] }), '*');
    assert.equal(T({ all: [{ fact: 'pid', operator: 'equal', value: 1 }] }), '*');
    assert.equal(T({ all: [] }), '*');
    assert.deepEqual(T({ not: { all: [{ fact: 'type', operator: 'notIn', value: ['exec'] }] } }), ['exec']);
    // not(exec and X) can be true on an exec event, so nothing can be excluded
    assert.equal(T({ not: { all: [ty('exec'), { fact: 'comm', operator: 'equal', value: 'x' }] } }), '*');
    // a type at a path, or compared with another fact, is not a type condition
    assert.equal(T({ all: [{ fact: 'type', path: '$.x', operator: 'equal', value: 'exec' }] }), '*');
  });
});

describe('paths, fields and keys', () => {
  test('parsePath accepts $ .name [index] only', () => {
    assert.deepEqual(parsePath('$.argv[0]'), ['argv', '0']);
    assert.deepEqual(parsePath('$'), []);
    assert.deepEqual(parsePath('$.a.b[12].c'), ['a', 'b', '12', 'c']);
    for (const bad of ['a.b', '$..a', '$.*', '$[?(@.a)]', "$['a']", '$.a-b', '$[-1]']) assert.ok(!Array.isArray(parsePath(bad)), bad);
  });
  test('getter follows json-rules-engine: path ignored on non-objects, own properties only', () => {
    assert.equal(compileGetter('pid', '$.x')(f({ pid: 7 })), 7);
    assert.equal(compileGetter('exe', '$.ino')(f({ exe: { ino: 3 } })), 3);
    assert.equal(compileGetter('exe', '$.path.length')(f({ exe: { path: '/bin' } })), 4);
    assert.equal(compileGetter('exe', '$.toString')(f({ exe: {} })), undefined);
    assert.equal(compileGetter('proc', '$.ancestors[1].comm')(f({ proc: { ancestors: [{ comm: 'a' }] } })), undefined);
    assert.equal(compileGetter('env', '$.X')(f({})), undefined);
  });
  test('dotted fields and keys; a missing part gives no key', () => {
    assert.equal(compileField('exe.ino')(f({ exe: { ino: 9 } })), 9);
    assert.equal(compileField('argv.1')(f({ argv: ['a', 'b'] })), 'b');
    assert.equal(compileField('proc.exe.ino')(f({})), undefined);
    assert.equal(compileKey(['pid'])(f({ pid: 5 })), '5');
    assert.equal(compileKey(['exe.dev', 'exe.ino'])(f({ exe: { dev: 1, ino: 2 } })), '1\x1f2');
    assert.equal(compileKey(['exe.dev', 'exe.ino'])(f({ exe: { dev: 1 } })), undefined);
    assert.equal(compileKey(['pid'])(f({})), undefined);
  });
  test('generated predicates embed only literals: rule text cannot inject code', () => {
    const evil = '"; throw new Error("pwned"); "';
    const p = compileCondition({ all: [{ fact: 'comm', operator: 'equal', value: evil }, { fact: 'comm', operator: 'in', value: [evil, '`${x}`'] }] }, { lists: {} });
    assert.equal(p(f({ comm: evil })), true);
    assert.equal(p(f({ comm: 'x' })), false);
  });
});
