// SPDX-License-Identifier: GPL-2.0
/* signals.bpf.c - krsi's signal programs: exec, fork, exit, unlink, mprotect, module load and unload.
 * Every event starts with struct krsi_hdr and goes into one ring buffer ("events").
 * Event structs live in krsi.h; should match: bpf/abi.ts (test/bpf/layout.test.ts).
 * Kernel fields are declared as tiny CO-RE structs (preserve_access_index), no vmlinux.h. */
#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>  /* struct pt_regs for the kprobe */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "krsi.h"

char LICENSE[] SEC("license") = "GPL";

#define KRSI_SCRATCH_LEN 4096   /* string scratch: one environment string, the exe path walk */
#define KRSI_PATH_DEPTH  64     /* path components walked at most */
#define KRSI_ENV_STRINGS 1024   /* environment strings scanned at most */
#ifndef barrier_var
#define barrier_var(var) asm volatile("" : "+r"(var))
#endif

/* ---- the kernel fields we read (CO-RE relocated against the running kernel's BTF) ---- */
struct qstr { const unsigned char *name; } __attribute__((preserve_access_index));
struct super_block { __u32 s_dev; } __attribute__((preserve_access_index));
struct inode {
	unsigned long i_ino;
	struct super_block *i_sb;
	unsigned int __i_nlink;
} __attribute__((preserve_access_index));
struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
	struct inode *d_inode;
} __attribute__((preserve_access_index));
struct vfsmount { struct dentry *mnt_root; } __attribute__((preserve_access_index));
struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
} __attribute__((preserve_access_index));
struct path { struct vfsmount *mnt; struct dentry *dentry; } __attribute__((preserve_access_index));
struct file { struct inode *f_inode; struct path f_path; } __attribute__((preserve_access_index));
struct mm_struct {
	struct file *exe_file;
	unsigned long arg_start, arg_end, env_start, env_end;
} __attribute__((preserve_access_index));
typedef struct { int counter; } atomic_t;
struct signal_struct { atomic_t live; } __attribute__((preserve_access_index));
struct fdtable { unsigned int max_fds; struct file **fd; } __attribute__((preserve_access_index));
struct files_struct { struct fdtable *fdt; } __attribute__((preserve_access_index));
struct task_struct {
	int pid;
	int tgid;
	int exit_code;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct signal_struct *signal;
	struct files_struct *files;
} __attribute__((preserve_access_index));
struct linux_binprm { struct file *file; const char *filename; } __attribute__((preserve_access_index));
/* the module's place on the module list (list), in sysfs (mkobj.kobj.sd: NULL once kobject_del'ed) and its state */
struct list_head { struct list_head *next, *prev; } __attribute__((preserve_access_index));
struct kernfs_node;
struct kobject { struct kernfs_node *sd; } __attribute__((preserve_access_index));
struct module_kobject { struct kobject kobj; } __attribute__((preserve_access_index));
enum module_state { MODULE_STATE_LIVE = 0 };
struct module {
	enum module_state state;
	struct list_head list;
	char name[KRSI_MODNAME_LEN];
	struct module_kobject mkobj;
} __attribute__((preserve_access_index));
/* the iterator over module_seen (iter/bpf_map_elem) */
struct seq_file;
struct bpf_iter_meta { struct seq_file *seq; } __attribute__((preserve_access_index));
struct bpf_iter__bpf_map_elem {
	struct bpf_iter_meta *meta;
	void *key;
	void *value;
} __attribute__((preserve_access_index));

#include "hdr.h"   /* file_id(), fill_hdr(): after the CO-RE declarations they read (callers check is_self() first) */

/* ---- load-time settings (set between open and load) ---- */
const volatile __u32 self_tgid = 0;            /* krsi itself: its events are dropped (its JIT mprotects would loop) */
const volatile __u32 watch_count = 3;          /* used entries of watch_names */
const volatile char watch_names[KRSI_ENV_WATCH][KRSI_ENV_NAME_LEN] = {
	"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT",
};

