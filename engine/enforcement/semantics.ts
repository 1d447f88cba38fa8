// The one table of what krsi's BPF-LSM enforcement programs refuse, and why. hooks.ts reads its rows
// for the replay model (model.ts) and for the test that reads the live enforcer's map entries as the
// kernel does (test/enforcers/semantics.test.ts); the in-VM kernel tests (test/vm/*) check the same rows.
import type { EventType, KrsiEvent } from '../../signals/events.ts';
import { PROT_EXEC } from '../../signals/events.ts';
import type { Subject, VerdictOp } from '../types.ts';
import type { CompiledRuleSet } from '../rules/types.ts';

/** enum krsi_op, enum krsi_deny_reason, enum krsi_module_mode, MODULE_REFUSAL_NS: bpf/abi.ts, the one mirror of bpf/krsi.h */
import { KRSI_CFG, KRSI_DENY, KRSI_MODULE_MODE, KRSI_OP, MODULE_REFUSAL_NS, type DenyReason } from '../../bpf/abi.ts';
export { KRSI_CFG, KRSI_DENY, KRSI_MODULE_MODE, KRSI_OP, MODULE_REFUSAL_NS, type DenyReason };

/**
 * Self-protection (bpf/protect.bpf.c, `krsi run` in enforce mode unless --no-self-protect): op TAMPER,
 * never a verdict bit. Each row: the hook, what it refuses to every process but krsi (its tgid, fixed when
 * the programs load; they detach when krsi exits) and pid 1, and what the denied event's key holds
 * (enforcers/maps.ts decodeDenied).
 * The replay model has no row for it: it is about the live krsi process, not about a rule's verdicts.
 */
export const TAMPER: readonly { reason: DenyReason; hook: string; refuses: string; key: string }[] = [
  { reason: 'TAMPER_MAP', hook: 'bpf_map', refuses: 'an fd (any mode) on a map of krsi: by id, by pin', key: '{map_id, fmode}' },
  { reason: 'TAMPER_LINK', hook: 'bpf', refuses: 'BPF_LINK_GET_FD_BY_ID, BPF_LINK_DETACH, BPF_LINK_UPDATE on a link of krsi', key: '{link_id, cmd}' },
  { reason: 'TAMPER_PIN', hook: 'inode_unlink, inode_rmdir, inode_rename', refuses: 'removing, moving or replacing a pin, a pin directory or the control socket', key: '{dev, ino}' },
  { reason: 'TAMPER_MOUNT', hook: 'sb_umount', refuses: 'unmounting the bpffs that holds the pins', key: '{dev}' },
  { reason: 'TAMPER_PTRACE', hook: 'ptrace_access_check', refuses: 'attach-mode access to krsi: ptrace, /proc/PID/mem, process_vm_readv/writev, pidfd_getfd', key: '{target, mode}' },
  { reason: 'TAMPER_SIGNAL', hook: 'task_kill', refuses: 'nothing: a signal that can stop krsi is reported (enforced false), unless from pid 1 or an --allow-stop-from executable', key: '{target, signal}' },
];

/** the ops bits a verdict sets */
export const OP_BITS: Record<VerdictOp, number> = {
  exec: KRSI_OP.EXEC,
  mprotect_exec: KRSI_OP.MPROTECT_EXEC,
  module_load: KRSI_OP.MODULE_LOAD,
  quarantine: KRSI_OP.QUARANTINE,
  kill: KRSI_OP.KILL,
};

/** which subjects each verdict op can be enforced on (the loader rejects other pairs) */
export const VALID_SUBJECTS: Record<VerdictOp, Subject['kind'][]> = {
  exec: ['pid', 'inode'],
  mprotect_exec: ['pid'],
  module_load: ['pid', 'module', 'module_file'],
  quarantine: ['pid'],
  kill: ['pid'],
};

/** the map a subject kind lives in */
export const SUBJECT_MAP: Record<Subject['kind'], EnforcementMap> = {
  pid: 'deny_tgid',
  inode: 'deny_inode',
  module_file: 'deny_inode',
  // the model keys by name; the enforcer resolves the name to the module file's inode (deny_inode)
  module: 'deny_module_name',
};

