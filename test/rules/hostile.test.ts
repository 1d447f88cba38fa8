// Hostile rule files (issue 8's fuzz findings): deep nesting, huge arrays, prototype keys, durations too large to
// represent, an empty correlation. Each is a located error, never an uncaught exception, a stall or a prototype.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRuleSources, formatIssue, type RuleIssue } from '../../engine/rules/load.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LEAF = '{"fact": "comm", "operator": "equal", "value": "x"}';
const rule = (o: { match?: string; extra?: string; actions?: string } = {}) =>
  `{"rules": [{"id": "r", "description": "d", "tags": [], "severity": "low",\n` +
  `  "match": ${o.match ?? `{"all": [${LEAF}]}`},\n` +
  `  "actions": ${o.actions ?? '[{"type": "alert"}]'}${o.extra ?? ''}}]}`;
const load = (text: string) => loadRuleSources([{ file: 'r.json', text }]);

function one(issues: RuleIssue[], code: string): RuleIssue {
  const xs = issues.filter((i) => i.code === code);
  assert.equal(xs.length, 1, `expected one ${code}: ${issues.map(formatIssue).join('\n')}`);
  return xs[0];
}

/** 1-based line/column of a character offset */
function at(text: string, pos: number): [number, number] {
  const before = text.slice(0, pos).split('\n');
  return [before.length, before[before.length - 1].length + 1];
}

test('1500 nested "not": TOO_DEEP at the bracket past the limit, with the rule id (was an uncaught RangeError)', () => {
  const text = rule({ match: `{"all": [${'{"not": '.repeat(1500)}${LEAF}${'}'.repeat(1500)}]}` });
  const r = load(text);
  assert.equal(r.ok, false);
  const i = one(r.issues, 'TOO_DEEP');
  // depth 1 is the file's object: rules[ rule{ match{ all[ → 5, then the 60th "not" object is the 65th level
  const pos = text.split('{"not": ', 60).join('{"not": ').length;
  assert.deepEqual([i.line, i.column, i.rule], [...at(text, pos), 'r']);
  assert.match(i.pointer, /^\/rules\/0\/match\/all\/0(\/not){59}$/);
  assert.match(i.message, /64/);
});

test('valid JSON nested 5000 deep is TOO_DEEP, not "invalid JSON"', () => {
  const text = rule({ extra: `, "x": ${'['.repeat(5000)}${']'.repeat(5000)}` });
  const r = load(text);
  assert.equal(r.issues.filter((i) => i.code === 'PARSE_ERROR').length, 0, r.issues.map(formatIssue).join('\n'));
  const i = one(r.issues, 'TOO_DEEP');
  assert.equal(i.pointer, '/rules/0/x' + '/0'.repeat(61)); // the file, rules, a rule, then x's 62nd array is the 65th level
  // a document over a limit is not validated further (its other errors come once it is within limits)
  assert.equal(r.issues.length, 1);
});

test('"correlation": {} is TOO_FEW, located (was an uncaught TypeError in the validator)', () => {
  const text = rule({ extra: ', "correlation": {}' });
  const r = load(text);
  assert.equal(r.ok, false);
  const i = one(r.issues, 'TOO_FEW');
  assert.equal(i.pointer, '/rules/0/correlation');
  assert.deepEqual([i.line, i.column], at(text, text.indexOf('{}')));
});

