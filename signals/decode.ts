// The one decoder of krsi's ring buffer records (bpf/krsi.h) into JSON Lines events (signals/events.ts).
// LAYOUTS mirrors the C structs; test/bpf/layout.test.ts compares it with the BTF of the compiled objects.
// Kernel inode devices (MAJOR << 20 | MINOR) become user-space st_dev, as `stat -c %d` prints them.
import { readlinkSync } from 'node:fs';
import type { DeniedEvent, ExecEvent, KrsiEvent } from './events.ts';

export interface StructLayout {
  size: number;
  fields: Record<string, number>;
}

/** struct name -> size and field offsets, as in bpf/krsi.h (checked against BTF by the layout test) */
export const LAYOUTS: Record<string, StructLayout> = {
  krsi_file_id: { size: 16, fields: { ino: 0, dev: 8, nlink: 12 } },
  krsi_hdr: {
    size: 72,
    fields: { ts: 0, kind: 8, pid: 12, tid: 16, ppid: 20, uid: 24, _pad: 28, cgroup: 32, exe: 40, comm: 56 },
  },
  krsi_env_var: { size: 224, fields: { name: 0, value: 32 } },
  krsi_exec_event: {
    size: 2896,
    fields: { hdr: 0, exe_path: 72, filename: 328, argv_len: 584, env_count: 588, argv: 592, env: 1104 },
  },
  krsi_fork_event: { size: 80, fields: { hdr: 0, child_pid: 72, _pad: 76 } },
  krsi_exit_event: { size: 80, fields: { hdr: 0, code: 72, _pad: 76 } },
  krsi_unlink_event: { size: 352, fields: { hdr: 0, target: 72, ret: 88, _pad: 92, path: 96 } },
  krsi_mprotect_event: { size: 96, fields: { hdr: 0, start: 72, len: 80, prot: 88, _pad: 92 } },
  krsi_module_event: { size: 128, fields: { hdr: 0, name: 72 } },
  krsi_inode_key: { size: 16, fields: { ino: 0, dev: 8, _pad: 12 } },
  krsi_denied_event: { size: 104, fields: { hdr: 0, op: 72, reason: 76, rule_id: 80, enforced: 84, inode: 88 } },
};

/** enum krsi_event_kind */
export const EV = { exec: 1, fork: 2, exit: 3, unlink: 4, mprotect: 5, module_load: 6, denied: 7 } as const;
/** sizes of bpf/krsi.h arrays */
export const KRSI_ENV_WATCH = 8;
export const KRSI_ENV_NAME_LEN = 32;
export const KRSI_ENV_VAL_LEN = 192;
export const KRSI_ARGV_LEN = 512;
export const KRSI_EV_MAX = 8;

/** kernel dev_t (MAJOR << 20 | MINOR) -> user-space st_dev (glibc makedev: what stat(2) and `stat -c %d` give) */
export function devFromKernel(kdev: number): number {
  const major = kdev >>> 20;
  const minor = kdev & 0xfffff;
  return (minor & 0xff) + major * 0x100 + (minor & 0xfff00) * 0x1000;
}

/** user-space st_dev -> kernel dev_t encoding (12-bit major, 20-bit minor) */
export function devToKernel(dev: number): number {
  const major = Math.floor(dev / 0x100) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 0x1000) & 0xfff00);
  return (major * 0x100000 + minor) >>> 0;
}

/** a wait status (task->exit_code) as a shell would report it: the exit code, or 128 + signal */
export function exitCodeFromStatus(status: number): number {
  const sig = status & 0x7f;
  return sig ? 128 + sig : (status >> 8) & 0xff;
}

const OPS: Record<number, string> = { 1: 'exec', 2: 'mprotect_exec', 4: 'module_load', 7: 'quarantine' };
const REASONS: Record<number, string> = { 1: 'inode', 2: 'tgid', 3: 'mprotect_limit', 4: 'module_allow', 5: 'module_deny' };

