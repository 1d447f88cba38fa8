// The krsi event model: the public JSON Lines contract (documented in signals/EVENTS.md).
// One JSON object per line. Unknown extra fields are kept, never rejected.
// Live events come from the BPF programs (decoded in signals/decode.ts) and user-space signals.

export const EVENT_TYPES = ['exec', 'fork', 'exit', 'unlink', 'mprotect', 'module_load', 'module_unload', 'module_list', 'denied', 'mmap', 'lost', 'rename', 'truncate', 'module_inventory'] as const;
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

/** an exec event's executable: what the kernel knew of the file (absent in logs from before issue 11) */
export interface ExecExe extends ExeRef {
  /** its link count: 0 for a memfd, an O_TMPFILE file, a file unlinked before the exec */
  nlink?: number;
  /** a memfd (memfd_create): path "/memfd:<name> (deleted)" */
  memfd?: boolean;
  /** its path was gone at exec: unlinked (path ends " (deleted)", as /proc/PID/exe), or a memfd */
  deleted?: boolean;
  /** its filesystem type: ext4, tmpfs (memfd too), overlay, ... */
  fs?: string;
  /** set-user-ID / set-group-ID bits (the exec may run with other credentials) */
  setuid?: boolean;
  setgid?: boolean;
}

/** ld.so run as a program: the options it obeys (EVENTS.md, `ldso`) */
export interface LdsoOptions {
  preload?: string;
  audit?: string;
  library_path?: string;
  inhibit_rpath?: string;
  argv0?: string;
  /** the program it loads */
  program?: string;
  /** the kernel's scan of the option block hit a bound */
  truncated?: boolean;
}

export interface ExecEvent extends BaseEvent {
  type: 'exec';
  exe: ExecExe;
  filename: string;
  argv?: string[];
  /** argv was longer than the signal records (the options ld.so obeys are still in `ldso`) */
  argv_truncated?: boolean;
  /** the watched environment variables that were present, e.g. {"LD_PRELOAD": "/tmp/x.so"}, each with the
   *  value its reader takes: the last occurrence for LD_* and GLIBC_TUNABLES (ld.so), else the first (getenv) */
  env?: Record<string, string>;
  /** watched names set more than once in the environment */
  env_dup?: string[];
  /** every value of each name in env_dup, in environment order */
  env_all?: Record<string, string[]>;
  /** the signal hit a bound reading the environment (strings scanned, bytes kept, a value cut): a
   *  watched variable may be missing or cut */
  env_truncated?: boolean;
  /** ld.so run as a program, with its options */
  ldso?: LdsoOptions;
  /** a script run from an fd (fexecve; filename "/dev/fd/N"): exe is its interpreter, this the script's file */
  script?: FileId & { nlink: number; memfd: boolean };
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

/** how a file event's target was found (signals/EVENTS.md, `route`) */
export const FILE_ROUTES = ['syscall', 'lsm', 'io_uring', 'kernel'] as const;
export type FileRoute = (typeof FILE_ROUTES)[number];
/** who runs a file event's target: the caller, its parent, or other processes only */
export const RUNNERS = ['self', 'parent', 'other'] as const;
export type Runner = (typeof RUNNERS)[number];

/** the fields unlink, rename and truncate events share (signals/EVENTS.md) */
interface FileFields {
  path: string;
  /** the inode, when the signal could resolve it; nlink is its link count after the call (absent: unknown) */
  target?: FileId & { nlink?: number };
  /** the call's error (negative errno), absent on success */
  ret?: number;
  /** seen before the call completed (io_uring, a kernel path): its result and the link count after are unknown */
  unconfirmed?: boolean;
  route?: FileRoute;
  /** the processes running the target when it was hit: count, up to 8 pids, who runs it */
  running?: { count: number; pids: number[]; by?: Runner };
}

export interface UnlinkEvent extends BaseEvent, FileFields {
  type: 'unlink';
}

/** a rename over a running executable: `path` is the name replaced, `from` the name moved there */
export interface RenameEvent extends BaseEvent, FileFields {
  type: 'rename';
  from?: string;
}

/** a truncation of a running executable (or an attempt the kernel refused: ret -26, ETXTBSY) */
export interface TruncateEvent extends BaseEvent, FileFields {
  type: 'truncate';
}

export type FileEvent = UnlinkEvent | RenameEvent | TruncateEvent;

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
  /** which ring: `bulk` (mprotect, mmap) or `rare` (every other kind); `running`: not events but updates of the
   *  running-executable maps that found them full (kinds: run_inode, run_tgid, run_names) */
  class: 'bulk' | 'rare' | 'running';
  /** records lost since the previous lost event of this class */
  count: number;
  /** the same, by event kind */
  kinds: Record<string, number>;
}

export interface ModuleLoadEvent extends BaseEvent {
  type: 'module_load';
  name: string;
  /** the file it was read from (finit_module), absent for init_module (from memory) */
  file?: FileId;
  /** that file's path as the kernel names it */
  path?: string;
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

/** the module views disagree on a module (signals/module-inventory.ts) */
export interface ModuleInventoryEvent extends BaseEvent {
  type: 'module_inventory';
  name: string;
  /** /proc/modules lists it (absent: the view could not be read) */
  proc_modules?: boolean;
  /** /sys/module has it as a loadable module */
  sys_module?: boolean;
  /** what the kernel's own view holds under that name (absent: no recorded module of that name) */
  kernel?: { recorded: number; linked: number; unlinked: number; sysfs: number; seeded: number; addrs: string[]; renamed?: number; load_names?: string[] };
  /** the views that lack it: proc_modules, sys_module, module_list (a recorded module unlinked from the list) */
  missing_from: string[];
  /** the views that have it: proc_modules, sys_module, kernel */
  present_in: string[];
  summary: string;
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
  | RenameEvent
  | TruncateEvent
  | MprotectEvent
  | ModuleLoadEvent
  | ModuleUnloadEvent
  | ModuleListEvent
  | ModuleInventoryEvent
  | DeniedEvent
  | MmapEvent
  | LostEvent;

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
