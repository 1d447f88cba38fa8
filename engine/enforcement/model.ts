// The replay model of krsi's enforcement programs: what the kernel would refuse, given the verdicts
// applied so far and the `kernel` blocks of enforce-mode rules. Its hooks are the SEMANTICS rows
// (hooks.ts) read over the maps kept here. Time is the event's ts (the kernel uses
// bpf_ktime_get_boot_ns(), which is what live events carry).
// A log recorded under `krsi run --mode enforce` also holds the kernel's own `denied` records; each
// refused operation is reported once (engine/ENGINE.md, "Replaying an enforce-mode recording").
import type { DeniedEvent, ExecExe, FileId, KrsiEvent } from '../../signals/events.ts';
import type { DeniedOut, Mode, Verdict, VerdictOp } from '../types.ts';
import type { CompiledRuleSet } from '../rules/types.ts';
import { KRSI_OP, OP_BITS, VALID_SUBJECTS, live, mergeEntry, subjectKey, unsetEntry, type DenyReason, type EnforcementMap, type MergedEntry } from './semantics.ts';
import { exempt, type Enforcement } from './enforcement.ts';
import { Hooks, type MapsView } from './hooks.ts';
import { attributeDenied, type Blame, type DeniedContext } from './denied.ts';
import { kernelConfig, kernelConfigured, type KernelConfig } from './kernel-config.ts';

/** who put an op bit into an entry */
type Cause = Blame;

/** a map value: struct krsi_verdict, plus which verdict set each op bit (for reporting) */
type Entry = MergedEntry<Cause>;

/** op bit -> index into an entry's `by` */
const BY: Record<number, number> = { [KRSI_OP.EXEC]: 0, [KRSI_OP.MPROTECT_EXEC]: 1, [KRSI_OP.MODULE_LOAD]: 2, [KRSI_OP.KILL]: 3 };

export interface ModelOptions {
  /** krsi's own tgid: never denied */
  selfPid?: number;
  /** read these rules' `kernel` blocks at once (configure), under this mode override */
  rules?: CompiledRuleSet;
  mode?: Mode;
}

export interface ConfigureOptions {
  /** global mode override (krsi --mode); absent: each rule's own mode */
  mode?: Mode;
  /** resolve a deny_exec_paths entry to an inode too; replay matches the exec's exe.path */
  resolve?: (path: string) => FileId | undefined;
}

/** the maps of bpf/enforce.bpf.c as the model keeps them (module lists and deny_exec_paths by name/path) */
class ModelMaps implements MapsView<Cause> {
  tgid_ = new Map<number, Entry>();
  /** deny_inode: dev -> ino -> entry */
  inode_ = new Map<number, Map<number, Entry>>();
  moduleName_ = new Map<string, Entry>();
  mprotectCount = new Map<number, number>();
  /** module_refused: pid -> the refusal of its module file */
  refused_ = new Map<number, { until: number; reason: DenyReason; cause: Cause }>();
  limit = 0;
  private limitCause: Cause = { verdict: 'kernel:mprotect_limit', rule: '' };
  moduleAllow?: Set<string>;
  private allowCause: Cause = { verdict: 'kernel:module_allowlist', rule: '' };
  moduleDeny = new Map<string, Cause>();
  denyExecPaths = new Map<string, Cause>();
  /** config.flags DENY_FILELESS, and the rule that asked for it */
  private filelessCause?: Cause;

  constructor(readonly self: number) {}

  setConfig(c: KernelConfig): void {
    this.limit = c.mprotectLimit;
    this.limitCause = { verdict: 'kernel:mprotect_limit', rule: c.mprotectRule };
    this.allowCause = { verdict: 'kernel:module_allowlist', rule: c.allowRule };
    this.moduleAllow = undefined;
    this.moduleDeny.clear();
    for (const l of c.moduleLists) {
      if (l.map === 'module_allow') {
        this.moduleAllow ??= new Set();
        for (const n of l.names) this.moduleAllow.add(n);
      } else for (const n of l.names) this.moduleDeny.set(n, { verdict: 'kernel:module_denylist', rule: l.rule });
    }
    this.filelessCause = c.denyFileless ? { verdict: 'kernel:deny_fileless_exec', rule: c.filelessRule } : undefined;
    this.denyExecPaths.clear();
    for (const p of c.denyExecPaths) this.denyExecPaths.set(p.path, { verdict: `kernel:deny_exec_paths:${p.path}`, rule: p.rule });
  }

