// The enforcer: turns the engine's verdicts into entries of the pinned BPF maps that the LSM programs
// (bpf/enforce.bpf.c) consult, keeps them in the verdict store (lmdb) and puts them back on restart.
// Semantics are exactly the enforcement model's (engine/enforcement/model.ts, the SEMANTICS table):
//   subject pid          -> deny_tgid[tgid]        ops |= the op's bits (quarantine: all)        reason TGID
//   subject inode        -> deny_inode[dev, ino]   (exec of that binary)                         reason INODE
//   subject module_file  -> deny_inode[dev, ino]   (MODULE_LOAD)                                 reason INODE
//   subject module name  -> deny_inode[the .ko's dev, ino] under /lib/modules/$(uname -r)        reason INODE
//                           (SEMANTICS: the model's deny_module_name, resolved to deny_inode here)
//   kernel blocks        -> config (mprotect_limit, module_mode); module_allowlist -> module_allow,
//                           module_denylist -> module_deny (names -> .ko inodes; reasons MODULE_ALLOW,
//                           MODULE_DENY); deny_exec_paths -> deny_inode (paths -> inodes; INODE)
// Keys built from a path (module files, deny_exec_paths) use maps.ts kernelFileId(): the {dev, ino}
// the LSM hooks see, which on overlayfs is not what stat() reports.
// A module file refused by INODE or MODULE_DENY also refuses that process's module load from memory for
// MODULE_REFUSAL_NS (kernel-only module_refused map): busybox insmod's fallback. A denylist by inode
// stays weak (a copy of the file, or another process loading from memory, passes): allowlist is strong.
// Several verdicts on one key share one map entry, merged as the model merges (ops OR-ed, the later
// deadline, 0 = never wins, a dead entry is replaced); the kernel checks the deadline itself, so a
// TTL holds while krsi is down. Pid verdicts end with their process. Never pid 1, never krsi itself.
// A new process inherits its parent's deny_tgid entry in the kernel (enforce.bpf.c krsi_fork, the
// SEMANTICS lifecycle row); forked() records the copy (store: `inherited`) so that list, restore and
// reconcile know it, and removing the parent's verdict lifts it. A copy made while krsi was down is
// adopted by reconcile() (kept, not deleted) while its process lives.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { release } from 'node:os';
import type { CompiledRuleSet } from '../engine/rules/types.ts';
import type { DeniedOut, Mode, Verdict, VerdictOp } from '../engine/types.ts';
import type { DeniedEvent } from '../signals/events.ts';
import { BIT_INDEX, KRSI_MODULE_MODE, KRSI_OP, OP_BITS, VALID_SUBJECTS, kernelList, live, mergeEntry, unsetEntry, type DenyReason, type MergedEntry } from '../engine/enforcement/semantics.ts';
import { childLogger } from '../lib/log.ts';
import type { BpfMap } from '../bpf/libbpf.ts';
import {
  CONFIG_KEY, REASON_NAMES, kernelFileId, decodeConfig, decodeInodeKey, decodeTgidKey, decodeVerdict, encodeConfig, encodeInodeKey, encodeTgidKey, encodeVerdict,
  type DecodedDenied, type KConfig, type KVerdict,
} from './maps.ts';
import { enforcementLoaded, loadEnforcement, openPinned, type EnforcementHandle } from './programs.ts';
import { VerdictStore, deadlineNow, now as clockNow, stateDir as defaultStateDir, type Now, type StoredVerdict } from './store.ts';

const log = childLogger('enforcer');

export { OP_BITS };

export type { KVerdict, KConfig };

/** the presence maps (module lists) and the verdict maps */
export type InodeMap = 'deny_inode' | 'module_allow' | 'module_deny';
/** a map key; dev is the user-space st_dev encoding (the writer converts to the kernel's) */
export type EntryKey = { map: 'deny_tgid'; tgid: number } | { map: InodeMap; dev: number; ino: number };
export interface Entry { key: EntryKey; value: KVerdict }

