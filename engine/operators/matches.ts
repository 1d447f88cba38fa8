// matches: the fact is a string matching a JavaScript regular expression, compiled once per condition.
// A leading "(?i)" makes it case-insensitive (JavaScript has no inline flags).
import { defineOperator } from './types.ts';

export function compileRegex(source: string): RegExp {
  if (source.startsWith('(?i)')) return new RegExp(source.slice(4), 'i');
  return new RegExp(source);
}

function tryCompile(v: unknown): RegExp | null {
  if (typeof v !== 'string') return null;
  try {
    return compileRegex(v);
  } catch {
    return null;
  }
}

export default defineOperator<RegExp | null>({
  name: 'matches',
  doc: 'a is a string matching the regular expression b',
  checkValue: (v) => {
    if (typeof v !== 'string') return { code: 'BAD_OPERATOR_VALUE', message: 'the value must be a regular expression string' };
    try {
      compileRegex(v);
      return undefined;
    } catch (e) {
      return { code: 'BAD_REGEX', message: (e as Error).message };
    }
  },
  prepare: tryCompile,
  test: (a, re) => typeof a === 'string' && re !== null && re.test(a),
});
