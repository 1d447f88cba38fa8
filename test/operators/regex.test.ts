// Rule regexes on attacker-controlled strings: linear time (RE2), refused at check when RE2 cannot express
// them, and the V8 fast path for the safe subset agreeing with RE2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RE2JS } from 're2js';
import { loadRuleSources } from '../../engine/rules/load.ts';
import { compileRegex, regexEngine, v8Safe, MAX_REGEX_LENGTH } from '../../engine/operators/regex.ts';
import { Gen, prng } from '../rules/differential-harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const ruleWith = (value: string, fact = 'filename') =>
  `{"rules": [{"id": "r", "description": "d", "tags": [], "severity": "low",\n  "match": {"all": [{"fact": "${fact}", "operator": "matches",\n    "value": ${JSON.stringify(value)}}]},\n  "actions": [{"type": "alert"}]}]}`;

/** runs a script in a child node (tsx) with a timeout: the old backtracking engine must not hang the suite */
function child(script: string, timeout = 30_000) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

test('catastrophic patterns on 100k attacker characters finish (RE2 linear time), through the real loader', () => {
  const patterns = ['(a+)+$', '(a|a)*$', '(a*)*b', '^(\\w+\\s?)*$', '(.*a){12}$', '(x+x+)+y'];
  const script = `
    import { loadRuleSources } from './engine/rules/load.ts';
    const patterns = ${JSON.stringify(patterns)};
    const input = 'a'.repeat(100000) + '!';
    for (const p of patterns) {
      const text = ${JSON.stringify(ruleWith('PLACEHOLDER'))}.replace('"PLACEHOLDER"', JSON.stringify(p));
      const r = loadRuleSources([{ file: 'r.json', text }]);
      if (!r.ok) throw new Error(p + ': ' + JSON.stringify(r.issues));
      const rule = r.set.rules[0];
      const t = performance.now();
      for (const f of ['filename']) rule.match({ type: 'exec', filename: input, argv: [input], env: { X: input } });
      console.log(p + ' ' + (performance.now() - t).toFixed(1) + ' ms');
    }`;
  const r = child(script);
  assert.equal(r.signal, null, `killed by ${r.signal} (timeout: the regex backtracked)\n${r.stdout}`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, patterns.length, r.stdout);
  console.log(r.stdout.trim());
});

test('a fact-to-fact pattern an event supplies runs in linear time too', () => {
  const script = `
    import { loadRuleSources } from './engine/rules/load.ts';
    const text = ${JSON.stringify(ruleWith('X'))}.replace('"X"', '{"fact": "comm"}');
    const r = loadRuleSources([{ file: 'r.json', text }]);
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    console.log(r.set.rules[0].match({ type: 'exec', comm: '(a+)+$', filename: 'a'.repeat(100000) + '!' }));
    console.log(r.set.rules[0].match({ type: 'exec', comm: '(a)\\\\1', filename: 'aa' }));`;
  const r = child(script);
  assert.equal(r.signal, null, `killed by ${r.signal} (timeout)`);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['false', 'false']);
});

test('krsi check refuses what RE2 cannot run in linear time, located at the value, naming RE2', () => {
  for (const p of ['(a)\\1', '(?=a)b', 'a(?!b)', '(?<=a)b', '(?<!a)b', '(?<n>a)\\k<n>', 'a'.repeat(MAX_REGEX_LENGTH + 1)]) {
    const text = ruleWith(p);
    const r = loadRuleSources([{ file: 'r.json', text }]);
    assert.equal(r.ok, false, p);
    const bad = r.issues.filter((i) => i.code === 'BAD_REGEX');
    assert.equal(bad.length, 1, `${p}: ${JSON.stringify(r.issues)}`);
    assert.equal(bad[0].pointer, '/rules/0/match/all/0/value');
    assert.deepEqual([bad[0].line, bad[0].column, bad[0].rule], [3, 14, 'r']);
    assert.match(bad[0].message, p.length > MAX_REGEX_LENGTH ? /longer than 4096/ : /RE2 syntax/);
  }
});

