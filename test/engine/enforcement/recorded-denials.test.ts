// Replaying a log recorded under `krsi run --mode enforce`: the kernel's own `denied` records are in it
// beside the events, so each refused operation is reported once, with its rule, in any --mode.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../../engine/engine.ts';
import { loadRuleSources } from '../../../engine/rules/load.ts';
import type { DeniedOut, Mode, Output } from '../../../engine/types.ts';
import type { KrsiEvent } from '../../../signals/events.ts';
import { krsiSync } from '../../helpers/krsi.ts';

const RULES = JSON.stringify({
  rules: [
    {
      id: 'q', description: 'marker -> quarantine', tags: ['test'], severity: 'high', mode: 'enforce',
      match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'env', path: '$.M', operator: 'exists', value: true }] },
      actions: [{ type: 'verdict', op: 'quarantine', subject: 'pid', ttl: '10m' }],
    },
    { id: 'limit', description: 'the in-kernel counter', tags: ['test'], severity: 'low', mode: 'enforce', match: { all: [{ fact: 'type', operator: 'equal', value: 'exit' }, { fact: 'pid', operator: 'equal', value: -1 }] }, actions: [{ type: 'alert' }], kernel: { mprotect_limit: 2 } },
  ],
});
const loaded = loadRuleSources([{ file: 'inline.json', text: RULES }]);
assert.ok(loaded.ok && loaded.set, JSON.stringify(loaded.issues));
const rules = loaded.set!;

const base = (ts: number, pid: number, tid = pid) => ({ ts, pid, tid, ppid: 1, uid: 0, comm: 'sh', exe: { path: '/bin/sh', dev: 1, ino: 2 } });
const marked = (ts: number, pid: number): KrsiEvent => ({ ...base(ts, pid), type: 'exec', filename: '/bin/sh', env: { M: '1' } });
const mprotect = (ts: number, pid: number, tid?: number): KrsiEvent => ({ ...base(ts, pid, tid), type: 'mprotect', start: 4096, len: 4096, prot: 5 });
/** as decodeDenied makes it (rule_id resolved to the rule's name when the store knew it) */
const kernel = (ts: number, pid: number, op: string, extra: Record<string, unknown> = {}, tid?: number): KrsiEvent =>
  ({ ...base(ts, pid, tid), type: 'denied', op, key: { pid }, reason: 'TGID', rule_id: 1, enforced: true, rule: 'q', ...extra }) as KrsiEvent;

/** pid 50 is quarantined by its exec; then it mprotects PROT_EXEC (refused: the event and the kernel's
 *  record) and execs (refused: only the kernel's record, an exec that fails leaves no exec event) */
function recording(kernelFirst: boolean): KrsiEvent[] {
  const mp = [mprotect(3000, 50), kernel(3000, 50, 'mprotect_exec')];
  return [marked(1000, 50), ...(kernelFirst ? mp.reverse() : mp), kernel(4000, 50, 'exec')].map((e, i) => ({ ...e, seq: i + 1 }));
}

function replay(events: KrsiEvent[], mode?: Mode): DeniedOut[] {
  const engine = new Engine({ rules, mode });
  const out: Output[] = [];
  for (const e of events) engine.push(e, (o) => out.push(o));
  return out.filter((o): o is DeniedOut => o.kind === 'denied');
}

const brief = (d: DeniedOut) => ({ op: d.op, pid: d.pid, rule: d.rule, reason: d.reason });

describe('replaying an enforce-mode recording: one denial per refused operation', () => {
  for (const kernelFirst of [false, true]) {
    for (const mode of [undefined, 'enforce', 'monitor'] as const) {
      test(`--mode ${mode ?? '(the rules\' own)'}, ${kernelFirst ? 'the kernel\'s mprotect record before the event' : 'the mprotect event first'}`, () => {
        const d = replay(recording(kernelFirst), mode);
        assert.deepEqual(d.map(brief), [
          { op: 'mprotect_exec', pid: 50, rule: 'q', reason: 'TGID' },
          { op: 'exec', pid: 50, rule: 'q', reason: 'TGID' },
        ]);
        if (mode !== 'monitor') assert.equal(d[0].verdict, 'q:quarantine:pid:50', 'named after the verdict the model applied');
      });
    }
  }

  test('two refused mprotects of two threads, records interleaved: two denials', () => {
    const evs = [marked(1000, 50), mprotect(3000, 50, 51), kernel(3000, 50, 'mprotect_exec', {}, 52), mprotect(3000, 50, 52), kernel(3000, 50, 'mprotect_exec', {}, 51)]
      .map((e, i) => ({ ...e, seq: i + 1 }));
    assert.equal(replay(evs, 'enforce').length, 2);
  });

  test('a kernel record far from the model\'s refusal is its own operation', () => {
    const evs = [marked(1000, 50), mprotect(3000, 50), kernel(3000 + 5e9, 50, 'mprotect_exec')].map((e, i) => ({ ...e, seq: i + 1 }));
    assert.equal(replay(evs, 'enforce').length, 2);
  });

  test('records with rule_id 0 (the mprotect counter) are named after the rule that configured it, in any mode', () => {
    for (const mode of ['monitor', 'enforce'] as const) {
      // the model counts too under enforce: 3 calls over a limit of 2 refuse the third, which the record pairs with
      const evs = [1, 2, 3].map((i) => mprotect(1000 + i, 60)).concat([kernel(1004, 60, 'mprotect_exec', { key: { counter: 'mprotect_limit', pid: 60 }, reason: 'MPROTECT_LIMIT', rule_id: 0, rule: undefined })])
        .map((e, i) => ({ ...e, seq: i + 1 }));
      const d = replay(evs, mode);
      assert.deepEqual(d.map((x) => [x.op, x.rule, x.verdict, x.reason]), [['mprotect_exec', 'limit', 'kernel:mprotect_limit', 'MPROTECT_LIMIT']], mode);
    }
  });

  test('self-protection records are reported as self-protect', () => {
    const d = replay([{ ...base(1000, 70), seq: 1, type: 'denied', op: 'tamper', key: { map_id: 4, fmode: 3 }, reason: 'TAMPER_MAP', rule_id: 0, enforced: true } as KrsiEvent]);
    assert.deepEqual(d.map((x) => [x.op, x.rule, x.verdict]), [['tamper', 'self-protect', 'kernel:self_protect']]);
  });

  test('krsi replay (the CLI) of such a log, every --mode', () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-recorded-'));
    try {
      const log = join(dir, 'log.jsonl');
      writeFileSync(log, recording(true).map((e) => JSON.stringify(e)).join('\n') + '\n');
      writeFileSync(join(dir, 'rules.json'), RULES);
      for (const mode of ['enforce', 'monitor']) {
        const r = krsiSync(['replay', log, '--rules', join(dir, 'rules.json'), '--mode', mode, '--format', 'json']);
        assert.equal(r.status, 0, r.stderr);
        const outs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Output);
        assert.deepEqual(outs.filter((o): o is DeniedOut => o.kind === 'denied').map(brief), [
          { op: 'mprotect_exec', pid: 50, rule: 'q', reason: 'TGID' },
          { op: 'exec', pid: 50, rule: 'q', reason: 'TGID' },
        ], mode);
        assert.equal((outs.at(-1) as { denied?: number }).denied, 2);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
