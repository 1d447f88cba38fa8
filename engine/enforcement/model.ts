// The replay model of krsi's enforcement programs: what the kernel would refuse, given the verdicts
// applied so far and the `kernel` blocks of enforce-mode rules. It follows engine/enforcement/semantics.ts
// row by row (same maps, same order of checks); the live enforcer and the in-VM tests use the same table.
// Time is the event's ts (the kernel uses bpf_ktime_get_boot_ns(), which is what live events carry).
import type { FileId, KrsiEvent } from '../../signals/events.ts';
import { PROT_EXEC } from '../../signals/events.ts';
import type { DeniedOut, Mode, Verdict, VerdictOp } from '../types.ts';
import type { CompiledRuleSet } from '../rules/types.ts';
import { KRSI_OP, MODULE_REFUSAL_NS, OP_BITS, VALID_SUBJECTS, type DenyReason, type MergedEntry, kernelList, live, mergeEntry, subjectKey, unsetEntry } from './semantics.ts';

/** who put an op bit into an entry */
interface Cause {
  verdict: string;
  rule: string;
}

/** a map value: struct krsi_verdict, plus which verdict set each op bit (for reporting) */
type Entry = MergedEntry<Cause>;

export interface ModelOptions {
  /** krsi's own tgid: never denied */
  selfPid?: number;
}

export interface ConfigureOptions {
  /** global mode override (krsi --mode); absent: each rule's own mode */
  mode?: Mode;
  /** resolve a deny_exec_paths entry to an inode (live); replay matches the exec's exe.path */
  resolve?: (path: string) => FileId | undefined;
}

/** the static configuration from `kernel` blocks (struct krsi_config and the list maps) */
export interface KernelConfig {
  mprotectLimit: number;
  mprotectRule: string;
  moduleAllow?: Set<string>;
  moduleAllowRule: string;
  moduleDeny: Map<string, string>;
  denyExecPaths: Map<string, string>;
}

export class EnforcementModel {
  readonly selfPid: number;
  private tgid = new Map<number, Entry>();
  /** deny_inode: dev -> ino -> entry */
  private inode = new Map<number, Map<number, Entry>>();
  private moduleName = new Map<string, Entry>();
  private mprotectCount = new Map<number, number>();
  /** module_refused: pid -> the refusal of its module file (its memory fallback is refused until `until`) */
  private refused = new Map<number, { until: number; reason: DenyReason; rule: string }>();
  private verdicts = new Map<string, Verdict>();
  config: KernelConfig = emptyConfig();
  /** nothing to check: the fast path */
  private idle = true;

  constructor(o: ModelOptions = {}) {
    this.selfPid = o.selfPid ?? -1;
  }

  /** read the `kernel` blocks of the rules whose effective mode is enforce */
  configure(set: CompiledRuleSet, o: ConfigureOptions = {}): void {
    const c = emptyConfig();
    for (const r of set.rules) {
      const k = r.kernel;
      if (!k || (o.mode ?? r.mode) !== 'enforce') continue;
      if (k.mprotect_limit !== undefined && k.mprotect_limit > 0 && (c.mprotectLimit === 0 || k.mprotect_limit < c.mprotectLimit)) {
        c.mprotectLimit = k.mprotect_limit;
        c.mprotectRule = r.id;
      }
      if (k.module_allowlist !== undefined) {
        c.moduleAllow ??= new Set();
        for (const n of kernelList(set, k.module_allowlist, r.id)) c.moduleAllow.add(n);
        if (!c.moduleAllowRule) c.moduleAllowRule = r.id;
      }
      if (k.module_denylist !== undefined) for (const n of kernelList(set, k.module_denylist, r.id)) c.moduleDeny.set(n, r.id);
      if (k.deny_exec_paths !== undefined) {
        for (const p of kernelList(set, k.deny_exec_paths, r.id)) {
          c.denyExecPaths.set(p, r.id);
          const f = o.resolve?.(p);
          if (f) this.putInode(f.dev, f.ino, KRSI_OP.EXEC, 0, 0, { verdict: `kernel:deny_exec_paths:${p}`, rule: r.id });
        }
      }
    }
    this.config = c;
    this.refreshIdle();
  }

  /** apply a verdict (the enforcer writes the same entry into the kernel map) */
  apply(v: Verdict): void {
    const bits = OP_BITS[v.op];
    if (bits === undefined) throw new Error(`verdict ${v.id}: unknown op ${v.op}`);
    if (!VALID_SUBJECTS[v.op].includes(v.subject.kind)) throw new Error(`verdict ${v.id}: op ${v.op} cannot apply to a ${v.subject.kind}`);
    const cause = { verdict: v.id, rule: v.rule };
    const s = v.subject;
    if (s.kind === 'pid') {
      if (s.pid === 1 || s.pid === this.selfPid) return; // never: the kernel would ignore it anyway
      this.tgid.set(s.pid, merge(this.tgid.get(s.pid), bits, v.expires, v.ts, cause));
    } else if (s.kind === 'inode' || s.kind === 'module_file') {
      this.putInode(s.dev, s.ino, bits, v.expires, v.ts, cause);
    } else {
      this.moduleName.set(s.name, merge(this.moduleName.get(s.name), bits, v.expires, v.ts, cause));
    }
    this.verdicts.set(v.id, v);
    this.idle = false;
  }

