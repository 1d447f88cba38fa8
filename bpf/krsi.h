/* krsi.h - every struct, enum and constant krsi's BPF programs (signals.bpf.c, enforce.bpf.c,
 * protect.bpf.c) share with user space, and nothing else: #defines, enums and structs.
 * Should match: bpf/abi.ts, the one TypeScript mirror (test/bpf/layout.test.ts compares the two, and
 * the BTF of the compiled objects). The `denied` record is documented in signals/EVENTS.md.
 * All integers are little-endian host order; every struct is padded explicitly. */
#ifndef KRSI_H
#define KRSI_H

#define KRSI_COMM_LEN     16
#define KRSI_PATH_LEN     256
#define KRSI_ARGV_LEN     512   /* argv bytes copied, NUL-separated, truncated */
#define KRSI_ENV_NAME_LEN 32    /* key of the watch_env map: a variable name, NUL-padded */
#define KRSI_ENV_AREA     16384 /* the exec record's string area: matched "NAME=value" strings, then the ld.so options */
#define KRSI_FS_NAME_LEN  16    /* a filesystem type name (sb->s_type->name), truncated */
#define KRSI_MODNAME_LEN  56    /* MODULE_NAME_LEN */
#define KRSI_DENY_SLOTS   16    /* deny_count slots, indexed by enum krsi_deny_reason (slot 0: records lost) */
#define KRSI_TAMPER_SLOTS 12    /* tamper_count slots, indexed by enum krsi_deny_reason (slot 0: records lost) */
/* how long a tgid whose module file was refused (deny_inode or the denylist) may not load a module from
 * memory: long enough for an insmod's immediate init_module fallback */
#define MODULE_REFUSAL_NS 5000000000ULL

/* event kinds in the ring buffer; the TypeScript decoder switches on this */
enum krsi_event_kind {
	KRSI_EV_EXEC        = 1,
	KRSI_EV_FORK        = 2,
	KRSI_EV_EXIT        = 3,
	KRSI_EV_UNLINK      = 4,
	KRSI_EV_MPROTECT    = 5,
	KRSI_EV_MODULE_LOAD = 6,
	KRSI_EV_DENIED      = 7,
	KRSI_EV_MODULE_UNLOAD = 8,  /* struct krsi_module_event too */
	KRSI_EV_MMAP        = 9,   /* an executable mapping (issue 11) */
	KRSI_EV_RENAME      = 10,  /* a rename over a running executable (issue 11) */
	KRSI_EV_TRUNCATE    = 11,  /* a truncation of a running executable (issue 11) */
};
#define KRSI_EV_MAX 16  /* size of per-kind arrays (the "lost" counters map) */

/* an inode; dev is the kernel's s_dev encoding (MAJOR << 20 | MINOR): user space converts */
struct krsi_file_id {
	__u64 ino;
	__u32 dev;
	__u32 nlink;
};

/* common header of every event */
struct krsi_hdr {
	__u64 ts;                 /* bpf_ktime_get_boot_ns() */
	__u32 kind;               /* enum krsi_event_kind */
	__u32 pid;                /* tgid */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 _pad;
	__u64 cgroup;
	struct krsi_file_id exe;  /* current->mm->exe_file */
	char comm[KRSI_COMM_LEN];
};

/* bits of krsi_exec_event.flags: facts about the executed file, and the bounds the record hit */
enum krsi_exec_flag {
	KRSI_EXEC_MEMFD       = 1,    /* the file is a memfd (memfd_create): "memfd:" on an internal shmem/hugetlbfs mount */
	KRSI_EXEC_DELETED     = 2,    /* its path is gone: unlinked before the exec, or never had one (memfd, O_TMPFILE) */
	KRSI_EXEC_NO_INTERP   = 4,    /* no program interpreter (auxv AT_BASE 0): static, or the dynamic loader run as a program */
	KRSI_EXEC_ARGV_TRUNC  = 8,    /* argv is longer than KRSI_ARGV_LEN: the recorded argv is cut */
	KRSI_EXEC_ENV_STRINGS = 16,   /* the environment walk stopped before its end (strings scanned bound, unreadable) */
	KRSI_EXEC_ENV_FULL    = 32,   /* a matched variable did not fit in the string area: not recorded */
	KRSI_EXEC_ENV_CUT     = 64,   /* a matched "NAME=value" longer than the scratch buffer was cut */
	KRSI_EXEC_LDSO_TRUNC  = 128,  /* the ld.so option scan hit a bound (loop, area, an option cut) */
	KRSI_EXEC_PSEUDO      = 256,  /* exe_path is one pseudo dentry's name, '/' included (memfd): not a walk to reverse */
	KRSI_EXEC_SCRIPT_FD   = 512,  /* run from an fd ("/dev/fd/N") and bprm->file is an interpreter: `script` is the fd's file */
	KRSI_EXEC_SCRIPT_MEMFD = 1024, /* that script file is a memfd */
};

