// Condition trees -> one generated JavaScript function per tree (new Function). Each tree gets its own
// call sites, so V8 sees them monomorphic and inlines the operators; paths become property loads.
// Semantics are exactly those of the closure compiler in compile.ts (json-rules-engine's), and both
// are checked against json-rules-engine by test/rules/differential.test.ts.
// Only literals (JSON.stringify'd primitives) and references into a constants array `k` reach the
// generated source: no rule text is ever spliced in as code.
import { OPERATORS, type OperatorContext } from '../operators/index.ts';
import { inSet } from '../operators/inList.ts';
import type { ConditionJson, Predicate } from './types.ts';
import { pathSteps, safeName, walk } from './paths.ts';

type Leaf = Extract<ConditionJson, { fact: string }>;

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

const isPrimitive = (v: unknown) => v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));

class Gen {
  readonly k: unknown[] = [];
  vars = 0;
  constructor(readonly ctx: OperatorContext, readonly fallback: (c: Leaf) => Predicate) {}

  ref(v: unknown): string {
    let i = this.k.indexOf(v);
    if (i < 0) i = this.k.push(v) - 1;
    return `k[${i}]`;
  }
  lit(v: unknown): string {
    return isPrimitive(v) ? JSON.stringify(v) : this.ref(v);
  }
  tmp(): string {
    return `v${this.vars++}`;
  }
  prop(obj: string, name: string): string {
    return IDENT.test(name) ? `${obj}.${name}` : `${obj}[${JSON.stringify(name)}]`;
  }

  /** expression for the fact's value at path (json-rules-engine's almanac + jsonpath-plus semantics) */
  getter(fact: string, segs: string[] | undefined): string {
    const top = this.prop('f', fact);
    if (!segs || segs.length === 0) return top;
    const v = this.tmp();
    let rest: string;
    if (!segs.every(safeName)) {
      rest = `${this.ref(walk)}(${v}, ${this.ref(segs)})`;
    } else {
      rest = `(${v} = ${this.prop(v, segs[0])}`;
      for (let i = 1; i < segs.length; i++) rest += `, ${v} ? (${v} = ${this.prop(v, segs[i])}` ;
      for (let i = 1; i < segs.length; i++) rest += `) : undefined`;
      rest += ')';
    }
    return `(${v} = ${top}, ${v} === null || typeof ${v} !== "object" ? ${v} : ${rest})`;
  }

  leaf(c: Leaf): string {
    const op = OPERATORS.get(c.operator);
    if (!op) throw new Error(`unknown operator ${c.operator}`);
    const value = c.value;
    if (value !== null && typeof value === 'object' && Object.prototype.hasOwnProperty.call(value, 'fact')) {
      return `${this.ref(this.fallback(c))}(f)`; // fact-to-fact: the closure compiler's version
    }
    const segs = c.path === undefined ? undefined : pathSteps(c.path);
    const get = this.getter(c.fact, segs);
    switch (op.name) {
      case 'equal':
        return `(${get} === ${this.lit(value)})`;
      case 'notEqual':
        return `(${get} !== ${this.lit(value)})`;
      case 'in':
      case 'notIn': {
        if (!Array.isArray(value)) break;
        const neg = op.name === 'notIn';
        if (value.length > 6 && value.every((x) => x === null || typeof x !== 'object')) {
          // Set.has is SameValueZero, indexOf strict equality: they differ only on NaN
          const a = this.tmp();
          const set = this.ref(new Set(value));
          return neg ? `(${a} = ${get}, ${a} !== ${a} || !${set}.has(${a}))` : `(${a} = ${get}, ${a} === ${a} && ${set}.has(${a}))`;
        }
        if (value.length <= 6 && value.every(isPrimitive)) {
          const a = this.tmp();
          const tests = value.map((x) => `${a} === ${JSON.stringify(x)}`);
          const any = tests.length ? tests.join(' || ') : 'false';
          return neg ? `(${a} = ${get}, !(${any}))` : `(${a} = ${get}, (${any}))`;
        }
        return `(${this.ref(value)}.indexOf(${get}) ${neg ? '=== -1' : '> -1'})`;
      }
      case 'inList':
      case 'notInList': {
        const set = op.prepare!(value, this.ctx);
        if (set === null) return 'false';
        return `${op.name === 'notInList' ? '!' : ''}${this.ref(inSet)}(${get}, ${this.ref(set)})`;
      }
    }
    const p = op.prepare ? op.prepare(value, this.ctx) : value;
    const test = this.ref(op.test);
    if (!op.accepts) return `${test}(${get}, ${this.lit(p)})`;
    const a = this.tmp();
    return `(${a} = ${get}, ${this.ref(op.accepts)}(${a}) && ${test}(${a}, ${this.lit(p)}))`;
  }

  cond(c: ConditionJson): string {
    if ('all' in c) return c.all.length === 0 ? 'true' : `(${c.all.map((x) => this.cond(x)).join(' && ')})`;
    if ('any' in c) return c.any.length === 0 ? 'true' : `(${c.any.map((x) => this.cond(x)).join(' || ')})`;
    if ('not' in c) return `!${this.cond(c.not)}`;
    return this.leaf(c);
  }
}

/** generate the predicate for a validated condition tree */
export function generatePredicate(c: ConditionJson, ctx: OperatorContext, fallback: (c: Leaf) => Predicate): Predicate {
  const g = new Gen(ctx, fallback);
  const body = g.cond(c);
  const vars = Array.from({ length: g.vars }, (_, i) => `v${i}`);
  const src = `return function krsiPredicate(f) {${vars.length ? ` let ${vars.join(', ')};` : ''} return ${body}; };`;
  return new Function('k', src)(g.k) as Predicate;
}