/** what the enforcer needs from the maps; the real one writes the pinned BPF maps */
export interface MapWriter {
  put(key: EntryKey, value: KVerdict): void;
  /** one entry (what the kernel holds), or undefined */
  get(key: EntryKey): KVerdict | undefined;
  delete(key: EntryKey): void;
  config(c: KConfig): void;
  /** current contents (for `krsi verdicts list`) */
  dump(): { entries: Entry[]; config?: KConfig };
  close(): void;
}

export function keyString(k: EntryKey): string {
  return k.map === 'deny_tgid' ? `deny_tgid:${k.tgid}` : `${k.map}:${k.dev}:${k.ino}`;
}

/** resolves kernel module names to their .ko files (dev/ino), under /lib/modules/$(uname -r) */
export class ModuleResolver {
  private index?: Map<string, string>;
  constructor(readonly dir = process.env.KRSI_MODULES_DIR ?? join('/lib/modules', release())) {}

  static normalize(name: string): string {
    return name.replace(/-/g, '_');
  }

  /** the module's file path, or undefined when this kernel has no such module file */
  path(name: string): string | undefined {
    if (!this.index) {
      this.index = new Map();
      const walk = (d: string): void => {
        let names: string[];
        try { names = readdirSync(d); } catch { return; }
        for (const n of names) {
          const p = join(d, n);
          const m = /^(.+)\.ko(\.xz|\.zst|\.gz)?$/.exec(n);
          if (m) this.index!.set(ModuleResolver.normalize(m[1]), p);
          else if (!n.includes('.')) { try { if (statSync(p).isDirectory()) walk(p); } catch { /* vanished */ } }
        }
      };
      walk(this.dir);
    }
    return this.index.get(ModuleResolver.normalize(name));
  }

  /** the module file's {dev, ino} as the kernel_read_file hook sees it (kernelFileId: right on overlayfs too) */
  inode(name: string): { dev: number; ino: number; path: string } | undefined {
    const p = this.path(name);
    if (!p) return undefined;
    return { ...kernelFileId(p), path: p };
  }
}

/** the map key one verdict asks for, or why it has none */
export function verdictKey(v: Verdict, modules: Pick<ModuleResolver, 'inode' | 'dir'>): EntryKey | { unresolved: string } {
  const s = v.subject;
  switch (s.kind) {
    case 'pid':
      return { map: 'deny_tgid', tgid: s.pid };
    case 'inode':
    case 'module_file':
      return { map: 'deny_inode', dev: s.dev, ino: s.ino };
    case 'module': {
      const f = modules.inode(s.name);
      return f ? { map: 'deny_inode', dev: f.dev, ino: f.ino } : { unresolved: `no .ko file for module ${s.name} under ${modules.dir}: nothing to deny` };
    }
  }
}

/** the kernel deadline of a verdict: live event ts are CLOCK_BOOTTIME ns already; a ts from another
 *  clock (in the future of this boot) gets now + ttl */
export function kernelDeadline(v: Verdict, bootNow: number): number {
  if (v.expires === 0 || v.ttl_ns === 0) return 0;
  if (v.ts > bootNow + 1e9) return bootNow + v.ttl_ns;
  return v.expires;
}

