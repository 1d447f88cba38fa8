// krsi run --mode monitor --metrics: the real CLI on the real kernel, scraped while it runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { needLiveBpf } from '../helpers/prereq.ts';
import { sample } from '../helpers/prom.ts';

const KRSI = fileURLToPath(new URL('../../bin/krsi.js', import.meta.url));

test('krsi run --mode monitor --metrics 127.0.0.1:0: /metrics counts live events while it runs', { skip: needLiveBpf() }, async () => {
  const child = spawn(process.execPath, [KRSI, 'run', '--mode', 'monitor', '--format', 'json', '--metrics', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout.resume();
  child.stderr.setEncoding('utf8');
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    // the URL is printed first; the signals are attached once "signals started" is logged
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no metrics URL / signals within 60 s: ${stderr}`)), 60_000);
      child.stderr.on('data', (d: string) => {
        stderr += d;
        const m = /metrics on (http:\S+)/.exec(stderr);
        if (m && stderr.includes('signals started')) clearTimeout(t), resolve(m[1]);
      });
      void exited.then((code) => reject(new Error(`krsi run exited ${code}: ${stderr}`)));
    });
    for (let i = 0; i < 5; i++) assert.equal(spawnSync('/bin/true').status, 0);
    let text = '';
    for (let i = 0; i < 50; i++) {
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      text = await res.text();
      if ((sample(text, 'krsi_events_total', { type: 'exec' }) ?? 0) >= 5) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(sample(text, 'krsi_events_total', { type: 'exec' })! >= 5, `exec events counted:\n${text.split('\n').filter((l) => l.startsWith('krsi_events')).join('\n')}`);
    assert.ok(sample(text, 'krsi_ringbuf_records_total')! >= 5);
    assert.equal(sample(text, 'krsi_ringbuf_handler_errors_total'), 0);
    assert.ok(sample(text, 'krsi_process_table_entries')! > 0);
    assert.notEqual(sample(text, 'krsi_alerts_total', { rule: 'known-vulnerable-binary' }), undefined, 'per-rule series for the bundled rules');
    // the bundled known-vulnerable-binary reads sha256 on exec: the hasher runs and /bin/true is cached
    assert.ok((sample(text, 'krsi_exe_hash_cache_hits_total') ?? 0) + (sample(text, 'krsi_exe_hash_cache_misses_total') ?? 0) >= 5, 'exec events hashed');
    assert.equal(sample(text, 'krsi_verdict_apply_seconds_count'), 0, 'monitor: no verdict applied');
    child.kill('SIGINT');
    assert.equal(await exited, 0, `clean exit on SIGINT: ${stderr}`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  }
});
