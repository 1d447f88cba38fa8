// bitsSet: the fact is an integer with all bits of the value set (e.g. prot & PROT_WRITE|PROT_EXEC).
import { defineOperator } from './types.ts';
import { and, checkBits, isBits } from './bits.ts';

export default defineOperator({
  name: 'bitsSet',
  doc: 'a is an integer with all bits of b set',
  checkValue: checkBits,
  test: (a, b) => isBits(a) && isBits(b) && and(a, b) === b,
});