/* ---- maps ---- */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} events SEC(".maps");

/* reserve failures per event kind: krsi never drops silently */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KRSI_EV_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* per-CPU scratch: the exec event is built here (too big for the stack), plus a string buffer */
struct scratch {
	struct krsi_exec_event ev;
	char buf[KRSI_SCRATCH_LEN];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* unlink in flight: sys_enter -> sys_exit, keyed by pid_tgid */
struct unlink_start {
	struct krsi_file_id exe;     /* the caller's executable and its link count before the unlink */
	struct krsi_file_id target;  /* the inode vfs_unlink was given, its link count before (ino 0: not seen) */
	char path[KRSI_PATH_LEN];
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct unlink_start);
} unlinks SEC(".maps");

/* ---- helpers ---- */
static __always_inline void count_lost(__u32 kind)
{
	__u64 *n = bpf_map_lookup_elem(&lost, &kind);
	if (n)
		*n += 1;
}

/* krsi's own events are dropped, checked before anything is reserved or read */
static __always_inline bool is_self(void)
{
	return self_tgid && (bpf_get_current_pid_tgid() >> 32) == self_tgid;
}

/* reserve a ring buffer record, counting failures */
static __always_inline void *reserve(__u64 size, __u32 kind)
{
	void *ev = bpf_ringbuf_reserve(&events, size, 0);
	if (!ev)
		count_lost(kind);
	return ev;
}

/* ---- exec: path walk (components written leaf first, separated by '/'; decode.ts reverses) ---- */
struct walk_ctx {
	struct scratch *s;
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	__u32 off;
	bool done;
};

