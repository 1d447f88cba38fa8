// Self-protection while enforcing: loads bpf/protect.bpf.c (the LSM programs that refuse, to every process
// but krsi and pid 1, an fd on krsi's maps, detaching or replacing its links, removing or moving its pins,
// unmounting their bpffs, ptrace-attaching krsi; a signal that can stop krsi is reported) and tells it
// what krsi's is: every map and link id krsi holds or has pinned, every inode under /sys/fs/bpf/krsi, the
// control socket, and the executables allowed to stop krsi unreported. The links are held by this process
// only (not pinned): protection ends when krsi run exits. Refusals are `denied` events (op tamper) in
// enforce.bpf.c's ring buffer, counted per reason in tamper_count (metrics: krsi_tamper_total).
// Should match: bpf/krsi.h (struct krsi_obj_key, enum krsi_deny_reason), bpf/protect.bpf.c (maps).
import koffi from 'koffi';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureObject } from '../bpf/build.ts';
import { BpfError, BpfObject, PIN_ROOT, libbpfPath } from '../bpf/libbpf.ts';
import { lsmHookArgs } from '../bpf/features.ts';
import { KRSI_DENY, KRSI_OBJ, KRSI_TAMPER_SLOTS } from '../bpf/abi.ts';
import { childLogger } from '../lib/logger.ts';
import { LAYOUTS, MAP_PINS, encodeInodeKey, kernelFileId } from './maps.ts';

const log = childLogger('protect');

/** the LSM programs of bpf/protect.bpf.c */
export const PROTECT_PROGS = [
  'krsi_protect_map', 'krsi_protect_bpf', 'krsi_protect_unlink', 'krsi_protect_rmdir', 'krsi_protect_rename',
  'krsi_protect_umount', 'krsi_protect_ptrace', 'krsi_protect_kill',
] as const;
const ONE = Buffer.from([1]);

/** struct krsi_obj_key (layout: bpf/abi.ts LAYOUTS) */
export function encodeObjKey(kind: number, id: number): Buffer {
  const L = LAYOUTS.krsi_obj_key;
  const b = Buffer.alloc(L.size);
  b.writeUInt32LE(kind, L.fields.kind);
  b.writeUInt32LE(id >>> 0, L.fields.id);
  return b;
}

// bpf_obj_get on a pin of any kind (BpfMap.fromPinned only opens maps): the link ids come from fdinfo
let ffi: { objGet: (p: string) => number; close: (fd: number) => number } | undefined;
function objGet(path: string): number {
  if (!ffi) {
    const bpf = koffi.load(libbpfPath()!);
    const libc = koffi.load('libc.so.6');
    ffi = { objGet: bpf.func('int bpf_obj_get(const char *path)') as (p: string) => number, close: libc.func('int close(int fd)') as (fd: number) => number };
  }
  return ffi.objGet(path);
}

/** the map and link ids behind an fdinfo file */
function idsIn(fdinfo: string): { maps: number[]; links: number[] } {
  let text: string;
  try {
    text = readFileSync(fdinfo, 'utf8');
  } catch {
    return { maps: [], links: [] }; // closed meanwhile
  }
  const m = /^map_id:\s*(\d+)/m.exec(text);
  const l = /^link_id:\s*(\d+)/m.exec(text);
  return { maps: m ? [Number(m[1])] : [], links: l ? [Number(l[1])] : [] };
}

/** every path under dir, dir included (lstat: pins are files, never followed) */
function walk(dir: string, out: string[] = []): string[] {
  out.push(dir);
  let names: string[] = [];
  try {
    if (lstatSync(dir).isDirectory()) names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) walk(join(dir, n), out);
  return out;
}

/** what krsi owns right now: the ids of the BPF maps and links it holds (its fds) or pinned under PIN_ROOT,
 *  and the inodes of those pins, their directories and `extra` paths (the control socket) */
export function krsiObjects(extra: readonly string[] = []): { maps: Set<number>; links: Set<number>; inodes: Map<string, { dev: number; ino: number }>; bpffsDev?: number } {
  const maps = new Set<number>(), links = new Set<number>();
  const add = (x: { maps: number[]; links: number[] }) => { x.maps.forEach((i) => maps.add(i)); x.links.forEach((i) => links.add(i)); };
  for (const fd of readdirSync('/proc/self/fdinfo')) add(idsIn(`/proc/self/fdinfo/${fd}`));
  const inodes = new Map<string, { dev: number; ino: number }>();
  let bpffsDev: number | undefined;
  for (const p of walk(PIN_ROOT)) {
    let st;
    try { st = lstatSync(p); } catch { continue; }
    inodes.set(p, { dev: st.dev, ino: st.ino });
    bpffsDev ??= st.dev;
    if (!st.isFile()) continue;
    const fd = objGet(p);
    if (fd < 0) continue;
    try { add(idsIn(`/proc/self/fdinfo/${fd}`)); } finally { ffi!.close(fd); }
  }
  for (const p of extra) {
    try { const st = lstatSync(p); inodes.set(p, { dev: st.dev, ino: st.ino }); } catch { /* not there */ }
  }
  return { maps, links, inodes, bpffsDev };
}

