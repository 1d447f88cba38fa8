// The enforcer: puts verdicts into the pinned BPF maps that the LSM programs (bpf/enforce.bpf.c)
// consult, keeps them in the verdict store (lmdb) and puts them back on restart. The semantics are the
// model's (engine/enforcement/semantics.ts); a verdict's key is verdict-keys.ts's, the books
// (merging several verdicts into one entry) verdict-book.ts's, processes coming and going
// lifecycle.ts's. From the rules' kernel blocks (engine/enforcement/kernel-config.ts):
//   mprotect_limit -> config.mprotect_limit                                 reason MPROTECT_LIMIT
//   module_allowlist / module_denylist -> module_allow / module_deny (names -> .ko inodes), config.module_mode
//                                                                            reasons MODULE_ALLOW, MODULE_DENY
//   deny_exec_paths -> deny_inode (paths -> inodes, kernelFileId)           reason INODE
//   deny_fileless_exec -> config.flags KRSI_CFG_DENY_FILELESS                reason FILELESS
// A module file refused by INODE or MODULE_DENY also refuses that process's module load from memory for
// MODULE_REFUSAL_NS (kernel-only module_refused map): busybox insmod's fallback. A denylist by inode
// stays weak (a copy of the file, or another process loading from memory, passes): allowlist is strong.
// The kernel checks deadlines itself, so a TTL holds while krsi is down. Never pid 1, never krsi itself.
import type { CompiledRuleSet } from '../engine/rules/types.ts';
import type { DeniedOut, Mode, Verdict } from '../engine/types.ts';
import type { DeniedEvent } from '../signals/events.ts';
import { BIT_INDEX, KRSI_CFG, KRSI_MODULE_MODE, KRSI_OP, OP_BITS, VALID_SUBJECTS, live, unsetEntry, type DenyReason } from '../engine/enforcement/semantics.ts';
import { exempt } from '../engine/enforcement/enforcement.ts';
import { attributeDenied } from '../engine/enforcement/denied.ts';
import { kernelConfig } from '../engine/enforcement/kernel-config.ts';
import { childLogger } from '../lib/logger.ts';
import { kernelFileId, type DecodedDenied, type KConfig, type KVerdict } from './maps.ts';
import type { EnforcementHandle } from './programs.ts';
import { VerdictStore, deadlineNow, now as clockNow, stateDir as defaultStateDir, type Now, type StoredVerdict } from './store.ts';
import { keyString, kernelDeadline, verdictKey, type Entry, type EntryKey } from './verdict-keys.ts';
import { ModuleResolver } from './module-files.ts';
import { openPinnedMaps, type MapWriter } from './map-writers.ts';
import { VerdictBook } from './verdict-book.ts';
import { Lifecycle, procStart } from './lifecycle.ts';
import { killProcess, procDescendants, startNs, type KillResult } from './kill.ts';

const log = childLogger('enforcer');

export type { KVerdict, KConfig };

export interface EnforcerOptions {
  selfPid: number;
  stateDir?: string;
  modules?: ModuleResolver;
  /** true (default): -EPERM; false: the kernel only reports would-deny events */
  enforce?: boolean;
  clock?: () => Now;
  /** false: leave the kernel config alone (krsi verdicts beside a running krsi run) */
  manageConfig?: boolean;
  /** process start time, to tell a pid's process from a later one with the same pid */
  procStart?: (pid: number) => number | undefined;
  /** the kill op's SIGKILL from user space (default: enforcers/kill.ts, through a pidfd); eventNs: the
   *  verdict's event time, after which the process must not have started */
  kill?: (pid: number, eventNs: number, born?: number) => KillResult;
  /** the live descendants of a process as the kernel knows them, with their starts (default: kill.ts
   *  procDescendants, from /proc) */
  children?: (pid: number) => { pid: number; born: number }[];
  /** a process's start, ns since boot (default /proc/PID/stat): a descendant that started after the verdict's
   *  event is not the process the table knew (its pid was reused) */
  startNs?: (pid: number) => number | undefined;
}

export interface ModuleListStatus {
  map: 'module_allow' | 'module_deny';
  rule: string;
  names: number;
  /** names resolved to a .ko file (what the kernel map holds) */
  files: number;
  missing: string[];
}

