// Validation of the JSON Lines event contract (signals/events.ts, documented in signals/EVENTS.md).
// Checks the required common fields, the per-type fields and the types of the optional ones; unknown
// extra fields are kept untouched. Errors name file, line and field path:
//   sample.jsonl:17: field exe.ino: expected an integer
// Hand-written checks rather than a schema validator: replay validates every event of a log, so this
// sits on the hot path (millions of events per second).
import { EVENT_TYPES, FILE_ROUTES, RUNNERS, SHA256_ERRORS, type EventType, type KrsiEvent } from './events.ts';

export interface At {
  file: string;
  line: number;
}

/** a bad event or log line, located by file, line and field path ('' when the whole line is bad) */
export class EventError extends Error {
  readonly file: string;
  readonly line: number;
  readonly field: string;
  readonly reason: string;
  constructor(at: At, field: string, reason: string) {
    super(`${at.file}:${at.line}: ${field ? `field ${field}: ` : ''}${reason}`);
    this.name = 'EventError';
    this.file = at.file;
    this.line = at.line;
    this.field = field;
    this.reason = reason;
  }
}

const TYPES = new Set<string>(EVENT_TYPES);
const SHA256 = /^[0-9a-fA-F]{64}$/;

type Obj = Record<string, unknown>;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

function fail(at: At, field: string, expected: string, v: unknown): never {
  throw new EventError(at, field, v === undefined ? `missing (expected ${expected})` : `expected ${expected}, got ${describe(v)}`);
}

/** a non-negative safe integer (ts, pid, dev, ino, ...) */
function uint(o: Obj, k: string, at: At, prefix = ''): void {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(at, prefix + k, 'an integer', v);
}

function int(o: Obj, k: string, at: At): void {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(at, k, 'an integer', v);
}

function str(o: Obj, k: string, at: At, prefix = ''): void {
  if (typeof o[k] !== 'string') fail(at, prefix + k, 'a string', o[k]);
}

function obj(o: Obj, k: string, at: At, prefix = ''): Obj {
  const v = o[k];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(at, prefix + k, 'an object', v);
  return v as Obj;
}

function strArray(o: Obj, k: string, at: At, prefix = ''): void {
  const v = o[k];
  if (!Array.isArray(v)) fail(at, prefix + k, 'an array of strings', v);
  for (let i = 0; i < v.length; i++) if (typeof v[i] !== 'string') fail(at, `${prefix}${k}[${i}]`, 'a string', v[i]);
}

function bool(o: Obj, k: string, at: At, prefix = ''): void {
  if (typeof o[k] !== 'boolean') fail(at, prefix + k, 'a boolean', o[k]);
}

/** an exec event's facts about the executed file (EVENTS.md): each optional, typed when present */
function execFacts(exe: Obj, at: At): void {
  if (exe.nlink !== undefined) uint(exe, 'nlink', at, 'exe.');
  if (exe.fs !== undefined) str(exe, 'fs', at, 'exe.');
  for (const k of ['memfd', 'deleted', 'setuid', 'setgid']) if (exe[k] !== undefined) bool(exe, k, at, 'exe.');
}

function sha256(o: Obj, at: At): void {
  if (typeof o.sha256 !== 'string' || !SHA256.test(o.sha256)) fail(at, 'sha256', '64 hex digits', o.sha256);
}

function fileId(o: Obj, k: string, at: At): Obj {
  const f = obj(o, k, at);
  uint(f, 'dev', at, k + '.');
  uint(f, 'ino', at, k + '.');
  return f;
}

