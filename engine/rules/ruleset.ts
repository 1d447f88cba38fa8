// Stage 3/4 — compile validated rule documents into a CompiledRuleSet, and index rules by event type.
import type { EventType } from '../../signals/events.ts';
import { EVENT_TYPES } from '../../signals/events.ts';
import { parseDuration } from '../../lib/duration.ts';
import type { OperatorContext } from '../operators/index.ts';
import { compileCondition, compileField, compileKey, inferTypes, intersect, typeList, union, type TypeSet } from './compile.ts';
import type { RuleDocument } from './read.ts';
import type { Locate } from './issues.ts';
import type {
  CompiledCorrelation, CompiledRule, CompiledRuleSet, CompiledStep, ConditionJson, CorrelationJson, RuleFileJson, RuleJson, StepJson,
} from './types.ts';

const isTrue = (c: ConditionJson) => 'all' in c && c.all.length === 0;

/** a step's predicate includes the rule's match (one generated function for both) */
function step(ops: OperatorContext, s: StepJson & { lacks?: { field: string; from: string } }, defaultId: string, filter: ConditionJson, filterTypes: TypeSet): CompiledStep & { typeSet: TypeSet } {
  const typeSet = intersect(filterTypes, inferTypes(s.match));
  const out: CompiledStep & { typeSet: TypeSet } = {
    id: s.id ?? defaultId,
    types: typeList(typeSet),
    match: compileCondition(isTrue(filter) ? s.match : { all: [filter, s.match] }, ops),
    typeSet,
  };
  if (s.by) out.key = compileKey(s.by);
  if (s.lacks) out.lacks = { field: compileField(s.lacks.field), from: compileField(s.lacks.from) };
  return out;
}

function untilStep(ops: OperatorContext, u: { match: ConditionJson } | undefined): (CompiledStep & { typeSet: TypeSet }) | undefined {
  if (!u) return undefined;
  const typeSet = inferTypes(u.match);
  return { id: 'until', types: typeList(typeSet), match: compileCondition(u.match, ops), typeSet };
}

function strip<T extends { typeSet?: TypeSet }>(s: T): Omit<T, 'typeSet'> {
  const { typeSet: _, ...rest } = s;
  return rest;
}

function correlation(ops: OperatorContext, c: CorrelationJson, match: ConditionJson, matchTypes: TypeSet): { corr: CompiledCorrelation; types: TypeSet } {
  if ('sequence' in c) {
    const b = c.sequence;
    const steps = b.steps.map((s, i) => step(ops, s, `step${i + 1}`, match, matchTypes));
    const until = untilStep(ops, b.until);
    let types: TypeSet = new Set();
    for (const s of steps) types = union(types, s.typeSet);
    if (until) types = union(types, until.typeSet);
    return {
      corr: { kind: 'sequence', key: compileKey(b.by), keyFields: b.by, within: parseDuration(b.within), steps: steps.map(strip), until: until && strip(until) },
      types,
    };
  }
  if ('count' in c || 'distinct' in c) {
    const until = untilStep(ops, 'count' in c ? c.count.until : c.distinct.until);
    const types = until ? union(matchTypes, until.typeSet) : matchTypes;
    if ('count' in c) {
      const b = c.count;
      return { corr: { kind: 'count', key: compileKey(b.by), keyFields: b.by, within: parseDuration(b.within), threshold: b.threshold, until: until && strip(until) }, types };
    }
    const b = c.distinct;
    return {
      corr: {
        kind: 'distinct', key: compileKey(b.by), keyFields: b.by, within: parseDuration(b.within), threshold: b.threshold, field: compileField(b.field), until: until && strip(until),
      },
      types,
    };
  }
  const b = c.absent;
  const first = step(ops, b.first, 'first', match, matchTypes);
  const then = step(ops, b.then, 'then', match, matchTypes);
  const until = untilStep(ops, b.until);
  const types = union(first.typeSet, then.typeSet);
  return {
    corr: { kind: 'absent', key: b.by ? compileKey(b.by) : undefined, keyFields: b.by ?? [], within: parseDuration(b.within), first: strip(first), then: strip(then), until: until && strip(until) },
    types: until ? union(types, until.typeSet) : types,
  };
}

export function compileRule(r: RuleJson, ops: OperatorContext, loc: CompiledRule['loc']): CompiledRule {
  const match = compileCondition(r.match, ops);
  const matchTypes = inferTypes(r.match);
  let types = matchTypes;
  let corr: CompiledCorrelation | undefined;
  if (r.correlation) {
    const c = correlation(ops, r.correlation, r.match, matchTypes);
    corr = c.corr;
    types = c.types;
  }
  return {
    id: r.id,
    description: r.description,
    tags: r.tags,
    severity: r.severity,
    mode: r.mode ?? 'monitor',
    types: typeList(types),
    match,
    correlation: corr,
    actions: r.actions,
    ttls: r.actions.map((a) => (a.type === 'verdict' ? parseDuration(a.ttl) : 0)),
    kernel: r.kernel,
    source: r,
    loc,
  };
}

/** stage 4 — index: event type -> rules that can match it, in load order */
export function indexByType(rules: CompiledRule[]): Map<EventType, CompiledRule[]> {
  const byType = new Map<EventType, CompiledRule[]>(EVENT_TYPES.map((t) => [t, []]));
  for (const r of rules) {
    for (const t of r.types === '*' ? EVENT_TYPES : r.types) byType.get(t)!.push(r);
  }
  return byType;
}

/** compile validated documents (enabled rules only) */
export function buildRuleSet(docs: RuleDocument[], lists: Map<string, { values: (string | number)[] }>, locate: Locate): CompiledRuleSet {
  const setLists: Record<string, Set<string | number>> = {};
  for (const [name, l] of lists) setLists[name] = new Set(l.values);
  const ops: OperatorContext = { lists: setLists };
  const rules: CompiledRule[] = [];
  for (const doc of docs) {
    const d = doc.data as RuleFileJson;
    d.rules.forEach((r, i) => {
      if (r.enabled === false) return;
      const pointer = `/rules/${i}`;
      const at = locate({ file: doc.file, pointer });
      rules.push(compileRule(r, ops, { file: doc.file, line: at.line, column: at.column, pointer }));
    });
  }
  return { rules, lists: setLists, byType: indexByType(rules) };
}
