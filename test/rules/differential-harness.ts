// Differential testing of the condition fast path against json-rules-engine: seeded random events of
// every type and random condition trees over every operator; plus helpers to collect the bundled rules'
// conditions. Used by differential.test.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EVENT_TYPES } from '../../signals/events.ts';
import { OPERATORS, type OperatorContext } from '../../engine/operators/index.ts';
import { JreOracle } from '../../engine/rules/jre.ts';
import type { ConditionJson, Facts, Predicate } from '../../engine/rules/types.ts';

/** mulberry32, the seeded PRNG the bench generator uses */
export { mulberry32 as prng } from '../../bench/gen.ts';

export class Gen {
  constructor(readonly rnd: () => number) {}
  int(n: number): number { return Math.floor(this.rnd() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]; }
  chance(p: number): boolean { return this.rnd() < p; }
}

// small pools so that random conditions are sometimes true
const COMMS = ['bash', 'sh', 'curl', 'nc', 'python3', 'sshd', '123x', '', 'Bash', 'insmod'];
const PATHS = ['/usr/bin/bash', '/bin/sh', '/tmp/x', '/tmp/evil.so', '/usr/lib/libc.so.6', '/dev/shm/a', 'relative', ''];
const MODS = ['ext4', 'xfs', 'rootkit', 'dummy', 'nf_tables'];
const SHAS = ['aa11', 'bb22', 'cc33'];
const NUMS = [0, 1, 2, 4, 6, 7, 42, 100, 1000, -1, 4294967296, 2 ** 40 + 6];
const ENV_KEYS = ['LD_PRELOAD', 'LD_AUDIT', 'LD_LIBRARY_PATH'];
export const LISTS: Record<string, (string | number)[]> = {
  paths: ['/tmp/x', '/bin/sh', '/tmp/evil.so'],
  mods: ['ext4', 'xfs'],
  nums: [1, 4, 42],
  comms: ['bash', 'nc'],
};

function exe(g: Gen) {
  return { path: g.pick(PATHS), dev: g.pick([2049, 64769]), ino: g.int(6) };
}

export function randomEvent(g: Gen, type = g.pick(EVENT_TYPES)): Facts {
  const e: Record<string, unknown> = {
    ts: g.int(1e12), type, pid: g.pick([1, 100, 101, 4242]), ppid: g.pick([1, 100]), uid: g.pick([0, 1000]),
    comm: g.pick(COMMS), exe: exe(g), seq: g.int(1e6),
  };
  if (g.chance(0.3)) e.tid = g.pick([100, 101]);
  switch (type) {
    case 'exec': {
      e.filename = g.pick(PATHS);
      if (g.chance(0.8)) e.argv = Array.from({ length: g.int(4) }, () => g.pick([...COMMS, ...PATHS, '-c']));
      if (g.chance(0.7)) e.env = Object.fromEntries(ENV_KEYS.filter(() => g.chance(0.4)).map((k) => [k, g.pick(PATHS)]));
      break;
    }
    case 'fork': e.child_pid = g.pick([101, 102, 4243]); break;
    case 'exit': e.code = g.pick([0, 1, 139]); break;
    case 'unlink':
      e.path = g.pick(PATHS);
      if (g.chance(0.7)) e.target = { dev: g.pick([2049, 64769]), ino: g.int(6), ...(g.chance(0.5) ? { nlink: g.int(2) } : {}) };
      break;
    case 'mprotect': e.start = g.int(1 << 30); e.len = g.pick([4096, 8192, 0]); e.prot = g.int(8); break;
    case 'module_load':
      e.name = g.pick(MODS);
      if (g.chance(0.6)) e.file = { dev: 2049, ino: g.int(6) };
      if (g.chance(0.5)) e.sha256 = g.pick(SHAS);
      break;
    case 'module_unload': e.name = g.pick(MODS); break;
    case 'module_list': e.modules = MODS.filter(() => g.chance(0.5)); break;
    case 'denied': e.op = g.pick(['exec', 'mprotect_exec', 'module_load']); e.key = { pid: g.pick([100, 101]) }; if (g.chance(0.5)) e.rule = 'r'; break;
  }
  if (g.chance(0.2)) e.extra = g.pick([null, 'x', 5, { a: 1 }]);
  if (g.chance(0.8)) {
    e.proc = {
      pid: e.pid, ppid: e.ppid, comm: g.pick(COMMS), exe: exe(g),
      env: g.chance(0.5) ? { LD_PRELOAD: g.pick(PATHS) } : {},
      ancestors: Array.from({ length: g.int(3) }, () => ({ pid: g.pick([1, 100]), comm: g.pick(COMMS), exe: g.pick(PATHS) })),
      start_ts: g.int(1e12),
    };
  }
  return e as Facts;
}

// fact -> plausible paths into it (plus generic ones that exercise odd cases)
const FACT_PATHS: Record<string, string[]> = {
  exe: ['$.ino', '$.path', '$.dev', '$.path.length', '$.path[0]', '$.nope'],
  target: ['$.ino', '$.nlink', '$.dev'],
  file: ['$.ino'],
  env: ['$.LD_PRELOAD', '$.LD_AUDIT', '$.LD_LIBRARY_PATH'],
  argv: ['$[0]', '$[1]', '$.length', '$[9]'],
  modules: ['$[0]', '$.length'],
  key: ['$.pid'],
  proc: ['$.exe.ino', '$.exe.path', '$.env.LD_PRELOAD', '$.ancestors[0].comm', '$.ancestors[1].pid', '$.comm', '$.ancestors.length'],
};
const FACTS = ['type', 'pid', 'ppid', 'uid', 'comm', 'exe', 'tid', 'filename', 'argv', 'env', 'child_pid', 'code', 'path', 'target',
  'prot', 'len', 'name', 'file', 'sha256', 'modules', 'op', 'key', 'proc', 'extra'];