export class Enforcer {
  private readonly book: VerdictBook;
  private readonly lifecycle: Lifecycle;
  /** presence maps (module_allow, module_deny) from kernel blocks */
  private readonly lists = new Map<string, Entry>();
  private readonly modules: ModuleResolver;
  private readonly clock: () => Now;
  private readonly procStart: (pid: number) => number | undefined;
  private cfg: KConfig;
  /** which rule configured the in-kernel counter and the allowlist, the two denials the kernel reports
   *  with rule_id 0 (the model reports the strictest / first); a denylist entry carries its rule_id */
  private kernelRules: { mprotect?: string; allow?: string; fileless?: string } = {};
  /** the module lists configured, with the names that have no .ko on this kernel (built in, or not
   *  shipped): `krsi run` warns about them once, at start */
  moduleLists: ModuleListStatus[] = [];
  private handle?: EnforcementHandle;
  /** ns from apply() to its map entry written, most recent last (bounded) */
  readonly applyNs: number[] = [];
  /** user-space SIGKILLs of the kill op, by result */
  readonly kills: Record<KillResult, number> = { killed: 0, gone: 0, reused: 0, exempt: 0, failed: 0 };
  /** pid verdicts whose process had exited when they were applied, until its exit event: a fork event from
   *  it still to come is a child forked after the verdict's event (forked()) */
  private readonly goneSubjects = new Map<number, Verdict[]>();

  /** the node binary krsi runs on, as the kernel keys it: an inode verdict on it is refused */
  private readonly runtime: { dev: number; ino: number } | undefined = (() => {
    try {
      return kernelFileId(process.execPath);
    } catch {
      return undefined;
    }
  })();

  constructor(readonly store: VerdictStore, readonly maps: MapWriter, private readonly o: EnforcerOptions) {
    this.modules = o.modules ?? new ModuleResolver();
    this.clock = o.clock ?? clockNow;
    this.procStart = o.procStart ?? procStart;
    this.book = new VerdictBook(store, maps);
    this.lifecycle = new Lifecycle(this.book, { selfPid: o.selfPid, clock: this.clock, procStart: this.procStart, startNs: o.startNs });
    this.cfg = { krsi_tgid: o.selfPid, mprotect_limit: 0, module_mode: KRSI_MODULE_MODE.OFF, enforce: o.enforce === false ? 0 : 1, flags: 0 };
    if (o.manageConfig !== false) maps.config(this.cfg);
  }

  /** loads (or reuses) the pinned enforcement programs and maps, opens the store */
  static async open(o: EnforcerOptions): Promise<Enforcer> {
    const { writer, handle } = await openPinnedMaps(o);
    let store: VerdictStore;
    try {
      store = VerdictStore.open(defaultStateDir(o.stateDir));
    } catch (e) {
      writer.close();
      throw e;
    }
    const enf = new Enforcer(store, writer, o);
    enf.handle = handle;
    return enf;
  }

  /** streams the kernel's denied events (the audit trail) as the decoded event (for the log) and its
   *  DeniedOut (for the output); returns a stop function */
  onDenied(cb: (ev: DecodedDenied, out: DeniedOut) => void): () => Promise<void> {
    if (!this.handle) throw new Error('onDenied: this enforcer did not load the enforcement programs');
    return this.handle.onDenied((ev) => cb(ev, this.deniedOut(ev)), (id) => this.store.ruleName(id));
  }

  get config(): KConfig {
    return { ...this.cfg };
  }

