import { describe, test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, type EngineOptions } from '../../engine/engine.ts';
import { unenforced, type Enforcement } from '../../engine/enforcement/enforcement.ts';
import { EnforcementModel } from '../../engine/enforcement/model.ts';
import type { AlertOut, DeniedOut, Output, VerdictOut } from '../../engine/types.ts';
import type { KrsiEvent } from '../../signals/events.ts';
import type { Facts } from '../../engine/rules/types.ts';
import { S, ev, get, isType, keyOf, resetSeq, rule, ruleSet, step } from './helpers.ts';

function run(o: EngineOptions, events: KrsiEvent[]): { out: Output[]; engine: Engine } {
  const engine = new Engine(o);
  const out: Output[] = [];
  const emit = (x: Output) => out.push(x);
  for (const e of events) engine.push(e, emit);
  engine.finish(emit);
  return { out, engine };
}
const kinds = (out: Output[]) => out.map((o) => o.kind);
const alerts = (out: Output[]) => out.filter((o): o is AlertOut => o.kind === 'alert');
const verdicts = (out: Output[]) => out.filter((o): o is VerdictOut => o.kind === 'verdict');
const denials = (out: Output[]) => out.filter((o): o is DeniedOut => o.kind === 'denied');

const preload = (f: Facts) => f.type === 'exec' && get(f, 'proc.env.LD_PRELOAD') !== undefined;
const wx = (f: Facts) => f.type === 'mprotect' && (f.prot & 6) === 6;

function quarantineRule(mode: 'monitor' | 'enforce' = 'enforce') {
  return rule({
    id: 'preload-wx',
    mode,
    matchJson: { all: [{ fact: 'proc', path: '$.env.LD_PRELOAD', operator: 'exists', value: true }] },
    correlation: {
      kind: 'sequence',
      key: keyOf(['pid']),
      keyFields: ['pid'],
      within: 10 * S,
      steps: [step('preload', ['exec'], preload), step('wx', ['mprotect'], wx)],
      until: step('exit', ['exit'], isType('exit')),
    },
    actions: [
      { type: 'alert', message: '{comm} ({pid}) W+X after LD_PRELOAD={preload.env.LD_PRELOAD}' },
      { type: 'verdict', op: 'quarantine', subject: 'pid', ttl: '1h' },
    ],
    ttls: [0, 3600 * S],
  });
}

const LD = { env: { LD_PRELOAD: '/tmp/evil.so' }, filename: '/bin/app' };

beforeEach(() => resetSeq());

describe('engine: plain rules', () => {
  test('match fires an alert with a rendered message, contributing seq and explanation', () => {
    const r = rule({
      id: 'env',
      types: ['exec'],
      match: preload,
      matchJson: { all: [{ fact: 'env', path: '$.LD_PRELOAD', operator: 'exists', value: true }] },
      actions: [{ type: 'alert', message: 'exec of {filename} with LD_PRELOAD={proc.env.LD_PRELOAD} key={nope}' }],
    });
    const { out } = run({ rules: ruleSet([r]) }, [ev('exec', 1, 10, { filename: '/bin/ls' }), ev('exec', 2, 11, LD)]);
    assert.equal(out.length, 1);
    const a = out[0] as AlertOut;
    assert.equal(a.message, 'exec of /bin/app with LD_PRELOAD=/tmp/evil.so key=?');
    assert.deepEqual(a.events, [1]);
    assert.equal(a.pid, 11);
    assert.equal(a.ts, 2);
    assert.deepEqual(a.tags, ['T0000']);
    assert.match(a.explain!.join('\n'), /seq 1 exec \/bin\/app pid 11 .* matched env\.LD_PRELOAD exists true/);
  });

  test('rules only meet their event types', () => {
    let calls = 0;
    const r = rule({ id: 'x', types: ['unlink'], match: () => (calls++, false) });
    run({ rules: ruleSet([r]) }, [ev('exec', 1, 1), ev('mprotect', 2, 1, { prot: 1 }), ev('unlink', 3, 1, { path: '/x' })]);
    assert.equal(calls, 1);
  });

  test('a rule that throws is counted and skipped; the others still run', () => {
    const bad = rule({ id: 'bad', types: ['exec'], match: () => { throw new Error('boom'); } });
    const good = rule({ id: 'good', types: ['exec'] });
    const { out, engine } = run({ rules: ruleSet([bad, good]) }, [ev('exec', 1, 1), ev('exec', 2, 1)]);
    assert.equal(alerts(out).length, 2);
    assert.equal(engine.stats().errors, 2);
    assert.equal(engine.stats().per_rule.bad.errors, 2);
  });

  test('seq is assigned when absent, continuing from the last one seen', () => {
    const r = rule({ id: 'all', types: ['exec'] });
    const a = ev('exec', 1, 1);
    const b = ev('exec', 2, 1);
    delete a.seq;
    delete b.seq;
    const { out } = run({ rules: ruleSet([r]) }, [a, b]);
    assert.deepEqual(alerts(out).map((x) => x.events[0]), [0, 1]);
  });
});

