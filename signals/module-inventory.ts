// The module inventory: independent views of the loaded kernel modules, cross-checked at start, every
// period and after each module load or unload. A module present in one view and missing from another is a
// `module_inventory` event saying what each view says (signals/EVENTS.md):
//   proc_modules  /proc/modules (the module list, through its seq_file: a hooked show() filters it)
//   sys_module    /sys/module/<name> of loadable modules (those with an `initstate`; built-ins have none)
//   kernel        signals.bpf.c's module_seen: every struct module seen at tp_btf/module_load (or seeded from
//                 kallsyms' __this_module at start) until tp_btf/module_free, read by an iterator that says
//                 whether each is still on the module list (its neighbours point back at it) and in sysfs.
// A module that unlinks itself (list_del) stays in the kernel view, unlinked; a decoy loaded under its name
// afterwards makes two entries of that name, one unlinked. Modules loaded before krsi started are only
// seeded when kallsyms lists them (a module already hidden then is in no view krsi has); those loaded while
// krsi was down likewise. A disagreement must hold over two reads `confirmMs` apart (a module loading or
// unloading between the reads of two views is not one), and is reported once until it changes.
// A module whose name changed since its load (`load_name`), and two modules reading as on the list under one
// name (`unique_name`), are findings too: a module that fakes its list entry (next and prev at a private node
// pointing back) and copies a loaded module's name would otherwise agree with every view.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EMPTY, Observable, auditTime, defer, exhaustMap, filter, from, merge, mergeMap, timer, type SchedulerLike } from 'rxjs';
import type { KrsiEvent, ModuleInventoryEvent } from './events.ts';
import { bootNs } from './clock.ts';
import { parseModules, selfIdentity } from './modules.ts';

/** one struct module the kernel view holds (signals.bpf.c's krsi_module_view) */
export interface KernelModule {
  /** the struct module pointer, hex */
  addr: string;
  /** mod->name now */
  name: string;
  /** the name recorded at load (or from kallsyms) */
  recorded: string;
  /** on the module list (both neighbours point back at it) */
  linked: boolean;
  /** mkobj.kobj.sd set: a /sys/module directory */
  sysfs: boolean;
  /** the struct could be read */
  readable: boolean;
  /** enum module_state */
  state: number;
  /** seeded from kallsyms at start, not seen loading */
  seeded: boolean;
}

/** the kernel view: read it, seed it */
export interface KernelModuleView {
  read(): KernelModule[];
  /** puts the struct module pointers kallsyms names into the view (never over an entry the kernel made) */
  seed(mods: { addr: bigint; name: string }[]): number;
  /** removes an entry (a seeded one found stale) */
  drop(addr: string): void;
  /** module loads the view could not record (map full) */
  full(): number;
}

export interface InventoryOptions {
  /** period in ms (0: at start and after module events only) */
  interval: number;
  /** wait before a second read confirms a disagreement (default 1000 ms) */
  confirmMs?: number;
  /** after each module_load / module_unload, check again this much later (default 1000 ms) */
  settleMs?: number;
  events$?: Observable<KrsiEvent>;
  kernel?: KernelModuleView;
  /** test seams: where the views are read */
  procModules?: string;
  sysModule?: string;
  kallsyms?: string;
  now?: () => number;
  scheduler?: SchedulerLike;
}

export const SYS_MODULE = '/sys/module';
export const KALLSYMS = '/proc/kallsyms';

/** loadable modules under /sys/module: directories with an `initstate` file (built-ins have none) */
export function sysModules(dir = SYS_MODULE): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) if (existsSync(join(dir, n, 'initstate'))) out.push(n);
  return out.sort();
}

/** the struct module of each module kallsyms lists (its __this_module symbol); zero addresses (kptr_restrict) skipped */
export function kallsymsModules(text: string): { addr: bigint; name: string }[] {
  const out: { addr: bigint; name: string }[] = [];
  for (const m of text.matchAll(/^([0-9a-f]+) \S __this_module\t\[([^\]\s]+)\]/gm)) {
    const addr = BigInt(`0x${m[1]}`);
    if (addr) out.push({ addr, name: m[2] });
  }
  return out;
}