  /** static kernel configuration from the `kernel` blocks of enabled rules whose effective mode is
   *  enforce (`mode` overrides every rule's own mode, as `krsi run --mode` does) */
  configure(rules: CompiledRuleSet, mode?: Mode): void {
    for (const [k, e] of [...this.book.entries]) {
      unsetEntry(e, (c) => c.verdict.startsWith('kernel:'));
      this.book.write(k, e);
    }
    for (const e of this.lists.values()) {
      this.maps.delete(e.key);
      if (e.key.map === 'module_allow') this.maps.stamp?.(e.key, undefined);
    }
    this.lists.clear();
    this.moduleLists = [];
    const c = kernelConfig(rules, mode);
    this.kernelRules = { mprotect: c.mprotectRule || undefined, allow: c.allowRule || undefined, fileless: c.filelessRule || undefined };
    const ruleIds = new Map(c.rules.map((r) => [r, this.store.ruleId(r)]));
    const at = this.clock().boot;
    for (const { path, rule } of c.denyExecPaths) {
      let id;
      try { id = kernelFileId(path); } catch { log.warn({ rule, path }, 'deny_exec_paths: no such file, nothing to deny'); continue; }
      this.book.put({ map: 'deny_inode', dev: id.dev, ino: id.ino }, KRSI_OP.EXEC, 0, at, { verdict: `kernel:deny_exec_paths:${path}`, rule, ruleId: ruleIds.get(rule)! });
    }
    for (const l of c.moduleLists) {
      const missing: string[] = [];
      for (const n of l.names) {
        const f = this.modules.inode(n);
        if (!f) { missing.push(n); continue; }
        const key: EntryKey = { map: l.map, dev: f.dev, ino: f.ino };
        const e = { key, value: { expires: 0, ops: KRSI_OP.MODULE_LOAD, rule_id: ruleIds.get(l.rule)! } };
        this.lists.set(keyString(key), e);
        this.maps.put(key, e.value);
        // its ctime now: a file rewritten in place (same inode) is refused until the allowlist is resolved again
        if (l.map === 'module_allow') this.maps.stamp?.(key, f.ctimeNs);
      }
      const status = { map: l.map, rule: l.rule, names: l.names.length, files: l.names.length - missing.length, missing };
      this.moduleLists.push(status);
      this.reportModuleList(status);
    }
    const allow = c.moduleLists.some((l) => l.map === 'module_allow'), deny = c.moduleLists.some((l) => l.map === 'module_deny');
    this.cfg = {
      ...this.cfg,
      mprotect_limit: c.mprotectLimit,
      module_mode: (allow ? KRSI_MODULE_MODE.ALLOWLIST : 0) | (deny ? KRSI_MODULE_MODE.DENYLIST : 0),
      flags: ((this.cfg.flags ?? 0) & ~KRSI_CFG.DENY_FILELESS) | (c.denyFileless ? KRSI_CFG.DENY_FILELESS : 0),
    };
    if (this.o.manageConfig !== false) this.maps.config(this.cfg);
  }

  /** writes a verdict into the maps and the store; false when not applied (pid 1, krsi itself, a
   *  process that is gone, already expired, or a module with no file on this kernel) */
  apply(v: Verdict, descendants: readonly number[] = []): boolean {
    const t0 = process.hrtime.bigint();
    const bits = OP_BITS[v.op];
    if (bits === undefined) throw new Error(`verdict ${v.id}: unknown op ${v.op}`);
    if (!VALID_SUBJECTS[v.op].includes(v.subject.kind)) throw new Error(`verdict ${v.id}: op ${v.op} cannot apply to a ${v.subject.kind}`);
    let start: number | undefined;
    if (v.subject.kind === 'pid') {
      if (exempt(v.subject.pid, this.o.selfPid)) {
        log.warn({ verdict: v.id, pid: v.subject.pid }, 'verdict names pid 1 or krsi itself: never denied');
        return false;
      }
      start = this.procStart(v.subject.pid);
      if (start === undefined) {
        log.info({ verdict: v.id, pid: v.subject.pid }, 'process already exited: pid verdict ends with it');
        // ... but not with the children it forked after the event (mmap RWX; fork(); _exit()): their fork
        // events are still to come, and forked() gives them the verdict then; its exit event ends the wait
        const was = this.goneSubjects.get(v.subject.pid) ?? [];
        this.goneSubjects.delete(v.subject.pid);
        this.goneSubjects.set(v.subject.pid, [...was.filter((w) => w.id !== v.id), v]);
        if (this.goneSubjects.size > 1024) this.goneSubjects.delete(this.goneSubjects.keys().next().value!);
        return false;
      }
    }
    const key = verdictKey(v, this.modules);
    if ('unresolved' in key) {
      log.warn({ verdict: v.id }, key.unresolved);
      return false;
    }
    if (key.map === 'deny_inode' && this.runtime && key.dev === this.runtime.dev && key.ino === this.runtime.ino) {
      // node runs krsi's own helpers (the exe hash reader) and `krsi verdicts`, the way to lift a verdict
      log.warn({ verdict: v.id, path: process.execPath }, 'verdict names the node binary krsi runs on: never denied (it would lock krsi and its admins out)');
      return false;
    }
    const n = this.clock();
    const deadline = kernelDeadline(v, n.boot);
    if (deadline !== 0 && deadline <= n.boot) return false;
    const at = deadline === v.expires ? Math.min(v.ts, n.boot) : n.boot;
    const stored: StoredVerdict = {
      verdict: v, deadline, boot_id: n.bootId, applied_wall: n.wall, proc_start: start,
      expires_wall: deadline === 0 ? 0 : n.wall + Math.ceil((deadline - n.boot) / 1e6),
    };
    if (this.book.records.has(v.id)) this.book.unset(v.id);
    this.book.put(key, bits, deadline, at, { verdict: v.id, rule: v.rule, ruleId: this.store.ruleId(v.rule) });
    this.applyNs.push(Number(process.hrtime.bigint() - t0));
    if (this.applyNs.length > 10000) this.applyNs.splice(0, 5000);
    this.book.record(stored, key);
    if (v.subject.kind === 'pid') {
      // the subject's entry is in the map (above): the kernel's krsi_fork copies it to every fork from now on.
      // Forks before that and after the event (mmap RWX; fork()) are not in the process table yet (their
      // fork events are queued behind this one) and the kernel had nothing to copy: they are found as the
      // subject's children in /proc, descendants by construction while the subject is the process the event
      // named (its start, no later than the event, the same before and after the walk)
      const pid = v.subject.pid;
      const covered: { pid: number; born?: number }[] = [{ pid }];
      const seen = new Set([pid]);
      for (const d of descendants) if (!seen.has(d) && this.cover(v, d, bits, deadline, at)) covered.push({ pid: d }), seen.add(d);
      const own = (this.o.startNs ?? startNs)(pid);
      if (own !== undefined && own <= v.ts + 10_000_000) {
        const kids = (this.o.children ?? procDescendants)(pid);
        if (this.procStart(pid) === start)
          for (const k of kids) if (!seen.has(k.pid) && this.cover(v, k.pid, bits, deadline, at, k.born)) covered.push(k), seen.add(k.pid);
      }
      if (bits & KRSI_OP.KILL) this.killAll(v, covered);
    }
    return true;
  }