describe('engine: sequence', () => {
  test('LD_PRELOAD exec then W+X mprotect within 10s quarantines; later exec/mprotect of that pid denied', () => {
    const { out, engine } = run({ rules: ruleSet([quarantineRule()]) }, [
      ev('exec', 1 * S, 42, LD), // 0
      ev('mprotect', 2 * S, 42, { prot: 3 }), // 1 not W+X
      ev('mprotect', 3 * S, 42, { prot: 7 }), // 2 completes
      ev('exec', 4 * S, 42, { filename: '/bin/sh' }), // 3 denied
      ev('mprotect', 5 * S, 42, { prot: 7 }), // 4 denied
      ev('exec', 6 * S, 43, { filename: '/bin/sh' }), // 5 other pid: fine
    ]);
    assert.deepEqual(kinds(out), ['alert', 'verdict', 'denied', 'denied']);
    const a = alerts(out)[0];
    assert.equal(a.message, 'sh (42) W+X after LD_PRELOAD=/tmp/evil.so');
    assert.deepEqual(a.events, [0, 2]);
    const v = verdicts(out)[0];
    assert.equal(v.op, 'quarantine');
    assert.deepEqual(v.subject, { kind: 'pid', pid: 42 });
    assert.equal(v.applied, true);
    assert.equal(v.expires, 3 * S + 3600 * S);
    assert.equal(v.id, 'preload-wx:quarantine:pid:42');
    const d = denials(out);
    assert.deepEqual(d.map((x) => [x.seq, x.op, x.verdict, x.rule]), [
      [3, 'exec', 'preload-wx:quarantine:pid:42', 'preload-wx'],
      [4, 'mprotect_exec', 'preload-wx:quarantine:pid:42', 'preload-wx'],
    ]);
    const st = engine.stats();
    assert.equal(st.per_rule['preload-wx'].denied, 2);
    assert.equal(st.refused, 2);
  });

  test('the second step after the window does not complete', () => {
    const { out } = run({ rules: ruleSet([quarantineRule()]) }, [ev('exec', 1 * S, 42, LD), ev('mprotect', 11 * S + 1, 42, { prot: 7 })]);
    assert.deepEqual(out, []);
  });

  test('exactly at the window edge still completes', () => {
    const { out } = run({ rules: ruleSet([quarantineRule()]) }, [ev('exec', 1 * S, 42, LD), ev('mprotect', 11 * S, 42, { prot: 7 })]);
    assert.equal(alerts(out).length, 1);
  });

  test('until (exit) clears the key: a reused pid never completes a stale sequence', () => {
    const { out } = run({ rules: ruleSet([quarantineRule()]) }, [
      ev('exec', 1 * S, 42, LD),
      ev('exit', 2 * S, 42, { code: 0 }),
      ev('mprotect', 3 * S, 42, { prot: 7 }), // pid 42 reused
    ]);
    assert.deepEqual(out, []);
  });

  test('a lost exit: a fork naming the pid as its child ends the stale sequence (and the replayed quarantine)', () => {
    // pid 42's exit is missing from the log (a full ring buffer); pid 7 then forks a new pid 42
    const stale = [ev('exec', 1 * S, 42, LD), ev('fork', 2 * S, 7, { child_pid: 42 }), ev('mprotect', 3 * S, 42, { prot: 7 })];
    const { out, engine } = run({ rules: ruleSet([quarantineRule()]) }, stale);
    assert.deepEqual(out, []);
    assert.equal(engine.stats().lost_exits, 1);
    // a thread (clone with child_pid == pid) is the same process: its sequence goes on
    const thread = [stale[0], ev('fork', 2 * S, 42, { child_pid: 42 }), stale[2]];
    const t = run({ rules: ruleSet([quarantineRule()]) }, thread);
    assert.equal(alerts(t.out).length, 1);
    assert.equal(t.engine.stats().lost_exits, 0);
    // control: the same events without the fork complete the sequence
    assert.equal(alerts(run({ rules: ruleSet([quarantineRule()]) }, [stale[0], stale[2]]).out).length, 1);
    // a quarantined pid whose exit was lost: the new process with its pid is not denied
    const quarantined = [ev('exec', 1 * S, 42, LD), ev('mprotect', 2 * S, 42, { prot: 7 }), ev('fork', 3 * S, 7, { child_pid: 42 }), ev('exec', 4 * S, 42, { filename: '/bin/ls' })];
    assert.deepEqual(kinds(run({ rules: ruleSet([quarantineRule()]) }, quarantined).out), ['alert', 'verdict']);
    assert.deepEqual(kinds(run({ rules: ruleSet([quarantineRule()]) }, quarantined.filter((e) => e.type !== 'fork')).out), ['alert', 'verdict', 'denied']);
    // a fork by the quarantined process itself: its child inherits the quarantine (the kernel's fork program)
    const inherited = [...quarantined.slice(0, 2), ev('fork', 3 * S, 42, { child_pid: 50 }), ev('exec', 4 * S, 50, { filename: '/bin/ls' })];
    assert.deepEqual(kinds(run({ rules: ruleSet([quarantineRule()]) }, inherited).out), ['alert', 'verdict', 'denied']);
  });

  test('without until, a pid-keyed sequence still ends when the pid exits', () => {
    const r = quarantineRule();
    if (r.correlation?.kind === 'sequence') delete r.correlation.until;
    const { out } = run({ rules: ruleSet([r]) }, [ev('exec', 1 * S, 42, LD), ev('exit', 2 * S, 42, { code: 0 }), ev('mprotect', 3 * S, 42, { prot: 7 })]);
    assert.deepEqual(out, []);
  });

  test('monitor mode: verdict emitted but not applied, nothing denied; --mode overrides either way', () => {
    const events = () => [ev('exec', 1 * S, 42, LD), ev('mprotect', 2 * S, 42, { prot: 7 }), ev('exec', 3 * S, 42)];
    let r = run({ rules: ruleSet([quarantineRule('monitor')]) }, events());
    assert.deepEqual(kinds(r.out), ['alert', 'verdict']);
    assert.equal(verdicts(r.out)[0].applied, false);
    assert.equal(verdicts(r.out)[0].mode, 'monitor');
    r = run({ rules: ruleSet([quarantineRule('monitor')]), mode: 'enforce' }, events());
    assert.deepEqual(kinds(r.out), ['alert', 'verdict', 'denied']);
    r = run({ rules: ruleSet([quarantineRule('enforce')]), mode: 'monitor' }, events());
    assert.deepEqual(kinds(r.out), ['alert', 'verdict']);
  });

  test('krsi itself (the model\'s selfPid) is never denied', () => {
    const rules = ruleSet([quarantineRule()]);
    const { out } = run({ rules, enforcement: new EnforcementModel({ rules, selfPid: 42 }) }, [ev('exec', 1 * S, 42, LD), ev('mprotect', 2 * S, 42, { prot: 7 }), ev('exec', 3 * S, 42)]);
    assert.deepEqual(kinds(out), ['alert', 'verdict']);
  });

  test('steps with their own key (fork child_pid, then the child execs); verdict from a named step', () => {
    const r = rule({
      id: 'child',
      mode: 'enforce',
      correlation: {
        kind: 'sequence',
        key: keyOf(['pid']),
        keyFields: ['pid'],
        within: 5 * S,
        steps: [step('fork', ['fork'], isType('fork'), ['child_pid']), step('exec', ['exec'], (f) => f.type === 'exec' && f.filename === '/bin/nc')],
      },
      actions: [{ type: 'verdict', op: 'exec', subject: 'exe', ttl: 0, from: 'exec' }],
    });
    const { out } = run({ rules: ruleSet([r]) }, [
      ev('fork', 1, 10, { child_pid: 11 }),
      ev('exec', 2, 12, { filename: '/bin/nc' }), // another pid
      ev('exec', 3, 11, { filename: '/bin/nc', exe: { path: '/bin/nc', dev: 5, ino: 55 } }),
      ev('exec', 4, 99, { filename: '/bin/nc', exe: { path: '/bin/nc', dev: 5, ino: 55 } }), // denied by inode
    ]);
    assert.deepEqual(kinds(out), ['verdict', 'denied']);
    assert.deepEqual(verdicts(out)[0].subject, { kind: 'inode', dev: 5, ino: 55 });
    assert.deepEqual(verdicts(out)[0].events, [0, 2]);
    assert.equal(denials(out)[0].seq, 3);
  });

  test('an event advances at most one step', () => {
    const any = () => true;
    const r = rule({
      id: 'three',
      correlation: { kind: 'sequence', key: keyOf(['pid']), keyFields: ['pid'], within: 10, steps: [step('a', '*', any), step('b', '*', any), step('c', '*', any)] },
    });
    const { out } = run({ rules: ruleSet([r]) }, [ev('exec', 1, 1), ev('exec', 2, 1), ev('exec', 3, 1), ev('exec', 4, 1)]);
    assert.deepEqual(alerts(out).map((a) => a.events), [[0, 1, 2]]);
  });
});

