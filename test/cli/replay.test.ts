import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importLog } from '../../engine/eventlog/index.ts';

const KRSI = fileURLToPath(new URL('../../bin/krsi.js', import.meta.url));
let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'krsi-replay-cli-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

function krsi(...args: string[]) {
  const r = spawnSync(process.execPath, [KRSI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const T0 = 5_000_000_000;
const sh = { path: '/usr/bin/bash', dev: 2049, ino: 1001 };
const dropper = { path: '/tmp/.x/dropper', dev: 40, ino: 777 };
const ssh = { path: '/usr/bin/ssh', dev: 2049, ino: 1002 };
/** a shell forks a dropper that deletes its own executable, and an LD_PRELOAD ssh that maps W+X */
const EVENTS = [
  { ts: T0, type: 'fork', pid: 100, ppid: 1, uid: 0, comm: 'bash', exe: sh, child_pid: 200 },
  { ts: T0 + 1e6, type: 'exec', pid: 200, ppid: 100, uid: 0, comm: 'dropper', exe: dropper, filename: dropper.path, argv: ['dropper'] },
  { ts: T0 + 2e6, type: 'unlink', pid: 200, ppid: 100, uid: 0, comm: 'dropper', exe: dropper, path: dropper.path, target: { dev: 40, ino: 777, nlink: 0 } },
  { ts: T0 + 3e6, type: 'exit', pid: 200, ppid: 100, uid: 0, comm: 'dropper', exe: dropper, code: 0 },
  { ts: T0 + 4e6, type: 'fork', pid: 100, ppid: 1, uid: 0, comm: 'bash', exe: sh, child_pid: 300 },
  { ts: T0 + 5e6, type: 'exec', pid: 300, ppid: 100, uid: 1000, comm: 'ssh', exe: ssh, filename: ssh.path, env: { LD_PRELOAD: '/tmp/.l/hook.so' } },
  { ts: T0 + 6e6, type: 'mprotect', pid: 300, ppid: 100, uid: 1000, comm: 'ssh', exe: ssh, start: 0x7f0000000000, len: 4096, prot: 7 },
  { ts: T0 + 7e6, type: 'mprotect', pid: 300, ppid: 100, uid: 1000, comm: 'ssh', exe: ssh, start: 0x7f0000001000, len: 4096, prot: 7 },
  { ts: T0 + 8e6, type: 'exit', pid: 300, ppid: 100, uid: 1000, comm: 'ssh', exe: ssh, code: 0 },
];
const jsonl = (evs: object[]) => evs.map((e) => JSON.stringify(e)).join('\n') + '\n';

function parse(stdout: string): Record<string, any>[] {
  const lines = stdout.split('\n').filter(Boolean);
  return lines.map((l, i) => {
    try {
      return JSON.parse(l);
    } catch {
      assert.fail(`stdout line ${i + 1} is not JSON: ${l}`);
    }
  });
}

describe('krsi replay (CLI)', () => {
  test('--format json prints JSON Lines: alerts, verdicts, denials, the summary last', () => {
    const log = join(dir, 'small.jsonl');
    writeFileSync(log, jsonl(EVENTS));
    const r = krsi('replay', log, '--format', 'json', '--mode', 'enforce');
    assert.equal(r.code, 0, r.stderr);
    const out = parse(r.stdout);
    for (const o of out) assert.ok(['alert', 'verdict', 'denied', 'summary'].includes(o.kind), JSON.stringify(o));
    const summary = out.at(-1)!;
    assert.equal(summary.kind, 'summary');
    assert.equal(out.filter((o) => o.kind === 'summary').length, 1);
    assert.equal(summary.events, EVENTS.length);
    assert.equal(summary.bad_lines, 0);
    assert.ok(summary.events_per_sec > 0);
    // the self-deleting dropper: an alert tagged T1070.004 naming the unlink (line 3 = seq 3)
    const selfDelete = out.find((o) => o.kind === 'alert' && o.tags.includes('T1070.004'));
    assert.ok(selfDelete, `no T1070.004 alert in\n${r.stdout}`);
    assert.equal(selfDelete.pid, 200);
    assert.ok(selfDelete.events.includes(3));
    // the LD_PRELOAD + W+X chain quarantines pid 300 (enforce mode: applied)
    const quarantine = out.find((o) => o.kind === 'verdict' && o.op === 'quarantine');
    assert.ok(quarantine, `no quarantine verdict in\n${r.stdout}`);
    assert.deepEqual(quarantine.subject, { kind: 'pid', pid: 300 });
    assert.equal(quarantine.applied, true);
    // per-rule counts add up
    const per = Object.values(summary.per_rule) as { alerts: number; verdicts: number; denied: number }[];
    assert.equal(per.reduce((a, c) => a + c.alerts, 0), summary.alerts);
    assert.equal(out.filter((o) => o.kind === 'alert').length, summary.alerts);
    assert.equal(out.filter((o) => o.kind === 'verdict').length, summary.verdicts);
    assert.equal(out.filter((o) => o.kind === 'denied').length, summary.denied);
  });

  test('an lmdb log replays exactly like the JSON Lines it was imported from', async () => {
    const log = join(dir, 'small.jsonl');
    writeFileSync(log, jsonl(EVENTS));
    const db = join(dir, 'small.lmdb');
    await importLog(log, db);
    const strip = (out: Record<string, any>[]) => out.map((o) => (o.kind === 'summary' ? { ...o, seconds: 0, events_per_sec: 0 } : o));
    const a = strip(parse(krsi('replay', log, '--format', 'json', '--mode', 'enforce').stdout));
    const b = strip(parse(krsi('replay', db, '--format', 'json', '--mode', 'enforce').stdout));
    assert.ok(a.length > 1);
    assert.deepEqual(b, a);
  });

  test('--rule and --until narrow the replay', () => {
    const log = join(dir, 'small.jsonl');
    writeFileSync(log, jsonl(EVENTS));
    const all = parse(krsi('replay', log, '--format', 'json').stdout);
    const id = all.find((o) => o.kind === 'alert' && o.tags.includes('T1070.004'))!.rule as string;
    const one = parse(krsi('replay', log, '--format', 'json', '--rule', id).stdout);
    assert.deepEqual(Object.keys(one.at(-1)!.per_rule), [id]);
    assert.ok(one.every((o) => o.kind === 'summary' || o.rule === id));
    const early = parse(krsi('replay', log, '--format', 'json', '--until', '2ms').stdout);
    assert.equal(early.at(-1)!.events, 2);
    assert.equal(early.filter((o) => o.kind === 'alert' && o.rule === id).length, 0);
    const late = parse(krsi('replay', log, '--format', 'json', '--since', String(T0 + 4e6)).stdout);
    assert.equal(late.at(-1)!.events, 5);
  });

  test('a bad line: exit 1 with file:line: field; --skip-bad counts it', () => {
    const log = join(dir, 'bad.jsonl');
    const bad = { ...EVENTS[2], exe: { ...dropper, ino: 'x' } };
    writeFileSync(log, jsonl([...EVENTS.slice(0, 2), bad, ...EVENTS.slice(3)]));
    const r = krsi('replay', log, '--format', 'json');
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${log.replace(/[.]/g, '\\.')}:3: field exe\\.ino: expected an integer`));
    const s = krsi('replay', log, '--format', 'json', '--skip-bad');
    assert.equal(s.code, 0, s.stderr);
    const summary = parse(s.stdout).at(-1)!;
    assert.equal(summary.bad_lines, 1);
    assert.equal(summary.events, EVENTS.length - 1);
  });

  test('rule errors: every one printed, located, exit 1, nothing replayed', () => {
    const rules = join(dir, 'rules');
    mkdirSync(rules, { recursive: true });
    const rule = (id: string, operator: string) => ({
      id,
      description: 'd',
      tags: ['x'],
      severity: 'high',
      match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'comm', operator, value: 'x' }] },
      actions: [{ type: 'alert' }],
    });
    writeFileSync(join(rules, 'bad.json'), JSON.stringify({ rules: [rule('one', 'nope'), rule('two', 'alsoNope')] }, null, 2));
    const log = join(dir, 'small.jsonl');
    writeFileSync(log, jsonl(EVENTS));
    const r = krsi('replay', log, '--rules', rules, '--format', 'json');
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    const located = r.stderr.split('\n').filter((l) => /bad\.json:\d+:\d+: error/.test(l));
    assert.equal(located.length, 2, r.stderr);
    assert.match(located[0], /one/);
    assert.match(located[1], /two/);
    assert.match(r.stderr, /2 rule errors; nothing replayed/);
  });

  test('usage errors exit 2; text format is for people; the bundled sample replays', () => {
    assert.equal(krsi('replay', '--format', 'xml').code, 2);
    assert.equal(krsi('replay', '--since', 'yesterday').code, 2);
    assert.equal(krsi('replay', '--rule', 'no-such-rule').code, 2);
    const log = join(dir, 'small.jsonl');
    writeFileSync(log, jsonl(EVENTS));
    const t = krsi('replay', log);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /^ALERT /m);
    assert.match(t.stdout, /^summary: 9 events/m);
    const sample = krsi('replay', '--format', 'json');
    assert.equal(sample.code, 0, sample.stderr);
    const out = parse(sample.stdout);
    assert.ok(out.at(-1)!.events > 0);
    assert.ok(out.some((o) => o.kind === 'alert'));
  });
});
