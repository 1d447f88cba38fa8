// Stage 3 — compile: conditions -> predicate closures (no allocation per call: paths pre-split, lists
// are Sets, regexes compiled once), key fields -> key functions, durations -> ns.
// The semantics are json-rules-engine 7's (see engine/rules/jre.ts and test/rules/differential.test.ts):
//  - a fact missing from the event is undefined (allowUndefinedFacts);
//  - `path` is resolved like jsonpath-plus with wrap:false, and only when the fact's value is a non-null
//    object (otherwise the fact's value itself is compared);
//  - an operator's factValueValidator failing makes the comparison false;
//  - all([]) and any([]) are true; not(c) is !c.
import { EVENT_TYPES, type EventType } from '../../signals/events.ts';
import { OPERATORS, type OperatorContext } from '../operators/index.ts';
import { inSet } from '../operators/inList.ts';
import type { ConditionJson, Facts, KeyFn, Predicate } from './types.ts';
import { generatePredicate } from './codegen.ts';
import { parsePath, pathSteps, safeName, walk } from './paths.ts';

export { parsePath };

type Getter = (f: Facts) => unknown;
type Obj = Record<string, unknown>;

// ---------- paths (parsing and step semantics: paths.ts) ----------

/** the value of `fact` at `path`, as json-rules-engine's almanac.factValue computes it */
export function compileGetter(fact: string, path?: string): Getter {
  if (!path) return (f) => (f as Obj)[fact];
  const segs = pathSteps(path);
  if (!segs.every(safeName)) {
    return (f) => {
      const v = (f as Obj)[fact];
      return v === null || typeof v !== 'object' ? v : walk(v, segs);
    };
  }
  if (segs.length === 0) return (f) => (f as Obj)[fact];
  if (segs.length === 1) {
    const s0 = segs[0];
    return (f) => {
      const v = (f as Obj)[fact];
      return v === null || typeof v !== 'object' ? v : (v as Obj)[s0];
    };
  }
  if (segs.length === 2) {
    const s0 = segs[0], s1 = segs[1];
    return (f) => {
      const v = (f as Obj)[fact];
      if (v === null || typeof v !== 'object') return v;
      const w = (v as Obj)[s0];
      return w ? (w as Obj)[s1] : undefined;
    };
  }
  return (f) => {
    let v = (f as Obj)[fact];
    if (v === null || typeof v !== 'object') return v;
    for (let i = 0; i < segs.length; i++) {
      if (!v) return undefined;
      v = (v as Obj)[segs[i]];
    }
    return v;
  };
}

// ---------- dotted fields (correlation keys, distinct.field, lacks) ----------

const FIELD_RE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\.[0-9]+)*$/;

export function parseField(field: string): string[] | { error: string } {
  if (typeof field !== 'string' || !FIELD_RE.test(field)) return { error: 'expected a dotted field path such as "pid" or "exe.ino"' };
  return field.split('.');
}

/** plain property access along a dotted path; undefined when any step is missing */
export function compileField(field: string): Getter {
  const p = parseField(field);
  if (!Array.isArray(p)) throw new Error(`bad field ${field}: ${p.error}`);
  const segs = p;
  const safe = segs.every(safeName);
  if (segs.length === 1 && safe) {
    const s0 = segs[0];
    return (f) => (f as Obj)[s0];
  }
  if (segs.length === 2 && safe) {
    const s0 = segs[0], s1 = segs[1];
    return (f) => {
      const v = (f as Obj)[s0];
      return v === null || v === undefined ? undefined : (v as Obj)[s1];
    };
  }
  return (f) => {
    let v: unknown = f;
    for (let i = 0; i < segs.length; i++) {
      if (v === null || v === undefined) return undefined;
      if (!safe && !Object.hasOwn(Object(v), segs[i])) return undefined;
      v = (v as Obj)[segs[i]];
    }
    return v;
  };
}

