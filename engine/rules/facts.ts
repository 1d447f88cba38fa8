// What rules can refer to: facts (event fields + proc), and which event types carry them.
import { EVENT_TYPES, type EventType } from '../../signals/events.ts';

const ALL = '*' as const;

/** fact name -> the event types that have it ('*': every event) */
export const FACTS: Record<string, readonly EventType[] | '*'> = {
  ts: ALL, type: ALL, pid: ALL, ppid: ALL, uid: ALL, comm: ALL, exe: ALL, tid: ALL, cgroup: ALL, seq: ALL, proc: ALL,
  filename: ['exec'], argv: ['exec'], env: ['exec'],
  child_pid: ['fork'],
  code: ['exit'],
  path: ['unlink'], target: ['unlink'],
  start: ['mprotect'], len: ['mprotect'], prot: ['mprotect'],
  name: ['module_load'], file: ['module_load'], sha256: ['module_load', 'exec'],
  modules: ['module_list'],
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
};

/** subject -> the event types that can name it ('*': any) */
export const SUBJECT_EVENTS: Record<string, readonly EventType[] | '*'> = {
  pid: ALL,
  exe: ALL,
  target: ['unlink'],
  module: ['module_load'],
  module_file: ['module_load'],
};