static long walk_step(__u32 i, struct walk_ctx *c)
{
	/* locals: inside BPF_CORE_READ() every access is relocated, walk_ctx's too */
	struct dentry *d = c->dentry;
	struct vfsmount *vm = c->vfsmnt;
	struct mount *m = c->mnt;

	if (d == BPF_CORE_READ(vm, mnt_root)) {
		/* at the root of this mount: cross to the mountpoint in the parent mount */
		struct mount *parent = BPF_CORE_READ(m, mnt_parent);
		if (parent == m) {
			c->done = true;
			return 1;
		}
		c->dentry = BPF_CORE_READ(m, mnt_mountpoint);
		c->mnt = parent;
		c->vfsmnt = (void *)parent + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	struct dentry *up = BPF_CORE_READ(d, d_parent);
	if (up == d) {
		c->done = true;
		return 1;
	}
	__u32 off = c->off;
	if (off >= KRSI_PATH_LEN - 4)
		return 1;  /* full: the path stays truncated */
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	long n = bpf_probe_read_kernel_str(&c->s->buf[off], KRSI_PATH_LEN, name);
	if (n <= 0 || off + n > KRSI_PATH_LEN - 4)
		return 1;  /* only whole components, and room left for the ".." mark */
	off += n;  /* n counts the NUL: it becomes the '/' separator */
	if (off - 1 < KRSI_SCRATCH_LEN)
		c->s->buf[off - 1] = '/';
	c->off = off;
	c->dentry = up;
	return 0;
}

static __always_inline void exe_path(struct scratch *s, struct file *f)
{
	struct walk_ctx c = {
		.s = s,
		.dentry = BPF_CORE_READ(f, f_path.dentry),
		.vfsmnt = BPF_CORE_READ(f, f_path.mnt),
	};
	c.mnt = (void *)c.vfsmnt - bpf_core_field_offset(struct mount, mnt);
	bpf_loop(KRSI_PATH_DEPTH, walk_step, &c, 0);
	__u32 off = c.off;
	if (off > 0)
		off -= 1;  /* drop the trailing separator */
	if (off > KRSI_PATH_LEN - 1)
		off = KRSI_PATH_LEN - 1;
	barrier_var(off);
	off &= KRSI_PATH_LEN - 1;  /* for the verifier (the barrier keeps clang from dropping it) */
	s->buf[off] = 0;
	if (!c.done && off < KRSI_PATH_LEN - 4) {
		/* did not reach the root: mark it so the decoder can show "/..." */
		s->buf[off] = '/'; s->buf[off + 1] = '.'; s->buf[off + 2] = '.'; s->buf[off + 3] = 0;
	}
	bpf_probe_read_kernel(s->ev.exe_path, KRSI_PATH_LEN, s->buf);
}

/* ---- exec: watched environment variables ---- */
struct env_ctx {
	struct scratch *s;
	unsigned long p, end;
};

/* index of the watched name `buf` starts with (followed by '='), or -1 */
static __always_inline int watched(const char *buf)
{
	for (int n = 0; n < KRSI_ENV_WATCH; n++) {
		if (n >= watch_count)
			break;
		for (int j = 0; j < KRSI_ENV_NAME_LEN; j++) {
			char c = watch_names[n][j];
			if (c == 0) {
				if (buf[j] == '=')
					return n;
				break;
			}
			if (buf[j] != c)
				break;
		}
	}
	return -1;
}

static long env_step(__u32 i, struct env_ctx *c)
{
	struct scratch *s = c->s;
	if (c->p >= c->end)
		return 1;
	/* one environment string; KRSI_SCRATCH_LEN covers any normal one, longer ones are skipped in pieces */
	long n = bpf_probe_read_user_str(s->buf, KRSI_SCRATCH_LEN, (void *)c->p);
	if (n <= 0)
		return 1;
	if (n < KRSI_SCRATCH_LEN) {
		int w = watched(s->buf);
		__u32 k = s->ev.env_count;
		if (w >= 0 && k < KRSI_ENV_WATCH) {
			__u32 nl = 0;
			for (int j = 0; j < KRSI_ENV_NAME_LEN - 1; j++) {
				if (watch_names[w][j] == 0)
					break;
				s->ev.env[k].name[j] = watch_names[w][j];
				nl = j + 1;
			}
			s->ev.env[k].name[nl & (KRSI_ENV_NAME_LEN - 1)] = 0;
			bpf_probe_read_kernel_str(s->ev.env[k].value, KRSI_ENV_VAL_LEN, &s->buf[(nl + 1) & (KRSI_SCRATCH_LEN - 1)]);
			s->ev.env_count = k + 1;
		}
		c->p += n;
	} else {
		c->p += n - 1;  /* truncated: continue inside the same string */
	}
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(krsi_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	if (is_self())
		return 0;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	struct krsi_exec_event *ev = &s->ev;
	fill_hdr(&ev->hdr, KRSI_EV_EXEC);

	/* the file executed (for scripts: the interpreter) and the name asked for */
	struct file *f = BPF_CORE_READ(bprm, file);
	file_id(f, &ev->hdr.exe);
	exe_path(s, f);
	bpf_probe_read_kernel_str(ev->filename, KRSI_PATH_LEN, BPF_CORE_READ(bprm, filename));

	/* argv, NUL separated, bounded */
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	unsigned long as = BPF_CORE_READ(mm, arg_start), ae = BPF_CORE_READ(mm, arg_end);
	__u64 len = ae > as ? ae - as : 0;
	if (len > KRSI_ARGV_LEN)
		len = KRSI_ARGV_LEN;
	barrier_var(len);
	len &= (2 * KRSI_ARGV_LEN - 1);  /* for the verifier: a bounded unsigned size */
	ev->argv_len = 0;
	if (len > 0 && len <= KRSI_ARGV_LEN && bpf_probe_read_user(ev->argv, len, (void *)as) == 0)
		ev->argv_len = len;

	/* the watched environment variables: scan the whole environment */
	ev->env_count = 0;
	struct env_ctx ec = { .s = s, .p = BPF_CORE_READ(mm, env_start), .end = BPF_CORE_READ(mm, env_end) };
	bpf_loop(KRSI_ENV_STRINGS, env_step, &ec, 0);

	if (bpf_ringbuf_output(&events, ev, sizeof(*ev), 0))
		count_lost(KRSI_EV_EXEC);
	return 0;
}

/* ---- fork / exit ---- */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(krsi_fork, struct task_struct *parent, struct task_struct *child)
{
	/* new processes only, not threads */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid) || is_self())
		return 0;
	struct krsi_fork_event *ev = reserve(sizeof(*ev), KRSI_EV_FORK);
	if (!ev)
		return 0;
	fill_hdr(&ev->hdr, KRSI_EV_FORK);
	ev->child_pid = BPF_CORE_READ(child, tgid);
	ev->_pad = 0;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(krsi_exit, struct task_struct *p)
{
	/* the whole thread group is gone only when signal->live dropped to 0 (already decremented here) */
	if (BPF_CORE_READ(p, signal, live.counter) != 0 || is_self())
		return 0;
	struct krsi_exit_event *ev = reserve(sizeof(*ev), KRSI_EV_EXIT);
	if (!ev)
		return 0;
	fill_hdr(&ev->hdr, KRSI_EV_EXIT);
	ev->code = BPF_CORE_READ(p, exit_code);  /* wait status: decode.ts turns it into a shell-style code */
	ev->_pad = 0;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

/* ---- unlink / unlinkat: remember the path and the caller's exe link count, report on exit ---- */
struct sys_enter_ctx { __u64 _common; __s32 nr; __u32 _pad; __u64 args[6]; };
struct sys_exit_ctx { __u64 _common; __s32 nr; __u32 _pad; __s64 ret; };

static __always_inline void unlink_enter(const char *pathname)
{
	if (is_self())
		return;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return;
	/* built in scratch (the stack is too small), then copied into the hash map */
	struct unlink_start *st = (void *)s->buf;
	__builtin_memset(&st->exe, 0, sizeof(st->exe));
	__builtin_memset(&st->target, 0, sizeof(st->target));
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	if (exe)
		file_id(exe, &st->exe);
	if (bpf_probe_read_user_str(st->path, KRSI_PATH_LEN, pathname) < 0)
		st->path[0] = 0;
	bpf_map_update_elem(&unlinks, &id, st, BPF_ANY);
}

static __always_inline void unlink_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct unlink_start *st = bpf_map_lookup_elem(&unlinks, &id);
	if (!st)
		return;
	/* krsi's own unlinks never get here: unlink_enter did not record them */
	struct krsi_unlink_event *ev = reserve(sizeof(*ev), KRSI_EV_UNLINK);
	if (!ev)
		goto out;
	fill_hdr(&ev->hdr, KRSI_EV_UNLINK);
	ev->ret = ret;
	ev->_pad = 0;
	ev->target.ino = 0;
	ev->target.dev = 0;
	ev->target.nlink = 0;
	if (ret == 0 && st->target.ino) {
		/* the inode vfs_unlink removed, with its link count after */
		ev->target = st->target;
		ev->target.nlink = st->target.nlink ? st->target.nlink - 1 : 0;
	} else if (ret == 0 && st->exe.ino && ev->hdr.exe.ino == st->exe.ino && ev->hdr.exe.dev == st->exe.dev &&
		   ev->hdr.exe.nlink < st->exe.nlink) {
		/* no vfs_unlink probe: still tell the caller's own executable, whose link count just dropped */
		ev->target = ev->hdr.exe;
	}
	bpf_probe_read_kernel_str(ev->path, KRSI_PATH_LEN, st->path);
	bpf_ringbuf_submit(ev, 0);
out:
	bpf_map_delete_elem(&unlinks, &id);
}

SEC("tp/syscalls/sys_enter_unlink")
int krsi_unlink_enter(struct sys_enter_ctx *ctx)
{
	unlink_enter((const char *)ctx->args[0]);
	return 0;
}

SEC("tp/syscalls/sys_exit_unlink")
int krsi_unlink_exit(struct sys_exit_ctx *ctx)
{
	unlink_exit(ctx->ret);
	return 0;
}

SEC("tp/syscalls/sys_enter_unlinkat")
int krsi_unlinkat_enter(struct sys_enter_ctx *ctx)
{
	if (ctx->args[2] & 0x200)  /* AT_REMOVEDIR: rmdir, not an unlink */
		return 0;
	unlink_enter((const char *)ctx->args[1]);
	return 0;
}

SEC("tp/syscalls/sys_exit_unlinkat")
int krsi_unlinkat_exit(struct sys_exit_ctx *ctx)
{
	unlink_exit(ctx->ret);
	return 0;
}

/* the inode an unlink syscall removes (vfs_unlink(idmap, dir, dentry, ...), kernel 5.12 and later);
 * only inside an unlink the sys_enter programs above recorded, so kernel-internal unlinks are ignored */
SEC("kprobe/vfs_unlink")
int BPF_KPROBE(krsi_vfs_unlink, void *idmap, struct inode *dir, struct dentry *dentry)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct unlink_start *st = bpf_map_lookup_elem(&unlinks, &id);
	if (!st || st->target.ino)
		return 0;  /* the first call is the one the caller asked for (overlayfs calls it again on its upper layer) */
	struct inode *ino = BPF_CORE_READ(dentry, d_inode);
	st->target.ino = BPF_CORE_READ(ino, i_ino);
	st->target.dev = BPF_CORE_READ(ino, i_sb, s_dev);
	st->target.nlink = BPF_CORE_READ(ino, __i_nlink);
	return 0;
}

