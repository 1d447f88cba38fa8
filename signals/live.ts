// Live signals: loads bpf/signals.bpf.c, attaches it, drains its ring buffer through the one decoder into
// a shared stream (the engine and the recorder subscribe to the same source), merges the user-space
// module_list signal and reports lost events (the BPF-side counters) periodically. stop() detaches all.
import { readFileSync } from 'node:fs';
import { Observable, Subject, Subscription, concatMap } from 'rxjs';
import { BpfObject, RingBuffer, quietly, requireLiveBpf, type BpfError, type BpfMap } from '../bpf/libbpf.ts';
import { ensureObject } from '../bpf/build.ts';
import { childLogger } from '../lib/logger.ts';
import type { KrsiEvent, LostEvent } from './events.ts';
import { bootNs } from './clock.ts';
import { EV, KRSI_ENV_NAME_LEN, KRSI_EV_MAX } from '../bpf/abi.ts';
import { Decoder } from './decode.ts';
import { moduleList$, moduleListUnavailable, selfIdentity } from './modules.ts';
import { seedRunning } from './running.ts';
import { supported } from '../bpf/support.ts';
import { moduleInventory$, seedKernelView, type KernelModuleView } from './module-inventory.ts';
import { BPF_NOEXIST } from '../bpf/libbpf.ts';
import { decodeModuleViews, encodeModuleSeen } from '../bpf/abi.ts';

const log = childLogger('signals');

/** always watched besides every LD_* variable (the kernel matches that prefix itself): glibc's own
 *  (GCONV_PATH, GLIBC_TUNABLES, LOCPATH) and the interpreters' start-up injection points; SignalsOptions.watchEnv
 *  adds to these */
export const DEFAULT_WATCH_ENV = [
  'GCONV_PATH', 'GLIBC_TUNABLES', 'LOCPATH',
  'NODE_OPTIONS', 'PYTHONPATH', 'PYTHONSTARTUP', 'PYTHONHOME', 'PYTHONWARNINGS',
  'JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'JDK_JAVA_OPTIONS',
  'BASH_ENV', 'ENV', 'PERL5OPT', 'PERL5LIB', 'RUBYOPT', 'RUBYLIB',
];
/** names the watch_env map holds at most (bpf/signals.bpf.c) */
const WATCH_MAX = 256;

/** programs whose failure to attach only makes their signal unavailable */
const OPTIONAL_PROGS: Record<string, string> = {
  krsi_unlink_enter: 'unlink', krsi_unlink_exit: 'unlink', krsi_unlinkat_enter: 'unlink', krsi_unlinkat_exit: 'unlink',
  krsi_vfs_unlink: 'unlink_target',
  krsi_rename_enter: 'rename', krsi_rename_exit: 'rename', krsi_renameat_enter: 'rename', krsi_renameat_exit: 'rename',
  krsi_renameat2_enter: 'rename', krsi_renameat2_exit: 'rename',
  krsi_truncate_enter: 'truncate', krsi_truncate_exit: 'truncate', krsi_ftruncate_enter: 'truncate', krsi_ftruncate_exit: 'truncate',
  krsi_open_enter: 'open_truncate', krsi_open_exit: 'open_truncate', krsi_openat_enter: 'open_truncate', krsi_openat_exit: 'open_truncate',
  krsi_openat2_enter: 'open_truncate', krsi_openat2_exit: 'open_truncate', krsi_creat_enter: 'open_truncate', krsi_creat_exit: 'open_truncate',
  krsi_uring_submit: 'io_uring_files', krsi_uring_complete: 'io_uring_files',
  krsi_lsm_unlink: 'lsm_files', krsi_lsm_rename: 'lsm_files', krsi_lsm_path_truncate: 'lsm_files', krsi_lsm_file_truncate: 'lsm_files',
  krsi_mprotect: 'mprotect', krsi_pkey_mprotect: 'pkey_mprotect', krsi_mmap_enter: 'mmap', krsi_mmap_exit: 'mmap', krsi_shmat_enter: 'shmat', krsi_shmat_exit: 'shmat', krsi_brk_enter: 'brk', krsi_brk_exit: 'brk', krsi_exec_stack: 'exec_stack', krsi_module_load: 'module_load', krsi_module_unload: 'module_unload',
  krsi_finit_enter: 'module_file', krsi_finit_exit: 'module_file',
};