/** unlink, rename, truncate: path, target {dev, ino, nlink?}, ret, unconfirmed, route, running (all but path optional) */
function fileFields(o: Obj, at: At): void {
  str(o, 'path', at);
  if (o.target !== undefined) {
    const t = fileId(o, 'target', at);
    if (t.nlink !== undefined) uint(t, 'nlink', at, 'target.');
  }
  if (o.ret !== undefined) int(o, 'ret', at);
  if (o.from !== undefined) str(o, 'from', at);
  if (o.unconfirmed !== undefined && typeof o.unconfirmed !== 'boolean') fail(at, 'unconfirmed', 'a boolean', o.unconfirmed);
  if (o.route !== undefined && !(FILE_ROUTES as readonly unknown[]).includes(o.route)) fail(at, 'route', `one of ${FILE_ROUTES.join('|')}`, o.route);
  if (o.running !== undefined) {
    const r = obj(o, 'running', at);
    uint(r, 'count', at, 'running.');
    const pids = r.pids;
    if (!Array.isArray(pids)) fail(at, 'running.pids', 'an array of integers', pids);
    for (let i = 0; i < pids.length; i++) if (typeof pids[i] !== 'number' || !Number.isSafeInteger(pids[i]) || pids[i] < 0) fail(at, `running.pids[${i}]`, 'an integer', pids[i]);
    if (r.by !== undefined && !(RUNNERS as readonly unknown[]).includes(r.by)) fail(at, 'running.by', `one of ${RUNNERS.join('|')}`, r.by);
  }
}

/** an optional boolean: typed when present */
function optBool(o: Obj, k: string, at: At): void {
  if (o[k] !== undefined) bool(o, k, at);
}

/** the fields mprotect and mmap share (an event without `wx`, from a log before issue 11, is left as it
 *  is: the engine reads it as prot W+X, engine.ts push) */
function mem(o: Obj, at: At): void {
  uint(o, 'start', at);
  uint(o, 'len', at);
  uint(o, 'prot', at);
  if (o.reqprot !== undefined) uint(o, 'reqprot', at);
  optBool(o, 'wx', at);
  optBool(o, 'exec_added', at);
  optBool(o, 'flip', at);
  optBool(o, 'regions_unknown', at);
}

/**
 * Checks that `v` is a well-formed krsi event and returns it (the same object, extra fields kept).
 * Throws EventError naming `at.file`, `at.line` and the field path.
 */