  inode(file: FileId, bit: number, ts: number, execPath: string | undefined): Cause | undefined {
    const e = this.inode_.get(file.dev)?.get(file.ino);
    if (e !== undefined && e.ops & bit && live(e.expires, ts)) return e.by[BY[bit]];
    // replay knows no inode for a path: the exec's own path is matched
    return execPath !== undefined && this.denyExecPaths.size !== 0 ? this.denyExecPaths.get(execPath) : undefined;
  }
  tgid(pid: number, bit: number, ts: number): Cause | undefined {
    const e = this.tgid_.get(pid);
    return e !== undefined && e.ops & bit && live(e.expires, ts) ? e.by[BY[bit]] : undefined;
  }
  moduleName(name: string, bit: number, ts: number): Cause | undefined {
    const e = this.moduleName_.get(name);
    return e !== undefined && e.ops & bit && live(e.expires, ts) ? e.by[BY[bit]] : undefined;
  }
  count(pid: number): number {
    if (this.limit === 0) return 0;
    const n = (this.mprotectCount.get(pid) ?? 0) + 1;
    this.mprotectCount.set(pid, n);
    return n;
  }
  counted(pid: number): number {
    return this.limit === 0 ? 0 : (this.mprotectCount.get(pid) ?? 0);
  }
  overLimit(n: number): Cause | undefined {
    return this.limit > 0 && n > this.limit ? this.limitCause : undefined;
  }
  denylisted(name: string): Cause | undefined {
    return this.moduleDeny.get(name);
  }
  notAllowlisted(name: string): Cause | undefined {
    return this.moduleAllow !== undefined && !this.moduleAllow.has(name) ? this.allowCause : undefined;
  }
  fileless(exe: ExecExe): Cause | undefined {
    return this.filelessCause !== undefined && (exe.memfd === true || exe.nlink === 0) ? this.filelessCause : undefined;
  }
  refused(pid: number, ts: number): { reason: DenyReason; cause: Cause } | undefined {
    const r = this.refused_.get(pid);
    return r !== undefined && ts < r.until ? r : undefined;
  }
  refuse(pid: number, until: number, reason: DenyReason, cause: Cause): void {
    this.refused_.set(pid, { until, reason, cause: { verdict: 'kernel:module_refused', rule: cause.rule } });
  }
  perTgid(map: EnforcementMap): Map<number, unknown> {
    if (map === 'deny_tgid') return this.tgid_;
    if (map === 'mprotect_count') return this.mprotectCount;
    if (map === 'module_refused') return this.refused_;
    throw new Error(`the model keeps no per-tgid map ${map}`);
  }
  copy(map: EnforcementMap, from: number, to: number, ts: number): void {
    if (map !== 'deny_tgid') return;
    const e = this.tgid_.get(from);
    if (e !== undefined && e.ops !== 0 && live(e.expires, ts)) this.tgid_.set(to, { ops: e.ops, expires: e.expires, by: [...e.by] });
  }

  putInode(dev: number, ino: number, bits: number, expires: number, ts: number, cause: Cause): void {
    let byIno = this.inode_.get(dev);
    if (!byIno) this.inode_.set(dev, (byIno = new Map()));
    byIno.set(ino, merge(byIno.get(ino), bits, expires, ts, cause));
  }

  /** the entry a verdict's subject names, if any */
  entryOf(s: Verdict['subject']): Entry | undefined {
    if (s.kind === 'pid') return this.tgid_.get(s.pid);
    if (s.kind === 'module') return this.moduleName_.get(s.name);
    return this.inode_.get(s.dev)?.get(s.ino);
  }
}

/** a refused mprotect has two records in an enforce-mode log, taken from two ring buffers and so in
 *  either order: the mprotect event (at the syscall's entry, before the hook) and the kernel's denied
 *  record. They pair by pid and thread within PAIR_NS of event time; the first is reported. Exec and
 *  module loads are recorded only when they succeed: their denied record is their only one. */
const PAIR_NS = 1_000_000_000;
/** bounds on what waits for its pair (a hostile log may hold any number of unpaired records): records
 *  per pid and side, pids. Past them the oldest goes (counted): at worst its pair is reported again */
const PAIR_PER_PID = 64;
const PAIR_PIDS = 4096;
type Side = 'model' | 'kernel';
interface Open {
  ts: number;
  tid?: number;
  reason?: string;
}

class DenialPairs {
  /** pid -> the open records of each side, oldest first (events come in ts order) */
  private open = new Map<number, { model: Open[]; kernel: Open[] }>();
  /** open records dropped unpaired at the bounds */
  dropped = 0;

  /** open records waiting for their pair */
  waiting(): number {
    let n = 0;
    for (const s of this.open.values()) n += s.model.length + s.kernel.length;
    return n;
  }