describe('engine: count', () => {
  const countRule = (threshold: number, within: number) =>
    rule({
      id: 'storm',
      types: ['mprotect'],
      match: isType('mprotect'),
      correlation: { kind: 'count', key: keyOf(['pid']), keyFields: ['pid'], within, threshold, until: step('exit', ['exit'], isType('exit')) },
      actions: [{ type: 'alert', message: '{count} by {key}' }, { type: 'verdict', op: 'mprotect_exec', subject: 'pid', ttl: '10m' }],
      ttls: [0, 600 * S],
      mode: 'enforce',
    });

  test('fires at the threshold within the window, once per burst, then re-arms after a quiet window', () => {
    const events: KrsiEvent[] = [];
    for (let i = 0; i < 250; i++) events.push(ev('mprotect', i * 1000, 42, { prot: 1 }));
    // after the quiet window: another burst
    for (let i = 0; i < 101; i++) events.push(ev('mprotect', 10 * S + i, 42, { prot: 1 }));
    const { out } = run({ rules: ruleSet([countRule(101, 1 * S)]) }, events);
    const a = alerts(out);
    assert.equal(a.length, 2);
    assert.equal(a[0].message, '101 by 42');
    assert.equal(a[0].events.length, 101);
    assert.equal(a[0].events[0], 0);
    assert.equal(a[0].events[100], 100);
    assert.equal(a[1].events[0], 250);
  });

  test('sliding window: events spread wider than the window never reach the threshold', () => {
    const events: KrsiEvent[] = [];
    for (let i = 0; i < 50; i++) events.push(ev('mprotect', i * 100, 42, { prot: 1 }));
    const { out } = run({ rules: ruleSet([countRule(5, 399)]) }, events);
    assert.equal(out.length, 0);
    const { out: out2 } = run({ rules: ruleSet([countRule(5, 400)]) }, events.map((e) => ({ ...e })));
    assert.ok(alerts(out2).length > 0);
  });

  test('per key; until (exit) resets; verdict denies the next PROT_EXEC mprotect', () => {
    const events: KrsiEvent[] = [];
    for (let i = 0; i < 3; i++) events.push(ev('mprotect', i, 1, { prot: 1 }), ev('mprotect', i, 2, { prot: 1 }));
    events.push(ev('exit', 10, 1, { code: 0 }));
    events.push(ev('mprotect', 11, 1, { prot: 1 }), ev('mprotect', 12, 2, { prot: 1 }), ev('mprotect', 13, 2, { prot: 7 }), ev('mprotect', 14, 1, { prot: 7 }));
    const { out } = run({ rules: ruleSet([countRule(4, S)]) }, events);
    assert.deepEqual(kinds(out), ['alert', 'verdict', 'denied']);
    assert.equal(alerts(out)[0].pid, 2);
    assert.equal(denials(out)[0].pid, 2);
  });
});

