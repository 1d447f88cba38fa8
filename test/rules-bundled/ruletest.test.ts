// engine/ruletest/ itself: located errors in test files, the expectation semantics (counts, none,
// exact), repeat expansion, and `krsi test` exit codes and diff output.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatCaseResult, parseTestFile, runCase } from '../../engine/ruletest/index.ts';
import { krsiSync } from '../helpers/krsi.ts';
import { implant, issues, selfUnlink } from '../rules/ruletest-fixtures.ts';


/** a test file's text: pretty-printed so errors have distinct lines */
function file(cases: unknown[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ only: ['self-deleting-executable'], processes: { implant }, ...extra, cases }, null, 2);
}

async function run(c: Record<string, unknown>) {
  const tf = parseTestFile('t.json', file([{ name: 'c', ...c }]));
  return runCase(tf.cases[0]);
}

describe('test file errors are located', () => {
  test('invalid JSON: line and column', () => {
    const [i] = issues('{\n  "cases": [\n    { "name": "x", }\n  ]\n}');
    assert.equal(i.line, 3);
    assert.ok(i.column > 1);
    assert.match(i.message, /invalid JSON/);
  });

  test('every problem is reported, each with its line and JSON pointer', () => {
    const text = file([
      { name: 'a', events: [{ ...selfUnlink, exe: { path: '/x', dev: 1, ino: 'seven' } }], expect: { none: true } },
      { name: 'b', evnets: [], expect: { none: true } },
      { name: 'c', events: [{ ...selfUnlink, process: 'nope' }], expect: { alerts: [{ rule: 'x', ttl: 'soon' }] } },
      { name: 'd', events: [{ ...selfUnlink, ts: '2s' }, { ...selfUnlink, ts: '1s' }], expect: { none: true } },
    ]);
    const got = issues(text);
    const lines = text.split('\n');
    const byPointer = new Map(got.map((i) => [i.pointer, i]));
    const ino = byPointer.get('/cases/0/events/0/exe/ino');
    assert.ok(ino, JSON.stringify(got, null, 1));
    assert.match(ino.message, /exe\.ino.*integer/);
    assert.match(lines[ino.line - 1], /"ino": "seven"/);
    assert.match(byPointer.get('/cases/1/evnets')!.message, /unknown field "evnets"/);
    assert.ok(byPointer.has('/cases/1'), 'the case without events is reported too');
    assert.match(byPointer.get('/cases/2/events/0/process')!.message, /no process template named "nope" \(defined: implant\)/);
    assert.ok(byPointer.has('/cases/2/expect/alerts/0/ttl'));
    assert.match(byPointer.get('/cases/3/events/1/ts')!.message, /time order/);
  });

  test('a bad line in a case\'s log fails the case with the log\'s file, line and field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-ruletest-'));
    try {
      const log = join(dir, 'x.jsonl');
      const good = { ts: 1, type: 'exit', pid: 5, ppid: 1, uid: 0, comm: 'a', exe: { path: '/a', dev: 1, ino: 2 }, code: 0 };
      writeFileSync(log, JSON.stringify(good) + '\n' + JSON.stringify({ ...good, ts: 2, pid: -1 }) + '\n');
      const r = await run({ log, expect: { none: true } });
      assert.equal(r.ok, false);
      assert.match(r.error!, /x\.jsonl:2: field pid/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a rule id that does not exist makes the case fail with the known ids', async () => {
    const r = await run({ only: ['no-such-rule'], events: [selfUnlink], expect: { none: true } });
    assert.equal(r.ok, false);
    assert.match(r.error!, /no rule with id "no-such-rule".*self-deleting-executable/);
  });
});

