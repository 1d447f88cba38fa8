// A fast yes for the events lmdb readers validate (every event read back is validated: the file may
// have changed since it was written). validateEvent (signals/event-contract.ts) is the rule; it reads each
// field through helpers taking the field name, which are keyed, megamorphic loads: a fifth of a
// replay's time. quickValid reads the common fields by name and says true only for an event that
// validateEvent accepts; anything else (a rare field, a bad value) returns false and the reader asks
// validateEvent, which decides and locates the error. test/eventlog/quickcheck.test.ts checks that
// quickValid never says yes where validateEvent says no, on generated and mutated events.

import { SHA256_ERRORS } from '../../signals/events.ts';

const SHA256 = /^[0-9a-fA-F]{64}$/;
const isU = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function strings(v: unknown): boolean {
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (typeof v[i] !== 'string') return false;
  return true;
}

/** a file id (exe, unlink target, module file): dev and ino */
const fileId = (v: unknown) => isObj(v) && isU(v.dev) && isU(v.ino);
const optBool = (v: unknown) => v === undefined || typeof v === 'boolean';
const sha256 = (v: unknown) => v === undefined || (typeof v === 'string' && SHA256.test(v));

/** true only when validateEvent(v) would pass (false: ask validateEvent) */
export function quickValid(v: unknown): boolean {
  if (!isObj(v)) return false;
  const o = v;
  if (!isU(o.ts) || !isU(o.pid) || !isU(o.ppid) || !isU(o.uid) || typeof o.comm !== 'string') return false;
  const exe = o.exe;
  if (!isObj(exe) || typeof exe.path !== 'string' || !isU(exe.dev) || !isU(exe.ino)) return false;
  if ((o.tid !== undefined && !isU(o.tid)) || (o.cgroup !== undefined && !isU(o.cgroup)) || (o.seq !== undefined && !isU(o.seq))) return false;
  switch (o.type) {
    case 'exec': {
      if (typeof o.filename !== 'string' || !sha256(o.sha256)) return false;
      if (o.sha256_error !== undefined && !(SHA256_ERRORS as readonly unknown[]).includes(o.sha256_error)) return false;
      if (o.argv !== undefined && !strings(o.argv)) return false;
      const env = o.env;
      if (env === undefined) return true;
      if (!isObj(env)) return false;
      for (const k in env) if (typeof env[k] !== 'string') return false;
      return true;
    }
    case 'fork':
      return isU(o.child_pid);
    case 'exit':
      return typeof o.code === 'number' && Number.isSafeInteger(o.code);
    case 'unlink':
      // the issue-11 fields (ret, route, running, ...) go to validateEvent
      return typeof o.path === 'string' && (o.target === undefined || (isObj(o.target) && fileId(o.target) && (o.target.nlink === undefined || isU(o.target.nlink))))
        && o.ret === undefined && o.route === undefined && o.running === undefined && o.unconfirmed === undefined && o.from === undefined;
    case 'mprotect':
      return isU(o.start) && isU(o.len) && isU(o.prot) && optBool(o.wx) && (o.reqprot === undefined || isU(o.reqprot)) &&
        (o.old_prot === undefined || isU(o.old_prot)) && optBool(o.exec_added) && optBool(o.flip) && optBool(o.regions_unknown);
    case 'module_load':
      return typeof o.name === 'string' && (o.file === undefined || fileId(o.file)) && sha256(o.sha256);
    case 'module_unload':
      return typeof o.name === 'string';
    case 'module_list':
      return strings(o.modules);
    case 'denied':
      return typeof o.op === 'string' && isObj(o.key) && (o.rule === undefined || typeof o.rule === 'string');
    default:
      return false;
  }
}