export type EnforcementMap =
  | 'deny_inode' // key krsi_inode_key {dev, ino}, value krsi_verdict {expires, ops, rule_id}
  | 'deny_tgid' // key __u32 tgid, value krsi_verdict
  | 'deny_module_name' // model only: module name -> verdict (kernel: resolved to deny_inode)
  | 'mprotect_count' // key __u32 tgid, value __u64 count of W->X flips (mprotect making written memory executable, dropping write)
  | 'module_allow' // key krsi_inode_key (model: module name), presence = allowed
  | 'module_deny' // key krsi_inode_key (model: module name), presence = denied
  | 'module_refused' // key __u32 tgid, value {until, reason, rule_id}: a refused module file (kernel only state, not pinned)
  | 'config'; // the single krsi_config entry: its flags (KRSI_CFG_DENY_FILELESS), no per-key lookup

export type SingleOp = 'exec' | 'mprotect_exec' | 'module_load' | 'kill';

/** one check of a hook, in order; the first that denies wins */
export interface CheckRow {
  reason: DenyReason;
  map: EnforcementMap | 'deny_module_name';
  /** what the key is, in words (the kernel and the model agree on it) */
  key: string;
  /** when it denies, in words */
  denies: string;
}

export interface HookRow {
  /** the LSM hook (SEC("lsm/<hook>")) */
  hook: 'bprm_check_security' | 'file_mprotect' | 'mmap_file' | 'kernel_read_file' | 'kernel_load_data' | 'kill';
  /** the event type the replay model checks against this hook */
  event: EventType;
  op: SingleOp;
  bit: number;
  /** does this event reach the op at all (else: allow, after counting); absent: every event does */
  applies?: (ev: KrsiEvent) => boolean;
  /** which calls mprotect_count counts (before the checks, when the counter is on); absent: none */
  counts?: (ev: KrsiEvent) => boolean;
  /** the key of the subject as the hook sees it */
  checks: CheckRow[];
  note?: string;
}

/** common to every hook, before the rows' checks */
export const PRELUDE = [
  'an earlier LSM returned non-zero: return it (kernel only)',
  'tgid 1 (init) and krsi\'s own tgid (config.krsi_tgid; enforcement.ts exempt()): allow',
  'file_mprotect only: count a W->X flip in mprotect_count[tgid] (prot & PROT_EXEC, !(prot & PROT_WRITE), the region not executable and writable or written: VM_WRITE or an anon_vma), when the limit is on',
  'an entry is live iff expires == 0 || now < expires (now: bpf_ktime_get_boot_ns(); replay: the event ts)',
  'no live entry: allow',
] as const;

/** lifecycle: what process creation and exit do to the state, besides TTL and explicit removal */
export interface LifecycleRow {
  on: EventType;
  /** maps whose entry for the event's pid goes */
  clears: EnforcementMap[];
  /** maps whose live entry for the event's pid is copied to the new process (fork: child_pid) */
  copies: EnforcementMap[];
  note: string;
}

export const LIFECYCLE: readonly LifecycleRow[] = [
  { on: 'exit', clears: ['deny_tgid', 'mprotect_count', 'module_refused'], copies: [], note: 'a pid verdict ends with its process, so a reused pid starts clean (kernel: tp_btf/sched_process_exit, last thread)' },
  {
    on: 'exec',
    clears: ['mprotect_count'],
    copies: [],
    note:
      'the W->X flip count is the image\'s: an exec that is not refused starts it again (kernel: lsm/bprm_committing_creds, past the point ' +
      'of no return and before the new image is mapped, so a process over the limit can exec; a refused exec keeps the count)',
  },
  {
    on: 'fork',
    clears: [],
    copies: ['deny_tgid'],
    note:
      'a new process (child_pid, a new tgid) inherits its parent\'s live deny_tgid entry: same ops, same expiry, same verdict ' +
      '(kernel: tp_btf/sched_process_fork, before the child first runs; threads share the tgid). Not from pid 1 or krsi. ' +
      'A child forked before the verdict is covered by the verdict itself (apply() is given the descendants the process table knows); the mprotect count is not inherited. Removing the parent\'s ' +
      'verdict lifts the children\'s copies too (the enforcer knows them from fork events; a child forked while krsi ' +
      'was down keeps its kernel copy, which a restarted krsi adopts, until it exits or the TTL ends). ' +
      'State a log (replay) or krsi (live) still holds under child_pid is from a process whose exit was lost: the model ' +
      'and the enforcer drop it first (the kernel has none: its exit program never misses one)',
  },
];