/* ---- mprotect (start, len, prot) ---- */
static __always_inline void mprotect(struct sys_enter_ctx *ctx)
{
	if (is_self())
		return;  /* before reserving: node's JIT mprotects a lot */
	struct krsi_mprotect_event *ev = reserve(sizeof(*ev), KRSI_EV_MPROTECT);
	if (!ev)
		return;
	fill_hdr(&ev->hdr, KRSI_EV_MPROTECT);
	ev->start = ctx->args[0];
	ev->len = ctx->args[1];
	ev->prot = ctx->args[2];
	ev->_pad = 0;
	bpf_ringbuf_submit(ev, 0);
}

SEC("tp/syscalls/sys_enter_mprotect")
int krsi_mprotect(struct sys_enter_ctx *ctx)
{
	mprotect(ctx);
	return 0;
}

SEC("tp/syscalls/sys_enter_pkey_mprotect")
int krsi_pkey_mprotect(struct sys_enter_ctx *ctx)
{
	mprotect(ctx);
	return 0;
}

/* ---- module load and unload: optional (user space turns autoload off when the kernel has no modules) ---- */

/* finit_module in flight: its fd, so that module_load (in the same call) names the file the module came from */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);   /* pid_tgid */
	__type(value, __s32); /* fd */
} finit_fds SEC(".maps");

