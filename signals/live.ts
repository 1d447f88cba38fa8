// Live signals: loads bpf/signals.bpf.c, attaches it, drains its ring buffer through the one decoder into
// a shared stream (the engine and the recorder subscribe to the same source), merges the user-space
// module_list signal and reports lost events (the BPF-side counters) periodically. stop() detaches all.
import { readFileSync } from 'node:fs';
import { Observable, Subject, Subscription, concatMap } from 'rxjs';
import { BpfObject, RingBuffer, quietly, requireLiveBpf, type BpfError, type BpfMap } from '../bpf/libbpf.ts';
import { ensureObject } from '../bpf/build.ts';
import { childLogger } from '../lib/logger.ts';
import type { KrsiEvent } from './events.ts';
import { EV, KRSI_ENV_NAME_LEN, KRSI_ENV_WATCH, KRSI_EV_MAX } from '../bpf/abi.ts';
import { Decoder } from './decode.ts';
import { moduleList$, moduleListUnavailable } from './modules.ts';
import { moduleInventory$, seedKernelView, type KernelModuleView } from './module-inventory.ts';
import { BPF_NOEXIST } from '../bpf/libbpf.ts';
import { decodeModuleViews, encodeModuleSeen } from '../bpf/abi.ts';

const log = childLogger('signals');

/** always watched; SignalsOptions.watchEnv adds to these */
export const DEFAULT_WATCH_ENV = ['LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT'];

/** programs whose failure to attach only makes their signal unavailable */
const OPTIONAL_PROGS: Record<string, string> = {
  krsi_unlink_enter: 'unlink', krsi_unlink_exit: 'unlink', krsi_unlinkat_enter: 'unlink', krsi_unlinkat_exit: 'unlink',
  krsi_vfs_unlink: 'unlink_target',
  krsi_mprotect: 'mprotect', krsi_pkey_mprotect: 'pkey_mprotect', krsi_module_load: 'module_load', krsi_module_unload: 'module_unload',
  krsi_finit_enter: 'module_file', krsi_finit_exit: 'module_file',
};

/** the module programs: not loaded on a kernel without modules */
const MODULE_PROGS = ['krsi_module_load', 'krsi_module_unload', 'krsi_module_iter', 'krsi_finit_enter', 'krsi_finit_exit'];
/** programs run on demand, never attached at start (the module view's iterator) */
const ON_DEMAND_PROGS = ['krsi_module_iter'];

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
};

const KIND_NAMES: Record<number, string> = Object.fromEntries(Object.entries(EV).map(([k, v]) => [v, k]));

export interface SignalsOptions {
  /** environment variables to report on exec, besides LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT (8 in all) */
  watchEnv?: string[];
  /** module_list snapshot period in ms (default 30000; 0: only after module loads) */
  modulesInterval?: number;
  /** module inventory period in ms (default: $KRSI_MODULE_INVENTORY_MS, else 30000; 0: at start and after module events only) */
  inventoryInterval?: number;
  /** wait before a second read confirms an inventory disagreement, ms (default 1000) */
  inventoryConfirmMs?: number;
  /** how often lost events are checked and logged, ms (default 5000; 0: never) */
  lostInterval?: number;
  /** ring buffer size in bytes (a power of two, default the program's 16 MiB) */
  ringBytes?: number;
  /** drop krsi's own events in the kernel (default true: its JIT's mprotects would loop) */
  filterSelf?: boolean;
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

/** the watch_names rodata array: up to KRSI_ENV_WATCH names, each < KRSI_ENV_NAME_LEN bytes */
export function encodeWatchNames(names: string[]): Buffer {
  const all = watchedNames(names);
  if (all.length > KRSI_ENV_WATCH) throw new Error(`watchEnv: at most ${KRSI_ENV_WATCH} watched variables in all (${all.join(', ')})`);
  const b = Buffer.alloc(KRSI_ENV_WATCH * KRSI_ENV_NAME_LEN);
  all.forEach((n, i) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(n) || n.length >= KRSI_ENV_NAME_LEN) {
      throw new Error(`watchEnv: '${n}' is not a variable name of at most ${KRSI_ENV_NAME_LEN - 1} characters`);
    }
    b.write(n, i * KRSI_ENV_NAME_LEN, 'latin1');
  });
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
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

/**
 * open bpf/signals.bpf.c's object, set its load-time globals and load it. The verifier gives up with
 * EAGAIN when a signal arrives meanwhile (a profiler's SIGPROF, a Ctrl-C): a few fresh tries then.
 */
function openAndLoad(o: SignalsOptions, noModules: boolean, iterOff: { why?: string } = {}): BpfObject {
  const path = ensureObject('signals');
  for (let attempt = 1; ; attempt++) {
    const obj = BpfObject.open(path);
    try {
      // the module view's iterator: a kernel that refuses iterator programs (as some refuse fentry) loads the rest
      if (iterOff.why) obj.setAutoload('krsi_module_iter', false);
      if (o.filterSelf ?? true) obj.setGlobal('self_tgid', u32(process.pid));
      obj.setGlobal('watch_names', encodeWatchNames(o.watchEnv ?? []));
      obj.setGlobal('watch_count', u32(watchedNames(o.watchEnv ?? []).length));
      if (o.ringBytes) obj.setMaxEntries('events', o.ringBytes);
      if (noModules) for (const p of MODULE_PROGS) obj.setAutoload(p, false);
      obj.load();
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
  const obj = openAndLoad(o, noModules !== undefined, iterOff);
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
      if ((noModules && MODULE_PROGS.includes(prog)) || ON_DEMAND_PROGS.includes(prog)) continue;
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
    let finalLost: Record<string, number> = {};
    const lostInterval = o.lostInterval ?? 5000;
    if (lostInterval > 0) {
      const t = setInterval(() => {
        const by = readLost(lostMap);
        const total = Object.values(by).reduce((a, b) => a + b, 0);
        if (total > lostSeen) log.warn({ lost: total - lostSeen, by }, `lost ${total - lostSeen} events (ring buffer full)`);
        lostSeen = total;
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
