// matches: the fact is a string in which the regular expression b finds a match (RE2 syntax, linear time:
// engine/operators/regex.ts), compiled once per condition. "(?i)" makes it case-insensitive.
import { compileRegex, RegexError, type Regex } from './regex.ts';
import { defineOperator } from './types.ts';

function tryCompile(v: unknown): Regex | null {
  if (typeof v !== 'string') return null;
  try {
    return compileRegex(v);
  } catch {
    return null; // a fact-to-fact pattern from an event that RE2 refuses: no match
  }
}

export default defineOperator<Regex | null>({
  name: 'matches',
  doc: 'a is a string in which the regular expression b (RE2 syntax) finds a match',
  checkValue: (v) => {
    if (typeof v !== 'string') return { code: 'BAD_OPERATOR_VALUE', message: 'the value must be a regular expression string' };
    try {
      compileRegex(v);
      return undefined;
    } catch (e) {
      if (!(e instanceof RegexError)) throw e;
      return { code: 'BAD_REGEX', message: e.message };
    }
  },
  prepare: tryCompile,
  test: (a, re) => typeof a === 'string' && re !== null && re.test(a),
});