  /** this side's record of a refused mprotect: true when the other side's record of the same refusal
   *  (same pid and thread, within PAIR_NS: the nearest in time, the same reason first among equals) is
   *  already reported. Not the oldest open one: under another --mode the model refuses calls the kernel
   *  let through, and the kernel's one refusal must pair with its own call */
  seen(side: Side, ev: KrsiEvent, reason: string | undefined): boolean {
    const pid = ev.pid;
    const ts = ev.ts;
    const tid = ev.tid;
    let sides = this.open.get(pid);
    if (sides !== undefined) {
      const other = side === 'model' ? sides.kernel : sides.model;
      // too old to pair: from the head (oldest first)
      let n = 0;
      while (n < other.length && ts - other[n].ts > PAIR_NS) n++;
      if (n) other.splice(0, n);
      let best = -1;
      for (let i = 0; i < other.length; i++) {
        const p = other[i];
        if (p.tid !== undefined && tid !== undefined && p.tid !== tid) continue;
        const d = Math.abs(ts - p.ts);
        if (d > PAIR_NS) continue;
        const bd = best < 0 ? Infinity : Math.abs(ts - other[best].ts);
        if (d < bd || (d === bd && p.reason === reason && other[best].reason !== reason)) best = i;
      }
      if (best >= 0) {
        other.splice(best, 1);
        if (!sides.model.length && !sides.kernel.length) this.open.delete(pid);
        return true;
      }
    } else {
      if (this.open.size >= PAIR_PIDS) {
        const oldest = this.open.keys().next().value as number;
        const o = this.open.get(oldest)!;
        this.dropped += o.model.length + o.kernel.length;
        this.open.delete(oldest);
      }
      this.open.set(pid, (sides = { model: [], kernel: [] }));
    }
    const mine = side === 'model' ? sides.model : sides.kernel;
    if (mine.length >= PAIR_PER_PID) {
      mine.shift();
      this.dropped++;
    }
    mine.push({ ts, tid, reason });
    return false;
  }
}

const EXPIRE_AT = 1024;

export class EnforcementModel implements Enforcement {
  readonly selfPid: number;
  private readonly maps: ModelMaps;
  private readonly hooks: Hooks<Cause>;
  private readonly pairs = new DenialPairs();
  private verdicts = new Map<string, Verdict>();
  /** the kernel configuration a recording's denials came from (every rule's kernel block, as under --mode
   *  enforce): names the rule behind the counter and the allowlist, whose records carry none */
  private recorded?: KernelConfig;
  private readonly attribution: DeniedContext;
  /** some kernel block is in force */
  private configured = false;
  /** nothing to check: the fast path */
  private idle = true;
  /** expire() when this many verdicts are held */
  private expireAt = EXPIRE_AT;

  constructor(o: ModelOptions = {}) {
    this.selfPid = o.selfPid ?? -1;
    this.maps = new ModelMaps(this.selfPid);
    this.hooks = new Hooks(this.maps);
    this.attribution = {
      entry: (k, bit) => {
        const e = 'tgid' in k ? this.maps.tgid_.get(k.tgid) : this.maps.inode_.get(k.dev)?.get(k.ino);
        return e !== undefined && e.ops & bit ? e.by[BY[bit]] : undefined;
      },
      kernelRule: (reason) =>
        (reason === 'MPROTECT_LIMIT' ? this.recorded?.mprotectRule : reason === 'MODULE_ALLOW' ? this.recorded?.allowRule : reason === 'FILELESS' ? this.recorded?.filelessRule : undefined) || undefined,
    };
    if (o.rules) this.configure(o.rules, { mode: o.mode });
  }

  /** read the `kernel` blocks of the rules whose effective mode is enforce */
  configure(set: CompiledRuleSet, o: ConfigureOptions = {}): void {
    const c = kernelConfig(set, o.mode);
    this.maps.setConfig(c);
    this.recorded = kernelConfig(set, 'enforce');
    for (const p of c.denyExecPaths) {
      const f = o.resolve?.(p.path);
      if (f) this.maps.putInode(f.dev, f.ino, KRSI_OP.EXEC, 0, 0, { verdict: `kernel:deny_exec_paths:${p.path}`, rule: p.rule });
    }
    this.configured = kernelConfigured(c);
    this.refreshIdle();
  }