  /** remove a verdict by id: its op bits leave the entry; an entry with no bits left is deleted */
  remove(id: string): void {
    const v = this.verdicts.get(id);
    if (!v) return;
    this.verdicts.delete(id);
    const s = v.subject;
    if (s.kind === 'pid') {
      unset(this.tgid, s.pid, id);
      // the copies its process's children inherited (lifecycle: fork) carry the same verdict
      for (const pid of [...this.tgid.keys()]) unset(this.tgid, pid, id);
    }
    else if (s.kind === 'module') unset(this.moduleName, s.name, id);
    else {
      const byIno = this.inode.get(s.dev);
      if (byIno) unset(byIno, s.ino, id);
    }
    this.refreshIdle();
  }

  /** the verdicts applied (including expired ones not yet removed) */
  list(): Verdict[] {
    return [...this.verdicts.values()];
  }

  /** the kernel's view of `ev`: DeniedOut when a hook would return -EPERM for it. This also does the
   *  hooks' side effects (the mprotect counter) and the lifecycle rows (exit clears the tgid's state),
   *  so call it exactly once per event, in order. */
  check(ev: KrsiEvent): DeniedOut | undefined {
    if (this.idle) return undefined;
    const pid = ev.pid;
    switch (ev.type) {
      case 'exit':
        this.tgid.delete(pid);
        this.mprotectCount.delete(pid);
        this.refused.delete(pid);
        return undefined;
      case 'fork': {
        // the child pid is a new process: state left under it is from a process whose exit this log
        // lost (the kernel's exit program never misses one, so it has nothing there)
        const child = ev.child_pid;
        if (child !== pid) {
          this.tgid.delete(child);
          this.mprotectCount.delete(child);
          this.refused.delete(child);
        }
        // lifecycle: the new process inherits the parent's live tgid entry (same ops, expiry, verdicts)
        const te = this.tgid.get(pid);
        if (!te || te.ops === 0 || !live(te.expires, ev.ts) || pid === 1 || pid === this.selfPid || ev.child_pid === pid) return undefined;
        this.tgid.set(ev.child_pid, { ops: te.ops, expires: te.expires, by: [...te.by] });
        return undefined;
      }
      case 'exec': {
        if (pid === 1 || pid === this.selfPid) return undefined;
        const ts = ev.ts;
        const byIno = this.inode.get(ev.exe.dev);
        const ie = byIno?.get(ev.exe.ino);
        if (ie && ie.ops & KRSI_OP.EXEC && live(ie.expires, ts)) return denied(ev, 'exec', ie.by[0]!, 'INODE');
        if (this.config.denyExecPaths.size) {
          const rule = this.config.denyExecPaths.get(ev.exe.path);
          if (rule !== undefined) return denied(ev, 'exec', { verdict: `kernel:deny_exec_paths:${ev.exe.path}`, rule }, 'INODE');
        }
        const te = this.tgid.get(pid);
        if (te && te.ops & KRSI_OP.EXEC && live(te.expires, ts)) return denied(ev, 'exec', te.by[0]!, 'TGID');
        return undefined;
      }
      case 'mprotect': {
        if (pid === 1 || pid === this.selfPid) return undefined;
        let n = 0;
        if (this.config.mprotectLimit > 0) {
          n = (this.mprotectCount.get(pid) ?? 0) + 1;
          this.mprotectCount.set(pid, n);
        }
        if ((ev.prot & PROT_EXEC) === 0) return undefined;
        const te = this.tgid.get(pid);
        if (te && te.ops & KRSI_OP.MPROTECT_EXEC && live(te.expires, ev.ts)) return denied(ev, 'mprotect_exec', te.by[1]!, 'TGID');
        if (this.config.mprotectLimit > 0 && n > this.config.mprotectLimit)
          return denied(ev, 'mprotect_exec', { verdict: 'kernel:mprotect_limit', rule: this.config.mprotectRule }, 'MPROTECT_LIMIT');
        return undefined;
      }
      case 'module_load': {
        if (pid === 1 || pid === this.selfPid) return undefined;
        const d = this.checkModule(ev);
        // kernel_read_file: a file refused by INODE or MODULE_DENY opens the window for the memory fallback
        if (d && (d.reason === 'INODE' || d.reason === 'MODULE_DENY') && d.verdict !== 'kernel:module_refused')
          this.refused.set(pid, { until: ev.ts + MODULE_REFUSAL_NS, reason: d.reason, rule: d.rule });
        return d;
      }
      default:
        return undefined;
    }
  }