test('"__proto__" where it is not data is RESERVED_KEY: it no longer turns a rule into an enforcing one unseen', () => {
  const verdict = '[{"type": "verdict", "op": "exec", "subject": "exe", "ttl": "1m"}]';
  const text = rule({ actions: verdict, extra: ',\n  "__proto__": {"mode": "enforce"}' });
  const r = load(text);
  assert.equal(r.ok, false, 'a rule with a __proto__ key loaded');
  const i = one(r.issues, 'RESERVED_KEY');
  assert.deepEqual([i.line, i.column, i.rule, i.pointer], [...at(text, text.indexOf('"__proto__"')), 'r', '/rules/0/__proto__']);
  for (const [where, t] of [
    ['top level', `{"__proto__": {"lists": {}}, ${rule().slice(1)}`],
    ['constructor in a rule', rule({ extra: ', "constructor": {"mode": "enforce"}' })],
    ['prototype in a correlation', rule({ extra: ', "correlation": {"count": {"by": ["pid"], "within": "1s", "threshold": 2, "prototype": {}}}' })],
    ['a list name', `{"lists": {"__proto__": ["a"]}, ${rule({ match: '{"all": [{"fact": "comm", "operator": "inList", "value": "__proto__"}]}' }).slice(1)}`],
    ['a list named constructor', `{"lists": {"constructor": ["a"]}, ${rule().slice(1)}`],
    ['an escaped __proto__', rule({ extra: ', "\\u005f_proto__": {"mode": "enforce"}' })],
    ['a step', rule({ extra: ', "correlation": {"sequence": {"by": ["pid"], "within": "1s", "steps": [{"match": {"all": []}, "__proto__": {"id": "x"}}, {"match": {"all": []}}]}}' })],
  ]) {
    const r2 = load(t);
    assert.equal(r2.ok, false, where);
    one(r2.issues, 'RESERVED_KEY');
  }
});

test('where such keys are data (values, list values) they stay own data and never become prototypes', () => {
  const text = `{"lists": {"names": ["__proto__", "constructor", "prototype"]}, ${rule({
    match: `{"all": [{"fact": "comm", "operator": "inList", "value": "names"}, {"not": {"fact": "exe", "operator": "equal", "value": {"__proto__": {"polluted": 1}}}}]}`,
  }).slice(1)}`;
  const r = load(text);
  assert.equal(r.ok, true, r.issues.map(formatIssue).join('\n'));
  const m = r.set!.rules[0];
  const value = (m.source.match as any).all[1].not.value;
  assert.equal(Object.getPrototypeOf(value), Object.prototype);
  assert.ok(Object.hasOwn(value, '__proto__'));
  assert.equal((value as { polluted?: number }).polluted, undefined);
  assert.equal(({} as { polluted?: number }).polluted, undefined);
  for (const comm of ['__proto__', 'constructor', 'prototype']) assert.equal(m.match({ type: 'exec', comm } as never), true, comm);
  for (const comm of ['toString', 'hasOwnProperty', 'x']) assert.equal(m.match({ type: 'exec', comm } as never), false, comm);
});

test('durations too large to represent are BAD_DURATION at the field (were INTERNAL at 1:1)', () => {
  for (const [field, extra, ptr] of [
    ['within (number)', ', "correlation": {"count": {"by": ["pid"], "within": 99999999999999999999, "threshold": 2}}', '/rules/0/correlation/count/within'],
    ['within (string)', ', "correlation": {"count": {"by": ["pid"], "within": "99999999999999d", "threshold": 2}}', '/rules/0/correlation/count/within'],
    ['within (200 days)', ', "correlation": {"sequence": {"by": ["pid"], "within": "200d", "steps": [{"match": {"all": []}}, {"match": {"all": []}}]}}', '/rules/0/correlation/sequence/within'],
  ] as const) {
    const r = load(rule({ extra }));
    assert.equal(r.issues.filter((i) => i.code === 'INTERNAL').length, 0, `${field}: ${r.issues.map(formatIssue).join('\n')}`);
    const i = one(r.issues, 'BAD_DURATION');
    assert.equal(i.pointer, ptr, field);
    assert.notEqual(i.line, 1, field);
    assert.match(i.message, /too large/, field);
  }
  const ttl = load(rule({ actions: '[{"type": "verdict", "op": "exec", "subject": "exe", "ttl": "9999999999999h"}]' }));
  assert.equal(one(ttl.issues, 'BAD_DURATION').pointer, '/rules/0/actions/0/ttl');
});

test('kernel.mprotect_limit above the 32-bit kernel counter is OUT_OF_RANGE (it was silently truncated)', () => {
  const r = load(rule({ extra: ', "mode": "enforce", "kernel": {"mprotect_limit": 4294967301}' }));
  assert.equal(one(r.issues, 'OUT_OF_RANGE').pointer, '/rules/0/kernel/mprotect_limit');
});