/** a u64 as a number (exact below 2^53: timestamps, inode numbers, cgroup ids, addresses) */
function u64(b: Buffer, off: number): number {
  return b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 4294967296;
}

function cstr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

/** the exe path walk is written leaf first ("true/bin/usr"); a trailing ".." marks a path that did not reach the root */
export function pathFromWalk(s: string): string {
  if (!s) return '';
  const parts = s.split('/').reverse();
  if (parts[0] === '..') parts[0] = '...';
  return '/' + parts.join('/');
}

export interface DecoderOptions {
  /** exe paths of processes first seen without an exec event: readlink /proc/PID/exe (default true) */
  procExe?: boolean;
  /** pids whose exe path is remembered at most (default 65536) */
  maxPids?: number;
}

/**
 * Stateful decoder: only exec events carry the exe path, so it remembers each process's path (exec, and
 * fork for the child) to fill exe.path of its other events; processes that started before krsi are
 * looked up once in /proc.
 */
export class Decoder {
  private readonly paths = new Map<number, string>();
  /** the last comm of each pid, by its 16 raw bytes: decoding a string per event costs more than comparing */
  private readonly comms = new Map<number, { w: [number, number, number, number]; s: string }>();
  /** pids whose exit was reported: two threads exiting at once can both see the group gone */
  private readonly exited = new Set<number>();
  private readonly procExe: boolean;
  private readonly maxPids: number;
  /** records that were too short or of an unknown kind */
  bad = 0;

  constructor(o: DecoderOptions = {}) {
    this.procExe = o.procExe ?? true;
    this.maxPids = o.maxPids ?? 65536;
  }

  private remember(pid: number, path: string): void {
    this.paths.delete(pid);
    this.paths.set(pid, path);
    if (this.paths.size > this.maxPids) this.paths.delete(this.paths.keys().next().value as number);
  }

  private comm(b: Buffer, pid: number): string {
    const w0 = b.readUInt32LE(56), w1 = b.readUInt32LE(60), w2 = b.readUInt32LE(64), w3 = b.readUInt32LE(68);
    const c = this.comms.get(pid);
    if (c && c.w[0] === w0 && c.w[1] === w1 && c.w[2] === w2 && c.w[3] === w3) return c.s;
    const s = cstr(b, 56, 16);
    if (!c && this.comms.size >= this.maxPids) this.comms.delete(this.comms.keys().next().value as number);
    this.comms.set(pid, { w: [w0, w1, w2, w3], s });
    return s;
  }

