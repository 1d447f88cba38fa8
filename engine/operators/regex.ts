// Rule regexes run on attacker-controlled strings (file names, argv, env), so they must run in linear time:
// the dialect is RE2's (re2js, a pure-JavaScript RE2), which has no backreferences or lookaround.
// RE2 is ~3-10x slower than V8's RegExp on short simple patterns, so a pattern in a small subset whose
// meaning is the same in both and that V8 cannot backtrack on (no repetition but `?`, at most
// MAX_V8_PATHS ways through the pattern of MAX_V8_WORK atoms in all, ASCII only, no `.`, no negated
// class) runs on V8's RegExp; every other pattern runs on RE2. test/operators/regex.test.ts checks the two
// agree on the subset; bench/regex.ts measures both.
import { RE2JS } from 're2js';

/** longer patterns are refused (RE2 compiles in time linear in the pattern, but an event can supply one) */
export const MAX_REGEX_LENGTH = 4096;
/** a V8 pattern has at most this many paths, of at most this many atoms in all: the most it can try from
 *  one start position, so its time is linear in the string with a small factor */
const MAX_V8_PATHS = 256;
const MAX_V8_WORK = 256;

/** either engine's compiled pattern, used as is: a wrapper cost ~8% of replay throughput */
export type Regex = RegExp | RE2JS;

export function regexEngine(r: Regex): 'v8' | 're2' {
  return r instanceof RegExp ? 'v8' : 're2';
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
  return v8Safe(source) ? new RegExp(source) : re2; // no g or y flag: test() keeps no state
}

const META = new Set('\\^$.|?*+()[]{}');
const ESCAPES = new Set([...'\\^$.|?*+()[]{}/-', 'd', 'w', 'b', 't', 'n', 'r']);
const CLASS_ESCAPES = new Set([...'\\^$.|?*+()[]{}/-', 'd', 'w', 't', 'n', 'r']);
const printable = (c: string) => c >= ' ' && c <= '~';

/** the pattern is in the subset V8 runs exactly like RE2 and without backtracking blow-up */
export function v8Safe(src: string): boolean {
  let i = 0;
  // each returns the paths through what it parsed and their total length in atoms (the most a backtracking
  // engine can try from one start position), or null outside the subset or over the limits
  type Cost = { paths: number; work: number } | null;
  const LEAF = { paths: 1, work: 1 };
  const within = (c: Cost): Cost => (c && c.paths <= MAX_V8_PATHS && c.work <= MAX_V8_WORK ? c : null);
  const alt = (): Cost => {
    let c = seq();
    while (c && src[i] === '|') {
      i++;
      const d = seq();
      c = d && within({ paths: c.paths + d.paths, work: c.work + d.work });
    }
    return c;
  };
  const seq = (): Cost => {
    let c: Cost = { paths: 1, work: 0 };
    while (c && i < src.length && src[i] !== '|' && src[i] !== ')') {
      const assertion = src[i] === '^' || src[i] === '$' || src.startsWith('\\b', i); // V8 refuses them quantified
      let a = atom();
      if (!a) return null;
      if (src[i] === '?') {
        if (assertion) return null;
        i++;
        a = { paths: a.paths + 1, work: a.work };
      }
      // every path of what came before continues with every path of a
      c = within({ paths: c.paths * a.paths, work: c.work * a.paths + a.work * c.paths });
    }
    return c;
  };
  const atom = (): Cost => {
    const c = src[i++];
    if (c === '^' || c === '$') return LEAF;
    if (c === '\\') return ESCAPES.has(src[i++]) ? LEAF : null;
    if (c === '[') return charClass() ? LEAF : null;
    if (c === '(') {
      if (src[i] === '?') {
        if (src[i + 1] !== ':') return null;
        i += 2;
      }
      const n = alt();
      return n && src[i++] === ')' ? n : null;
    }
    return printable(c) && !META.has(c) ? LEAF : null;
  };
  const charClass = (): boolean => {
    if (src[i] === '^' || src[i] === ']') return false;
    while (i < src.length && src[i] !== ']') {
      const c = src[i++];
      if (c === '\\') {
        if (!CLASS_ESCAPES.has(src[i++])) return false;
      } else if (!printable(c) || c === '[' || c === '^' || c === '-') return false;
      else if (src[i] === '-' && src[i + 1] !== ']') {
        const hi = src[i + 1];
        if (!printable(hi) || hi === '\\' || hi === '[' || hi === '^' || hi < c) return false;
        i += 2;
      }
    }
    return src[i++] === ']';
  };
  return alt() !== null && i === src.length;
}