/** the module programs: not loaded on a kernel without modules */
const MODULE_PROGS = ['krsi_module_load', 'krsi_module_unload', 'krsi_module_iter', 'krsi_finit_enter', 'krsi_finit_exit'];
/** programs run on demand, never attached at start (the module view's iterator) */
const ON_DEMAND_PROGS = ['krsi_module_iter'];

/** the running-executable LSM programs: loaded only where BPF LSM works (signals/LIVE.md, files) */
const FILE_LSM_PROGS = ['krsi_lsm_unlink', 'krsi_lsm_rename', 'krsi_lsm_path_truncate', 'krsi_lsm_file_truncate'];

/** why the files LSM programs cannot run here, or undefined (BPF LSM active and an LSM program loads) */
function fileLsmUnavailable(): string | undefined {
  const s = supported();
  if (!s.lsmActive) return 'BPF LSM is not active';
  if (!s.lsmLoads) return 'LSM programs do not load on this kernel';
  return undefined;
}

/** the kernel has the file_truncate LSM hook (6.2+; path_truncate covers ftruncate before) */
function hasFileTruncateHook(): boolean {
  try {
    return readFileSync('/sys/kernel/btf/vmlinux').includes('\0bpf_lsm_file_truncate\0');
  } catch {
    return false;
  }
}

/** what an unavailable signal means for the events */
const MEANING: Record<string, string> = {
  unlink_target: 'unlink events carry a target only when the caller deletes its own executable',
  module_load: 'no module_load events',
  module_unload: 'no module_unload events: the hidden-module rule cannot tell an rmmod within its window from a module hiding itself',
  module_list: 'no module_list events',
  module_file: 'module_load events do not name the file a module was loaded from',
  module_inventory: 'no module_inventory events: modules hidden from a view are not found',
  module_inventory_kernel: 'the module inventory compares /proc/modules and /sys/module only: a module that unlinks itself from both is not found',
  pkey_mprotect: 'pkey_mprotect calls are not reported as mprotect events',
  mmap: 'no mmap events (W+X and anonymous executable mappings)',
  shmat: 'shmat(SHM_EXEC) is not reported as an mmap event',
  brk: 'a heap grown by brk under READ_IMPLIES_EXEC (writable and executable) is not reported as an mmap event',
  exec_stack: 'the writable and executable stack of an image built with an executable stack is not reported as an mmap event',
  lsm_files: 'unlink, rename and truncate of running executables are found by the syscall tracepoints only (signals/LIVE.md: gaps)',
  io_uring_files: 'io_uring unlinkat/renameat of running executables are not reported',
};

const KIND_NAMES: Record<number, string> = Object.fromEntries(Object.entries(EV).map(([k, v]) => [v, k]));

export interface SignalsOptions {
  /** environment variables to report on exec, besides every LD_* and DEFAULT_WATCH_ENV */
  watchEnv?: string[];
  /** module_list snapshot period in ms (default 30000; 0: only after module loads) */
  modulesInterval?: number;
  /** module inventory period in ms (default: $KRSI_MODULE_INVENTORY_MS, else 30000; 0: at start and after module events only) */
  inventoryInterval?: number;
  /** wait before a second read confirms an inventory disagreement, ms (default 1000) */
  inventoryConfirmMs?: number;
  /** how often lost events are checked and logged, ms (default 5000; 0: never) */
  lostInterval?: number;
  /** ring buffer size in bytes of the rare kinds' ring (a power of two, default the program's 16 MiB) */
  ringBytes?: number;
  /** the same for the bulk ring of mprotect and mmap events (default 8 MiB) */
  memRingBytes?: number;
  /** drop krsi's own events in the kernel (default true: its JIT's mprotects would loop) */
  filterSelf?: boolean;
  /** the running-executable LSM programs (inode_unlink, inode_rename, path/file_truncate): default where BPF LSM
   *  works; false: the syscall tracepoints alone, as on a tracepoint-only kernel */
  fileLsm?: boolean;
  /** tests: run_inode's size (default the program's 16384), to fill it on purpose */
  runInodeEntries?: number;
}

