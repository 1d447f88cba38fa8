// bpf/enforce.bpf.c's hooks and lifecycle programs as the SEMANTICS and LIFECYCLE rows of semantics.ts
// state them, over a view of the maps: the replay model's own state (model.ts), or the entries the live
// enforcer wrote, read as the kernel reads them (test/enforcers/semantics.test.ts). The rows are turned
// into one list of lookups per event type once; a view only answers "which live entry says so".
import type { FileId, KrsiEvent, ModuleLoadEvent } from '../../signals/events.ts';
import { LIFECYCLE, MODULE_REFUSAL_NS, SEMANTICS, hookFor, type CheckRow, type DenyReason, type EnforcementMap, type HookRow } from './semantics.ts';
import { exempt } from './enforcement.ts';

/** the maps a hook reads, as one implementation keeps them; C: what it knows of an entry's cause */
export interface MapsView<C> {
  /** krsi's own tgid (config.krsi_tgid) */
  readonly self: number;
  /** deny_inode: the cause of `bit` in the live entry of this file (exec: the new executable) */
  inode(file: FileId, bit: number, ev: KrsiEvent): C | undefined;
  /** deny_tgid */
  tgid(pid: number, bit: number, ts: number): C | undefined;
  /** deny_module_name (the model's; the enforcer resolves names to deny_inode) */
  moduleName(name: string, bit: number, ts: number): C | undefined;
  /** mprotect_count: count this call when the counter is on; the count after it (0: off) */
  count(pid: number): number;
  /** the counter's cause when `n` is over the limit */
  overLimit(n: number): C | undefined;
  /** module_deny: the cause when denylisted */
  denylisted(ev: ModuleLoadEvent): C | undefined;
  /** module_allow: the cause when an allowlist is on and the module is not on it */
  notAllowlisted(ev: ModuleLoadEvent): C | undefined;
  /** module_refused: this tgid's module file was refused less than MODULE_REFUSAL_NS before ts */
  refused(pid: number, ts: number): { reason: DenyReason; cause: C } | undefined;
  /** a module file refused by INODE or MODULE_DENY refuses the tgid's load from memory until `until` */
  refuse(pid: number, until: number, reason: DenyReason, cause: C): void;
  /** lifecycle: the tgid's entry in map goes */
  clear(map: EnforcementMap, pid: number): void;
  /** lifecycle: the new process gets a copy of the parent's live entry */
  copy(map: EnforcementMap, from: number, to: number, ts: number): void;
}

/** a check that denied: its row, the reason (module_refused: the refusal's own) and the entry's cause */
export interface Hit<C> {
  hook: HookRow;
  reason: DenyReason;
  cause: C;
}

/** a check's lookup, by the map it reads (a number: one switch, no closure per check) */
const MAP_CODE = { deny_inode: 0, deny_tgid: 1, deny_module_name: 2, mprotect_count: 3, module_deny: 4, module_allow: 5, module_refused: 6 } as const;

interface Compiled {
  row: HookRow;
  applies: HookRow['applies'];
  /** the hook counts the call first (mprotect_count) */
  counts: boolean;
  /** the file the hook keys deny_inode by: the new executable, or the module file */
  exe: boolean;
  checks: { row: CheckRow; code: number }[];
}

function compile(h: HookRow): Compiled {
  const checks = h.checks.map((c) => {
    if (!(c.map in MAP_CODE)) throw new Error(`hook ${h.hook}: no lookup for map ${c.map}`);
    return { row: c, code: MAP_CODE[c.map as keyof typeof MAP_CODE] };
  });
  return { row: h, applies: h.applies, counts: h.checks.some((c) => c.map === 'mprotect_count'), exe: h.event === 'exec', checks };
}

const EXIT_CLEARS = LIFECYCLE.find((r) => r.on === 'exit')!.clears;
const FORK_COPIES = LIFECYCLE.find((r) => r.on === 'fork')!.copies;