test('100k-element arrays: check finishes, limits are located (was a quadratic stall); big lists still load', () => {
  // in a child process with a timeout, so the old quadratic validator cannot hang the suite
  const script = `
    import { loadRuleSources } from './engine/rules/load.ts';
    const rule = (match) => '{"rules": [{"id": "r", "description": "d", "tags": [], "severity": "low", "match": ' + match + ', "actions": [{"type": "alert"}]}]}';
    const n = 100000;
    const cases = {
      nullConds: rule('{"all": [' + Array(n).fill('null').join(',') + ']}'),
      badConds: rule('{"any": [' + Array(n).fill('{"fact": "comm", "operator": "equalx", "value": 1}').join(',') + ']}'),
      badRules: '{"rules": [' + Array(n).fill('{"id": "r"}').join(',') + ']}',
      bigList: '{"lists": {"l": [' + Array(n).fill(0).map((_, i) => '"' + i.toString(16) + '"').join(',') + ']}, ' + rule('{"all": [{"fact": "sha256", "operator": "inList", "value": "l"}]}').slice(1),
      badList: '{"lists": {"l": [' + Array(n).fill('null').join(',') + ']}, ' + rule('{"all": [{"fact": "sha256", "operator": "inList", "value": "l"}]}').slice(1),
      bigIn: rule('{"all": [{"fact": "comm", "operator": "in", "value": [' + Array(n).fill('"x"').join(',') + ']}]}'),
    };
    for (const [name, text] of Object.entries(cases)) {
      const t = performance.now();
      const r = loadRuleSources([{ file: 'r.json', text }]);
      const first = r.issues.find((i) => i.severity === 'error');
      console.log(JSON.stringify({ name, ok: r.ok, issues: r.issues.length, first: first && { code: first.code, pointer: first.pointer, line: first.line, column: first.column }, ms: Math.round(performance.now() - t) }));
    }`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.signal, null, `killed by ${r.signal} (timeout: a quadratic stall)\n${r.stdout}`);
  assert.equal(r.status, 0, r.stderr);
  const res: Record<string, any> = Object.fromEntries(r.stdout.trim().split('\n').map((l) => JSON.parse(l)).map((x) => [x.name, x]));
  console.log(Object.values(res).map((x) => `${x.name}: ${x.ms} ms, ${x.issues} issues`).join('; '));
  for (const k of ['nullConds', 'badConds']) {
    assert.equal(res[k].ok, false);
    const key = k === 'nullConds' ? 'all' : 'any';
    const column = '{"rules": [{"id": "r", "description": "d", "tags": [], "severity": "low", "match": {"all": '.length + 1;
    assert.deepEqual(res[k].first, { code: 'TOO_MANY', pointer: `/rules/0/match/${key}`, line: 1, column }, k);
  }
  assert.equal(res.badRules.ok, false);
  assert.equal(res.badRules.issues >= 100000, true);
  assert.equal(res.bigList.ok, true, JSON.stringify(res.bigList));
  assert.equal(res.bigIn.ok, true, JSON.stringify(res.bigIn));
  assert.equal(res.badList.ok, false);
  assert.equal(res.badList.issues >= 100000, true);
});

