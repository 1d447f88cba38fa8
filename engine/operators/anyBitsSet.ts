// anyBitsSet: the fact is an integer with at least one bit of the value set.
import { defineOperator } from './types.ts';
import { and, checkBits, isBits } from './bits.ts';

export default defineOperator({
  name: 'anyBitsSet',
  doc: 'a is an integer with at least one bit of b set',
  checkValue: checkBits,
  test: (a, b) => isBits(a) && isBits(b) && and(a, b) !== 0,
});
