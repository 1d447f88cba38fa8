// krsi check: every issue printed as file:line:col: error [rule] CODE: message, a summary, exit code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCheck } from '../../cli/commands/check.ts';

const RULE = (id: string, op: string) => `{ "rules": [ { "id": "${id}", "description": "d", "tags": [], "severity": "low",
  "match": { "all": [ { "fact": "comm", "operator": "${op}", "value": "x" } ] }, "actions": [ { "type": "alert" } ] } ] }`;

test('krsi check prints every error of every file, a summary, and exits 1; 0 when clean', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-check-'));
  try {
    writeFileSync(join(dir, 'a.json'), RULE('a', 'startWith'));
    writeFileSync(join(dir, 'b.json'), RULE('b', 'endWith'));
    const out: string[] = [];
    assert.equal(await runCheck({ rules: [dir] }, (s) => out.push(s)), 1);
    assert.equal(out.length, 3, out.join('\n'));
    assert.match(out[0], /a\.json:2:\d+: error \[a\] UNKNOWN_OPERATOR: unknown operator "startWith" \(did you mean "startsWith"\?\)$/);
    assert.match(out[1], /b\.json:2:\d+: error \[b\] UNKNOWN_OPERATOR: .*"endsWith"/);
    assert.match(out[2], /^2 error\(s\), 0 warning\(s\): nothing loaded/);

    const json: string[] = [];
    assert.equal(await runCheck({ rules: [join(dir, 'a.json')], format: 'json' }, (s) => json.push(s)), 1);
    assert.equal(json.length, 1);
    const issue = JSON.parse(json[0]);
    assert.equal(issue.code, 'UNKNOWN_OPERATOR');
    assert.equal(issue.pointer, '/rules/0/match/all/0/operator');
    assert.equal(issue.line, 2);

    const snip: string[] = [];
    await runCheck({ rules: [join(dir, 'a.json')], snippet: true }, (s) => snip.push(s));
    assert.equal(snip.length, 4);
    assert.match(snip[1], /^  2 \| .*"operator": "startWith"/);
    assert.equal(snip[2].indexOf('^'), snip[1].indexOf('"startWith"'));

    writeFileSync(join(dir, 'a.json'), RULE('a', 'startsWith'));
    writeFileSync(join(dir, 'b.json'), RULE('b', 'endsWith'));
    const ok: string[] = [];
    assert.equal(await runCheck({ rules: [dir] }, (s) => ok.push(s)), 0);
    assert.match(ok.join('\n'), /^0 error\(s\), 0 warning\(s\): 2 rule\(s\), 0 list\(s\) loaded/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('krsi check --snippet on a one-line file shows a window around each issue, not the whole line each time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-check-'));
  try {
    const items = Array(2000).fill('null').join(',');
    writeFileSync(join(dir, 'a.json'), `{"lists": {"l": [${items}]}, "rules": []}`);
    const out: string[] = [];
    assert.equal(await runCheck({ rules: [join(dir, 'a.json')], snippet: true }, (s) => out.push(s)), 1);
    assert.equal(out.filter((l) => l.includes('WRONG_TYPE')).length, 2000);
    assert.ok(out.every((l) => l.length < 300), `longest line: ${Math.max(...out.map((l) => l.length))}`);
    // the caret is still under the issue: the 1000th null
    const k = out.findIndex((l) => l.includes(`:1:${18 + 999 * 5}:`));
    assert.ok(k >= 0, 'the 1000th null is reported');
    const caret = out[k + 2].indexOf('^');
    assert.equal(out[k + 1].slice(caret, caret + 4), 'null');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
