import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EMPTY, Subject } from 'rxjs';
import type { KrsiEvent } from '../../signals/events.ts';
import type { LiveSignals } from '../../signals/live.ts';
import { recordLive } from '../../cli/live-runs.ts';

const ev = (ts: number): KrsiEvent =>
  ({ ts, type: 'fork', pid: 10, ppid: 1, uid: 0, comm: 'sh', exe: { dev: 1, ino: 2, path: '/bin/sh' }, child_pid: 11 }) as KrsiEvent;

describe('krsi record', () => {
  test('a log write failure ends the recording with that error (it does not wait for stop)', { timeout: 10_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-rec-fail-'));
    const raw = new Subject<KrsiEvent[]>();
    let stopped = false;
    const live: LiveSignals = {
      events$: EMPTY, batches$: raw, lost: () => 0, lostByKind: () => ({}), unavailable: {},
      stats: () => ({ records: 0, events: 0, bad: 0, reordered: 0 }),
      stop: async () => { stopped = true; raw.complete(); },
    };
    try {
      // stop never comes: only the failure can end the recording
      const running = recordLive({ log: join(dir, 'log'), live, hashExe: false, stop: new Promise(() => {}) });
      raw.next([ev(200)]);
      raw.next([ev(100)]); // before the log's last ts: append throws
      await assert.rejects(running, /before the log's last ts/);
      assert.ok(stopped, 'the signals were stopped');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
