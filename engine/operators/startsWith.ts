// startsWith: the fact is a string that starts with the string value.
import { badValue, defineOperator } from './types.ts';

export default defineOperator({
  name: 'startsWith',
  doc: 'a is a string starting with the string b',
  checkValue: (v) => (typeof v === 'string' ? undefined : badValue('the value must be a string')),
  test: (a, b) => typeof a === 'string' && typeof b === 'string' && a.startsWith(b),
});
