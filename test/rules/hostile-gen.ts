// Hostile mutations of rule files and rule test files, for the fuzz tests (fuzz.test.ts): the shapes issue 8's
// fuzzer found (deep nesting, long arrays, prototype keys, catastrophic regexes, huge durations and repeat
// counts, empty correlations) plus structural junk and damaged text. Seeded: a failure names its case.
import type { Gen } from './differential-harness.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export const HOSTILE_REGEXES = ['(a+)+$', '(a|a)*$', '(a*)*b', '(.*a){20}$', '(a)\\1', '(?=a)', '(?<!a)b', '[', 'a{1001}', '(?i)ſ', 'a'.repeat(5000)];
const HUGE = [1e15, 2 ** 53, 1e300, -1, 1.5, '99999999999999d', '200d', '9007199254740993ms', 'NaN', 0];
const RESERVED = ['__proto__', 'constructor', 'prototype'];
const JUNK_VALUES: unknown[] = [null, 0, -1, '', 'x', true, [], {}, { fact: 'pid' }, { all: [] }, { not: {} }, '$.constructor'];

const junk = (g: Gen): unknown => structuredClone(g.pick(JUNK_VALUES));

/** every object and array inside v, with a setter for its slot (so one can be replaced) */
function slots(v: unknown): { get: () => unknown; set: (x: unknown) => void }[] {
  const out: { get: () => unknown; set: (x: unknown) => void }[] = [];
  const walk = (o: unknown, depth: number) => {
    if (depth > 40 || out.length > 50_000) return; // not into what an earlier mutation nested or grew
    if (Array.isArray(o)) o.forEach((x, i) => { out.push({ get: () => o[i], set: (y) => (o[i] = y) }); walk(x, depth + 1); });
    else if (isObj(o)) for (const k of Object.keys(o)) { out.push({ get: () => o[k], set: (y) => Object.defineProperty(o, k, { value: y, enumerable: true, writable: true, configurable: true }) }); walk(o[k], depth + 1); }
  };
  walk(v, 0);
  return out;
}

const nest = (g: Gen, inner: unknown, depth: number): unknown => {
  let v = inner;
  for (let i = 0; i < depth; i++) v = g.pick([(x: unknown) => ({ not: x }), (x: unknown) => ({ all: [x] }), (x: unknown) => [x]])(v);
  return v;
};

/** one to three hostile changes to a parsed document (mutated in place; returns it) */
export function hostileMutate(g: Gen, doc: unknown): unknown {
  for (let n = 1 + g.int(3); n > 0; n--) {
    const all = slots(doc);
    if (all.length === 0) return doc;
    const s = g.pick(all);
    const cur = s.get();
    switch (g.int(9)) {
      case 0: s.set(nest(g, cur, g.pick([10, 40, 63, 70, 200]))); break; // deeper: deepText (JSON.stringify recurses)
      case 1: s.set(Array.from({ length: g.pick([999, 1001, 5000]) }, () => junk(g))); break;
      case 2: if (isObj(cur)) Object.defineProperty(cur, g.pick(RESERVED), { value: g.pick<unknown>([{ mode: 'enforce' }, { within: '1s' }, [1], 'x']), enumerable: true, writable: true, configurable: true }); break;
      case 3: s.set({ fact: g.pick(['filename', 'comm', 'env', 'argv']), path: g.chance(0.3) ? '$.LD_PRELOAD' : undefined, operator: 'matches', value: g.pick(HOSTILE_REGEXES) }); break;
      case 4: s.set(g.pick(HUGE)); break;
      case 5: s.set(g.pick<unknown>([{}, { count: {} }, { sequence: { steps: [] } }, { absent: null }])); break;
      case 6: if (isObj(cur) && 'count' in cur) cur.count = g.pick([1e15, 2 ** 31, 100_001, 99_999, 0, -5, 'x']); else s.set(junk(g)); break;
      case 7: if (isObj(cur)) cur[g.pick(['env', 'cycle', 'processes', 'lists', 'repeat'])] = { [g.pick([...RESERVED, 'X'])]: g.pick<unknown>([['a'], 'a', { pid: 1 }]) }; break;
      default: s.set(junk(g));
    }
  }
  return doc;
}

/** damage to the text itself: cut, stray bytes, brackets, a byte order mark */
export function damageText(g: Gen, text: string): string {
  const at = g.int(text.length + 1);
  switch (g.int(5)) {
    case 0: return text.slice(0, at);
    case 1: return text.slice(0, at) + g.pick(['\u0000', '\ufffd', '"', ',', '}', ']', '\\', '\ud800']) + text.slice(at);
    case 2: return text.slice(0, at) + '['.repeat(g.pick([63, 64, 65, 3000])) + text.slice(at);
    case 3: return '\ufeff' + text;
    default: return text.slice(0, at) + text.slice(at + g.int(40));
  }
}

/** valid JSON nested thousands deep: a "match" (or "expect") becomes that many nested "not"s */
function deepText(g: Gen, text: string): string {
  const n = g.pick([1500, 5000]);
  const deep = `{"all": [${'{"not": '.repeat(n)}{"all": []}${'}'.repeat(n)}]}`;
  return text.replace(/"(match|expect)":/, (m) => `${m} ${deep}, "x":`);
}

/** a hostile rule file or rule test file text from a parsed original */
export function hostileText(g: Gen, original: unknown): string {
  const doc = hostileMutate(g, structuredClone(original));
  const text = JSON.stringify(doc, null, g.chance(0.5) ? 1 : undefined) ?? 'null';
  if (g.chance(0.05)) return deepText(g, text);
  return g.chance(0.15) ? damageText(g, text) : text;
}

/** strings an attacker controls (file names, argv, env) */
export const ATTACKER_STRINGS = ['a'.repeat(30) + '!', 'a'.repeat(20000) + '!', '\u0000\u001b[2J', '😀'.repeat(100), 'constructor', '__proto__'];
