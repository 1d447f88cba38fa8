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
/** a W->X flip (issue 11: the kernel counter counts flips only) */
const mprotect = (ts: number, pid: number, tid?: number): KrsiEvent => ({ ...base(ts, pid, tid), type: 'mprotect', start: 4096, len: 4096, prot: 5, wx: true, flip: true });
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

  test('a refused mmap (issue 11: krsi_mmap_file): its kernel record, then its event at the syscall\'s exit (ret -1), is one denial in every mode', () => {
    const mmap: KrsiEvent = { ...base(3001, 50), type: 'mmap', start: 4096, len: 4096, prot: 7, reqprot: 7, flags: 0x22, wx: true, exec_added: true, anon: true, ret: -1 };
    for (const mode of [undefined, 'enforce', 'monitor'] as const) {
      const evs: KrsiEvent[] = [marked(1000, 50), kernel(3000, 50, 'mprotect_exec'), mmap].map((e, i) => ({ ...e, seq: i + 1 }));
      assert.deepEqual(replay(evs, mode).map(brief), [{ op: 'mprotect_exec', pid: 50, rule: 'q', reason: 'TGID' }], mode ?? 'own modes');
    }
  });

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

describe('pairing a kernel record with the model\'s refusal (found in review)', () => {
  test('the nearest refusal in time, not the oldest open one: under --mode enforce the model refuses calls the kernel let through', () => {
    // live, q was monitor: the kernel refused only the 3rd mprotect (the counter, limit 2)
    const monitorQ = loadRuleSources([{ file: 'inline.json', text: RULES.replace('"mode":"enforce"', '"mode":"monitor"') }]).set!;
    const log = [marked(1000, 50), mprotect(2000, 50), mprotect(3000, 50), mprotect(4000, 50), kernel(4000, 50, 'mprotect_exec', { key: { counter: 'mprotect_limit', pid: 50 }, reason: 'MPROTECT_LIMIT', rule_id: 0, rule: 'limit' })]
      .map((e, i) => ({ ...e, seq: i + 1 }));
    const run = (mode?: Mode) => {
      const eng = new Engine({ rules: monitorQ, mode });
      const out: DeniedOut[] = [];
      for (const e of log) eng.push(structuredClone(e), (o) => o.kind === 'denied' && out.push(o));
      return out.map((d) => [d.seq, d.rule, d.reason]);
    };
    // every mprotect refused by the quarantine once; the kernel's record is the 3rd call's, not the 1st's
    assert.deepEqual(run('enforce'), [[2, 'q', 'TGID'], [3, 'q', 'TGID'], [4, 'q', 'TGID']]);
    // the rules' own modes: only the counter, once
    assert.deepEqual(run(), [[4, 'limit', 'MPROTECT_LIMIT']]);
  });

  test('unpaired refusals are bounded: a storm of refused mprotects with no kernel records is linear and drops what waits (counted)', () => {
    const eng = new Engine({ rules, mode: 'enforce' });
    let denied = 0;
    eng.push({ ...marked(1000, 50), seq: 1 }, () => {});
    for (let i = 0; i < 20_000; i++) eng.push({ ...mprotect(2000 + i, 50), seq: i + 2 }, (o) => o.kind === 'denied' && denied++);
    assert.equal(denied, 20_000, 'each refused once');
    const sizes = eng.stats().enforcement as Record<string, number>;
    assert.ok(sizes.pairs_dropped > 0 && sizes.pairs_waiting <= 64, JSON.stringify(sizes));
  });
});

test('a denied record of an unknown op or reason is reported as it is, blamed on no verdict (found in review: it was blamed on the pid\'s exec verdict)', () => {
  for (const mode of [undefined, 'enforce', 'monitor'] as const) {
    const eng = new Engine({ rules, mode });
    const out: DeniedOut[] = [];
    const push = (e: KrsiEvent) => eng.push(e, (o) => o.kind === 'denied' && out.push(o));
    push({ ...marked(1000, 50), seq: 1 });
    push({ ...kernel(2000, 50, 'op16'), seq: 2 });
    push({ ...kernel(3000, 50, 'exec', { reason: 'reason99' }), seq: 3 });
    push({ ...kernel(4000, 50, '__proto__', { reason: 'toString' }), seq: 4 });
    assert.deepEqual(out.map((d) => [d.seq, d.op, d.rule, d.verdict]), [[2, 'unknown', 'unknown', 'kernel:unknown_op'], [3, 'exec', 'unknown', 'kernel:unknown_reason'], [4, 'unknown', 'unknown', 'kernel:unknown_op']], `mode ${mode}`);
  }
});