function keyPart(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** key from fields: their values joined by \x1f; undefined when any is missing */
export function compileKey(fields: string[]): KeyFn {
  const gets = fields.map(compileField);
  if (gets.length === 1) {
    const g = gets[0];
    return (f) => {
      const v = g(f);
      return typeof v === 'number' ? String(v) : typeof v === 'string' ? v : keyPart(v);
    };
  }
  return (f) => {
    let key = '';
    for (let i = 0; i < gets.length; i++) {
      const part = keyPart(gets[i](f));
      if (part === undefined) return undefined;
      key = i === 0 ? part : key + '\x1f' + part;
    }
    return key;
  };
}

// ---------- conditions ----------

const TRUE: Predicate = () => true;
const FALSE: Predicate = () => false;

/** json-rules-engine's test for a fact reference on the value side */
export function isFactRef(v: unknown): v is { fact: string; path?: string; params?: unknown } {
  return v !== null && typeof v === 'object' && Object.prototype.hasOwnProperty.call(v, 'fact');
}

type Leaf = Extract<ConditionJson, { fact: string }>;

function compileLeaf(c: Leaf, ctx: OperatorContext): Predicate {
  const op = OPERATORS.get(c.operator);
  if (!op) throw new Error(`unknown operator ${c.operator}`);
  const get = compileGetter(c.fact, c.path);
  const accepts = op.accepts;
  const test = op.test;

  if (isFactRef(c.value)) {
    const getB = compileGetter(c.value.fact, c.value.path);
    const prepare = op.prepare;
    if (prepare) {
      // memoize the last prepared right-hand side (a regex, a list) so repeated values cost nothing
      let lastB: unknown = {};
      let lastP: unknown;
      return (f) => {
        const a = get(f);
        if (accepts && !accepts(a)) return false;
        const b = getB(f);
        if (b !== lastB) {
          lastP = prepare(b, ctx);
          lastB = b;
        }
        return test(a, lastP);
      };
    }
    if (accepts) return (f) => { const a = get(f); return accepts(a) && test(a, getB(f)); };
    return (f) => test(get(f), getB(f));
  }

  const value = c.value;
  const p = op.prepare ? op.prepare(value, ctx) : value;
  switch (op.name) {
    case 'equal':
      return (f) => get(f) === value;
    case 'notEqual':
      return (f) => get(f) !== value;
    case 'in':
    case 'notIn': {
      if (!Array.isArray(value)) break;
      const negate = op.name === 'notIn';
      if (value.length > 6 && value.every((x) => x === null || typeof x !== 'object')) {
        // Set.has is SameValueZero; indexOf is strict equality: they differ only on NaN
        const set = new Set(value);
        return negate ? (f) => { const a = get(f); return a !== a || !set.has(a); } : (f) => { const a = get(f); return a === a && set.has(a); };
      }
      return negate ? (f) => value.indexOf(get(f)) === -1 : (f) => value.indexOf(get(f)) > -1;
    }
    case 'inList':
    case 'notInList': {
      const set = p as Set<unknown> | null;
      if (set === null) return FALSE;
      return op.name === 'inList' ? (f) => inSet(get(f), set) : (f) => !inSet(get(f), set);
    }
  }
  if (accepts) return (f) => { const a = get(f); return accepts(a) && test(a, p); };
  return (f) => test(get(f), p);
}

function allOf(ps: Predicate[]): Predicate {
  switch (ps.length) {
    case 0: return TRUE;
    case 1: return ps[0];
    case 2: { const [a, b] = ps; return (f) => a(f) && b(f); }
    case 3: { const [a, b, c] = ps; return (f) => a(f) && b(f) && c(f); }
    default:
      return (f) => {
        for (let i = 0; i < ps.length; i++) if (!ps[i](f)) return false;
        return true;
      };
  }
}

function anyOf(ps: Predicate[]): Predicate {
  switch (ps.length) {
    case 0: return TRUE; // json-rules-engine: an empty any is true
    case 1: return ps[0];
    case 2: { const [a, b] = ps; return (f) => a(f) || b(f); }
    case 3: { const [a, b, c] = ps; return (f) => a(f) || b(f) || c(f); }
    default:
      return (f) => {
        for (let i = 0; i < ps.length; i++) if (ps[i](f)) return true;
        return false;
      };
  }
}

/** compile a validated condition tree into a tree of closures */
export function compileConditionClosures(c: ConditionJson, ctx: OperatorContext): Predicate {
  if ('all' in c) return allOf(c.all.map((x) => compileConditionClosures(x, ctx)));
  if ('any' in c) return anyOf(c.any.map((x) => compileConditionClosures(x, ctx)));
  if ('not' in c) {
    const inner = compileConditionClosures(c.not, ctx);
    return (f) => !inner(f);
  }
  return compileLeaf(c, ctx);
}

/** compile a validated condition tree into one generated function (closures for fact-to-fact leaves) */
export function compileCondition(c: ConditionJson, ctx: OperatorContext): Predicate {
  if ('all' in c && c.all.length === 0) return TRUE;
  return generatePredicate(c, ctx, (leaf) => compileLeaf(leaf, ctx));
}


// ---------- event types a condition can match ----------

export type TypeSet = ReadonlySet<EventType> | '*';

interface Inferred {
  types: TypeSet;
  /** the condition is true exactly when the event's type is in `types` */
  exact: boolean;
}

const ANY_TYPE: Inferred = { types: '*', exact: false };

function complement(s: ReadonlySet<EventType>): Set<EventType> {
  return new Set(EVENT_TYPES.filter((t) => !s.has(t)));
}

export function intersect(a: TypeSet, b: TypeSet): TypeSet {
  if (a === '*') return b;
  if (b === '*') return a;
  return new Set([...a].filter((t) => b.has(t)));
}

export function union(a: TypeSet, b: TypeSet): TypeSet {
  if (a === '*' || b === '*') return '*';
  return new Set([...a, ...b]);
}

function inferCond(c: ConditionJson): Inferred {
  if ('all' in c) {
    let types: TypeSet = '*';
    let exact = true;
    for (const x of c.all) {
      const r = inferCond(x);
      types = intersect(types, r.types);
      exact &&= r.exact;
    }
    return { types, exact: exact && c.all.length > 0 };
  }
  if ('any' in c) {
    if (c.any.length === 0) return ANY_TYPE;
    let types: TypeSet = new Set();
    let exact = true;
    for (const x of c.any) {
      const r = inferCond(x);
      types = union(types, r.types);
      exact &&= r.exact;
    }
    return { types, exact: exact && types !== '*' };
  }
  if ('not' in c) {
    const r = inferCond(c.not);
    return r.exact && r.types !== '*' ? { types: complement(r.types), exact: true } : ANY_TYPE;
  }
  if (c.fact !== 'type' || c.path || isFactRef(c.value)) return ANY_TYPE;
  const known = (vs: unknown[]) => new Set(EVENT_TYPES.filter((t) => vs.includes(t)));
  switch (c.operator) {
    case 'equal': return { types: known([c.value]), exact: true };
    case 'notEqual': return { types: complement(known([c.value])), exact: true };
    case 'in': return Array.isArray(c.value) ? { types: known(c.value), exact: true } : ANY_TYPE;
    case 'notIn': return Array.isArray(c.value) ? { types: complement(known(c.value)), exact: true } : ANY_TYPE;
    default: return ANY_TYPE;
  }
}

/** the event types a condition can be true for ('*' when not inferable) */
export function inferTypes(c: ConditionJson): TypeSet {
  return inferCond(c).types;
}

/** as the compiled form stores it: a sorted array, or '*' */
export function typeList(t: TypeSet): EventType[] | '*' {
  return t === '*' ? '*' : EVENT_TYPES.filter((x) => t.has(x));
}
