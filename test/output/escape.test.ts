// Text output shows event-derived control characters as escapes: an exe path with ESC[2J must not clear
// the terminal, one with "\nDENIED ..." must not forge an output line. A real file with such a name,
// its exec event replayed from a JSON Lines log through the CLI; JSON output stays exact and one line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatText } from '../../cli/output/index.ts';
import { visible } from '../../lib/visible.ts';
import type { AlertOut, DeniedOut, VerdictOut } from '../../engine/types.ts';

const KRSI = fileURLToPath(new URL('../../bin/krsi.js', import.meta.url));
/** what a terminal acts on: C0 but \n at line ends, DEL, C1, separators, bidi controls */
// eslint-disable-next-line no-control-regex
const ACTIVE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const HOSTILE = 'evil\u001b[2J\nDENIED            forged  pid 1  +0.000000s  exec\r\t\u0007\u007f\u009b31m\u2028\u2029\u202etxt.exe\u2066';

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'krsi-escape-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('visible()', () => {
  test('every active character becomes a visible escape; printable text and other Unicode stay', () => {
    assert.equal(visible('/usr/bin/ls'), '/usr/bin/ls');
    assert.equal(visible('héllo 日本 😀'), 'héllo 日本 😀');
    assert.equal(visible('a\u001b[2Jb\nc'), 'a\\x1b[2Jb\\nc');
    assert.equal(visible('\u0000\u007f\u009b\u2028\u202e'), '\\x00\\x7f\\x9b\\u{2028}\\u{202e}');
    for (let c = 0; c < 0x3000; c++) {
      const s = String.fromCharCode(c);
      if (ACTIVE.test(s) || s === '\n') assert.doesNotMatch(visible(s), /[\u0000-\u001f\u007f-\u009f]|[\u2028\u2029\u202a-\u202e\u2066-\u2069]/, `U+${c.toString(16)}`);
    }
  });
});

describe('formatText: every event-derived string', () => {
  test('alert message and explain lines, verdict subject, denied reason', () => {
    const alert: AlertOut = { kind: 'alert', rule: 'r', tags: [], severity: 'high', pid: 1, ts: 1, events: [1], message: HOSTILE, explain: [HOSTILE] };
    const verdict: VerdictOut = { ...alert, kind: 'verdict', op: 'module_load', subject: { kind: 'module', name: HOSTILE }, ttl_ns: 0, expires: 0, mode: 'monitor', applied: false, explain: [HOSTILE] };
    const denied: DeniedOut = { kind: 'denied', ts: 1, seq: 1, pid: 1, op: 'exec', verdict: HOSTILE, rule: HOSTILE, reason: HOSTILE as DeniedOut['reason'] };
    for (const o of [alert, verdict, denied]) {
      const text = formatText(o, { t0: 0 });
      const lines = text.split('\n').slice(0, -1);
      assert.equal(lines.length, 1 + (o.kind === 'denied' ? 0 : 1), `one line plus the explain line: ${JSON.stringify(text)}`);
      for (const l of lines) assert.doesNotMatch(l, ACTIVE, JSON.stringify(l));
      assert.ok(text.includes('evil\\x1b[2J\\nDENIED'), text);
    }
  });
});

describe('krsi replay: a real file named with control characters', () => {
  test('text output escapes them (no ESC, no forged line); JSON output keeps them exact, one object per line', () => {
    const exe = join(dir, HOSTILE.replace(/\u0000/g, ''));
    copyFileSync('/bin/true', exe);
    const st = statSync(exe);
    const preload = join(dir, 'lib\u001b]0;pwned\u0007\u009b2J.so');
    writeFileSync(preload, '');
    const ev = {
      ts: 5e9, type: 'exec', pid: 4242, ppid: 1, uid: 0, comm: 'evil\u001b[2J', exe: { path: exe, dev: st.dev, ino: st.ino },
      filename: exe, argv: [exe], env: { LD_PRELOAD: preload },
    };
    const log = join(dir, 'hostile.jsonl');
    writeFileSync(log, JSON.stringify(ev) + '\n');

    const text = spawnSync(process.execPath, [KRSI, 'replay', log, '--rule', 'ld-preload-at-exec'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(text.status, 0, text.stderr);
    const lines = text.stdout.split('\n');
    assert.equal(lines.filter((l) => l.startsWith('ALERT')).length, 1, text.stdout);
    assert.equal(lines.filter((l) => /^\s*DENIED/.test(l)).length, 0, `no forged DENIED line:\n${text.stdout}`);
    for (const l of lines) assert.doesNotMatch(l, ACTIVE, `raw control character in ${JSON.stringify(l)}`);
    const alert = lines.find((l) => l.startsWith('ALERT'))!;
    assert.ok(alert.includes('evil\\x1b[2J\\nDENIED'), alert);
    assert.ok(alert.includes('\\x9b2J.so'), alert);
    assert.ok(alert.includes('\\u{202e}txt.exe'), alert);

    const json = spawnSync(process.execPath, [KRSI, 'replay', log, '--rule', 'ld-preload-at-exec', '--format', 'json'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(json.status, 0, json.stderr);
    const objs = json.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(objs.map((o) => o.kind), ['alert', 'summary']);
    assert.equal(objs[0].message, `${exe} executed with LD_PRELOAD=${preload}`, 'JSON: the exact strings');
    assert.doesNotMatch(json.stdout, /[\u0000-\u0009\u000b-\u001f]/, 'JSON: no raw C0 control');
  });

  test('a skipped bad line quoted on stderr (replay, log info) shows its C1 and bidi characters as escapes', () => {
    const log = join(dir, 'bad.jsonl');
    writeFileSync(log, JSON.stringify({ ts: 1, type: 'exec\u009b2J\u202e\u2028x', pid: 1 }) + '\n');
    for (const args of [['replay', log, '--skip-bad'], ['log', 'info', log, '--skip-bad']]) {
      const r = spawnSync(process.execPath, [KRSI, ...args], { encoding: 'utf8', timeout: 60_000 });
      const skipped = r.stderr.split('\n').filter((l) => l.startsWith('skipped'));
      assert.equal(skipped.length, 1, `${args[0]}: ${r.stderr}`);
      assert.doesNotMatch(skipped[0], ACTIVE, JSON.stringify(skipped[0]));
      assert.ok(skipped[0].includes('exec\\x9b2J\\u{202e}\\u{2028}x'), skipped[0]);
    }
  });
});