export interface LiveSignals {
  /** every event, in ts order */
  events$: Observable<KrsiEvent>;
  /** the same events in the batches they were drained in (cheaper for the engine and the recorder) */
  batches$: Observable<KrsiEvent[]>;
  /** events the kernel could not hand over (ring buffer full), all kinds */
  lost(): number;
  lostByKind(): Record<string, number>;
  /** signals that cannot run on this kernel, with the reason */
  unavailable: Record<string, string>;
  /** errors: records whose handler threw while draining (optional: stub sources may omit it) */
  stats(): { records: number; events: number; bad: number; reordered: number; errors?: number };
  /** tests: a map of the loaded signals object, by name (optional: stub sources omit it) */
  map?(name: string): BpfMap;
  stop(): Promise<void>;
}

const byTs = (a: KrsiEvent, b: KrsiEvent) => a.ts - b.ts;

/**
 * sort a drained batch by ts, stably (as Array.prototype.sort): an insertion sort, linear on the nearly
 * ordered batches a ring gives (records of different CPUs cross by microseconds), and sort() once the
 * moves pass a few per event
 */
export function sortByTs(a: KrsiEvent[]): void {
  let budget = 4 * a.length;
  for (let i = 1; i < a.length; i++) {
    const e = a[i];
    const t = e.ts;
    if (a[i - 1].ts <= t) continue;
    let j = i - 1;
    while (j >= 0 && a[j].ts > t) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = e;
    budget -= i - 1 - j;
    if (budget < 0) {
      a.sort(byTs);
      return;
    }
  }
}

let moduleTpCache: string | undefined | null = null;

/** why the module_load tracepoint is missing, or undefined (looked up in the kernel's BTF) */
export function moduleLoadUnavailable(): string | undefined {
  if (moduleTpCache !== null) return moduleTpCache;
  try {
    const btf = readFileSync('/sys/kernel/btf/vmlinux');
    moduleTpCache = btf.includes('\0btf_trace_module_load\0') ? undefined : 'the kernel has no module_load tracepoint (no module support)';
  } catch {
    moduleTpCache = 'no /sys/kernel/btf/vmlinux';
  }
  return moduleTpCache;
}

/** the watched variables: DEFAULT_WATCH_ENV and names, without duplicates */
function watchedNames(names: string[]): string[] {
  return [...new Set([...DEFAULT_WATCH_ENV, ...names])];
}

/** the watch_env map's keys: each name NUL-padded to KRSI_ENV_NAME_LEN bytes (LD_* need none: the kernel
 *  matches the prefix) */
export function watchKeys(names: string[]): Buffer[] {
  const all = watchedNames(names);
  if (all.length > WATCH_MAX) throw new Error(`watchEnv: at most ${WATCH_MAX} watched variables in all`);
  return all.map((n) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(n) || n.length >= KRSI_ENV_NAME_LEN) {
      throw new Error(`watchEnv: '${n}' is not a variable name of at most ${KRSI_ENV_NAME_LEN - 1} characters`);
    }
    const b = Buffer.alloc(KRSI_ENV_NAME_LEN);
    b.write(n, 0, 'latin1');
    return b;
  });
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** the kinds on the bulk ring (mem_events); every other kind is on the rare ring (events) */
export const BULK_KINDS: readonly string[] = ['mprotect', 'mmap'];

/**
 * `lost` events for what was lost since `seen` (per kind, updated): one per class whose count grew
 * (signals/EVENTS.md, `lost`)
 */
export function lostEvents(by: Record<string, number>, seen: Record<string, number>, ts: number, who: ReturnType<typeof selfIdentity>): LostEvent[] {
  const out: LostEvent[] = [];
  for (const cls of ['rare', 'bulk'] as const) {
    const kinds: Record<string, number> = {};
    let count = 0;
    for (const [k, n] of Object.entries(by)) {
      if ((BULK_KINDS.includes(k) ? 'bulk' : 'rare') !== cls) continue;
      const d = n - (seen[k] ?? 0);
      if (d > 0) {
        kinds[k] = d;
        count += d;
        seen[k] = n;
      }
    }
    if (count) out.push({ ts, type: 'lost', ...who, class: cls, count, kinds });
  }
  return out;
}

/** per-kind sums of the per-CPU "lost" counters */
function readLost(m: BpfMap): Record<string, number> {
  const out: Record<string, number> = {};
  for (let k = 1; k < KRSI_EV_MAX; k++) {
    const v = m.lookup(u32(k));
    if (!v) continue;
    let n = 0;
    for (let o = 0; o + 8 <= v.length; o += 8) n += Number(v.readBigUInt64LE(o));
    if (n) out[KIND_NAMES[k] ?? `kind${k}`] = n;
  }
  return out;
}

