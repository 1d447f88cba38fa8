// The one TypeScript mirror of bpf/krsi.h: struct layouts, #defines, enums, the kernel's dev_t encoding,
// the keys and values of the enforcement maps, and the one decoder of the `denied` record (documented in
// signals/EVENTS.md). signals/decode.ts and enforcers/ use it and keep no copies; test/bpf/layout.test.ts
// checks it against the header and the BTF of the compiled objects. All integers are little-endian.

export interface StructLayout {
  size: number;
  fields: Record<string, number>;
}

/** every struct of bpf/krsi.h: size and field offsets */
export const LAYOUTS: Record<string, StructLayout> = {
  krsi_file_id: { size: 16, fields: { ino: 0, dev: 8, nlink: 12 } },
  krsi_hdr: {
    size: 72,
    fields: { ts: 0, kind: 8, pid: 12, tid: 16, ppid: 20, uid: 24, _pad: 28, cgroup: 32, exe: 40, comm: 56 },
  },
  krsi_exec_event: {
    size: 17544,
    fields: {
      hdr: 0, exe_path: 72, filename: 328, argv_len: 584, env_len: 588, ldso_len: 592, flags: 596, env_strings: 600,
      i_mode: 604, script: 608, s_magic: 624, fs_type: 632, argv: 648, area: 1160,
    },
  },
  krsi_fork_event: { size: 80, fields: { hdr: 0, child_pid: 72, _pad: 76 } },
  krsi_exit_event: { size: 80, fields: { hdr: 0, code: 72, _pad: 76 } },
  krsi_unlink_event: {
    size: 656,
    fields: { hdr: 0, target: 72, ret: 88, _pad: 92, path: 96, route: 352, flags: 356, running: 360, runner: 364, pids: 368, path2: 400 },
  },
  krsi_mem_event: {
    size: 128,
    fields: { hdr: 0, start: 72, len: 80, prot: 88, reqprot: 92, flags: 96, mem: 100, old_prot: 104, ret: 108, file: 112 },
  },
  krsi_module_event: { size: 400, fields: { hdr: 0, name: 72, file: 128, path: 144 } },
  krsi_obj_key: { size: 8, fields: { kind: 0, id: 4 } },
  krsi_inode_key: { size: 16, fields: { ino: 0, dev: 8, _pad: 12 } },
  krsi_verdict: { size: 16, fields: { expires: 0, ops: 8, rule_id: 12 } },
  krsi_config: { size: 24, fields: { krsi_tgid: 0, mprotect_limit: 4, module_mode: 8, enforce: 12, flags: 16, _pad: 20 } },
  krsi_denied_event: { size: 104, fields: { hdr: 0, op: 72, reason: 76, rule_id: 80, enforced: 84, inode: 88 } },
  krsi_run_inode: { size: 64, fields: { inode: 0, size: 8, nlink: 16, refs: 20, pids: 24, name: 56 } },
  krsi_run_tgid: { size: 32, fields: { exe: 0, script: 16 } },
  krsi_file_stamp: { size: 16, fields: { ctime_sec: 0, ctime_nsec: 8, _pad: 12 } },
  krsi_module_seen: { size: 72, fields: { ts: 0, seeded: 8, _pad: 12, name: 16 } },
  krsi_module_view: { size: 144, fields: { addr: 0, ts: 8, state: 16, flags: 20, seeded: 24, _pad: 28, name: 32, recorded: 88 } },
};

