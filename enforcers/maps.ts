// The user-space mirror of bpf/krsi.h's enforcement section: byte layouts, encoders/decoders of the
// enforcement maps' keys and values, the denied-event decoder, dev conversion, and where each map is pinned.
// Should match: bpf/krsi.h (enforcement section) and bpf/enforce.bpf.c (maps); checked against the
// object's BTF by test/bpf/layout.test.ts (LAYOUTS) and in the VM by test/vm/enforce.test.ts.
import { readFileSync, realpathSync, statSync, statfsSync } from 'node:fs';
import type { DeniedEvent } from '../signals/events.ts';
import type { VerdictOp } from '../engine/types.ts';
import { KRSI_DENY, KRSI_OP, type DenyReason } from '../engine/enforcement/semantics.ts';

/** enum krsi_op (bpf/krsi.h): the one table is engine/enforcement/semantics.ts */
export { KRSI_OP };

/** where enforcement lives in bpffs: maps and links pinned here outlive krsi */
export const ENFORCE_PIN_DIR = '/sys/fs/bpf/krsi/enforce';

/** the maps of bpf/enforce.bpf.c */
export const MAP_NAMES = ['deny_inode', 'deny_tgid', 'module_allow', 'module_deny', 'mprotect_count', 'config', 'deny_count', 'denied_events'] as const;
export type MapName = (typeof MAP_NAMES)[number];

/** pin path per map */
export const MAP_PINS: Record<MapName, string> = Object.fromEntries(MAP_NAMES.map((m) => [m, `${ENFORCE_PIN_DIR}/${m}`])) as Record<MapName, string>;

/** the LSM (and lifecycle) programs of bpf/enforce.bpf.c, each pinned as a link at LINK_PINS[prog] */
export const PROG_NAMES = ['krsi_bprm_check', 'krsi_file_mprotect', 'krsi_kernel_read_file', 'krsi_kernel_load_data', 'krsi_fork', 'krsi_exit'] as const;
export type ProgName = (typeof PROG_NAMES)[number];
export const LINK_PINS: Record<ProgName, string> = Object.fromEntries(PROG_NAMES.map((p) => [p, `${ENFORCE_PIN_DIR}/link_${p}`])) as Record<ProgName, string>;
/** the LSM hook each program attaches to (lifecycle program: a tracepoint) */
export const PROG_HOOKS: Record<ProgName, string> = {
  krsi_bprm_check: 'lsm/bprm_check_security',
  krsi_file_mprotect: 'lsm/file_mprotect',
  krsi_kernel_read_file: 'lsm/kernel_read_file',
  krsi_kernel_load_data: 'lsm/kernel_load_data',
  krsi_fork: 'tp_btf/sched_process_fork',
  krsi_exit: 'tp_btf/sched_process_exit',
};

/** struct name -> size and field offsets (same shape as signals/decode.ts LAYOUTS) */
export const LAYOUTS: Record<string, { size: number; fields: Record<string, number> }> = {
  krsi_file_id: { size: 16, fields: { ino: 0, dev: 8, nlink: 12 } },
  krsi_hdr: { size: 72, fields: { ts: 0, kind: 8, pid: 12, tid: 16, ppid: 20, uid: 24, _pad: 28, cgroup: 32, exe: 40, comm: 56 } },
  krsi_inode_key: { size: 16, fields: { ino: 0, dev: 8, _pad: 12 } },
  krsi_verdict: { size: 16, fields: { expires: 0, ops: 8, rule_id: 12 } },
  krsi_config: { size: 16, fields: { krsi_tgid: 0, mprotect_limit: 4, module_mode: 8, enforce: 12 } },
  krsi_denied_event: { size: 104, fields: { hdr: 0, op: 72, reason: 76, rule_id: 80, enforced: 84, inode: 88 } },
  krsi_obj_key: { size: 8, fields: { kind: 0, id: 4 } }, // protect.bpf.c protected_ids (enforcers/protect.ts encodeObjKey)
};

export const KRSI_EV_DENIED = 7;
/** number of slots in deny_count (indexed by enum krsi_deny_reason) */
export const DENY_COUNT_SLOTS = 8;

// ---- dev encoding: user space st_dev (glibc makedev) <-> kernel s_dev (MAJOR << 20 | MINOR) ----

/** user-space st_dev (as `stat -c %d` prints it) -> the kernel's s_dev encoding used in the maps */
export function devToKernel(dev: number): number {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
  return Number(((major << 20n) | (minor & 0xfffffn)) & 0xffffffffn);
}

