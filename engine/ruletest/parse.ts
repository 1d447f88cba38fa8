// Test files in: read (bounded, JSON with positions), validated with every problem located, into
// TestFiles; and which files a list of paths names.
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { KrsiEvent } from '../../signals/events.ts';
import type { Mode } from '../types.ts';
import { BUNDLED_RULES_DIR } from '../rules/load.ts';
import { parseJson } from '../rules/located-json.ts';
import { limitIssues, readBoundedFile } from '../rules/limits.ts';
import { readCaseEvents, readProcesses } from './case-events.ts';
import { readExpect } from './expect.ts';
import { Reader } from './reader.ts';
import { RuleTestError, type TestCase, type TestFile } from './types.ts';

const FILE_FIELDS = ['$schema', 'description', 'rules', 'only', 'mode', 'processes', 'cases'];
const CASE_FIELDS = ['name', 'description', 'rules', 'only', 'mode', 'events', 'log', 'expect'];
const ENV: ReadonlySet<string> = new Set(['env']);

/** parses and validates a test file's text; throws RuleTestError with every problem found */
export function parseTestFile(file: string, text: string): TestFile {
  const parsed = parseJson(text);
  if (parsed.error) {
    const { line, column, pointer, reason, code } = parsed.error;
    throw new RuleTestError([{ file, line, column, pointer, message: code === 'PARSE_ERROR' ? `invalid JSON: ${reason}` : reason }]);
  }
  const r = new Reader(file, parsed.pointers);
  // keys that name a prototype are refused wherever a key is not data (an event's env names are data)
  for (const l of limitIssues(parsed.data, { dataKeys: ENV })) r.fail(l.pointer, `key ${JSON.stringify(l.key)} is not allowed here (it names a JavaScript object's prototype)`);
  if (r.issues.length) throw new RuleTestError(r.issues);
  const dir = dirname(resolve(file));
  const top = r.object(parsed.data, '', FILE_FIELDS);
  if (!top) throw new RuleTestError(r.issues);

  const fileRules = r.strings(top, 'rules', '')?.map((p) => resolve(dir, p));
  const fileOnly = r.strings(top, 'only', '');
  const fileMode = r.oneOf<Mode>(top, 'mode', '', ['monitor', 'enforce']);
  const processes = readProcesses(r, top.processes);

  const cases: TestCase[] = [];
  if (!Array.isArray(top.cases) || top.cases.length === 0) {
    r.fail(top.cases === undefined ? '' : '/cases', top.cases === undefined ? 'missing required field "cases"' : 'must be a non-empty array of cases');
  } else {
    const names = new Map<string, number>();
    top.cases.forEach((c, i) => {
      const p = `/cases/${i}`;
      const o = r.object(c, p, CASE_FIELDS);
      if (!o) return;
      const name = r.string(o, 'name', p, true) ?? `case ${i + 1}`;
      if (names.has(name)) r.fail(`${p}/name`, `case name ${JSON.stringify(name)} is already used by case ${names.get(name)! + 1}`);
      names.set(name, i);
      const rules = r.strings(o, 'rules', p)?.map((q) => resolve(dir, q)) ?? fileRules ?? [BUNDLED_RULES_DIR];
      const only = r.strings(o, 'only', p) ?? fileOnly;
      const mode = r.oneOf<Mode>(o, 'mode', p, ['monitor', 'enforce']) ?? fileMode;
      let events: KrsiEvent[] | undefined;
      let log: string | undefined;
      if (o.events !== undefined && o.log !== undefined) r.fail(p, 'give either "events" or "log", not both');
      else if (o.log !== undefined) log = r.string(o, 'log', p) && resolve(dir, o.log as string);
      else if (o.events !== undefined) events = readCaseEvents(r, o.events, `${p}/events`, processes);
      else r.fail(p, 'missing "events" (inline events) or "log" (a log path)');
      const expect = readExpect(r, o.expect, `${p}/expect`);
      cases.push({ file, name, at: r.where(p), rules, only, mode, events, log, expect });
    });
  }
  if (r.issues.length) throw new RuleTestError(r.issues);
  return { file, cases };
}

/** reads and parses one test file */
export function loadTestFile(path: string): TestFile {
  let text: string;
  try {
    text = readBoundedFile(path);
  } catch (e) {
    throw new RuleTestError([{ file: path, line: 1, column: 1, pointer: '', message: `cannot read: ${(e as Error).message}` }]);
  }
  return parseTestFile(path, text);
}

/** the bundled test files: rules/tests/*.json */
export const BUNDLED_TESTS_DIR = join(BUNDLED_RULES_DIR, 'tests');

/** expands files and directories (their *.json, sorted) into test file paths */
export function testFilePaths(paths: string[] = [BUNDLED_TESTS_DIR]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let isDir = false;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      // a missing path: loadTestFile reports it
    }
    if (isDir) for (const n of readdirSync(p).sort()) n.endsWith('.json') && out.push(join(p, n));
    else out.push(p);
  }
  return out;
}
