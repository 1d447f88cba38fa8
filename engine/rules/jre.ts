// json-rules-engine itself, with krsi's custom operators registered (the same definitions the fast path
// uses, engine/operators/*). Two uses:
//  (a) the oracle: evaluate one condition tree for one facts object (differential tests);
//  (b) the benchmark baseline: one Engine holding every rule's per-event matches, engine.run per event
//      ("the straightforward design", no type index, a Promise chain per event).
import { Engine, Operator, type TopLevelCondition } from 'json-rules-engine';
import { CUSTOM_OPERATORS, type OperatorContext } from '../operators/index.ts';
import type { CompiledRuleSet, ConditionJson, Facts } from './types.ts';

export const JRE_OPTIONS = { allowUndefinedFacts: true } as const;

/** krsi's custom operators as json-rules-engine Operators (prepare is memoized per right-hand value) */
export function jreOperators(ctx: OperatorContext): Operator[] {
  return CUSTOM_OPERATORS.map((def) => {
    const prepare = def.prepare;
    if (!prepare) return new Operator(def.name, (a: unknown, b: unknown) => def.test(a, b), def.accepts);
    const memo = new Map<unknown, unknown>();
    const cb = (a: unknown, b: unknown) => {
      if (!memo.has(b)) memo.set(b, prepare(b, ctx));
      return def.test(a, memo.get(b));
    };
    return new Operator(def.name, cb, def.accepts);
  });
}

export function newJreEngine(ctx: OperatorContext): Engine {
  const engine = new Engine([], JRE_OPTIONS);
  for (const op of jreOperators(ctx)) engine.addOperator(op);
  return engine;
}

/** the oracle: json-rules-engine's verdict on condition trees (one cached Engine per tree) */
export class JreOracle {
  private engines = new Map<ConditionJson, Engine>();
  constructor(private ctx: OperatorContext = { lists: {} }) {}

  /** true when json-rules-engine says the condition holds; rejects when json-rules-engine throws */
  async evaluate(cond: ConditionJson, facts: Facts | Record<string, unknown>): Promise<boolean> {
    let engine = this.engines.get(cond);
    if (!engine) {
      engine = newJreEngine(this.ctx);
      engine.addRule({ conditions: structuredClone(cond) as TopLevelCondition, event: { type: 'match' } });
      this.engines.set(cond, engine);
    }
    const { events } = await engine.run(facts as Record<string, unknown>);
    return events.length > 0;
  }
}

/** one-shot oracle evaluation */
export function evaluateWithJre(cond: ConditionJson, facts: Facts | Record<string, unknown>, ctx?: OperatorContext): Promise<boolean> {
  return new JreOracle(ctx).evaluate(cond, facts);
}

export interface JreBaseline {
  /** evaluates every rule's per-event conditions; resolves with the names that matched ("rule" or "rule#step") */
  run(facts: Facts): Promise<string[]>;
  /** number of json-rules-engine rules in the engine */
  readonly size: number;
}

/** the benchmark baseline: all rules' per-event matches in one json-rules-engine Engine */
export function createJreBaseline(set: CompiledRuleSet): JreBaseline {
  const engine = newJreEngine({ lists: set.lists });
  let size = 0;
  const add = (name: string, conditions: ConditionJson) => {
    engine.addRule({ name, conditions: structuredClone(conditions) as TopLevelCondition, event: { type: name } });
    size++;
  };
  for (const r of set.rules) {
    const src = r.source;
    const c = src.correlation;
    const withMatch = (m: ConditionJson): ConditionJson => ({ all: [src.match, m] });
    if (!c) add(r.id, src.match);
    else if ('sequence' in c) {
      c.sequence.steps.forEach((s, i) => add(`${r.id}#${s.id ?? `step${i + 1}`}`, withMatch(s.match)));
      if (c.sequence.until) add(`${r.id}#until`, c.sequence.until.match);
    } else if ('absent' in c) {
      add(`${r.id}#${c.absent.first.id ?? 'first'}`, withMatch(c.absent.first.match));
      add(`${r.id}#${c.absent.then.id ?? 'then'}`, withMatch(c.absent.then.match));
      if (c.absent.until) add(`${r.id}#until`, c.absent.until.match);
    } else {
      add(r.id, src.match);
      const until = 'count' in c ? c.count.until : c.distinct.until;
      if (until) add(`${r.id}#until`, until.match);
    }
  }
  return {
    size,
    async run(facts) {
      const { events } = await engine.run(facts as Record<string, unknown>);
      return events.map((e) => e.type);
    },
  };
}