/** the run_full counters (signals.bpf.c RUN_FULL_*): updates of the running-executable maps that found them full */
const RUN_FULL_SLOTS = ['run_inode', 'run_tgid', 'run_names'] as const;
function readRunFull(m: BpfMap): Record<string, number> {
  const out: Record<string, number> = {};
  RUN_FULL_SLOTS.forEach((name, i) => {
    const v = m.lookup(u32(i));
    const n = v ? Number(v.readBigUInt64LE(0)) : 0;
    if (n) out[name] = n;
  });
  return out;
}

/**
 * a `lost` event of class `running` for the running-executable map updates that failed since `seen`
 * (updated): while a map is full, deleting a running executable may go unreported (signals/EVENTS.md)
 */
export function runningLost(by: Record<string, number>, seen: Record<string, number>, ts: number, who: ReturnType<typeof selfIdentity>): LostEvent | undefined {
  const kinds: Record<string, number> = {};
  let count = 0;
  for (const [k, n] of Object.entries(by)) {
    const d = n - (seen[k] ?? 0);
    if (d > 0) {
      kinds[k] = d;
      count += d;
      seen[k] = n;
    }
  }
  return count ? { ts, type: 'lost', ...who, class: 'running', count, kinds } : undefined;
}

/**
 * open bpf/signals.bpf.c's object, set its load-time globals and load it. The verifier gives up with
 * EAGAIN when a signal arrives meanwhile (a profiler's SIGPROF, a Ctrl-C): a few fresh tries then.
 */
function openAndLoad(o: SignalsOptions, noModules: boolean, off: Set<string>, iterOff: { why?: string } = {}): BpfObject {
  const path = ensureObject('signals');
  for (let attempt = 1; ; attempt++) {
    const obj = BpfObject.open(path);
    try {
      // the module view's iterator: a kernel that refuses iterator programs (as some refuse fentry) loads the rest
      if (iterOff.why) obj.setAutoload('krsi_module_iter', false);
      if (o.filterSelf ?? true) obj.setGlobal('self_tgid', u32(process.pid));
      const keys = watchKeys(o.watchEnv ?? []);
      if (o.ringBytes) obj.setMaxEntries('events', o.ringBytes);
      if (o.memRingBytes) obj.setMaxEntries('mem_events', o.memRingBytes);
      if (o.runInodeEntries) obj.setMaxEntries('run_inode', o.runInodeEntries);
      if (noModules) for (const p of MODULE_PROGS) obj.setAutoload(p, false);
      for (const p of off) obj.setAutoload(p, false);
      obj.setGlobal('lsm_active', u32(off.has('krsi_lsm_unlink') ? 0 : 1));
      obj.load();
      // before any program attaches: the first exec seen already knows every name
      const watch = obj.map('watch_env');
      for (const k of keys) watch.update(k, u32(1));
      return obj;
    } catch (e) {
      obj.close();
      if (!noModules && !iterOff.why && (e as BpfError).errno !== 11) {
        iterOff.why = `loading the signal programs with the module view's iterator failed (${(e as Error).message}); loaded without it`;
        continue;
      }
      if ((e as BpfError).errno !== 11 || attempt >= 3) throw e;
      log.warn({ attempt }, 'signal programs: verifier interrupted (EAGAIN), loading again');
    }
  }
}

/** the kernel's own module view: module_seen read through krsi_module_iter, seeded from kallsyms */
function kernelModuleView(obj: BpfObject): KernelModuleView {
  const seen = obj.map('module_seen');
  const key = (addr: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(addr);
    return b;
  };
  let full = 0;
  return {
    read: () => {
      const views = decodeModuleViews(obj.iterateMap('krsi_module_iter', 'module_seen'));
      const v = obj.map('module_seen_full').lookup(u32(0));
      const n = v ? Number(v.readBigUInt64LE(0)) : 0;
      if (n > full) log.warn({ unrecorded: n }, `module inventory: the kernel view is full (${views.length} modules): ${n - full} more module loads not recorded`);
      full = n;
      return views;
    },
    seed(mods) {
      let n = 0;
      for (const m of mods) {
        try {
          seen.update(key(m.addr), encodeModuleSeen(m.name), BPF_NOEXIST);
          n++;
        } catch {
          // already recorded by the kernel (it loaded meanwhile), or the map is full
        }
      }
      return n;
    },
    drop: (addr) => void seen.delete(key(BigInt(`0x${addr}`))),
    full: () => {
      const v = obj.map('module_seen_full').lookup(u32(0));
      return v ? Number(v.readBigUInt64LE(0)) : 0;
    },
  };
}