// ---- #defines ----
export const KRSI_COMM_LEN = 16;
export const KRSI_PATH_LEN = 256;
export const KRSI_ARGV_LEN = 512;
/** the watch_env map's key: a variable name of at most KRSI_ENV_NAME_LEN - 1 bytes, NUL-padded */
export const KRSI_ENV_NAME_LEN = 32;
/** the exec record's string area: matched "NAME=value" strings, then the ld.so option block */
export const KRSI_ENV_AREA = 16384;
export const KRSI_FS_NAME_LEN = 16;
export const KRSI_MODNAME_LEN = 56;
/** slots of signals.bpf.c's `lost` counters, indexed by event kind */
export const KRSI_EV_MAX = 16;
/** slots of enforce.bpf.c's deny_count, indexed by deny reason (slot 0: records lost) */
export const KRSI_DENY_SLOTS = 16;
/** slots of protect.bpf.c's tamper_count, indexed by deny reason (slot 0: records lost) */
export const KRSI_TAMPER_SLOTS = 12;
/** after a module file is refused by deny_inode (INODE) or the denylist (MODULE_DENY), the same tgid's
 *  module load from memory (init_module, the fallback of busybox insmod) is refused for this long, with
 *  the same reason and rule (kernel: enforce.bpf.c's module_refused map) */
export const MODULE_REFUSAL_NS = 5_000_000_000;
/** processes a file event names at most (krsi_unlink_event.pids; `running` counts them all) */
export const KRSI_RUN_PIDS = 8;
/** krsi_unlink_event.flags: target.nlink is the link count after the call */
export const KRSI_FILE_NLINK = 1;
/** krsi_unlink_event.flags: ret is the call's result */
export const KRSI_FILE_RET = 2;

/** every #define of bpf/krsi.h, by its C name */
export const DEFINES: Readonly<Record<string, number>> = {
  KRSI_COMM_LEN, KRSI_PATH_LEN, KRSI_ARGV_LEN, KRSI_ENV_NAME_LEN, KRSI_ENV_AREA, KRSI_FS_NAME_LEN, KRSI_MODNAME_LEN,
  KRSI_EV_MAX, KRSI_DENY_SLOTS, KRSI_TAMPER_SLOTS, MODULE_REFUSAL_NS, KRSI_RUN_PIDS, KRSI_FILE_NLINK, KRSI_FILE_RET,
};

// ---- enums ----
/** enum krsi_event_kind: the `kind` of every record's header */
export const EV = {
  exec: 1, fork: 2, exit: 3, unlink: 4, mprotect: 5, module_load: 6, denied: 7, module_unload: 8, mmap: 9, rename: 10, truncate: 11,
} as const;

/** enum krsi_op: operations refused; also the bits of a deny_tgid / deny_inode entry */
export const KRSI_OP = { EXEC: 1, MPROTECT_EXEC: 2, MODULE_LOAD: 4, QUARANTINE: 7, TAMPER: 8, KILL: 16 } as const;

/** enum krsi_deny_reason: which check refused (TAMPER_*: self-protection, op TAMPER) */
export const KRSI_DENY = {
  INODE: 1, TGID: 2, MPROTECT_LIMIT: 3, MODULE_ALLOW: 4, MODULE_DENY: 5,
  TAMPER_MAP: 6, TAMPER_LINK: 7, TAMPER_PIN: 8, TAMPER_PTRACE: 9, TAMPER_SIGNAL: 10, TAMPER_MOUNT: 11,
  FILELESS: 12, KEXEC: 13, READ_ID: 14, MODULE_CHANGED: 15,
} as const;
export type DenyReason = keyof typeof KRSI_DENY;

/** enum krsi_exec_flag: bits of krsi_exec_event.flags (facts of the executed file, bounds the record hit) */
export const KRSI_EXEC = {
  MEMFD: 1, DELETED: 2, NO_INTERP: 4, ARGV_TRUNC: 8, ENV_STRINGS: 16, ENV_FULL: 32, ENV_CUT: 64, LDSO_TRUNC: 128, PSEUDO: 256, SCRIPT_FD: 512, SCRIPT_MEMFD: 1024,
} as const;

