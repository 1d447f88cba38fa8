// krsi run's live wiring (cli/live-runs.ts) at start and stop, over stub sources: found in review of the
// pipeline's first version, each test failed on it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EMPTY, Subject } from 'rxjs';
import type { DeniedEvent, KrsiEvent } from '../../signals/events.ts';
import type { LiveSignals } from '../../signals/live.ts';
import type { EnforceSession } from '../../enforcers/index.ts';
import { Enforcer, KernelEnforcement, MemoryMapWriter } from '../../enforcers/index.ts';
import { VerdictStore } from '../../enforcers/store.ts';
import type { ExeHasher } from '../../signals/hash.ts';
import { runLive } from '../../cli/live-runs.ts';
import { unenforced } from '../../engine/enforcement/enforcement.ts';
import { loadRuleSources } from '../../engine/rules/load.ts';
import { readEvents } from '../../engine/eventlog/index.ts';
import type { Output, Verdict } from '../../engine/types.ts';

const rulesOf = (text: string) => {
  const loaded = loadRuleSources([{ file: 'r.json', text }]);
  assert.ok(loaded.ok && loaded.set, JSON.stringify(loaded.issues));
  return loaded.set!;
};
const FORKS = rulesOf(JSON.stringify({ rules: [{ id: 'f', description: 'x', tags: ['t'], severity: 'low', mode: 'monitor', match: { all: [{ fact: 'type', operator: 'equal', value: 'fork' }] }, actions: [{ type: 'alert' }] }] }));
const base = (ts: number, pid: number, comm = 'sh') => ({ ts, pid, ppid: 1, uid: 0, comm, exe: { dev: 1, ino: 2, path: '/bin/sh' } });
const fork = (ts: number, pid: number, comm?: string) => ({ ...base(ts, pid, comm), type: 'fork', child_pid: pid + 1 }) as KrsiEvent;

function stubLive(o: { completes?: boolean; order?: string[] } = {}) {
  const batches = new Subject<KrsiEvent[]>();
  const live: LiveSignals = {
    events$: EMPTY, batches$: batches, lost: () => 0, lostByKind: () => ({}), unavailable: {},
    stats: () => ({ records: 0, events: 0, bad: 0, reordered: 0 }),
    stop: async () => {
      o.order?.push('live.stop');
      if (o.completes !== false) batches.complete();
    },
  };
  return { batches, live };
}

