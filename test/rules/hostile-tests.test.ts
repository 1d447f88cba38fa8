// Hostile rule test files (`krsi test`): a huge repeat count, prototype keys, deep nesting. Each is a located
// error, never a hang, an uncaught exception or a prototype.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RuleTestError, parseTestFile, runCase } from '../../engine/ruletest/index.ts';
import { MAX_CASE_EVENTS } from '../../engine/rules/limits.ts';
import { implant, issues, selfUnlink as unlink } from './ruletest-fixtures.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const expect = { alerts: [{ rule: 'self-deleting-executable', count: 1 }] };

/** 1-based line/column of the first occurrence of needle */
function at(text: string, needle: string): [number, number] {
  const before = text.slice(0, text.indexOf(needle)).split('\n');
  return [before.length, before[before.length - 1].length + 1];
}

test('a huge repeat.count is refused at the field (krsi test hung expanding it)', () => {
  const script = `
    import { RuleTestError, parseTestFile } from './engine/ruletest/index.ts';
    const ev = ${JSON.stringify(unlink)};
    const texts = [
      { processes: { implant: ${JSON.stringify(implant)} }, cases: [{ name: 'a', events: [{ ...ev, repeat: { count: 1e15, every: '1ms' } }], expect: { none: true } }] },
      { processes: { implant: ${JSON.stringify(implant)} }, cases: [{ name: 'b', events: Array.from({ length: 300 }, () => ({ ...ev, repeat: { count: 1000 } })), expect: { none: true } }] },
    ];
    for (const t of texts) {
      try {
        parseTestFile('t.json', JSON.stringify(t, null, 1));
        console.log('parsed');
      } catch (e) {
        if (!(e instanceof RuleTestError)) throw e;
        console.log(JSON.stringify(e.issues.map((i) => ({ pointer: i.pointer, message: i.message }))));
      }
    }`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.signal, null, `killed by ${r.signal} (timeout: the repeat was expanded)`);
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const [a, b] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(a.length, 1, JSON.stringify(a));
  assert.equal(a[0].pointer, '/cases/0/events/0/repeat/count');
  assert.match(a[0].message, new RegExp(`at most ${MAX_CASE_EVENTS} events`));
  // 300 x 1000 events: the one that crosses the limit is named
  assert.equal(b.length, 1, JSON.stringify(b));
  assert.equal(b[0].pointer, `/cases/0/events/${MAX_CASE_EVENTS / 1000}/repeat/count`);
});

test('"__proto__" / "constructor" keys in a test file are refused where they are not data', () => {
  const base = { processes: { implant }, only: ['self-deleting-executable'] };
  const cases: [string, string, string][] = [
    // the case's mode came from a prototype: it ran in enforce mode while the file showed none
    ['a case', JSON.stringify({ ...base, cases: [{ name: 'a', events: [unlink], expect, ['__proto__']: { mode: 'enforce' } }] }, null, 1), '/cases/0/__proto__'],
    ['the file', JSON.stringify({ ...base, ['__proto__']: { rules: '/etc' }, cases: [{ name: 'a', events: [unlink], expect }] }, null, 1), '/__proto__'],
    ['a repeat cycle', JSON.stringify({ ...base, cases: [{ name: 'a', events: [{ ...unlink, repeat: { count: 2, cycle: { ['__proto__']: [{ pid: 1 }] } } }], expect }] }, null, 1), '/cases/0/events/0/repeat/cycle/__proto__'],
    ['a process template name', JSON.stringify({ ...base, processes: { implant, constructor: implant }, cases: [{ name: 'a', events: [unlink], expect }] }, null, 1), '/processes/constructor'],
    ['an expectation', JSON.stringify({ ...base, cases: [{ name: 'a', events: [unlink], expect: { ...expect, ['__proto__']: { exact: true } } }] }, null, 1), '/cases/0/expect/__proto__'],
  ];
  for (const [where, text, pointer] of cases) {
    const got = issues(text);
    const i = got.find((x) => x.pointer === pointer);
    assert.ok(i, `${where}: ${JSON.stringify(got)}`);
    assert.match(i.message, /not allowed/, where);
    assert.deepEqual([i.line, i.column], at(text, `"${pointer.slice(pointer.lastIndexOf('/') + 1)}"`), where);
  }
});

test('an environment variable named __proto__ is data: an own key of the event, matched by rules', async () => {
  const text = JSON.stringify({
    rules: ['../../rules/suspicious-env.json'],
    processes: { implant },
    cases: [{
      name: 'preload',
      events: [{ ts: '1s', type: 'exec', process: 'implant', filename: '/bin/x', argv: ['x'], env: { ['__proto__']: 'x', LD_PRELOAD: '/tmp/x.so' } }],
      expect: { alerts: [{ rule: 'ld-preload-at-exec', count: 1 }] },
    }],
  });
  const tf = parseTestFile(fileURLToPath(new URL('t.json', import.meta.url)), text);
  const env = (tf.cases[0].events![0] as { env: Record<string, string> }).env;
  assert.equal(Object.getPrototypeOf(env), Object.prototype);
  assert.deepEqual(Object.keys(env), ['__proto__', 'LD_PRELOAD']);
  const r = await runCase(tf.cases[0]);
  assert.equal(r.ok, true, JSON.stringify(r.failures));
});

test('a test file nested 5000 deep says so at the place, not "invalid JSON"', () => {
  const text = `{"cases": [{"name": "a", "events": [], "expect": {"none": ${'['.repeat(5000)}${']'.repeat(5000)}}}]}`;
  const got = issues(text);
  assert.equal(got.length, 1, JSON.stringify(got));
  assert.match(got[0].message, /nested deeper than 64/);
  assert.doesNotMatch(got[0].message, /invalid JSON/);
  assert.equal(got[0].line, 1);
});

test('a megabyte-long unknown field name is reported with a cut message', () => {
  const big = 'k'.repeat(1_000_000);
  const got = issues(JSON.stringify({ cases: [{ name: 'a', events: [], expect: { none: true }, [big]: 1 }] }));
  assert.equal(got.length, 1, JSON.stringify(got).slice(0, 500));
  assert.ok(got[0].message.length <= 1001, `${got[0].message.length} characters`);
  assert.match(got[0].message, /^unknown field "kkk/);
});

test('krsi test and krsi check print control and bidi characters from events and files as escapes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-hostile-tests-'));
  try {
    const path = '/tmp/x\u001b[2J\nDENIED forged\u202e';
    const f = join(dir, 't.json');
    writeFileSync(f, JSON.stringify({
      rules: fileURLToPath(new URL('../../rules/', import.meta.url)), only: ['self-deleting-executable'],
      processes: { implant: { ...implant, comm: 'x\u001b]0;title\u0007' } },
      cases: [{ name: 'a \u001b[31mred', events: [{ ...unlink, path }], expect: { none: true } }],
    }));
    const rf = join(dir, 'r\u001b[2J.json');
    writeFileSync(rf, '{"rules": [{"id": "r", "description": "d", "tags": [], "severity": "low", "match": {"all": [{"fact": "type", "operator": "equal", "value": "x\u202e"}]}, "actions": [{"type": "alert"}]}]}');
    for (const args of [['test', '-v', f], ['check', '--snippet', rf]]) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 1, r.stderr);
      // eslint-disable-next-line no-control-regex
      assert.doesNotMatch(r.stdout, /[\u001b\u0007\u202e]/, args[0]);
      assert.match(r.stdout, /\\x1b/, args[0]);
      assert.ok(!r.stdout.split('\n').some((l) => l.startsWith('DENIED')), args[0]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