/** load, attach and start draining the signal programs (root, libbpf.so.1, clang for the first build) */
export async function startSignals(o: SignalsOptions = {}): Promise<LiveSignals> {
  requireLiveBpf();
  const unavailable: Record<string, string> = {};
  const noModules = moduleLoadUnavailable();
  if (noModules) unavailable.module_load = unavailable.module_unload = noModules;
  const iterOff: { why?: string } = {};
  // the files LSM programs only where BPF LSM works; file_truncate from 6.2
  const off = new Set<string>();
  const noLsm = o.fileLsm === false ? 'turned off (fileLsm: false)' : fileLsmUnavailable();
  if (noLsm) {
    unavailable.lsm_files = noLsm;
    for (const p of FILE_LSM_PROGS) off.add(p);
  } else {
    if (!hasFileTruncateHook()) off.add('krsi_lsm_file_truncate');
    // the LSM hooks see io_uring's unlinks and renames in its worker: the io_uring tracepoints (named
    // io_uring_submit_req from 6.4) are needed only where they are missing
    off.add('krsi_uring_submit');
    off.add('krsi_uring_complete');
  }
  const obj = openAndLoad(o, noModules !== undefined, off, iterOff);
  const decoder = new Decoder();
  const batches = new Subject<KrsiEvent[]>();
  const events = new Subject<KrsiEvent>();
  const subs = new Subscription();
  const timers: NodeJS.Timeout[] = [];
  let ring: RingBuffer | undefined;
  let pending: KrsiEvent[] = [];
  let lastTs = 0;
  let records = 0;
  let delivered = 0;
  let reordered = 0;
  let stopped = false;

  // one drain turn of the ring buffer becomes one batch, sorted by ts (records of different CPUs can
  // cross by microseconds) and kept non-decreasing across batches, as logs and windows need
  const flush = () => {
    const batch = pending;
    pending = [];
    if (!batch.length) return;
    sortByTs(batch);
    if (batch[0].ts >= lastTs) lastTs = batch[batch.length - 1].ts;
    else {
      for (const e of batch) {
        if (e.ts < lastTs) {
          e.kts = e.ts;
          e.ts = lastTs;
          reordered++;
        } else lastTs = e.ts;
      }
    }
    delivered += batch.length;
    batches.next(batch);
    if (events.observed) for (const e of batch) events.next(e);
  };
  const push = (e: KrsiEvent) => {
    if (!pending.length) queueMicrotask(flush);
    pending.push(e);
  };

  try {
    for (const prog of obj.programs()) {
      if ((noModules && MODULE_PROGS.includes(prog)) || off.has(prog) || ON_DEMAND_PROGS.includes(prog)) continue;
      try {
        // an optional program's attach failure is reported once below, without libbpf's own lines
        if (OPTIONAL_PROGS[prog]) quietly(() => obj.attach(prog));
        else obj.attach(prog);
      } catch (e) {
        const signal = OPTIONAL_PROGS[prog];
        if (!signal) throw e;
        unavailable[signal] = (e as Error).message;
      }
    }
    // processes that started before krsi: their executables, from /proc (after attaching: exits are seen)
    const seeded = seedRunning(obj.map('run_inode'), obj.map('run_tgid'), process.pid);
    log.debug({ seeded }, 'running executables seeded from /proc');
    const noList = moduleListUnavailable();
    if (noList) unavailable.module_list = noList;
    for (const [s, why] of Object.entries(unavailable)) log.warn({ signal: s }, `signal ${s} unavailable${MEANING[s] ? ` (${MEANING[s]})` : ''}: ${why}`);

    // records are decoded in place in the ring (no Buffer per record)
    ring = new RingBuffer((data, offset, length) => {
      records++;
      const e = decoder.decodeAt(data, offset, length);
      if (e) push(e);
    }, { view: true });
    ring.add(obj.map('events'));
    ring.add(obj.map('mem_events'));
    ring.start();

    if (!noList) {
      // a snapshot right after each module_load and module_unload (taken from the batches: no per-event
      // subject on the hot path)
      const loads$ = batches.pipe(concatMap((b) => b.filter((e) => e.type === 'module_load' || e.type === 'module_unload')));
      // after each read, the ring is drained first: kernel events from before the read come before the snapshot
      subs.add(moduleList$({ interval: o.modulesInterval ?? 30_000, events$: loads$, afterRead: () => ring?.drainAll() }).subscribe(push));
      // the inventory: /proc/modules, /sys/module and the kernel's own view, cross-checked
      let kernel: KernelModuleView | undefined;
      if (iterOff.why) unavailable.module_inventory_kernel = iterOff.why;
      else if (!noModules) {
        try {
          kernel = kernelModuleView(obj);
          kernel.read();
          const seeded = seedKernelView({ interval: 0, kernel });
          log.info({ seeded }, `module inventory: ${seeded} modules loaded before krsi seeded from kallsyms`);
        } catch (e) {
          kernel = undefined;
          unavailable.module_inventory_kernel = (e as Error).message;
          log.warn({ signal: 'module_inventory_kernel' }, `signal module_inventory_kernel unavailable (${MEANING.module_inventory_kernel}): ${(e as Error).message}`);
        }
      }
      const envMs = Number(process.env.KRSI_MODULE_INVENTORY_MS);
      const interval = o.inventoryInterval ?? (Number.isFinite(envMs) && envMs >= 0 && process.env.KRSI_MODULE_INVENTORY_MS ? envMs : 30_000);
      subs.add(moduleInventory$({ interval, confirmMs: o.inventoryConfirmMs, events$: loads$, kernel }).subscribe(push));
    } else unavailable.module_inventory = noList;

    const lostMap = obj.map('lost');
    let lostSeen = 0;
    const runFull = obj.map('run_full');
    const runFullSeen: Record<string, number> = {};
    let finalLost: Record<string, number> = {};
    // what `lost` events have reported, per kind
    const lostReported: Record<string, number> = {};
    let who: ReturnType<typeof selfIdentity> | undefined;
    const reportLost = (by: Record<string, number>) => {
      const ev = lostEvents(by, lostReported, bootNs(), (who ??= selfIdentity()));
      for (const e of ev) push(e);
    };
    const lostInterval = o.lostInterval ?? 5000;
    if (lostInterval > 0) {
      const t = setInterval(() => {
        const by = readLost(lostMap);
        const total = Object.values(by).reduce((a, b) => a + b, 0);
        if (total > lostSeen) log.warn({ lost: total - lostSeen, by }, `lost ${total - lostSeen} events (ring buffer full)`);
        lostSeen = total;
        reportLost(by);
        // a full running-executable map switches the deletion check off for what it could not hold: a lost event
        const full = runningLost(readRunFull(runFull), runFullSeen, bootNs(), (who ??= selfIdentity()));
        if (full) {
          log.warn({ run_full: full.kinds }, `${full.count} running executables not tracked (running-executable maps full): their deletion may go unreported`);
          push(full);
        }
      }, lostInterval);
      t.unref();
      timers.push(t);
    }
    log.info({ attached: obj.attached().length, unavailable: Object.keys(unavailable) }, 'signals started');

    return {
      events$: events.asObservable(),
      batches$: batches.asObservable(),
      lost: () => Object.values(stopped ? finalLost : readLost(lostMap)).reduce((a, b) => a + b, 0),
      lostByKind: () => (stopped ? finalLost : readLost(lostMap)),
      unavailable,
      stats: () => ({ records, events: delivered, bad: decoder.bad, reordered, errors: ring?.errors ?? 0 }),
      map: (name: string) => obj.map(name),
      async stop() {
        if (stopped) return;
        stopped = true;
        for (const t of timers) clearInterval(t);
        subs.unsubscribe();
        // hand over what is still in the ring, then unmap it and detach; the programs are detached
        // and the streams completed even when draining or the last lost count fails
        try {
          ring?.drainAll();
        } finally {
          await ring?.stop();
          try {
            finalLost = readLost(lostMap);
            reportLost(finalLost);
          } finally {
            obj.close();
            flush();
            batches.complete();
            events.complete();
          }
        }
        // records the decoder rejected are otherwise only counted (stats().bad, the metrics)
        if (decoder.bad) log.warn({ bad: decoder.bad }, `${decoder.bad} ring buffer records could not be decoded (too short or of an unknown kind)`);
        log.info({ records, events: delivered }, 'signals stopped');
      },
    };
  } catch (e) {
    for (const t of timers) clearInterval(t);
    subs.unsubscribe();
    await ring?.stop();
    obj.close();
    throw e;
  }
}