export function validateEvent(v: unknown, at: At): KrsiEvent {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new EventError(at, '', `expected a JSON object, got ${describe(v)}`);
  const o = v as Obj;
  uint(o, 'ts', at);
  const type = o.type;
  if (typeof type !== 'string' || !TYPES.has(type)) fail(at, 'type', `one of ${EVENT_TYPES.join('|')}`, type);
  uint(o, 'pid', at);
  uint(o, 'ppid', at);
  uint(o, 'uid', at);
  str(o, 'comm', at);
  const exe = obj(o, 'exe', at);
  str(exe, 'path', at, 'exe.');
  uint(exe, 'dev', at, 'exe.');
  uint(exe, 'ino', at, 'exe.');
  if (o.tid !== undefined) uint(o, 'tid', at);
  if (o.cgroup !== undefined) uint(o, 'cgroup', at);
  if (o.seq !== undefined) uint(o, 'seq', at);
  switch (type as EventType) {
    case 'exec':
      str(o, 'filename', at);
      if (o.argv !== undefined) strArray(o, 'argv', at);
      if (o.env !== undefined) {
        const env = obj(o, 'env', at);
        for (const k in env) if (typeof env[k] !== 'string') fail(at, `env.${k}`, 'a string', env[k]);
      }
      if (o.argv_truncated !== undefined) optBool(o, 'argv_truncated', at);
      if (o.env_dup !== undefined) strArray(o, 'env_dup', at);
      if (o.env_all !== undefined) {
        const all = obj(o, 'env_all', at);
        for (const k in all) strArray(all, k, at, 'env_all.');
      }
      if (o.env_truncated !== undefined) optBool(o, 'env_truncated', at);
      if (o.ldso !== undefined) {
        const l = obj(o, 'ldso', at);
        for (const k in l) if (k === 'truncated' ? typeof l[k] !== 'boolean' : typeof l[k] !== 'string') fail(at, `ldso.${k}`, k === 'truncated' ? 'a boolean' : 'a string', l[k]);
      }
      if (o.script !== undefined) {
        const sc = fileId(o, 'script', at);
        if (sc.nlink !== undefined) uint(sc, 'nlink', at, 'script.');
        if (sc.memfd !== undefined) bool(sc, 'memfd', at, 'script.');
      }
      execFacts(exe, at);
      if (o.sha256 !== undefined) sha256(o, at);
      if (o.sha256_error !== undefined && !(SHA256_ERRORS as readonly unknown[]).includes(o.sha256_error)) fail(at, 'sha256_error', `one of ${SHA256_ERRORS.join('|')}`, o.sha256_error);
      break;
    case 'fork':
      uint(o, 'child_pid', at);
      break;
    case 'exit':
      int(o, 'code', at);
      break;
    case 'unlink':
    case 'rename':
    case 'truncate':
      fileFields(o, at);
      break;
    case 'mprotect':
      mem(o, at);
      if (o.old_prot !== undefined) uint(o, 'old_prot', at);
      break;
    case 'mmap':
      mem(o, at);
      uint(o, 'flags', at);
      optBool(o, 'anon', at);
      optBool(o, 'shmem', at);
      optBool(o, 'shmat', at);
      if (o.file !== undefined) fileId(o, 'file', at);
      if (o.ret !== undefined) int(o, 'ret', at);
      break;
    case 'lost': {
      if (o.class !== 'bulk' && o.class !== 'rare' && o.class !== 'running') fail(at, 'class', 'bulk|rare|running', o.class);
      uint(o, 'count', at);
      const kinds = obj(o, 'kinds', at);
      for (const k in kinds) uint(kinds, k, at, 'kinds.');
      break;
    }
    case 'module_load':
      str(o, 'name', at);
      if (o.file !== undefined) fileId(o, 'file', at);
      if (o.path !== undefined) str(o, 'path', at);
      if (o.sha256 !== undefined) sha256(o, at);
      break;
    case 'module_unload':
      str(o, 'name', at);
      break;
    case 'module_list':
      strArray(o, 'modules', at);
      break;
    case 'module_inventory': {
      str(o, 'name', at);
      strArray(o, 'missing_from', at);
      strArray(o, 'present_in', at);
      if (o.summary !== undefined) str(o, 'summary', at);
      for (const f of ['proc_modules', 'sys_module'] as const) if (o[f] !== undefined && typeof o[f] !== 'boolean') fail(at, f, 'a boolean', o[f]);
      if (o.kernel !== undefined) {
        const k = obj(o, 'kernel', at);
        for (const f of ['recorded', 'linked', 'unlinked', 'sysfs', 'seeded'] as const) uint(k, f, at, 'kernel.');
        if (k.addrs !== undefined) strArray(k, 'addrs', at);
        if (k.renamed !== undefined) uint(k, 'renamed', at, 'kernel.');
        if (k.load_names !== undefined) strArray(k, 'load_names', at);
      }
      break;
    }
    case 'denied':
      str(o, 'op', at);
      obj(o, 'key', at);
      if (o.rule !== undefined) str(o, 'rule', at);
      break;
  }
  return o as KrsiEvent;
}

/**
 * A validator for one log: validateEvent plus the log's ordering rule (ts non-decreasing).
 * A rejected event does not move the clock, so `--skip-bad` can go on after it.
 */
export class LogValidator {
  private lastTs: number;
  private lastLine = 0;
  /** `after`: the events must follow this ts (appending to a log whose last event has it) */
  constructor(
    readonly file: string,
    private readonly after?: { ts: number; what: string },
  ) {
    this.lastTs = after?.ts ?? -1;
  }

  /** the ordering state, to undo checks with reset() (a reader that re-reads lines after a failed batch) */
  mark(): [number, number] {
    return [this.lastTs, this.lastLine];
  }

  reset(m: [number, number]): void {
    [this.lastTs, this.lastLine] = m;
  }

  check(v: unknown, line: number): KrsiEvent {
    const at = { file: this.file, line };
    const ev = validateEvent(v, at);
    if (ev.ts < this.lastTs) {
      const prev = this.lastLine ? `line ${this.lastLine}` : this.after!.what;
      throw new EventError(at, 'ts', `${ev.ts} is before the previous event's ts ${this.lastTs} (${prev}); ts must be non-decreasing`);
    }
    this.lastTs = ev.ts;
    this.lastLine = line;
    return ev;
  }
}