  /** a descendant the process table knew when the verdict was issued (forked before it) gets the verdict's
   *  entry too, recorded as inherited (removing the verdict lifts it); not pid 1 or krsi, not a process gone
   *  or started after the verdict's event (its pid reused). `found`: the start of a child found under the
   *  subject in /proc (procDescendants), which may be after the event: it must still be that process */
  private cover(v: Verdict, pid: number, bits: number, deadline: number, at: number, found?: number): boolean {
    if (exempt(pid, this.o.selfPid)) return false;
    const born = (this.o.startNs ?? startNs)(pid);
    if (born === undefined || (found !== undefined ? born !== found : born > v.ts + 10_000_000)) return false;
    const start = this.procStart(pid);
    if (start === undefined) return false;
    const key: EntryKey = { map: 'deny_tgid', tgid: pid };
    const id = `${v.id}@pid:${pid}`;
    if (this.book.records.has(id)) this.book.unset(id);
    this.book.put(key, bits, deadline, at, { verdict: v.id, rule: v.rule, ruleId: this.store.ruleId(v.rule) });
    const n = this.clock();
    this.book.record({
      verdict: { ...v, id, subject: { kind: 'pid', pid } }, deadline, boot_id: n.bootId, applied_wall: n.wall, proc_start: start,
      expires_wall: deadline === 0 ? 0 : n.wall + Math.ceil((deadline - n.boot) / 1e6), inherited: { from: v.id, bits },
    }, key);
    return true;
  }

  /** the kill op: SIGKILL now from user space (the kernel's programs kill at the next guarded operation
   *  anyway); logged and counted per result */
  private killAll(v: Verdict, pids: readonly { pid: number; born?: number }[]): void {
    if (this.cfg.enforce === 0) return; // monitor: the kernel reports, nobody is killed
    const kill = this.o.kill ?? ((pid: number, ns: number, born?: number) => killProcess(pid, ns, this.o.selfPid, born));
    for (const { pid, born } of pids) {
      let r: KillResult;
      try { r = born === undefined ? kill(pid, v.ts) : kill(pid, v.ts, born); } catch (e) { r = 'failed'; log.warn({ verdict: v.id, pid, err: (e as Error).message }, 'kill failed'); }
      this.kills[r]++;
      log.info({ verdict: v.id, pid, result: r }, r === 'killed' ? 'process killed (SIGKILL)' : `kill not sent: ${r}`);
    }
  }