export const SEMANTICS: readonly HookRow[] = [
  {
    hook: 'bprm_check_security',
    event: 'exec',
    op: 'exec',
    bit: KRSI_OP.EXEC,
    checks: [
      { reason: 'INODE', map: 'deny_inode', key: 'the new executable {dev, ino} (exec event: exe)', denies: 'entry.ops & EXEC (verdicts on exe inodes, kernel.deny_exec_paths)' },
      { reason: 'TGID', map: 'deny_tgid', key: 'the execing tgid (event pid)', denies: 'entry.ops & EXEC (exec verdict or quarantine)' },
      {
        reason: 'FILELESS',
        map: 'config',
        key: 'the new executable\'s facts (exec event: exe.memfd, exe.nlink)',
        denies: 'config.flags & DENY_FILELESS (kernel.deny_fileless_exec) and the file is a memfd or has no link left (nlink 0: unlinked after open, O_TMPFILE); a path unlinked while another link remains (exe.deleted, nlink >= 1) is not refused',
      },
    ],
    note: 'a refused exec leaves the process running its old image. FILELESS is its own program on the hook (krsi_bprm_fileless), after krsi_bprm_check: it runs only when that one allowed'
  },
  {
    hook: 'file_mprotect',
    event: 'mprotect',
    op: 'mprotect_exec',
    bit: KRSI_OP.MPROTECT_EXEC,
    applies: (ev) => ((ev as { prot?: number }).prot! & PROT_EXEC) !== 0,
    counts: (ev) => (ev as { flip?: boolean }).flip === true,
    checks: [
      { reason: 'TGID', map: 'deny_tgid', key: 'the calling tgid', denies: 'prot & PROT_EXEC (effective: READ_IMPLIES_EXEC applied) and entry.ops & MPROTECT_EXEC (verdict or quarantine)' },
      { reason: 'MPROTECT_LIMIT', map: 'mprotect_count', key: 'the calling tgid', denies: 'prot & PROT_EXEC and the W->X flip count (including this call) > config.mprotect_limit' },
    ],
    note:
      'the hook\'s effective `prot` is tested, not `reqprot` (READ_IMPLIES_EXEC turns PROT_READ into PROT_READ|PROT_EXEC); the kernel calls it once per region, ' +
      'the log has one event per call (its `prot` is the effective one; older logs: the requested one). Only W->X flips count (event flip: true; older logs have none)',
  },
  {
    hook: 'mmap_file',
    event: 'mmap',
    op: 'mprotect_exec',
    bit: KRSI_OP.MPROTECT_EXEC,
    applies: (ev) => ((ev as { prot?: number }).prot! & PROT_EXEC) !== 0,
    checks: [
      { reason: 'TGID', map: 'deny_tgid', key: 'the calling tgid', denies: 'prot & PROT_EXEC (effective) and entry.ops & MPROTECT_EXEC: an mprotect_exec verdict or quarantine refuses executable mappings too' },
      { reason: 'MPROTECT_LIMIT', map: 'mprotect_count', key: 'the calling tgid', denies: 'prot & PROT_EXEC and the flip count > config.mprotect_limit (an mmap is never a flip: not counted)' },
    ],
    note:
      'krsi_mmap_file (and krsi_shm_shmat for shmat(SHM_EXEC), which maps without mmap_file: its mmap event carries shmat); every mmap with PROT_EXEC, of a file or anonymous. The log has mmap events only for writable+executable, anonymous or tmpfs executable mappings, ' +
      'so a refused mapping of an ordinary file (a library) is in the log as its kernel `denied` record only. The kernel maps a new program\'s image ' +
      'through mmap_file too: a process under an mprotect_exec verdict cannot exec anything (the exec fails after the point of no return: the process dies); ' +
      'the flip counter does not follow an exec (LIFECYCLE exec: reset before the new image is mapped)',
  },
  {
    hook: 'kernel_read_file',
    event: 'module_load',
    op: 'module_load',
    bit: KRSI_OP.MODULE_LOAD,
    checks: [
      { reason: 'INODE', map: 'deny_inode', key: 'the module file {dev, ino} (event file)', denies: 'entry.ops & MODULE_LOAD (module_file verdicts)' },
      { reason: 'INODE', map: 'deny_module_name', key: 'the module name (event name); kernel: the enforcer resolves it to the file inode in deny_inode', denies: 'entry.ops & MODULE_LOAD (module verdicts)' },
      { reason: 'TGID', map: 'deny_tgid', key: 'the loading tgid', denies: 'entry.ops & MODULE_LOAD (verdict or quarantine)' },
      { reason: 'MODULE_DENY', map: 'module_deny', key: 'model: module name; kernel: module file inode', denies: 'module_mode & DENYLIST and present' },
      { reason: 'MODULE_ALLOW', map: 'module_allow', key: 'model: module name; kernel: module file inode', denies: 'module_mode & ALLOWLIST and absent' },
    ],
    note:
      'id == READING_MODULE only; the kernel identifies a module by its file inode, the model by name (lists hold names, resolved to inodes by the enforcer). ' +
      'A refusal by INODE or MODULE_DENY (when enforcing) also puts the tgid into module_refused for MODULE_REFUSAL_NS (see kernel_load_data). ' +
      'A denylist by inode is bypassed by a copy of the file (a new inode) or by another process loading it from memory: allowlist mode is the strong one',
  },
  {
    hook: 'kernel_load_data',
    event: 'module_load',
    op: 'module_load',
    bit: KRSI_OP.MODULE_LOAD,
    checks: [
      { reason: 'TGID', map: 'deny_tgid', key: 'the loading tgid', denies: 'entry.ops & MODULE_LOAD' },
      {
        reason: 'MODULE_DENY',
        map: 'module_refused',
        key: 'the loading tgid',
        denies: 'now < until: this tgid\'s module file was refused (INODE or MODULE_DENY) less than MODULE_REFUSAL_NS ago; the denial carries that refusal\'s reason (INODE or MODULE_DENY) and rule (verdict kernel:module_refused)',
      },
      { reason: 'MODULE_ALLOW', map: 'module_allow', key: 'none: no file', denies: 'module_mode & ALLOWLIST (a module from memory cannot be on an allowlist)' },
    ],
    note:
      'id == LOADING_MODULE (init_module(2) from memory). A log cannot tell it apart from a file load, so replay models every module_load event as kernel_read_file, ' +
      'except that a module_load without `file` by a pid whose module file was refused less than MODULE_REFUSAL_NS before is the memory fallback: TGID, then module_refused',
  },
];