describe('engine: distinct', () => {
  test('N distinct values of a field per key within the window', () => {
    const r = rule({
      id: 'many-modules',
      types: ['module_load'],
      match: isType('module_load'),
      correlation: { kind: 'distinct', key: keyOf(['uid']), keyFields: ['uid'], within: 10, threshold: 3, field: (f) => get(f, 'name') },
    });
    const { out } = run({ rules: ruleSet([r]) }, [
      ev('module_load', 1, 5, { name: 'a' }),
      ev('module_load', 2, 6, { name: 'a' }),
      ev('module_load', 3, 7, { name: 'b' }),
      ev('module_load', 20, 7, { name: 'c' }), // a, b out of the window
      ev('module_load', 21, 7, { name: 'd' }),
      ev('module_load', 22, 7, { name: 'd' }),
      ev('module_load', 23, 7, { name: 'e' }),
    ]);
    assert.deepEqual(alerts(out).map((a) => a.events), [[3, 5, 6]]);
  });
});

describe('engine: absent', () => {
  const absentRule = () =>
    rule({
      id: 'no-b',
      correlation: {
        kind: 'absent',
        key: keyOf(['pid']),
        keyFields: ['pid'],
        within: 10,
        first: step('a', ['exec'], isType('exec')),
        then: step('b', ['unlink'], isType('unlink')),
      },
      actions: [{ type: 'alert', message: '{a.filename} not followed by unlink' }],
    });

  test('A not followed by B: fires when event time passes the deadline, at the deadline', () => {
    const { out } = run({ rules: ruleSet([absentRule()]) }, [ev('exec', 0, 1, { filename: '/x' }), ev('fork', 5, 2, { child_pid: 3 }), ev('fork', 11, 2, { child_pid: 4 })]);
    assert.equal(out.length, 1);
    const a = out[0] as AlertOut;
    assert.equal(a.ts, 10);
    assert.deepEqual(a.events, [0]);
    assert.equal(a.message, '/x not followed by unlink');
  });

  test('B with the same key within the window (even at the deadline) prevents it; another key does not', () => {
    let r = run({ rules: ruleSet([absentRule()]) }, [ev('exec', 0, 1), ev('unlink', 10, 1, { path: '/x' }), ev('fork', 100, 2, { child_pid: 3 })]);
    assert.deepEqual(r.out, []);
    r = run({ rules: ruleSet([absentRule()]) }, [ev('exec', 0, 1), ev('unlink', 5, 2, { path: '/x' }), ev('fork', 100, 2, { child_pid: 3 })]);
    assert.equal(r.out.length, 1);
  });

  test('until ends the pending A of its key (an exit: the process did not get to do B); another key does not', () => {
    const withUntil = () => {
      const r = absentRule();
      if (r.correlation?.kind === 'absent') r.correlation.until = step('until', ['exit'], isType('exit'));
      return r;
    };
    const events = [ev('exec', 0, 1), ev('exit', 5, 1, { code: 0 }), ev('fork', 100, 2, { child_pid: 3 })];
    assert.deepEqual(run({ rules: ruleSet([withUntil()]) }, events).out, []);
    assert.equal(run({ rules: ruleSet([absentRule()]) }, events).out.length, 1, 'without until the exit changes nothing');
    const other = [ev('exec', 0, 1), ev('exit', 5, 2, { code: 0 }), ev('fork', 100, 2, { child_pid: 3 })];
    assert.equal(run({ rules: ruleSet([withUntil()]) }, other).out.length, 1);
  });

  test('no event past the deadline: undecided, finish() fires nothing; advance() moves event time', () => {
    const e = new Engine({ rules: ruleSet([absentRule()]) });
    const out: Output[] = [];
    e.push(ev('exec', 0, 1), (o) => out.push(o));
    e.finish((o) => out.push(o));
    assert.equal(out.length, 0);
    e.advance(10, (o) => out.push(o));
    assert.equal(out.length, 0);
    e.advance(11, (o) => out.push(o));
    assert.equal(out.length, 1);
  });

  /** the hidden-module rule's shape: a load, then a module list lacking its name; optionally until an unload */
  const hiddenRule = (o: { until?: boolean; verdict?: boolean } = {}) =>
    rule({
      id: 'hidden',
      correlation: {
        kind: 'absent',
        keyFields: [],
        within: 120 * S,
        first: step('load', ['module_load'], isType('module_load')),
        then: { ...step('list', ['module_list'], isType('module_list')), lacks: { field: (f) => get(f, 'modules'), from: (f) => get(f, 'name') } },
        ...(o.until ? { until: step('until', ['module_unload'], isType('module_unload')) } : {}),
      },
      actions: [{ type: 'alert', message: 'module {name} hidden' }, ...(o.verdict ? [{ type: 'verdict' as const, op: 'module_load' as const, subject: 'module' as const, ttl: 0 }] : [])],
    });

  test('lacks: a module loaded then missing from a later module_list fires, also after it was listed; one that stays listed does not', () => {
    const r = hiddenRule({ verdict: true });
    const { out } = run({ rules: ruleSet([r]) }, [
      ev('module_load', 1 * S, 5, { name: 'rootkit' }),
      ev('module_load', 2 * S, 5, { name: 'dummy' }),
      ev('module_load', 2 * S, 5, { name: 'ext4' }),
      ev('module_list', 3 * S, 900, { modules: ['ext4', 'dummy'] }),
      ev('module_list', 4 * S, 900, { modules: ['ext4'] }), // dummy listed at 3 s, hidden by 4 s
      ev('module_list', 5 * S, 900, { modules: ['ext4'] }), // each pending A fires once
      ev('module_load', 6 * S, 5, { name: 'late' }),
      ev('module_list', 200 * S, 900, { modules: [] }), // 'late' out of window
    ]);
    assert.deepEqual(kinds(out), ['alert', 'verdict', 'alert', 'verdict']);
    assert.deepEqual(alerts(out).map((a) => [a.message, a.events]), [['module rootkit hidden', [0, 3]], ['module dummy hidden', [1, 4]]]);
    assert.deepEqual(verdicts(out)[0].subject, { kind: 'module', name: 'rootkit' });
  });

  test('lacks with until: an unload ends one pending load of that name; a second load of the name stays pending', () => {
    const r = hiddenRule({ until: true });
    const list = (t: number) => ev('module_list', t * S, 900, { modules: ['ext4'] });
    // a snapshot taken (ts) before a load but delivered after it says nothing of that load
    assert.deepEqual(run({ rules: ruleSet([r]) }, [ev('module_load', 5 * S, 5, { name: 'veth' }), list(4)]).out, []);
    // rmmod before the snapshot: not hidden
    assert.deepEqual(run({ rules: ruleSet([r]) }, [ev('module_load', 1 * S, 5, { name: 'dummy' }), ev('module_unload', 2 * S, 6, { name: 'dummy' }), list(3)]).out, []);
    // a rootkit hides, then a module of the same name loads and fails its init (load + unload): the
    // first is still pending and fires
    const { out } = run({ rules: ruleSet([r]) }, [
      ev('module_load', 1 * S, 5, { name: 'rk' }),
      ev('module_load', 2 * S, 5, { name: 'rk' }),
      ev('module_unload', 2 * S, 5, { name: 'rk' }),
      list(3),
    ]);
    assert.deepEqual(alerts(out).map((a) => a.message), ['module rk hidden']);
  });
});