  /** map entries whose expiry has passed leave the maps, with their verdicts from the store. The kernel
   *  already ignores them; this frees their slots (the maps hold 65536 entries, which a long run would
   *  otherwise fill with dead ones). An entry lives as long as its latest verdict (merged: the later
   *  expiry wins, none wins over any), so a verdict expires only with its whole entry: removing one
   *  earlier would take the bits it set last, which a longer verdict on the same key also asked for.
   *  krsi run calls it every minute. Returns how many verdicts went. */
  sweep(now = this.clock().boot): number {
    let n = 0;
    for (const [id, v] of [...this.book.records]) {
      const d = v.stored.deadline;
      if (d === 0 || d > now || !this.book.records.has(id)) continue;
      const e = this.book.entry(v.key);
      if (e !== undefined && live(e.expires, now)) continue;
      this.book.unset(id);
      this.store.remove(id);
      n++;
    }
    return n;
  }

  /** removes a verdict from the maps and the store (its bits leave the entry, as in the model) */
  remove(id: string): boolean {
    const had = this.book.unset(id);
    const stored = this.store.remove(id);
    // the copies children inherited from it at fork go with it (lifecycle: fork)
    for (const [did, d] of [...this.book.records]) {
      if (did === id || d.stored.inherited?.from !== id) continue;
      this.book.unset(did);
      this.store.remove(did);
    }
    if (had || stored) for (const s of this.store.list()) if (s.inherited?.from === id && s.verdict.id !== id) this.store.remove(s.verdict.id);
    return had || stored;
  }

  /** a process exited (lifecycle.ts) */
  exited(pid: number): void {
    this.goneSubjects.delete(pid);
    this.lifecycle.exited(pid);
  }

  /** a process forked (lifecycle.ts): returns how many inherited verdicts the child got. A child forked
   *  after the verdict's event but before its entry reached the map (the kernel had nothing to copy) gets
   *  it now, and the kill if the verdict has one */
  forked(parent: number, child: number, at = this.clock().boot): number {
    const gone = child === parent ? undefined : this.goneSubjects.get(parent);
    if (gone !== undefined) {
      // verdicts whose process had exited when they were applied: this child was forked after their event
      // (it runs what the process staged, its W+X pages included), so it gets them as a descendant, with the
      // fork's time as the reuse guard
      let got = 0;
      for (const g of gone) {
        if (at < g.ts) continue;
        const bits = OP_BITS[g.op]!;
        const now = this.clock();
        const deadline = kernelDeadline(g, now.boot);
        if (deadline !== 0 && deadline <= now.boot) continue;
        if (!this.cover({ ...g, ts: at }, child, bits, deadline, now.boot)) continue;
        got++;
        if (bits & KRSI_OP.KILL) this.killAll({ ...g, ts: at }, [{ pid: child }]);
      }
      return got;
    }
    const n = this.lifecycle.forked(parent, child, at);
    const late = this.lifecycle.late;
    if (late !== undefined) {
      this.lifecycle.late = undefined;
      if (late.ops & KRSI_OP.KILL) {
        const v = this.book.records.get(late.verdict)?.stored.verdict;
        if (v) this.killAll({ ...v, ts: at }, [{ pid: child }]);
      }
    }
    return n;
  }

  /** does the kernel hold a live deny_tgid entry on this pid (a quarantined or denied process, or the child
   *  of one)? Such a process must not lift verdicts through krsi's control socket */
  underVerdict(pid: number): boolean {
    const v = this.maps.get({ map: 'deny_tgid', tgid: pid });
    return v !== undefined && (v.expires === 0 || v.expires > this.clock().boot);
  }

  /** puts the store's verdicts back into the maps after a restart (oldest first, so entries merge as
   *  they did); drops expired ones and pid verdicts whose process is gone; returns how many */
  restore(): number {
    const n = this.clock();
    for (const gone of this.store.prune(n)) log.info({ verdict: gone.verdict.id }, 'expired while krsi was down');
    let count = 0;
    for (const s of this.store.list().sort((a, b) => a.verdict.ts - b.verdict.ts || a.applied_wall - b.applied_wall)) {
      const v = s.verdict;
      if (v.subject.kind === 'pid') {
        const start = this.procStart(v.subject.pid);
        if (start === undefined || (s.proc_start !== undefined && start !== s.proc_start)) {
          log.info({ verdict: v.id, pid: v.subject.pid }, 'process gone while krsi was down: pid verdict dropped');
          this.store.remove(v.id);
          continue;
        }
      }
      const key = verdictKey(v, this.modules);
      if ('unresolved' in key) { log.warn({ verdict: v.id }, key.unresolved); continue; }
      const deadline = deadlineNow(s, n);
      const again = s.boot_id === n.bootId ? s : { ...s, deadline, boot_id: n.bootId };
      if (this.book.records.has(v.id)) this.book.unset(v.id);
      // an inherited copy holds the bits its parent's verdict held and reports that verdict
      const bits = s.inherited?.bits ?? OP_BITS[v.op];
      const cause = s.inherited?.from ?? v.id;
      this.book.put(key, bits, deadline, s.boot_id === n.bootId ? Math.min(v.ts, n.boot) : n.boot, { verdict: cause, rule: v.rule, ruleId: this.store.ruleId(v.rule) });
      this.book.record(again, key, again !== s);
      count++;
    }
    return count;
  }

