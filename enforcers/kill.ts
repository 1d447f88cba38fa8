// The kill op from user space: SIGKILL to a process at once when its kill verdict is applied (the kernel's
// krsi_kill_* programs kill it at its next guarded operation whatever happens here). Never pid 1, never
// krsi; never a process that is not the one the event named: the pid is pinned with a pidfd first, then
// the process's start time (/proc/PID/stat) must be no later than the event that caused the verdict (a pid
// reused since then started after it), and the signal goes through the pidfd, which cannot reach another
// process even if the pid is reused after the check.
import koffi from 'koffi';
import { readFileSync } from 'node:fs';
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

/** SIGKILL to `pid` if it is the process that existed at `eventNs` (boot ns); `self`: krsi's tgid */
export function killProcess(pid: number, eventNs: number, self: number): KillResult {
  if (exempt(pid, self) || pid <= 0) return 'exempt';
  const c = lib();
  const fd = Number(c.syscall(SYS_PIDFD_OPEN, 'int', pid, 'uint', 0));
  if (fd < 0) return koffi.errno() === ESRCH ? 'gone' : 'failed';
  try {
    // checked after the pidfd pins the process: a start after the event is a later process on that pid
    const start = startNs(pid);
    if (start === undefined) return 'gone';
    if (start > eventNs + TICK_NS) return 'reused';
    const r = Number(c.syscall(SYS_PIDFD_SEND_SIGNAL, 'int', fd, 'int', SIGKILL, 'void *', null, 'uint', 0));
    if (r === 0) return 'killed';
    return koffi.errno() === ESRCH ? 'gone' : 'failed';
  } finally {
    c.close(fd);
  }
}