  /** apply a verdict as the enforcer writes it into the kernel maps; false for pid 1 and krsi itself */
  apply(v: Verdict, descendants: readonly number[] = []): boolean {
    const bits = OP_BITS[v.op];
    if (bits === undefined) throw new Error(`verdict ${v.id}: unknown op ${v.op}`);
    if (!VALID_SUBJECTS[v.op].includes(v.subject.kind)) throw new Error(`verdict ${v.id}: op ${v.op} cannot apply to a ${v.subject.kind}`);
    const cause = { verdict: v.id, rule: v.rule };
    const s = v.subject;
    const m = this.maps;
    if (s.kind === 'pid') {
      if (exempt(s.pid, this.selfPid)) return false;
      m.tgid_.set(s.pid, merge(m.tgid_.get(s.pid), bits, v.expires, v.ts, cause));
      // the processes it forked before the verdict: the enforcer writes the same entry for each
      for (const d of descendants) if (!exempt(d, this.selfPid)) m.tgid_.set(d, merge(m.tgid_.get(d), bits, v.expires, v.ts, cause));
    } else if (s.kind === 'inode' || s.kind === 'module_file') {
      m.putInode(s.dev, s.ino, bits, v.expires, v.ts, cause);
    } else {
      m.moduleName_.set(s.name, merge(m.moduleName_.get(s.name), bits, v.expires, v.ts, cause));
    }
    this.verdicts.set(v.id, v);
    this.idle = false;
    // bounds the model's memory by its verdicts, at no cost per event
    if (this.verdicts.size >= this.expireAt) this.expireAt = Math.max(EXPIRE_AT, 2 * (this.verdicts.size - this.expire(v.ts)));
    return true;
  }

  /** the kernel's view of `ev`: DeniedOut when a hook would return -EPERM for it. This also does the
   *  hooks' side effects (the mprotect counter) and the lifecycle rows (exit clears the tgid's state),
   *  so call it exactly once per event, in order. */
  check(ev: KrsiEvent): DeniedOut | undefined {
    if (this.idle) return undefined;
    const hit = this.hooks.judge(ev);
    if (hit === undefined) return undefined;
    // the kernel's record of this refusal came first in the log and is reported already
    if (hit.hook.op === 'mprotect_exec' && this.pairs.seen('model', ev, hit.reason)) return undefined;
    return denied(ev, hit.hook.op, hit.cause, hit.reason);
  }

  /** a kernel `denied` record read back from a log: attributed from the model's maps, else from its own
   *  names; a refused mprotect the model reported already is not reported again */
  denied(ev: DeniedEvent): DeniedOut | undefined {
    const out = attributeDenied(ev, this.attribution);
    if (out && ev.op === 'mprotect_exec' && this.pairs.seen('kernel', ev, out.reason)) return undefined;
    return out;
  }

  /** remove a verdict by id: its op bits leave the entry; an entry with no bits left is deleted */
  remove(id: string): void {
    const v = this.verdicts.get(id);
    if (!v) return;
    this.verdicts.delete(id);
    const s = v.subject;
    const m = this.maps;
    if (s.kind === 'pid') {
      unset(m.tgid_, s.pid, id);
      // the copies its process's children inherited (lifecycle: fork) carry the same verdict
      for (const pid of [...m.tgid_.keys()]) unset(m.tgid_, pid, id);
    } else if (s.kind === 'module') unset(m.moduleName_, s.name, id);
    else {
      const byIno = m.inode_.get(s.dev);
      if (byIno) unset(byIno, s.ino, id);
    }
    this.refreshIdle();
  }

  /** the verdicts applied (including expired ones not yet removed) */
  list(): Verdict[] {
    return [...this.verdicts.values()];
  }

  /** drop entries whose TTL has passed at event time `now` (the kernel keeps them until overwritten;
   *  this only bounds the model's memory and the verdict list) */
  expire(now: number): number {
    let n = 0;
    for (const [id, v] of this.verdicts) {
      if (v.expires === 0 || now < v.expires) continue;
      // as the kernel: a verdict merged into an entry that lives longer stays with it (its bits may be
      // the ones a longer verdict on the same key asked for); the entry's own expiry ends them all
      const e = this.maps.entryOf(v.subject);
      if (e !== undefined && live(e.expires, now)) continue;
      this.remove(id);
      n++;
    }
    return n;
  }

  sizes(): { tgid: number; inode: number; module: number; mprotect_count: number; verdicts: number; pairs_waiting: number; pairs_dropped: number } {
    let inode = 0;
    for (const m of this.maps.inode_.values()) inode += m.size;
    const m = this.maps;
    return { tgid: m.tgid_.size, inode, module: m.moduleName_.size, mprotect_count: m.mprotectCount.size, verdicts: this.verdicts.size, pairs_waiting: this.pairs.waiting(), pairs_dropped: this.pairs.dropped };
  }

  private refreshIdle(): void {
    this.idle = this.verdicts.size === 0 && this.maps.inode_.size === 0 && !this.configured;
    if (this.idle) this.maps.mprotectCount.clear();
  }
}

function merge(old: Entry | undefined, bits: number, expires: number, ts: number, cause: Cause): Entry {
  return mergeEntry(old, bits, expires, ts, cause, (): Entry => ({ ops: 0, expires: 0, by: [undefined, undefined, undefined, undefined] }));
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