  /** makes the maps hold exactly desired(): deletes entries no stored verdict or rule asks for (left by
   *  an older configuration: a path no longer in deny_exec_paths, a module no longer on a list);
   *  returns how many went. Call after restore() and configure(), at start. */
  reconcile(): number {
    const want = new Set(this.desired().map((e) => keyString(e.key)));
    let n = 0;
    const now = this.clock();
    for (const e of this.maps.dump().entries) {
      if (want.has(keyString(e.key))) continue;
      if (e.key.map === 'deny_tgid' && this.lifecycle.adopt(e.key.tgid, e.value, now)) continue;
      this.maps.delete(e.key);
      n++;
    }
    return n;
  }

  /** the verdicts this enforcer applied or restored */
  list(): Verdict[] {
    return [...this.book.records.values()].map((v) => v.stored.verdict);
  }

  /** what the maps should hold: every entry this enforcer wrote */
  desired(): Entry[] {
    return [...this.book.desired(), ...this.lists.values()];
  }

  /** map entries held, for stats */
  sizes(): { entries: number; lists: number; verdicts: number } {
    return { entries: this.book.entries.size, lists: this.lists.size, verdicts: this.book.records.size };
  }

  /** a `denied` event from the enforcement ring buffer as output: the verdict is the one that set that op
   *  bit in that entry (as the model reports it) */
  deniedOut(ev: DeniedEvent): DeniedOut {
    return attributeDenied(ev, {
      entry: (k, bit) => {
        const e = this.book.entry('tgid' in k ? { map: 'deny_tgid', tgid: k.tgid } : { map: 'deny_inode', dev: k.dev, ino: k.ino });
        return e?.by[BIT_INDEX.find(([b]) => b === bit)![1]];
      },
      ruleName: (id) => this.store.ruleName(id),
      kernelRule: (reason: DenyReason) =>
        reason === 'MPROTECT_LIMIT' ? this.kernelRules.mprotect : reason === 'MODULE_ALLOW' ? this.kernelRules.allow : reason === 'FILELESS' ? this.kernelRules.fileless : undefined,
    });
  }

  /** median and p99 of apply() -> map entry written, ns */
  latency(): { count: number; median_ns: number; p99_ns: number } {
    return quantiles(this.applyNs);
  }

  /** krsi is stopping: its pid no longer gets the exemption (a later process may reuse it); the
   *  verdicts and the rest of the config stay in force */
  release(): void {
    if (this.o.manageConfig === false) return;
    this.cfg = { ...this.cfg, krsi_tgid: 0 };
    this.maps.config(this.cfg);
  }

  /** waits for the store, closes the maps (pinned maps and their entries stay) */
  async close(): Promise<void> {
    await this.book.settle();
    this.maps.close();
    await this.store.close();
  }

  /** one line per module list: an allowlist of which no name has a file refuses every module load */
  private reportModuleList(s: ModuleListStatus): void {
    const dir = this.modules.dir;
    const shown = s.missing.slice(0, 12).join(', ') + (s.missing.length > 12 ? `, ... (${s.missing.length - 12} more)` : '');
    if (s.map === 'module_allow' && s.files === 0 && s.names > 0)
      log.error({ rule: s.rule, dir }, `module allowlist: none of its ${s.names} modules has a .ko under ${dir}: every module load from a file will be refused`);
    else if (s.missing.length)
      log.warn({ rule: s.rule, dir, missing: s.missing.length }, `${s.map === 'module_allow' ? 'module allowlist' : 'module denylist'}: ${s.files} of ${s.names} modules resolved to a .ko under ${dir}; no file for ${shown} (built in, or not shipped with this kernel)`);
  }
}

/** count, median and p99 of a list of ns figures */
export function quantiles(xs: readonly number[]): { count: number; median_ns: number; p99_ns: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (f: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(f * s.length))] : 0);
  return { count: s.length, median_ns: q(0.5), p99_ns: q(0.99) };
}