/* a variable-size record: it ends env_len + ldso_len bytes into area[] */
struct krsi_exec_event {
	struct krsi_hdr hdr;
	char exe_path[KRSI_PATH_LEN];
	char filename[KRSI_PATH_LEN];
	__u32 argv_len;           /* bytes used in argv */
	__u32 env_len;            /* bytes of area[] holding the matched environment strings, "NAME=value\0" each, in order */
	__u32 ldso_len;           /* bytes of area[] after them: argv[1..] of a program without interpreter, the option block */
	__u32 flags;              /* enum krsi_exec_flag bits */
	__u32 env_strings;        /* environment strings scanned */
	__u32 i_mode;             /* the file's mode: type and permission bits (S_ISUID 04000, S_ISGID 02000) */
	struct krsi_file_id script;  /* KRSI_EXEC_SCRIPT_FD: the script file the interpreter was started for (nlink included) */
	__u64 s_magic;            /* its filesystem's magic (sb->s_magic) */
	char fs_type[KRSI_FS_NAME_LEN];  /* its filesystem's type name */
	char argv[KRSI_ARGV_LEN];
	char area[KRSI_ENV_AREA];
};

struct krsi_fork_event {
	struct krsi_hdr hdr;
	__u32 child_pid;
	__u32 _pad;
};

struct krsi_exit_event {
	struct krsi_hdr hdr;
	__s32 code;
	__u32 _pad;
};

/* ---- running executables (issue 11): unlink, rename and truncate of an inode a process runs ---- */
#define KRSI_RUN_PIDS 8  /* processes named in a file event at most (running: the total) */

/* how a file event's target was found (krsi_unlink_event.route) */
enum krsi_file_route {
	KRSI_ROUTE_SYSCALL  = 1,  /* syscall tracepoints: the running inode whose link count or size changed during the call */
	KRSI_ROUTE_LSM      = 2,  /* an LSM hook (inode_unlink, inode_rename, path_truncate, file_truncate) inside the syscall */
	KRSI_ROUTE_IO_URING = 3,  /* io_uring (an LSM hook in an io-wq worker, or the io_uring tracepoints) */
	KRSI_ROUTE_KERNEL   = 4,  /* an LSM hook outside any syscall krsi follows (nfsd, ksmbd, ...) */
};

/* who runs the target (krsi_unlink_event.runner) */
enum krsi_runner {
	KRSI_RUNNER_NONE   = 0,  /* nobody krsi knows of */
	KRSI_RUNNER_SELF   = 1,  /* the caller: its exe, or the script it interprets */
	KRSI_RUNNER_PARENT = 2,  /* the caller's parent (a script's `rm -- "$0"`) */
	KRSI_RUNNER_OTHER  = 3,  /* other processes only */
};

/* bits of krsi_unlink_event.flags */
#define KRSI_FILE_NLINK 1  /* target.nlink is the link count after the call (else unknown) */
#define KRSI_FILE_RET   2  /* ret is the call's result (else unknown) */

/* the record of unlink, rename and truncate events (kind says which) */
struct krsi_unlink_event {
	struct krsi_hdr hdr;
	struct krsi_file_id target;  /* resolved inode (ino 0: unknown) */
	__s32 ret;
	__u32 _pad;
	char path[KRSI_PATH_LEN];    /* unlink, truncate: the name; rename: the name replaced (new name) */
	__u32 route;                 /* enum krsi_file_route; 0: unknown */
	__u32 flags;                 /* KRSI_FILE_* bits */
	__u32 running;               /* processes running the target (0: none known) */
	__u32 runner;                /* enum krsi_runner */
	__u32 pids[KRSI_RUN_PIDS];   /* up to KRSI_RUN_PIDS of them (0: empty slot) */
	char path2[KRSI_PATH_LEN];   /* rename: the old name */
};

/* mprotect (KRSI_EV_MPROTECT) and mmap (KRSI_EV_MMAP): only the calls that matter to a rule are emitted
 * (exec added, or writable and executable), into the bulk ring "mem_events" (signals/LIVE.md) */
struct krsi_mem_event {
	struct krsi_hdr hdr;
	__u64 start;              /* mmap: the address returned (the asked one when the call failed) */
	__u64 len;
	__u32 prot;               /* effective PROT_* (READ_IMPLIES_EXEC applied) */
	__u32 reqprot;            /* PROT_* as asked */
	__u32 flags;              /* mmap: MAP_* flags; mprotect: 0 */
	__u32 mem;                /* enum krsi_mem_bit */
	__u32 old_prot;           /* mprotect: the region's PROT_* before the call (first vma), when known */
	__s32 ret;                /* mmap: the error when the call failed, else 0 */
	struct krsi_file_id file; /* mmap of a file: its inode (ino 0: anonymous) */
};

