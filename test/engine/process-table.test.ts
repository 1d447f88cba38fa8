import { describe, test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessTable, MAX_ANCESTORS } from '../../engine/process-table.ts';
import { Engine } from '../../engine/engine.ts';
import type { Facts } from '../../engine/rules/types.ts';
import { ev, resetSeq, rule, ruleSet } from './helpers.ts';

beforeEach(() => resetSeq());

describe('process table', () => {
  test('fork inherits exe, comm and env; exec replaces them; ancestors parent first', () => {
    const t = new ProcessTable();
    t.observe(ev('exec', 1, 10, { ppid: 1, comm: 'bash', exe: { path: '/bin/bash', dev: 1, ino: 2 }, env: { LD_PRELOAD: '/x.so' }, filename: '/bin/bash' }));
    t.observe(ev('fork', 2, 10, { comm: 'bash', child_pid: 11 }));
    const c = t.get(11)!;
    assert.equal(c.ppid, 10);
    assert.equal(c.exe.path, '/bin/bash');
    assert.deepEqual(c.env, { LD_PRELOAD: '/x.so' });
    assert.deepEqual(c.ancestors, [{ pid: 10, comm: 'bash', exe: '/bin/bash' }]);
    assert.equal(c.start_ts, 2);
    t.observe(ev('exec', 3, 11, { ppid: 10, comm: 'ls', exe: { path: '/bin/ls', dev: 1, ino: 3 }, filename: '/bin/ls' }));
    assert.equal(t.get(11)!.exe.path, '/bin/ls');
    assert.deepEqual(t.get(11)!.env, {}, 'exec without watched vars clears env');
    assert.equal(t.get(10)!.exe.path, '/bin/bash', 'parent unchanged');
  });

  test('ancestry is capped at 16, nearest first', () => {
    const t = new ProcessTable();
    t.observe(ev('exec', 0, 100, { filename: '/bin/sh' }));
    for (let i = 0; i < 30; i++) t.observe(ev('fork', i + 1, 100 + i, { child_pid: 101 + i }));
    const a = t.get(130)!.ancestors;
    assert.equal(a.length, MAX_ANCESTORS);
    assert.deepEqual(a.slice(0, 3).map((x) => x.pid), [129, 128, 127]);
  });

  test('an unknown pid is synthesized from the event, with its known parent as ancestor', () => {
    const t = new ProcessTable();
    t.observe(ev('exec', 0, 50, { filename: '/bin/sh' }));
    const p = t.observe(ev('mprotect', 1, 51, { ppid: 50, prot: 1 }));
    assert.equal(p.pid, 51);
    assert.deepEqual(p.ancestors.map((x) => x.pid), [50]);
    assert.equal(t.stats().synthesized, 2);
  });

  test('bounded: the oldest entry is evicted and counted; release frees', () => {
    const t = new ProcessTable(3);
    for (let i = 0; i < 5; i++) t.observe(ev('exec', i, i + 10, { filename: '/x' }));
    assert.equal(t.size, 3);
    assert.equal(t.get(10), undefined);
    assert.ok(t.get(14));
    assert.equal(t.stats().evictions, 2);
    t.release(14);
    assert.equal(t.get(14), undefined);
  });

  test('engine: proc fact during evaluation, freed after the exit was evaluated', () => {
    const seen: unknown[] = [];
    const r = rule({ id: 'p', types: ['exit'], match: (f: Facts) => (seen.push(f.proc?.exe.path), false), matchJson: { fact: 'proc', operator: 'exists', value: true } });
    const e = new Engine({ rules: ruleSet([r]) });
    e.push(ev('exec', 1, 7, { filename: '/bin/x', exe: { path: '/bin/x', dev: 1, ino: 1 } }), () => {});
    const x = ev('exit', 2, 7, { code: 0 });
    e.push(x, () => {});
    assert.deepEqual(seen, ['/bin/x']);
    assert.equal(e.procs.get(7), undefined);
    assert.equal((x as Facts).proc, undefined, 'proc is not left on the event');
  });

  test('engine: events are not given a proc property when no rule reads proc', () => {
    const e = new Engine({ rules: ruleSet([rule({ id: 'p', types: ['exec'], match: () => false })]) });
    const x = ev('exec', 1, 7, { filename: '/bin/x' });
    e.push(x, () => {});
    assert.equal('proc' in x, false);
    assert.ok(e.procs.get(7));
  });
});
