// The user-space module_list signal: snapshots of the kernel's visible module list (/proc/modules),
// right after each module_load and module_unload event, and periodically. A module that loaded, was not
// unloaded, and is missing from the next snapshot is hiding. Unavailable (with a reason) when the kernel has no module support.
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { EMPTY, Observable, defer, filter, map, merge, mergeMap, timer, type SchedulerLike } from 'rxjs';
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
  /** the live events: a snapshot follows each module_load and module_unload, `settleMs` later */
  events$?: Observable<KrsiEvent>;
  /** wait after a module event before reading /proc/modules (default 250): a module's init runs after
   *  its module_load is reported, and a failed init's module_unload should reach the engine before a
   *  snapshot that lacks the module */
  settleMs?: number;
  /** called right after /proc/modules is read, before the snapshot is emitted: live, it hands over the
   *  kernel events still in the ring, so that a module_unload that happened before the read reaches
   *  the engine before the snapshot that lacks the module */
  afterRead?: () => void;
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
    const settle = o.settleMs ?? 250;
    const loads$ = o.events$
      ? o.events$.pipe(
          filter((e) => e.type === 'module_load' || e.type === 'module_unload'),
          mergeMap((e) => (settle > 0 ? timer(settle, o.scheduler).pipe(map(() => e)) : [e])),
        )
      : EMPTY;
    return merge(ticks$, loads$).pipe(
      map((): ModuleListEvent => {
        // the time before the read: a module loaded after it may be missing from the list, and a rule
        // must not count it against the snapshot (absent/lacks skips first events later than then)
        const ts = now();
        const modules = parseModules(readFileSync(path, 'utf8'));
        o.afterRead?.();
        return { ...self, ts, type: 'module_list', modules };
      }),
    );
  });
}
