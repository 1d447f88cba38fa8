// krsi run --metrics without the kernel: runLive over a stub signal source (and a stub enforcement
// session), the metrics server on a loopback port, scraped with fetch.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EMPTY, Subject } from 'rxjs';
import { mkdtempSync, rmSync, copyFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KrsiEvent } from '../../signals/events.ts';
import type { LiveSignals } from '../../signals/live.ts';
import type { EnforceSession } from '../../enforcers/index.ts';
import type { Output, Verdict } from '../../engine/types.ts';
import { KrsiMetrics, parseListen, serveMetrics } from '../../cli/metrics.ts';
import { loadRuleSources } from '../../engine/rules/load.ts';
import { runLive } from '../../cli/live-runs.ts';
import { sample } from '../helpers/prom.ts';
import { krsiSync } from '../helpers/krsi.ts';

const RULES = (sha: string) => JSON.stringify({
  lists: { bad: [sha] },
  rules: [
    {
      id: 'listed-binary', description: 'exec of a listed binary', tags: ['t'], severity: 'high', mode: 'enforce',
      match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'sha256', operator: 'inList', value: 'bad' }] },
      actions: [{ type: 'alert' }, { type: 'verdict', op: 'exec', subject: 'exe', ttl: 0 }],
    },
    {
      id: 'forks', description: 'three forks of one pid', tags: ['t'], severity: 'low', mode: 'monitor',
      match: { all: [{ fact: 'type', operator: 'equal', value: 'fork' }] },
      correlation: { count: { by: ['pid'], within: '10s', threshold: 3 } },
      actions: [{ type: 'alert' }],
    },
  ],
});

