// The krsi event model: the public JSON Lines contract (documented in signals/EVENTS.md).
// One JSON object per line. Unknown extra fields are kept, never rejected.
// Live events come from the BPF programs (decoded in signals/decode.ts) and user-space signals.

export const EVENT_TYPES = ['exec', 'fork', 'exit', 'unlink', 'mprotect', 'module_load', 'module_unload', 'module_list', 'denied', 'module_inventory'] as const;
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

export interface MprotectEvent extends BaseEvent {
  type: 'mprotect';
  start: number;
  len: number;
  /** PROT_* bits (PROT_READ 1, PROT_WRITE 2, PROT_EXEC 4) */
  prot: number;
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
  kernel?: { recorded: number; linked: number; unlinked: number; sysfs: number; seeded: number; addrs: string[] };
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
  | MprotectEvent
  | ModuleLoadEvent
  | ModuleUnloadEvent
  | ModuleListEvent
  | ModuleInventoryEvent
  | DeniedEvent;

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
