// The user-space module_list signal: snapshots of the kernel's visible module list (/proc/modules),
// right after each module_load and module_unload event, and periodically. A module that loaded, was not
// unloaded, and is missing from the next snapshot is hiding. Unavailable (with a reason) when the kernel has no module support.
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { EMPTY, Observable, defer, filter, map, merge, timer, type SchedulerLike } from 'rxjs';
import type { KrsiEvent, ModuleListEvent } from './events.ts';
import { bootNs } from './clock.ts';

export const PROC_MODULES = '/proc/modules';

/** why the module_list signal cannot run here, or undefined */
export function moduleListUnavailable(path = PROC_MODULES): string | undefined {
  return existsSync(path) ? undefined : `${path} is missing (kernel without module support)`;
}

/** module names of a /proc/modules text, sorted */
export function parseModules(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.split(' ', 1)[0])
    .filter((n) => n.length > 0)
    .sort();
}

/** who reports user-space events: krsi itself */
export function selfIdentity(): Pick<ModuleListEvent, 'pid' | 'ppid' | 'uid' | 'comm' | 'exe'> {
  let comm = 'krsi';
  try {
    comm = readFileSync('/proc/self/comm', 'utf8').trim() || comm;
  } catch {
    // not Linux /proc: keep the default
  }
  const exePath = readlinkSync('/proc/self/exe');
  const st = statSync(exePath);
  return { pid: process.pid, ppid: process.ppid, uid: process.getuid?.() ?? 0, comm, exe: { dev: st.dev, ino: st.ino, path: exePath } };
}

export interface ModuleListOptions {
  /** snapshot period in ms (0: only after module loads) */
  interval: number;
  /** the live events: a snapshot follows each module_load and module_unload */
  events$?: Observable<KrsiEvent>;
  path?: string;
  now?: () => number;
  /** for tests (TestScheduler) */
  scheduler?: SchedulerLike;
}

/** module_list events; EMPTY when the signal is unavailable (check moduleListUnavailable first) */
export function moduleList$(o: ModuleListOptions): Observable<ModuleListEvent> {
  const path = o.path ?? PROC_MODULES;
  if (moduleListUnavailable(path)) return EMPTY;
  return defer(() => {
    const self = selfIdentity();
    const now = o.now ?? bootNs;
    const ticks$ = o.interval > 0 ? timer(0, o.interval, o.scheduler) : timer(0, o.scheduler);
    const loads$ = o.events$ ? o.events$.pipe(filter((e) => e.type === 'module_load' || e.type === 'module_unload')) : EMPTY;
    return merge(ticks$, loads$).pipe(
      map((): ModuleListEvent => ({ ...self, ts: now(), type: 'module_list', modules: parseModules(readFileSync(path, 'utf8')) })),
    );
  });
}
