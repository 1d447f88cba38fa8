// Where enforcement lives: the maps and programs of bpf/enforce.bpf.c and where each is pinned, and the
// {dev, ino} the hooks see for a path. The structs, constants, key/value encoders and the denied-record
// decoder are bpf/abi.ts's (the one mirror of bpf/krsi.h), re-exported here for enforcers/ and cli/.
import type { DeniedRecord } from '../bpf/abi.ts';
import type { DeniedEvent } from '../signals/events.ts';

export { kernelFileId } from '../bpf/file-id.ts';
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
export const PROG_NAMES = [
  'krsi_bprm_check', 'krsi_bprm_fileless', 'krsi_file_mprotect', 'krsi_mmap_file', 'krsi_shm_shmat', 'krsi_kernel_read_file', 'krsi_kernel_load_data',
  'krsi_fork', 'krsi_exit', 'krsi_exec_reset',
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
  krsi_exec_reset: 'lsm/bprm_committing_creds',
  krsi_kill_exec: 'lsm/bprm_check_security',
  krsi_kill_mprotect: 'lsm/file_mprotect',
  krsi_kill_mmap: 'lsm/mmap_file',
  krsi_kill_open: 'lsm/file_open',
  krsi_kill_fork: 'lsm/task_alloc',
  krsi_kill_connect: 'lsm/socket_connect',
  krsi_mmap_denied: 'lsm/mmap_file',
  krsi_mprotect_denied: 'lsm/file_mprotect',
};

