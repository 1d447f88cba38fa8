// quickValid (the lmdb readers' fast yes) never says yes where validateEvent says no: on generated
// events of every type, and on each of them with every field (and nested exe/env/argv members)
// deleted or replaced by values of the wrong kind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quickValid } from '../../engine/eventlog/quickcheck.ts';
import { validateEvent } from '../../signals/event-contract.ts';
import { EVENT_TYPES } from '../../signals/events.ts';
import { generateEvents } from '../../bench/gen.ts';

const AT = { file: 'q', line: 1 };
const BAD: unknown[] = [undefined, -1, 1.5, 2 ** 53, -0, '1', '', null, {}, [], [1], ['a'], true, NaN, Infinity, 'exec', { path: 1 }];

const valid = (v: unknown) => {
  try {
    validateEvent(v, AT);
    return true;
  } catch {
    return false;
  }
};

/** an event of each type with every optional field, from generated ones plus hand-made rare types */
function samples(): Record<string, unknown>[] {
  const base = { ts: 5, pid: 10, ppid: 1, uid: 0, comm: 'x', exe: { path: '/x', dev: 1, ino: 2 }, tid: 10, cgroup: 3, seq: 7 };
  const out: Record<string, unknown>[] = [...generateEvents({ count: 3000, seed: 31, attackEvery: 500 })].filter((_, i) => i % 15 === 0) as never;
  out.push(
    { ...base, type: 'exec', filename: '/x', argv: ['x', 'y'], env: { A: 'b' }, sha256: 'a'.repeat(64) },
    { ...base, type: 'exec', filename: '/x', sha256_error: 'gone' },
    { ...base, type: 'unlink', path: '/x', target: { dev: 1, ino: 2, nlink: 0 } },
    { ...base, type: 'module_load', name: 'm', file: { dev: 1, ino: 2 }, sha256: 'b'.repeat(64) },
    { ...base, type: 'module_unload', name: 'm' },
    { ...base, type: 'module_list', modules: ['a', 'b'] },
    { ...base, type: 'denied', op: 'exec', key: { ino: 1 }, rule: 'r' },
    { ...base, type: 'fork', child_pid: 11 },
    { ...base, type: 'exit', code: -1 },
    { ...base, type: 'mprotect', start: 0, len: 4096, prot: 7 },
  );
  return out;
}

/** every way to damage one field: at the top, in exe, and in the members of env/argv/modules/key */
function* mutations(e: Record<string, unknown>): Generator<unknown> {
  const keys = [...Object.keys(e), 'tid', 'cgroup', 'seq', 'sha256', 'sha256_error', 'target', 'file', 'rule', 'child_pid', 'code', 'argv', 'env'];
  for (const k of keys)
    for (const b of BAD) {
      const m: Record<string, unknown> = { ...e };
      if (b === undefined) delete m[k];
      else m[k] = b;
      yield m;
    }
  for (const k of ['path', 'dev', 'ino']) for (const b of BAD) yield { ...e, exe: { ...(e.exe as object), [k]: b } };
  for (const b of BAD) {
    yield { ...e, env: { A: 'x', B: b } };
    yield { ...e, argv: ['x', b] };
    yield { ...e, modules: ['x', b] };
  }
  for (const t of [...EVENT_TYPES, 'other', ''] as string[]) yield { ...e, type: t };
  yield [e];
  yield null;
}

test('quickValid says yes only where validateEvent does, and to (nearly) every valid generated event', () => {
  let yes = 0;
  let checked = 0;
  const all = samples();
  for (const e of all) {
    assert.ok(valid(e), `sample ${JSON.stringify(e)} is valid`);
    if (quickValid(e)) yes++;
    for (const m of mutations(e)) {
      checked++;
      if (quickValid(m)) assert.ok(valid(m), `quickValid said yes to an invalid event: ${JSON.stringify(m)}`);
    }
  }
  assert.ok(checked > 10_000, `${checked} mutations`);
  // the fast path is for the events logs hold: the generated ones (the rare fields go to validateEvent)
  assert.ok(yes >= all.length - 10, `${yes} of ${all.length} valid samples took the fast path`);
});
