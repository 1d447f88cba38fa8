// inList: the value names a list; the fact is one of its values (an array fact: any element is).
import { defineOperator, type OperatorContext, type ValueProblem } from './types.ts';

export type ListSet = Set<string | number> | null;

export function resolveList(v: unknown, ctx: OperatorContext): ListSet {
  return typeof v === 'string' && Object.hasOwn(ctx.lists, v) ? ctx.lists[v] : null;
}

export function checkListName(v: unknown, ctx: OperatorContext): ValueProblem | undefined {
  if (typeof v !== 'string') return { code: 'BAD_OPERATOR_VALUE', message: 'the value must be the name of a list' };
  if (!Object.hasOwn(ctx.lists, v)) return { code: 'UNKNOWN_LIST', message: v };
  return undefined;
}

/** true when a (or, for an array, any element of a) is in the set */
export function inSet(a: unknown, set: Set<unknown>): boolean {
  if (Array.isArray(a)) {
    for (let i = 0; i < a.length; i++) if (set.has(a[i])) return true;
    return false;
  }
  return set.has(a);
}

export default defineOperator<ListSet>({
  name: 'inList',
  doc: 'b names a list and a is in it (an array a: any element is)',
  checkValue: checkListName,
  prepare: resolveList,
  test: (a, set) => set !== null && inSet(a, set),
});