SEC("tp/syscalls/sys_enter_finit_module")
int krsi_finit_enter(struct sys_enter_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__s32 fd = ctx->args[0];

	bpf_map_update_elem(&finit_fds, &id, &fd, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_exit_finit_module")
int krsi_finit_exit(struct sys_exit_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	bpf_map_delete_elem(&finit_fds, &id);
	return 0;
}

/* the file of this task's finit_module fd, or NULL (init_module from memory) */
static __always_inline struct file *finit_file(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	__s32 *fd = bpf_map_lookup_elem(&finit_fds, &id);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt;
	struct file **fds, *f = 0;

	if (!fd || *fd < 0)
		return 0;
	fdt = BPF_CORE_READ(task, files, fdt);
	if ((__u32)*fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &fds[*fd]);
	return f;
}

static __always_inline void module_event(struct module *mod, __u32 kind)
{
	if (is_self())
		return;
	struct krsi_module_event *ev = reserve(sizeof(*ev), kind);
	if (!ev)
		return;
	fill_hdr(&ev->hdr, kind);
	BPF_CORE_READ_STR_INTO(&ev->name, mod, name);
	ev->file.ino = 0;
	ev->file.dev = 0;
	ev->file.nlink = 0;
	ev->path[0] = 0;
	if (kind == KRSI_EV_MODULE_LOAD) {
		struct file *f = finit_file();
		__u32 zero = 0;
		struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);

		if (f) {
			file_id(f, &ev->file);
			if (s) {
				exe_path(s, f);   /* the walk exec uses, in the per-CPU scratch (no exec runs on this CPU meanwhile) */
				bpf_probe_read_kernel(ev->path, KRSI_PATH_LEN, s->ev.exe_path);
			}
		}
	}
	bpf_ringbuf_submit(ev, 0);
}

/* ---- the kernel's own module view: every struct module seen loading (or seeded by user space from
 * kallsyms at start), until it is freed. A module that unlinks itself from the module list, hides its
 * sysfs directory or filters /proc/modules stays in this map; krsi_module_iter says, for each, whether it
 * is still on the list and in sysfs (signals/module-inventory.ts compares that with /proc/modules and
 * /sys/module). Not LRU: nothing leaves it but module_free; a full map is counted in module_seen_full. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);   /* struct module * */
	__type(value, struct krsi_module_seen);
} module_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} module_seen_full SEC(".maps");