  /** the module hooks (SEMANTICS kernel_read_file; kernel_load_data for the fallback of a refused file) */
  private checkModule(ev: Extract<KrsiEvent, { type: 'module_load' }>): DeniedOut | undefined {
    const pid = ev.pid;
    const ts = ev.ts;
    if (!ev.file) {
      // kernel_load_data, when it is the fallback of a refused file load: TGID, then module_refused
      const r = this.refused.get(pid);
      if (r && ts < r.until) {
        const te = this.tgid.get(pid);
        if (te && te.ops & KRSI_OP.MODULE_LOAD && live(te.expires, ts)) return denied(ev, 'module_load', te.by[2]!, 'TGID');
        return denied(ev, 'module_load', { verdict: 'kernel:module_refused', rule: r.rule }, r.reason);
      }
    } else {
      const fe = this.inode.get(ev.file.dev)?.get(ev.file.ino);
      if (fe && fe.ops & KRSI_OP.MODULE_LOAD && live(fe.expires, ts)) return denied(ev, 'module_load', fe.by[2]!, 'INODE');
    }
    const ne = this.moduleName.get(ev.name);
    if (ne && ne.ops & KRSI_OP.MODULE_LOAD && live(ne.expires, ts)) return denied(ev, 'module_load', ne.by[2]!, 'INODE');
    const te = this.tgid.get(pid);
    if (te && te.ops & KRSI_OP.MODULE_LOAD && live(te.expires, ts)) return denied(ev, 'module_load', te.by[2]!, 'TGID');
    const dr = this.config.moduleDeny.get(ev.name);
    if (dr !== undefined) return denied(ev, 'module_load', { verdict: 'kernel:module_denylist', rule: dr }, 'MODULE_DENY');
    const allow = this.config.moduleAllow;
    if (allow && !allow.has(ev.name))
      return denied(ev, 'module_load', { verdict: 'kernel:module_allowlist', rule: this.config.moduleAllowRule }, 'MODULE_ALLOW');
    return undefined;
  }

  /** drop entries whose TTL has passed at event time `now` (the kernel keeps them until overwritten;
   *  this only bounds the model's memory and the verdict list) */
  expire(now: number): number {
    let n = 0;
    for (const [id, v] of this.verdicts) {
      if (v.expires === 0 || now < v.expires) continue;
      // as the kernel: a verdict merged into an entry that lives longer stays with it (its bits may be
      // the ones a longer verdict on the same key asked for); the entry's own expiry ends them all
      const e = this.entryOf(v.subject);
      if (e !== undefined && live(e.expires, now)) continue;
      this.remove(id);
      n++;
    }
    return n;
  }

  /** the map entry a verdict's subject names, if any */
  private entryOf(s: Verdict['subject']): { expires: number } | undefined {
    if (s.kind === 'pid') return this.tgid.get(s.pid);
    if (s.kind === 'module') return this.moduleName.get(s.name);
    return this.inode.get(s.dev)?.get(s.ino);
  }

  sizes(): { tgid: number; inode: number; module: number; mprotect_count: number; verdicts: number } {
    let inode = 0;
    for (const m of this.inode.values()) inode += m.size;
    return { tgid: this.tgid.size, inode, module: this.moduleName.size, mprotect_count: this.mprotectCount.size, verdicts: this.verdicts.size };
  }

  private putInode(dev: number, ino: number, bits: number, expires: number, ts: number, cause: Cause): void {
    let byIno = this.inode.get(dev);
    if (!byIno) this.inode.set(dev, (byIno = new Map()));
    byIno.set(ino, merge(byIno.get(ino), bits, expires, ts, cause));
    this.idle = false;
  }

  private refreshIdle(): void {
    const c = this.config;
    this.idle =
      this.verdicts.size === 0 && this.inode.size === 0 && c.mprotectLimit === 0 && !c.moduleAllow && c.moduleDeny.size === 0 && c.denyExecPaths.size === 0;
    if (this.idle) this.mprotectCount.clear();
  }
}

function emptyConfig(): KernelConfig {
  return { mprotectLimit: 0, mprotectRule: '', moduleAllowRule: '', moduleDeny: new Map(), denyExecPaths: new Map() };
}

function merge(old: Entry | undefined, bits: number, expires: number, ts: number, cause: Cause): Entry {
  return mergeEntry(old, bits, expires, ts, cause, (): Entry => ({ ops: 0, expires: 0, by: [undefined, undefined, undefined] }));
}

function unset<K>(m: Map<K, Entry>, k: K, id: string): void {
  const e = m.get(k);
  if (!e) return;
  if (unsetEntry(e, (c) => c.verdict === id).ops === 0) m.delete(k);
}

function denied(ev: KrsiEvent, op: VerdictOp, c: Cause, reason: DenyReason): DeniedOut {
  return { kind: 'denied', ts: ev.ts, seq: ev.seq ?? -1, pid: ev.pid, op, verdict: c.verdict, rule: c.rule, reason };
}

export { subjectKey };
