// endsWith: the fact is a string that ends with the string value.
import { badValue, defineOperator } from './types.ts';

export default defineOperator({
  name: 'endsWith',
  doc: 'a is a string ending with the string b',
  checkValue: (v) => (typeof v === 'string' ? undefined : badValue('the value must be a string')),
  test: (a, b) => typeof a === 'string' && typeof b === 'string' && a.endsWith(b),
});
