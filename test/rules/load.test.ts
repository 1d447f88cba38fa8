// The staged loader: rule text inline; assertions on the compiled result and on exact issue locations.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRuleDirs, loadRuleSources, RuleLoadError, formatIssue, type RuleIssue } from '../../engine/rules/load.ts';
import type { Facts } from '../../engine/rules/types.ts';

/** 1-based line/column of the n-th occurrence of needle */
function posOf(text: string, needle: string, nth = 0): { line: number; column: number } {
  let at = -1;
  for (let i = 0; i <= nth; i++) {
    at = text.indexOf(needle, at + 1);
    assert.ok(at >= 0, `${needle} not found`);
  }
  const before = text.slice(0, at).split('\n');
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

function only(issues: RuleIssue[], code: string): RuleIssue {
  const xs = issues.filter((i) => i.code === code);
  assert.equal(xs.length, 1, `expected one ${code}, got: ${issues.map(formatIssue).join('\n')}`);
  return xs[0];
}

const ev = (o: Record<string, unknown>) => ({ ts: 1, pid: 100, ppid: 1, uid: 0, comm: 'x', exe: { path: '/bin/x', dev: 1, ino: 2 }, ...o }) as unknown as Facts;

const GOOD = `{
  "lists": { "bad_hashes": ["aa", "bb"], "mods": ["ext4"] },
  "rules": [
    {
      "id": "preload",
      "description": "exec with LD_PRELOAD",
      "tags": ["T1574.006"],
      "severity": "high",
      "match": { "all": [
        { "fact": "type", "operator": "equal", "value": "exec" },
        { "fact": "env", "path": "$.LD_PRELOAD", "operator": "exists", "value": true }
      ] },
      "actions": [ { "type": "alert" } ]
    },
    {
      "id": "wx-storm",
      "description": "many W+X mprotects",
      "tags": ["T1055"],
      "severity": "medium",
      "mode": "enforce",
      "match": { "all": [
        { "fact": "type", "operator": "equal", "value": "mprotect" },
        { "fact": "prot", "operator": "bitsSet", "value": 6 }
      ] },
      "correlation": { "count": { "by": ["pid"], "within": "10s", "threshold": 3,
                                  "until": { "match": { "all": [ { "fact": "type", "operator": "equal", "value": "exit" } ] } } } },
      "actions": [ { "type": "alert" }, { "type": "verdict", "op": "mprotect_exec", "subject": "pid", "ttl": "2m" } ]
    },
    {
      "id": "chain",
      "description": "preload then W+X",
      "tags": [],
      "severity": "critical",
      "match": { "all": [] },
      "correlation": { "sequence": { "by": ["pid"], "within": "10s", "steps": [
        { "id": "pre", "match": { "all": [ { "fact": "type", "operator": "equal", "value": "exec" } ] } },
        { "match": { "any": [ { "fact": "type", "operator": "equal", "value": "mprotect" } ] } }
      ] } },
      "actions": [ { "type": "verdict", "op": "quarantine", "subject": "pid", "ttl": 0, "from": "pre" } ]
    },
    {
      "id": "hidden",
      "description": "module hides",
      "tags": ["T1014"],
      "severity": "critical",
      "match": { "all": [] },
      "correlation": { "absent": { "within": "1m",
        "first": { "match": { "all": [ { "fact": "type", "operator": "equal", "value": "module_load" } ] } },
        "then": { "match": { "all": [ { "fact": "type", "operator": "equal", "value": "module_list" } ] },
                  "lacks": { "field": "modules", "from": "name" } } } },
      "actions": [ { "type": "verdict", "op": "module_load", "subject": "module", "ttl": "1h" } ]
    },
    {
      "id": "vuln",
      "description": "known bad binary",
      "tags": [],
      "severity": "high",
      "enabled": false,
      "match": { "all": [ { "fact": "sha256", "operator": "inList", "value": "bad_hashes" } ] },
      "kernel": { "module_allowlist": "mods" },
      "actions": [ { "type": "alert" } ]
    }
  ]
}`;

describe('loader: compiled result', () => {
  const r = loadRuleSources([{ file: 'good.json', text: GOOD }]);

  test('loads with no issues; disabled rules are checked but not loaded', () => {
    assert.deepEqual(r.issues.map(formatIssue), []);
    assert.equal(r.ok, true);
    assert.deepEqual(r.set!.rules.map((x) => x.id), ['preload', 'wx-storm', 'chain', 'hidden']);
  });

  test('lists are Sets; rules keep their source, location, defaults and ns durations', () => {
    const set = r.set!;
    assert.ok(set.lists.bad_hashes instanceof Set);
    assert.deepEqual([...set.lists.bad_hashes], ['aa', 'bb']);
    const [preload, storm, chain] = set.rules;
    assert.equal(preload.mode, 'monitor');
    assert.equal(storm.mode, 'enforce');
    assert.deepEqual(storm.ttls, [0, 120e9]);
    assert.deepEqual(preload.loc, { file: 'good.json', line: posOf(GOOD, '{\n      "id": "preload"').line, column: 5, pointer: '/rules/0' });
    assert.equal(chain.source.id, 'chain');
  });

  test('event types are inferred from type conditions, and byType indexes them', () => {
    const set = r.set!;
    const [preload, storm, chain, hidden] = set.rules;
    assert.deepEqual(preload.types, ['exec']);
    assert.deepEqual(storm.types, ['exit', 'mprotect']);
    assert.deepEqual(chain.types, ['exec', 'mprotect']);
    assert.deepEqual(hidden.types, ['module_load', 'module_list']);
    assert.deepEqual(set.byType.get('exec')!.map((x) => x.id), ['preload', 'chain']);
    assert.deepEqual(set.byType.get('exit')!.map((x) => x.id), ['wx-storm']);
    assert.deepEqual(set.byType.get('fork'), []);
  });

  test('predicates, keys, steps and lacks work on events', () => {
    const [preload, storm, chain, hidden] = r.set!.rules;
    assert.equal(preload.match(ev({ type: 'exec', env: { LD_PRELOAD: '/tmp/x.so' } })), true);
    assert.equal(preload.match(ev({ type: 'exec', env: {} })), false);
    assert.equal(preload.match(ev({ type: 'exec' })), false);
    const c = storm.correlation!;
    assert.equal(c.kind, 'count');
    if (c.kind !== 'count') return;
    assert.equal(c.within, 10e9);
    assert.equal(c.threshold, 3);
    assert.equal(c.key(ev({ type: 'mprotect', prot: 7 })), '100');
    assert.equal(c.until!.match(ev({ type: 'exit', code: 0 })), true);
    assert.deepEqual(c.until!.types, ['exit']);
    const s = chain.correlation!;
    assert.equal(s.kind, 'sequence');
    if (s.kind !== 'sequence') return;
    assert.deepEqual(s.steps.map((x) => x.id), ['pre', 'step2']);
    assert.deepEqual(s.steps.map((x) => x.types), [['exec'], ['mprotect']]);
    assert.equal(s.steps[1].match(ev({ type: 'mprotect', prot: 6 })), true);
    const a = hidden.correlation!;
    assert.equal(a.kind, 'absent');
    if (a.kind !== 'absent') return;
    assert.equal(a.key, undefined);
    assert.deepEqual([a.first.id, a.then.id], ['first', 'then']);
    assert.equal(a.then.lacks!.from(ev({ type: 'module_load', name: 'rk' })), 'rk');
    assert.deepEqual(a.then.lacks!.field(ev({ type: 'module_list', modules: ['ext4'] })), ['ext4']);
  });
});

describe('loader: located, collected issues', () => {
  const BAD = `{
  "lists": { "hashes": ["aa"] },
  "rules": [
    {
      "id": "one",
      "description": "d",
      "tags": [],
      "severity": "hihg",
      "match": { "all": [
        { "fact": "type", "operator": "equal", "value": "exce" },
        { "fact": "comm", "operator": "startWith", "value": "x" },
        { "fact": "sha256", "operator": "inList", "value": "hashse" },
        { "fact": "comm", "operator": "matches", "value": "(" },
        { "fact": "exe", "path": "$.ino", "operator": "equal", "value": { "fact": "tagret", "path": "$.ino" } },
        { "fact": "exe", "path": "exe.ino", "operator": "equal", "value": 1 },
        { "fact": "prot", "operator": "bitsSet", "value": "6" }
      ] },
      "correlation": { "sequence": { "by": ["pid"], "within": "10x", "steps": [
        { "id": "a", "match": { "all": [] } },
        { "id": "a", "match": { "all": [] } }
      ] } },
      "actions": [ { "type": "verdict", "op": "exec", "subject": "pid", "ttl": "1h", "from": "zz" } ]
    },
    {
      "id": "two",
      "description": "d",
      "tags": [],
      "severity": "low",
      "match": { "all": [ { "fact": "type", "operator": "equal", "value": "exec" } ] },
      "correlation": { "count": { "by": ["pid"], "within": "1s", "threshold": 0 } },
      "actions": [ { "type": "verdict", "op": "module_load", "subject": "module", "ttl": "1m" } ],
      "extra": 1
    }
  ]
}`;
  const r = loadRuleSources([{ file: 'bad.json', text: BAD }]);

  test('nothing is loaded', () => {
    assert.equal(r.ok, false);
    assert.equal(r.set, undefined);
  });

  test('every error is reported, with exact line, column, pointer and rule id', () => {
    const at = (code: string, needle: string, nth = 0) => {
      const i = only(r.issues, code);
      assert.deepEqual({ line: i.line, column: i.column }, posOf(BAD, needle, nth), `${code}: ${formatIssue(i)}`);
      assert.equal(i.file, 'bad.json');
      return i;
    };
    const sev = at('BAD_VALUE', '"hihg"');
    assert.equal(sev.pointer, '/rules/0/severity');
    assert.equal(sev.rule, 'one');
    const ty = at('UNKNOWN_EVENT_TYPE', '"exce"');
    assert.equal(ty.pointer, '/rules/0/match/all/0/value');
    assert.match(ty.message, /did you mean "exec"/);
    const op = at('UNKNOWN_OPERATOR', '"startWith"');
    assert.equal(op.pointer, '/rules/0/match/all/1/operator');
    assert.match(op.message, /"startsWith"/);
    assert.equal(at('UNKNOWN_LIST', '"hashse"').pointer, '/rules/0/match/all/2/value');
    assert.equal(at('BAD_REGEX', '"("').pointer, '/rules/0/match/all/3/value');
    assert.equal(at('UNKNOWN_FACT', '"tagret"').pointer, '/rules/0/match/all/4/value/fact');
    assert.equal(at('BAD_PATH', '"exe.ino"').pointer, '/rules/0/match/all/5/path');
    assert.equal(at('BAD_OPERATOR_VALUE', '"6"').pointer, '/rules/0/match/all/6/value');
    assert.equal(at('BAD_DURATION', '"10x"').pointer, '/rules/0/correlation/sequence/within');
    assert.equal(at('DUPLICATE_STEP', '"a"', 1).pointer, '/rules/0/correlation/sequence/steps/1/id');
    assert.equal(at('SUBJECT_MISMATCH', '"pid", "ttl"').pointer, '/rules/0/actions/0/subject');
    assert.equal(at('UNKNOWN_STEP', '"zz"').pointer, '/rules/0/actions/0/from');
    const th = at('BAD_THRESHOLD', '0 }');
    assert.equal(th.rule, 'two');
    const un = at('SUBJECT_UNAVAILABLE', '"module", "ttl"');
    assert.equal(un.pointer, '/rules/1/actions/0/subject');
    const extra = at('UNKNOWN_FIELD', '"extra"');
    assert.equal(extra.pointer, '/rules/1/extra');
    assert.equal(extra.rule, 'two');
    assert.equal(r.issues.filter((i) => i.severity === 'error').length, 15, r.issues.map(formatIssue).join('\n'));
  });

  test('issues are sorted by position and formatted file:line:col: error [rule] CODE: message', () => {
    const lines = r.issues.map((i) => i.line);
    assert.deepEqual(lines, [...lines].sort((a, b) => a - b));
    const f = formatIssue(r.issues.find((i) => i.code === 'UNKNOWN_OPERATOR')!);
    const p = posOf(BAD, '"startWith"');
    assert.equal(f, `bad.json:${p.line}:${p.column}: error [one] UNKNOWN_OPERATOR: unknown operator "startWith" (did you mean "startsWith"?)`);
  });
});

describe('loader: several files', () => {
  const A = `{
  "lists": { "paths": ["/tmp/x"] },
  "rules": [ { "id": "dup", "description": "d", "tags": [], "severity": "low",
               "match": { "all": [ { "fact": "filename", "operator": "inList", "value": "paths" } ] },
               "actions": [ { "type": "alert" } ] } ]
}`;
  const B = `{
  "lists": { "paths": ["/tmp/y"] },
  "rules": [ { "id": "dup", "description": "d", "tags": [], "severity": "low",
               "match": { "all": [ { "fact": "pid", "operator": "lessThan", "value": "x" } ] },
               "actions": [ { "type": "alert" } ] } ]
}`;

  test('errors in two files at once: duplicate list and rule across files, and each file its own', () => {
    const r = loadRuleSources([{ file: 'a.json', text: A }, { file: 'b.json', text: B }]);
    assert.equal(r.ok, false);
    const dl = only(r.issues, 'DUPLICATE_LIST');
    assert.deepEqual([dl.file, dl.line, dl.column, dl.pointer], ['b.json', 2, 14, '/lists/paths']);
    assert.match(dl.message, /already defined at a\.json:2:14/);
    const dr = only(r.issues, 'DUPLICATE_RULE');
    assert.deepEqual([dr.file, dr.line, dr.pointer, dr.rule], ['b.json', 3, '/rules/0/id', 'dup']);
    assert.match(dr.message, /a\.json:3:/);
    const bv = only(r.issues, 'BAD_OPERATOR_VALUE');
    assert.equal(bv.file, 'b.json');
  });

  test('a JSON syntax error is located and the other files are still checked', () => {
    const broken = '{\n  "rules": [\n    { "id": "x", }\n  ]\n}';
    const r = loadRuleSources([{ file: 'broken.json', text: broken }, { file: 'b.json', text: B }]);
    const pe = only(r.issues, 'PARSE_ERROR');
    assert.deepEqual([pe.file, pe.line, pe.column], ['broken.json', 3, 18]);
    only(r.issues, 'BAD_OPERATOR_VALUE');
    assert.equal(r.ok, false);
  });

  test('a good file loads alone; together with a bad one nothing loads', () => {
    assert.equal(loadRuleSources([{ file: 'a.json', text: A }]).ok, true);
    assert.equal(loadRuleSources([{ file: 'a.json', text: A }, { file: 'b.json', text: B }]).set, undefined);
  });

  test('warnings do not stop loading', () => {
    const w = `{ "lists": { "unused": [1] }, "rules": [ { "id": "e", "description": "d", "tags": [], "severity": "low", "mode": "enforce",
      "match": { "all": [] }, "actions": [ { "type": "alert" } ] } ] }`;
    const r = loadRuleSources([{ file: 'w.json', text: w }]);
    assert.equal(r.ok, true);
    assert.deepEqual(r.issues.map((i) => [i.severity, i.code]).sort(), [['warning', 'ENFORCE_WITHOUT_VERDICT'], ['warning', 'UNUSED_LIST']]);
  });
});

describe('loadRuleDirs', () => {
  test('reads *.json from directories (skipping schema.json) and throws RuleLoadError with every issue', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-rules-'));
    try {
      writeFileSync(join(dir, 'schema.json'), '{ not json');
      writeFileSync(join(dir, 'ok.json'), '{ "rules": [] }');
      const set = await loadRuleDirs([dir]);
      assert.equal(set.rules.length, 0);
      writeFileSync(join(dir, 'z.json'), '{ "rules": [ { "id": "Bad" } ] }');
      await assert.rejects(loadRuleDirs([dir]), (e: unknown) => {
        assert.ok(e instanceof RuleLoadError);
        assert.ok(e.issues.length >= 2);
        assert.ok(e.issues.every((i) => i.file === join(dir, 'z.json')));
        assert.match(e.message, /z\.json:1:\d+: error \[Bad\]/);
        return true;
      });
      await assert.rejects(loadRuleDirs([join(dir, 'missing.json')]), (e: unknown) => e instanceof RuleLoadError && e.issues[0].code === 'READ_ERROR');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('loader: warnings', () => {
  test('a fact the matched event types never carry is a warning at the fact', () => {
    const text = `{ "rules": [ { "id": "w", "description": "d", "tags": [], "severity": "low",
      "match": { "all": [ { "fact": "type", "operator": "equal", "value": "exec" },
                          { "fact": "prot", "operator": "bitsSet", "value": 4 } ] },
      "actions": [ { "type": "alert" } ] } ] }`;
    const r = loadRuleSources([{ file: 'w.json', text }]);
    assert.equal(r.ok, true);
    const w = only(r.issues, 'FACT_NOT_ON_TYPE');
    assert.equal(w.severity, 'warning');
    assert.equal(w.pointer, '/rules/0/match/all/1/fact');
    assert.deepEqual({ line: w.line, column: w.column }, posOf(text, '"prot"'));
    assert.match(w.message, /"prot" exists only on mprotect\/mmap events, but this condition only matches exec events/);
  });
});

describe('loader: duplicate keys', () => {
  test('a key repeated in one object is an error at the repeat (JSON would keep only the last)', () => {
    const text = `{ "rules": [ { "id": "d", "description": "d", "tags": ["a,b", "c\\"}"], "severity": "low",
      "match": { "all": [] },
      "match": { "any": [ { "fact": "pid", "operator": "equal", "value": 1 } ] },
      "actions": [ { "type": "alert" } ] } ] }`;
    const r = loadRuleSources([{ file: 'k.json', text }]);
    assert.equal(r.ok, false);
    const d = only(r.issues, 'DUPLICATE_KEY');
    assert.deepEqual([d.line, d.column, d.pointer, d.rule], [3, 7, '/rules/0/match', 'd']);
    assert.equal(r.issues.length, 1, r.issues.map(formatIssue).join('\n'));
  });
});

describe('loader: paths and fields against the facts\' shapes', () => {
  test('a path or key field that cannot exist is an error with a suggestion', () => {
    const text = `{ "rules": [ { "id": "p", "description": "d", "tags": [], "severity": "low",
      "match": { "all": [
        { "fact": "exe", "path": "$.inode", "operator": "equal", "value": 1 },
        { "fact": "pid", "path": "$.x", "operator": "equal", "value": 1 },
        { "fact": "proc", "path": "$.ancestors.comm", "operator": "equal", "value": "sh" },
        { "fact": "proc", "path": "$.ancestors[0].comm", "operator": "equal", "value": { "fact": "exe", "path": "$.path.length" } },
        { "fact": "env", "path": "$.ANYTHING", "operator": "exists", "value": true }
      ] },
      "correlation": { "count": { "by": ["exe.ino", "proc.exe.dev", "exe.devv", "pidd"], "within": "1s", "threshold": 2 } },
      "actions": [ { "type": "alert" } ] } ] }`;
    const r = loadRuleSources([{ file: 'p.json', text }]);
    const paths = r.issues.filter((i) => i.code === 'BAD_PATH');
    assert.deepEqual(paths.map((i) => i.pointer), ['/rules/0/match/all/0/path', '/rules/0/match/all/1/path', '/rules/0/match/all/2/path']);
    assert.match(paths[0].message, /exe has no field "inode" .*did you mean "ino"/);
    assert.match(paths[1].message, /pid is not an object/);
    assert.match(paths[2].message, /proc\.ancestors is an array/);
    const fields = r.issues.filter((i) => i.code === 'BAD_FIELD');
    assert.deepEqual(fields.map((i) => i.pointer), ['/rules/0/correlation/count/by/2', '/rules/0/correlation/count/by/3']);
    assert.match(fields[0].message, /did you mean "dev"/);
    assert.match(fields[1].message, /no fact named "pidd" \(did you mean "pid"\?\)/);
    assert.equal(r.issues.length, 5, r.issues.map(formatIssue).join('\n'));
  });
});

describe('loader: message placeholders', () => {
  test('placeholders that can never resolve are warnings; facts, steps and firing values are fine', () => {
    const text = `{ "rules": [ { "id": "m", "description": "d", "tags": [], "severity": "low", "match": { "all": [] },
      "correlation": { "sequence": { "by": ["pid"], "within": "1s", "steps": [
        { "id": "pre", "match": { "all": [ { "fact": "type", "operator": "equal", "value": "exec" } ] } },
        { "match": { "all": [ { "fact": "type", "operator": "equal", "value": "mprotect" } ] } } ] } },
      "actions": [ { "type": "alert", "message": "{comm} {exe.path} {pre.filename} {key} {count} {rule} {env.LD_PRELOAD} {proc.ancestors.0.comm} {exe.inode} {commm}" } ] } ] }`;
    const r = loadRuleSources([{ file: 'm.json', text }]);
    assert.equal(r.ok, true);
    const w = r.issues.filter((i) => i.code === 'UNKNOWN_PLACEHOLDER');
    assert.equal(w.length, 2, r.issues.map(formatIssue).join('\n'));
    assert.match(w[0].message, /\{exe\.inode\}.*did you mean "ino"/);
    assert.match(w[1].message, /\{commm\}.*did you mean "comm"/);
    assert.equal(w[0].pointer, '/rules/0/actions/0/message');
  });
});

test('absent: lacks.field must be an array field', () => {
  const text = `{ "rules": [ { "id": "l", "description": "d", "tags": [], "severity": "low", "match": { "all": [] },
    "correlation": { "absent": { "within": "1s",
      "first": { "match": { "all": [ { "fact": "type", "operator": "equal", "value": "module_load" } ] } },
      "then": { "match": { "all": [ { "fact": "type", "operator": "equal", "value": "module_list" } ] }, "lacks": { "field": "name", "from": "name" } } } },
    "actions": [ { "type": "alert" } ] } ] }`;
  const r = loadRuleSources([{ file: 'l.json', text }]);
  const i = only(r.issues, 'BAD_FIELD');
  assert.equal(i.pointer, '/rules/0/correlation/absent/then/lacks/field');
  assert.deepEqual({ line: i.line, column: i.column }, posOf(text, '"name", "from"'));
});

test('a UTF-8 byte order mark is accepted and columns stay right', () => {
  const text = '\ufeff{ "rules": [ { "id": "X" } ] }';
  const r = loadRuleSources([{ file: 'bom.json', text }]);
  const i = r.issues.find((x) => x.code === 'BAD_FORMAT')!;
  assert.deepEqual([i.line, i.column, i.pointer], [1, posOf(text, '"X"').column, '/rules/0/id']);
});

test('a match or step whose type conditions exclude every type is a warning', () => {
  const text = `{ "rules": [ { "id": "n", "description": "d", "tags": [], "severity": "low",
    "match": { "all": [ { "fact": "type", "operator": "equal", "value": "exec" } ] },
    "correlation": { "sequence": { "by": ["pid"], "within": "1s", "steps": [
      { "match": { "all": [ { "fact": "type", "operator": "equal", "value": "exec" } ] } },
      { "match": { "all": [ { "fact": "type", "operator": "equal", "value": "mprotect" } ] } } ] } },
    "actions": [ { "type": "alert" } ] },
    { "id": "n2", "description": "d", "tags": [], "severity": "low",
    "match": { "all": [ { "fact": "type", "operator": "equal", "value": "exec" }, { "fact": "type", "operator": "equal", "value": "fork" } ] },
    "actions": [ { "type": "alert" } ] } ] }`;
  const r = loadRuleSources([{ file: 'n.json', text }]);
  assert.equal(r.ok, true);
  const w = r.issues.filter((i) => i.code === 'NEVER_MATCHES');
  assert.deepEqual(w.map((i) => [i.pointer, i.rule]), [['/rules/0/correlation/sequence/steps/1/match', 'n'], ['/rules/1/match', 'n2']]);
});
