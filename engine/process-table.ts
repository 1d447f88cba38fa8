// The process table: pid (tgid) -> what rules see as the `proc` fact. Forks inherit from the parent,
// exec replaces the image and the watched environment, exit frees the entry (the engine calls
// release() after the exit event was evaluated). Bounded: at `cap` entries the oldest is evicted.
// An exec with LD_PRELOAD or LD_AUDIT (or ld.so run with --preload / --audit, or an environment the signal
// could not read whole) marks the process `loader_injected`; its forks inherit the mark (they run the
// injected library without an exec of their own) until one of them execs without it.
import type { KrsiEvent, LdsoOptions } from '../signals/events.ts';
import type { LoaderInjection, ProcFacts } from './rules/types.ts';
import { setYoungest } from '../lib/bounded-map.ts';

export const MAX_ANCESTORS = 16;
const NO_ENV: Record<string, string> = Object.freeze({}) as Record<string, string>;
const NO_ANCESTORS: ProcFacts['ancestors'] = Object.freeze([]) as unknown as ProcFacts['ancestors'];

/** ld.so run as a program takes the same injection as options: `ld.so --preload LIB prog` */
const LOADER_OPTIONS: Record<string, LoaderInjection['var']> = { '--preload': 'LD_PRELOAD', '--audit': 'LD_AUDIT' };

/** the mark of an exec whose environment the signal could not read whole: a loader variable may be past
 *  the bound, so the process counts as injected with a library nobody allowlisted (fail closed) */
export const ENV_TRUNCATED = '<environment truncated>';
/** the same for ld.so's options when the kernel's scan of them hit a bound */
export const LDSO_TRUNCATED = '<loader options truncated>';

/** the libraries of one loader list: ld.so splits LD_PRELOAD and --preload on spaces and colons, LD_AUDIT
 *  and --audit on colons; empty entries are ignored */
function entries(value: string, separators: RegExp): string[] {
  return value.split(separators).filter((x) => x.trim() !== '');
}

/**
 * The injection an exec makes, as the chain rule keys it: every library ld.so will load into the new image
 * from the environment (LD_PRELOAD, each entry; LD_AUDIT) and from its own options when it runs as a
 * program (the exec event's `ldso`, decoded by the kernel whatever the loader file is called; argv and the
 * file name only for an older log without `ldso`). The mark names the first library not on `allow` (the
 * preload_allowlist), so a rule's notInList on `value` sees it even behind an allowlisted one; when every one
 * is allowlisted it names the first (the rule does not fire). An environment (or an option block) the signal
 * could not read whole marks the process with a value no list holds: a loader variable may be past the bound.
 */
export function injectionOf(ev: { env?: Record<string, string>; env_truncated?: boolean; argv?: readonly string[]; filename?: string; ldso?: LdsoOptions }, pid: number, ts: number, allow?: ReadonlySet<string | number>): LoaderInjection | undefined {
  const found: [LoaderInjection['var'], string][] = [];
  const env = ev.env;
  if (env !== undefined) {
    if (typeof env.LD_PRELOAD === 'string') for (const x of entries(env.LD_PRELOAD, /[ :]/)) found.push(['LD_PRELOAD', x]);
    if (typeof env.LD_AUDIT === 'string') for (const x of entries(env.LD_AUDIT, /:/)) found.push(['LD_AUDIT', x]);
  }
  let unknown: LoaderInjection | undefined = ev.env_truncated === true ? { pid, ts, var: 'LD_PRELOAD', value: ENV_TRUNCATED } : undefined;
  if (ev.ldso !== undefined) {
    if (typeof ev.ldso.preload === 'string') for (const x of entries(ev.ldso.preload, /[ :]/)) found.push(['LD_PRELOAD', x]);
    if (typeof ev.ldso.audit === 'string') for (const x of entries(ev.ldso.audit, /:/)) found.push(['LD_AUDIT', x]);
    if (ev.ldso.truncated === true) unknown ??= { pid, ts, var: 'LD_PRELOAD', value: LDSO_TRUNCATED };
  } else if (ev.argv !== undefined && ev.argv.length > 2 && ev.filename !== undefined && /(^|\/)ld(-linux[^/]*|\.so[^/]*)$/.test(ev.filename)) {
    // an older log: no `ldso` from the kernel, the options as argv shows them (a loader named like one)
    const argv = ev.argv;
    for (let i = 1; i + 1 < argv.length; i++) {
      const v = LOADER_OPTIONS[argv[i]];
      if (v !== undefined) for (const x of entries(argv[i + 1], v === 'LD_PRELOAD' ? /[ :]/ : /:/)) found.push([v, x]);
    }
  }
  for (const [v, value] of found) if (allow === undefined || !allow.has(value)) return { pid, ts, var: v, value };
  if (unknown !== undefined) return unknown;
  return found.length === 0 ? undefined : { pid, ts, var: found[0][0], value: found[0][1] };
}

