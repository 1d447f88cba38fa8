// The decoder of krsi's ring buffer records (bpf/krsi.h) into JSON Lines events (signals/events.ts).
// Layouts, kinds and sizes come from bpf/abi.ts (the one mirror of the header); a `denied` record is
// decoded by abi.ts decodeDenied, the enforcer's decoder too (signals/EVENTS.md, `denied`).
// Kernel inode devices (MAJOR << 20 | MINOR) become user-space st_dev, as `stat -c %d` prints them.
import { readlinkSync } from 'node:fs';
import { EV, KRSI_ARGV_LEN, KRSI_COMM_LEN, KRSI_ENV_NAME_LEN, KRSI_ENV_VAL_LEN, KRSI_ENV_WATCH, KRSI_MODNAME_LEN, KRSI_PATH_LEN, LAYOUTS, decodeDenied, devFromKernel } from '../bpf/abi.ts';
import type { ExecEvent, KrsiEvent, ModuleLoadEvent, UnlinkEvent } from './events.ts';

/** a wait status (task->exit_code) as a shell would report it: the exit code, or 128 + signal */
export function exitCodeFromStatus(status: number): number {
  const sig = status & 0x7f;
  return sig ? 128 + sig : (status >> 8) & 0xff;
}

// Sizes, offsets and kinds from bpf/abi.ts, copied once into local numbers: the hot path reads them for
// every record, and V8 reads a local binding faster than an imported one or an object's property (measured:
// about 1.5x on a storm of mprotect records).
const L = LAYOUTS;
const HDR_SIZE = L.krsi_hdr.size;
const EXEC_SIZE = L.krsi_exec_event.size;
const FORK_SIZE = L.krsi_fork_event.size;
const EXIT_SIZE = L.krsi_exit_event.size;
const UNLINK_SIZE = L.krsi_unlink_event.size;
const MPROTECT_SIZE = L.krsi_mprotect_event.size;
const MODULE_SIZE = L.krsi_module_event.size;
const DENIED_SIZE = L.krsi_denied_event.size;
const { exec: K_EXEC, fork: K_FORK, exit: K_EXIT, unlink: K_UNLINK, mprotect: K_MPROTECT, module_load: K_MODULE_LOAD, module_unload: K_MODULE_UNLOAD, denied: K_DENIED } = EV;
const { ts: H_TS, kind: H_KIND, pid: H_PID, tid: H_TID, ppid: H_PPID, uid: H_UID, cgroup: H_CGROUP, comm: H_COMM } = L.krsi_hdr.fields;
const H_EXE_INO = L.krsi_hdr.fields.exe + L.krsi_file_id.fields.ino;
const H_EXE_DEV = L.krsi_hdr.fields.exe + L.krsi_file_id.fields.dev;
const { start: M_START, len: M_LEN, prot: M_PROT } = L.krsi_mprotect_event.fields;
const FORK_CHILD = L.krsi_fork_event.fields.child_pid;
const EXIT_CODE = L.krsi_exit_event.fields.code;
const MODULE_NAME = L.krsi_module_event.fields.name;
const MODULE_FILE = L.krsi_module_event.fields.file;
const FID = L.krsi_file_id.fields;
const MODULE_PATH = L.krsi_module_event.fields.path;
const EXEC = L.krsi_exec_event.fields;
const ENV = L.krsi_env_var;
const UNLINK = L.krsi_unlink_event.fields;
const UNLINK_INO = UNLINK.target + L.krsi_file_id.fields.ino;
const UNLINK_DEV = UNLINK.target + L.krsi_file_id.fields.dev;
const UNLINK_NLINK = UNLINK.target + L.krsi_file_id.fields.nlink;
const fromKernel = devFromKernel;

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
  /** the last comm of each pid, by its 16 raw bytes (KRSI_COMM_LEN): decoding a string per event costs more than comparing */
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
    const s = cstr(b, o, KRSI_COMM_LEN);
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
    const kind = v.getUint32(o + H_KIND, true);
    const min =
      kind === K_MPROTECT ? MPROTECT_SIZE : kind === K_EXEC ? EXEC_SIZE : kind === K_FORK ? FORK_SIZE : kind === K_EXIT ? EXIT_SIZE
        : kind === K_UNLINK ? UNLINK_SIZE : kind === K_MODULE_LOAD || kind === K_MODULE_UNLOAD ? MODULE_SIZE : kind === K_DENIED ? DENIED_SIZE : -1;
    // too short, or an unknown kind
    if (len < min || min < 0) {
      this.bad++;
      return undefined;
    }
    const pid = v.getUint32(o + H_PID, true);
    // the exit of a group already reported (checked before anything is decoded)
    if (kind === K_EXIT && this.exited.has(pid)) return undefined;
    if (kind === K_DENIED) {
      // the one denied decoder (bpf/abi.ts), as the enforcer's ring reads it, plus the remembered exe path
      const ev = decodeDenied(b, undefined, o, len)!;
      ev.exe.path = this.exePath(pid);
      return ev;
    }
    // the header, in the key order events always had ({...base, type, ...})
    const ts = v.getUint32(o + H_TS, true) + v.getUint32(o + H_TS + 4, true) * 4294967296;
    const ppid = v.getUint32(o + H_PPID, true);
    const uid = v.getUint32(o + H_UID, true);
    const comm = this.comm(b, v, o + H_COMM, pid);
    const exe = { dev: fromKernel(v.getUint32(o + H_EXE_DEV, true)), ino: v.getUint32(o + H_EXE_INO, true) + v.getUint32(o + H_EXE_INO + 4, true) * 4294967296, path: '' };
    const tid = v.getUint32(o + H_TID, true);
    const cgroup = v.getUint32(o + H_CGROUP, true) + v.getUint32(o + H_CGROUP + 4, true) * 4294967296;
    switch (kind) {
      case K_MPROTECT: {
        exe.path = this.exePath(pid);
        // the hot path (storms): one literal
        return {
          ts, type: 'mprotect', pid, ppid, uid, comm, exe, tid, cgroup,
          start: v.getUint32(o + M_START, true) + v.getUint32(o + M_START + 4, true) * 4294967296,
          len: v.getUint32(o + M_LEN, true) + v.getUint32(o + M_LEN + 4, true) * 4294967296,
          prot: v.getUint32(o + M_PROT, true),
        };
      }
      case K_EXEC: {
        exe.path = pathFromWalk(cstr(b, o + EXEC.exe_path, KRSI_PATH_LEN));
        this.remember(pid, exe.path);
        this.exited.delete(pid);
        const argvLen = Math.min(v.getUint32(o + EXEC.argv_len, true), KRSI_ARGV_LEN);
        const argv = argvLen ? b.toString('utf8', o + EXEC.argv, o + EXEC.argv + argvLen).split('\0') : [];
        if (argv.length && argv[argv.length - 1] === '') argv.pop();
        const ev: ExecEvent = { ts, pid, ppid, uid, comm, exe, tid, cgroup, type: 'exec', filename: cstr(b, o + EXEC.filename, KRSI_PATH_LEN), argv };
        const n = Math.min(v.getUint32(o + EXEC.env_count, true), KRSI_ENV_WATCH);
        if (n > 0) {
          ev.env = {};
          for (let i = 0; i < n; i++) {
            const e = o + EXEC.env + i * ENV.size;
            const name = cstr(b, e + ENV.fields.name, KRSI_ENV_NAME_LEN);
            // the first of duplicates wins, as getenv(3) finds it
            if (!(name in ev.env)) ev.env[name] = cstr(b, e + ENV.fields.value, KRSI_ENV_VAL_LEN);
          }
        }
        return ev;
      }
      case K_FORK: {
        exe.path = this.exePath(pid);
        const child = v.getUint32(o + FORK_CHILD, true);
        this.remember(child, exe.path);
        this.exited.delete(child);
        return { ts, pid, ppid, uid, comm, exe, tid, cgroup, type: 'fork', child_pid: child };
      }
      case K_EXIT: {
        if (this.exited.size >= this.maxPids) this.exited.clear();
        this.exited.add(pid);
        // not remembered: the pid is forgotten right away (remembering could push another pid out)
        exe.path = this.paths.get(pid) ?? this.procExePath(pid);
        this.paths.delete(pid);
        this.comms.delete(pid);
        return { ts, pid, ppid, uid, comm, exe, tid, cgroup, type: 'exit', code: exitCodeFromStatus(v.getInt32(o + EXIT_CODE, true)) };
      }
      case K_UNLINK: {
        exe.path = this.exePath(pid);
        const ino = v.getUint32(o + UNLINK_INO, true) + v.getUint32(o + UNLINK_INO + 4, true) * 4294967296;
        const ret = v.getInt32(o + UNLINK.ret, true);
        const ev: UnlinkEvent = { ts, pid, ppid, uid, comm, exe, tid, cgroup, type: 'unlink', path: cstr(b, o + UNLINK.path, KRSI_PATH_LEN) };
        if (ino) ev.target = { dev: fromKernel(v.getUint32(o + UNLINK_DEV, true)), ino, nlink: v.getUint32(o + UNLINK_NLINK, true) };
        if (ret) ev.ret = ret;
        return ev;
      }
      case K_MODULE_LOAD: {
        exe.path = this.exePath(pid);
        const ev: ModuleLoadEvent = { ts, pid, ppid, uid, comm, exe, tid, cgroup, type: 'module_load', name: cstr(b, o + MODULE_NAME, KRSI_MODNAME_LEN) };
        // finit_module: the file the module was read from (init_module from memory has none)
        const ino = v.getUint32(o + MODULE_FILE + FID.ino, true) + v.getUint32(o + MODULE_FILE + FID.ino + 4, true) * 4294967296;
        if (ino) {
          ev.file = { dev: fromKernel(v.getUint32(o + MODULE_FILE + FID.dev, true)), ino };
          ev.path = pathFromWalk(cstr(b, o + MODULE_PATH, KRSI_PATH_LEN));
        }
        return ev;
      }
      default: {
        // K_MODULE_UNLOAD
        exe.path = this.exePath(pid);
        return { ts, pid, ppid, uid, comm, exe, tid, cgroup, type: 'module_unload', name: cstr(b, o + MODULE_NAME, KRSI_MODNAME_LEN) };
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