test('the dialect is RE2: inline flag groups, POSIX classes and Unicode classes work', () => {
  const cases: [string, string, boolean][] = [
    ['a(?i:b)c', 'xaBc', true],
    ['a(?i:b)c', 'xABc', false],
    ['^[[:digit:]]+$', '123', true],
    ['^\\pL+$', 'héllo', true],
    ['(?i)^bash$', 'BASH', true],
    ['\\Q.*\\E', 'a.*b', true],
    ['\\Q.*\\E', 'ab', false],
  ];
  for (const [p, s, want] of cases) {
    const r = loadRuleSources([{ file: 'r.json', text: ruleWith(p) }]);
    assert.equal(r.ok, true, `${p}: ${JSON.stringify(r.issues)}`);
    assert.equal(r.set!.rules[0].match({ type: 'exec', filename: s } as never), want, `${p} on ${s}`);
  }
});

test('the bundled patterns run on V8; repetition, (?i), ".", negated classes and long alternations run on RE2', () => {
  for (const p of ['(^|:)(/tmp|/var/tmp|/dev/shm|/run/shm)(/|:|$)', '^(nc|ncat|socat)$', '\\.so(\\.[0-9])?$', '[A-Z_][A-Z0-9_]']) assert.equal(regexEngine(compileRegex(p)), 'v8', p);
  assert.equal(regexEngine(compileRegex('x'.repeat(256))), 'v8');
  // over 256 paths, or over 256 atoms along all paths (what backtracking may try from each position): RE2
  const long = [`(${'a'.repeat(200)}|${'a'.repeat(199)}b)`, 'x'.repeat(257), '(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)'];
  for (const p of ['a+', 'a*', 'a{2}', '(?i)a', 'a.b', '[^a]', '[[:alpha:]]', '\\s', 'é', '[a-]', ...long]) {
    assert.equal(regexEngine(compileRegex(p)), 're2', p);
  }
});

/** random patterns in (and around) the V8 subset, random inputs: the chosen engine agrees with RE2 */
test('differential: wherever V8 runs a pattern it agrees with RE2 (4000 patterns x 8 inputs)', () => {
  const g = new Gen(prng(8));
  const ATOMS = ['a', 'b', 'A', '/', ':', '-', '_', '0', '\\.', '\\d', '\\w', '\\b', '\\-', '\\/', '\\n', '[a-c]', '[ab_]', '[0-9A-F]', '[\\d.]', '[\\w-]', '^', '$', 'é', '.', '[^a]', '\\s'];
  const atomOf = (d: number): string => {
    if (d < 3 && g.chance(0.25)) return `(${g.chance(0.3) ? '?:' : ''}${pattern(d + 1)})`;
    return g.pick(ATOMS);
  };
  const pattern = (d = 0): string => {
    const alts = Array.from({ length: 1 + g.int(3) }, () =>
      Array.from({ length: g.int(4) }, () => atomOf(d) + (g.chance(0.2) ? '?' : '')).join(''),
    );
    return alts.join('|');
  };
  const CHARS = ['a', 'b', 'A', 'B', '/', ':', '-', '_', '0', '9', '.', ' ', '\n', '\r', '\t', 'é', 'K', '\u212a', 'ſ', '😀', '\ud800', '\u2028', '\u00a0'];
  const input = () => Array.from({ length: g.int(8) }, () => g.pick(CHARS)).join('');
  let v8 = 0;
  for (let i = 0; i < 4000; i++) {
    const p = pattern();
    let re2: RE2JS;
    try {
      re2 = RE2JS.compile(p);
    } catch {
      continue;
    }
    const r = compileRegex(p);
    if (regexEngine(r) === 'v8') v8++;
    for (let k = 0; k < 8; k++) {
      const s = input();
      assert.equal(r.test(s), re2.test(s), `pattern ${JSON.stringify(p)} (${regexEngine(r)}) on ${JSON.stringify(s)}`);
    }
  }
  assert.ok(v8 > 1000, `only ${v8} patterns took the V8 path`);
  assert.equal(v8Safe('(a)'), true);
});