/** enum krsi_config_flag: bits of krsi_config.flags */
export const KRSI_CFG = { DENY_FILELESS: 1 } as const;
/** enum krsi_mem_bit: what an mprotect / mmap record knows of the region (struct krsi_mem_event.mem) */
export const KRSI_MEM = { WX: 1, EXEC_ADDED: 2, FLIP: 4, UNKNOWN: 8, ANON: 16, SHMEM: 32, SHMAT: 64 } as const;
/** enum krsi_module_view_flag: bits of krsi_module_view.flags (the kernel's own module view) */
export const KRSI_MODVIEW = { LINKED: 1, SYSFS: 2, READABLE: 4 } as const;

/** enum krsi_module_mode: bits of krsi_config.module_mode (3: both lists, the denylist checked first) */
export const KRSI_MODULE_MODE = { OFF: 0, ALLOWLIST: 1, DENYLIST: 2 } as const;

/** enum krsi_obj_kind: the kind of a protect.bpf.c protected_ids key */
export const KRSI_OBJ = { MAP: 1, LINK: 2 } as const;

/** enum krsi_file_route: how a file event's target was found */
export const KRSI_ROUTE = { SYSCALL: 1, LSM: 2, IO_URING: 3, KERNEL: 4 } as const;

/** enum krsi_runner: who runs a file event's target */
export const KRSI_RUNNER = { NONE: 0, SELF: 1, PARENT: 2, OTHER: 3 } as const;

/** every enum of bpf/krsi.h: its enumerators are prefix + the upper-cased key (KRSI_EV_MODULE_LOAD = EV.module_load) */
export const ENUMS: Readonly<Record<string, { prefix: string; values: Readonly<Record<string, number>> }>> = {
  krsi_event_kind: { prefix: 'KRSI_EV_', values: EV },
  krsi_op: { prefix: 'KRSI_OP_', values: KRSI_OP },
  krsi_deny_reason: { prefix: 'KRSI_DENY_', values: KRSI_DENY },
  krsi_module_mode: { prefix: 'KRSI_MODULE_', values: KRSI_MODULE_MODE },
  krsi_mem_bit: { prefix: 'KRSI_MEM_', values: KRSI_MEM },
  krsi_obj_kind: { prefix: 'KRSI_OBJ_', values: KRSI_OBJ },
  krsi_exec_flag: { prefix: 'KRSI_EXEC_', values: KRSI_EXEC },
  krsi_config_flag: { prefix: 'KRSI_CFG_', values: KRSI_CFG },
  krsi_file_route: { prefix: 'KRSI_ROUTE_', values: KRSI_ROUTE },
  krsi_runner: { prefix: 'KRSI_RUNNER_', values: KRSI_RUNNER },
  krsi_module_view_flag: { prefix: 'KRSI_MODVIEW_', values: KRSI_MODVIEW },
};

// ---- dev_t: the kernel's s_dev (MAJOR << 20 | MINOR) <-> user-space st_dev (glibc makedev) ----

/** kernel dev_t -> user-space st_dev (what stat(2) and `stat -c %d` give) */
export function devFromKernel(kdev: number): number {
  const major = kdev >>> 20;
  const minor = kdev & 0xfffff;
  return (minor & 0xff) + major * 0x100 + (minor & 0xfff00) * 0x1000;
}

/** user-space st_dev -> kernel dev_t (12-bit major, 20-bit minor) */
export function devToKernel(dev: number): number {
  const major = Math.floor(dev / 0x100) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 0x1000) & 0xfff00);
  return (major * 0x100000 + minor) >>> 0;
}

/** a __u64 at b[off] as a number (exact below 2^53) */
function u64(b: Buffer, off: number): number {
  return b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 4294967296;
}

/** a NUL-terminated string of at most len bytes at b[off] */
function cstr(b: Buffer, off: number, len: number): string {
  const lim = off + len;
  let end = off;
  while (end < lim && b[end] !== 0) end++;
  return b.toString('utf8', off, end);
}

// ---- enforcement map keys and values ----

const IK = LAYOUTS.krsi_inode_key;
const VD = LAYOUTS.krsi_verdict;
const CF = LAYOUTS.krsi_config;