const ODD_PATHS = ['$', '$.constructor', '$.toString', '$.x.y', '$[0]', '$.length'];

function randomFactRef(g: Gen): { fact: string; path?: string } {
  const fact = g.pick(FACTS);
  const p = FACT_PATHS[fact];
  if (p && g.chance(0.8)) return { fact, path: g.pick(p) };
  if (g.chance(0.1)) return { fact, path: g.pick(ODD_PATHS) };
  return { fact };
}

function randomLiteral(g: Gen, op: string): unknown {
  const scalar = () => g.pick<unknown>([...COMMS, ...PATHS, ...MODS, ...NUMS, 'exec', 'fork', 'mprotect', true, false, null]);
  switch (op) {
    case 'in': case 'notIn':
      return Array.from({ length: 1 + g.int(g.chance(0.2) ? 10 : 3) }, scalar);
    case 'inList': case 'notInList':
      return g.pick([...Object.keys(LISTS), 'missing']);
    case 'matches':
      return g.pick(['^/tmp/', 'sh$', '(?i)^BASH$', '^(nc|curl)$', '\\.so(\\.|$)', '[0-9]+x', 'a{', '']);
    case 'bitsSet': case 'anyBitsSet':
      return g.pick([0, 1, 2, 4, 6, 7, 2 ** 40, 2 ** 40 + 2]);
    case 'exists':
      return g.pick([true, false]);
    case 'startsWith': case 'endsWith':
      return g.pick(['/tmp', 'sh', '/', '', 'bash', 5]);
    case 'lessThan': case 'lessThanInclusive': case 'greaterThan': case 'greaterThanInclusive':
      return g.pick([...NUMS, '10', 'x']);
    case 'contains': case 'doesNotContain':
      return scalar();
    default:
      return scalar();
  }
}

export function randomLeaf(g: Gen): ConditionJson {
  const op = g.pick([...OPERATORS.keys()]);
  const lhs = randomFactRef(g);
  const value = g.chance(0.15) ? randomFactRef(g) : randomLiteral(g, op);
  return { ...lhs, operator: op, value } as ConditionJson;
}

export function randomCondition(g: Gen, depth = 3): ConditionJson {
  if (depth === 0 || g.chance(0.35)) return randomLeaf(g);
  const k = g.int(3);
  const kids = () => Array.from({ length: 1 + g.int(3) }, () => randomCondition(g, depth - 1));
  if (k === 0) return { all: kids() };
  if (k === 1) return { any: kids() };
  return { not: randomCondition(g, depth - 1) };
}

/** a root condition as rule files require: all / any / not */
export function randomRoot(g: Gen): ConditionJson {
  const c = randomCondition(g, 3);
  return 'fact' in c ? { all: [c] } : c;
}

/** every condition tree in rules/*.json (rule match, steps, until), for whatever rules exist now */
export function bundledConditions(dir: string): { name: string; cond: ConditionJson }[] {
  const out: { name: string; cond: ConditionJson }[] = [];
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'schema.json');
  } catch {
    return out;
  }
  for (const f of files) {
    let doc: any;
    try {
      doc = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    } catch {
      continue;
    }
    const visit = (v: unknown, name: string) => {
      if (!v || typeof v !== 'object') return;
      const o = v as Record<string, any>;
      for (const [k, x] of Object.entries(o)) {
        if ((k === 'match') && x && typeof x === 'object') out.push({ name: `${f}:${name}`, cond: x as ConditionJson });
        visit(x, typeof o.id === 'string' ? o.id : name);
      }
    };
    for (const r of Array.isArray(doc?.rules) ? doc.rules : []) visit(r, String(r?.id));
  }
  return out;
}

export function bundledLists(dir: string): Record<string, (string | number)[]> {
  const lists: Record<string, (string | number)[]> = {};
  try {
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'schema.json')) {
      const doc = JSON.parse(readFileSync(join(dir, f), 'utf8'));
      for (const [k, v] of Object.entries(doc?.lists ?? {})) if (Array.isArray(v)) lists[k] ??= v as (string | number)[];
    }
  } catch {
    /* whatever is readable */
  }
  return lists;
}

export interface Mismatch {
  cond: ConditionJson;
  facts: Facts;
  jre: boolean;
  fast: boolean;
}

export interface DiffResult {
  compared: number;
  /** json-rules-engine rejected the run (e.g. `in` against a non-array); krsi says false there */
  jreErrors: number;
  trueCount: number;
  mismatches: Mismatch[];
}

/** evaluate every (condition, facts) pair through json-rules-engine and through `fast` */
export async function differential(
  conds: ConditionJson[],
  events: Facts[],
  ctx: OperatorContext,
  fast: (c: ConditionJson) => Predicate,
): Promise<DiffResult> {
  const oracle = new JreOracle(ctx);
  const r: DiffResult = { compared: 0, jreErrors: 0, trueCount: 0, mismatches: [] };
  for (const cond of conds) {
    const p = fast(cond);
    for (const facts of events) {
      let expected: boolean;
      try {
        expected = await oracle.evaluate(cond, facts);
      } catch {
        r.jreErrors++;
        continue;
      }
      const got = p(facts);
      r.compared++;
      if (expected) r.trueCount++;
      if (got !== expected) r.mismatches.push({ cond, facts, jre: expected, fast: got });
    }
  }
  return r;
}