/* what a memory event knows of the region (struct krsi_mem_event.mem) */
enum krsi_mem_bit {
	KRSI_MEM_WX         = 1,   /* writable and executable at once, or made executable after it was written */
	KRSI_MEM_EXEC_ADDED = 2,   /* a region not executable before becomes executable */
	KRSI_MEM_FLIP       = 4,   /* W->X: made executable after it was written, and no longer writable */
	KRSI_MEM_UNKNOWN    = 8,   /* the regions could not all be read (lock busy, too many): taken as written, exec added */
	KRSI_MEM_ANON       = 16,  /* mmap: no file behind it */
	KRSI_MEM_SHMEM      = 32,  /* mmap: a tmpfs/shmem file (memfd, /dev/shm, SysV shm) */
	KRSI_MEM_SHMAT      = 64,  /* mmap: shmat(SHM_EXEC) of a SysV segment (flags: the shmflg) */
};

struct krsi_module_event {
	struct krsi_hdr hdr;
	char name[KRSI_MODNAME_LEN];
	struct krsi_file_id file;   /* module_load by finit_module: the file it was read from (ino 0: none, init_module) */
	char path[KRSI_PATH_LEN];   /* that file's path (leaf first, as exe_path; empty without a file) */
};

/* ---- the kernel's own module view (signals.bpf.c: module_seen, krsi_module_iter; signals/module-inventory.ts) ---- */

/* value of module_seen, keyed by the struct module pointer (__u64): recorded at tp_btf/module_load, removed
 * at tp_btf/module_free; seeded by user space from kallsyms' __this_module for modules loaded before krsi */
struct krsi_module_seen {
	__u64 ts;                      /* bpf_ktime_get_boot_ns() of the module_load; 0: seeded */
	__u32 seeded;                  /* 1: put there by user space at start, not seen loading */
	__u32 _pad;
	char name[KRSI_MODNAME_LEN];   /* the name at load (or as kallsyms named it) */
};

/* bits of krsi_module_view.flags */
enum krsi_module_view_flag {
	KRSI_MODVIEW_LINKED   = 1,  /* list.next->prev and list.prev->next are the module: on the module list */
	KRSI_MODVIEW_SYSFS    = 2,  /* mkobj.kobj.sd is set: /sys/module/<name> exists */
	KRSI_MODVIEW_READABLE = 4,  /* the struct module could be read at all */
};

/* one record of the krsi_module_iter iterator: what the kernel says of each recorded module now */
struct krsi_module_view {
	__u64 addr;                    /* the struct module pointer (the map key) */
	__u64 ts;                      /* krsi_module_seen.ts */
	__u32 state;                   /* enum module_state: 0 LIVE, 1 COMING, 2 GOING, 3 UNFORMED */
	__u32 flags;                   /* enum krsi_module_view_flag bits */
	__u32 seeded;                  /* krsi_module_seen.seeded */
	__u32 _pad;
	char name[KRSI_MODNAME_LEN];   /* mod->name now */
	char recorded[KRSI_MODNAME_LEN];  /* krsi_module_seen.name */
};

/* ---- enforcement (enforce.bpf.c, protect.bpf.c) ---- */

/* operations refused; also the bits of a tgid verdict */
enum krsi_op {
	KRSI_OP_EXEC          = 1,
	KRSI_OP_MPROTECT_EXEC = 2,
	KRSI_OP_MODULE_LOAD   = 4,
	KRSI_OP_QUARANTINE    = 7,   /* all of the above */
	KRSI_OP_TAMPER        = 8,   /* protect.bpf.c: an attempt on krsi itself (never a verdict bit) */
	KRSI_OP_KILL          = 16,  /* SIGKILL the process at its next guarded operation */
};

/* why a denial happened */
enum krsi_deny_reason {
	KRSI_DENY_INODE          = 1, /* deny_inode hit (exec of a denied binary) */
	KRSI_DENY_TGID           = 2, /* deny_tgid hit (verdict or quarantine) */
	KRSI_DENY_MPROTECT_LIMIT = 3, /* in-kernel mprotect counter over the limit */
	KRSI_DENY_MODULE_ALLOW   = 4, /* module not on the allowlist */
	KRSI_DENY_MODULE_DENY    = 5, /* module on the denylist */
	/* self-protection (protect.bpf.c, op KRSI_OP_TAMPER); inode.ino / inode.dev of the event say what */
	KRSI_DENY_TAMPER_MAP     = 6, /* an fd on a krsi map: ino = map id */
	KRSI_DENY_TAMPER_LINK    = 7, /* a krsi link: fd by id, detach, update: ino = link id */
	KRSI_DENY_TAMPER_PIN     = 8, /* unlink/rename/rmdir of a krsi pin or pin dir: (dev, ino) */
	KRSI_DENY_TAMPER_PTRACE  = 9, /* ptrace attach-mode access to krsi: ino = krsi tgid, dev = mode */
	KRSI_DENY_TAMPER_SIGNAL  = 10, /* a stopping signal to krsi, reported not refused: ino = tgid, dev = sig */
	KRSI_DENY_TAMPER_MOUNT   = 11, /* umount of the bpffs holding krsi's pins: dev */
	KRSI_DENY_FILELESS       = 12, /* exec of a memfd or an unlinked file (opt-in) */
	KRSI_DENY_KEXEC          = 13, /* a kexec image or initramfs (allowlist mode) */
	KRSI_DENY_READ_ID        = 14, /* a kernel_read_file / load_data id krsi does not know (allowlist mode) */
	KRSI_DENY_MODULE_CHANGED = 15, /* an allowlisted module file changed since it was allowlisted */
};

