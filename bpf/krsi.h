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
#define KRSI_ENV_WATCH    8     /* watched environment variables at most */
#define KRSI_ENV_NAME_LEN 32
#define KRSI_ENV_VAL_LEN  192
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

struct krsi_env_var {
	char name[KRSI_ENV_NAME_LEN];
	char value[KRSI_ENV_VAL_LEN];
};

struct krsi_exec_event {
	struct krsi_hdr hdr;
	char exe_path[KRSI_PATH_LEN];
	char filename[KRSI_PATH_LEN];
	__u32 argv_len;           /* bytes used in argv */
	__u32 env_count;          /* watched vars found */
	char argv[KRSI_ARGV_LEN];
	struct krsi_env_var env[KRSI_ENV_WATCH];
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

struct krsi_unlink_event {
	struct krsi_hdr hdr;
	struct krsi_file_id target;  /* resolved inode (ino 0: unknown) */
	__s32 ret;
	__u32 _pad;
	char path[KRSI_PATH_LEN];
};

struct krsi_mprotect_event {
	struct krsi_hdr hdr;
	__u64 start;
	__u64 len;
	__u32 prot;
	__u32 _pad;
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

/* bits of krsi_config.module_mode (both: the denylist is checked first) */
enum krsi_module_mode {
	KRSI_MODULE_OFF       = 0,
	KRSI_MODULE_ALLOWLIST = 1,
	KRSI_MODULE_DENYLIST  = 2,
};

/* single-entry array map "config" */
struct krsi_config {
	__u32 krsi_tgid;        /* never denied */
	__u32 mprotect_limit;   /* 0 = counter off; else deny PROT_EXEC after this many mprotects */
	__u32 module_mode;      /* enum krsi_module_mode bits */
	__u32 enforce;          /* 0: record would-deny as denied events but allow; 1: return -EPERM */
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

#endif /* KRSI_H */
