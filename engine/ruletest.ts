// Rule tests (`krsi test`, like `tetra policytest`): a test file names rules, gives events (inline or a
// log) and the alerts / verdicts / denials it expects; each case is replayed in-process through the
// engine and the outputs are compared with the expectations. The format is documented in
// rules/tests/README.md. Stages: read (JSON with positions) -> validate (every problem located by
// file:line:column and JSON pointer, all collected) -> run (one Engine per case) -> compare.
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { EventType, KrsiEvent } from '../signals/events.ts';
import { EVENT_TYPES } from '../signals/events.ts';
import { EventError, validateEvent } from '../signals/validate.ts';
import type { Mode, Output, Severity, VerdictOp } from './types.ts';
import type { CompiledRule, CompiledRuleSet } from './rules/types.ts';
import { BUNDLED_RULES_DIR, RuleLoadError, formatIssue, loadRuleDirs } from './rules/load.ts';
import { parseDuration } from '../lib/duration.ts';
import { parseJson, type PointerInfo } from './rules/json.ts';
import { limitIssues, readBoundedFile, MAX_CASE_EVENTS } from './rules/limits.ts';
import { Engine } from './engine.ts';
import { visible } from '../lib/visible.ts';
import { readEvents } from './eventlog/index.ts';

// ---------------------------------------------------------------------------------------------
// the parsed form

export type OutKind = 'alert' | 'verdict' | 'denied';

/** one expectation: outputs of `kind` whose fields equal the given ones */
export interface Matcher {
  kind: OutKind | 'any';
  rule?: string;
  pid?: number;
  op?: VerdictOp;
  severity?: Severity;
  /** substring of the alert/verdict message */
  message?: string;
  /** verdicts: fields of the subject that must be equal */
  subject?: Record<string, unknown>;
  /** verdicts: ttl in ns */
  ttl_ns?: number;
  /** verdicts: applied (enforce) or only reported (monitor) */
  applied?: boolean;
  /** denied: the verdict id */
  verdict?: string;
  /** denied: seq of the refused event */
  seq?: number;
  /** alerts/verdicts: seq of the contributing events, in order */
  events?: number[];
  /** exact number of matching outputs; absent: at least one (none: zero) */
  count?: number;
  /** where it was written */
  at: Where;
}

export interface Where {
  file: string;
  line: number;
  column: number;
  pointer: string;
}

export interface TestCase {
  file: string;
  name: string;
  at: Where;
  /** rule files / dirs, absolute */
  rules: string[];
  /** only these rule ids (like replay --rule) */
  only?: string[];
  mode?: Mode;
  events?: KrsiEvent[];
  /** a log path, absolute */
  log?: string;
  expect: { alerts: Matcher[]; verdicts: Matcher[]; denied: Matcher[]; none: Matcher[]; exact: boolean };
}

export interface TestFile {
  file: string;
  cases: TestCase[];
}

export interface TestIssue extends Where {
  message: string;
}

/** a test file that cannot be used: every problem found, located */
export class RuleTestError extends Error {
  constructor(readonly issues: TestIssue[]) {
    super(issues.map(formatTestIssue).join('\n'));
    this.name = 'RuleTestError';
  }
}

export function formatTestIssue(i: TestIssue): string {
  return `${i.file}:${i.line}:${i.column}: error ${i.pointer || '/'}: ${i.message}`;
}

// ---------------------------------------------------------------------------------------------
// read + validate

type Obj = Record<string, unknown>;

const FILE_FIELDS = ['$schema', 'description', 'rules', 'only', 'mode', 'processes', 'cases'];
const CASE_FIELDS = ['name', 'description', 'rules', 'only', 'mode', 'events', 'log', 'expect'];
const EXPECT_FIELDS = ['alerts', 'verdicts', 'denied', 'none', 'exact'];
const MATCHER_FIELDS: Record<OutKind | 'any', string[]> = {
  alert: ['rule', 'pid', 'severity', 'message', 'events', 'count'],
  verdict: ['rule', 'pid', 'op', 'severity', 'message', 'subject', 'ttl', 'applied', 'events', 'count'],
  denied: ['rule', 'pid', 'op', 'verdict', 'seq', 'count'],
  any: ['kind', 'rule', 'pid', 'op', 'seq', 'verdict'],
};
const OPS = ['exec', 'mprotect_exec', 'module_load', 'quarantine'];
const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'];

class Reader {
  readonly issues: TestIssue[] = [];
  constructor(
    readonly file: string,
    readonly pointers: Record<string, PointerInfo>,
  ) {}

