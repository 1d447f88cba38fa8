// json-rules-engine 7's default operators (dist/engine-default-operators.js), reproduced exactly for
// the fast path. The oracle (engine/rules/jre.ts) uses json-rules-engine's own implementations, so the
// differential test (test/rules/differential.test.ts) checks these against the real thing.
// Where json-rules-engine throws (e.g. `in` against a right-hand side without indexOf), these return false.
import { badValue, defineOperator, type OperatorDef } from './types.ts';

/** json-rules-engine's numberValidator: Number.parseFloat(v).toString() !== 'NaN', without allocating */
export function parsesAsNumber(v: unknown): boolean {
  if (typeof v === 'number') return v === v;
  return !Number.isNaN(Number.parseFloat(v as string));
}

function hasIndexOf(b: unknown): b is { indexOf(x: unknown): number } {
  return typeof b === 'string' || Array.isArray(b);
}

const arrayValue = (v: unknown) => (Array.isArray(v) ? undefined : badValue('the value must be an array'));
const numberValue = (v: unknown) =>
  typeof v === 'number' ? undefined : badValue('the value must be a number');

export const equal = defineOperator({ name: 'equal', doc: 'a === b', test: (a, b) => a === b });
export const notEqual = defineOperator({ name: 'notEqual', doc: 'a !== b', test: (a, b) => a !== b });
export const inOp = defineOperator({
  name: 'in',
  doc: 'the array b includes a',
  checkValue: arrayValue,
  test: (a, b) => (hasIndexOf(b) ? b.indexOf(a) > -1 : false),
});
export const notIn = defineOperator({
  name: 'notIn',
  doc: 'the array b does not include a',
  checkValue: arrayValue,
  test: (a, b) => (hasIndexOf(b) ? b.indexOf(a) === -1 : false),
});
export const contains = defineOperator({
  name: 'contains',
  doc: 'a is an array that includes b',
  accepts: Array.isArray,
  test: (a, b) => (a as unknown[]).indexOf(b) > -1,
});
export const doesNotContain = defineOperator({
  name: 'doesNotContain',
  doc: 'a is an array that does not include b',
  accepts: Array.isArray,
  test: (a, b) => (a as unknown[]).indexOf(b) === -1,
});
export const lessThan = defineOperator({
  name: 'lessThan',
  doc: 'a parses as a number and a < b',
  accepts: parsesAsNumber,
  checkValue: numberValue,
  test: (a, b) => (a as number) < (b as number),
});
export const lessThanInclusive = defineOperator({
  name: 'lessThanInclusive',
  doc: 'a parses as a number and a <= b',
  accepts: parsesAsNumber,
  checkValue: numberValue,
  test: (a, b) => (a as number) <= (b as number),
});
export const greaterThan = defineOperator({
  name: 'greaterThan',
  doc: 'a parses as a number and a > b',
  accepts: parsesAsNumber,
  checkValue: numberValue,
  test: (a, b) => (a as number) > (b as number),
});
export const greaterThanInclusive = defineOperator({
  name: 'greaterThanInclusive',
  doc: 'a parses as a number and a >= b',
  accepts: parsesAsNumber,
  checkValue: numberValue,
  test: (a, b) => (a as number) >= (b as number),
});

export const BUILTIN_OPERATORS: OperatorDef<any>[] = [
  equal, notEqual, inOp, notIn, contains, doesNotContain, lessThan, lessThanInclusive, greaterThan, greaterThanInclusive,
];