/** struct krsi_inode_key (deny_inode, module_allow, module_deny) from a user-space {dev (st_dev), ino} */
export function encodeInodeKey(k: { dev: number; ino: number }): Buffer {
  const b = Buffer.alloc(IK.size);
  b.writeBigUInt64LE(BigInt(k.ino), IK.fields.ino);
  b.writeUInt32LE(devToKernel(k.dev), IK.fields.dev);
  return b;
}

/** struct krsi_inode_key at b[off] -> user-space {dev (st_dev), ino} */
export function decodeInodeKey(b: Buffer, off = 0): { dev: number; ino: number } {
  return { ino: u64(b, off + IK.fields.ino), dev: devFromKernel(b.readUInt32LE(off + IK.fields.dev)) };
}

/** the __u32 tgid key of deny_tgid / mprotect_count */
export function encodeTgidKey(tgid: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(tgid);
  return b;
}

export function decodeTgidKey(b: Buffer): number {
  return b.readUInt32LE(0);
}

/** struct krsi_verdict: the value of deny_inode / deny_tgid (module_allow / module_deny: presence, expiry) */
export interface KVerdict {
  /** CLOCK_BOOTTIME deadline in ns (bpf_ktime_get_boot_ns), 0 = never */
  expires: number;
  /** enum krsi_op bits */
  ops: number;
  /** index into user space's rule table */
  rule_id: number;
}

export function encodeVerdict(v: KVerdict): Buffer {
  const b = Buffer.alloc(VD.size);
  b.writeBigUInt64LE(BigInt(Math.max(0, Math.round(v.expires))), VD.fields.expires);
  b.writeUInt32LE(v.ops >>> 0, VD.fields.ops);
  b.writeUInt32LE(v.rule_id >>> 0, VD.fields.rule_id);
  return b;
}

export function decodeVerdict(b: Buffer): KVerdict {
  return { expires: u64(b, VD.fields.expires), ops: b.readUInt32LE(VD.fields.ops), rule_id: b.readUInt32LE(VD.fields.rule_id) };
}

/** struct krsi_config: the single entry of the `config` array map */
export interface KConfig {
  /** never denied (krsi itself) */
  krsi_tgid: number;
  /** 0: counter off; else deny PROT_EXEC (mprotect, mmap, shmat) once the tgid's W->X flip count (this call included) exceeds it */
  mprotect_limit: number;
  /** KRSI_MODULE_MODE bits */
  module_mode: number;
  /** 0: monitor (denied records are written, the operation is allowed); 1: -EPERM */
  enforce: number;
  /** KRSI_CFG bits (absent: 0) */
  flags?: number;
}

export function encodeConfig(c: KConfig): Buffer {
  const b = Buffer.alloc(CF.size);
  b.writeUInt32LE(c.krsi_tgid >>> 0, CF.fields.krsi_tgid);
  b.writeUInt32LE(c.mprotect_limit >>> 0, CF.fields.mprotect_limit);
  b.writeUInt32LE(c.module_mode >>> 0, CF.fields.module_mode);
  b.writeUInt32LE(c.enforce >>> 0, CF.fields.enforce);
  b.writeUInt32LE((c.flags ?? 0) >>> 0, CF.fields.flags);
  return b;
}

export function decodeConfig(b: Buffer): KConfig {
  const f = CF.fields;
  return { krsi_tgid: b.readUInt32LE(f.krsi_tgid), mprotect_limit: b.readUInt32LE(f.mprotect_limit), module_mode: b.readUInt32LE(f.module_mode), enforce: b.readUInt32LE(f.enforce), flags: b.readUInt32LE(f.flags) };
}

/** the __u32 array key 0 of `config` */
export const CONFIG_KEY = Buffer.alloc(4);

// ---- the `denied` record (struct krsi_denied_event): signals/EVENTS.md, `denied` ----

export type DeniedOp = 'exec' | 'mprotect_exec' | 'module_load' | 'tamper' | 'kill';