/**
 * The kill op (bpf/enforce.bpf.c krsi_kill_*): small programs on hooks an active process cannot avoid for
 * long, each one lookup in deny_tgid: a live entry with the KILL bit sends SIGKILL to the current process
 * (bpf_send_signal, in its own context) and refuses the operation. krsi also sends SIGKILL at once from
 * user space when it applies the verdict (enforcers/kill.ts). Replay: the first event of a pid under a live
 * kill entry whose operation passes one of these hooks is reported refused (op kill, reason TGID); the
 * process's later events in the log are evaluated as recorded (once killed, it would have had none).
 */
export const KILL_HOOKS = ['bprm_check_security', 'file_mprotect', 'mmap_file', 'file_open', 'task_alloc', 'socket_connect'] as const;
/** the event types whose operation passes a KILL_HOOKS hook in the process that did it (fork: task_alloc
 *  in the parent; mmap: the memory area's mmap event) */
export const KILL_EVENTS: ReadonlySet<string> = new Set(['exec', 'mprotect', 'mmap', 'fork', 'module_load']);
export const KILL_ROW: HookRow = {
  hook: 'kill',
  event: 'exec',
  op: 'kill',
  bit: KRSI_OP.KILL,
  checks: [{ reason: 'TGID', map: 'deny_tgid', key: 'the current tgid', denies: 'entry.ops & KILL: SIGKILL to the current process, and the operation refused' }],
  note: `hooks ${KILL_HOOKS.join(', ')}; replay: events ${[...KILL_EVENTS].join(', ')}, the first per process`,
};

/**
 * Refusals of the module hooks that replay does not model, because no event carries what they test: the
 * kernel checks them in allowlist mode (config.module_mode & ALLOWLIST), after the rows above, and writes
 * a `denied` record (op module_load) that a log recorded under enforcement holds like any other.
 */
