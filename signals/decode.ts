// The decoder of krsi's ring buffer records (bpf/krsi.h) into JSON Lines events (signals/events.ts).
// Layouts, kinds and sizes come from bpf/abi.ts (the one mirror of the header); a `denied` record is
// decoded by abi.ts decodeDenied, the enforcer's decoder too (signals/EVENTS.md, `denied`).
// Kernel inode devices (MAJOR << 20 | MINOR) become user-space st_dev, as `stat -c %d` prints them.
import { readlinkSync } from 'node:fs';
import { EV, KRSI_MEM, KRSI_FILE_NLINK, KRSI_FILE_RET, KRSI_RUN_PIDS, KRSI_ARGV_LEN, KRSI_COMM_LEN, KRSI_ENV_AREA, KRSI_EXEC, KRSI_FS_NAME_LEN, KRSI_MODNAME_LEN, KRSI_PATH_LEN, LAYOUTS, decodeDenied, devFromKernel } from '../bpf/abi.ts';
import type { ExecEvent, ExecExe, FileEvent, FileRoute, KrsiEvent, LdsoOptions, MmapEvent, ModuleLoadEvent, MprotectEvent, Runner } from './events.ts';

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
/** an exec record is variable-size: its fixed part ends where the string area starts */
const EXEC_SIZE = L.krsi_exec_event.fields.area;
const FORK_SIZE = L.krsi_fork_event.size;
const EXIT_SIZE = L.krsi_exit_event.size;
const UNLINK_SIZE = L.krsi_unlink_event.size;
const MEM_SIZE = L.krsi_mem_event.size;
const MODULE_SIZE = L.krsi_module_event.size;
const DENIED_SIZE = L.krsi_denied_event.size;
const { rename: K_RENAME, truncate: K_TRUNCATE } = EV;
const { exec: K_EXEC, fork: K_FORK, exit: K_EXIT, unlink: K_UNLINK, mprotect: K_MPROTECT, mmap: K_MMAP, module_load: K_MODULE_LOAD, module_unload: K_MODULE_UNLOAD, denied: K_DENIED } = EV;
const { ts: H_TS, kind: H_KIND, pid: H_PID, tid: H_TID, ppid: H_PPID, uid: H_UID, cgroup: H_CGROUP, comm: H_COMM } = L.krsi_hdr.fields;
const H_EXE_INO = L.krsi_hdr.fields.exe + L.krsi_file_id.fields.ino;
const H_EXE_DEV = L.krsi_hdr.fields.exe + L.krsi_file_id.fields.dev;
const { start: M_START, len: M_LEN, prot: M_PROT, reqprot: M_REQPROT, flags: M_FLAGS, mem: M_MEM, old_prot: M_OLD, ret: M_RET } = L.krsi_mem_event.fields;
const M_FILE_INO = L.krsi_mem_event.fields.file + L.krsi_file_id.fields.ino;
const M_FILE_DEV = L.krsi_mem_event.fields.file + L.krsi_file_id.fields.dev;
const { WX, EXEC_ADDED, FLIP, UNKNOWN, ANON, SHMEM, SHMAT } = KRSI_MEM;
const FORK_CHILD = L.krsi_fork_event.fields.child_pid;
const EXIT_CODE = L.krsi_exit_event.fields.code;
const MODULE_NAME = L.krsi_module_event.fields.name;
const MODULE_FILE = L.krsi_module_event.fields.file;
const FID = L.krsi_file_id.fields;
const MODULE_PATH = L.krsi_module_event.fields.path;
const EXEC = L.krsi_exec_event.fields;
const H_EXE_NLINK = L.krsi_hdr.fields.exe + L.krsi_file_id.fields.nlink;
const { ino: FID_INO, dev: FID_DEV, nlink: FID_NLINK } = L.krsi_file_id.fields;
const UNLINK = L.krsi_unlink_event.fields;
const UNLINK_INO = UNLINK.target + L.krsi_file_id.fields.ino;
const UNLINK_DEV = UNLINK.target + L.krsi_file_id.fields.dev;
const UNLINK_NLINK = UNLINK.target + L.krsi_file_id.fields.nlink;
const fromKernel = devFromKernel;
/** enum krsi_file_route, enum krsi_runner (bpf/abi.ts KRSI_ROUTE, KRSI_RUNNER) as the event names them */
const ROUTES: readonly (FileRoute | undefined)[] = [undefined, 'syscall', 'lsm', 'io_uring', 'kernel'];
const RUNNERS: readonly (Runner | undefined)[] = [undefined, 'self', 'parent', 'other'];

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
      kind === K_MPROTECT || kind === K_MMAP ? MEM_SIZE : kind === K_EXEC ? EXEC_SIZE : kind === K_FORK ? FORK_SIZE : kind === K_EXIT ? EXIT_SIZE
        : kind === K_UNLINK || kind === K_RENAME || kind === K_TRUNCATE ? UNLINK_SIZE : kind === K_MODULE_LOAD || kind === K_MODULE_UNLOAD ? MODULE_SIZE : kind === K_DENIED ? DENIED_SIZE : -1;
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
        const mem = v.getUint32(o + M_MEM, true);
        // the hot path (storms): one literal
        const ev: MprotectEvent = {
          ts, type: 'mprotect', pid, ppid, uid, comm, exe, tid, cgroup,
          start: v.getUint32(o + M_START, true) + v.getUint32(o + M_START + 4, true) * 4294967296,
          len: v.getUint32(o + M_LEN, true) + v.getUint32(o + M_LEN + 4, true) * 4294967296,
          prot: v.getUint32(o + M_PROT, true),
          reqprot: v.getUint32(o + M_REQPROT, true),
          wx: (mem & WX) !== 0,
        };
        if (mem & EXEC_ADDED) ev.exec_added = true;
        if (mem & FLIP) ev.flip = true;
        if (mem & UNKNOWN) ev.regions_unknown = true;
        else ev.old_prot = v.getUint32(o + M_OLD, true);
        return ev;
      }
      case K_MMAP: {
        exe.path = this.exePath(pid);
        const mem = v.getUint32(o + M_MEM, true);
        const ev: MmapEvent = {
          ts, type: 'mmap', pid, ppid, uid, comm, exe, tid, cgroup,
          start: v.getUint32(o + M_START, true) + v.getUint32(o + M_START + 4, true) * 4294967296,
          len: v.getUint32(o + M_LEN, true) + v.getUint32(o + M_LEN + 4, true) * 4294967296,
          prot: v.getUint32(o + M_PROT, true),
          reqprot: v.getUint32(o + M_REQPROT, true),
          flags: v.getUint32(o + M_FLAGS, true),
          wx: (mem & WX) !== 0,
        };
        if (mem & EXEC_ADDED) ev.exec_added = true;
        if (mem & UNKNOWN) ev.regions_unknown = true;
        if (mem & ANON) ev.anon = true;
        if (mem & SHMEM) ev.shmem = true;
        if (mem & SHMAT) ev.shmat = true;
        const ino = v.getUint32(o + M_FILE_INO, true) + v.getUint32(o + M_FILE_INO + 4, true) * 4294967296;
        if (ino) ev.file = { dev: fromKernel(v.getUint32(o + M_FILE_DEV, true)), ino };
        const ret = v.getInt32(o + M_RET, true);
        if (ret) ev.ret = ret;
        return ev;
      }
      case K_EXEC: {
        const flags = v.getUint32(o + EXEC.flags, true);
        const envLen = v.getUint32(o + EXEC.env_len, true);
        const ldsoLen = v.getUint32(o + EXEC.ldso_len, true);
        // the string area's content must be inside the record
        if (envLen > KRSI_ENV_AREA || ldsoLen > KRSI_ENV_AREA - envLen || len < EXEC.area + envLen + ldsoLen) {
          this.bad++;
          return undefined;
        }
        const x = exe as ExecExe;
        const walk = cstr(b, o + EXEC.exe_path, KRSI_PATH_LEN);
        // a pseudo file's name is the whole path, slashes included (memfd_create("a/b") is "/memfd:a/b")
        x.path = flags & KRSI_EXEC.PSEUDO ? '/' + walk : pathFromWalk(walk);
        // as the kernel names it (d_path, /proc/PID/exe): an unlinked file or a memfd says so
        if (flags & KRSI_EXEC.DELETED) x.path += ' (deleted)';
        execFacts(x, v.getUint32(o + H_EXE_NLINK, true), v.getUint32(o + EXEC.i_mode, true), flags, cstr(b, o + EXEC.fs_type, KRSI_FS_NAME_LEN));
        this.remember(pid, x.path);
        this.exited.delete(pid);
        const argvLen = Math.min(v.getUint32(o + EXEC.argv_len, true), KRSI_ARGV_LEN);
        const argv = argvLen ? b.toString('utf8', o + EXEC.argv, o + EXEC.argv + argvLen).split('\0') : [];
        if (argv.length && argv[argv.length - 1] === '') argv.pop();
        const ev: ExecEvent = { ts, pid, ppid, uid, comm, exe: x, tid, cgroup, type: 'exec', filename: cstr(b, o + EXEC.filename, KRSI_PATH_LEN), argv };
        if (flags & KRSI_EXEC.ARGV_TRUNC) ev.argv_truncated = true;
        if (flags & KRSI_EXEC.SCRIPT_FD) {
          const sc = o + EXEC.script;
          ev.script = {
            dev: fromKernel(v.getUint32(sc + FID_DEV, true)), ino: v.getUint32(sc + FID_INO, true) + v.getUint32(sc + FID_INO + 4, true) * 4294967296,
            nlink: v.getUint32(sc + FID_NLINK, true), memfd: (flags & KRSI_EXEC.SCRIPT_MEMFD) !== 0,
          };
        }
        const area = o + EXEC.area;
        if (envLen) envFrom(ev, strings(b, area, envLen));
        if (flags & (KRSI_EXEC.ENV_STRINGS | KRSI_EXEC.ENV_FULL | KRSI_EXEC.ENV_CUT)) ev.env_truncated = true;
        if (flags & KRSI_EXEC.NO_INTERP) {
          const l = ldsoFrom(strings(b, area + envLen, ldsoLen), x.path);
          if (l) {
            if (flags & KRSI_EXEC.LDSO_TRUNC) l.truncated = true;
            ev.ldso = l;
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
      case K_UNLINK:
      case K_RENAME:
      case K_TRUNCATE: {
        // one record for the three (bpf/krsi.h struct krsi_unlink_event); signals/EVENTS.md documents the fields
        exe.path = this.exePath(pid);
        const ino = v.getUint32(o + UNLINK_INO, true) + v.getUint32(o + UNLINK_INO + 4, true) * 4294967296;
        const ret = v.getInt32(o + UNLINK.ret, true);
        const flags = v.getUint32(o + UNLINK.flags, true);
        const type = kind === K_UNLINK ? 'unlink' : kind === K_RENAME ? 'rename' : 'truncate';
        const ev = { ts, pid, ppid, uid, comm, exe, tid, cgroup, type, path: cstr(b, o + UNLINK.path, KRSI_PATH_LEN) } as FileEvent;
        if (type === 'rename') ev.from = cstr(b, o + UNLINK.path2, KRSI_PATH_LEN);
        if (ino) {
          ev.target = { dev: fromKernel(v.getUint32(o + UNLINK_DEV, true)), ino };
          // a link count the signal did not see stays absent (never 0 by default)
          if (flags & KRSI_FILE_NLINK) ev.target.nlink = v.getUint32(o + UNLINK_NLINK, true);
        }
        if (ret) ev.ret = ret;
        if (!(flags & KRSI_FILE_RET)) ev.unconfirmed = true;
        const route = ROUTES[v.getUint32(o + UNLINK.route, true)];
        if (route) ev.route = route;
        const count = v.getUint32(o + UNLINK.running, true);
        if (count) {
          const pids: number[] = [];
          for (let i = 0; i < KRSI_RUN_PIDS; i++) {
            const p = v.getUint32(o + UNLINK.pids + 4 * i, true);
            if (p) pids.push(p);
          }
          ev.running = { count, pids, by: RUNNERS[v.getUint32(o + UNLINK.runner, true)] ?? 'other' };
        }
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

/** the NUL-terminated strings of b[off, off + len) */
function strings(b: Buffer, off: number, len: number): string[] {
  if (len === 0) return [];
  const out = b.toString('utf8', off, off + len).split('\0');
  if (out[out.length - 1] === '') out.pop();
  return out;
}

const S_ISUID = 0o4000, S_ISGID = 0o2000, S_IXGRP = 0o010;

/** the exec record's facts about the executed file, onto its exe */
function execFacts(x: ExecExe, nlink: number, mode: number, flags: number, fs: string): void {
  x.nlink = nlink;
  x.fs = fs;
  x.memfd = (flags & KRSI_EXEC.MEMFD) !== 0;
  x.deleted = (flags & KRSI_EXEC.DELETED) !== 0;
  x.setuid = (mode & S_ISUID) !== 0;
  // without group execute, S_ISGID means mandatory locking, not setgid (as the kernel's exec reads it)
  x.setgid = (mode & (S_ISGID | S_IXGRP)) === (S_ISGID | S_IXGRP);
}

/** the variables whose LAST occurrence counts: the dynamic loader's (ld.so overwrites as it walks the
 *  environment) and glibc's tunables; every other reader (getenv(3)) takes the first */
export function lastWins(name: string): boolean {
  return name.startsWith('LD_') || name === 'GLIBC_TUNABLES';
}

/** env (the value each variable's reader takes), env_dup (names set more than once) and env_all (every
 *  value of those, in order) from the recorded "NAME=value" strings, in environment order */
export function envFrom(ev: ExecEvent, recorded: readonly string[]): void {
  const env: Record<string, string> = {};
  let all: Record<string, string[]> | undefined;
  for (const s of recorded) {
    const eq = s.indexOf('=');
    if (eq <= 0) continue;
    const name = s.slice(0, eq);
    const value = s.slice(eq + 1);
    if (!Object.hasOwn(env, name)) {
      env[name] = value;
      continue;
    }
    all ??= {};
    (all[name] ??= [env[name]]).push(value);
    if (lastWins(name)) env[name] = value;
  }
  ev.env = env;
  if (all) {
    ev.env_dup = Object.keys(all);
    ev.env_all = all;
  }
}

/** ld.so's options that take a value (glibc elf/rtld.c), and the field each lands in */
const LDSO_VALUE: Record<string, keyof LdsoOptions | ''> = {
  '--preload': 'preload', '--audit': 'audit', '--library-path': 'library_path', '--inhibit-rpath': 'inhibit_rpath',
  '--argv0': 'argv0', '--glibc-hwcaps-prefix': '', '--glibc-hwcaps-mask': '',
};
/** the dynamic loader's own file names: ld-linux-x86-64.so.2, ld-2.31.so, ld-musl-x86_64.so.1, ld.so */
const LOADER_NAME = /\/ld(-[^/]*\.so[^/]*|\.so[^/]*)$/;

/**
 * ld.so run as a program ("ld.so [options] program [args]"): its options from the block the kernel copied
 * (argv[1..] of a program without interpreter, up to the program). Undefined when it sets nothing and
 * the file is not named like the loader (a static program). --preload and --library-path: the last wins;
 * --audit: every one, ':'-joined (as rtld adds them up).
 */
export function ldsoFrom(block: readonly string[], exePath: string): LdsoOptions | undefined {
  const l: LdsoOptions = {};
  let set = false;
  for (let i = 0; i < block.length; i++) {
    const a = block[i];
    if (!a.startsWith('--')) {
      l.program = a;
      break;
    }
    const eq = a.indexOf('=');
    const opt = eq > 0 ? a.slice(0, eq) : a;
    if (!Object.hasOwn(LDSO_VALUE, opt)) continue;
    const value = eq > 0 ? a.slice(eq + 1) : block[++i];
    if (value === undefined) break;
    const field = LDSO_VALUE[opt];
    if (!field || field === 'program' || field === 'truncated') continue;
    set = true;
    l[field] = field === 'audit' && l.audit !== undefined ? `${l.audit}:${value}` : value;
  }
  if (!set && !LOADER_NAME.test(exePath.replace(/ \(deleted\)$/, ''))) return undefined;
  return l;
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