/** /proc/<pid>/stat starttime (clock ticks since boot), or undefined when the process is gone */
export function procStart(pid: number): number | undefined {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

interface Cause {
  verdict: string;
  rule: string;
  ruleId: number;
}

/** one map entry as the model keeps it: struct krsi_verdict plus which verdict set each op bit */
interface KEntry extends MergedEntry<Cause> {
  key: EntryKey;
}


/** the model's merge (engine/enforcement/model.ts): a dead old entry is replaced; ops OR-ed; the
 *  later deadline, 0 wins; each new bit remembers its verdict */
export function mergeKEntry(old: KEntry | undefined, key: EntryKey, bits: number, expires: number, at: number, cause: Cause): KEntry {
  return mergeEntry(old, bits, expires, at, cause, (): KEntry => ({ key, ops: 0, expires: 0, by: [undefined, undefined, undefined] }));
}

function valueOf(e: KEntry): KVerdict {
  let rule_id = 0;
  for (const c of e.by) if (c) rule_id = c.ruleId;
  return { expires: e.expires, ops: e.ops, rule_id };
}

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
  /** verdict maps (deny_tgid, deny_inode) by keyString */
  private readonly entries = new Map<string, KEntry>();
  /** presence maps (module_allow, module_deny) from kernel blocks */
  private readonly lists = new Map<string, Entry>();
  private readonly verdicts = new Map<string, { stored: StoredVerdict; key: EntryKey }>();
  private readonly modules: ModuleResolver;
  private readonly clock: () => Now;
  private readonly procStart: (pid: number) => number | undefined;
  private cfg: KConfig;
  /** which rule configured the in-kernel counter and the allowlist, the two denials the kernel reports
   *  with rule_id 0 (the model reports the strictest / first); a denylist entry carries its rule_id */
  private kernelRules: { mprotect?: string; allow?: string } = {};
  /** the module lists configured, with the names that have no .ko on this kernel (built in, or not
   *  shipped): `krsi run` warns about them once, at start */
  moduleLists: ModuleListStatus[] = [];
  private readonly pending = new Set<Promise<unknown>>();
  private handle?: EnforcementHandle;
  /** ns from apply() to its map entry written, most recent last (bounded) */
  readonly applyNs: number[] = [];

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
    this.cfg = { krsi_tgid: o.selfPid, mprotect_limit: 0, module_mode: KRSI_MODULE_MODE.OFF, enforce: o.enforce === false ? 0 : 1 };
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
    for (const [k, e] of [...this.entries]) {
      unsetEntry(e, (c) => c.verdict.startsWith('kernel:'));
      this.write(k, e);
    }
    for (const e of this.lists.values()) this.maps.delete(e.key);
    this.lists.clear();
    let limit = 0, allow = false, deny = false;
    this.kernelRules = {};
    this.moduleLists = [];
    const at = this.clock().boot;
    for (const r of rules.rules) {
      const k = r.kernel;
      if (!k || r.source.enabled === false || (mode ?? r.mode) !== 'enforce') continue;
      const ruleId = this.store.ruleId(r.id);
      if (k.mprotect_limit && k.mprotect_limit > 0 && (limit === 0 || k.mprotect_limit < limit)) {
        limit = k.mprotect_limit;
        this.kernelRules.mprotect = r.id;
      }
      if (k.module_allowlist !== undefined) this.kernelRules.allow ??= r.id;
      if (k.deny_exec_paths !== undefined) {
        for (const p of kernelList(rules, k.deny_exec_paths, r.id)) {
          let id;
          try { id = kernelFileId(p); } catch { log.warn({ rule: r.id, path: p }, 'deny_exec_paths: no such file, nothing to deny'); continue; }
          const key: EntryKey = { map: 'deny_inode', dev: id.dev, ino: id.ino };
          this.put(key, KRSI_OP.EXEC, 0, at, { verdict: `kernel:deny_exec_paths:${p}`, rule: r.id, ruleId });
        }
      }
      for (const [list, map] of [[k.module_allowlist, 'module_allow'], [k.module_denylist, 'module_deny']] as const) {
        if (list === undefined) continue;
        if (map === 'module_allow') allow = true; else deny = true;
        const names = kernelList(rules, list, r.id);
        const missing: string[] = [];
        for (const n of names) {
          const f = this.modules.inode(n);
          if (!f) { missing.push(n); continue; }
          const key: EntryKey = { map, dev: f.dev, ino: f.ino };
          const e = { key, value: { expires: 0, ops: KRSI_OP.MODULE_LOAD, rule_id: ruleId } };
          this.lists.set(keyString(key), e);
          this.maps.put(key, e.value);
        }
        const status = { map, rule: r.id, names: names.length, files: names.length - missing.length, missing };
        this.moduleLists.push(status);
        this.reportModuleList(status);
      }
    }
    this.cfg = { ...this.cfg, mprotect_limit: limit, module_mode: (allow ? KRSI_MODULE_MODE.ALLOWLIST : 0) | (deny ? KRSI_MODULE_MODE.DENYLIST : 0) };
    if (this.o.manageConfig !== false) this.maps.config(this.cfg);
  }

  /** writes a verdict into the maps and the store; false when not applied (pid 1, krsi itself, a
   *  process that is gone, already expired, or a module with no file on this kernel) */
  apply(v: Verdict): boolean {
    const t0 = process.hrtime.bigint();
    const bits = OP_BITS[v.op];
    if (bits === undefined) throw new Error(`verdict ${v.id}: unknown op ${v.op}`);
    if (!VALID_SUBJECTS[v.op].includes(v.subject.kind)) throw new Error(`verdict ${v.id}: op ${v.op} cannot apply to a ${v.subject.kind}`);
    let start: number | undefined;
    if (v.subject.kind === 'pid') {
      if (v.subject.pid === 1 || v.subject.pid === this.o.selfPid) {
        log.warn({ verdict: v.id, pid: v.subject.pid }, 'verdict names pid 1 or krsi itself: never denied');
        return false;
      }
      start = this.procStart(v.subject.pid);
      if (start === undefined) {
        log.info({ verdict: v.id, pid: v.subject.pid }, 'process already exited: pid verdict ends with it');
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
    if (this.verdicts.has(v.id)) this.unset(v.id);
    this.put(key, bits, deadline, at, { verdict: v.id, rule: v.rule, ruleId: this.store.ruleId(v.rule) });
    this.applyNs.push(Number(process.hrtime.bigint() - t0));
    if (this.applyNs.length > 10000) this.applyNs.splice(0, 5000);
    this.verdicts.set(v.id, { stored, key });
    this.persist(this.store.put(stored));
    return true;
  }

  /** map entries whose expiry has passed leave the maps, with their verdicts from the store. The kernel
   *  already ignores them; this frees their slots (the maps hold 65536 entries, which a long run would
   *  otherwise fill with dead ones). An entry lives as long as its latest verdict (merged: the later
   *  expiry wins, none wins over any), so a verdict expires only with its whole entry: removing one
   *  earlier would take the bits it set last, which a longer verdict on the same key also asked for.
   *  krsi run calls it every minute. Returns how many verdicts went. */
  sweep(now = this.clock().boot): number {
    let n = 0;
    for (const [id, v] of [...this.verdicts]) {
      const d = v.stored.deadline;
      if (d === 0 || d > now || !this.verdicts.has(id)) continue;
      const e = this.entries.get(keyString(v.key));
      if (e !== undefined && live(e.expires, now)) continue;
      this.unset(id);
      this.store.remove(id);
      n++;
    }
    return n;
  }

  /** removes a verdict from the maps and the store (its bits leave the entry, as in the model) */
  remove(id: string): boolean {
    const had = this.unset(id);
    const stored = this.store.remove(id);
    // the copies children inherited from it at fork go with it (lifecycle: fork)
    for (const [did, d] of [...this.verdicts]) {
      if (did === id || d.stored.inherited?.from !== id) continue;
      this.unset(did);
      this.store.remove(did);
    }
    if (had || stored) for (const s of this.store.list()) if (s.inherited?.from === id && s.verdict.id !== id) this.store.remove(s.verdict.id);
    return had || stored;
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

  /** a process exited: its pid verdicts end with it. The kernel clears deny_tgid on exit itself, but an
   *  apply() that wrote the entry after that (the process exited between procStart() and the write, or
   *  was a zombie already) would leave it for whichever process reuses the pid: delete it here too */
  exited(pid: number): void {
    const e = this.entries.get(keyString({ map: 'deny_tgid', tgid: pid }));
    if (!e) return;
    this.entries.delete(keyString(e.key));
    this.maps.delete(e.key);
    for (const [id] of this.tgidRecords(pid)) {
      this.verdicts.delete(id);
      this.store.remove(id);
    }
  }

  /** does the kernel hold a live deny_tgid entry on this pid (a quarantined or denied process, or the child
   *  of one)? Such a process must not lift verdicts through krsi's control socket */
  denied(pid: number): boolean {
    const v = this.maps.get({ map: 'deny_tgid', tgid: pid });
    return v !== undefined && (v.expires === 0 || v.expires > this.clock().boot);
  }

  /** the verdicts krsi holds on a pid's deny_tgid entry (its own and inherited copies) */
  private tgidRecords(pid: number): [string, { stored: StoredVerdict; key: EntryKey }][] {
    return [...this.verdicts].filter(([, v]) => v.key.map === 'deny_tgid' && v.key.tgid === pid);
  }

  /** the child of a fork is a new process: records krsi still holds under its pid are from a process
   *  whose exit krsi did not see (lost with a full ring buffer), unless they were applied to the new
   *  process itself (its fork event came late: same process start time). The kernel's exit program
   *  cleared the dead process's entry; the map now holds the copy krsi_fork made from the parent, or,
   *  when the parent has none, an entry krsi wrote after that exit (a zombie): deleted then. */
  private forget(pid: number, parentLive: boolean): void {
    const k = keyString({ map: 'deny_tgid', tgid: pid });
    const e = this.entries.get(k);
    if (!e) return;
    const start = this.procStart(pid);
    const stale = this.tgidRecords(pid).filter(([, v]) => start === undefined || v.stored.proc_start !== start);
    if (stale.length === 0) return;
    if (parentLive) {
      // the map holds krsi_fork's copy of the parent's entry: the kernel's to keep; krsi's books drop
      // the dead process's records (forked() then records the copy)
      for (const [id] of stale) {
        this.verdicts.delete(id);
        this.store.remove(id);
      }
      this.entries.delete(k);
      return;
    }
    // no copy: the entry is krsi's own; its stale bits leave the map, the new process's own stay
    for (const [id] of stale) {
      this.unset(id);
      this.store.remove(id);
    }
  }

  /** a process forked: the kernel (krsi_fork) already copied the parent's live deny_tgid entry to the
   *  child; record the copy (entries and store) so list, restore and reconcile know it. Returns how
   *  many inherited verdicts the child got. */
  forked(parent: number, child: number, at = this.clock().boot): number {
    if (child === parent) return 0; // a thread of the same process
    const e = this.entries.get(keyString({ map: 'deny_tgid', tgid: parent }));
    const copied = e !== undefined && e.ops !== 0 && live(e.expires, at) && parent !== 1 && parent !== this.o.selfPid;
    this.forget(child, copied);
    if (parent === 1 || parent === this.o.selfPid) return 0;
    if (!e || e.ops === 0 || !live(e.expires, at)) return 0;
    const start = this.procStart(child);
    if (start === undefined) return 0; // already gone: the kernel's copy went with it
    const key: EntryKey = { map: 'deny_tgid', tgid: child };
    // only what the kernel copied: a fork reported after the verdict may have happened before it
    const inKernel = this.maps.get(key);
    if (!inKernel || inKernel.ops !== e.ops || inKernel.expires !== e.expires) return 0;
    const k = keyString(key);
    // as the kernel does: the child's entry is the parent's value (a new tgid has no entry of its own)
    const copy: KEntry = { key, ops: e.ops, expires: e.expires, by: [...e.by] };
    let n = 0;
    const wall = this.clock();
    this.entries.set(k, copy);
    // one stored record per verdict the parent's entry holds (its bits), keyed by child
    const byVerdict = new Map<string, number>();
    for (const [bit, i] of BIT_INDEX) { const c = e.by[i]; if (c && e.ops & bit) byVerdict.set(c.verdict, (byVerdict.get(c.verdict) ?? 0) | bit); }
    for (const [from, bits] of byVerdict) {
      const src = this.verdicts.get(from) ?? [...this.verdicts.values()].find((v) => v.stored.inherited?.from === from);
      if (!src) continue; // a kernel:* cause (never on deny_tgid) or unknown
      const id = `${from}@pid:${child}`;
      const stored: StoredVerdict = {
        ...src.stored,
        verdict: { ...src.stored.verdict, id, subject: { kind: 'pid', pid: child } },
        deadline: e.expires,
        expires_wall: e.expires === 0 ? 0 : wall.wall + Math.ceil((e.expires - wall.boot) / 1e6),
        applied_wall: wall.wall,
        proc_start: start,
        inherited: { from, bits },
      };
      this.verdicts.set(id, { stored, key });
      this.persist(this.store.put(stored));
      n++;
    }
    // not written to the map: the kernel already did, and a write after a fast child's exit would
    // leave an entry for a pid the next process may reuse
    return n;
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
      if (again !== s) this.persist(this.store.put(again));
      if (this.verdicts.has(v.id)) this.unset(v.id);
      // an inherited copy holds the bits its parent's verdict held and reports that verdict
      const bits = s.inherited?.bits ?? OP_BITS[v.op];
      const cause = s.inherited?.from ?? v.id;
      this.put(key, bits, deadline, s.boot_id === n.bootId ? Math.min(v.ts, n.boot) : n.boot, { verdict: cause, rule: v.rule, ruleId: this.store.ruleId(v.rule) });
      this.verdicts.set(v.id, { stored: again, key });
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
      if (e.key.map === 'deny_tgid' && this.adopt(e.key.tgid, e.value, now)) continue;
      this.maps.delete(e.key);
      n++;
    }
    return n;
  }

  /** a live deny_tgid entry this enforcer does not know, on a running process: a copy the kernel made
   *  at a fork while krsi was down (or a verdict from before a lost store). Kept, recorded as its own
   *  inherited verdict (`krsi verdicts rm/clear` lift it; it ends with the process or its TTL). */
  private adopt(tgid: number, value: KVerdict, n: Now): boolean {
    if (tgid === 1 || tgid === this.o.selfPid || value.ops === 0 || !live(value.expires, n.boot)) return false;
    const start = this.procStart(tgid);
    if (start === undefined) return false;
    const id = `kernel:inherited@pid:${tgid}`;
    const rule = (value.rule_id ? this.store.ruleName(value.rule_id) : undefined) ?? 'unknown';
    const op: VerdictOp = value.ops === KRSI_OP.EXEC ? 'exec' : value.ops === KRSI_OP.MPROTECT_EXEC ? 'mprotect_exec' : value.ops === KRSI_OP.MODULE_LOAD ? 'module_load' : 'quarantine';
    const key: EntryKey = { map: 'deny_tgid', tgid };
    const ttl = value.expires === 0 ? 0 : value.expires - n.boot;
    const stored: StoredVerdict = {
      verdict: { id, rule, op, subject: { kind: 'pid', pid: tgid }, ts: n.boot, ttl_ns: ttl, expires: value.expires, mode: 'enforce' },
      deadline: value.expires, expires_wall: value.expires === 0 ? 0 : n.wall + Math.ceil(ttl / 1e6), boot_id: n.bootId, applied_wall: n.wall,
      proc_start: start, inherited: { from: id, bits: value.ops & KRSI_OP.QUARANTINE },
    };
    const cause = { verdict: id, rule, ruleId: value.rule_id };
    const by = BIT_INDEX.map(([bit]) => (value.ops & bit ? cause : undefined));
    this.entries.set(keyString(key), { key, ops: value.ops & KRSI_OP.QUARANTINE, expires: value.expires, by });
    this.verdicts.set(id, { stored, key });
    this.persist(this.store.put(stored));
    log.info({ pid: tgid, rule, ops: value.ops }, 'kept a deny_tgid entry krsi did not know (inherited at a fork while krsi was down)');
    return true;
  }

  /** the verdicts this enforcer applied or restored */
  list(): Verdict[] {
    return [...this.verdicts.values()].map((v) => v.stored.verdict);
  }

  /** what the maps should hold: every entry this enforcer wrote */
  desired(): Entry[] {
    return [...[...this.entries.values()].map((e) => ({ key: e.key, value: valueOf(e) })), ...this.lists.values()];
  }

  /** turns a `denied` event from the enforcement ring buffer into the DeniedOut replay prints: the
   *  verdict is the one that set that op bit in that entry (as the model reports it) */
  deniedOut(ev: DeniedEvent): DeniedOut {
    // decoded by enforcers/maps.ts decodeDenied / signals/decode.ts: reason and rule_id beside key
    const x = ev as DeniedEvent & { reason?: number | string; rule_id?: number };
    const key = ev.key as { reason?: number | string; rule_id?: number; dev?: number; ino?: number; counter?: unknown };
    const rawReason = x.reason ?? key.reason;
    const ruleId = x.rule_id ?? key.rule_id;
    const op = (ev.op in OP_BITS && ev.op !== 'quarantine' ? ev.op : 'exec') as VerdictOp;
    const reason = (typeof rawReason === 'string' ? rawReason : rawReason === undefined ? undefined : REASON_NAMES[rawReason]) as DenyReason | undefined;
    if (ev.op === 'tamper') // self-protection (enforcers/protect.ts): no verdict, no rule behind it
      return { kind: 'denied', ts: ev.ts, seq: ev.seq ?? -1, pid: ev.pid, op: 'tamper', ...(reason ? { reason } : {}), verdict: 'kernel:self_protect', rule: 'self-protect', key: ev.key, enforced: (ev as { enforced?: boolean }).enforced !== false };
    const base = { kind: 'denied' as const, ts: ev.ts, seq: ev.seq ?? -1, pid: ev.pid, op, ...(reason ? { reason } : {}) };
    const rule = ev.rule ?? (ruleId ? this.store.ruleName(ruleId) : undefined) ?? this.kernelRule(reason) ?? 'unknown';
    const bitIndex = BIT_INDEX.find(([b]) => b === OP_BITS[op])![1];
    if (reason === 'MPROTECT_LIMIT' || key.counter !== undefined) return { ...base, verdict: 'kernel:mprotect_limit', rule };
    if (reason === 'MODULE_ALLOW') return { ...base, verdict: 'kernel:module_allowlist', rule };
    if (op === 'module_load' && (reason === 'INODE' || reason === 'MODULE_DENY') && (key as { module?: unknown }).module !== undefined)
      return { ...base, verdict: 'kernel:module_refused', rule }; // the memory fallback of a refused module file
    if (reason === 'MODULE_DENY') return { ...base, verdict: 'kernel:module_denylist', rule };
    const k: EntryKey = reason === 'INODE' || (reason === undefined && key.ino) ? { map: 'deny_inode', dev: key.dev ?? 0, ino: key.ino ?? 0 } : { map: 'deny_tgid', tgid: ev.pid };
    const c = this.entries.get(keyString(k))?.by[bitIndex];
    return { ...base, verdict: c?.verdict ?? `kernel:${reason ?? 'unknown'}`, rule: c?.rule ?? rule };
  }

  /** the rule behind the in-kernel counter or allowlist (the kernel reports rule_id 0 for those) */
  private kernelRule(reason: DenyReason | undefined): string | undefined {
    return reason === 'MPROTECT_LIMIT' ? this.kernelRules.mprotect : reason === 'MODULE_ALLOW' ? this.kernelRules.allow : undefined;
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
    await Promise.allSettled([...this.pending]);
    this.maps.close();
    await this.store.close();
  }

  private persist(p: Promise<unknown>): void {
    this.pending.add(p);
    p.then(() => this.pending.delete(p), (e) => { this.pending.delete(p); log.error({ err: e }, 'verdict store write failed'); });
  }

  private put(key: EntryKey, bits: number, expires: number, at: number, cause: Cause): void {
    const k = keyString(key);
    const e = mergeKEntry(this.entries.get(k), key, bits, expires, at, cause);
    this.entries.set(k, e);
    this.maps.put(key, valueOf(e));
  }

  /** a verdict's bits leave its entry (only the bits it set last, as in the model) */
  private unset(id: string): boolean {
    const v = this.verdicts.get(id);
    if (!v) return false;
    this.verdicts.delete(id);
    const k = keyString(v.key);
    const e = this.entries.get(k);
    if (!e) return true;
    const cause = v.stored.inherited?.from ?? id; // an inherited copy's bits name the parent's verdict
    unsetEntry(e, (c) => c.verdict === cause);
    this.write(k, e);
    return true;
  }

  private write(k: string, e: KEntry): void {
    if (e.ops === 0) {
      this.entries.delete(k);
      this.maps.delete(e.key);
    } else this.maps.put(e.key, valueOf(e));
  }
}

/** count, median and p99 of a list of ns figures */
export function quantiles(xs: readonly number[]): { count: number; median_ns: number; p99_ns: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (f: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(f * s.length))] : 0);
  return { count: s.length, median_ns: q(0.5), p99_ns: q(0.99) };
}

