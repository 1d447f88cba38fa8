// Where enforcement lives: the maps and programs of bpf/enforce.bpf.c and where each is pinned, and the
// {dev, ino} the hooks see for a path. The structs, constants, key/value encoders and the denied-record
// decoder are bpf/abi.ts's (the one mirror of bpf/krsi.h), re-exported here for enforcers/ and cli/.
import { readFileSync, realpathSync, statSync, statfsSync } from 'node:fs';
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
export const MAP_NAMES = ['deny_inode', 'deny_tgid', 'module_allow', 'module_deny', 'mprotect_count', 'config', 'deny_count', 'denied_events', 'module_stamp'] as const;
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