  where(pointer: string): Where {
    // the closest enclosing value that has a position (a missing field: its object)
    let p = pointer;
    while (!(p in this.pointers) && p !== '') p = p.slice(0, p.lastIndexOf('/'));
    const info = this.pointers[p];
    const pos = info?.key ?? info?.value ?? { line: 0, column: 0 };
    return { file: this.file, line: pos.line + 1, column: pos.column + 1, pointer };
  }

  fail(pointer: string, message: string): undefined {
    // messages quote names from the file, which a hostile one makes megabytes long
    this.issues.push({ ...this.where(pointer), message: message.length > 1000 ? `${message.slice(0, 1000)}…` : message });
    return undefined;
  }

  object(v: unknown, pointer: string, allowed: string[]): Obj | undefined {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return this.fail(pointer, `must be an object, got ${describe(v)}`);
    for (const k of Object.keys(v)) {
      if (!allowed.includes(k)) this.fail(`${pointer}/${esc(k)}`, `unknown field ${JSON.stringify(k)} (allowed: ${allowed.join(', ')})`);
    }
    return v as Obj;
  }

  string(o: Obj, k: string, pointer: string, required = false): string | undefined {
    const v = o[k];
    if (v === undefined) return required ? this.fail(pointer, `missing required field ${JSON.stringify(k)}`) : undefined;
    if (typeof v !== 'string' || v === '') return this.fail(`${pointer}/${k}`, `must be a non-empty string, got ${describe(v)}`);
    return v;
  }

  uint(o: Obj, k: string, pointer: string): number | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return this.fail(`${pointer}/${k}`, `must be a non-negative integer, got ${describe(v)}`);
    return v;
  }

  oneOf<T extends string>(o: Obj, k: string, pointer: string, allowed: readonly string[]): T | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !allowed.includes(v)) return this.fail(`${pointer}/${k}`, `must be one of ${allowed.join(' | ')}, got ${describe(v)}`);
    return v as T;
  }

  strings(o: Obj, k: string, pointer: string): string[] | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || list.length === 0 || list.some((s) => typeof s !== 'string' || s === '')) {
      return this.fail(`${pointer}/${k}`, `must be a string or a non-empty array of strings, got ${describe(v)}`);
    }
    return list as string[];
  }
}

function esc(k: string): string {
  return k.replace(/~/g, '~0').replace(/\//g, '~1');
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  return String(v);
}

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
      else if (o.events !== undefined) events = readEvents_(r, o.events, `${p}/events`, processes);
      else r.fail(p, 'missing "events" (inline events) or "log" (a log path)');
      const expect = readExpect(r, o.expect, `${p}/expect`);
      cases.push({ file, name, at: r.where(p), rules, only, mode, events, log, expect });
    });
  }
  if (r.issues.length) throw new RuleTestError(r.issues);
  return { file, cases };
}

const ENV: ReadonlySet<string> = new Set(['env']);

/** named process templates: their fields are the defaults of events that say "process": name */
function readProcesses(r: Reader, v: unknown): Map<string, Obj> {
  const out = new Map<string, Obj>();
  if (v === undefined) return out;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    r.fail('/processes', `must be an object of name -> event fields, got ${describe(v)}`);
    return out;
  }
  for (const [name, t] of Object.entries(v)) {
    if (typeof t !== 'object' || t === null || Array.isArray(t)) r.fail(`/processes/${esc(name)}`, `must be an object of event fields, got ${describe(t)}`);
    else out.set(name, t as Obj);
  }
  return out;
}

/** inline events: repeats expanded, templates applied, ts durations converted, validated against the
 *  event contract, ts non-decreasing; seq defaults to the event's position (1-based, after expansion) */
