// deniedDifferential: a recorded enforce-mode log's kernel denials against the replay model's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deniedDifferential } from '../../enforcers/index.ts';
import { loadRuleSources } from '../../engine/rules/load.ts';
import type { KrsiEvent } from '../../signals/events.ts';

const rules = loadRuleSources([{ file: 'inline.json', text: JSON.stringify({
  rules: [{
    id: 'q', description: 'marker -> quarantine', tags: ['test'], severity: 'high', mode: 'enforce',
    match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'env', path: '$.M', operator: 'exists', value: true }] },
    actions: [{ type: 'verdict', op: 'quarantine', subject: 'pid', ttl: '10m' }],
  }],
}) }]);
assert.ok(rules.ok && rules.set, JSON.stringify(rules.issues));

const base = (ts: number, seq: number, pid: number) => ({ ts, seq, pid, ppid: 1, uid: 0, comm: 'sh', exe: { path: '/bin/sh', dev: 1, ino: 2 } });
async function* one(evs: KrsiEvent[]) { yield evs; }

test('kernel denials of a quarantined process match the model; denials without a verdict do not', async () => {
  const evs: KrsiEvent[] = [
    { ...base(1000, 1, 50), type: 'exec', filename: '/bin/sh', env: { M: '1' } },
    { ...base(2000, 2, 50), type: 'denied', op: 'exec', key: { pid: 50 }, rule: 'q', reason: 'TGID' },
    { ...base(3000, 3, 50), type: 'mprotect', start: 0, len: 4096, prot: 5 },
    { ...base(3001, 4, 50), type: 'denied', op: 'mprotect_exec', key: { pid: 50 }, rule: 'q', reason: 'TGID' },
    { ...base(4000, 5, 60), type: 'exec', filename: '/bin/sh' },
  ];
  const d = await deniedDifferential(one(evs), rules.set!);
  assert.deepEqual(d.kernel, [{ pid: 50, op: 'exec', rule: 'q', reason: 'TGID' }, { pid: 50, op: 'mprotect_exec', rule: 'q', reason: 'TGID' }]);
  assert.deepEqual(d.model, d.kernel);
  assert.deepEqual(d.modelOnly, []);
  assert.deepEqual(d.deniedSeqs, [2, 4]);

  // a kernel denial the model cannot explain (no verdict on pid 60), and a model denial the kernel did not make
  const bad: KrsiEvent[] = [
    ...evs.slice(0, 3),
    { ...base(5000, 6, 60), type: 'denied', op: 'exec', key: { pid: 60 }, rule: 'q', reason: 'TGID' },
  ];
  const b = await deniedDifferential(one(bad), rules.set!);
  assert.notDeepEqual(b.model, b.kernel);
  assert.equal(b.modelOnly.length, 1, 'the mprotect the kernel allowed but the model denies');
});

test('self-protection events (op tamper) are no rule denial: the differential leaves them out', async () => {
  const evs: KrsiEvent[] = [
    { ...base(1000, 1, 70), type: 'denied', op: 'tamper', key: { map_id: 4, fmode: 3 }, reason: 'TAMPER_MAP' } as KrsiEvent,
    { ...base(2000, 2, 70), type: 'denied', op: 'tamper', key: { target: 9, signal: 19 }, reason: 'TAMPER_SIGNAL' } as KrsiEvent,
  ];
  const d = await deniedDifferential(one(evs), rules.set!);
  assert.deepEqual([d.kernel, d.model, d.modelOnly], [[], [], []]);
});

test('a FILELESS exec refusal pairs with the model when a rule in enforce mode asks for deny_fileless_exec, not otherwise', async () => {
  const src = (kernel: Record<string, unknown>) => loadRuleSources([{ file: 'f.json', text: JSON.stringify({
    rules: [{
      id: 'fl', description: 'fileless', tags: ['test'], severity: 'high', mode: 'enforce',
      match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'exe', path: '$.memfd', operator: 'equal', value: true }] },
      actions: [{ type: 'alert', message: 'x' }], kernel,
    }],
  }) }]).set!;
  const evs: KrsiEvent[] = [{ ...base(1000, 1, 70), type: 'denied', op: 'exec', key: { dev: 1, ino: 1505 }, reason: 'FILELESS', rule_id: 0 } as KrsiEvent];
  const on = await deniedDifferential(one(evs), src({ deny_fileless_exec: true }));
  assert.deepEqual(on.kernel, [{ pid: 70, op: 'exec', rule: '', reason: 'FILELESS' }]);
  assert.deepEqual(on.model, [{ pid: 70, op: 'exec', rule: 'fl', reason: 'FILELESS' }]);
  const off = await deniedDifferential(one(evs), src({ deny_fileless_exec: false }));
  assert.deepEqual(off.model, []);
});
