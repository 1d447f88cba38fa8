// notInList: the value names a list; the fact is not one of its values (an array fact: no element is).
import { defineOperator } from './types.ts';
import { checkListName, inSet, resolveList, type ListSet } from './inList.ts';

export default defineOperator<ListSet>({
  name: 'notInList',
  doc: 'b names a list and a is not in it (an array a: no element is)',
  checkValue: checkListName,
  prepare: resolveList,
  test: (a, set) => set !== null && !inSet(a, set),
});