describe('engine: verdict subjects', () => {
  test('unlink target inode; an unlink without a target issues no verdict', () => {
    const r = rule({ id: 'self-delete', types: ['unlink'], match: isType('unlink'), actions: [{ type: 'verdict', op: 'exec', subject: 'target', ttl: 0 }], mode: 'enforce' });
    const { out, engine } = run({ rules: ruleSet([r]) }, [
      ev('unlink', 1, 5, { path: '/tmp/a' }),
      ev('unlink', 2, 5, { path: '/tmp/b', target: { dev: 1, ino: 2 } }),
      ev('exec', 3, 6, { exe: { path: '/tmp/b2', dev: 1, ino: 2 } }),
    ]);
    assert.deepEqual(kinds(out), ['verdict', 'denied']);
    assert.equal(engine.stats().no_subject, 1);
  });
});

describe('engine: kernel blocks and denied events', () => {
  test('mprotect_limit from an enforce-mode rule: the 101st W->X flip is denied (W+X-at-once calls are not counted)', () => {
    const r = rule({ id: 'mp', types: ['mprotect'], match: () => false, kernel: { mprotect_limit: 100 }, mode: 'enforce' });
    const events: KrsiEvent[] = [];
    for (let i = 0; i < 102; i++) events.push(ev('mprotect', i, 7, { prot: 5, flip: true }));
    for (let i = 0; i < 50; i++) events.push(ev('mprotect', 200 + i, 8, { prot: 7, wx: true }));
    const { out } = run({ rules: ruleSet([r]) }, events);
    assert.deepEqual(denials(out).map((d) => [d.seq, d.verdict, d.reason]), [
      [100, 'kernel:mprotect_limit', 'MPROTECT_LIMIT'],
      [101, 'kernel:mprotect_limit', 'MPROTECT_LIMIT'],
    ]);
  });

  test('live (no model) reports only the kernel\'s own denied events', () => {
    const r = rule({ id: 'mp', types: ['mprotect'], match: () => false, kernel: { mprotect_limit: 1 }, mode: 'enforce' });
    const { out } = run({ rules: ruleSet([r]), enforcement: unenforced() }, [
      ev('mprotect', 1, 7, { prot: 5, flip: true }),
      ev('mprotect', 2, 7, { prot: 5, flip: true }),
      ev('denied', 3, 7, { op: 'mprotect_exec', key: { counter: 'mprotect' }, reason: 'MPROTECT_LIMIT' }),
    ]);
    assert.deepEqual(denials(out).map((d) => [d.seq, d.op, d.reason]), [[2, 'mprotect_exec', 'MPROTECT_LIMIT']]);
  });
});