/** an in-memory MapWriter, for translation tests and dry runs (it enforces nothing) */
export class MemoryMapWriter implements MapWriter {
  readonly entries = new Map<string, Entry>();
  cfg?: KConfig;
  writes = 0;
  put(key: EntryKey, value: KVerdict): void { this.entries.set(keyString(key), { key, value: { ...value } }); this.writes++; }
  get(key: EntryKey): KVerdict | undefined { const e = this.entries.get(keyString(key)); return e && { ...e.value }; }
  delete(key: EntryKey): void { this.entries.delete(keyString(key)); this.writes++; }
  config(c: KConfig): void { this.cfg = { ...c }; }
  dump() { return { entries: [...this.entries.values()], config: this.cfg }; }
  close(): void {}
}

/** the BPF maps a PinnedMapWriter writes (pinned under /sys/fs/bpf/krsi/enforce, or created by a test) */
export type VerdictMaps = Record<'deny_tgid' | InodeMap | 'config', BpfMap>;

/** writes the enforcement maps with enforcers/maps.ts encoders; readable with
 *  `bpftool map dump pinned /sys/fs/bpf/krsi/enforce/<map>` */
export class PinnedMapWriter implements MapWriter {
  /** manageConfig false: leave config alone (`krsi verdicts` beside a running `krsi run`) */
  constructor(readonly maps: VerdictMaps, private readonly manageConfig = true, private readonly onClose?: () => void) {}