/** enum krsi_op single bit -> the op name a denied record carries */
export const OP_NAMES: Readonly<Record<number, DeniedOp>> = {
  [KRSI_OP.EXEC]: 'exec',
  [KRSI_OP.MPROTECT_EXEC]: 'mprotect_exec',
  [KRSI_OP.MODULE_LOAD]: 'module_load',
  [KRSI_OP.TAMPER]: 'tamper',
  [KRSI_OP.KILL]: 'kill',
};

/** enum krsi_deny_reason -> name */
export const REASON_NAMES: Readonly<Record<number, DenyReason>> = Object.fromEntries(
  Object.entries(KRSI_DENY).map(([name, v]) => [v, name as DenyReason]),
);

/** a decoded denied record: a `denied` event as signals/EVENTS.md documents it */
export type DeniedRecord = {
  ts: number;
  type: 'denied';
  pid: number;
  ppid: number;
  uid: number;
  comm: string;
  /** path '': the record has none (signals/decode.ts fills it from the exe paths it remembers) */
  exe: { dev: number; ino: number; path: string };
  tid: number;
  cgroup: number;
  /** unknown values: `op<n>` */
  op: DeniedOp | `op${number}`;
  key: Record<string, unknown>;
  /** unknown values: `reason<n>` */
  reason: DenyReason | `reason${number}`;
  /** 0: no rule's verdict (the in-kernel counter and lists, self-protection) */
  rule_id: number;
  /** false: only reported (monitor mode, a signal to krsi) */
  enforced: boolean;
  /** the rule behind rule_id, when the reader knows it */
  rule?: string;
};

const H = LAYOUTS.krsi_hdr.fields;
const FID = LAYOUTS.krsi_file_id.fields;
const DE = LAYOUTS.krsi_denied_event;

/**
 * The one decoder of struct krsi_denied_event at b[o, o + len) (the enforcer's ring buffer and the
 * signals' decoder both call it); undefined when too short or not a denied record. `ruleName` names
 * rule_id's rule. The key shapes are signals/EVENTS.md's.
 */
export function decodeDenied(b: Buffer, ruleName?: (id: number) => string | undefined, o = 0, len = b.length - o): DeniedRecord | undefined {
  if (len < DE.size || b.readUInt32LE(o + H.kind) !== EV.denied) return undefined;
  const f = DE.fields;
  const opBit = b.readUInt32LE(o + f.op);
  const reasonNum = b.readUInt32LE(o + f.reason);
  const rule_id = b.readUInt32LE(o + f.rule_id);
  const pid = b.readUInt32LE(o + H.pid);
  const reason = REASON_NAMES[reasonNum] ?? (`reason${reasonNum}` as const);
  const ino = u64(b, o + f.inode + IK.fields.ino);
  const kdev = b.readUInt32LE(o + f.inode + IK.fields.dev);
  let key: Record<string, unknown>;
  if (opBit === KRSI_OP.TAMPER) key = tamperKey(reason, ino, kdev);
  else if (reason === 'TGID') key = { pid };
  else if (reason === 'MPROTECT_LIMIT') key = { counter: 'mprotect_limit', pid };
  // init_module: no file (the allowlist, or the fallback of a module file just refused to this tgid)
  // kexec_load, or a kernel_load_data id the allowlist does not know: no file either
  else if (opBit === KRSI_OP.MODULE_LOAD && ino === 0 && (reason === 'KEXEC' || reason === 'READ_ID')) key = { load: '(from memory)' };
  else if (opBit === KRSI_OP.MODULE_LOAD && ino === 0) key = { module: '(from memory)' };
  else key = { dev: devFromKernel(kdev), ino };
  const ev: DeniedRecord = {
    ts: u64(b, o + H.ts),
    type: 'denied',
    pid,
    ppid: b.readUInt32LE(o + H.ppid),
    uid: b.readUInt32LE(o + H.uid),
    comm: cstr(b, o + H.comm, KRSI_COMM_LEN),
    exe: { dev: devFromKernel(b.readUInt32LE(o + H.exe + FID.dev)), ino: u64(b, o + H.exe + FID.ino), path: '' },
    tid: b.readUInt32LE(o + H.tid),
    cgroup: u64(b, o + H.cgroup),
    op: OP_NAMES[opBit] ?? `op${opBit}`,
    key,
    reason,
    rule_id,
    enforced: b.readUInt32LE(o + f.enforced) !== 0,
  };
  const rule = rule_id ? ruleName?.(rule_id) : undefined;
  if (rule) ev.rule = rule;
  return ev;
}

