// Rule regexes run on attacker-controlled strings (file names, argv, env), so they must run in linear time:
// the dialect is RE2's (re2js, a pure-JavaScript RE2), which has no backreferences or lookaround.
// RE2 is ~3-10x slower than V8's RegExp on short simple patterns, so a pattern in a small subset whose
// meaning is the same in both and that V8 cannot backtrack on (no repetition but `?`, at most
// MAX_V8_PATHS ways through the pattern, ASCII only, no `.`, no negated class) runs on V8's RegExp;
// every other pattern runs on RE2. test/operators/regex.test.ts checks the two agree on the subset.
import { RE2JS } from 're2js';

/** longer patterns are refused (RE2 compiles in time linear in the pattern, but an event can supply one) */
export const MAX_REGEX_LENGTH = 4096;
/** a V8 pattern tries at most this many paths from each start position */
const MAX_V8_PATHS = 256;

export interface Regex {
  test(s: string): boolean;
  readonly engine: 'v8' | 're2';
}

export class RegexError extends Error {}

const HINT = 'krsi regexes are RE2 syntax (github.com/google/re2/wiki/Syntax): no backreferences or lookaround, which cannot run in linear time';

/** compile a rule regex; throws RegexError saying why it is refused */
export function compileRegex(source: string): Regex {
  if (source.length > MAX_REGEX_LENGTH) throw new RegexError(`longer than ${MAX_REGEX_LENGTH} characters`);
  let re2: RE2JS;
  try {
    re2 = RE2JS.compile(source);
  } catch (e) {
    throw new RegexError(`${(e as Error).message} (${HINT})`);
  }
  if (v8Safe(source)) {
    const v8 = new RegExp(source);
    return { test: (s) => v8.test(s), engine: 'v8' };
  }
  return { test: (s) => re2.test(s), engine: 're2' };
}

const META = new Set('\\^$.|?*+()[]{}');
const ESCAPES = new Set([...'\\^$.|?*+()[]{}/-', 'd', 'w', 'b', 't', 'n', 'r']);
const CLASS_ESCAPES = new Set([...'\\^$.|?*+()[]{}/-', 'd', 'w', 't', 'n', 'r']);
const printable = (c: string) => c >= ' ' && c <= '~';

/** the pattern is in the subset V8 runs exactly like RE2 and without backtracking blow-up */
export function v8Safe(src: string): boolean {
  let i = 0;
  // each returns the number of paths through what it parsed, or -1 outside the subset
  const alt = (): number => {
    let n = seq();
    while (n >= 0 && src[i] === '|') {
      i++;
      const m = seq();
      n = m < 0 ? -1 : n + m;
    }
    return n > MAX_V8_PATHS ? -1 : n;
  };
  const seq = (): number => {
    let n = 1;
    while (i < src.length && src[i] !== '|' && src[i] !== ')') {
      const assertion = src[i] === '^' || src[i] === '$' || src.startsWith('\\b', i); // V8 refuses them quantified
      let a = atom();
      if (a < 0) return -1;
      if (src[i] === '?') {
        if (assertion) return -1;
        i++;
        a += 1;
      }
      n *= a;
      if (n > MAX_V8_PATHS) return -1;
    }
    return n;
  };
  const atom = (): number => {
    const c = src[i++];
    if (c === '^' || c === '$') return 1;
    if (c === '\\') return ESCAPES.has(src[i++]) ? 1 : -1;
    if (c === '[') return charClass();
    if (c === '(') {
      if (src[i] === '?') {
        if (src[i + 1] !== ':') return -1;
        i += 2;
      }
      const n = alt();
      return n < 0 || src[i++] !== ')' ? -1 : n;
    }
    return printable(c) && !META.has(c) ? 1 : -1;
  };
  const charClass = (): number => {
    if (src[i] === '^' || src[i] === ']') return -1;
    while (i < src.length && src[i] !== ']') {
      const c = src[i++];
      if (c === '\\') {
        if (!CLASS_ESCAPES.has(src[i++])) return -1;
      } else if (!printable(c) || c === '[' || c === '^' || c === '-') return -1;
      else if (src[i] === '-' && src[i + 1] !== ']') {
        const hi = src[i + 1];
        if (!printable(hi) || hi === '\\' || hi === '[' || hi === '^' || hi < c) return -1;
        i += 2;
      }
    }
    return src[i++] === ']' ? 1 : -1;
  };
  const n = alt();
  return n >= 0 && i === src.length;
}