  private encodeKey(k: EntryKey): Buffer {
    return k.map === 'deny_tgid' ? encodeTgidKey(k.tgid) : encodeInodeKey(k);
  }
  put(key: EntryKey, value: KVerdict): void {
    this.maps[key.map].update(this.encodeKey(key), encodeVerdict(value));
  }
  get(key: EntryKey): KVerdict | undefined {
    const v = this.maps[key.map].lookup(this.encodeKey(key));
    return v && decodeVerdict(v);
  }
  delete(key: EntryKey): void {
    this.maps[key.map].delete(this.encodeKey(key));
  }
  config(c: KConfig): void {
    if (this.manageConfig) this.maps.config.update(CONFIG_KEY, encodeConfig(c));
  }
  dump(): { entries: Entry[]; config?: KConfig } {
    const entries: Entry[] = [];
    for (const map of ['deny_tgid', 'deny_inode', 'module_allow', 'module_deny'] as const) {
      const m = this.maps[map];
      for (const k of m.keys()) {
        const v = m.lookup(k);
        if (!v) continue;
        const key: EntryKey = map === 'deny_tgid' ? { map, tgid: decodeTgidKey(k) } : { map, ...decodeInodeKey(k) };
        entries.push({ key, value: decodeVerdict(v) });
      }
    }
    const c = this.maps.config.lookup(CONFIG_KEY);
    return { entries, config: c ? decodeConfig(c) : undefined };
  }
  close(): void {
    if (this.onClose) this.onClose();
    else for (const m of Object.values(this.maps)) m.close();
  }
}

const VERDICT_MAPS = ['deny_tgid', 'deny_inode', 'module_allow', 'module_deny', 'config'] as const;

/** a writer on the already pinned verdict maps that leaves config alone (`krsi verdicts` beside a
 *  running `krsi run`); throws when they are not pinned */
export function pinnedVerdictWriter(): PinnedMapWriter {
  return new PinnedMapWriter(openPinned(VERDICT_MAPS), false);
}

/** the pinned enforcement maps: loads and attaches the programs when they are not pinned yet
 *  (enforcers/programs.ts; throws EnforcementUnavailable without BPF LSM), else reuses the pins */
async function openPinnedMaps(o: EnforcerOptions): Promise<{ writer: PinnedMapWriter; handle?: EnforcementHandle }> {
  if (o.manageConfig === false && enforcementLoaded()) return { writer: pinnedVerdictWriter() };
  const handle = await loadEnforcement({ selfPid: o.manageConfig === false ? 0 : o.selfPid });
  return { writer: new PinnedMapWriter(handle.maps, o.manageConfig !== false, () => handle.close()), handle };
}