  private exePath(pid: number): string {
    const p = this.paths.get(pid);
    if (p !== undefined) return p;
    let path = '';
    if (this.procExe) {
      try {
        path = readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '');
      } catch {
        path = '';
      }
    }
    this.remember(pid, path);
    return path;
  }

  private short(b: Buffer, struct: string): boolean {
    if (b.length >= LAYOUTS[struct].size) return false;
    this.bad++;
    return true;
  }

  decode(b: Buffer): KrsiEvent | undefined {
    if (b.length < LAYOUTS.krsi_hdr.size) {
      this.bad++;
      return undefined;
    }
    const kind = b.readUInt32LE(8);
    const pid = b.readUInt32LE(12);
    const base = {
      ts: u64(b, 0),
      pid,
      ppid: b.readUInt32LE(20),
      uid: b.readUInt32LE(24),
      comm: this.comm(b, pid),
      exe: { dev: devFromKernel(b.readUInt32LE(48)), ino: u64(b, 40), path: '' },
      tid: b.readUInt32LE(16),
      cgroup: u64(b, 32),
    };
    switch (kind) {
      case EV.exec: {
        if (this.short(b, 'krsi_exec_event')) return undefined;
        base.exe.path = pathFromWalk(cstr(b, 72, 256));
        this.remember(pid, base.exe.path);
        this.exited.delete(pid);
        const argvLen = Math.min(b.readUInt32LE(584), KRSI_ARGV_LEN);
        const argv = argvLen ? b.toString('utf8', 592, 592 + argvLen).split('\0') : [];
        if (argv.length && argv[argv.length - 1] === '') argv.pop();
        const ev: ExecEvent = { ...base, type: 'exec', filename: cstr(b, 328, 256), argv };
        const n = Math.min(b.readUInt32LE(588), KRSI_ENV_WATCH);
        if (n > 0) {
          ev.env = {};
          for (let i = 0; i < n; i++) {
            const o = 1104 + i * 224;
            const name = cstr(b, o, KRSI_ENV_NAME_LEN);
            // the first of duplicates wins, as getenv(3) finds it
            if (!(name in ev.env)) ev.env[name] = cstr(b, o + 32, KRSI_ENV_VAL_LEN);
          }
        }
        return ev;
      }
      case EV.fork: {
        if (this.short(b, 'krsi_fork_event')) return undefined;
        base.exe.path = this.exePath(pid);
        const child = b.readUInt32LE(72);
        this.remember(child, base.exe.path);
        this.exited.delete(child);
        return { ...base, type: 'fork', child_pid: child };
      }
      case EV.exit: {
        if (this.short(b, 'krsi_exit_event')) return undefined;
        if (this.exited.has(pid)) return undefined;
        if (this.exited.size >= this.maxPids) this.exited.clear();
        this.exited.add(pid);
        base.exe.path = this.paths.get(pid) ?? this.exePath(pid);
        this.paths.delete(pid);
        this.comms.delete(pid);
        return { ...base, type: 'exit', code: exitCodeFromStatus(b.readInt32LE(72)) };
      }
      case EV.unlink: {
        if (this.short(b, 'krsi_unlink_event')) return undefined;
        base.exe.path = this.exePath(pid);
        const ino = u64(b, 72);
        const ret = b.readInt32LE(88);
        return {
          ...base,
          type: 'unlink',
          path: cstr(b, 96, 256),
          ...(ino ? { target: { dev: devFromKernel(b.readUInt32LE(80)), ino, nlink: b.readUInt32LE(84) } } : {}),
          ...(ret ? { ret } : {}),
        };
      }
      case EV.mprotect: {
        if (this.short(b, 'krsi_mprotect_event')) return undefined;
        base.exe.path = this.exePath(pid);
        // the hot path (storms): one literal, no spread
        return {
          ts: base.ts, type: 'mprotect', pid, ppid: base.ppid, uid: base.uid, comm: base.comm, exe: base.exe,
          tid: base.tid, cgroup: base.cgroup, start: u64(b, 72), len: u64(b, 80), prot: b.readUInt32LE(88),
        };
      }
      case EV.module_load: {
        if (this.short(b, 'krsi_module_event')) return undefined;
        base.exe.path = this.exePath(pid);
        return { ...base, type: 'module_load', name: cstr(b, 72, 56) };
      }
      case EV.denied: {
        if (this.short(b, 'krsi_denied_event')) return undefined;
        base.exe.path = this.exePath(pid);
        const op = b.readUInt32LE(72);
        const reason = b.readUInt32LE(76);
        const ino = u64(b, 88);
        const key: Record<string, unknown> =
          reason === 2 ? { pid } : reason === 3 ? { counter: 'mprotect' } : ino ? { dev: devFromKernel(b.readUInt32LE(96)), ino } : {};
        const ev: DeniedEvent = {
          ...base,
          type: 'denied',
          op: OPS[op] ?? `op${op}`,
          key,
          reason: REASONS[reason] ?? `reason${reason}`,
          rule_id: b.readUInt32LE(80),
          enforced: b.readUInt32LE(84) !== 0,
        };
        return ev;
      }
      default:
        this.bad++;
        return undefined;
    }
  }
}

const shared = new Decoder();

/** decode one ring buffer record (a shared Decoder: exe paths remembered across calls) */
export function decode(data: Buffer): KrsiEvent | undefined {
  return shared.decode(data);
}