function readEvents_(r: Reader, v: unknown, pointer: string, processes: Map<string, Obj>): KrsiEvent[] | undefined {
  if (!Array.isArray(v)) return r.fail(pointer, `must be an array of events, got ${describe(v)}`);
  const out: KrsiEvent[] = [];
  let lastTs = -1;
  for (const [i, raw] of v.entries()) {
    const p = `${pointer}/${i}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      r.fail(p, `must be an event object, got ${describe(raw)}`);
      continue;
    }
    const { repeat, ...one } = raw as Obj;
    // the event that would take the case past MAX_CASE_EVENTS is reported, and the rest are not read
    const n = repeat === undefined ? 1 : (repeat as Obj)?.count;
    if (typeof n === 'number' && n > MAX_CASE_EVENTS - out.length) {
      r.fail(repeat === undefined ? p : `${p}/repeat/count`, `a case may have at most ${MAX_CASE_EVENTS} events (repeats included): this one makes ${out.length + n}`);
      break;
    }
    const copies = expandRepeat(r, repeat, `${p}/repeat`, one);
    for (const c of copies ?? []) {
      const ev = readEvent(r, c, p, processes, out.length + 1, lastTs);
      if (!ev) break;
      lastTs = ev.ts;
      out.push(ev);
    }
  }
  return out;
}

/** "repeat": {"count": N, "every": "10ms", "cycle": {"prot": [3, 7, 5]}} makes N copies of the event,
 *  the k-th at ts + k*every, with each cycled field taking its values in turn */
function expandRepeat(r: Reader, v: unknown, pointer: string, ev: Obj): Obj[] | undefined {
  if (v === undefined) return [ev];
  const o = r.object(v, pointer, ['count', 'every', 'cycle']);
  if (!o) return undefined;
  const count = r.uint(o, 'count', pointer);
  if (count === undefined || count < 1) return r.fail(`${pointer}/count`, 'must be an integer >= 1');
  let every = 0;
  if (o.every !== undefined) {
    try {
      every = parseDuration(o.every as string | number);
    } catch (e) {
      return r.fail(`${pointer}/every`, (e as Error).message);
    }
  }
  const cycle = o.cycle === undefined ? {} : r.object(o.cycle, `${pointer}/cycle`, Object.keys(o.cycle as Obj));
  if (!cycle) return undefined;
  for (const [k, vals] of Object.entries(cycle)) {
    if (!Array.isArray(vals) || vals.length === 0) return r.fail(`${pointer}/cycle/${esc(k)}`, 'must be a non-empty array of values');
  }
  let ts0: number;
  try {
    ts0 = typeof ev.ts === 'string' ? parseDuration(ev.ts) : (ev.ts as number);
  } catch (e) {
    return r.fail(pointer.replace(/\/repeat$/, '/ts'), `${(e as Error).message} (ts is integer ns or a duration such as "1500ms")`);
  }
  const out: Obj[] = [];
  for (let k = 0; k < count; k++) {
    const c: Obj = { ...ev, ts: typeof ts0 === 'number' ? ts0 + k * every : ts0 };
    for (const [f, vals] of Object.entries(cycle)) c[f] = (vals as unknown[])[k % (vals as unknown[]).length];
    out.push(c);
  }
  return out;
}

function readEvent(r: Reader, raw: Obj, p: string, processes: Map<string, Obj>, position: number, lastTs: number): KrsiEvent | undefined {
  let ev: Obj = { ...raw };
  if (ev.process !== undefined) {
    const t = typeof ev.process === 'string' ? processes.get(ev.process) : undefined;
    if (!t) {
      const known = [...processes.keys()];
      return r.fail(`${p}/process`, `no process template named ${describe(ev.process)}${known.length ? ` (defined: ${known.join(', ')})` : ' (define them in "processes")'}`);
    }
    const { process: _, ...own } = ev;
    ev = { ...structuredClone(t), ...own };
  }
  if (typeof ev.ts === 'string') {
    try {
      ev.ts = parseDuration(ev.ts);
    } catch (e) {
      return r.fail(`${p}/ts`, `${(e as Error).message} (ts is integer ns or a duration such as "1500ms")`);
    }
  }
  if (ev.seq === undefined) ev.seq = position;
  const at = r.where(p);
  try {
    validateEvent(ev, { file: at.file, line: at.line });
  } catch (e) {
    if (!(e instanceof EventError)) throw e;
    const fp = e.field ? `${p}/${e.field.split('.').map(esc).join('/')}` : p;
    return r.fail(fp, `bad event: ${e.field ? `field ${e.field}: ` : ''}${e.reason}`);
  }
  if ((ev.ts as number) < lastTs) return r.fail(`${p}/ts`, `ts ${ev.ts} is before the previous event's ${lastTs}: events must be in time order`);
  return ev as KrsiEvent;
}

function readExpect(r: Reader, v: unknown, pointer: string): TestCase['expect'] {
  const e: TestCase['expect'] = { alerts: [], verdicts: [], denied: [], none: [], exact: false };
  const o = r.object(v, pointer, EXPECT_FIELDS);
  if (!o) return e;
  if (Object.keys(o).length === 0) r.fail(pointer, 'expects nothing: give alerts, verdicts, denied or none');
  e.alerts = readMatchers(r, o.alerts, `${pointer}/alerts`, 'alert');
  e.verdicts = readMatchers(r, o.verdicts, `${pointer}/verdicts`, 'verdict');
  e.denied = readMatchers(r, o.denied, `${pointer}/denied`, 'denied');
  if (o.none === true) e.none = [{ kind: 'any', at: r.where(`${pointer}/none`) }];
  else e.none = readMatchers(r, o.none, `${pointer}/none`, 'any');
  if (o.exact !== undefined) {
    if (typeof o.exact !== 'boolean') r.fail(`${pointer}/exact`, `must be true or false, got ${describe(o.exact)}`);
    else e.exact = o.exact;
  }
  return e;
}

function readMatchers(r: Reader, v: unknown, pointer: string, kind: OutKind | 'any'): Matcher[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    r.fail(pointer, `must be an array of expectations${kind === 'any' ? ' (or true: nothing at all)' : ''}, got ${describe(v)}`);
    return [];
  }
  const out: Matcher[] = [];
  v.forEach((m, i) => {
    const p = `${pointer}/${i}`;
    const o = r.object(m, p, MATCHER_FIELDS[kind]);
    if (!o) return;
    const x: Matcher = { kind, at: r.where(p) };
    if (kind === 'any') x.kind = r.oneOf<OutKind>(o, 'kind', p, ['alert', 'verdict', 'denied']) ?? 'any';
    x.rule = r.string(o, 'rule', p);
    x.pid = r.uint(o, 'pid', p);
    x.op = r.oneOf<VerdictOp>(o, 'op', p, OPS);
    x.severity = r.oneOf<Severity>(o, 'severity', p, SEVERITIES);
    x.message = r.string(o, 'message', p);
    x.verdict = r.string(o, 'verdict', p);
    x.seq = r.uint(o, 'seq', p);
    x.count = r.uint(o, 'count', p);
    if (o.subject !== undefined) x.subject = r.object(o.subject, `${p}/subject`, ['kind', 'pid', 'dev', 'ino', 'name']);
    if (o.applied !== undefined) {
      if (typeof o.applied !== 'boolean') r.fail(`${p}/applied`, `must be true or false, got ${describe(o.applied)}`);
      else x.applied = o.applied;
    }
    if (o.ttl !== undefined) {
      try {
        x.ttl_ns = parseDuration(o.ttl as string | number);
      } catch (e) {
        r.fail(`${p}/ttl`, (e as Error).message);
      }
    }
    if (o.events !== undefined) {
      if (!Array.isArray(o.events) || o.events.some((s) => typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0)) {
        r.fail(`${p}/events`, `must be an array of event seq numbers, got ${describe(o.events)}`);
      } else x.events = o.events as number[];
    }
    if (kind !== 'any' && Object.keys(o).length === 0) r.fail(p, 'an empty expectation matches anything: name at least the rule');
    out.push(x);
  });
  return out;
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

// ---------------------------------------------------------------------------------------------
// run + compare

export interface Failure {
  /** the expectation, in words */
  expected: string;
  /** what matched it (or, for a missing output, the outputs of that kind there were) */
  got: string[];
  at?: Where;
}

export interface CaseResult {
  file: string;
  name: string;
  at: Where;
  ok: boolean;
  failures: Failure[];
  /** alerts, verdicts and denials the replay produced, in order */
  outputs: Output[];
  /** the case could not run (rules failed to load, log unreadable) */
  error?: string;
}

/** compiled rule sets, by their source paths, shared between cases */
export class RuleCache {
  private sets = new Map<string, Promise<CompiledRuleSet>>();
  get(paths: string[]): Promise<CompiledRuleSet> {
    const k = paths.join('\0');
    let s = this.sets.get(k);
    if (!s) this.sets.set(k, (s = loadRuleDirs(paths)));
    return s;
  }
}

/** a rule set reduced to some rule ids, indexed again; unknown ids throw */
export function selectRules(set: CompiledRuleSet, ids: string[]): CompiledRuleSet {
  const known = new Set(set.rules.map((r) => r.id));
  const missing = ids.filter((id) => !known.has(id));
  if (missing.length) throw new Error(`no rule with id ${missing.map((m) => JSON.stringify(m)).join(', ')} (rules: ${[...known].join(', ')})`);
  const rules = set.rules.filter((r) => ids.includes(r.id));
  const byType = new Map<EventType, CompiledRule[]>();
  for (const t of EVENT_TYPES) byType.set(t, rules.filter((r) => r.types === '*' || r.types.includes(t)));
  return { rules, lists: set.lists, byType };
}

/** replays a case's events through a fresh engine and compares the outputs with its expectations */
export async function runCase(c: TestCase, cache = new RuleCache()): Promise<CaseResult> {
  const res: CaseResult = { file: c.file, name: c.name, at: c.at, ok: false, failures: [], outputs: [] };
  let set: CompiledRuleSet;
  try {
    set = await cache.get(c.rules);
    if (c.only) set = selectRules(set, c.only);
  } catch (e) {
    res.error = e instanceof RuleLoadError ? `rules do not load:\n${e.issues.map(formatIssue).join('\n')}` : (e as Error).message;
    return res;
  }
  const engine = new Engine({ rules: set, mode: c.mode });
  const emit = (o: Output) => {
    if (o.kind !== 'summary') res.outputs.push(o);
  };
  try {
    if (c.events) for (const ev of c.events) engine.push({ ...ev }, emit);
    else for await (const batch of readEvents(c.log!)) for (const ev of batch) engine.push(ev, emit);
    engine.finish(emit);
  } catch (e) {
    res.error = (e as Error).message;
    return res;
  }
  res.failures = compare(c.expect, res.outputs);
  res.ok = res.failures.length === 0;
  return res;
}

function matches(m: Matcher, o: Output): boolean {
  if (o.kind === 'summary') return false;
  if (m.kind !== 'any' && o.kind !== m.kind) return false;
  if (m.rule !== undefined && o.rule !== m.rule) return false;
  if (m.pid !== undefined && o.pid !== m.pid) return false;
  if (m.op !== undefined && (o.kind === 'alert' || o.op !== m.op)) return false;
  if (o.kind === 'denied') {
    if (m.verdict !== undefined && o.verdict !== m.verdict) return false;
    if (m.seq !== undefined && o.seq !== m.seq) return false;
    return true;
  }
  if (m.severity !== undefined && o.severity !== m.severity) return false;
  if (m.message !== undefined && !o.message.includes(m.message)) return false;
  if (m.events !== undefined && (o.events.length !== m.events.length || o.events.some((s, i) => s !== m.events![i]))) return false;
  if (o.kind === 'verdict') {
    if (m.applied !== undefined && o.applied !== m.applied) return false;
    if (m.ttl_ns !== undefined && o.ttl_ns !== m.ttl_ns) return false;
    if (m.subject) for (const [k, v] of Object.entries(m.subject)) if ((o.subject as unknown as Obj)[k] !== v) return false;
  }
  return true;
}

/** an expectation in words: `alert rule=x pid=4 (count 2)` */
export function describeMatcher(m: Matcher, none = false): string {
  const f: string[] = [];
  for (const k of ['rule', 'pid', 'op', 'severity', 'verdict', 'seq', 'applied'] as const) if (m[k] !== undefined) f.push(`${k}=${m[k]}`);
  if (m.message !== undefined) f.push(`message~${visible(JSON.stringify(m.message))}`);
  if (m.subject) f.push(`subject=${visible(JSON.stringify(m.subject))}`);
  if (m.ttl_ns !== undefined) f.push(`ttl=${m.ttl_ns}ns`);
  if (m.events) f.push(`events=[${m.events.join(',')}]`);
  const what = `${m.kind === 'any' ? 'output' : m.kind}${f.length ? ' ' + f.join(' ') : ''}`;
  if (none) return `no ${what}`;
  return m.count !== undefined ? `${m.count} × ${what}` : `${what} (at least one)`;
}

/** an output in one line: event-derived strings (messages, subjects) with control and bidi characters as
 *  escapes, so an event cannot add lines or drive the terminal */
export function describeOutput(o: Output): string {
  switch (o.kind) {
    case 'alert':
      return `alert ${o.rule} pid=${o.pid} ts=${o.ts} events=[${o.events.join(',')}] "${visible(o.message)}"`;
    case 'verdict':
      return `verdict ${o.rule} pid=${o.pid} op=${o.op} subject=${visible(JSON.stringify(o.subject))} ttl=${o.ttl_ns}ns ${o.applied ? 'applied' : 'not applied'} events=[${o.events.join(',')}]`;
    case 'denied':
      return `denied ${o.rule} pid=${o.pid} op=${o.op} seq=${o.seq} verdict=${o.verdict}`;
    default:
      return JSON.stringify(o);
  }
}

const GOT_MAX = 8;

function listGot(outs: Output[]): string[] {
  if (outs.length === 0) return ['(nothing)'];
  const lines = outs.slice(0, GOT_MAX).map(describeOutput);
  if (outs.length > GOT_MAX) lines.push(`… and ${outs.length - GOT_MAX} more`);
  return lines;
}

/** every expectation checked against the outputs; failures say what was expected and what there was */
export function compare(expect: TestCase['expect'], outputs: Output[]): Failure[] {
  const failures: Failure[] = [];
  const covered = new Set<Output>();
  for (const m of [...expect.alerts, ...expect.verdicts, ...expect.denied]) {
    const hit = outputs.filter((o) => matches(m, o));
    hit.forEach((o) => covered.add(o));
    const ok = m.count === undefined ? hit.length > 0 : hit.length === m.count;
    if (ok) continue;
    // nothing matched: show the outputs of that kind (same rule first) to diff against
    const sameKind = outputs.filter((o) => o.kind === m.kind);
    const sameRule = sameKind.filter((o) => m.rule === undefined || (o.kind !== 'summary' && o.rule === m.rule));
    failures.push({
      expected: describeMatcher(m),
      got: hit.length ? [`${hit.length} matching:`, ...listGot(hit)] : [`no match; ${m.kind}s${sameRule.length && m.rule ? ` of ${m.rule}` : ''}:`, ...listGot(sameRule.length ? sameRule : sameKind)],
      at: m.at,
    });
  }
  for (const m of expect.none) {
    const hit = outputs.filter((o) => matches(m, o));
    if (hit.length) failures.push({ expected: describeMatcher(m, true), got: listGot(hit), at: m.at });
  }
  if (expect.exact) {
    const extra = outputs.filter((o) => o.kind !== 'summary' && !covered.has(o));
    if (extra.length) failures.push({ expected: 'exactly the expected outputs (exact: true)', got: ['unexpected:', ...listGot(extra)] });
  }
  return failures;
}

// ---------------------------------------------------------------------------------------------
// many files

export interface FileResult {
  file: string;
  cases: CaseResult[];
  /** the file itself is bad */
  issues?: TestIssue[];
}

export interface RunResult {
  files: FileResult[];
  passed: number;
  failed: number;
  /** files that could not be parsed */
  broken: number;
}

export interface RunOptions {
  /** replace every case's rules with these paths */
  rules?: string[];
  /** only cases whose name contains one of these */
  grep?: string[];
  onCase?(r: CaseResult): void;
}

export async function runTestFiles(paths: string[], o: RunOptions = {}): Promise<RunResult> {
  const cache = new RuleCache();
  const out: RunResult = { files: [], passed: 0, failed: 0, broken: 0 };
  for (const path of testFilePaths(paths)) {
    const fr: FileResult = { file: path, cases: [] };
    out.files.push(fr);
    let tf: TestFile;
    try {
      tf = loadTestFile(path);
    } catch (e) {
      if (!(e instanceof RuleTestError)) throw e;
      fr.issues = e.issues;
      out.broken++;
      continue;
    }
    for (const c of tf.cases) {
      if (o.grep && !o.grep.some((g) => c.name.includes(g))) continue;
      const r = await runCase(o.rules ? { ...c, rules: o.rules.map((p) => resolve(p)) } : c, cache);
      fr.cases.push(r);
      if (r.ok) out.passed++;
      else out.failed++;
      o.onCase?.(r);
    }
  }
  return out;
}

/** a case result for people: ✓/✗ name, and for a failure the expected/got diff */
export function formatCaseResult(r: CaseResult, verbose = false): string {
  const lines = [`  ${r.ok ? '✓' : '✗'} ${r.name}`];
  if (r.error) lines.push(...indent(`error: ${r.error}`, 6));
  for (const f of r.failures) {
    lines.push(`      ${f.at ? `${relPath(f.at.file)}:${f.at.line}: ` : ''}expected: ${f.expected}`);
    f.got.forEach((g, i) => lines.push(`      ${i === 0 ? '     got: ' : '          '}${g}`));
  }
  if (verbose) for (const o of r.outputs) lines.push(`      · ${describeOutput(o)}`);
  return lines.join('\n');
}

function indent(s: string, n: number): string[] {
  return s.split('\n').map((l) => ' '.repeat(n) + l);
}

export function relPath(p: string): string {
  const r = relative(process.cwd(), p);
  return r.startsWith('..') ? p : r;
}