test('krsi check (the real CLI) prints each limit as file:line:column, rule id and code, and exits 1', () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-hostile-'));
  try {
    const deep = join(dir, 'deep.json');
    writeFileSync(deep, rule({ match: `{"all": [${'{"not": '.repeat(1500)}${LEAF}${'}'.repeat(1500)}]}` }));
    const proto = join(dir, 'proto.json');
    writeFileSync(proto, rule({ extra: ',\n  "__proto__": {"mode": "enforce"}' }).replace('"id": "r"', '"id": "p"'));
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), 'check', deep, proto], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /deep\.json:2:\d+: error \[r\] TOO_DEEP: nested deeper than 64 arrays and objects/);
    assert.match(r.stdout, /proto\.json:4:3: error \[p\] RESERVED_KEY: key "__proto__" is not allowed here/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('megabyte names: messages quote at most a cut of them (they held the whole name) and no suggestion is searched', () => {
  const big = 'x'.repeat(1_000_000);
  const text = rule({
    match: `{"all": [{"fact": "type", "operator": "equal", "value": "${big}"}, {"fact": "${big}", "operator": "${big}", "value": 1}]}`,
    extra: `, "${big}": 1, "correlation": {"count": {"by": ["pid"], "within": "${big}s", "threshold": 2}}`,
  });
  const r = load(text);
  const codes = r.issues.map((i) => i.code).sort();
  for (const c of ['UNKNOWN_EVENT_TYPE', 'UNKNOWN_FACT', 'UNKNOWN_OPERATOR', 'UNKNOWN_FIELD', 'BAD_DURATION']) assert.ok(codes.includes(c), `${c}: ${codes}`);
  for (const i of r.issues) assert.ok(i.message.length <= 1001, `${i.code}: ${i.message.length} characters`);
  assert.match(one(r.issues, 'UNKNOWN_FIELD').message, /…\(1000002 characters\)$/);
});

test('a FIFO, a device or a file over 64 MiB among the rules is READ_ERROR, not a hang or an exhausted heap', () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-hostile-'));
  try {
    writeFileSync(join(dir, 'a.json'), rule());
    spawnSync('mkfifo', [join(dir, 'fifo.json')]);
    spawnSync('truncate', ['-s', '65M', join(dir, 'huge.json')]);
    // in a child with a timeout: reading the FIFO blocked for ever, /dev/zero filled the heap
    const script = `
      import { loadRuleSourcesFromPaths } from './engine/rules/load.ts';
      import { loadTestFile, RuleTestError } from './engine/ruletest/index.ts';
      const r = await loadRuleSourcesFromPaths([${JSON.stringify(dir)}, '/dev/zero']);
      console.log(JSON.stringify(r.issues.map((i) => [i.file, i.code, i.message])));
      for (const f of ['/dev/zero', ${JSON.stringify(join(dir, 'fifo.json'))}]) {
        try { loadTestFile(f); } catch (e) { if (!(e instanceof RuleTestError)) throw e; console.log(JSON.stringify(e.issues[0].message)); }
      }`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.signal, null, `killed by ${r.signal} (timeout: blocked reading)`);
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    const [issues, zero, fifo] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const byFile = Object.fromEntries((issues as string[][]).map(([f, code, msg]) => [f.slice(f.lastIndexOf('/') + 1), `${code} ${msg}`]));
    assert.match(byFile['fifo.json'], /^READ_ERROR .*not a regular file/);
    assert.match(byFile['huge.json'], /^READ_ERROR .*larger than 64 MiB/);
    assert.match(byFile['zero'], /^READ_ERROR .*not a regular file/);
    assert.match(zero, /not a regular file/);
    assert.match(fifo, /not a regular file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('1000 x 1000 failing conditions in one rule: TOO_MANY for the rule (each array was within its limit; 29 s)', () => {
  const inner = `{"any": [${Array(1000).fill('null').join(',')}]}`;
  const text = rule({ match: `{"all": [${Array(1000).fill(inner).join(',')}]}` });
  const r = load(text);
  const i = one(r.issues, 'TOO_MANY');
  assert.deepEqual([i.pointer, i.rule, i.line, i.column], ['/rules/0', 'r', 1, text.indexOf('{"id"') + 1]);
  assert.match(i.message, /at most 10000 items in all the arrays of one rule/);
  assert.equal(r.issues.length, 1);
  // just within the limit, the rule is validated as usual: one WRONG_TYPE per null
  const ok = load(rule({ match: `{"all": [${Array(98).fill(`{"any": [${Array(98).fill('null').join(',')}]}`).join(',')}]}` }));
  assert.equal(ok.issues.filter((x) => x.code === 'WRONG_TYPE').length, 98 * 98);
});