describe('krsi run: start and stop', () => {
  test('a denial the kernel reported while krsi was starting reaches the output and the log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-early-'));
    try {
      const early = [{ ...base(500, 77, 'evil'), type: 'denied', tid: 77, op: 'exec', key: { pid: 77 }, reason: 'TGID', rule_id: 1, enforced: true, rule: 'q' } as unknown as DeniedEvent];
      // as startEnforcement does: denials before onDenied() are buffered, then handed to the callback
      const enforce = { enforcement: unenforced(), onDenied: (cb: (ev: DeniedEvent) => void) => early.splice(0).forEach(cb), close: async () => {} } as unknown as EnforceSession;
      const { live } = stubLive();
      const outs: Output[] = [];
      let stop!: () => void;
      const log = join(dir, 'log');
      const running = runLive({ rules: FORKS, live, enforce, record: log, stop: new Promise<void>((r) => (stop = r)), clock: () => 0, hashExe: false }, (o) => outs.push(o));
      await new Promise((r) => setTimeout(r, 20));
      stop();
      await running;
      const logged: KrsiEvent[] = [];
      for await (const b of readEvents(log)) logged.push(...b);
      assert.equal(outs.filter((o) => o.kind === 'denied').length, 1, 'reported');
      assert.equal(logged.length, 1, 'recorded');
      assert.equal(outs.at(-1)!.kind, 'summary', 'the summary last');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('stop: events held for their exe hash are evaluated before the enforcer closes; nothing reaches it after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-stop-'));
    try {
      const rules = rulesOf(JSON.stringify({ rules: [{ id: 'q', description: 'evil -> quarantine', tags: ['t'], severity: 'high', mode: 'enforce', match: { all: [{ fact: 'comm', operator: 'equal', value: 'evil' }] }, actions: [{ type: 'verdict', op: 'quarantine', subject: 'pid', ttl: '10m' }] }] }));
      const order: string[] = [];
      const enforcer = new Enforcer(VerdictStore.open(join(dir, 'state')), new MemoryMapWriter(), { selfPid: 4242, clock: () => ({ boot: 1_000, wall: 1e12, bootId: 'b' }), procStart: () => 77 });
      const ke = new KernelEnforcement(enforcer, () => 1000);
      const enforcement = {
        check: (ev: KrsiEvent) => (order.push(`check ${ev.type} ${ev.pid}`), ke.check(ev)),
        apply: (v: Verdict) => { const r = ke.apply(v); order.push(`apply ${(v.subject as { pid: number }).pid} ${r}`); return r; },
        denied: (ev: DeniedEvent) => ke.denied(ev), sizes: () => ke.sizes(),
      };
      const enforce = { enforcer, enforcement, onDenied() {}, close: async () => { order.push('enforce.close'); ke.close(); enforcer.release(); await enforcer.close(); } } as unknown as EnforceSession;
      // a hasher that never answers: exec batches go on at their 250 ms deadline
      const hasher = {
        maxQueued: 65536, queued: 0, heldFrom: () => undefined, start: async () => {}, hash: () => new Promise(() => {}), count: () => {},
        deadlineOf: (a: number) => a + 250, close: () => order.push('hasher.close'),
        stats: () => ({ hashed: 0, hits: 0, misses: 0, bytes: 0, failed: 0, failures: {}, cached: 0, pending: 0, waiting: 0, restarts: 0 }),
      } as unknown as ExeHasher;
      const { batches, live } = stubLive({ order });
      const outs: Output[] = [];
      let stop!: () => void;
      const running = runLive({ rules, live, enforce, stop: new Promise<void>((r) => (stop = r)), clock: () => 0, hashExe: hasher }, (o) => outs.push(o));
      batches.next([fork(1000, 100, 'evil')]);
      batches.next([{ ...base(2000, 200), type: 'exec', filename: '/bin/sh' } as KrsiEvent]);
      batches.next([{ ...base(3000, 300, 'evil'), type: 'exec', filename: '/bin/sh' } as KrsiEvent, { ...base(3001, 100), type: 'exit', code: 0 } as KrsiEvent]);
      stop();
      await running;
      const closed = order.indexOf('enforce.close');
      assert.ok(closed > 0, order.join(', '));
      assert.deepEqual(order.slice(closed + 1).filter((x) => /^(check|apply)/.test(x)), [], `nothing reaches the enforcer after it closed: ${order.join(', ')}`);
      assert.ok(order.includes('apply 300 true'), `the held exec's verdict applied: ${order.join(', ')}`);
      assert.ok(order.includes('check exit 100'), 'the held exit kept the books');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('without --record, live events are numbered from 1, as a recording numbers them', async () => {
    const { batches, live } = stubLive();
    const outs: Output[] = [];
    let stop!: () => void;
    const running = runLive({ rules: FORKS, live, stop: new Promise<void>((r) => (stop = r)), clock: () => 0, hashExe: false }, (o) => outs.push(o));
    batches.next([fork(1000, 5)]);
    stop();
    await running;
    assert.deepEqual(outs[0].kind === 'alert' && outs[0].events, [1]);
  });

  test('a source whose stop() resolves but that never completes: the run ends after the wait, it does not hang', async () => {
    const { live } = stubLive({ completes: false });
    let stop!: () => void;
    const running = runLive({ rules: FORKS, live, stop: new Promise<void>((r) => (stop = r)), clock: () => 0, hashExe: false, stopWaitMs: 200 }, () => {});
    stop();
    await assert.rejects(running, /dropped before its summary/);
  });
});