describe('metrics', () => {
  test('parseListen', () => {
    assert.deepEqual(parseListen('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseListen(':9464'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseListen('9464'), { host: '127.0.0.1', port: 9464 });
    assert.throws(() => parseListen('localhost'), /--metrics: 'localhost' is not HOST:PORT/);
    assert.throws(() => parseListen('1.2.3.4:99999'), /not HOST:PORT/);
  });

  test('a synthetic run scraped over HTTP: events, lost, per-rule counts, state sizes, hashes, verdict latency', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-metrics-'));
    const metrics = new KrsiMetrics();
    const server = await serveMetrics(metrics, '127.0.0.1:0');
    try {
      const bin = join(dir, 'listed');
      copyFileSync('/bin/true', bin);
      const { createHash } = await import('node:crypto');
      const { readFileSync } = await import('node:fs');
      const loaded = loadRuleSources([{ file: 'm.json', text: RULES(createHash('sha256').update(readFileSync(bin)).digest('hex')) }]);
      assert.ok(loaded.ok && loaded.set, JSON.stringify(loaded.issues));

      const before = await (await fetch(server.url)).text();
      assert.equal(sample(before, 'krsi_alerts_total', { rule: 'forks' }), undefined, 'nothing attached before the run');
      assert.ok(before.includes('process_cpu_user_seconds_total'), 'Node process metrics');

      const batches = new Subject<KrsiEvent[]>();
      const live: LiveSignals = {
        events$: EMPTY, batches$: batches, lost: () => 7, lostByKind: () => ({ exec: 4, mprotect: 3 }), unavailable: {},
        stats: () => ({ records: 123, events: 120, bad: 1, reordered: 2, errors: 0 }), stop: async () => batches.complete(),
      };
      const applied: string[] = [];
      const enforce = {
        enforcement: { check: () => undefined, apply: (v: Verdict) => (applied.push(v.rule), true), denied: () => undefined, sizes: () => ({}) },
        onDenied() {},
        latency: () => ({ apply: { count: 0, median_ns: 0, p99_ns: 0 }, event_to_map: { count: 0, median_ns: 0, p99_ns: 0 } }),
        close: async () => {},
      } as unknown as EnforceSession;
      let stop!: () => void;
      const stopped = new Promise<void>((r) => (stop = r));
      const outs: Output[] = [];
      const running = runLive({ rules: loaded.set, live, stop: stopped, enforce, metrics, clock: () => 0 }, (o) => outs.push(o));

      const st = statSync(bin);
      const base = { ppid: 1, uid: 0, comm: 'x', exe: { dev: st.dev, ino: st.ino, path: bin } };
      batches.next([
        { ...base, ts: 1000, type: 'exec', pid: 4_000_001, filename: bin },
        { ...base, ts: 1001, type: 'exec', pid: 4_000_002, filename: bin },
        { ...base, ts: 1002, type: 'exec', pid: 4_000_003, exe: { dev: 1, ino: 1, path: join(dir, 'gone') }, filename: 'gone' },
      ]);
      batches.next([1, 2, 3].map((i) => ({ ...base, ts: 2000 + i, type: 'fork' as const, pid: 50, child_pid: 60 + i })));
      // exec events wait for their hash (a round trip to the reader process): until all are through
      let text = '';
      for (let i = 0; i < 250 && sample(text, 'krsi_events_total', { type: 'fork' }) !== 3; i++) {
        text = await (await fetch(server.url)).text();
        await new Promise((r) => setTimeout(r, 20));
      }

      assert.equal(sample(text, 'krsi_events_total', { type: 'exec' }), 3);
      assert.equal(sample(text, 'krsi_events_total', { type: 'fork' }), 3);
      assert.equal(sample(text, 'krsi_events_lost_total', { kind: 'exec' }), 4);
      assert.equal(sample(text, 'krsi_events_lost_total', { kind: 'fork' }), 0, 'every kind from the start');
      assert.equal(sample(text, 'krsi_events_total', { type: 'unlink' }), 0, 'every type from the start');
      assert.equal(sample(text, 'krsi_ringbuf_records_total'), 123);
      assert.equal(sample(text, 'krsi_ringbuf_handler_errors_total'), 0);
      assert.equal(sample(text, 'krsi_decode_errors_total'), 1);
      assert.equal(sample(text, 'krsi_alerts_total', { rule: 'listed-binary' }), 2);
      assert.equal(sample(text, 'krsi_verdicts_total', { rule: 'listed-binary' }), 2);
      assert.equal(sample(text, 'krsi_alerts_total', { rule: 'forks' }), 1);
      assert.equal(sample(text, 'krsi_denied_total', { rule: 'forks' }), 0);
      assert.equal(sample(text, 'krsi_correlation_keys', { rule: 'forks' }), 1);
      assert.ok(sample(text, 'krsi_process_table_entries')! >= 3);
      assert.equal(sample(text, 'krsi_exe_hash_cache_misses_total'), 1);
      assert.equal(sample(text, 'krsi_exe_hash_cache_hits_total'), 1);
      assert.equal(sample(text, 'krsi_exe_hash_failures_total', { reason: 'gone' }), 1);
      assert.deepEqual(applied, ['listed-binary', 'listed-binary'], 'the enforcer still gets the verdicts');
      assert.equal(sample(text, 'krsi_verdict_apply_seconds_count'), 2);
      assert.equal(sample(text, 'krsi_verdict_event_to_map_seconds_count'), 2);

      const missing = await fetch(server.url.replace('/metrics', '/other'));
      assert.equal(missing.status, 404);
      stop();
      const s = await running;
      assert.equal(s.events, 6);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('krsi run --metrics with a bad address: usage error (exit 2) before anything is loaded', () => {
    const r = krsiSync(['run', '--metrics', 'nonsense']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /krsi run: --metrics: 'nonsense' is not HOST:PORT/);
  });

  test('a port in use is a clear error', async () => {
    const a = await serveMetrics(new KrsiMetrics({ defaultMetrics: false }), '127.0.0.1:0');
    try {
      const port = new URL(a.url).port;
      await assert.rejects(serveMetrics(new KrsiMetrics({ defaultMetrics: false }), `127.0.0.1:${port}`), /EADDRINUSE/);
    } finally {
      await a.close();
    }
  });
});
