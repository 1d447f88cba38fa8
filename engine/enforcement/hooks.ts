// bpf/enforce.bpf.c's hooks and lifecycle programs as the SEMANTICS and LIFECYCLE rows of semantics.ts
// state them, over a view of the maps: the replay model's own state (model.ts), or the entries the live
// enforcer wrote, read as the kernel reads them (test/enforcers/semantics.test.ts). The rows are turned
// into one list of lookups per event type once; a view only answers "which live entry says so".
import type { ExecExe, FileId, KrsiEvent } from '../../signals/events.ts';
import { KILL_EVENTS, KILL_ROW, KRSI_OP, LIFECYCLE, MODULE_REFUSAL_NS, SEMANTICS, hookFor, type DenyReason, type EnforcementMap, type HookRow } from './semantics.ts';
import { exempt } from './enforcement.ts';

/** the maps a hook reads, as one implementation keeps them; C: what it knows of an entry's cause */
export interface MapsView<C> {
  /** krsi's own tgid (config.krsi_tgid) */
  readonly self: number;
  /** deny_inode: the cause of `bit` in the live entry of this file (exec: the new executable, whose
   *  path replay matches against deny_exec_paths: a log has no inode for a path) */
  inode(file: FileId, bit: number, ts: number, execPath: string | undefined): C | undefined;
  /** deny_tgid */
  tgid(pid: number, bit: number, ts: number): C | undefined;
  /** deny_module_name (the model's; the enforcer resolves names to deny_inode) */
  moduleName(name: string, bit: number, ts: number): C | undefined;
  /** mprotect_count: count this call when the counter is on; the count after it (0: off) */
  count(pid: number): number;
  /** mprotect_count: the count, without counting (0: off or none) */
  counted(pid: number): number;
  /** the counter's cause when `n` is over the limit */
  overLimit(n: number): C | undefined;
  /** module_deny: the cause when denylisted (model: by name; kernel: by file) */
  denylisted(name: string, file: FileId | undefined): C | undefined;
  /** module_allow: the cause when an allowlist is on and the module is not on it */
  notAllowlisted(name: string, file: FileId | undefined): C | undefined;
  /** config.flags DENY_FILELESS: the cause when it is on and the executable is a memfd or has no link left
   *  (an exec event without these facts, from an older log: never) */
  fileless(exe: ExecExe): C | undefined;
  /** module_refused: this tgid's module file was refused less than MODULE_REFUSAL_NS before ts */
  refused(pid: number, ts: number): { reason: DenyReason; cause: C } | undefined;
  /** a module file refused by INODE or MODULE_DENY refuses the tgid's load from memory until `until` */
  refuse(pid: number, until: number, reason: DenyReason, cause: C): void;
  /** lifecycle: a map keyed by tgid, whose entry for a pid goes when the process does */
  perTgid(map: EnforcementMap): PerTgid;
  /** lifecycle: the new process gets a copy of the parent's live entry */
  copy(map: EnforcementMap, from: number, to: number, ts: number): void;
}

/** a map keyed by tgid, as far as the lifecycle rows touch it */
export interface PerTgid {
  delete(pid: number): unknown;
}

/** a check that denied: its row, the reason (module_refused: the refusal's own) and the entry's cause */
export interface Hit<C> {
  hook: HookRow;
  reason: DenyReason;
  cause: C;
}

/** a check's lookup, by the map it reads (a number: one switch, no closure per check) */
const MAP_CODE = { deny_inode: 0, deny_tgid: 1, deny_module_name: 2, mprotect_count: 3, module_deny: 4, module_allow: 5, module_refused: 6, config: 7 } as const;

interface Compiled {
  row: HookRow;
  applies: HookRow['applies'];
  /** the hook reads the counter (mprotect_count) */
  reads: boolean;
  /** which calls it counts first */
  counts: HookRow['counts'];
  /** per check, in order: the map it reads */
  codes: number[];
}

function compile(h: HookRow): Compiled {
  const codes = h.checks.map((c) => {
    if (!(c.map in MAP_CODE)) throw new Error(`hook ${h.hook}: no lookup for map ${c.map}`);
    return MAP_CODE[c.map as keyof typeof MAP_CODE];
  });
  return { row: h, applies: h.applies, reads: h.checks.some((c) => c.map === 'mprotect_count'), counts: h.counts, codes };
}

const EXIT_CLEARS = LIFECYCLE.find((r) => r.on === 'exit')!.clears;
const FORK_COPIES = LIFECYCLE.find((r) => r.on === 'fork')!.copies;
const EXEC_CLEARS = LIFECYCLE.find((r) => r.on === 'exec')!.clears;

export class Hooks<C> {
  private readonly exec = compile(hookFor('exec')!);
  private readonly mprotect = compile(hookFor('mprotect')!);
  private readonly mmap = compile(hookFor('mmap')!);
  private readonly moduleLoad = compile(hookFor('module_load')!);
  /** kernel_load_data: a module from memory (the log cannot tell it from a file load, see its note) */
  private readonly loadData = compile(SEMANTICS.find((h) => h.hook === 'kernel_load_data')!);