/** a child's ancestors: its parent first, then the parent's own, at most MAX_ANCESTORS */
function lineage(parent: ProcFacts): ProcFacts['ancestors'] {
  const ancestors = [{ pid: parent.pid, comm: parent.comm, exe: parent.exe.path }];
  for (let i = 0; i < parent.ancestors.length && i < MAX_ANCESTORS - 1; i++) ancestors.push(parent.ancestors[i]);
  return ancestors;
}

export interface ProcessTableStats {
  size: number;
  cap: number;
  evictions: number;
  /** entries made from an event of a pid never seen fork or exec */
  synthesized: number;
}

export class ProcessTable {
  private procs = new Map<number, ProcFacts>();
  private evictions = 0;
  private synthesized = 0;

  /** cap: entries kept; allow: the preload_allowlist the loader mark is judged against (injectionOf) */
  constructor(readonly cap = 65536, private readonly allow?: ReadonlySet<string | number>) {}

  get(pid: number): ProcFacts | undefined {
    return this.procs.get(pid);
  }

  get size(): number {
    return this.procs.size;
  }

  /** update the table for `ev` (before rules see it) and return the entry of ev.pid */
  observe(ev: KrsiEvent): ProcFacts {
    const pid = ev.pid;
    let p = this.procs.get(pid);
    switch (ev.type) {
      case 'exec':
        if (!p) p = this.synthesize(ev);
        p.comm = ev.comm;
        p.exe = ev.exe;
        p.env = ev.env ?? NO_ENV;
        // a new image: the loader variable is this exec's, or none (an exec without it clears the mark)
        p.loader_injected = injectionOf(ev, pid, ev.ts, this.allow);
        return p;
      case 'fork': {
        if (!p) p = this.synthesize(ev);
        if (ev.child_pid === pid) return p; // a thread of the same process
        const child: ProcFacts = { pid: ev.child_pid, ppid: pid, comm: p.comm, exe: p.exe, env: p.env, ancestors: lineage(p), start_ts: ev.ts };
        // the child runs the parent's image, injected library included
        if (p.loader_injected !== undefined) child.loader_injected = p.loader_injected;
        this.insert(ev.child_pid, child);
        return p;
      }
      default:
        return p ?? this.synthesize(ev);
    }
  }

  /**
   * The live processes forked from `pid` (children, grandchildren, ...) that the table knows, by lineage:
   * a process whose ancestors (at most MAX_ANCESTORS deep) name `pid` and that started after it (a pid
   * reused since is not its ancestor). A parent that exited since (double fork, reparented to init) does
   * not hide its children: the lineage is recorded at fork.
   */
  descendants(pid: number): number[] {
    const root = this.procs.get(pid);
    const since = root?.start_ts ?? -Infinity;
    const out: number[] = [];
    for (const [cpid, c] of this.procs) {
      if (cpid === pid || c.start_ts < since) continue;
      const a = c.ancestors;
      for (let i = 0; i < a.length; i++) {
        if (a[i].pid === pid) {
          out.push(cpid);
          break;
        }
      }
    }
    return out;
  }

  /** free a pid's entry (after its exit event was evaluated) */
  release(pid: number): void {
    this.procs.delete(pid);
  }

  stats(): ProcessTableStats {
    return { size: this.procs.size, cap: this.cap, evictions: this.evictions, synthesized: this.synthesized };
  }

  /** a pid first seen mid-life (recording started after its fork/exec): build it from the event;
   *  its env is unknown, so empty (not guessed from the parent) */
  private synthesize(ev: KrsiEvent): ProcFacts {
    this.synthesized++;
    const parent = this.procs.get(ev.ppid);
    const ancestors = parent ? lineage(parent) : NO_ANCESTORS;
    const p: ProcFacts = { pid: ev.pid, ppid: ev.ppid, comm: ev.comm, exe: ev.exe, env: NO_ENV, ancestors, start_ts: ev.ts };
    this.insert(ev.pid, p);
    return p;
  }

  private insert(pid: number, p: ProcFacts): void {
    // a reused pid (no exit seen) replaces the stale entry, at the young end
    if (setYoungest(this.procs, pid, p, this.cap)) this.evictions++;
  }
}