/** what the three views say of one module name, when they disagree */
export interface InventoryFinding {
  name: string;
  proc_modules?: boolean;
  sys_module?: boolean;
  kernel?: { recorded: number; linked: number; unlinked: number; sysfs: number; seeded: number; addrs: string[]; renamed?: number; load_names?: string[] };
  missing_from: string[];
  present_in: string[];
}

/**
 * the names the views disagree on. A view that could not be read is undefined and says nothing. The kernel
 * view says nothing of a name it never recorded (loaded before krsi, or while it was down).
 */
export function compareViews(proc: string[] | undefined, sys: string[] | undefined, kernel: KernelModule[] | undefined): InventoryFinding[] {
  const p = proc && new Set(proc), s = sys && new Set(sys);
  const byName = new Map<string, KernelModule[]>();
  for (const k of kernel ?? []) {
    if (!k.readable) continue;
    const n = k.name || k.recorded;
    byName.set(n, [...(byName.get(n) ?? []), k]);
  }
  const names = new Set<string>([...(proc ?? []), ...(sys ?? []), ...byName.keys()]);
  const out: InventoryFinding[] = [];
  for (const name of [...names].sort()) {
    const ks = byName.get(name);
    const f: InventoryFinding = { name, missing_from: [], present_in: [] };
    if (p) (p.has(name) ? f.present_in : f.missing_from).push('proc_modules');
    if (s) (s.has(name) ? f.present_in : f.missing_from).push('sys_module');
    if (p) f.proc_modules = p.has(name);
    if (s) f.sys_module = s.has(name);
    if (ks) {
      const linked = ks.filter((k) => k.linked).length;
      f.kernel = {
        recorded: ks.length, linked, unlinked: ks.length - linked, sysfs: ks.filter((k) => k.sysfs).length,
        seeded: ks.filter((k) => k.seeded).length, addrs: ks.map((k) => k.addr),
      };
      f.present_in.push('kernel');
      if (f.kernel.unlinked) f.missing_from.push('module_list');
      // mod->name rewritten since its load: a module that points its list entry at a private node pointing
      // back (so it reads as linked) and copies a loaded module's name shows that name in every view. Seeded
      // entries are not judged: their recorded name is kallsyms' read, not the load's
      const renamed = ks.filter((k) => !k.seeded && k.recorded && k.name !== k.recorded);
      if (renamed.length) {
        f.kernel.renamed = renamed.length;
        f.kernel.load_names = [...new Set(renamed.map((k) => k.recorded))].sort();
        f.missing_from.push('load_name');
      }
      // the kernel never has two modules of one name on its list (load_module refuses the second): two that
      // both read as linked are one real module and an impostor on a list of its own
      if (linked > 1) f.missing_from.push('unique_name');
    }
    if (f.missing_from.length && f.present_in.length) out.push(f);
  }
  return out;
}

/** one key per finding: a changed finding is reported again */
const signature = (f: InventoryFinding) => JSON.stringify([f.missing_from, f.present_in, f.kernel?.recorded, f.kernel?.linked, f.kernel?.sysfs, f.kernel?.renamed]);

function readViews(o: InventoryOptions): { proc?: string[]; sys?: string[]; kernel?: KernelModule[] } {
  const tryRead = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch {
      return undefined;
    }
  };
  // the kernel view first: a module loading after this read is in /proc/modules and /sys/module only, which
  // the kernel view does not contradict (it says nothing of names it has not recorded)
  const kernel = o.kernel ? tryRead(() => o.kernel!.read()) : undefined;
  return {
    kernel,
    proc: tryRead(() => parseModules(readFileSync(o.procModules ?? '/proc/modules', 'utf8'))),
    sys: tryRead(() => sysModules(o.sysModule ?? SYS_MODULE)),
  };
}

/** the struct module of a module from /sys/module/<name>/sections/.gnu.linkonce.this_module (root reads the address) */
function sysfsModuleAddr(sys: string, name: string): bigint | undefined {
  try {
    const v = BigInt(readFileSync(join(sys, name, 'sections', '.gnu.linkonce.this_module'), 'utf8').trim());
    return v || undefined;
  } catch {
    return undefined;
  }
}

/**
 * seeds the kernel view with the modules loaded before krsi: their struct module from kallsyms' __this_module
 * (kernels with CONFIG_KALLSYMS_ALL), else from /sys/module/<name>/sections/.gnu.linkonce.this_module; then
 * drops seeded entries of modules gone meanwhile. Both walk the module list or sysfs: a module already hidden
 * from them is not seeded.
 */