/** the kernel's s_dev encoding -> user-space st_dev */
export function devFromKernel(kdev: number): number {
  const major = BigInt(kdev >>> 20);
  const minor = BigInt(kdev & 0xfffff);
  return Number((minor & 0xffn) | ((major & 0xfffn) << 8n) | ((minor & ~0xffn) << 12n) | ((major & ~0xfffn) << 32n));
}

const OVERLAYFS_SUPER_MAGIC = 0x794c7630;

function unescapeMount(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The {dev, ino} (user-space st_dev encoding) under which the LSM hooks see the file at `path`, for
 * keys built from a path rather than from an event. Usually stat()'s; on overlayfs stat() reports the
 * underlying layer's (pseudo) device while the hooks see the overlay superblock's, so the device comes
 * from the overlay mount in /proc/self/mountinfo (the inode number is the same in both views).
 */
export function kernelFileId(path: string): { dev: number; ino: number } {
  const st = statSync(path);
  if (statfsSync(path).type !== OVERLAYFS_SUPER_MAGIC) return { dev: st.dev, ino: st.ino };
  const real = realpathSync(path);
  let best: { point: string; dev: number } | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0 || f[sep + 1] !== 'overlay') continue;
    const point = unescapeMount(f[4]);
    if (!(real === point || real.startsWith(point === '/' ? '/' : `${point}/`))) continue;
    if (best && best.point.length > point.length) continue;
    const [major, minor] = f[2].split(':').map(Number);
    best = { point, dev: devFromKernel(((major << 20) | minor) >>> 0) };
  }
  return { dev: best?.dev ?? st.dev, ino: st.ino };
}

// ---- keys and values ----

/** struct krsi_inode_key from a user-space {dev (st_dev), ino} */
export function encodeInodeKey(k: { dev: number; ino: number }): Buffer {
  const b = Buffer.alloc(LAYOUTS.krsi_inode_key.size);
  b.writeBigUInt64LE(BigInt(k.ino), 0);
  b.writeUInt32LE(devToKernel(k.dev), 8);
  return b;
}

/** struct krsi_inode_key -> user-space {dev (st_dev), ino} */
export function decodeInodeKey(b: Buffer, off = 0): { dev: number; ino: number } {
  return { ino: Number(b.readBigUInt64LE(off)), dev: devFromKernel(b.readUInt32LE(off + 8)) };
}

/** __u32 tgid key of deny_tgid / mprotect_count */
export function encodeTgidKey(tgid: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(tgid);
  return b;
}

export function decodeTgidKey(b: Buffer): number {
  return b.readUInt32LE(0);
}

/** struct krsi_verdict */
export interface KVerdict {
  /** CLOCK_BOOTTIME deadline in ns (bpf_ktime_get_boot_ns), 0 = never */
  expires: number;
  /** enum krsi_op bits */
  ops: number;
  /** index into user space's rule table */
  rule_id: number;
}

export function encodeVerdict(v: KVerdict): Buffer {
  const b = Buffer.alloc(LAYOUTS.krsi_verdict.size);
  b.writeBigUInt64LE(BigInt(Math.max(0, Math.round(v.expires))), 0);
  b.writeUInt32LE(v.ops >>> 0, 8);
  b.writeUInt32LE(v.rule_id >>> 0, 12);
  return b;
}

export function decodeVerdict(b: Buffer): KVerdict {
  return { expires: Number(b.readBigUInt64LE(0)), ops: b.readUInt32LE(8), rule_id: b.readUInt32LE(12) };
}

/** struct krsi_config (the single entry of the `config` array map) */
export interface KConfig {
  /** never denied (krsi itself) */
  krsi_tgid: number;
  /** 0: counter off; else deny a PROT_EXEC mprotect once the tgid's count (this call included) exceeds it */
  mprotect_limit: number;
  /** bits: 1 allowlist, 2 denylist (both: denylist checked first) */
  module_mode: number;
  /** 0: monitor (denied events are written, the operation is allowed); 1: -EPERM */
  enforce: number;
}

export function encodeConfig(c: KConfig): Buffer {
  const b = Buffer.alloc(LAYOUTS.krsi_config.size);
  b.writeUInt32LE(c.krsi_tgid >>> 0, 0);
  b.writeUInt32LE(c.mprotect_limit >>> 0, 4);
  b.writeUInt32LE(c.module_mode >>> 0, 8);
  b.writeUInt32LE(c.enforce >>> 0, 12);
  return b;
}

export function decodeConfig(b: Buffer): KConfig {
  return { krsi_tgid: b.readUInt32LE(0), mprotect_limit: b.readUInt32LE(4), module_mode: b.readUInt32LE(8), enforce: b.readUInt32LE(12) };
}