export class Hooks<C> {
  private readonly exec = compile(hookFor('exec')!);
  private readonly mprotect = compile(hookFor('mprotect')!);
  private readonly moduleLoad = compile(hookFor('module_load')!);
  /** kernel_load_data: a module from memory (the log cannot tell it from a file load, see its note) */
  private readonly loadData = compile(SEMANTICS.find((h) => h.hook === 'kernel_load_data')!);

  constructor(private readonly v: MapsView<C>) {}

  /** what the kernel answers for ev, with the hooks' side effects (the counter, module_refused) and the
   *  lifecycle rows: call it once per event, in order */
  judge(ev: KrsiEvent): Hit<C> | undefined {
    let h: Compiled;
    switch (ev.type) {
      case 'exec':
        h = this.exec;
        break;
      case 'mprotect':
        h = this.mprotect;
        break;
      case 'module_load':
        // a module without a file from a tgid whose module file was just refused: busybox insmod's fallback
        h = !ev.file && this.v.refused(ev.pid, ev.ts) !== undefined ? this.loadData : this.moduleLoad;
        break;
      case 'exit':
      case 'fork':
        this.lifecycle(ev);
        return undefined;
      default:
        return undefined;
    }
    if (exempt(ev.pid, this.v.self)) return undefined;
    const n = h.counts ? this.v.count(ev.pid) : 0;
    if (h.applies !== undefined && !h.applies(ev)) return undefined;
    const checks = h.checks;
    for (let i = 0; i < checks.length; i++) {
      const cause = this.lookup(checks[i].code, h, ev, n);
      if (cause === undefined) continue;
      const c = checks[i].row;
      const reason = c.map === 'module_refused' ? this.v.refused(ev.pid, ev.ts)!.reason : c.reason;
      if (h.row.hook === 'kernel_read_file' && (reason === 'INODE' || reason === 'MODULE_DENY')) this.v.refuse(ev.pid, ev.ts + MODULE_REFUSAL_NS, reason, cause);
      return { hook: h.row, reason, cause };
    }
    return undefined;
  }

  /** one check's lookup in the view */
  private lookup(code: number, h: Compiled, ev: KrsiEvent, n: number): C | undefined {
    const v = this.v;
    const bit = h.row.bit;
    switch (code) {
      case MAP_CODE.deny_inode: {
        const f = h.exe ? (ev as { exe: FileId }).exe : (ev as ModuleLoadEvent).file;
        return f ? v.inode(f, bit, ev) : undefined;
      }
      case MAP_CODE.deny_tgid:
        return v.tgid(ev.pid, bit, ev.ts);
      case MAP_CODE.deny_module_name:
        return v.moduleName((ev as ModuleLoadEvent).name, bit, ev.ts);
      case MAP_CODE.mprotect_count:
        return v.overLimit(n);
      case MAP_CODE.module_deny:
        return v.denylisted(ev as ModuleLoadEvent);
      case MAP_CODE.module_allow:
        return v.notAllowlisted(ev as ModuleLoadEvent);
      default:
        return v.refused(ev.pid, ev.ts)?.cause;
    }
  }

  private lifecycle(ev: Extract<KrsiEvent, { type: 'exit' | 'fork' }>): void {
    const v = this.v;
    if (ev.type === 'exit') {
      for (let i = 0; i < EXIT_CLEARS.length; i++) v.clear(EXIT_CLEARS[i], ev.pid);
      return;
    }
    const child = ev.child_pid;
    if (child === ev.pid) return; // a thread of the same process
    // state still under the child's pid is from a process whose exit the log lost
    for (let i = 0; i < EXIT_CLEARS.length; i++) v.clear(EXIT_CLEARS[i], child);
    if (exempt(ev.pid, v.self)) return;
    for (let i = 0; i < FORK_COPIES.length; i++) v.copy(FORK_COPIES[i], ev.pid, child, ev.ts);
  }
}
