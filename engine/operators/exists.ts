// exists: value true — the fact is neither undefined nor null; value false — it is undefined or null.
import { badValue, defineOperator } from './types.ts';

export default defineOperator({
  name: 'exists',
  doc: 'b true: a is not undefined/null; b false: a is undefined/null',
  checkValue: (v) => (typeof v === 'boolean' ? undefined : badValue('the value must be true or false')),
  test: (a, b) => (b === true ? a !== undefined && a !== null : b === false ? a === undefined || a === null : false),
});
