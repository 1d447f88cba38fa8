// Narrowing a compiled rule set to some rule ids (replay/run --rule, a rule test's "only").
import type { CompiledRuleSet } from './types.ts';

/** ids given that no rule of the set has */
export class UnknownRuleError extends Error {
  constructor(readonly ids: string[], known: string[]) {
    super(`no rule with id ${ids.map((id) => JSON.stringify(id)).join(', ')} (rules: ${known.join(', ')})`);
    this.name = 'UnknownRuleError';
  }
}

/** the set with only the rules of these ids, its event-type index narrowed the same way; an id no rule
 *  has throws UnknownRuleError (naming every such id) */
export function selectRules(set: CompiledRuleSet, ids: string[]): CompiledRuleSet {
  const keep = new Set(ids);
  const known = new Set(set.rules.map((r) => r.id));
  const unknown = ids.filter((id) => !known.has(id));
  if (unknown.length) throw new UnknownRuleError(unknown, [...known]);
  const byType = new Map([...set.byType].map(([t, rules]) => [t, rules.filter((r) => keep.has(r.id))]));
  return { ...set, rules: set.rules.filter((r) => keep.has(r.id)), byType };
}
