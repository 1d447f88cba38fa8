// The one decoder of krsi's ring buffer records (bpf/krsi.h) into JSON Lines events (signals/events.ts).
// LAYOUTS mirrors the C structs; test/bpf/layout.test.ts compares it with the BTF of the compiled objects.
// Kernel inode devices (MAJOR << 20 | MINOR) become user-space st_dev, as `stat -c %d` prints them.
import { readlinkSync } from 'node:fs';
import type { DeniedEvent, ExecEvent, KrsiEvent, UnlinkEvent } from './events.ts';

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
export const EV = { exec: 1, fork: 2, exit: 3, unlink: 4, mprotect: 5, module_load: 6, denied: 7, module_unload: 8 } as const;
/** sizes of bpf/krsi.h arrays */
export const KRSI_ENV_WATCH = 8;
export const KRSI_ENV_NAME_LEN = 32;
export const KRSI_ENV_VAL_LEN = 192;
export const KRSI_ARGV_LEN = 512;
export const KRSI_EV_MAX = 9;

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

const OPS: Record<number, string> = { 1: 'exec', 2: 'mprotect_exec', 4: 'module_load', 7: 'quarantine', 8: 'tamper' };
const REASONS: Record<number, string> = {
  1: 'inode', 2: 'tgid', 3: 'mprotect_limit', 4: 'module_allow', 5: 'module_deny',
  6: 'tamper_map', 7: 'tamper_link', 8: 'tamper_pin', 9: 'tamper_ptrace', 10: 'tamper_signal', 11: 'tamper_mount', // bpf/protect.bpf.c
};

// record sizes, looked up once (LAYOUTS is the one source)
const HDR_SIZE = LAYOUTS.krsi_hdr.size;
const EXEC_SIZE = LAYOUTS.krsi_exec_event.size;
const FORK_SIZE = LAYOUTS.krsi_fork_event.size;
const EXIT_SIZE = LAYOUTS.krsi_exit_event.size;
const UNLINK_SIZE = LAYOUTS.krsi_unlink_event.size;
const MPROTECT_SIZE = LAYOUTS.krsi_mprotect_event.size;
const MODULE_SIZE = LAYOUTS.krsi_module_event.size;
const DENIED_SIZE = LAYOUTS.krsi_denied_event.size;

