// Stage 2 — validate: JSON Schema (rules/schema.json, ajv 8, all errors) translated into located,
// coded issues; then the semantic checks a schema cannot express (cross-file duplicates, list
// references, operator values, step ids, verdict subjects, ...). Every issue is collected.
import { createRequire } from 'node:module';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { OPERATORS, type OperatorContext } from '../operators/index.ts';
import { checkDuration, parseDuration } from '../../lib/duration.ts';
import { closest, type IssueCode } from './messages.ts';
import type { IssueCollector } from './issues.ts';
import type { RuleDocument } from './read.ts';
import { FACTS, FACT_NAMES, FACT_SHAPES, checkShapePath, shapeAt, OP_SUBJECTS, SUBJECT_EVENTS, isEventType, isFact } from './facts.ts';
import { inferTypes, intersect, isFactRef, parseField, parsePath, type TypeSet } from './compile.ts';
import { EVENT_TYPES } from '../../signals/events.ts';
import type { ConditionJson } from './types.ts';
import { packagePath } from '../../lib/package.ts';

const require = createRequire(import.meta.url);
export const RULE_SCHEMA = require(packagePath('rules', 'schema.json')) as Record<string, unknown>;

// ajv with allErrors concatenates a sub-schema's errors onto all earlier ones, so one call over many failing
// items is quadratic: the file's top level and each rule are validated by separate calls (and arrays inside
// a rule are limited: limits.ts), which keeps validation linear in the file.
let validators: { top: ValidateFunction; rule: ValidateFunction } | undefined;
function schemaValidators(): { top: ValidateFunction; rule: ValidateFunction } {
  if (validators) return validators;
  const ajv = new Ajv({ allErrors: true, verbose: true, allowUnionTypes: true, strict: true, strictRequired: false });
  ajv.addSchema(RULE_SCHEMA);
  const { $id: _, definitions: __, ...top } = RULE_SCHEMA as Obj & { properties: Obj };
  const topSchema = { ...top, properties: { ...top.properties, rules: { type: 'array' } } };
  validators = { top: ajv.compile(topSchema), rule: ajv.getSchema(`${RULE_SCHEMA.$id}#/definitions/rule`)! };
  return validators;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const esc = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

// ---------- schema ----------

function translate(e: ErrorObject, base: string, doc: RuleDocument, issues: IssueCollector, seen: Set<string>): void {
  const file = doc.file;
  const ptr = base + e.instancePath;
  const add = (code: IssueCode, pointer: string, args: Record<string, string | number | undefined>, key = false) => {
    const id = `${code}@${pointer}@${args.field ?? ''}`;
    if (seen.has(id)) return;
    seen.add(id);
    issues.add(code, { file, pointer, key }, args);
  };
  const inDef = (name: string) => e.schemaPath.includes(`/definitions/${name}/`);
  const last = ptr.slice(ptr.lastIndexOf('/') + 1);
  switch (e.keyword) {
    case 'if':
      return; // the failing branch reports its own errors
    case 'required':
      return add('MISSING_FIELD', ptr, { field: e.params.missingProperty as string });
    case 'additionalProperties': {
      const field = e.params.additionalProperty as string;
      const props = isObj(e.parentSchema) && isObj(e.parentSchema.properties) ? Object.keys(e.parentSchema.properties) : [];
      return add('UNKNOWN_FIELD', `${ptr}/${esc(field)}`, { field, suggestion: closest(field, props) }, true);
    }
    case 'type':
      if (inDef('duration')) return add('BAD_DURATION', ptr, { reason: checkDuration(e.data) ?? 'bad duration' });
      return add('WRONG_TYPE', ptr, { expected: Array.isArray(e.params.type) ? e.params.type.join(' or ') : String(e.params.type) });
    case 'enum':
    case 'const': {
      const allowed = (e.keyword === 'enum' ? e.params.allowedValues : [e.params.allowedValue]) as unknown[];
      const name = typeof e.data === 'string' ? e.data : JSON.stringify(e.data);
      const suggestion = typeof e.data === 'string' ? closest(e.data, allowed.map(String)) : undefined;
      if (last === 'operator' && inDef('operator')) return add('UNKNOWN_OPERATOR', ptr, { name, suggestion });
      if (last === 'fact' && inDef('fact')) return add('UNKNOWN_FACT', ptr, { name, suggestion });
      return add('BAD_VALUE', ptr, { value: name, allowed: allowed.map((a) => JSON.stringify(a)).join(', ') });
    }
    case 'pattern':
      if (inDef('duration')) return add('BAD_DURATION', ptr, { reason: checkDuration(e.data) ?? 'bad duration' });
      if (inDef('path')) {
        const p = parsePath(e.data as string);
        return add('BAD_PATH', ptr, { path: e.data as string, reason: Array.isArray(p) ? 'unsupported' : p.error });
      }
      if (inDef('field')) return add('BAD_FIELD', ptr, { field: e.data as string, reason: 'expected a dotted field path such as "pid" or "exe.ino"' });
      return add('BAD_FORMAT', ptr, {
        value: e.data as string,
        pattern: isObj(e.parentSchema) && typeof e.parentSchema.description === 'string' ? e.parentSchema.description : (e.params.pattern as string),
      });
    case 'propertyNames':
      return add('BAD_FORMAT', `${ptr}/${esc(String(e.params.propertyName))}`, { value: String(e.params.propertyName), pattern: 'a name of letters, digits, _ . -' }, true);
    case 'minimum':
      if (last === 'threshold') return add('BAD_THRESHOLD', ptr, { value: e.data as number });
      if (inDef('duration')) return add('BAD_DURATION', ptr, { reason: checkDuration(e.data) ?? 'bad duration' });
      return add('OUT_OF_RANGE', ptr, { comparison: e.params.comparison as string, limit: e.params.limit as number });
    case 'maximum':
      return add('OUT_OF_RANGE', ptr, { comparison: e.params.comparison as string, limit: e.params.limit as number });
    case 'minItems':
      return add('TOO_FEW', ptr, { limit: e.params.limit as number, what: last === 'steps' ? 'steps' : last === 'actions' ? 'action' : 'items' });
    case 'minProperties':
      return add('TOO_FEW', ptr, { limit: e.params.limit as number, what: last === 'correlation' ? 'correlation kind (sequence, count, distinct or absent)' : 'fields' });
    case 'maxProperties':
      return add('TOO_MANY', ptr, { limit: e.params.limit as number, what: last === 'correlation' ? 'correlation kind per rule' : 'fields' });
    case 'minLength':
      return e.params.limit === 1 ? add('SCHEMA', ptr, { reason: 'must not be empty' }) : add('TOO_FEW', ptr, { limit: e.params.limit as number, what: 'characters' });
    default:
      return add('SCHEMA', ptr, { reason: e.message ?? e.keyword });
  }
}

export function validateSchema(docs: RuleDocument[], issues: IssueCollector): void {
  const v = schemaValidators();
  for (const doc of docs) {
    if (doc.data === undefined) continue;
    const seen = new Set<string>();
    if (!v.top(doc.data)) for (const e of v.top.errors ?? []) translate(e, '', doc, issues, seen);
    const rules = isObj(doc.data) ? doc.data.rules : undefined;
    if (!Array.isArray(rules)) continue;
    rules.forEach((r, i) => {
      if (!v.rule(r)) for (const e of v.rule.errors ?? []) translate(e, `/rules/${i}`, doc, issues, seen);
    });
  }
}

// ---------- lists ----------

export interface ListDef {
  values: (string | number)[];
  file: string;
  pointer: string;
}

/** all lists of all documents (first definition wins); duplicates reported */
export function collectLists(docs: RuleDocument[], issues: IssueCollector, loc: (file: string, pointer: string, key?: boolean) => string): Map<string, ListDef> {
  const lists = new Map<string, ListDef>();
  for (const doc of docs) {
    const d = doc.data;
    if (!isObj(d) || !isObj(d.lists)) continue;
    for (const [name, values] of Object.entries(d.lists)) {
      const pointer = `/lists/${esc(name)}`;
      const first = lists.get(name);
      if (first) {
        issues.add('DUPLICATE_LIST', { file: doc.file, pointer, key: true }, { name, first: loc(first.file, first.pointer, true) });
        continue;
      }
      lists.set(name, { values: Array.isArray(values) ? values.filter((x) => typeof x === 'string' || typeof x === 'number') : [], file: doc.file, pointer });
    }
  }
  return lists;
}

// ---------- semantic checks ----------

interface RuleCtx {
  file: string;
  rule?: string;
  ops: OperatorContext;
  usedLists: Set<string>;
  issues: IssueCollector;
}

function add(c: RuleCtx, code: IssueCode, pointer: string, args: Record<string, string | number | undefined> = {}, key = false) {
  c.issues.add(code, { file: c.file, pointer, key }, args, c.rule);
}

function checkListRef(c: RuleCtx, name: unknown, pointer: string): void {
  if (typeof name !== 'string') return;
  c.usedLists.add(name);
  if (!Object.hasOwn(c.ops.lists, name)) add(c, 'UNKNOWN_LIST', pointer, { name, suggestion: closest(name, Object.keys(c.ops.lists)) });
}

function checkEventType(c: RuleCtx, v: unknown, pointer: string): void {
  if (typeof v === 'string' && !isEventType(v)) add(c, 'UNKNOWN_EVENT_TYPE', pointer, { name: v, suggestion: closest(v, EVENT_TYPES) });
}

function checkCondition(c: RuleCtx, cond: unknown, ptr: string, types: TypeSet = typesOf(cond)): void {
  if (!isObj(cond)) return;
  if ('all' in cond || 'any' in cond) {
    const k = 'all' in cond ? 'all' : 'any';
    const xs = cond[k];
    if (Array.isArray(xs)) xs.forEach((x, i) => checkCondition(c, x, `${ptr}/${k}/${i}`, types));
    return;
  }
  if ('not' in cond) return checkCondition(c, cond.not, `${ptr}/not`, types);
  checkFactOnTypes(c, cond.fact, `${ptr}/fact`, types);
  checkPathShape(c, cond.fact, cond.path, `${ptr}/path`);
  if (isFactRef(cond.value) && isObj(cond.value)) checkFactOnTypes(c, cond.value.fact, `${ptr}/value/fact`, types);
  const op = typeof cond.operator === 'string' ? OPERATORS.get(cond.operator) : undefined;
  if (!op || !('value' in cond)) return; // the schema reports these
  const value = cond.value;
  const vptr = `${ptr}/value`;
  if (isFactRef(value)) {
    if (!isObj(value)) return;
    if (!isFact(value.fact)) add(c, 'UNKNOWN_FACT', `${vptr}/fact`, { name: String(value.fact), suggestion: typeof value.fact === 'string' ? closest(value.fact, FACT_NAMES) : undefined });
    if (value.path !== undefined) {
      const p = typeof value.path === 'string' ? parsePath(value.path) : { error: 'must be a string' };
      if (!Array.isArray(p)) add(c, 'BAD_PATH', `${vptr}/path`, { path: String(value.path), reason: p.error });
      else checkPathShape(c, value.fact, value.path, `${vptr}/path`);
    }
    for (const k of Object.keys(value)) {
      if (k !== 'fact' && k !== 'path' && k !== 'params') add(c, 'UNKNOWN_FIELD', `${vptr}/${esc(k)}`, { field: k, suggestion: closest(k, ['fact', 'path', 'params']) }, true);
    }
    return;
  }
  if (op.name === 'inList' || op.name === 'notInList') {
    if (typeof value === 'string') return checkListRef(c, value, vptr);
  }
  if ((op.name === 'inInodeList' || op.name === 'notInInodeList') && typeof value === 'string') {
    checkListRef(c, value, vptr);
    if (!Object.hasOwn(c.ops.lists, value)) return;
  }
  const problem = op.checkValue?.(value, c.ops);
  if (problem) {
    if (problem.code === 'BAD_REGEX') add(c, 'BAD_REGEX', vptr, { reason: problem.message });
    else add(c, 'BAD_OPERATOR_VALUE', vptr, { operator: op.name, reason: problem.message });
  }
  if (cond.fact === 'type' && cond.path === undefined) {
    if (op.name === 'equal' || op.name === 'notEqual') checkEventType(c, value, vptr);
    if ((op.name === 'in' || op.name === 'notIn') && Array.isArray(value)) value.forEach((v, i) => checkEventType(c, v, `${vptr}/${i}`));
  }
}

/** a path that cannot lead anywhere in the fact's known shape (e.g. "$.exe.inode") */
function checkPathShape(c: RuleCtx, fact: unknown, path: unknown, ptr: string): void {
  if (!isFact(fact) || typeof path !== 'string') return;
  const segs = parsePath(path);
  if (!Array.isArray(segs)) return; // the schema reports it
  const bad = checkShapePath(fact, segs);
  if (bad) add(c, 'BAD_PATH', ptr, { path, reason: bad.reason + suggestField(fact, segs, bad.suggestion) });
}

function suggestField(fact: string, segs: string[], wrong: string | undefined): string {
  if (wrong === undefined) return '';
  let shape = FACT_SHAPES[fact];
  for (const seg of segs) {
    if (seg === wrong) break;
    if (typeof shape !== 'object') return '';
    shape = 'arr' in shape ? shape.arr : shape.obj[seg];
  }
  if (typeof shape !== 'object' || !('obj' in shape)) return '';
  const s = closest(wrong, Object.keys(shape.obj));
  return s ? ` (did you mean ${JSON.stringify(s)}?)` : '';
}

/** a fact only some event types carry, in a condition that only matches other types */
function checkFactOnTypes(c: RuleCtx, fact: unknown, ptr: string, types: TypeSet): void {
  if (!isFact(fact) || types === '*' || types.size === 0) return;
  const has = FACTS[fact];
  if (has === '*' || [...types].some((t) => has.includes(t))) return;
  add(c, 'FACT_NOT_ON_TYPE', ptr, { fact, has: has.join('/'), types: [...types].join('/') });
}

function checkFields(c: RuleCtx, fields: unknown, ptr: string): void {
  const one = (f: unknown, p: string) => {
    if (typeof f !== 'string') return;
    const segs = parseField(f);
    if (!Array.isArray(segs)) return;
    if (!isFact(segs[0])) {
      add(c, 'BAD_FIELD', p, { field: f, reason: `no fact named ${JSON.stringify(segs[0])}${suggestFact(segs[0])}` });
      return;
    }
    const bad = checkShapePath(segs[0], segs.slice(1));
    if (bad) add(c, 'BAD_FIELD', p, { field: f, reason: bad.reason.replace(/, so json-rules-engine.*$/, '') + suggestField(segs[0], segs.slice(1), bad.suggestion) });
  };
  if (Array.isArray(fields)) fields.forEach((f, i) => one(f, `${ptr}/${i}`));
  else one(fields, ptr);
}

/** {field} placeholders of alert messages (rendered by engine/actions.ts): firing values, step ids, facts */
function checkTemplate(c: RuleCtx, text: string, ptr: string, stepIds: string[]): void {
  for (const m of text.matchAll(/\{([A-Za-z0-9_.\-]+)\}/g)) {
    const segs = m[1].split('.');
    const head = segs[0];
    if (segs.length === 1 && (head === 'key' || head === 'count' || head === 'rule')) continue;
    if (stepIds.includes(head)) continue;
    if (!isFact(head)) {
      add(c, 'UNKNOWN_PLACEHOLDER', ptr, { name: m[1], reason: `no fact or step ${JSON.stringify(head)}${suggestFact(head)}` });
      continue;
    }
    const bad = checkShapePath(head, segs.slice(1));
    if (bad) add(c, 'UNKNOWN_PLACEHOLDER', ptr, { name: m[1], reason: `nothing: ${bad.reason.replace(/, so json-rules-engine.*$/, '')}${suggestField(head, segs.slice(1), bad.suggestion)}` });
  }
}

function suggestFact(name: string): string {
  const s = closest(name, FACT_NAMES);
  return s ? ` (did you mean ${JSON.stringify(s)}?)` : '';
}

/** a duration of the schema's form that is still refused: too large to represent (the schema reports the rest) */
function checkDurationValue(c: RuleCtx, v: unknown, ptr: string, positive = false): void {
  const formed = (typeof v === 'number' && Number.isInteger(v) && v >= 0) || (typeof v === 'string' && /^[0-9]+(ms|s|m|h|d)$/.test(v));
  if (!formed) return;
  const problem = checkDuration(v);
  if (problem) add(c, 'BAD_DURATION', ptr, { reason: problem });
  else if (positive && parseDuration(v as string | number) === 0) add(c, 'BAD_DURATION', ptr, { reason: `within must be greater than 0` });
}

function typesOf(cond: unknown): TypeSet {
  try {
    return isObj(cond) ? inferTypes(cond as ConditionJson) : '*';
  } catch {
    return '*';
  }
}

interface StepInfo {
  id: string;
  types: TypeSet;
}

function checkRule(c: RuleCtx, r: Obj, base: string): void {
  checkCondition(c, r.match, `${base}/match`);
  const matchTypes = typesOf(r.match);
  if (matchTypes !== '*' && matchTypes.size === 0) add(c, 'NEVER_MATCHES', `${base}/match`, { reason: 'its type conditions exclude every event type' });
  let kind = 'plain';
  let steps: StepInfo[] = [];
  let defaultFrom: string | undefined;
  const corr = r.correlation;
  if (isObj(corr) && Object.keys(corr).length > 0) {
    const [k] = Object.keys(corr);
    const body = corr[k];
    kind = k;
    const cp = `${base}/correlation/${esc(k)}`;
    if (isObj(body)) {
      checkFields(c, body.by, `${cp}/by`);
      checkDurationValue(c, body.within, `${cp}/within`, true);
      if (isObj(body.until)) checkCondition(c, body.until.match, `${cp}/until/match`);
      const stepList: [unknown, string, string][] = [];
      if (k === 'sequence' && Array.isArray(body.steps)) body.steps.forEach((s, i) => stepList.push([s, `${cp}/steps/${i}`, `step${i + 1}`]));
      if (k === 'absent') {
        stepList.push([body.first, `${cp}/first`, 'first'], [body.then, `${cp}/then`, 'then']);
      }
      if (k === 'distinct') checkFields(c, body.field, `${cp}/field`);
      const ids = new Set<string>();
      for (const [s, sp, dflt] of stepList) {
        if (!isObj(s)) continue;
        const id = typeof s.id === 'string' ? s.id : dflt;
        if (ids.has(id)) add(c, 'DUPLICATE_STEP', typeof s.id === 'string' ? `${sp}/id` : sp, { id });
        ids.add(id);
        checkCondition(c, s.match, `${sp}/match`, intersect(matchTypes, typesOf(s.match)));
        checkFields(c, s.by, `${sp}/by`);
        if (isObj(s.lacks)) {
          checkFields(c, s.lacks.field, `${sp}/lacks/field`);
          const sh = typeof s.lacks.field === 'string' ? shapeAt(s.lacks.field) : undefined;
          if (sh !== undefined && sh !== 'any' && !(typeof sh === 'object' && 'arr' in sh)) {
            add(c, 'BAD_FIELD', `${sp}/lacks/field`, { field: String(s.lacks.field), reason: 'lacks.field must name an array field (e.g. "modules")' });
          }
          checkFields(c, s.lacks.from, `${sp}/lacks/from`);
        }
        const stepTypes = intersect(matchTypes, typesOf(s.match));
        if (stepTypes !== '*' && stepTypes.size === 0 && !(matchTypes !== '*' && matchTypes.size === 0)) {
          add(c, 'NEVER_MATCHES', `${sp}/match`, { reason: `the step's event types and the rule's match exclude each other` });
        }
        steps.push({ id, types: stepTypes });
      }
      defaultFrom = k === 'absent' ? steps[0]?.id : steps[steps.length - 1]?.id;
    }
  }
  if (Array.isArray(r.actions)) {
    r.actions.forEach((a, i) => {
      if (isObj(a) && typeof a.message === 'string') checkTemplate(c, a.message, `${base}/actions/${i}/message`, steps.map((s) => s.id));
    });
    r.actions.forEach((a, i) => {
      if (!isObj(a) || a.type !== 'verdict') return;
      const ap = `${base}/actions/${i}`;
      checkDurationValue(c, a.ttl, `${ap}/ttl`);
      const allowed = typeof a.op === 'string' ? OP_SUBJECTS[a.op] : undefined;
      if (allowed && typeof a.subject === 'string' && Object.hasOwn(SUBJECT_EVENTS, a.subject) && !allowed.includes(a.subject)) {
        add(c, 'SUBJECT_MISMATCH', `${ap}/subject`, { op: a.op as string, subject: a.subject, allowed: allowed.map((s) => JSON.stringify(s)).join(' or ') });
      }
      let fromTypes: TypeSet = matchTypes;
      if (a.from !== undefined) {
        if (kind !== 'sequence' && kind !== 'absent') add(c, 'FROM_WITHOUT_STEPS', `${ap}/from`, { kind });
        else {
          const st = steps.find((s) => s.id === a.from);
          if (!st) add(c, 'UNKNOWN_STEP', `${ap}/from`, { name: String(a.from), steps: steps.map((s) => s.id).join(', ') });
          else fromTypes = st.types;
        }
      } else if (defaultFrom !== undefined) fromTypes = steps.find((s) => s.id === defaultFrom)?.types ?? '*';
      const needs = typeof a.subject === 'string' && Object.hasOwn(SUBJECT_EVENTS, a.subject) ? SUBJECT_EVENTS[a.subject] : '*';
      if (needs !== '*' && fromTypes !== '*' && ![...fromTypes].some((t) => needs.includes(t))) {
        add(c, 'SUBJECT_UNAVAILABLE', `${ap}/subject`, { subject: a.subject as string, needs: needs.join('/'), types: [...fromTypes].join('/') || 'none' });
      }
    });
  }
  if (isObj(r.kernel)) {
    for (const k of ['module_allowlist', 'module_denylist', 'deny_exec_paths']) checkListRef(c, r.kernel[k], `${base}/kernel/${k}`);
  }
  const hasVerdict = Array.isArray(r.actions) && r.actions.some((a) => isObj(a) && a.type === 'verdict');
  if (r.mode === 'enforce' && !hasVerdict && !isObj(r.kernel)) add(c, 'ENFORCE_WITHOUT_VERDICT', `${base}/mode`);
}

export function validateSemantics(
  docs: RuleDocument[],
  issues: IssueCollector,
  lists: Map<string, ListDef>,
  loc: (file: string, pointer: string) => string,
): void {
  const ops: OperatorContext = { lists: Object.fromEntries([...lists].map(([n, l]) => [n, new Set(l.values)])) };
  const usedLists = new Set<string>();
  const ruleIds = new Map<string, { file: string; pointer: string }>();
  for (const doc of docs) {
    const d = doc.data;
    if (!isObj(d) || !Array.isArray(d.rules)) continue;
    d.rules.forEach((r, i) => {
      if (!isObj(r)) return;
      const base = `/rules/${i}`;
      const id = typeof r.id === 'string' ? r.id : undefined;
      const c: RuleCtx = { file: doc.file, rule: id, ops, usedLists, issues };
      if (id !== undefined) {
        const first = ruleIds.get(id);
        if (first) add(c, 'DUPLICATE_RULE', `${base}/id`, { id, first: loc(first.file, first.pointer) });
        else ruleIds.set(id, { file: doc.file, pointer: `${base}/id` });
      }
      checkRule(c, r, base);
    });
  }
  for (const [name, l] of lists) {
    if (!usedLists.has(name)) issues.add('UNUSED_LIST', { file: l.file, pointer: l.pointer, key: true }, { name });
  }
}
