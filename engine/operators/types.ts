// The shape of a condition operator. Each operator is defined once (one file each) and used by both
// the compiled fast path (engine/rules/compile.ts) and the json-rules-engine oracle/baseline
// (engine/rules/jre.ts), so the two can only differ where json-rules-engine itself differs.

export interface OperatorContext {
  /** the rule set's named lists */
  lists: Record<string, Set<string | number>>;
}

/** a problem with a condition's literal value, found at load time */
export interface ValueProblem {
  code: 'BAD_OPERATOR_VALUE' | 'BAD_REGEX' | 'UNKNOWN_LIST';
  message: string;
}

export interface OperatorDef<P = unknown> {
  name: string;
  /** one line for docs */
  doc: string;
  /** json-rules-engine's factValueValidator: when it returns false the result is false */
  accepts?: (factValue: unknown) => boolean;
  /** load-time check of a literal condition value */
  checkValue?: (value: unknown, ctx: OperatorContext) => ValueProblem | undefined;
  /** turn the condition value into what test() needs: once per condition for literal values,
   *  per evaluation for fact-to-fact values. Must not throw. */
  prepare?: (value: unknown, ctx: OperatorContext) => P;
  /** the comparison; must return a boolean and never throw */
  test: (factValue: unknown, prepared: P) => boolean;
}

export function defineOperator<P>(def: OperatorDef<P>): OperatorDef<P> {
  return def;
}

export function badValue(message: string): ValueProblem {
  return { code: 'BAD_OPERATOR_VALUE', message };
}
