// Where enforcement lives: the maps and programs of bpf/enforce.bpf.c and where each is pinned, and the
// {dev, ino} the hooks see for a path. The structs, constants, key/value encoders and the denied-record
// decoder are bpf/abi.ts's (the one mirror of bpf/krsi.h), re-exported here for enforcers/ and cli/.
import { readFileSync, realpathSync, statSync, statfsSync } from 'node:fs';
import koffi from 'koffi';
import { devFromKernel, type DeniedRecord } from '../bpf/abi.ts';
import type { DeniedEvent } from '../signals/events.ts';

export {
  CONFIG_KEY, KRSI_OP, LAYOUTS, OP_NAMES, REASON_NAMES, decodeConfig, decodeDenied, decodeDenyCounts, decodeInodeKey, decodeTgidKey,
  decodeVerdict, devFromKernel, devToKernel, encodeConfig, encodeInodeKey, encodeTgidKey, encodeVerdict, type KConfig, type KVerdict,
} from '../bpf/abi.ts';

/** a denied record from the enforcer's ring (bpf/abi.ts decodeDenied) as the event it becomes */
export type DecodedDenied = DeniedEvent & DeniedRecord;

/** where enforcement lives in bpffs: maps and links pinned here outlive krsi */
export const ENFORCE_PIN_DIR = '/sys/fs/bpf/krsi/enforce';

/** the maps of bpf/enforce.bpf.c */
export const MAP_NAMES = ['deny_inode', 'deny_tgid', 'module_allow', 'module_deny', 'mprotect_count', 'config', 'deny_count', 'denied_events'] as const;
export type MapName = (typeof MAP_NAMES)[number];

/** pin path per map */
export const MAP_PINS: Record<MapName, string> = Object.fromEntries(MAP_NAMES.map((m) => [m, `${ENFORCE_PIN_DIR}/${m}`])) as Record<MapName, string>;

/** the LSM (and lifecycle) programs of bpf/enforce.bpf.c, each pinned as a link at LINK_PINS[prog] */
export const PROG_NAMES = [
  'krsi_bprm_check', 'krsi_bprm_fileless', 'krsi_file_mprotect', 'krsi_mmap_file', 'krsi_shm_shmat', 'krsi_kernel_read_file', 'krsi_kernel_load_data',
  'krsi_fork', 'krsi_exit',
  // quarantine: the kill op, and the exec deny list's other doors (executable mappings of a denied file)
  'krsi_kill_exec', 'krsi_kill_mprotect', 'krsi_kill_mmap', 'krsi_kill_open', 'krsi_kill_fork', 'krsi_kill_connect',
  'krsi_mmap_denied', 'krsi_mprotect_denied',
] as const;
export type ProgName = (typeof PROG_NAMES)[number];
export const LINK_PINS: Record<ProgName, string> = Object.fromEntries(PROG_NAMES.map((p) => [p, `${ENFORCE_PIN_DIR}/link_${p}`])) as Record<ProgName, string>;
/** the LSM hook each program attaches to (lifecycle program: a tracepoint) */
export const PROG_HOOKS: Record<ProgName, string> = {
  krsi_bprm_check: 'lsm/bprm_check_security',
  krsi_bprm_fileless: 'lsm/bprm_check_security',
  krsi_file_mprotect: 'lsm/file_mprotect',
  krsi_mmap_file: 'lsm/mmap_file',
  krsi_shm_shmat: 'lsm/shm_shmat',
  krsi_kernel_read_file: 'lsm/kernel_read_file',
  krsi_kernel_load_data: 'lsm/kernel_load_data',
  krsi_fork: 'tp_btf/sched_process_fork',
  krsi_exit: 'tp_btf/sched_process_exit',
  krsi_kill_exec: 'lsm/bprm_check_security',
  krsi_kill_mprotect: 'lsm/file_mprotect',
  krsi_kill_mmap: 'lsm/mmap_file',
  krsi_kill_open: 'lsm/file_open',
  krsi_kill_fork: 'lsm/task_alloc',
  krsi_kill_connect: 'lsm/socket_connect',
  krsi_mmap_denied: 'lsm/mmap_file',
  krsi_mprotect_denied: 'lsm/file_mprotect',
};

const OVERLAYFS_SUPER_MAGIC = 0x794c7630;
const BTRFS_SUPER_MAGIC = 0x9123683e;

/** statx(2) STATX_MNT_ID: the id of the mount `path` is on (as /proc/self/mountinfo's first field), or
 *  undefined when the kernel or libc cannot say (before 5.8) */
let statx: ((dirfd: number, path: string, flags: number, mask: number, buf: Buffer) => number) | undefined | null;
function mountId(path: string): number | undefined {
  if (statx === undefined) {
    try { statx = koffi.load('libc.so.6').func('int statx(int dirfd, const char *path, int flags, unsigned int mask, _Out_ uint8_t *buf)'); } catch { statx = null; }
  }
  if (!statx) return undefined;
  const STATX_MNT_ID = 0x1000, AT_FDCWD = -100, MASK_OFF = 0, MNT_ID_OFF = 144;
  const buf = Buffer.alloc(256);
  if (statx(AT_FDCWD, path, 0, STATX_MNT_ID, buf) !== 0 || !(buf.readUInt32LE(MASK_OFF) & STATX_MNT_ID)) return undefined;
  return Number(buf.readBigUInt64LE(MNT_ID_OFF));
}

/** the superblock's s_dev (user-space encoding) of the mount `path` is on, from /proc/self/mountinfo's
 *  major:minor (which is the superblock's, where stat's st_dev may not be) */
function superblockDev(path: string): number | undefined {
  const id = mountId(path);
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  let best: { point: string; dev: number } | undefined;
  const real = id === undefined ? realpathSync(path) : '';
  for (const line of lines) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const [major, minor] = f[2].split(':').map(Number);
    const dev = devFromKernel(((major << 20) | minor) >>> 0);
    if (id !== undefined) {
      if (Number(f[0]) === id) return dev;
      continue;
    }
    // no mount id: the longest mount point over the path
    const point = unescapeMount(f[4]);
    if (!(real === point || real.startsWith(point === '/' ? '/' : `${point}/`))) continue;
    if (!best || point.length >= best.point.length) best = { point, dev };
  }
  return best?.dev;
}

function unescapeMount(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The {dev, ino} (user-space st_dev encoding) under which the LSM hooks see the file at `path`, for
 * keys built from a path rather than from an event. Usually stat()'s; on overlayfs stat() reports the
 * underlying layer's (pseudo) device while the hooks see the overlay superblock's, so the device comes
 * from the overlay mount in /proc/self/mountinfo (the inode number is the same in both views). On btrfs
 * stat() reports a subvolume's own anonymous device: the superblock's comes from mountinfo too.
 */
export function kernelFileId(path: string): { dev: number; ino: number } {
  const st = statSync(path);
  const fs = statfsSync(path).type;
  // btrfs: stat() reports the subvolume's anonymous device, the hooks see the superblock's s_dev
  // (/proc/self/mountinfo's major:minor of the file's mount, found by statx's mount id). A key is then
  // {s_dev, ino}: inode numbers restart in each subvolume, so two subvolumes' files can share a key
  if (fs === BTRFS_SUPER_MAGIC) return { dev: superblockDev(path) ?? st.dev, ino: st.ino };
  if (fs !== OVERLAYFS_SUPER_MAGIC) return { dev: st.dev, ino: st.ino };
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