describe('expectations', () => {
  test('a met expectation passes; seq defaults to the event position', async () => {
    const r = await run({ events: [{ ...selfUnlink, ts: '0s', path: '/tmp/other', target: { dev: 38, ino: 1, nlink: 0 } }, selfUnlink], expect: { alerts: [{ rule: 'self-deleting-executable', pid: 4121, events: [2], count: 1 }] } });
    assert.ok(r.ok, formatCaseResult(r));
  });

  test('a missing alert fails and shows what there was', async () => {
    const r = await run({ events: [selfUnlink], expect: { alerts: [{ rule: 'self-deleting-executable', pid: 99 }] } });
    assert.equal(r.ok, false);
    assert.match(r.failures[0].expected, /alert rule=self-deleting-executable pid=99/);
    assert.match(r.failures[0].got.join('\n'), /alert self-deleting-executable pid=4121/);
    assert.match(formatCaseResult(r), /✗ c[\s\S]*expected: [\s\S]*got: /);
  });

  test('count is exact', async () => {
    const r = await run({ events: [selfUnlink, { ...selfUnlink, ts: '2s' }], expect: { alerts: [{ rule: 'self-deleting-executable', count: 1 }] } });
    assert.equal(r.ok, false);
    assert.match(r.failures[0].got[0], /2 matching/);
  });

  test('none fails on a matching output', async () => {
    const r = await run({ events: [selfUnlink], expect: { none: [{ kind: 'alert', pid: 4121 }] } });
    assert.equal(r.ok, false);
    assert.match(r.failures[0].expected, /^no alert pid=4121/);
  });

  test('exact fails on an output no expectation names', async () => {
    const r = await run({ only: ['self-deleting-executable', 'ld-preload-at-exec'], events: [
      { ts: '0s', type: 'exec', process: 'implant', filename: '/tmp/.x/kworkerd', env: { LD_PRELOAD: '/tmp/x.so' } },
      selfUnlink,
    ], expect: { alerts: [{ rule: 'self-deleting-executable' }], exact: true } });
    assert.equal(r.ok, false);
    assert.match(r.failures[0].got.join('\n'), /unexpected:[\s\S]*ld-preload-at-exec/);
  });

  test('repeat makes timed copies with cycled fields', () => {
    const tf = parseTestFile('t.json', file([{ name: 'r', events: [
      { ts: '1s', type: 'mprotect', process: 'implant', start: 0, len: 4096, prot: 3, repeat: { count: 4, every: '10ms', cycle: { prot: [3, 7] } } },
    ], expect: { none: true } }]));
    const evs = tf.cases[0].events!;
    assert.deepEqual(evs.map((e) => [e.seq, e.ts, (e as { prot: number }).prot]), [[1, 1e9, 3], [2, 1.01e9, 7], [3, 1.02e9, 3], [4, 1.03e9, 7]]);
  });
});

describe('krsi test', () => {
  test('exit 0 when every case passes, 1 with the diff when one fails, 1 for a bad file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-ruletest-'));
    try {
      const pass = join(dir, 'pass.json');
      const fail = join(dir, 'fail.json');
      const bad = join(dir, 'bad.json');
      writeFileSync(pass, file([{ name: 'fires', events: [selfUnlink], expect: { alerts: [{ rule: 'self-deleting-executable', count: 1 }] } }]));
      writeFileSync(fail, file([{ name: 'wrongly expects nothing', events: [selfUnlink], expect: { none: true } }]));
      writeFileSync(bad, '{"cases": [{"name": 1}]}');
      const ok = krsiSync(['test', pass]);
      assert.equal(ok.status, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /✓ fires[\s\S]*1 passed, 0 failed/);
      const ko = krsiSync(['test', pass, fail]);
      assert.equal(ko.status, 1);
      assert.match(ko.stdout, /✗ wrongly expects nothing\n.*expected: no output\n.*got: alert self-deleting-executable pid=4121/);
      const b = krsiSync(['test', bad]);
      assert.equal(b.status, 1);
      assert.match(b.stdout, /bad\.json:1:\d+: error \/cases\/0\/name: must be a non-empty string/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