describe('engine: bounded state', () => {
  test('per-rule key cap evicts the oldest and counts it; state stays flat on endless distinct keys', () => {
    const r = rule({
      id: 'seq',
      correlation: { kind: 'sequence', key: keyOf(['pid']), keyFields: ['pid'], within: 1e12, steps: [step('a', ['exec'], isType('exec')), step('b', ['exit'], isType('exit'))] },
    });
    const e = new Engine({ rules: ruleSet([r]), maxKeysPerRule: 100, maxProcs: 50 });
    const emit = () => {};
    for (let i = 0; i < 10_000; i++) e.push(ev('exec', i, 1000 + i), emit);
    const st = e.stats();
    assert.equal(st.correlation.seq.keys, 100);
    assert.equal(st.correlation.seq.evictions, 9_900);
    assert.equal(st.procs.size, 50);
    assert.equal(st.procs.evictions, 9_950);
  });

  test('windows expire by event time: old keys are swept as new ones arrive', () => {
    const r = rule({
      id: 'seq',
      correlation: { kind: 'sequence', key: keyOf(['pid']), keyFields: ['pid'], within: 10, steps: [step('a', ['exec'], isType('exec')), step('b', ['exit'], isType('exit'))] },
    });
    const e = new Engine({ rules: ruleSet([r]), maxKeysPerRule: 1_000_000 });
    for (let i = 0; i < 10_000; i++) e.push(ev('exec', i, 1000 + i), () => {});
    const st = e.stats().correlation.seq;
    assert.ok(st.keys <= 12, `keys ${st.keys}`);
    assert.equal(st.evictions, 0);
    assert.ok(st.expired > 9_000);
  });
});