  /** the per-tgid maps an exit clears (LIFECYCLE), as the view keeps them */
  private readonly exitClears: PerTgid[];
  /** the per-tgid maps an exec that is not refused clears (LIFECYCLE: the flip counter) */
  private readonly execClears: PerTgid[];
  /** pids whose kill landed (reported once): the process is dying */
  private readonly killed = new Set<number>();

  constructor(private readonly v: MapsView<C>) {
    this.exitClears = EXIT_CLEARS.map((m) => v.perTgid(m));
    this.execClears = EXEC_CLEARS.map((m) => v.perTgid(m));
  }

  /** what the kernel answers for ev, with the hooks' side effects (the counter, module_refused) and the
   *  lifecycle rows: call it once per event, in order */
  judge(ev: KrsiEvent): Hit<C> | undefined {
    const v = this.v;
    // the kill programs come first: a killed process's operation is refused whatever else says
    if (KILL_EVENTS.has(ev.type) && !this.killed.has(ev.pid) && !exempt(ev.pid, v.self)) {
      const cause = v.tgid(ev.pid, KRSI_OP.KILL, ev.ts);
      if (cause !== undefined) {
        this.killed.add(ev.pid);
        return { hook: KILL_ROW, reason: 'TGID', cause };
      }
    }
    let h: Compiled;
    let pid: number, ts: number;
    let file: FileId | undefined;
    let name = '';
    let path: string | undefined;
    // each type reads its own fields (a property site per event shape, as the JIT likes it)
    switch (ev.type) {
      case 'exec':
        h = this.exec;
        pid = ev.pid;
        ts = ev.ts;
        file = ev.exe;
        path = ev.exe.path;
        break;
      case 'mprotect':
        h = this.mprotect;
        pid = ev.pid;
        ts = ev.ts;
        break;
      case 'mmap':
        h = this.mmap;
        pid = ev.pid;
        ts = ev.ts;
        break;
      case 'module_load':
        pid = ev.pid;
        ts = ev.ts;
        name = ev.name;
        file = ev.file;
        // a module without a file from a tgid whose module file was just refused: busybox insmod's fallback
        h = file === undefined && v.refused(pid, ts) !== undefined ? this.loadData : this.moduleLoad;
        break;
      case 'exit': {
        const p = ev.pid;
        const m = this.exitClears;
        for (let i = 0; i < m.length; i++) m[i].delete(p);
        if (this.killed.size !== 0) this.killed.delete(p);
        return undefined;
      }
      case 'fork':
        this.forked(ev.pid, ev.child_pid, ev.ts);
        return undefined;
      default:
        return undefined;
    }
    if (exempt(pid, v.self)) return undefined;
    const n = !h.reads ? 0 : h.counts !== undefined && h.counts(ev) ? v.count(pid) : v.counted(pid);
    if (h.applies !== undefined && !h.applies(ev)) return undefined;
    const codes = h.codes;
    const bit = h.row.bit;
    for (let i = 0; i < codes.length; i++) {
      let cause: C | undefined;
      switch (codes[i]) {
        case MAP_CODE.deny_inode:
          cause = file !== undefined ? v.inode(file, bit, ts, path) : undefined;
          break;
        case MAP_CODE.deny_tgid:
          cause = v.tgid(pid, bit, ts);
          break;
        case MAP_CODE.deny_module_name:
          cause = v.moduleName(name, bit, ts);
          break;
        case MAP_CODE.mprotect_count:
          cause = v.overLimit(n);
          break;
        case MAP_CODE.module_deny:
          cause = v.denylisted(name, file);
          break;
        case MAP_CODE.module_allow:
          cause = v.notAllowlisted(name, file);
          break;
        case MAP_CODE.config:
          cause = ev.type === 'exec' ? v.fileless(ev.exe) : undefined;
          break;
        default:
          cause = v.refused(pid, ts)?.cause;
      }
      if (cause !== undefined) return this.hit(h, i, pid, ts, cause);
    }
    if (ev.type === 'exec') {
      // lifecycle, exec allowed: the new image's flip count starts again (krsi_exec_reset)
      const m = this.execClears;
      for (let i = 0; i < m.length; i++) m[i].delete(pid);
    }
    return undefined;
  }

  /** check i of h denied */
  private hit(h: Compiled, i: number, pid: number, ts: number, cause: C): Hit<C> {
    const c = h.row.checks[i];
    const reason = c.map === 'module_refused' ? this.v.refused(pid, ts)!.reason : c.reason;
    if (h.row.hook === 'kernel_read_file' && (reason === 'INODE' || reason === 'MODULE_DENY')) this.v.refuse(pid, ts + MODULE_REFUSAL_NS, reason, cause);
    return { hook: h.row, reason, cause };
  }

  /** lifecycle, fork: the child is a new process */
  private forked(parent: number, child: number, ts: number): void {
    if (child === parent) return; // a thread of the same process
    // state still under the child's pid is from a process whose exit the log lost
    const m = this.exitClears;
    for (let i = 0; i < m.length; i++) m[i].delete(child);
    if (this.killed.size !== 0) this.killed.delete(child);
    if (exempt(parent, this.v.self)) return;
    for (let i = 0; i < FORK_COPIES.length; i++) this.v.copy(FORK_COPIES[i], parent, child, ts);
  }
}