/** a NUL-terminated string of at most len bytes at b[off] (scans only those bytes) */
function cstr(b: Buffer, off: number, len: number): string {
  const lim = off + len;
  let end = off;
  while (end < lim && b[end] !== 0) end++;
  return end === off ? '' : b.toString('utf8', off, end);
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

  /** a DataView over the Buffer last decoded from (a ring's data area: made once per ring) */
  private dv: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  private dvOf: Buffer | undefined;

  private view(b: Buffer): DataView {
    if (b !== this.dvOf) {
      this.dvOf = b;
      this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    }
    return this.dv;
  }

  private comm(b: Buffer, v: DataView, o: number, pid: number): string {
    const w0 = v.getUint32(o, true), w1 = v.getUint32(o + 4, true), w2 = v.getUint32(o + 8, true), w3 = v.getUint32(o + 12, true);
    const c = this.comms.get(pid);
    if (c && c.w[0] === w0 && c.w[1] === w1 && c.w[2] === w2 && c.w[3] === w3) return c.s;
    const s = cstr(b, o, 16);
    if (!c && this.comms.size >= this.maxPids) this.comms.delete(this.comms.keys().next().value as number);
    if (c) {
      c.w[0] = w0, c.w[1] = w1, c.w[2] = w2, c.w[3] = w3;
      c.s = s;
    } else this.comms.set(pid, { w: [w0, w1, w2, w3], s });
    return s;
  }

  /** the remembered exe path of pid, else /proc's (then remembered) */
  private exePath(pid: number): string {
    const p = this.paths.get(pid);
    if (p !== undefined) return p;
    const path = this.procExePath(pid);
    this.remember(pid, path);
    return path;
  }

  private procExePath(pid: number): string {
    if (!this.procExe) return '';
    try {
      return readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '');
    } catch {
      return '';
    }
  }

  /** decode a record that is a whole Buffer */
  decode(b: Buffer): KrsiEvent | undefined {
    return this.decodeAt(b, 0, b.length);
  }

  /**
   * decode the record at b[o, o + len) in place (a ring buffer's data area: RingBuffer { view: true }):
   * fields are read through one DataView per Buffer, nothing is allocated but the event and its strings
   */
  decodeAt(b: Buffer, o: number, len: number): KrsiEvent | undefined {
    if (len < HDR_SIZE) {
      this.bad++;
      return undefined;
    }
    const v = this.view(b);
    const kind = v.getUint32(o + 8, true);
    const min =
      kind === EV.mprotect ? MPROTECT_SIZE : kind === EV.exec ? EXEC_SIZE : kind === EV.fork ? FORK_SIZE : kind === EV.exit ? EXIT_SIZE
        : kind === EV.unlink ? UNLINK_SIZE : kind === EV.module_load || kind === EV.module_unload ? MODULE_SIZE : kind === EV.denied ? DENIED_SIZE : -1;
    // too short, or an unknown kind
    if (len < min || min < 0) {
      this.bad++;
      return undefined;
    }
    const pid = v.getUint32(o + 12, true);
    // the exit of a group already reported (checked before anything is decoded)
    if (kind === EV.exit && this.exited.has(pid)) return undefined;
    // the header, in the key order events always had ({...base, type, ...})
    const ts = v.getUint32(o, true) + v.getUint32(o + 4, true) * 4294967296;
    const ppid = v.getUint32(o + 20, true);
    const uid = v.getUint32(o + 24, true);
    const comm = this.comm(b, v, o + 56, pid);
    const exe = { dev: devFromKernel(v.getUint32(o + 48, true)), ino: v.getUint32(o + 40, true) + v.getUint32(o + 44, true) * 4294967296, path: '' };
    const tid = v.getUint32(o + 16, true);
    const cgroup = v.getUint32(o + 32, true) + v.getUint32(o + 36, true) * 4294967296;
    switch (kind) {
      case EV.mprotect: {
        exe.path = this.exePath(pid);
        // the hot path (storms): one literal
        return {
          ts, type: 'mprotect', pid, ppid, uid, comm, exe, tid, cgroup,
          start: v.getUint32(o + 72, true) + v.getUint32(o + 76, true) * 4294967296,
          len: v.getUint32(o + 80, true) + v.getUint32(o + 84, true) * 4294967296,
          prot: v.getUint32(o + 88, true),
        };
      }
      case EV.exec: {
        exe.path = pathFromWalk(cstr(b, o + 72, 256));
        this.remember(pid, exe.path);
        this.exited.delete(pid);
        const argvLen = Math.min(v.getUint32(o + 584, true), KRSI_ARGV_LEN);
        const argv = argvLen ? b.toString('utf8', o + 592, o + 592 + argvLen).split('\0') : [];
        if (argv.length && argv[argv.length - 1] === '') argv.pop();
        const ev: ExecEvent = { ts, pid, ppid, uid, comm, exe, tid, cgroup, type: 'exec', filename: cstr(b, o + 328, 256), argv };
        const n = Math.min(v.getUint32(o + 588, true), KRSI_ENV_WATCH);
        if (n > 0) {
          ev.env = {};
          for (let i = 0; i < n; i++) {
            const e = o + 1104 + i * 224;
            const name = cstr(b, e, KRSI_ENV_NAME_LEN);
            // the first of duplicates wins, as getenv(3) finds it
            if (!(name in ev.env)) ev.env[name] = cstr(b, e + 32, KRSI_ENV_VAL_LEN);
          }
        }
        return ev;
      }
      case EV.fork: {
        exe.path = this.exePath(pid);
        const child = v.getUint32(o + 72, true);
        this.remember(child, exe.path);
        this.exited.delete(child);
        return { ts, pid, ppid, uid, comm, exe, tid, cgroup, type: 'fork', child_pid: child };
      }
      case EV.exit: {
        if (this.exited.size >= this.maxPids) this.exited.clear();
        this.exited.add(pid);
        // not remembered: the pid is forgotten right away (remembering could push another pid out)
        exe.path = this.paths.get(pid) ?? this.procExePath(pid);
        this.paths.delete(pid);
        this.comms.delete(pid);
        return { ts, pid, ppid, uid, comm, exe, tid, cgroup, type: 'exit', code: exitCodeFromStatus(v.getInt32(o + 72, true)) };
      }
      case EV.unlink: {
        exe.path = this.exePath(pid);
        const ino = v.getUint32(o + 72, true) + v.getUint32(o + 76, true) * 4294967296;
        const ret = v.getInt32(o + 88, true);
        const ev: UnlinkEvent = { ts, pid, ppid, uid, comm, exe, tid, cgroup, type: 'unlink', path: cstr(b, o + 96, 256) };
        if (ino) ev.target = { dev: devFromKernel(v.getUint32(o + 80, true)), ino, nlink: v.getUint32(o + 84, true) };
        if (ret) ev.ret = ret;
        return ev;
      }
      case EV.module_load: {
        exe.path = this.exePath(pid);
        return { ts, pid, ppid, uid, comm, exe, tid, cgroup, type: 'module_load', name: cstr(b, o + 72, 56) };
      }
      case EV.module_unload: {
        exe.path = this.exePath(pid);
        return { ts, pid, ppid, uid, comm, exe, tid, cgroup, type: 'module_unload', name: cstr(b, o + 72, 56) };
      }
      default: {
        // EV.denied
        exe.path = this.exePath(pid);
        const op = v.getUint32(o + 72, true);
        const reason = v.getUint32(o + 76, true);
        const ino = v.getUint32(o + 88, true) + v.getUint32(o + 92, true) * 4294967296;
        const key: Record<string, unknown> =
          reason === 2 ? { pid } : reason === 3 ? { counter: 'mprotect' } : ino ? { dev: devFromKernel(v.getUint32(o + 96, true)), ino } : {};
        const ev: DeniedEvent = {
          ts, pid, ppid, uid, comm, exe, tid, cgroup,
          type: 'denied',
          op: OPS[op] ?? `op${op}`,
          key,
          reason: REASONS[reason] ?? `reason${reason}`,
          rule_id: v.getUint32(o + 80, true),
          enforced: v.getUint32(o + 84, true) !== 0,
        };
        return ev;
      }
    }
  }
}

const shared = new Decoder();

/** decode one ring buffer record (a shared Decoder: exe paths remembered across calls) */
export function decode(data: Buffer): KrsiEvent | undefined {
  return shared.decode(data);
}

/** decode the record at data[offset, offset + length) in place (the shared Decoder) */
export function decodeAt(data: Buffer, offset: number, length: number): KrsiEvent | undefined {
  return shared.decodeAt(data, offset, length);
}
