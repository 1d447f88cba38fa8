// The engine on rule sets compiled by the real loader (engine/rules/load.ts) from inline JSON, and on
// the bundled rules with the bundled sample log.
import { describe, test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { loadRuleSources, loadRuleDirs } from '../../engine/rules/load.ts';
import { readEvents, SAMPLE_LOG } from '../../engine/eventlog/index.ts';
import { Engine, type EngineOptions } from '../../engine/engine.ts';
import type { AlertOut, DeniedOut, Output, VerdictOut } from '../../engine/types.ts';
import type { KrsiEvent } from '../../signals/events.ts';
import type { CompiledRuleSet } from '../../engine/rules/types.ts';
import { S, ev, resetSeq } from './helpers.ts';

function load(doc: unknown): CompiledRuleSet {
  const r = loadRuleSources([{ file: 'inline.json', text: JSON.stringify(doc, null, 2) }]);
  assert.ok(r.ok, r.issues.map((i) => `${i.line}:${i.column} ${i.code} ${i.message}`).join('\n'));
  return r.set!;
}

function run(o: EngineOptions, events: KrsiEvent[]): Output[] {
  const e = new Engine(o);
  const out: Output[] = [];
  for (const x of events) e.push(x, (y) => out.push(y));
  e.finish((y) => out.push(y));
  return out;
}

beforeEach(() => resetSeq());

describe('engine with loaded rules', () => {
  test('sequence by pid with until exit, quarantine verdict, later exec denied', () => {
    const rules = load({
      lists: { ok_preload: ['/usr/lib/libjemalloc.so'] },
      rules: [
        {
          id: 'chain',
          description: 'preload then W+X',
          tags: ['T1574.006'],
          severity: 'critical',
          mode: 'enforce',
          match: { all: [] },
          correlation: {
            sequence: {
              by: ['pid'],
              within: '10s',
              steps: [
                { id: 'preload', match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'env', path: '$.LD_PRELOAD', operator: 'notInList', value: 'ok_preload' }, { fact: 'env', path: '$.LD_PRELOAD', operator: 'exists', value: true }] } },
                { id: 'wx', match: { all: [{ fact: 'type', operator: 'equal', value: 'mprotect' }, { fact: 'prot', operator: 'bitsSet', value: 6 }] } },
              ],
              until: { match: { all: [{ fact: 'type', operator: 'equal', value: 'exit' }] } },
            },
          },
          actions: [
            { type: 'alert', message: '{comm} preloaded {preload.env.LD_PRELOAD}' },
            { type: 'verdict', op: 'quarantine', subject: 'pid', ttl: '1h' },
          ],
        },
      ],
    });
    const out = run({ rules }, [
      ev('exec', 1 * S, 40, { filename: '/bin/a', env: { LD_PRELOAD: '/usr/lib/libjemalloc.so' } }), // allowlisted
      ev('mprotect', 2 * S, 40, { prot: 7 }),
      ev('exec', 3 * S, 41, { filename: '/bin/b', env: { LD_PRELOAD: '/tmp/x.so' } }),
      ev('exit', 4 * S, 41, { code: 0 }),
      ev('mprotect', 5 * S, 41, { prot: 7 }), // reused pid: no
      ev('exec', 6 * S, 42, { filename: '/bin/c', env: { LD_PRELOAD: '/tmp/x.so' } }),
      ev('mprotect', 7 * S, 42, { prot: 6 }),
      ev('exec', 8 * S, 42, { filename: '/bin/sh' }),
    ]);
    assert.deepEqual(out.map((o) => o.kind), ['alert', 'verdict', 'denied']);
    assert.equal((out[0] as AlertOut).message, 'sh preloaded /tmp/x.so');
    assert.deepEqual((out[0] as AlertOut).events, [5, 6]);
    assert.match((out[0] as AlertOut).explain!.join('\n'), /step preload: seq 5 exec .*env\.LD_PRELOAD notInList "ok_preload"/);
    assert.equal((out[1] as VerdictOut).ttl_ns, 3600 * S);
    assert.equal((out[2] as DeniedOut).seq, 7);
  });

  test('count with threshold and the kernel mprotect_limit from the same rule', () => {
    const rules = load({
      rules: [
        {
          id: 'storm',
          description: 'many mprotects',
          tags: ['T1055'],
          severity: 'high',
          mode: 'enforce',
          match: { all: [{ fact: 'type', operator: 'equal', value: 'mprotect' }] },
          correlation: { count: { by: ['pid'], within: '30s', threshold: 101 } },
          actions: [{ type: 'alert', message: '{count} mprotects by {key}' }],
          kernel: { mprotect_limit: 100 },
        },
      ],
    });
    const events: KrsiEvent[] = [];
    for (let i = 0; i < 103; i++) events.push(ev('mprotect', i * 1000, 7, { prot: 5, flip: true }));
    const out = run({ rules }, events);
    // the 101st W->X flip: the kernel counter refuses it, so replay does not count it
    assert.deepEqual(out.map((o) => [o.kind, (o as DeniedOut).seq ?? null]), [
      ['denied', 100],
      ['denied', 101],
      ['denied', 102],
    ]);
    const mon = run({ rules, mode: 'monitor' }, events.map((e) => ({ ...e })));
    assert.deepEqual(mon.map((o) => o.kind), ['alert']);
    assert.equal((mon[0] as AlertOut).message, '101 mprotects by 7');
  });

  test('wx: a memory event without it (an older log) means prot W+X; one with it says so itself (issue 11)', () => {
    const rules = load({
      rules: [{
        id: 'wx', description: 'wx memory', tags: ['T1055'], severity: 'high', mode: 'monitor',
        match: { all: [{ fact: 'type', operator: 'in', value: ['mprotect', 'mmap'] }, { fact: 'wx', operator: 'equal', value: true }] },
        actions: [{ type: 'alert', message: '{type} wx by {pid}' }],
      }],
    });
    const out = run({ rules }, [
      ev('mprotect', 1, 7, { start: 0, len: 4096, prot: 7 }),
      ev('mprotect', 2, 7, { start: 0, len: 4096, prot: 5 }),
      ev('mprotect', 3, 7, { start: 0, len: 4096, prot: 5, wx: true, flip: true }),
      ev('mprotect', 4, 7, { start: 0, len: 4096, prot: 7, wx: false }),
      ev('mmap', 5, 7, { start: 0, len: 4096, prot: 7, flags: 0x22 }),
    ]);
    assert.deepEqual(out.filter((o) => o.kind === 'alert').map((o) => (o as AlertOut).ts), [1, 3, 5]);
  });

  test('absent with lacks (hidden module) and distinct', () => {
    const rules = load({
      rules: [
        {
          id: 'hidden',
          description: 'hidden module',
          tags: ['T1014'],
          severity: 'critical',
          match: { all: [] },
          correlation: {
            absent: {
              within: '2m',
              first: { id: 'load', match: { all: [{ fact: 'type', operator: 'equal', value: 'module_load' }] } },
              then: { id: 'list', match: { all: [{ fact: 'type', operator: 'equal', value: 'module_list' }] }, lacks: { field: 'modules', from: 'name' } },
            },
          },
          actions: [{ type: 'alert', message: '{name} hidden' }],
        },
        {
          id: 'spray',
          description: 'one uid loads many modules',
          tags: ['T1547.006'],
          severity: 'medium',
          match: { all: [{ fact: 'type', operator: 'equal', value: 'module_load' }] },
          correlation: { distinct: { by: ['uid'], within: '1m', field: 'name', threshold: 2 } },
          actions: [{ type: 'alert' }],
        },
      ],
    });
    const out = run({ rules }, [
      ev('module_load', 1 * S, 5, { name: 'rk' }),
      ev('module_load', 2 * S, 5, { name: 'dummy' }),
      ev('module_list', 3 * S, 9, { modules: ['dummy', 'ext4'] }),
    ]);
    assert.deepEqual(out.map((o) => `${o.kind}:${(o as AlertOut).rule}`), ['alert:spray', 'alert:hidden']);
    assert.equal((out[1] as AlertOut).message, 'rk hidden');
  });
});

