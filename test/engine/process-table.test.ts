import { describe, test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessTable, MAX_ANCESTORS, ENV_TRUNCATED } from '../../engine/process-table.ts';
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
  test('loader_injected: set by an LD_PRELOAD/LD_AUDIT exec, inherited across forks (any depth, after the parent exits), cleared by an exec without it', () => {
    const t = new ProcessTable();
    t.observe(ev('exec', 1, 10, { env: { LD_PRELOAD: '/tmp/evil.so' }, filename: '/bin/x' }));
    assert.deepEqual(t.get(10)!.loader_injected, { pid: 10, ts: 1, var: 'LD_PRELOAD', value: '/tmp/evil.so' });
    t.observe(ev('fork', 2, 10, { child_pid: 11 }));
    t.observe(ev('fork', 3, 11, { child_pid: 12 }));
    t.observe(ev('exit', 4, 11, { code: 0 }));
    t.release(11);
    assert.deepEqual(t.get(12)!.loader_injected, { pid: 10, ts: 1, var: 'LD_PRELOAD', value: '/tmp/evil.so' }, 'a grandchild reparented to init still carries it');
    t.observe(ev('exec', 5, 12, { filename: '/bin/ls' }));
    assert.equal(t.get(12)!.loader_injected, undefined, 'an exec without the variable clears it');
    t.observe(ev('exec', 6, 13, { env: { LD_AUDIT: '/tmp/a.so' }, filename: '/bin/x' }));
    assert.equal(t.get(13)!.loader_injected!.var, 'LD_AUDIT');
    t.observe(ev('exec', 7, 14, { env: { LD_PRELOAD: ' ' }, filename: '/bin/x' }));
    assert.equal(t.get(14)!.loader_injected, undefined, 'ld.so ignores a blank value');
    t.observe(ev('fork', 8, 10, { child_pid: 10 }));
    assert.equal(t.get(10)!.pid, 10, 'a thread (child_pid == pid) changes nothing');
    assert.equal(t.get(10)!.ancestors.length, 0);
  });

  test('loader_injected: ld.so run as a program with --preload / --audit marks the process too', () => {
    const t = new ProcessTable();
    t.observe(ev('exec', 1, 30, { filename: '/lib64/ld-linux-x86-64.so.2', argv: ['/lib64/ld-linux-x86-64.so.2', '--preload', '/tmp/e.so', './prog'] }));
    assert.deepEqual(t.get(30)!.loader_injected, { pid: 30, ts: 1, var: 'LD_PRELOAD', value: '/tmp/e.so' });
    t.observe(ev('exec', 2, 31, { filename: '/usr/bin/env', argv: ['env', '--preload', '/tmp/e.so'] }));
    assert.equal(t.get(31)!.loader_injected, undefined, 'another program\'s --preload is its own business');
  });

  test('loader_injected: the first library not on the allowlist, behind an allowlisted one; the kernel\'s ldso block whatever the loader is called; a truncated environment fails closed', () => {
    const t = new ProcessTable(100, new Set(['/ok.so']));
    t.observe(ev('exec', 1, 40, { filename: '/x', env: { LD_PRELOAD: '/ok.so', LD_AUDIT: '/tmp/a.so' } }));
    assert.deepEqual(t.get(40)!.loader_injected, { pid: 40, ts: 1, var: 'LD_AUDIT', value: '/tmp/a.so' });
    t.observe(ev('exec', 1, 41, { filename: '/x', env: { LD_PRELOAD: '/ok.so:/tmp/b.so /tmp/c.so' } }));
    assert.equal(t.get(41)!.loader_injected!.value, '/tmp/b.so');
    t.observe(ev('exec', 1, 42, { filename: '/x', env: { LD_PRELOAD: '/ok.so' } }));
    assert.equal(t.get(42)!.loader_injected!.value, '/ok.so', 'all allowlisted: the mark names one (the rule does not fire)');
    t.observe(ev('exec', 1, 43, { filename: './myld', argv: ['./myld', '--preload', '/tmp/e.so', './wx'], ldso: { preload: '/tmp/e.so', program: './wx' } }));
    assert.deepEqual(t.get(43)!.loader_injected, { pid: 43, ts: 1, var: 'LD_PRELOAD', value: '/tmp/e.so' }, 'a copied loader');
    t.observe(ev('exec', 1, 44, { filename: '/lib64/ld-linux-x86-64.so.2', argv: ['/lib64/ld-linux-x86-64.so.2', '--preload', '/tmp/e.so', './wx'], ldso: { program: './wx' } }));
    assert.equal(t.get(44)!.loader_injected, undefined, 'with ldso, argv is not read: the kernel decoded the options ld.so obeys');
    t.observe(ev('exec', 1, 45, { filename: '/x', env: { LD_PRELOAD: '/ok.so' }, env_truncated: true }));
    assert.deepEqual(t.get(45)!.loader_injected, { pid: 45, ts: 1, var: 'LD_PRELOAD', value: ENV_TRUNCATED });
    t.observe(ev('exec', 1, 46, { filename: '/x', env: { LD_PRELOAD: '/tmp/z.so' }, env_truncated: true }));
    assert.equal(t.get(46)!.loader_injected!.value, '/tmp/z.so', 'a known offender is named first');
  });

  test('loader_injected: a reused pid (forked anew by another process, its exit lost) is not injected', () => {
    const t = new ProcessTable();
    t.observe(ev('exec', 1, 20, { env: { LD_PRELOAD: '/tmp/evil.so' }, filename: '/bin/x' }));
    t.observe(ev('exec', 2, 30, { filename: '/bin/clean' }));
    t.observe(ev('fork', 3, 30, { child_pid: 20 }));
    assert.equal(t.get(20)!.loader_injected, undefined);
  });

  test('descendants: children and grandchildren by lineage, a double fork whose middle exited included; not a reused pid\'s', () => {
    const t = new ProcessTable();
    t.observe(ev('exec', 1, 10, { filename: '/bin/x' }));
    t.observe(ev('fork', 2, 10, { child_pid: 11 }));
    t.observe(ev('fork', 3, 11, { child_pid: 12 }));
    t.observe(ev('fork', 4, 10, { child_pid: 13 }));
    t.observe(ev('exec', 5, 50, { filename: '/bin/other' }));
    t.observe(ev('fork', 6, 50, { child_pid: 51 }));
    t.release(11);
    assert.deepEqual(t.descendants(10).sort(), [12, 13]);
    assert.deepEqual(t.descendants(50), [51]);
    // pid 10 exits; a later process takes pid 10: 12 and 13 are not its descendants
    t.release(10);
    t.observe(ev('fork', 7, 50, { child_pid: 10 }));
    assert.deepEqual(t.descendants(10), []);
  });
});