/* key of protect.bpf.c's protected_ids: a BPF object of krsi's */
enum krsi_obj_kind {
	KRSI_OBJ_MAP  = 1,
	KRSI_OBJ_LINK = 2,
};
struct krsi_obj_key {
	__u32 kind;   /* enum krsi_obj_kind */
	__u32 id;     /* the kernel's map / link id */
};

/* key of deny_inode / module_allow / module_deny */
struct krsi_inode_key {
	__u64 ino;
	__u32 dev;   /* kernel s_dev encoding */
	__u32 _pad;
};

/* value of module_stamp (key: krsi_inode_key): the allowlisted module file's ctime when user space resolved
 * the allowlist (stat), compared with the inode's at kernel_read_file: a file rewritten in place keeps its
 * inode but not its ctime (KRSI_DENY_MODULE_CHANGED) */
struct krsi_file_stamp {
	__s64 ctime_sec;
	__u32 ctime_nsec;
	__u32 _pad;
};

/* value of deny_inode / deny_tgid */
struct krsi_verdict {
	__u64 expires;   /* bpf_ktime_get_boot_ns() deadline; 0 = never */
	__u32 ops;       /* enum krsi_op bits */
	__u32 rule_id;   /* index into the rule table user space keeps */
};

/* bits of krsi_config.flags */
enum krsi_config_flag {
	KRSI_CFG_DENY_FILELESS = 1,   /* refuse exec of a memfd or of a file with no link left (reason KRSI_DENY_FILELESS) */
};

/* bits of krsi_config.module_mode (both: the denylist is checked first) */
enum krsi_module_mode {
	KRSI_MODULE_OFF       = 0,
	KRSI_MODULE_ALLOWLIST = 1,
	KRSI_MODULE_DENYLIST  = 2,
};

/* single-entry array map "config" */
struct krsi_config {
	__u32 krsi_tgid;        /* never denied */
	__u32 mprotect_limit;   /* 0 = counter off; else deny PROT_EXEC (mprotect, mmap) after this many W->X flips */
	__u32 module_mode;      /* enum krsi_module_mode bits */
	__u32 enforce;          /* 0: record would-deny as denied events but allow; 1: return -EPERM */
	__u32 flags;            /* enum krsi_config_flag bits */
	__u32 _pad;
};

/* the `denied` record (signals/EVENTS.md): written by enforce.bpf.c and protect.bpf.c into denied_events */
struct krsi_denied_event {
	struct krsi_hdr hdr;
	__u32 op;        /* enum krsi_op (single bit) */
	__u32 reason;    /* enum krsi_deny_reason */
	__u32 rule_id;   /* 0: the in-kernel lists / counter */
	__u32 enforced;  /* 1: -EPERM returned; 0: monitor mode (config.enforce 0), allowed */
	struct krsi_inode_key inode;  /* the file involved (exec / module), zero otherwise */
};

/* ---- running executables: signals.bpf.c's maps (user space seeds them) ---- */

/* value of signals.bpf.c's run_inode (key struct krsi_inode_key): an inode some process runs. Filled at exec
 * and fork, removed when its last process exits or execs; seeded from /proc by user space (inode 0). */
struct krsi_run_inode {
	__u64 inode;     /* struct inode * while a process holds it (0: seeded from user space, not known) */
	__s64 size;      /* i_size when last looked at */
	__u32 nlink;     /* link count when last looked at */
	__u32 refs;      /* processes running it */
	__u32 pids[KRSI_RUN_PIDS];  /* some of them */
	__u64 name;      /* hash of the name it was exec'd or opened by (run_names; 0: none) */
};

/* value of run_tgid (key: tgid): what a process runs, to release at exit or exec */
struct krsi_run_tgid {
	struct krsi_inode_key exe;
	struct krsi_inode_key script;  /* the script an interpreter was exec'd for (ino 0: none) */
};

#endif /* KRSI_H */