/** other processes holding an fd on one of krsi's maps or links now: protection refuses new fds, it cannot
 *  take these back (opened while krsi was down, or before it protected itself) */
export function foreignHolders(maps: ReadonlySet<number>, links: ReadonlySet<number>): { pid: number; comm: string; map?: number; link?: number }[] {
  const out: { pid: number; comm: string; map?: number; link?: number }[] = [];
  for (const p of readdirSync('/proc')) {
    const pid = Number(p);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let fds: string[];
    try { fds = readdirSync(`/proc/${pid}/fdinfo`); } catch { continue; }
    for (const fd of fds) {
      const ids = idsIn(`/proc/${pid}/fdinfo/${fd}`);
      const map = ids.maps.find((i) => maps.has(i));
      const link = ids.links.find((i) => links.has(i));
      if (map === undefined && link === undefined) continue;
      let comm = '';
      try { comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { /* gone */ }
      out.push({ pid, comm, ...(map !== undefined ? { map } : {}), ...(link !== undefined ? { link } : {}) });
    }
  }
  return out;
}

export interface ProtectOptions {
  /** executables (paths, resolved to inodes now) whose processes may stop krsi without a report */
  allowStopFrom?: readonly string[];
  /** more paths whose unlink/rename is refused (the control socket and its directory) */
  paths?: readonly string[];
}

export interface ProtectHandle {
  /** attempts so far per reason (TAMPER_MAP ...) and `lost` (ring buffer full) */
  counts(): Record<string, number>;
  /** what is protected now */
  protectedObjects(): { maps: number; links: number; inodes: number };
  /** look again at krsi's fds and pins (after something was re-pinned) */
  refresh(): void;
  /** detach (protection ends) */
  close(): void;
}

/**
 * Attach the self-protection programs. Call once enforcement (its pinned config and denied_events) and
 * the signals are loaded, so that every map and link krsi holds is known. Throws BpfError when loading fails.
 */
export function startProtection(o: ProtectOptions = {}): ProtectHandle {
  const obj = BpfObject.open(ensureObject('protect'));
  let filled = { maps: 0, links: 0, inodes: 0 };
  try {
    // who is exempt: fixed at load (a config map fd opened while krsi was down cannot change it)
    const tgid = Buffer.alloc(4);
    tgid.writeUInt32LE(process.pid);
    obj.setGlobal('krsi_tgid', tgid);
    // the bpf hook's argument count on this kernel (6.16 added one), so its program reads ret where it is
    const args = lsmHookArgs('bpf');
    if (args !== undefined && args !== 3 && args !== 4) throw new BpfError(`the bpf LSM hook takes ${args} arguments on this kernel; krsi knows 3 and 4`, 22);
    const n = Buffer.alloc(4);
    n.writeUInt32LE(args ?? 3);
    obj.setGlobal('bpf_hook_args', n);
    // enforce.bpf.c's ring buffer: the refusals join its denied events
    obj.setPinPath('denied_events', MAP_PINS.denied_events);
    obj.load();
    const stop = obj.map('stop_allowed');
    for (const p of o.allowStopFrom ?? []) stop.update(encodeInodeKey(kernelFileId(p)), ONE); // throws on a missing path
    const fill = () => {
      const ids = obj.map('protected_ids');
      const inodes = obj.map('protected_inodes');
      const k = krsiObjects(o.paths); // after load: protect.bpf.c's own maps are krsi's fds too
      for (const id of k.maps) ids.update(encodeObjKey(KRSI_OBJ.MAP, id), ONE);
      for (const id of k.links) ids.update(encodeObjKey(KRSI_OBJ.LINK, id), ONE);
      for (const f of k.inodes.values()) inodes.update(encodeInodeKey(f), ONE);
      if (k.bpffsDev !== undefined) inodes.update(encodeInodeKey({ dev: k.bpffsDev, ino: 0 }), ONE); // sb_umount's key
      filled = { maps: k.maps.size, links: k.links.size, inodes: k.inodes.size };
      return k;
    };
    fill();
    for (const p of PROTECT_PROGS) obj.attach(p);
    // the protection links themselves (ids known only now)
    const k = fill();
    for (const h of foreignHolders(k.maps, k.links)) log.warn(h, 'another process holds an fd on krsi\'s map or link, opened before self-protection: it can still use it (stop that process)');
    log.info({ ...filled, allowStopFrom: o.allowStopFrom ?? [] }, 'self-protection on: krsi\'s maps, links, pins and process are refused to others');
    return {
      counts() {
        const out: Record<string, number> = {};
        const m = obj.map('tamper_count');
        for (let slot = 0; slot < KRSI_TAMPER_SLOTS; slot++) {
          const k = Buffer.alloc(4);
          k.writeUInt32LE(slot);
          const v = m.lookup(k);
          const name = slot === 0 ? 'lost' : Object.entries(KRSI_DENY).find(([, n]) => n === slot)?.[0];
          if (v && name && (slot === 0 || name.startsWith('TAMPER_'))) out[name] = Number(v.readBigUInt64LE(0));
        }
        return out;
      },
      protectedObjects: () => filled,
      refresh: () => void fill(),
      close: () => obj.close(),
    };
  } catch (e) {
    obj.close();
    throw e;
  }
}