/** what protect.bpf.c's tamper() put in the record's inode (ino, dev) for each reason */
function tamperKey(reason: string, what: number, dev: number): Record<string, unknown> {
  switch (reason) {
    case 'TAMPER_MAP': return { map_id: what, fmode: dev };
    case 'TAMPER_LINK': return { link_id: what, cmd: dev };
    case 'TAMPER_PIN': return { dev: devFromKernel(dev), ino: what };
    case 'TAMPER_MOUNT': return { dev: devFromKernel(dev) };
    case 'TAMPER_PTRACE': return { target: what, mode: dev };
    case 'TAMPER_SIGNAL': return { target: what, signal: dev };
    default: return { what, dev };
  }
}

/** deny_count values (one __u64 per reason slot) -> counts by reason name (tamper reasons: tamper_count) */
export function decodeDenyCounts(values: Map<number, bigint | number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [slot, n] of values) if (REASON_NAMES[slot] && slot < KRSI_DENY.TAMPER_MAP) out[REASON_NAMES[slot]] = Number(n);
  return out;
}

/** one struct module of the kernel's own module view, as krsi_module_iter wrote it (struct krsi_module_view) */
export interface ModuleViewRecord {
  addr: string;
  ts: number;
  state: number;
  linked: boolean;
  sysfs: boolean;
  readable: boolean;
  seeded: boolean;
  name: string;
  recorded: string;
}

/** the records of a krsi_module_iter read (a whole number of struct krsi_module_view; a short tail is dropped) */
export function decodeModuleViews(b: Buffer): ModuleViewRecord[] {
  const L = LAYOUTS.krsi_module_view;
  const f = L.fields;
  const out: ModuleViewRecord[] = [];
  for (let o = 0; o + L.size <= b.length; o += L.size) {
    const flags = b.readUInt32LE(o + f.flags);
    out.push({
      addr: b.readBigUInt64LE(o + f.addr).toString(16),
      ts: u64(b, o + f.ts),
      state: b.readUInt32LE(o + f.state),
      linked: (flags & KRSI_MODVIEW.LINKED) !== 0,
      sysfs: (flags & KRSI_MODVIEW.SYSFS) !== 0,
      readable: (flags & KRSI_MODVIEW.READABLE) !== 0,
      seeded: b.readUInt32LE(o + f.seeded) !== 0,
      name: cstr(b, o + f.name, KRSI_MODNAME_LEN),
      recorded: cstr(b, o + f.recorded, KRSI_MODNAME_LEN),
    });
  }
  return out;
}

/** a struct krsi_module_seen for user space's seeding (ts 0, seeded) */
export function encodeModuleSeen(name: string): Buffer {
  const L = LAYOUTS.krsi_module_seen;
  const b = Buffer.alloc(L.size);
  b.writeUInt32LE(1, L.fields.seeded);
  b.write(name.slice(0, KRSI_MODNAME_LEN - 1), L.fields.name, 'latin1');
  return b;
}

/** a module_stamp value: a file's ctime (stat's ctimeNs, as a bigint) */
export function encodeFileStamp(ctimeNs: bigint): Buffer {
  const L = LAYOUTS.krsi_file_stamp;
  const b = Buffer.alloc(L.size);
  b.writeBigInt64LE(ctimeNs / 1_000_000_000n, L.fields.ctime_sec);
  b.writeUInt32LE(Number(ctimeNs % 1_000_000_000n), L.fields.ctime_nsec);
  return b;
}
