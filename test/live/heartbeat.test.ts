// krsi run's live heartbeat: event time follows the clock between events, so an absence fires when
// its window has passed although no later event arrives (a stub signal source, mocked timers).
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { EMPTY, Subject } from 'rxjs';
import type { KrsiEvent } from '../../signals/events.ts';
import type { LiveSignals } from '../../signals/live.ts';
import type { Output } from '../../engine/types.ts';

const RULES = JSON.stringify({
  rules: [{
    id: 'exec-without-exit', description: 'an exec not followed by the exit of that pid within 2s', tags: ['test'],
    severity: 'low', mode: 'monitor',
    match: { all: [{ fact: 'type', operator: 'in', value: ['exec', 'exit'] }] },
    correlation: { absent: {
      by: ['pid'], within: '2s',
      first: { match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }] } },
      then: { match: { all: [{ fact: 'type', operator: 'equal', value: 'exit' }] } },
    } },
    actions: [{ type: 'alert', message: '{pid} still running' }],
  }],
});

test('an absence fires from the heartbeat, without a later event', async () => {
  const { loadRuleSources } = await import('../../engine/rules/load.ts');
  const { runLive } = await import('../../cli/live-runs.ts');
  const loaded = loadRuleSources([{ file: 'hb.json', text: RULES }]);
  assert.ok(loaded.ok && loaded.set, JSON.stringify(loaded.issues));
  const batches = new Subject<KrsiEvent[]>();
  const live: LiveSignals = {
    events$: EMPTY, batches$: batches, lost: () => 0, lostByKind: () => ({}), unavailable: {},
    stats: () => ({ records: 0, events: 0, bad: 0, reordered: 0 }), stop: async () => batches.complete(),
  };
  let now = 1_000_000_000_000;
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  const outs: Output[] = [];
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    const running = runLive({ rules: loaded.set, live, stop: stopped, clock: () => now }, (o) => outs.push(o));
    const exe = { dev: 1, ino: 2, path: '/bin/sleep' };
    batches.next([{ ts: now, type: 'exec', pid: 42, ppid: 1, uid: 0, comm: 'sleep', exe, filename: '/bin/sleep' }]);
    now += 2_500_000_000; // 2.5 s later, within the lag: not yet
    mock.timers.tick(500);
    assert.deepEqual(outs.filter((o) => o.kind === 'alert'), [], 'the window (plus the heartbeat lag) has not passed');
    now += 1_000_000_000; // 3.5 s: past 2 s + 1 s lag
    mock.timers.tick(500);
    const alerts = outs.filter((o) => o.kind === 'alert');
    assert.equal(alerts.length, 1, 'fired by the heartbeat');
    assert.equal(alerts[0].kind === 'alert' && alerts[0].pid, 42);
    stop();
    const s = await running;
    assert.equal(s.events, 1);
  } finally {
    mock.timers.reset();
  }
});