describe('explanations', () => {
  test('unnamed steps (the loader names them step1, step2) still show the conditions they met', () => {
    const rules = load({
      rules: [
        {
          id: 'fork-exec',
          description: 'fork then exec',
          tags: [],
          severity: 'low',
          match: { all: [] },
          correlation: {
            sequence: {
              by: ['pid'],
              within: '1s',
              steps: [{ match: { all: [{ fact: 'type', operator: 'equal', value: 'fork' }] } }, { match: { all: [{ fact: 'filename', operator: 'startsWith', value: '/tmp/' }] } }],
            },
          },
          actions: [{ type: 'alert', message: '{step2.filename} after fork' }],
        },
      ],
    });
    const out = run({ rules }, [ev('fork', 1, 5, { child_pid: 6 }), ev('exec', 2, 5, { filename: '/tmp/x' })]);
    const a = out[0] as AlertOut;
    assert.equal(a.message, '/tmp/x after fork');
    assert.match(a.explain![0], /^sequence step1 -> step2 by pid=5 within 1s$/);
    assert.match(a.explain![1], /^step step1: seq 0 fork child 6 pid 5 .* matched type equal "fork"$/);
    assert.match(a.explain![2], /^step step2: seq 1 exec \/tmp\/x pid 5 .* matched filename startsWith "\/tmp\/"$/);
  });
});

describe('engine on the bundled rules and sample log', () => {
  async function replay(mode?: 'monitor' | 'enforce'): Promise<Output[]> {
    const rules = await loadRuleDirs();
    const e = new Engine({ rules, mode });
    const out: Output[] = [];
    for await (const b of readEvents(SAMPLE_LOG)) for (const x of b) e.push(x, (y) => out.push(y));
    e.finish((y) => out.push(y));
    return out;
  }

  test('deterministic: two replays give identical output', async () => {
    const a = await replay();
    const b = await replay();
    assert.ok(a.length > 0);
    assert.deepEqual(a, b);
  });

  test('--mode monitor denies nothing; --mode enforce denies at least what the rules\' own modes do', async () => {
    const own = (await replay()).filter((o) => o.kind === 'denied').length;
    const mon = (await replay('monitor')).filter((o) => o.kind === 'denied').length;
    const enf = (await replay('enforce')).filter((o) => o.kind === 'denied').length;
    assert.equal(mon, 0);
    assert.ok(own > 0);
    assert.ok(enf >= own, `${enf} >= ${own}`);
  });
});

describe('condition text', () => {
  test('fact-to-fact comparisons name the other fact and its path', async () => {
    const { conditionText } = await import('../../engine/actions.ts');
    assert.equal(
      conditionText({ all: [{ fact: 'target', path: '$.ino', operator: 'equal', value: { fact: 'exe', path: '$.ino' } }, { not: { fact: 'comm', operator: 'in', value: ['a'] } }] }),
      'target.ino equal fact exe.ino and not comm in ["a"]',
    );
    assert.equal(conditionText({ any: [{ all: [{ fact: 'pid', operator: 'equal', value: 1 }] }, { fact: 'uid', operator: 'equal', value: 0 }] }), '(pid equal 1) or uid equal 0');
  });
});