static __always_inline void module_record(struct module *mod)
{
	__u64 key = (__u64)mod;
	__u32 zero = 0;
	struct krsi_module_seen v = { .ts = bpf_ktime_get_boot_ns() };

	BPF_CORE_READ_STR_INTO(&v.name, mod, name);
	if (bpf_map_update_elem(&module_seen, &key, &v, BPF_ANY)) {
		__u64 *n = bpf_map_lookup_elem(&module_seen_full, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
}

/* what the kernel says of each recorded module now: one struct krsi_module_view per entry, read by user
 * space through an iterator link on module_seen (a read of the struct module: probe reads, never a fault) */
SEC("iter/bpf_map_elem")
int krsi_module_iter(struct bpf_iter__bpf_map_elem *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	__u64 *key = ctx->key;
	struct krsi_module_seen *seen = ctx->value;
	struct krsi_module_view v = {};
	struct list_head *self, *next, *prev;
	struct module *mod;

	if (!key || !seen)
		return 0;   /* the end of the walk */
	mod = (struct module *)*key;
	v.addr = *key;
	v.ts = seen->ts;
	v.seeded = seen->seeded;
	__builtin_memcpy(v.recorded, seen->name, KRSI_MODNAME_LEN);
	if (BPF_CORE_READ_STR_INTO(&v.name, mod, name) > 0)
		v.flags |= KRSI_MODVIEW_READABLE;
	/* on the list iff both neighbours point back at it (list_del poisons next/prev, list_del_init points
	 * them at itself; a poisoned pointer fails the probe read and reads 0) */
	self = (void *)mod + bpf_core_field_offset(struct module, list);
	next = BPF_CORE_READ(mod, list.next);
	prev = BPF_CORE_READ(mod, list.prev);
	if (next && prev && next != self && BPF_CORE_READ(next, prev) == self && BPF_CORE_READ(prev, next) == self)
		v.flags |= KRSI_MODVIEW_LINKED;
	if (BPF_CORE_READ(mod, mkobj.kobj.sd))
		v.flags |= KRSI_MODVIEW_SYSFS;
	v.state = BPF_CORE_READ(mod, state);
	bpf_seq_write(seq, &v, sizeof(v));
	return 0;
}

SEC("tp_btf/module_load")
int BPF_PROG(krsi_module_load, struct module *mod)
{
	module_record(mod);   /* before anything can fail: a lost event must not lose the module too */
	module_event(mod, KRSI_EV_MODULE_LOAD);
	return 0;
}

/* free_module(): the module leaves the kernel, by delete_module (rmmod) or after its init failed. A
 * module that hides itself (list_del of its own list entry) never gets here: the hidden-module rule
 * tells the two apart with this event. */
SEC("tp_btf/module_free")
int BPF_PROG(krsi_module_unload, struct module *mod)
{
	__u64 key = (__u64)mod;

	bpf_map_delete_elem(&module_seen, &key);   /* it leaves the kernel: no longer in any view */
	module_event(mod, KRSI_EV_MODULE_UNLOAD);
	return 0;
}
