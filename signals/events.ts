// The krsi event model: the public JSON Lines contract (documented in signals/EVENTS.md).
// One JSON object per line. Unknown extra fields are kept, never rejected.
// Live events come from the BPF programs (decoded in signals/decode.ts) and user-space signals.

export const EVENT_TYPES = ['exec', 'fork', 'exit', 'unlink', 'mprotect', 'module_load', 'module_unload', 'module_list', 'denied', 'mmap', 'lost'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** an inode: `dev` is the user-space st_dev encoding (as `stat -c %d` prints it), `ino` the inode number */
export interface FileId {
  dev: number;
  ino: number;
}

/** the process's executable (for exec: the new one) */
export interface ExeRef extends FileId {
  path: string;
}

export interface BaseEvent {
  /** event time, integer nanoseconds (CLOCK_BOOTTIME for live recordings), non-decreasing within a log, < 2^53 */
  ts: number;
  type: EventType;
  /** the tgid */
  pid: number;
  ppid: number;
  uid: number;
  comm: string;
  exe: ExeRef;
  tid?: number;
  cgroup?: number;
  /** position in the log; assigned on record when absent */
  seq?: number;
  [extra: string]: unknown;
}

export interface ExecEvent extends BaseEvent {
  type: 'exec';
  filename: string;
  argv?: string[];
  /** the watched environment variables that were present, e.g. {"LD_PRELOAD": "/tmp/x.so"} */
  env?: Record<string, string>;
  /** SHA-256 of the new executable (64 hex digits), when a signal or importer computed it */
  sha256?: string;
  /** why the live hashing stage left the event without sha256 (signals/hash.ts) */
  sha256_error?: Sha256Error;
}

/** the reasons an exec event carries no sha256 (EVENTS.md, `sha256_error`) */
export const SHA256_ERRORS = ['gone', 'replaced', 'too_large', 'unreadable', 'timeout', 'queue_full', 'unavailable'] as const;
export type Sha256Error = (typeof SHA256_ERRORS)[number];

export interface ForkEvent extends BaseEvent {
  type: 'fork';
  child_pid: number;
}

export interface ExitEvent extends BaseEvent {
  type: 'exit';
  code: number;
}

export interface UnlinkEvent extends BaseEvent {
  type: 'unlink';
  path: string;
  /** the unlinked inode, when the signal could resolve it; nlink is its link count after the unlink */
  target?: FileId & { nlink?: number };
}

/** what mprotect and mmap events share (EVENTS.md, "Executable memory") */
export interface MemFacts {
  start: number;
  len: number;
  /** the effective PROT_* bits (PROT_READ 1, PROT_WRITE 2, PROT_EXEC 4), READ_IMPLIES_EXEC applied;
   *  in logs from before issue 11, the requested ones */
  prot: number;
  /** PROT_* as asked (live events always carry it) */
  reqprot?: number;
  /** writable and executable at once, or made executable after it was written (per region). Absent
   *  (older logs): prot has both PROT_WRITE and PROT_EXEC; the event contract fills it in on reading */
  wx?: boolean;
  /** a region that was not executable becomes executable */
  exec_added?: boolean;
  /** W->X: made executable after it was written, and no longer writable (what a staged payload and a
   *  W^X JIT do; mprotect-storm counts these) */
  flip?: boolean;
  /** the regions could not all be read (mmap_lock busy, too many regions): taken as written */
  regions_unknown?: boolean;
}

export interface MprotectEvent extends BaseEvent, MemFacts {
  type: 'mprotect';
  /** the region's PROT_* before the call (its first region), when known */
  old_prot?: number;
}

/** an executable mapping: writable and executable, anonymous, or of a tmpfs/memfd file (a file mapped
 *  read+exec, as ld.so maps libraries, is not an event) */
export interface MmapEvent extends BaseEvent, MemFacts {
  type: 'mmap';
  /** MAP_* flags */
  flags: number;
  /** no file behind the mapping */
  anon?: boolean;
  /** the file is on tmpfs/shmem (memfd, /dev/shm, a SysV segment) */
  shmem?: boolean;
  /** a SysV segment attached with shmat(SHM_EXEC); flags is the shmflg */
  shmat?: boolean;
  /** the file mapped */
  file?: FileId;
  /** the error when the call failed (e.g. -1: EPERM, refused) */
  ret?: number;
}

/** events the kernel could not hand over since the last `lost` event: its ring buffer was full */
export interface LostEvent extends BaseEvent {
  type: 'lost';
  /** which ring: `bulk` (mprotect, mmap) or `rare` (every other kind) */
  class: 'bulk' | 'rare';
  /** records lost since the previous lost event of this class */
  count: number;
  /** the same, by event kind */
  kinds: Record<string, number>;
}

export interface ModuleLoadEvent extends BaseEvent {
  type: 'module_load';
  name: string;
  file?: FileId;
  sha256?: string;
}

/** a module left the kernel: rmmod (delete_module), or a load whose init failed */
export interface ModuleUnloadEvent extends BaseEvent {
  type: 'module_unload';
  name: string;
}

export interface ModuleListEvent extends BaseEvent {
  type: 'module_list';
  /** snapshot of the kernel's visible module list (/proc/modules) */
  modules: string[];
}

/** written by an enforcement program when it returned -EPERM */
export interface DeniedEvent extends BaseEvent {
  type: 'denied';
  /** the operation refused: exec | mprotect_exec | module_load */
  op: string;
  /** the verdict key that matched: {pid} | {dev, ino} | {module} | {counter} ... */
  key: Record<string, unknown>;
  rule?: string;
}

export type KrsiEvent =
  | ExecEvent
  | ForkEvent
  | ExitEvent
  | UnlinkEvent
  | MprotectEvent
  | ModuleLoadEvent
  | ModuleUnloadEvent
  | ModuleListEvent
  | DeniedEvent
  | MmapEvent
  | LostEvent;

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
