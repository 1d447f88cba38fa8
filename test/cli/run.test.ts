import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EMPTY, Subject } from 'rxjs';
import type { KrsiEvent } from '../../signals/events.ts';
import type { LiveSignals } from '../../signals/live.ts';
import type { EnforceSession } from '../../enforcers/index.ts';
import { runLive } from '../../cli/live-runs.ts';
import { krsiSync } from '../helpers/krsi.ts';
import { unenforced } from '../../engine/enforcement/enforcement.ts';
import { loadRuleSources } from '../../engine/rules/load.ts';
import { readEvents } from '../../engine/eventlog/index.ts';


const RULES = JSON.stringify({
  rules: [{
    id: 'forks', description: 'a fork', tags: ['test'], severity: 'low', mode: 'monitor',
    match: { all: [{ fact: 'type', operator: 'equal', value: 'fork' }] },
    actions: [{ type: 'alert', message: 'fork' }],
  }],
});

describe('krsi run', () => {
  test('when stopping the signals throws, the enforcer is still closed and the log still closed', async () => {
    const loaded = loadRuleSources([{ file: 'r.json', text: RULES }]);
    assert.ok(loaded.ok && loaded.set, JSON.stringify(loaded.issues));
    const dir = mkdtempSync(join(tmpdir(), 'krsi-run-stop-'));
    const batches = new Subject<KrsiEvent[]>();
    const live: LiveSignals = {
      events$: EMPTY, batches$: batches, lost: () => 0, lostByKind: () => ({}), unavailable: {},
      stats: () => ({ records: 0, events: 0, bad: 0, reordered: 0 }),
      stop: async () => { throw new Error('stop failed'); },
    };
    let closed = false;
    const enforce = {
      enforcement: unenforced(), onDenied() {},
      latency: () => ({ apply: { count: 0, median_ns: 0, p99_ns: 0 }, event_to_map: { count: 0, median_ns: 0, p99_ns: 0 } }),
      close: async () => { closed = true; },
    } as unknown as EnforceSession;
    try {
      const log = join(dir, 'log');
      let stop!: () => void;
      const running = runLive({ rules: loaded.set!, live, record: log, enforce, stop: new Promise<void>((r) => (stop = r)), clock: () => 0, hashExe: false }, () => {});
      batches.next([{ ts: 1000, type: 'fork', pid: 5, ppid: 1, uid: 0, comm: 'sh', exe: { dev: 1, ino: 2, path: '/bin/sh' }, child_pid: 6 }]);
      stop();
      await assert.rejects(running, /stop failed/);
      assert.ok(closed, 'the enforcer was closed');
      const got: KrsiEvent[] = [];
      for await (const b of readEvents(log)) got.push(...b);
      assert.equal(got.length, 1, 'the log was closed with its event');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('krsi run --record into something that is not a log fails before enforcement or signals are set up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-run-rec-'));
  try {
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    // --mode enforce would load and pin the LSM programs and exempt krsi first (or exit 3 without BPF LSM)
    const r = krsiSync(['run', '--mode', 'enforce', '--record', file, '--duration', '1']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`krsi run: --record: ${file}: exists and is not an lmdb event log`));
    assert.doesNotMatch(r.stderr, /BPF LSM|signals started|enforcement/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
