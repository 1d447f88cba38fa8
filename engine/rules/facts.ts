// What rules can refer to: facts (event fields + proc), and which event types carry them.
import { EVENT_TYPES, type EventType } from '../../signals/events.ts';

const ALL = '*' as const;

/** fact name -> the event types that have it ('*': every event) */
export const FACTS: Record<string, readonly EventType[] | '*'> = {
  ts: ALL, type: ALL, pid: ALL, ppid: ALL, uid: ALL, comm: ALL, exe: ALL, tid: ALL, cgroup: ALL, seq: ALL, proc: ALL,
  filename: ['exec'], argv: ['exec'], env: ['exec'],
  argv_truncated: ['exec'], env_dup: ['exec'], env_all: ['exec'], env_truncated: ['exec'], ldso: ['exec'], script: ['exec'],
  child_pid: ['fork'],
  code: ['exit'],
  path: ['unlink', 'rename', 'truncate', 'module_load'], target: ['unlink', 'rename', 'truncate'],
  ret: ['unlink', 'rename', 'truncate', 'mmap'], unconfirmed: ['unlink', 'rename', 'truncate'], route: ['unlink', 'rename', 'truncate'],
  running: ['unlink', 'rename', 'truncate'], from: ['rename'],
  start: ['mprotect', 'mmap'], len: ['mprotect', 'mmap'], prot: ['mprotect', 'mmap'], reqprot: ['mprotect', 'mmap'],
  wx: ['mprotect', 'mmap'], exec_added: ['mprotect', 'mmap'], flip: ['mprotect', 'mmap'], regions_unknown: ['mprotect', 'mmap'],
  old_prot: ['mprotect'], flags: ['mmap'], anon: ['mmap'], shmem: ['mmap'], shmat: ['mmap'],
  class: ['lost'], count: ['lost'], kinds: ['lost'],
  name: ['module_load', 'module_unload', 'module_inventory'], file: ['module_load', 'mmap'], sha256: ['module_load', 'exec'],
  sha256_error: ['exec'],
  modules: ['module_list'],
  proc_modules: ['module_inventory'], sys_module: ['module_inventory'], kernel: ['module_inventory'],
  missing_from: ['module_inventory'], present_in: ['module_inventory'], summary: ['module_inventory'],
  op: ['denied'], key: ['denied'], rule: ['denied'],
};

export const FACT_NAMES = Object.keys(FACTS);

export function isFact(name: unknown): name is string {
  return typeof name === 'string' && Object.hasOwn(FACTS, name);
}

export function isEventType(v: unknown): v is EventType {
  return typeof v === 'string' && (EVENT_TYPES as readonly string[]).includes(v);
}

/** verdict op -> subjects that fit it */
export const OP_SUBJECTS: Record<string, readonly string[]> = {
  exec: ['exe', 'target'],
  mprotect_exec: ['pid'],
  module_load: ['module', 'module_file'],
  quarantine: ['pid'],
  kill: ['pid'],
};

/** subject -> the event types that can name it ('*': any) */
export const SUBJECT_EVENTS: Record<string, readonly EventType[] | '*'> = {
  pid: ALL,
  exe: ALL,
  target: ['unlink', 'rename', 'truncate'],
  module: ['module_load'],
  module_file: ['module_load'],
};

/** the shape of a fact's value, for checking paths and fields: a scalar, any JSON, an object of known
 *  fields, or an array of items */
export type Shape = 'scalar' | 'any' | { obj: Record<string, Shape> } | { arr: Shape };

const S = 'scalar' as const;
const FILE_ID: Shape = { obj: { dev: S, ino: S } };
/** exe; nlink, memfd, deleted, fs, setuid, setgid: exec events only (signals/EVENTS.md) */
const EXE: Shape = { obj: { path: S, dev: S, ino: S, nlink: S, memfd: S, deleted: S, fs: S, setuid: S, setgid: S } };
const LDSO: Shape = { obj: { preload: S, audit: S, library_path: S, inhibit_rpath: S, argv0: S, program: S, truncated: S } };

export const FACT_SHAPES: Record<string, Shape> = {
  ts: S, type: S, pid: S, ppid: S, uid: S, comm: S, exe: EXE, tid: S, cgroup: S, seq: S,
  filename: S, argv: { arr: S }, env: 'any', child_pid: S, code: S,
  argv_truncated: S, env_dup: { arr: S }, env_all: 'any', env_truncated: S, ldso: LDSO, script: { obj: { dev: S, ino: S, nlink: S, memfd: S } },
  path: S, target: { obj: { dev: S, ino: S, nlink: S } }, unconfirmed: S, route: S, from: S,
  running: { obj: { count: S, pids: { arr: S }, by: S } }, start: S, len: S, prot: S,
  reqprot: S, wx: S, exec_added: S, flip: S, regions_unknown: S, old_prot: S, flags: S, anon: S, shmem: S, shmat: S, ret: S,
  class: S, count: S, kinds: 'any',
  name: S, file: FILE_ID, sha256: S, sha256_error: S, modules: { arr: S },
  proc_modules: S, sys_module: S, kernel: { obj: { recorded: S, linked: S, unlinked: S, sysfs: S, seeded: S, addrs: { arr: S } } },
  missing_from: { arr: S }, present_in: { arr: S }, summary: S,
  op: S, key: 'any', rule: S,
  proc: {
    obj: {
      pid: S, ppid: S, comm: S, exe: EXE, env: 'any', start_ts: S,
      ancestors: { arr: { obj: { pid: S, comm: S, exe: S } } },
      loader_injected: { obj: { pid: S, ts: S, var: S, value: S } },
    },
  },
};

/** why `segs` cannot lead anywhere inside `fact`, or undefined when they can */
export function checkShapePath(fact: string, segs: string[]): { reason: string; suggestion?: string } | undefined {
  let shape: Shape | undefined = FACT_SHAPES[fact];
  let at = fact;
  if (shape === 'scalar' && segs.length > 0) {
    return { reason: `${fact} is not an object, so json-rules-engine ignores the path and compares ${fact} itself` };
  }
  for (const seg of segs) {
    if (shape === undefined || shape === 'any') return undefined;
    const isIndex = /^[0-9]+$/.test(seg);
    if (shape === 'scalar') {
      // strings have an own length and indexed characters
      if (seg === 'length' || isIndex) return undefined;
      return { reason: `${at} is not an object` };
    }
    if ('arr' in shape) {
      if (seg === 'length') return undefined;
      if (!isIndex) return { reason: `${at} is an array: use [index] or length` };
      shape = shape.arr;
    } else {
      const fields: Record<string, Shape> = shape.obj;
      if (!Object.hasOwn(fields, seg)) return { reason: `${at} has no field ${JSON.stringify(seg)} (fields: ${Object.keys(fields).join(', ')})`, suggestion: seg };
      shape = fields[seg];
    }
    at = `${at}.${seg}`;
  }
  return undefined;
}

/** the shape at a dotted field ("modules", "proc.env"), or undefined when unknown */
export function shapeAt(field: string): Shape | undefined {
  const [head, ...rest] = field.split('.');
  let shape: Shape | undefined = FACT_SHAPES[head];
  for (const seg of rest) {
    if (shape === undefined || shape === 'any' || shape === 'scalar') return undefined;
    shape = 'arr' in shape ? shape.arr : shape.obj[seg];
  }
  return shape;
}