/** the __u32 array key 0 of `config` */
export const CONFIG_KEY = Buffer.alloc(4);

// ---- denied events ----

/** enum krsi_op single bit -> the op name of DeniedEvent / DeniedOut */
export const OP_NAMES: Record<number, Exclude<VerdictOp, 'quarantine'>> = {
  [KRSI_OP.EXEC]: 'exec',
  [KRSI_OP.MPROTECT_EXEC]: 'mprotect_exec',
  [KRSI_OP.MODULE_LOAD]: 'module_load',
};

/** enum krsi_deny_reason -> name */
export const REASON_NAMES: Record<number, DenyReason> = Object.fromEntries(
  Object.entries(KRSI_DENY).map(([name, v]) => [v, name as DenyReason]),
);

function cstr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

/** the denied event the kernel wrote, plus what a DeniedEvent does not carry */
export interface DecodedDenied extends DeniedEvent {
  /** enum krsi_deny_reason name */
  reason: DenyReason | string;
  rule_id: number;
  /** false: monitor mode (config.enforce 0): the kernel would have denied but allowed */
  enforced: boolean;
}

/**
 * struct krsi_denied_event -> DeniedEvent. `key` is what matched: {dev, ino} for an inode (exec of a
 * denied binary, a module file), {pid} for a tgid verdict, {counter: 'mprotect_limit', pid} for the
 * in-kernel counter, {module: '(from memory)'} for init_module (the allowlist, or with reason INODE /
 * MODULE_DENY the fallback of a module file refused to the same process moments before). `ruleName` maps rule_id to a rule name (0: none, the in-kernel lists and counter).
 */
export function decodeDenied(data: Buffer, ruleName?: (id: number) => string | undefined): DecodedDenied | undefined {
  const L = LAYOUTS.krsi_denied_event;
  if (data.length < L.size || data.readUInt32LE(8) !== KRSI_EV_DENIED) return undefined;
  const f = L.fields;
  const opBit = data.readUInt32LE(f.op);
  const reasonNum = data.readUInt32LE(f.reason);
  const rule_id = data.readUInt32LE(f.rule_id);
  const reason = REASON_NAMES[reasonNum] ?? String(reasonNum);
  const pid = data.readUInt32LE(12);
  const inode = decodeInodeKey(data, f.inode);
  let key: Record<string, unknown>;
  if (opBit === KRSI_OP.TAMPER) key = tamperKey(reason, data, f.inode);
  else if (reason === 'TGID') key = { pid };
  else if (reason === 'MPROTECT_LIMIT') key = { counter: 'mprotect_limit', pid };
  else if (opBit === KRSI_OP.MODULE_LOAD && inode.ino === 0) key = { module: '(from memory)' }; // init_module: allowlist, or a refused file's fallback
  else key = { dev: inode.dev, ino: inode.ino };
  const exeIno = Number(data.readBigUInt64LE(40));
  const ev: DecodedDenied = {
    ts: Number(data.readBigUInt64LE(0)),
    type: 'denied',
    pid,
    tid: data.readUInt32LE(16),
    ppid: data.readUInt32LE(20),
    uid: data.readUInt32LE(24),
    cgroup: Number(data.readBigUInt64LE(32)),
    exe: { dev: exeIno ? devFromKernel(data.readUInt32LE(48)) : 0, ino: exeIno, path: '' },
    comm: cstr(data, 56, 16),
    op: opBit === KRSI_OP.TAMPER ? 'tamper' : OP_NAMES[opBit] ?? `op${opBit}`,
    key,
    reason,
    rule_id,
    enforced: data.readUInt32LE(f.enforced) !== 0,
  };
  const rule = rule_id ? ruleName?.(rule_id) : undefined;
  if (rule) ev.rule = rule;
  return ev;
}

/** the key of a self-protection event (bpf/protect.bpf.c; krsi.h krsi_deny_reason says what inode.ino and
 *  inode.dev hold for each reason) */
function tamperKey(reason: string, data: Buffer, off: number): Record<string, unknown> {
  const what = Number(data.readBigUInt64LE(off));
  const dev = data.readUInt32LE(off + 8);
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

/** deny_count values (one __u64 per reason slot) -> counts by reason name */
export function decodeDenyCounts(values: Map<number, bigint | number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [slot, n] of values) if (REASON_NAMES[slot] && slot < KRSI_DENY.TAMPER_MAP) out[REASON_NAMES[slot]] = Number(n); // tamper: protect.ts counts
  return out;
}
