// The kill op from user space: SIGKILL to a process at once when its kill verdict is applied (the kernel's
// krsi_kill_* programs kill it at its next guarded operation whatever happens here). Never pid 1, never
// krsi; never a process that is not the one the event named: the pid is pinned with a pidfd first, then
// the process's start time (/proc/PID/stat) must be no later than the event that caused the verdict (a pid
// reused since then started after it), and the signal goes through the pidfd, which cannot reach another
// process even if the pid is reused after the check. A child found under the process in /proc (forked
// after the event: procDescendants) is checked against the start it had when it was found instead.
import koffi from 'koffi';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { exempt } from '../engine/enforcement/enforcement.ts';

const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_SEND_SIGNAL = 424;
const SIGKILL = 9;
const ESRCH = 3;
/** /proc/PID/stat starttime is in clock ticks (USER_HZ, 100 on Linux): one tick of slack */
const TICK_NS = 10_000_000;

export type KillResult = 'killed' | 'gone' | 'reused' | 'exempt' | 'failed';

interface Libc {
  syscall: (...args: unknown[]) => number | bigint;
  close: (fd: number) => number;
}
let libc: Libc | undefined;
function lib(): Libc {
  if (!libc) {
    const c = koffi.load('libc.so.6');
    libc = { syscall: c.func('long syscall(long number, ...)'), close: c.func('int close(int fd)') };
  }
  return libc;
}

/** a process's start (ns since boot, CLOCK_BOOTTIME, in USER_HZ ticks), or undefined when it is gone */
export function startNs(pid: number): number | undefined {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[19]) * TICK_NS;
  } catch {
    return undefined;
  }
}

/** a process's parent tgid and start (ns since boot), read at once from /proc/PID/stat */
function parentAndStart(pid: number): { ppid: number; born: number } | undefined {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), born: Number(f[19]) * TICK_NS };
  } catch {
    return undefined;
  }
}

/** at most this many descendants are walked (a fork bomb under a verdict is bounded; the kernel's
 *  krsi_fork copy covers what the walk leaves) */
export const MAX_WALK = 4096;

/**
 * The live descendants of `pid` as the kernel knows them, no event needed: /proc/<pid>/task/<tid>/children
 * (each thread's children; CONFIG_PROC_CHILDREN), else every /proc/<n>/stat's parent, recursively, breadth
 * first, at most MAX_WALK. Each with its start (ns since boot), read in the same /proc/PID/stat read as its
 * parent tgid, which must be the process that named it (a pid that died and was reused between the two
 * reads belongs to another parent). The caller checks that `pid` is still the process it means before and
 * after the walk.
 */
export function procDescendants(pid: number): { pid: number; born: number }[] {
  const out: { pid: number; born: number }[] = [];
  const seen = new Set<number>([pid]);
  const queue = [pid];
  let scan: Map<number, { pid: number; born: number }[]> | undefined;
  for (let q = 0; q < queue.length && out.length < MAX_WALK; q++) {
    const parent = queue[q];
    let kids = scan === undefined ? childrenFiles(parent) : undefined;
    if (kids === undefined) {
      // no children files on this kernel: one pass over /proc, parent -> children
      scan ??= scanProc();
      kids = scan.get(parent) ?? [];
    }
    for (const k of kids) {
      if (seen.has(k.pid) || out.length >= MAX_WALK) continue;
      seen.add(k.pid);
      out.push(k);
      queue.push(k.pid);
    }
  }
  return out;
}

/** a process's children from its threads' children files; undefined when the kernel has none */
function childrenFiles(parent: number): { pid: number; born: number }[] | undefined {
  let tasks: string[];
  try { tasks = readdirSync(`/proc/${parent}/task`); } catch { return []; }
  const out: { pid: number; born: number }[] = [];
  for (const t of tasks) {
    let list: string;
    try { list = readFileSync(`/proc/${parent}/task/${t}/children`, 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && existsSync(`/proc/${parent}/task/${t}`)) return undefined;
      continue;
    }
    for (const k of list.split(' ')) {
      const c = Number(k);
      if (!(c > 0)) continue;
      const ps = parentAndStart(c);
      if (ps !== undefined && ps.ppid === parent) out.push({ pid: c, born: ps.born });
    }
  }
  return out;
}

/** every process's children, from /proc/<n>/stat */
function scanProc(): Map<number, { pid: number; born: number }[]> {
  const m = new Map<number, { pid: number; born: number }[]>();
  for (const n of readdirSync('/proc')) {
    const c = Number(n);
    if (!(c > 0)) continue;
    const ps = parentAndStart(c);
    if (ps === undefined) continue;
    const l = m.get(ps.ppid);
    if (l) l.push({ pid: c, born: ps.born });
    else m.set(ps.ppid, [{ pid: c, born: ps.born }]);
  }
  return m;
}

/** SIGKILL to `pid` if it is the process that existed at `eventNs` (boot ns); `self`: krsi's tgid. `born`:
 *  the start the process had when it was found as a child of the verdict's process (procDescendants):
 *  then it must still have exactly that start, wherever it stands against the event */
export function killProcess(pid: number, eventNs: number, self: number, born?: number): KillResult {
  if (exempt(pid, self) || pid <= 0) return 'exempt';
  const c = lib();
  const fd = Number(c.syscall(SYS_PIDFD_OPEN, 'int', pid, 'uint', 0));
  if (fd < 0) return koffi.errno() === ESRCH ? 'gone' : 'failed';
  try {
    // checked after the pidfd pins the process: a start after the event is a later process on that pid
    const start = startNs(pid);
    if (start === undefined) return 'gone';
    if (born !== undefined ? start !== born : start > eventNs + TICK_NS) return 'reused';
    const r = Number(c.syscall(SYS_PIDFD_SEND_SIGNAL, 'int', fd, 'int', SIGKILL, 'void *', null, 'uint', 0));
    if (r === 0) return 'killed';
    return koffi.errno() === ESRCH ? 'gone' : 'failed';
  } finally {
    c.close(fd);
  }
}