export const UNMODELLED: readonly { reason: DenyReason; hook: string; denies: string; why: string }[] = [
  {
    reason: 'MODULE_CHANGED', hook: 'kernel_read_file',
    denies: 'a module file on the allowlist (module_allow) whose inode ctime differs from module_stamp, the ctime user space stat()ed when it resolved the allowlist (at start): the file was rewritten in place (same inode)',
    why: 'module_load events carry no ctime',
  },
  {
    reason: 'KEXEC', hook: 'kernel_read_file, kernel_load_data',
    denies: 'READING_KEXEC_IMAGE, READING_KEXEC_INITRAMFS (kexec_file_load), LOADING_KEXEC_IMAGE (kexec_load): another kernel is a way around the allowlist',
    why: 'no event reports a kexec load',
  },
  {
    reason: 'READ_ID', hook: 'kernel_read_file, kernel_load_data',
    denies: 'any id but MODULE (and READING_MODULE_COMPRESSED where the kernel has it), FIRMWARE, POLICY, X509_CERTIFICATE and the kexec ids: UNKNOWN and ids newer than this build fail closed',
    why: 'no event reports a kernel_read_file or kernel_load_data id',
  },
];

/** the row replay uses for an event type (kernel_load_data is not modelled, see its note) */
export function hookFor(type: EventType): HookRow | undefined {
  for (const r of SEMANTICS) if (r.event === type && r.hook !== 'kernel_load_data') return r;
  return undefined;
}

/** the entries of the list a rule's `kernel` block names (module names, paths), as strings; the
 *  replay model and the live enforcer read kernel blocks with it */
export function kernelList(set: CompiledRuleSet, name: string, rule: string): string[] {
  const l = set.lists[name];
  if (!l) throw new Error(`rule ${rule}: kernel block names unknown list "${name}"`);
  return [...l].map(String);
}

/** is an entry with this expiry live at time now (ns, same clock) */
export function live(expires: number, now: number): boolean {
  return expires === 0 || now < expires;
}

/** a verdict's key inside its map, as a string: pid:<n> | inode:<dev>:<ino> | module:<name> */
export function subjectKey(s: Subject): string {
  switch (s.kind) {
    case 'pid':
      return `pid:${s.pid}`;
    case 'inode':
    case 'module_file':
      return `inode:${s.dev}:${s.ino}`;
    case 'module':
      return `module:${s.name}`;
  }
}

/** the verdict id: `${rule}:${op}:${subject}` (module_file keeps its own kind in the id) */
export function verdictId(rule: string, op: VerdictOp, s: Subject): string {
  const k = s.kind === 'module_file' ? `module_file:${s.dev}:${s.ino}` : subjectKey(s);
  return `${rule}:${op}:${k}`;
}

/** merge a new verdict into an existing live map entry with the same key (kernel: one value per key):
 *  ops are OR-ed; expires is the later of the two, 0 (never) wins; a dead old entry is replaced */
export function mergeExpires(oldExpires: number, oldLive: boolean, newExpires: number): number {
  if (!oldLive) return newExpires;
  if (oldExpires === 0 || newExpires === 0) return 0;
  return Math.max(oldExpires, newExpires);
}

/** op bit -> index into an entry's `by` (0 exec, 1 mprotect_exec, 2 module_load, 3 kill) */
export const BIT_INDEX: readonly (readonly [number, number])[] = [
  [KRSI_OP.EXEC, 0],
  [KRSI_OP.MPROTECT_EXEC, 1],
  [KRSI_OP.MODULE_LOAD, 2],
  [KRSI_OP.KILL, 3],
];

/** a map value (struct krsi_verdict) as user space keeps it, plus who set each op bit */
export interface MergedEntry<C> {
  ops: number;
  expires: number;
  by: (C | undefined)[];
}

/** the kernel's one-value-per-key merge, shared by the replay model and the live enforcer:
 *  a dead old entry is replaced by `fresh()`; ops are OR-ed; the later deadline (0 wins); each new
 *  bit remembers its cause */
export function mergeEntry<C, E extends MergedEntry<C>>(old: E | undefined, bits: number, expires: number, at: number, cause: C, fresh: () => E): E {
  const oldLive = old !== undefined && old.ops !== 0 && live(old.expires, at);
  const e = oldLive ? old : fresh();
  e.expires = mergeExpires(old?.expires ?? 0, oldLive, expires);
  e.ops |= bits;
  for (const [bit, i] of BIT_INDEX) if (bits & bit) e.by[i] = cause;
  return e;
}

/** drop the op bits an entry holds because of `matches`; returns the entry */
export function unsetEntry<C>(e: MergedEntry<C>, matches: (c: C) => boolean): MergedEntry<C> {
  for (const [bit, i] of BIT_INDEX) {
    const c = e.by[i];
    if (c !== undefined && matches(c)) {
      e.by[i] = undefined;
      e.ops &= ~bit;
    }
  }
  return e;
}