export function seedKernelView(o: InventoryOptions): number {
  if (!o.kernel) return 0;
  let listed: string[];
  try {
    listed = parseModules(readFileSync(o.procModules ?? '/proc/modules', 'utf8'));
  } catch {
    return 0;
  }
  let mods: { addr: bigint; name: string }[] = [];
  try {
    mods = kallsymsModules(readFileSync(o.kallsyms ?? KALLSYMS, 'utf8'));
  } catch {
    // no kallsyms: sysfs below
  }
  const have = new Set(mods.map((m) => m.name));
  for (const name of listed) {
    if (have.has(name)) continue;
    const addr = sysfsModuleAddr(o.sysModule ?? SYS_MODULE, name);
    if (addr) mods.push({ addr, name });
  }
  const n = o.kernel.seed(mods);
  // a module freed between those reads and the seeding left a stale pointer no module_free removes
  let now = new Set(listed);
  try {
    now = new Set(parseModules(readFileSync(o.procModules ?? '/proc/modules', 'utf8')));
  } catch {
    // keep the first read
  }
  for (const k of o.kernel.read()) if (k.seeded && (!k.readable || k.name !== k.recorded || !now.has(k.recorded))) o.kernel.drop(k.addr);
  return n;
}

/** module_inventory events: a check at start, every `interval` ms and `settleMs` after each module event */
export function moduleInventory$(o: InventoryOptions): Observable<ModuleInventoryEvent> {
  return defer(() => {
    const self = selfIdentity();
    const now = o.now ?? bootNs;
    const reported = new Map<string, string>();
    const confirm = o.confirmMs ?? 1000;
    const settle = o.settleMs ?? 1000;
    const ticks$ = o.interval > 0 ? timer(0, o.interval, o.scheduler) : timer(0, o.scheduler);
    const loads$ = o.events$
      ? o.events$.pipe(filter((e) => e.type === 'module_load' || e.type === 'module_unload'), auditTime(settle, o.scheduler))
      : EMPTY;
    const check = (): Observable<ModuleInventoryEvent> => {
      const v1 = readViews(o);
      const first = compareViews(v1.proc, v1.sys, v1.kernel);
      if (!first.length) {
        reported.clear();
        return EMPTY;
      }
      return timer(confirm, o.scheduler).pipe(
        mergeMap(() => {
          const ts = now();
          const v2 = readViews(o);
          const again = compareViews(v2.proc, v2.sys, v2.kernel);
          const before = new Map(first.map((f) => [f.name, signature(f)]));
          const out: ModuleInventoryEvent[] = [];
          const still = new Set<string>();
          for (const f of again) {
            const sig = signature(f);
            still.add(f.name);
            if (before.get(f.name) !== sig || reported.get(f.name) === sig) continue;
            reported.set(f.name, sig);
            out.push({ ...self, ts, type: 'module_inventory', ...f, summary: summary(f) });
          }
          for (const n of [...reported.keys()]) if (!still.has(n)) reported.delete(n);
          return from(out);
        }),
      );
    };
    // a flood of module events asks for one check per settleMs at most (auditTime), and a check asked for
    // while one runs is dropped (exhaustMap): the next period's covers it
    return merge(ticks$, loads$).pipe(exhaustMap(check));
  });
}

/** what the views say, in words */
export function summary(f: InventoryFinding): string {
  const parts: string[] = [];
  if (f.proc_modules !== undefined) parts.push(`/proc/modules ${f.proc_modules ? 'lists it' : 'does not list it'}`);
  if (f.sys_module !== undefined) parts.push(`/sys/module ${f.sys_module ? 'has it' : 'does not have it'}`);
  if (f.kernel) {
    const k = f.kernel;
    parts.push(`the kernel holds ${k.recorded} module${k.recorded === 1 ? '' : 's'} of that name, ${k.linked} on the module list${k.unlinked ? `, ${k.unlinked} unlinked from it` : ''}`);
    if (k.renamed) parts.push(`${k.renamed} of them loaded as ${k.load_names?.join(', ')} and renamed since`);
    if (f.missing_from.includes('unique_name')) parts.push('two on the module list under one name, which the kernel never allows');
  }
  return parts.join('; ');
}