describe('engine: the Enforcement it is given', () => {
  function recorder(applies: boolean) {
    const calls: string[] = [];
    const e: Enforcement = {
      check: (x) => (calls.push(`check ${x.type}`), x.type === 'exec' && x.pid === 9 ? { kind: 'denied', ts: x.ts, seq: x.seq ?? -1, pid: 9, op: 'exec', verdict: 'v', rule: 'r' } : undefined),
      apply: (v) => (calls.push(`apply ${v.id}`), applies),
      denied: (x) => (calls.push(`denied ${x.op}`), undefined),
      sizes: () => ({ things: 3 }),
    };
    return { calls, e };
  }

  test('check for every event but denied, denied for those, apply for enforce-mode verdicts; nothing else', () => {
    const { calls, e } = recorder(true);
    const { out, engine } = run({ rules: ruleSet([quarantineRule()]), enforcement: e }, [
      ev('exec', 1 * S, 42, LD), ev('mprotect', 2 * S, 42, { prot: 7 }), ev('denied', 3 * S, 42, { op: 'exec', key: { pid: 42 } }), ev('exec', 4 * S, 9),
    ]);
    assert.deepEqual(calls, ['check exec', 'check mprotect', 'apply preload-wx:quarantine:pid:42', 'denied exec', 'check exec']);
    assert.deepEqual(kinds(out), ['alert', 'verdict', 'denied']);
    assert.equal(verdicts(out)[0].applied, true);
    assert.equal(engine.stats().refused, 1, 'the event enforcement refused goes no further');
    assert.deepEqual(engine.stats().enforcement, { things: 3 });
  });

  test('applied is what apply() returned; a monitor-mode verdict is not applied', () => {
    const { e } = recorder(false);
    assert.equal(verdicts(run({ rules: ruleSet([quarantineRule()]), enforcement: e }, [ev('exec', 1 * S, 42, LD), ev('mprotect', 2 * S, 42, { prot: 7 })]).out)[0].applied, false);
    const m = recorder(true);
    const r = run({ rules: ruleSet([quarantineRule('monitor')]), enforcement: m.e }, [ev('exec', 1 * S, 42, LD), ev('mprotect', 2 * S, 42, { prot: 7 })]);
    assert.equal(verdicts(r.out)[0].applied, false);
    assert.ok(!m.calls.some((c) => c.startsWith('apply')));
  });

  test('unenforced(): live without enforcement refuses and applies nothing, and names a kernel record as it reads', () => {
    const { out } = run({ rules: ruleSet([quarantineRule()]), enforcement: unenforced() }, [
      ev('exec', 1 * S, 42, LD), ev('mprotect', 2 * S, 42, { prot: 7 }), ev('exec', 3 * S, 42),
      ev('denied', 4 * S, 42, { op: 'exec', key: { pid: 42 }, reason: 'TGID', rule: 'elsewhere' }),
    ]);
    assert.equal(verdicts(out)[0].applied, false);
    assert.deepEqual(denials(out).map((d) => [d.rule, d.reason]), [['elsewhere', 'TGID']]);
  });

  test('the default is the replay model of the rules; a model passed in is the one the engine uses', () => {
    const model = new EnforcementModel({ rules: ruleSet([quarantineRule()]) });
    const { out } = run({ rules: ruleSet([quarantineRule()]), enforcement: model }, [ev('exec', 1 * S, 42, LD), ev('mprotect', 2 * S, 42, { prot: 7 }), ev('exec', 3 * S, 42)]);
    assert.deepEqual(kinds(out), ['alert', 'verdict', 'denied']);
    assert.deepEqual(model.list().map((v) => v.id), ['preload-wx:quarantine:pid:42']);
  });
});
