import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { OutputSink, formatJson, formatText, formatTtl } from '../../cli/output/index.ts';
import type { AlertOut, DeniedOut, SummaryOut, VerdictOut } from '../../engine/types.ts';

const alert: AlertOut = {
  kind: 'alert',
  rule: 'self-delete',
  tags: ['T1070.004'],
  severity: 'high',
  pid: 42,
  ts: 3_500_000_000,
  events: [7, 9],
  message: 'x deleted its own executable',
  explain: ['step a', 'step b'],
};
const verdict: VerdictOut = {
  ...alert,
  kind: 'verdict',
  op: 'quarantine',
  subject: { kind: 'pid', pid: 42 },
  ttl_ns: 600e9,
  expires: 3_500_000_000 + 600e9,
  mode: 'monitor',
  applied: false,
  explain: undefined,
};
const denied: DeniedOut = { kind: 'denied', ts: 4e9, seq: 11, pid: 42, op: 'exec', verdict: 'self-delete:quarantine:pid:42', rule: 'self-delete', reason: 'TGID' };
const summary: SummaryOut = {
  kind: 'summary',
  events: 12,
  bad_lines: 1,
  alerts: 1,
  verdicts: 1,
  denied: 1,
  per_rule: { 'self-delete': { alerts: 1, verdicts: 1, denied: 1 } },
  seconds: 0.5,
  events_per_sec: 24,
};

describe('output formats', () => {
  test('JSON Lines: one object per line, as given', () => {
    for (const o of [alert, verdict, denied, summary]) {
      const line = formatJson(o);
      assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'));
      assert.deepEqual(JSON.parse(line), JSON.parse(JSON.stringify(o)));
    }
  });

  test('text: times relative to the first event, subject, ttl, mode, explanation', () => {
    const ctx = { t0: 1e9 };
    assert.equal(
      formatText(alert, ctx),
      'ALERT    high     self-delete  pid 42  +2.500000s  x deleted its own executable  [events 7,9]\n           - step a\n           - step b\n',
    );
    assert.match(formatText(verdict, ctx), /^VERDICT  high     self-delete  pid 42 {2}\+2\.500000s {2}deny quarantine for pid 42, ttl 10m, not applied \(monitor mode\)/);
    assert.match(formatText(denied, ctx), /DENIED .* exec of event 11 would be refused \(TGID\) by verdict self-delete:quarantine:pid:42/);
    const s = formatText(summary, ctx);
    assert.match(s, /^summary: 12 events, 1 bad lines skipped in 0\.500s \(24 events\/s\)/);
    assert.match(s, /self-delete {2}alerts 1 {2}verdicts 1 {2}denied 1/);
    assert.equal(formatTtl(0), 'no expiry');
    assert.equal(formatTtl(90e9), '90s');
    assert.equal(formatTtl(3600e9), '1h');
  });

  test('OutputSink writes everything, in order', async () => {
    const out = new PassThrough();
    const chunks: string[] = [];
    out.on('data', (c) => chunks.push(String(c)));
    const sink = new OutputSink('json', out);
    for (let i = 0; i < 3000; i++) sink.write({ ...denied, seq: i });
    sink.write(summary);
    await sink.drain();
    await sink.end();
    const lines = chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.equal(lines.length, 3001);
    assert.deepEqual(lines.slice(0, 3000).map((l) => l.seq), Array.from({ length: 3000 }, (_, i) => i));
    assert.equal(lines.at(-1).kind, 'summary');
  });
});
