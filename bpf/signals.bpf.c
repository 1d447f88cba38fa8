// SPDX-License-Identifier: GPL-2.0
/* signals.bpf.c - krsi's signal programs: exec, fork, exit, unlink, rename, truncate (running executables),
 * mprotect, mmap, module load and unload.
 * Every event starts with struct krsi_hdr. Rare kinds go into the ring buffer "events", mprotect and mmap
 * (filtered in the kernel, still the bulk) into "mem_events": a flood of one cannot push out the other.
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
#include "lsm.h"   /* earlier(): the LSM signal programs pass an earlier ret on */

char LICENSE[] SEC("license") = "GPL";

#define KRSI_SCRATCH_LEN 4096   /* string scratch: one environment string, the exe path walk */
#define KRSI_PATH_DEPTH  64     /* path components walked at most */
#define KRSI_ENV_STRINGS 16384  /* environment strings (and pieces of long ones) read at most: flagged past it */
#define KRSI_LDSO_STEPS  256    /* argv strings (and pieces) the ld.so option scan reads at most */
#define KRSI_AUXV_WORDS  64     /* words of mm->saved_auxv read (AT_VECTOR_SIZE: 52 on x86-64) */
#define AT_NULL          0
#define AT_BASE          7
#define TMPFS_MAGIC      0x01021994
#define HUGETLBFS_MAGIC  0x958458f6
#ifndef barrier_var
#define barrier_var(var) asm volatile("" : "+r"(var))
#endif

/* ---- the kernel fields we read (CO-RE relocated against the running kernel's BTF) ---- */
struct qstr { const unsigned char *name; } __attribute__((preserve_access_index));
struct file_system_type { const char *name; } __attribute__((preserve_access_index));
struct super_block {
	__u32 s_dev;
	unsigned long s_magic;
	struct file_system_type *s_type;
} __attribute__((preserve_access_index));
struct inode {
	unsigned short i_mode;
	unsigned long i_ino;
	struct super_block *i_sb;
	unsigned int __i_nlink;
} __attribute__((preserve_access_index));
struct hlist_bl_node { struct hlist_bl_node *next, **pprev; } __attribute__((preserve_access_index));
struct dentry {
	struct hlist_bl_node d_hash;
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
struct file { struct inode *f_inode; struct path f_path; unsigned int f_mode; } __attribute__((preserve_access_index));
struct mm_struct {
	struct file *exe_file;
	unsigned long arg_start, arg_end, env_start, env_end;
	unsigned long saved_auxv[2];   /* AT_VECTOR_SIZE words: only its offset is used */
	unsigned long brk;             /* the program break (memory: brk under READ_IMPLIES_EXEC) */
	unsigned long start_stack;     /* memory: the stack an executable-stack image starts with */
} __attribute__((preserve_access_index));
struct fdtable { unsigned int max_fds; struct file **fd; } __attribute__((preserve_access_index));
struct files_struct { struct fdtable *fdt; } __attribute__((preserve_access_index));
typedef struct { int counter; } atomic_t;
struct signal_struct { atomic_t live; } __attribute__((preserve_access_index));
struct task_struct {
	int pid;
	int tgid;
	int exit_code;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct files_struct *files;
	struct signal_struct *signal;
	unsigned int personality;
} __attribute__((preserve_access_index));
/* vm_flags is a plain field up to 6.2 and a member of an anonymous union from 6.3: CO-RE finds it in both */
struct vm_area_struct {
	unsigned long vm_start, vm_end;
	unsigned long vm_flags;
	void *anon_vma;
	struct file *vm_file;
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

/* ---- maps ---- */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} events SEC(".maps");

/* the bulk ring: mprotect and mmap events, so that a flood of them cannot push out the rare kinds in
 * "events" (exec, fork, exit, unlink, modules...) */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23);
} mem_events SEC(".maps");

/* reserve failures per event kind: krsi never drops silently */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KRSI_EV_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* the environment variables recorded at exec besides every LD_*: names, NUL-padded (filled by
 * signals/live.ts before the programs attach) */
struct watch_name { char name[KRSI_ENV_NAME_LEN]; };
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct watch_name);
	__type(value, __u32);
} watch_env SEC(".maps");

/* per-CPU scratch: the exec event is built here (too big for the stack), plus a string buffer and the
 * watch_env key */
struct scratch {
	struct krsi_exec_event ev;
	char buf[KRSI_SCRATCH_LEN];
	char key[KRSI_ENV_NAME_LEN];
	/* the state of the env and ld.so bpf_loop walks, here and not on the stack: 6.1's verifier checks a
	 * callback once, with the caller's stack values as constants, and drops the branches they rule out
	 * (an index still 0, a flag still false); a map value is unknown to it */
	__u64 lp, lend;   /* the string at lp, the area's end */
	__u32 lidx;       /* ld.so scan: argv index of the string at lp; path walk: bytes written */
	__u8 lcont;       /* inside a string longer than the scratch buffer: its rest is skipped */
	__u8 lopt;        /* ld.so scan: the string before was an option ("--..."): this one may be its value */
	__u8 ldone;       /* ld.so scan: reached the program name or argv's end */
	__u8 _lpad;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");


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

/* reserve a ring buffer record, counting failures (the rare kinds' ring) */
static __always_inline void *reserve(__u64 size, __u32 kind)
{
	void *ev = bpf_ringbuf_reserve(&events, size, 0);
	if (!ev)
		count_lost(kind);
	return ev;
}

/* the same on the bulk ring (mprotect, mmap) */
static __always_inline void *reserve_mem(__u64 size, __u32 kind)
{
	void *ev = bpf_ringbuf_reserve(&mem_events, size, 0);
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
	bool done;
	bool pseudo;   /* ended at a dentry that is its own parent but no mount's root: a pseudo file (memfd) */
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
	/* its own parent, not a mount's root: a pseudo dentry (memfd_create, alloc_file_pseudo); its name is the
	 * whole path, as d_path's simple_dname gives it ("/memfd:x (deleted)"): written, then done */
	struct dentry *up = BPF_CORE_READ(d, d_parent);
	__u32 off = c->s->lidx;  /* bytes written so far (in the map: see struct scratch) */
	if (off >= KRSI_PATH_LEN - 4)
		return 1;  /* full: the path stays truncated */
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	long n;
	if (up == d && off == 0) {
		/* a pseudo file (memfd): its name, cut if need be (memfd names reach 255 bytes) */
		c->pseudo = true;
		n = bpf_probe_read_kernel_str(c->s->buf, KRSI_PATH_LEN - 4, name);
	} else {
		n = bpf_probe_read_kernel_str(&c->s->buf[off], KRSI_PATH_LEN, name);
	}
	if (n <= 0 || off + n > KRSI_PATH_LEN - 4)
		return 1;  /* only whole components, and room left for the ".." mark */
	off += n;  /* n counts the NUL: it becomes the '/' separator */
	if (off - 1 < KRSI_SCRATCH_LEN)
		c->s->buf[off - 1] = '/';
	c->s->lidx = off;
	if (up == d) {
		c->done = true;  /* nothing above it */
		return 1;
	}
	c->dentry = up;
	return 0;
}

/* the path walk into ev.exe_path; true when it ended at a pseudo dentry */
static __always_inline bool exe_path(struct scratch *s, struct file *f)
{
	struct walk_ctx c = {
		.s = s,
		.dentry = BPF_CORE_READ(f, f_path.dentry),
		.vfsmnt = BPF_CORE_READ(f, f_path.mnt),
	};
	c.mnt = (void *)c.vfsmnt - bpf_core_field_offset(struct mount, mnt);
	s->lidx = 0;
	bpf_loop(KRSI_PATH_DEPTH, walk_step, &c, 0);
	__u32 off = s->lidx;
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
	return c.pseudo;
}

/* ---- exec: what the kernel knows of the file (link count in hdr.exe, mode, filesystem, memfd, deleted) ---- */
static __always_inline void exe_facts(struct scratch *s, struct file *f)
{
	struct krsi_exec_event *ev = &s->ev;
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	char name[8] = {};

	ev->i_mode = BPF_CORE_READ(ino, i_mode);
	ev->s_magic = BPF_CORE_READ(ino, i_sb, s_magic);
	ev->fs_type[0] = 0;
	bpf_probe_read_kernel_str(ev->fs_type, KRSI_FS_NAME_LEN, BPF_CORE_READ(ino, i_sb, s_type, name));
	bool pseudo = exe_path(s, f);
	if (pseudo)
		ev->flags |= KRSI_EXEC_PSEUDO;
	/* d_unlinked(): unhashed and not a root; a pseudo dentry was never hashed (d_path says "(deleted)" too) */
	if (!BPF_CORE_READ(d, d_hash.pprev) && (pseudo || d != BPF_CORE_READ(f, f_path.mnt, mnt_root)))
		ev->flags |= KRSI_EXEC_DELETED;
	/* memfd_create names its file "memfd:<name>" on the internal shmem (or hugetlbfs) mount */
	bpf_probe_read_kernel(name, 6, BPF_CORE_READ(d, d_name.name));
	if (pseudo && (ev->s_magic == TMPFS_MAGIC || ev->s_magic == HUGETLBFS_MAGIC) &&
	    name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' && name[4] == 'd' && name[5] == ':')
		ev->flags |= KRSI_EXEC_MEMFD;
}

/* a memfd: a pseudo dentry (its own parent) named "memfd:..." on shmem or hugetlbfs */
static __always_inline bool is_memfd(struct file *f)
{
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	unsigned long magic = BPF_CORE_READ(f, f_inode, i_sb, s_magic);
	char name[8] = {};

	if (BPF_CORE_READ(d, d_parent) != d || (magic != TMPFS_MAGIC && magic != HUGETLBFS_MAGIC))
		return false;
	bpf_probe_read_kernel(name, 6, BPF_CORE_READ(d, d_name.name));
	return name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' && name[4] == 'd' && name[5] == ':';
}

/* ---- exec: a script run from an fd (fexecve, execveat(fd, "", AT_EMPTY_PATH), execve("/proc/self/fd/N")):
 * bprm->file is its interpreter, and the script is still open (not close-on-exec, or the kernel refuses)
 * under the fd bprm->filename names ---- */
static __always_inline void script_facts(struct krsi_exec_event *ev, struct file *exe)
{
	const char *f = ev->filename;
	__u32 n = 0;
	int j, start;

	if (f[0] == '/' && f[1] == 'd' && f[2] == 'e' && f[3] == 'v' && f[4] == '/' && f[5] == 'f' && f[6] == 'd' && f[7] == '/')
		start = 8;    /* "/dev/fd/N": what the kernel names an fd exec */
	else if (f[0] == '/' && f[1] == 'p' && f[2] == 'r' && f[3] == 'o' && f[4] == 'c' && f[5] == '/' && f[6] == 's' &&
		 f[7] == 'e' && f[8] == 'l' && f[9] == 'f' && f[10] == '/' && f[11] == 'f' && f[12] == 'd' && f[13] == '/')
		start = 14;   /* execve("/proc/self/fd/N"): the same table (self is the execing process) */
	else
		return;
	for (j = start; j < start + 10; j++) {
		char c = f[j & (KRSI_PATH_LEN - 1)];
		if (c < '0' || c > '9')
			break;
		n = n * 10 + (c - '0');
	}
	if (j == start || j == start + 10 || f[j & (KRSI_PATH_LEN - 1)] != 0)
		return;   /* "/dev/fd/N/name": a file under a directory fd, resolved by path */
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *sf = 0;
	if (n >= BPF_CORE_READ(fdt, max_fds) || bpf_probe_read_kernel(&sf, sizeof(sf), fds + n) || !sf)
		return;
	if (BPF_CORE_READ(sf, f_inode) == BPF_CORE_READ(exe, f_inode))
		return;   /* the binary itself: its facts are the exe's */
	ev->flags |= KRSI_EXEC_SCRIPT_FD;
	file_id(sf, &ev->script);
	if (is_memfd(sf))
		ev->flags |= KRSI_EXEC_SCRIPT_MEMFD;
}

/* ---- exec: the string area (matched environment strings, then the ld.so option block) ---- */

/* append s->buf's n bytes (a string and its NUL, n <= KRSI_SCRATCH_LEN) at area offset off; false when
 * it does not fit (the caller flags it) */
static __always_inline bool area_put(struct scratch *s, __u32 off, long n)
{
	__u32 len = n;
	if (len == 0 || len > KRSI_SCRATCH_LEN || off >= KRSI_ENV_AREA || len > KRSI_ENV_AREA - off)
		return false;
	barrier_var(off);
	off &= KRSI_ENV_AREA - 1;
	barrier_var(len);
	if (len > KRSI_SCRATCH_LEN)
		return false;  /* for the verifier: the bound on the very register passed */
	return bpf_probe_read_kernel(&s->ev.area[off], len, s->buf) == 0;
}

/* the variable s->buf starts with is watched: any LD_* (the dynamic loader's), or a name in watch_env.
 * Only "NAME=..." with a name of 1..KRSI_ENV_NAME_LEN-1 bytes: a string without '=' is no variable to
 * ld.so or getenv(3) */
static __always_inline bool env_watched(struct scratch *s)
{
	int eq = -1;
	__builtin_memset(s->key, 0, KRSI_ENV_NAME_LEN);
	for (int j = 0; j < KRSI_ENV_NAME_LEN; j++) {
		char ch = s->buf[j];
		if (ch == '=') {
			eq = j;
			break;
		}
		if (ch == 0)
			break;
		if (j < KRSI_ENV_NAME_LEN - 1)
			s->key[j] = ch;
	}
	if (eq <= 0)
		return false;
	if (s->buf[0] == 'L' && s->buf[1] == 'D' && s->buf[2] == '_')
		return true;
	return bpf_map_lookup_elem(&watch_env, s->key) != 0;
}

/* the loops' context: the scratch map value, which holds their state */
struct loop_ctx {
	struct scratch *s;
};

static long env_step(__u32 i, struct loop_ctx *c)
{
	struct scratch *s = c->s;
	if (s->lp >= s->lend)
		return 1;
	long n = bpf_probe_read_user_str(s->buf, KRSI_SCRATCH_LEN, (void *)s->lp);
	if (n <= 0)
		return 1;  /* unreadable: the walk stops short (flagged by the caller) */
	bool whole = n < KRSI_SCRATCH_LEN;
	/* the rest of a string longer than the scratch buffer is skipped, never read as a new string */
	if (!s->lcont) {
		s->ev.env_strings++;
		if (env_watched(s)) {
			/* every occurrence, in order: the decoder knows which one each reader takes */
			if (!whole)
				s->ev.flags |= KRSI_EXEC_ENV_CUT;
			if (area_put(s, s->ev.env_len, n))
				s->ev.env_len += n;
			else
				s->ev.flags |= KRSI_EXEC_ENV_FULL;
		}
	}
	s->lp += whole ? n : n - 1;
	s->lcont = !whole;
	return 0;
}

/* ---- exec: the dynamic loader run as a program ("ld.so --preload x.so prog") takes its options from
 * argv[1..] up to the program's name: that block is copied whole, however long argv[0] is ---- */
static long ldso_step(__u32 i, struct loop_ctx *c)
{
	struct scratch *s = c->s;
	if (s->lp >= s->lend) {
		s->ldone = 1;
		return 1;
	}
	long n = bpf_probe_read_user_str(s->buf, KRSI_SCRATCH_LEN, (void *)s->lp);
	if (n <= 0)
		return 1;
	bool whole = n < KRSI_SCRATCH_LEN;
	__u64 next = s->lp + (whole ? n : n - 1);
	if (!s->lcont && s->lidx > 0) {
		bool dash = s->buf[0] == '-' && s->buf[1] == '-';
		if (!whole)
			s->ev.flags |= KRSI_EXEC_LDSO_TRUNC;  /* an option (or value) cut */
		if (!area_put(s, s->ev.env_len + s->ev.ldso_len, n)) {
			s->ev.flags |= KRSI_EXEC_LDSO_TRUNC;
			s->ldone = 1;
			return 1;
		}
		s->ev.ldso_len += n;
		if (!dash && !s->lopt) {
			/* the program: the options ended before it */
			s->ldone = 1;
			return 1;
		}
		s->lopt = dash;
	}
	s->lp = next;
	s->lcont = !whole;
	if (whole)
		s->lidx++;
	return 0;
}

/* no program interpreter: auxv AT_BASE is 0 (a static program, or the dynamic loader itself). saved_auxv
 * is read as a block of (type, value) pairs up to AT_NULL (its length differs between arches) */
static __always_inline bool no_interp(struct scratch *s, struct mm_struct *mm)
{
	unsigned long *aux = (void *)s->buf;
	if (bpf_probe_read_kernel(aux, KRSI_AUXV_WORDS * sizeof(long), (void *)mm + bpf_core_field_offset(struct mm_struct, saved_auxv)))
		return false;
	for (int i = 0; i + 1 < KRSI_AUXV_WORDS; i += 2) {
		if (aux[i] == AT_NULL)
			break;
		if (aux[i] == AT_BASE)
			return aux[i + 1] == 0;
	}
	return false;
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
	ev->flags = 0;
	ev->env_len = 0;
	ev->ldso_len = 0;
	ev->env_strings = 0;

	/* the file executed (for scripts: the interpreter), what the kernel knows of it, and the name asked for */
	struct file *f = BPF_CORE_READ(bprm, file);
	file_id(f, &ev->hdr.exe);
	exe_facts(s, f);
	bpf_probe_read_kernel_str(ev->filename, KRSI_PATH_LEN, BPF_CORE_READ(bprm, filename));
	__builtin_memset(&ev->script, 0, sizeof(ev->script));
	script_facts(ev, f);

	/* argv, NUL separated, bounded */
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	unsigned long as = BPF_CORE_READ(mm, arg_start), ae = BPF_CORE_READ(mm, arg_end);
	__u64 len = ae > as ? ae - as : 0;
	if (len > KRSI_ARGV_LEN) {
		len = KRSI_ARGV_LEN;
		ev->flags |= KRSI_EXEC_ARGV_TRUNC;
	}
	barrier_var(len);
	len &= (2 * KRSI_ARGV_LEN - 1);  /* for the verifier: a bounded unsigned size */
	ev->argv_len = 0;
	if (len > 0 && len <= KRSI_ARGV_LEN && bpf_probe_read_user(ev->argv, len, (void *)as) == 0)
		ev->argv_len = len;

	/* the watched environment variables: every occurrence, the whole environment (bounded) */
	struct loop_ctx lc = { .s = s };
	s->lp = BPF_CORE_READ(mm, env_start);
	s->lend = BPF_CORE_READ(mm, env_end);
	s->lcont = 0;
	bpf_loop(KRSI_ENV_STRINGS, env_step, &lc, 0);
	if (s->lp < s->lend)
		ev->flags |= KRSI_EXEC_ENV_STRINGS;

	/* a program without interpreter: its leading options, which ld.so run as a program obeys */
	if (no_interp(s, mm)) {
		ev->flags |= KRSI_EXEC_NO_INTERP;
		s->lp = as;
		s->lend = ae;
		s->lidx = 0;
		s->lcont = 0;
		s->lopt = 0;
		s->ldone = 0;
		bpf_loop(KRSI_LDSO_STEPS, ldso_step, &lc, 0);
		if (!s->ldone)
			ev->flags |= KRSI_EXEC_LDSO_TRUNC;
	}

	/* the record ends where the string area's content does */
	__u64 size = __builtin_offsetof(struct krsi_exec_event, area) + (__u64)ev->env_len + ev->ldso_len;
	if (size > sizeof(*ev))
		size = sizeof(*ev);
	barrier_var(size);
	if (size > sizeof(*ev))
		return 0;
	if (bpf_ringbuf_output(&events, ev, size, 0))
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

/* ---- files: unlink, rename and truncate, and the running executables they may hit (issue 11) ----
 * run_inode holds every inode a process runs (its exe, or the script an interpreter was exec'd for), with
 * how many processes run it and some of their pids; run_tgid says what each process holds. The syscall
 * tracepoints follow unlink/unlinkat, rename/renameat/renameat2, truncate/ftruncate and open/creat with
 * O_TRUNC. On BPF-LSM kernels the inode_unlink, inode_rename, path_truncate and file_truncate hooks name the
 * inode (io_uring too); elsewhere (tracepoint-only kernels) the running inode whose link count or size
 * dropped during the call is the target: run_inode is walked at the call's entry (to refresh) and at its
 * exit (to see what changed), io_uring's unlinkat/renameat by its own tracepoints the same way. */
struct sys_enter_ctx { __u64 _common; __s32 nr; __u32 _pad; __u64 args[6]; };
struct sys_exit_ctx { __u64 _common; __s32 nr; __u32 _pad; __s64 ret; };

/* kernel fields only this section reads (the ___files suffix: CO-RE matches task_struct, inode, ...) */
struct fdtable___files { unsigned int max_fds; struct file **fd; } __attribute__((preserve_access_index));
struct files_struct___files { struct fdtable___files *fdt; } __attribute__((preserve_access_index));
struct task_struct___files {
	unsigned int flags;
	struct files_struct___files *files;
} __attribute__((preserve_access_index));
struct inode___files { long long i_size; } __attribute__((preserve_access_index));
struct linux_binprm___files {
	struct file *file;
	const char *filename;
	const char *interp;
} __attribute__((preserve_access_index));

#define PF_IO_WORKER   0x10
#define O_TRUNC_FLAG   01000
#define ETXTBSY_ERR    26
#define RENAME_EXCHANGE_FLAG 2
#define IORING_OP_RENAMEAT 35
#define IORING_OP_UNLINKAT 36
#define SCRIPT_OPENS   32   /* opens after an interpreted exec in which the script is looked for (execs in between included) */
#define SCRIPT_OPENS_ARGV 128  /* the same for `sh script`, `python3 x.py`: the interpreter starts up first */

/* set by user space when the LSM programs below are loaded: the walks are not needed then */
const volatile __u32 lsm_active = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct krsi_inode_key);
	__type(value, struct krsi_run_inode);
} run_inode SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct krsi_run_tgid);
} run_tgid SEC(".maps");

/* updates that failed (map full), by map: RUN_FULL_INODE, RUN_FULL_TGID, RUN_FULL_NAMES (signals/live.ts
 * reports them as a `lost` event of class `running`) */
#define RUN_FULL_INODE 0
#define RUN_FULL_TGID  1
#define RUN_FULL_NAMES 2
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} run_full SEC(".maps");

/* tracepoint-only kernels: running inodes by the hash of their name (the last component they were exec'd or
 * opened by), so that an unlink, rename or truncate(path) checks the few running inodes its name could be,
 * not all of them; a name with more inodes than RUN_NAME_INODES falls back to walking run_inode */
#define RUN_NAME_INODES 4
#define RUN_UNNAMED 1  /* the run_names entry of running inodes that lost the name they were indexed by but kept a link */
struct run_name {
	struct krsi_inode_key keys[RUN_NAME_INODES];  /* ino 0: free */
	__u32 overflow;  /* how many more inodes have this name than there are slots (each in run_over) */
	__u32 _pad;
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct run_name);
} run_names SEC(".maps");

/* the inodes a run_names entry had no slot for, so that the entry's overflow count goes down when they leave */
struct run_over_key {
	__u64 name;
	struct krsi_inode_key key;
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct run_over_key);
	__type(value, __u32);
} run_over SEC(".maps");

/* an interpreted exec: the script's name, until the interpreter opens it (keyed by tgid) */
struct script_wait {
	__u32 opens;   /* opens left to look at */
	__u32 tid;     /* the thread whose open matched (0: none yet) */
	char path[KRSI_PATH_LEN];
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct script_wait);
} script_wait SEC(".maps");

/* a file syscall in flight: sys_enter -> (LSM hook, vfs_unlink kprobe) -> sys_exit, keyed by pid_tgid */
struct fileop {
	struct krsi_file_id exe;     /* the caller's executable and its link count before the call */
	struct krsi_file_id target;  /* the inode an LSM hook or vfs_unlink saw, its link count before (ino 0: not seen) */
	struct krsi_file_id moved;   /* rename (BPF-LSM): a running inode moved to the new name (ino 0: none) */
	__u32 kind;                  /* KRSI_EV_UNLINK, _RENAME, _TRUNCATE */
	__u32 route;                 /* of target */
	__u32 oflags;                /* open: flags; rename: renameat2 flags */
	__s32 fd;                    /* ftruncate: the fd */
	__u32 script;                /* open: the script an interpreted exec waits for */
	__u32 walk;                  /* tracepoint-only: the name is ambiguous, walk run_inode */
	struct cand {                /* tracepoint-only: running inodes of the path's name, as at entry */
		struct krsi_inode_key key;
		__u64 inode;
		__s64 size;
		__u32 nlink;
		__u32 _pad;
	} cand[2 * RUN_NAME_INODES];  /* the path's name, then RUN_UNNAMED */
	char path[KRSI_PATH_LEN];
	char path2[KRSI_PATH_LEN];
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct fileop);
} fileops SEC(".maps");

/* io_uring unlinkat/renameat submitted (tracepoint-only kernels): request pointer -> event kind */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} uring_ops SEC(".maps");

static __always_inline void inode_key(struct inode *ino, struct krsi_inode_key *k)
{
	k->ino = BPF_CORE_READ(ino, i_ino);
	k->dev = BPF_CORE_READ(ino, i_sb, s_dev);
	k->_pad = 0;
}

static __always_inline void count_full(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&run_full, &which);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* FNV-1a of the last component of a NUL-terminated path in buf (0 for an empty name) */
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL
static __always_inline __u64 name_hash(const char *buf)
{
	__u64 h = FNV_OFFSET;
	bool any = false;
	for (int i = 0; i < KRSI_PATH_LEN; i++) {
		char c = buf[i];
		if (!c)
			break;
		if (c == '/') {
			h = FNV_OFFSET;
			any = false;
			continue;
		}
		h = (h ^ (__u8)c) * FNV_PRIME;
		any = true;
	}
	return any ? h : 0;
}

/* the last component of a path of len bytes (no NUL) is empty, `.` or `..`: it does not name the entry itself */
static __always_inline char path_at(const char *buf, long i)
{
	return i >= 0 ? buf[i & (KRSI_PATH_LEN - 1)] : '/';
}

static __always_inline bool name_unsure(const char *buf, long len)
{
	if (len <= 0)
		return true;
	char a = path_at(buf, len - 1), b = path_at(buf, len - 2), c = path_at(buf, len - 3);
	return a == '/' || (a == '.' && (b == '/' || (b == '.' && c == '/')));
}

/* the hash of a dentry's own name (read into scratch) */
static __always_inline __u64 dentry_hash(struct dentry *d)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s || !d)
		return 0;
	/* the second half of the scratch buffer: the first may hold a record being built */
	char *buf = &s->buf[KRSI_SCRATCH_LEN / 2];
	if (bpf_probe_read_kernel_str(buf, KRSI_PATH_LEN, BPF_CORE_READ(d, d_name.name)) <= 0)
		return 0;
	return name_hash(buf);
}

static __always_inline void name_add(__u64 h, struct krsi_inode_key *k)
{
	if (!h || lsm_active)
		return;
	struct run_name *n = bpf_map_lookup_elem(&run_names, &h);
	if (!n) {
		struct run_name fresh = {};
		fresh.keys[0] = *k;
		if (!bpf_map_update_elem(&run_names, &h, &fresh, BPF_NOEXIST))
			return;
		n = bpf_map_lookup_elem(&run_names, &h);
		if (!n) {
			count_full(RUN_FULL_NAMES);
			return;
		}
	}
	int free = -1;
	for (int i = 0; i < RUN_NAME_INODES; i++) {
		if (n->keys[i].ino == k->ino && n->keys[i].dev == k->dev)
			return;
		if (!n->keys[i].ino && free < 0)
			free = i;
	}
	if (free >= 0 && free < RUN_NAME_INODES) {
		n->keys[free] = *k;
		return;
	}
	/* no slot: the name is checked by a walk until the inodes past the slots leave (name_del) */
	struct run_over_key ok = { .name = h, .key = *k };
	__u32 one = 1;
	if (!bpf_map_update_elem(&run_over, &ok, &one, BPF_NOEXIST))
		__sync_fetch_and_add(&n->overflow, 1);
	else if (!bpf_map_lookup_elem(&run_over, &ok)) {
		count_full(RUN_FULL_NAMES);
		n->overflow += 1;  /* never taken back: walked for good rather than missed */
	}
}

static __always_inline void name_del(__u64 h, struct krsi_inode_key *k)
{
	if (!h)
		return;
	struct run_name *n = bpf_map_lookup_elem(&run_names, &h);
	if (!n)
		return;
	bool empty = true, found = false;
	for (int i = 0; i < RUN_NAME_INODES; i++) {
		if (n->keys[i].ino == k->ino && n->keys[i].dev == k->dev) {
			n->keys[i].ino = 0;
			found = true;
		}
		if (n->keys[i].ino)
			empty = false;
	}
	if (!found) {
		struct run_over_key ok = { .name = h, .key = *k };
		if (!bpf_map_delete_elem(&run_over, &ok) && n->overflow)
			__sync_fetch_and_add(&n->overflow, -1);
	}
	if (empty && !n->overflow)
		bpf_map_delete_elem(&run_names, &h);
}

/* one more process runs the inode (ptr: its struct inode *) */
static __always_inline void run_acquire(struct krsi_inode_key *k, struct inode *ptr, __u32 tgid, __u64 name)
{
	struct krsi_run_inode *e = bpf_map_lookup_elem(&run_inode, k);
	if (!e) {
		struct krsi_run_inode fresh = {};
		fresh.inode = (__u64)ptr;
		fresh.nlink = BPF_CORE_READ(ptr, __i_nlink);
		fresh.size = BPF_CORE_READ((struct inode___files *)ptr, i_size);
		if (bpf_map_update_elem(&run_inode, k, &fresh, BPF_NOEXIST) && !bpf_map_lookup_elem(&run_inode, k)) {
			count_full(RUN_FULL_INODE);
			return;
		}
		e = bpf_map_lookup_elem(&run_inode, k);
		if (!e)
			return;
	}
	if (!e->inode)
		e->inode = (__u64)ptr;  /* seeded from user space: now the pointer is known */
	if (!e->name && name) {
		e->name = name;
		name_add(name, k);
	}
	__sync_fetch_and_add(&e->refs, 1);
	/* a free pid slot (best effort: two execs of one inode at the same instant may take the same slot) */
	for (int i = 0; i < KRSI_RUN_PIDS; i++) {
		if (e->pids[i] == 0 || e->pids[i] == tgid) {
			e->pids[i] = tgid;
			break;
		}
	}
}

/* a process no longer runs the inode: the entry goes with its last process */
static __always_inline void run_release(struct krsi_inode_key *k, __u32 tgid)
{
	if (!k->ino)
		return;
	struct krsi_run_inode *e = bpf_map_lookup_elem(&run_inode, k);
	if (!e)
		return;
	for (int i = 0; i < KRSI_RUN_PIDS; i++)
		if (e->pids[i] == tgid)
			e->pids[i] = 0;
	__sync_fetch_and_add(&e->refs, -1);
	if ((__s32)e->refs <= 0) {
		name_del(e->name, k);
		name_del(RUN_UNNAMED, k);
		bpf_map_delete_elem(&run_inode, k);
	}
}

static __always_inline void run_forget(__u32 tgid)
{
	struct krsi_run_tgid *t = bpf_map_lookup_elem(&run_tgid, &tgid);
	if (!t)
		return;
	struct krsi_run_tgid old = *t;
	bpf_map_delete_elem(&run_tgid, &tgid);
	run_release(&old.exe, tgid);
	run_release(&old.script, tgid);
}

/* an interpreter's executable name (its last component): sh, bash, python3.11, ... (a version may follow) */
static __always_inline bool word(const char *n, const char *w, int len)
{
	for (int i = 0; i < len; i++)
		if (n[i] != w[i])
			return false;
	char c = n[len];
	return c == 0 || c == '.' || (c >= '0' && c <= '9');
}

static __always_inline bool interpreter(struct dentry *d)
{
	char n[16] = {};
	if (bpf_probe_read_kernel_str(n, sizeof(n) - 8, BPF_CORE_READ(d, d_name.name)) <= 0)
		return false;
	return word(n, "sh", 2) || word(n, "bash", 4) || word(n, "dash", 4) || word(n, "zsh", 3) || word(n, "ksh", 3) ||
	       word(n, "mksh", 4) || word(n, "ash", 3) || word(n, "busybox", 7) || word(n, "python", 6) || word(n, "perl", 4) ||
	       word(n, "ruby", 4) || word(n, "node", 4) || word(n, "php", 3) || word(n, "lua", 3) || word(n, "tclsh", 5) ||
	       word(n, "pwsh", 4) || word(n, "fish", 4);
}

/* exec: the new executable (and, for an interpreted file, the script once the interpreter opens it) */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(krsi_run_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	run_forget(tgid);
	struct krsi_run_tgid t = {};
	struct inode *ino = BPF_CORE_READ(bprm, file, f_inode);
	inode_key(ino, &t.exe);
	if (bpf_map_update_elem(&run_tgid, &tgid, &t, BPF_ANY)) {
		count_full(RUN_FULL_TGID);
		return 0;
	}
	run_acquire(&t.exe, ino, tgid, dentry_hash(BPF_CORE_READ(bprm, file, f_path.dentry)));

	/* binfmt_script / binfmt_misc changed the interpreter name: the file asked for is a script */
	struct linux_binprm___files *b = (void *)bprm;
	const char *filename = BPF_CORE_READ(b, filename);
	if (BPF_CORE_READ(b, interp) != filename) {
		__u32 zero = 0;
		struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
		if (!s)
			return 0;
		struct script_wait *w = (void *)s->buf;
		w->opens = SCRIPT_OPENS;
		w->tid = 0;
		if (bpf_probe_read_kernel_str(w->path, KRSI_PATH_LEN, filename) > 0)
			bpf_map_update_elem(&script_wait, &tgid, w, BPF_ANY);
	} else if (!bpf_map_lookup_elem(&script_wait, &tgid) && interpreter(BPF_CORE_READ(bprm, file, f_path.dentry))) {
		/* `sh script.sh`, `python3 x.py`: an interpreter given a first argument that is no option: the
		 * script, if the interpreter opens that name (not for other programs: `gzip file` would "run" file) */
		__u32 zero = 0;
		struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
		if (!s)
			return 0;
		struct mm_struct *mm = BPF_CORE_READ(p, mm);
		unsigned long a = BPF_CORE_READ(mm, arg_start), end = BPF_CORE_READ(mm, arg_end);
		struct script_wait *w = (void *)s->buf;
		long n0 = bpf_probe_read_user_str(w->path, KRSI_PATH_LEN, (void *)a);
		if (n0 <= 0 || a + n0 >= end)
			return 0;  /* no argv[1] (or argv[0] longer than a path) */
		if (bpf_probe_read_user_str(w->path, KRSI_PATH_LEN, (void *)(a + n0)) <= 1 || w->path[0] == '-')
			return 0;
		w->opens = SCRIPT_OPENS_ARGV;
		w->tid = 0;
		bpf_map_update_elem(&script_wait, &tgid, w, BPF_ANY);
	}
	/* else a script's wait goes on: `#!/usr/bin/env sh` execs the interpreter that opens the script */
	return 0;
}

/* fork: the child runs what its parent runs */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(krsi_run_fork, struct task_struct *parent, struct task_struct *child)
{
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	__u32 ptgid = BPF_CORE_READ(parent, tgid), ctgid = BPF_CORE_READ(child, tgid);
	struct file *exe = BPF_CORE_READ(child, mm, exe_file);
	if (!exe)
		return 0;  /* a kernel thread */
	struct krsi_run_tgid t = {};
	struct inode *ino = BPF_CORE_READ(exe, f_inode);
	inode_key(ino, &t.exe);
	struct krsi_run_tgid *pt = bpf_map_lookup_elem(&run_tgid, &ptgid);
	if (pt)
		t.script = pt->script;
	if (bpf_map_update_elem(&run_tgid, &ctgid, &t, BPF_ANY)) {
		count_full(RUN_FULL_TGID);
		return 0;
	}
	run_acquire(&t.exe, ino, ctgid, dentry_hash(BPF_CORE_READ(exe, f_path.dentry)));
	if (t.script.ino)
		run_acquire(&t.script, 0, ctgid, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(krsi_run_exit, struct task_struct *p)
{
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	__u32 tgid = BPF_CORE_READ(p, tgid);
	run_forget(tgid);
	bpf_map_delete_elem(&script_wait, &tgid);
	return 0;
}

/* ---- the walk of run_inode (tracepoint-only kernels) ---- */
struct run_walk {
	struct krsi_inode_key key;  /* the running inode whose link count or size dropped (ino 0: none) */
	__u32 nlink;
	__u32 detect;               /* 0: only refresh the remembered counts */
};

static long run_check(struct bpf_map *map, struct krsi_inode_key *key, struct krsi_run_inode *v, struct run_walk *c)
{
	if (!v->inode)
		return 0;  /* seeded from /proc: no pointer to read */
	struct inode *ino = (void *)v->inode;
	/* still that inode: a pointer can outlive its last process for a moment (exit_mm runs before the exit tracepoint) */
	if (BPF_CORE_READ(ino, i_ino) != key->ino)
		return 0;
	__u32 n = BPF_CORE_READ(ino, __i_nlink);
	__s64 size = BPF_CORE_READ((struct inode___files *)ino, i_size);
	if (n == v->nlink && size == v->size)
		return 0;
	bool drop = n < v->nlink || size < v->size;
	v->nlink = n;
	v->size = size;
	if (c->detect && drop && !c->key.ino) {
		c->key = *key;
		c->nlink = n;
	}
	return 0;
}

static __always_inline void run_walk(struct run_walk *c)
{
	bpf_for_each_map_elem(&run_inode, run_check, c, 0);
}

/* ---- the event ---- */
static __always_inline bool runs(__u32 tgid, struct krsi_inode_key *k)
{
	struct krsi_run_tgid *t = bpf_map_lookup_elem(&run_tgid, &tgid);
	if (!t)
		return false;
	return (t->exe.ino == k->ino && t->exe.dev == k->dev) || (t->script.ino == k->ino && t->script.dev == k->dev);
}

/* emit a file event: `t` is the target (ino 0: unknown), `flags` KRSI_FILE_* bits; only what a rule can use:
 * a target some process runs, the kernel refusing a running one (ETXTBSY), or (unlink) the caller's own
 * executable. Anything else (a failed unlink, a file nobody runs) is not sent: any user could fill the rare
 * ring with unlink("/nonexistent") otherwise */
static __always_inline void emit_file(struct fileop *op, __u32 kind, struct krsi_file_id *t, __u32 route, __u32 flags, long ret)
{
	struct krsi_inode_key k = { .ino = t->ino, .dev = t->dev };
	struct krsi_run_inode *r = t->ino ? bpf_map_lookup_elem(&run_inode, &k) : 0;
	bool own = kind == KRSI_EV_UNLINK && t->ino && t->ino == op->exe.ino && t->dev == op->exe.dev;
	if (!r && ret != -ETXTBSY_ERR && !own)
		return;
	struct krsi_unlink_event *ev = reserve(sizeof(*ev), kind);
	if (!ev)
		return;
	fill_hdr(&ev->hdr, kind);
	ev->target = *t;
	if (!(flags & KRSI_FILE_NLINK))
		ev->target.nlink = 0;
	ev->ret = (flags & KRSI_FILE_RET) ? ret : 0;
	ev->_pad = 0;
	ev->route = route;
	ev->flags = flags;
	ev->running = 0;
	ev->runner = KRSI_RUNNER_NONE;
	for (int i = 0; i < KRSI_RUN_PIDS; i++)
		ev->pids[i] = 0;
	if (r) {
		ev->running = r->refs;
		for (int i = 0; i < KRSI_RUN_PIDS; i++)
			ev->pids[i] = r->pids[i];
		if (runs(ev->hdr.pid, &k))
			ev->runner = KRSI_RUNNER_SELF;
		else if (runs(ev->hdr.ppid, &k))
			ev->runner = KRSI_RUNNER_PARENT;
		else
			ev->runner = KRSI_RUNNER_OTHER;
	}
	bpf_probe_read_kernel_str(ev->path, KRSI_PATH_LEN, op->path);
	bpf_probe_read_kernel_str(ev->path2, KRSI_PATH_LEN, op->path2);
	bpf_ringbuf_submit(ev, 0);
}

/* ---- syscall entry and exit ---- */
static __always_inline struct fileop *fileop_new(void)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	/* built in scratch (the stack is too small), then copied into the hash map */
	struct fileop *op = (void *)s->buf;
	__builtin_memset(op, 0, sizeof(struct fileop) - 2 * KRSI_PATH_LEN);  /* everything but the paths */
	op->path[0] = 0;
	op->path2[0] = 0;
	return op;
}

static __always_inline void fileop_enter(struct fileop *op, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	op->kind = kind;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	if (exe)
		file_id(exe, &op->exe);
	if (!lsm_active && kind) {
		/* the running inodes this name could be, with their counts now; an ambiguous name: the walk */
		__u64 hs[2] = { name_hash(op->path), RUN_UNNAMED };
		for (int b = 0; b < 2; b++) {
			__u64 h = hs[b];
			struct run_name *n = h ? bpf_map_lookup_elem(&run_names, &h) : 0;
			if (!n)
				continue;
			op->walk |= n->overflow;
			for (int i = 0; i < RUN_NAME_INODES; i++) {
				struct krsi_inode_key k = n->keys[i];
				struct krsi_run_inode *r = k.ino ? bpf_map_lookup_elem(&run_inode, &k) : 0;
				if (!r || !r->inode)
					continue;
				struct inode *ino = (void *)r->inode;
				int j = b * RUN_NAME_INODES + i;
				op->cand[j].key = k;
				op->cand[j].inode = r->inode;
				op->cand[j].nlink = BPF_CORE_READ(ino, __i_nlink);
				op->cand[j].size = BPF_CORE_READ((struct inode___files *)ino, i_size);
			}
		}
		if (op->walk) {
			struct run_walk c = {};
			run_walk(&c);
		}
	}
	bpf_map_update_elem(&fileops, &id, op, BPF_ANY);
}

/* the candidate whose link count or size dropped during the call (tracepoint-only kernels) */
static __always_inline bool cand_dropped(struct fileop *op, struct krsi_file_id *t)
{
	for (int i = 0; i < 2 * RUN_NAME_INODES; i++) {
		if (!op->cand[i].inode)
			continue;
		struct krsi_inode_key k = op->cand[i].key;
		struct krsi_run_inode *r = bpf_map_lookup_elem(&run_inode, &k);
		if (!r || r->inode != op->cand[i].inode)
			continue;  /* its processes are gone: the pointer may be stale */
		struct inode *ino = (void *)r->inode;
		__u32 n = BPF_CORE_READ(ino, __i_nlink);
		__s64 size = BPF_CORE_READ((struct inode___files *)ino, i_size);
		if (n < op->cand[i].nlink || size < op->cand[i].size) {
			t->ino = k.ino;
			t->dev = k.dev;
			t->nlink = n;
			return true;
		}
	}
	return false;
}

/* a rename moved a running inode's name: index it under the new name too (all inodes of the old name: a superset) */
static __always_inline void name_moved(struct fileop *op)
{
	__u64 from = name_hash(op->path2), to = name_hash(op->path);
	struct run_name *n = from ? bpf_map_lookup_elem(&run_names, &from) : 0;
	if (!n || !to || from == to)
		return;
	struct run_name copy = *n;
	for (int i = 0; i < RUN_NAME_INODES; i++)
		if (copy.keys[i].ino)
			name_add(to, &copy.keys[i]);
}

static __always_inline void fileop_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct fileop *op = bpf_map_lookup_elem(&fileops, &id);
	if (!op)
		return;
	/* krsi's own calls never get here: the enter programs did not record them */
	struct krsi_file_id t = {};
	__u32 route = 0, flags = KRSI_FILE_RET;
	if (op->target.ino) {
		/* an LSM hook or vfs_unlink saw it: the link count after follows from the one before */
		t = op->target;
		route = op->route;
		flags |= KRSI_FILE_NLINK;
		bool gone = ret == 0 && (op->kind == KRSI_EV_UNLINK || (op->kind == KRSI_EV_RENAME && !(op->oflags & RENAME_EXCHANGE_FLAG)));
		if (gone && t.nlink)
			t.nlink -= 1;
	} else if (!lsm_active && ret == 0 && op->kind) {
		if (cand_dropped(op, &t)) {
			route = KRSI_ROUTE_SYSCALL;
			flags |= KRSI_FILE_NLINK;
		} else if (op->walk) {
			struct run_walk c = { .detect = 1 };
			run_walk(&c);
			if (c.key.ino) {
				t.ino = c.key.ino;
				t.dev = c.key.dev;
				t.nlink = c.nlink;
				route = KRSI_ROUTE_SYSCALL;
				flags |= KRSI_FILE_NLINK;
			}
		}
		if (op->kind == KRSI_EV_RENAME)
			name_moved(op);
		if (t.ino && t.nlink) {
			/* a name went, others are left (hard links, dpkg's .dpkg-tmp): checked on every call from now on */
			struct krsi_inode_key k = { .ino = t.ino, .dev = t.dev };
			name_add(RUN_UNNAMED, &k);
		}
	}
	if (!t.ino && ret == 0 && op->kind == KRSI_EV_UNLINK && op->exe.ino) {
		/* no hook named it: still tell the caller's own executable, whose link count just dropped */
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct file *exe = BPF_CORE_READ(task, mm, exe_file);
		struct krsi_file_id now = {};
		if (exe)
			file_id(exe, &now);
		if (now.ino == op->exe.ino && now.dev == op->exe.dev && now.nlink < op->exe.nlink) {
			t = now;
			route = KRSI_ROUTE_SYSCALL;
			flags |= KRSI_FILE_NLINK;
		}
	}
	if (op->kind)
		emit_file(op, op->kind, &t, route, flags, ret);
	if (op->moved.ino && ret == 0) {
		/* a running executable moved away: its old name is gone, the inode keeps its link(s) */
		struct krsi_file_id m = op->moved;
		emit_file(op, KRSI_EV_RENAME, &m, KRSI_ROUTE_LSM, KRSI_FILE_RET | KRSI_FILE_NLINK, 0);
	}
	bpf_map_delete_elem(&fileops, &id);
}

static __always_inline void path_enter(__u32 kind, const char *path, const char *path2, __u32 oflags)
{
	if (is_self())
		return;
	struct fileop *op = fileop_new();
	if (!op)
		return;
	long n = bpf_probe_read_user_str(op->path, KRSI_PATH_LEN, path);
	if (n < 0)
		op->path[0] = 0;
	/* the name hash cannot stand for the inode: a path cut at KRSI_PATH_LEN hashes a fragment, and `.`, `..`
	 * or an empty last component name another directory entry than their own: the full walk then */
	if (n >= KRSI_PATH_LEN || name_unsure(op->path, n - 1))
		op->walk = 1;
	if (path2 && bpf_probe_read_user_str(op->path2, KRSI_PATH_LEN, path2) < 0)
		op->path2[0] = 0;
	op->oflags = oflags;
	fileop_enter(op, kind);
}

SEC("tp/syscalls/sys_enter_unlink")
int krsi_unlink_enter(struct sys_enter_ctx *ctx)
{
	path_enter(KRSI_EV_UNLINK, (const char *)ctx->args[0], 0, 0);
	return 0;
}

SEC("tp/syscalls/sys_exit_unlink")
int krsi_unlink_exit(struct sys_exit_ctx *ctx)
{
	fileop_exit(ctx->ret);
	return 0;
}

SEC("tp/syscalls/sys_enter_unlinkat")
int krsi_unlinkat_enter(struct sys_enter_ctx *ctx)
{
	if (ctx->args[2] & 0x200)  /* AT_REMOVEDIR: rmdir, not an unlink */
		return 0;
	path_enter(KRSI_EV_UNLINK, (const char *)ctx->args[1], 0, 0);
	return 0;
}

SEC("tp/syscalls/sys_exit_unlinkat")
int krsi_unlinkat_exit(struct sys_exit_ctx *ctx)
{
	fileop_exit(ctx->ret);
	return 0;
}

/* rename(old, new): path is the name renamed over (new), path2 the old name */
SEC("tp/syscalls/sys_enter_rename")
int krsi_rename_enter(struct sys_enter_ctx *ctx)
{
	path_enter(KRSI_EV_RENAME, (const char *)ctx->args[1], (const char *)ctx->args[0], 0);
	return 0;
}

SEC("tp/syscalls/sys_exit_rename")
int krsi_rename_exit(struct sys_exit_ctx *ctx)
{
	fileop_exit(ctx->ret);
	return 0;
}

SEC("tp/syscalls/sys_enter_renameat")
int krsi_renameat_enter(struct sys_enter_ctx *ctx)
{
	path_enter(KRSI_EV_RENAME, (const char *)ctx->args[3], (const char *)ctx->args[1], 0);
	return 0;
}

SEC("tp/syscalls/sys_exit_renameat")
int krsi_renameat_exit(struct sys_exit_ctx *ctx)
{
	fileop_exit(ctx->ret);
	return 0;
}

SEC("tp/syscalls/sys_enter_renameat2")
int krsi_renameat2_enter(struct sys_enter_ctx *ctx)
{
	path_enter(KRSI_EV_RENAME, (const char *)ctx->args[3], (const char *)ctx->args[1], ctx->args[4]);
	return 0;
}

SEC("tp/syscalls/sys_exit_renameat2")
int krsi_renameat2_exit(struct sys_exit_ctx *ctx)
{
	fileop_exit(ctx->ret);
	return 0;
}

SEC("tp/syscalls/sys_enter_truncate")
int krsi_truncate_enter(struct sys_enter_ctx *ctx)
{
	path_enter(KRSI_EV_TRUNCATE, (const char *)ctx->args[0], 0, 0);
	return 0;
}

SEC("tp/syscalls/sys_exit_truncate")
int krsi_truncate_exit(struct sys_exit_ctx *ctx)
{
	fileop_exit(ctx->ret);
	return 0;
}

/* the struct file * of fd in the current process */
static __always_inline struct file *fd_file(int fd)
{
	struct task_struct___files *task = (void *)bpf_get_current_task();
	struct fdtable___files *fdt = BPF_CORE_READ(task, files, fdt);
	if (fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* ftruncate(fd): the fd names the inode; only a running one is followed */
SEC("tp/syscalls/sys_enter_ftruncate")
int krsi_ftruncate_enter(struct sys_enter_ctx *ctx)
{
	if (is_self())
		return 0;
	struct file *f = fd_file(ctx->args[0]);
	if (!f)
		return 0;
	struct krsi_inode_key k;
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	inode_key(ino, &k);
	if (!bpf_map_lookup_elem(&run_inode, &k))
		return 0;
	struct fileop *op = fileop_new();
	if (!op)
		return 0;
	op->target.ino = k.ino;
	op->target.dev = k.dev;
	op->target.nlink = BPF_CORE_READ(ino, __i_nlink);
	op->route = KRSI_ROUTE_SYSCALL;
	op->kind = KRSI_EV_TRUNCATE;
	bpf_map_update_elem(&fileops, &(__u64){ bpf_get_current_pid_tgid() }, op, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_exit_ftruncate")
int krsi_ftruncate_exit(struct sys_exit_ctx *ctx)
{
	fileop_exit(ctx->ret);
	return 0;
}

/* ---- open/openat/openat2/creat: O_TRUNC of a running inode, and the script an interpreter opens ---- */
static __always_inline void open_enter(const char *path, __u64 oflags)
{
	if (is_self())
		return;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct script_wait *w = bpf_map_lookup_elem(&script_wait, &tgid);
	if (!(oflags & O_TRUNC_FLAG) && !w)
		return;  /* the common case: one hash miss */
	struct fileop *op = fileop_new();
	if (!op)
		return;
	if (bpf_probe_read_user_str(op->path, KRSI_PATH_LEN, path) < 0)
		op->path[0] = 0;
	op->oflags = oflags;
	if (w) {
		/* the interpreter opens its script by the name exec was given */
		if (w->opens)
			w->opens -= 1;
		else
			bpf_map_delete_elem(&script_wait, &tgid);
		bool same = true;
		for (int i = 0; i < KRSI_PATH_LEN; i++) {
			if (op->path[i] != w->path[i]) {
				same = false;
				break;
			}
			if (!op->path[i])
				break;
		}
		op->script = same;
	}
	op->kind = 0;  /* decided at exit */
	bpf_map_update_elem(&fileops, &(__u64){ bpf_get_current_pid_tgid() }, op, BPF_ANY);
}

static __always_inline void open_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct fileop *op = bpf_map_lookup_elem(&fileops, &id);
	if (!op)
		return;
	struct file *f = ret >= 0 ? fd_file(ret) : 0;
	struct inode *ino = f ? BPF_CORE_READ(f, f_inode) : 0;
	struct krsi_inode_key k = {};
	if (ino)
		inode_key(ino, &k);
	if (op->script && ino) {
		struct krsi_run_tgid *t = bpf_map_lookup_elem(&run_tgid, &tgid);
		if (t && !t->script.ino) {
			t->script = k;
			run_acquire(&k, ino, tgid, dentry_hash(BPF_CORE_READ(f, f_path.dentry)));
		}
		bpf_map_delete_elem(&script_wait, &tgid);
	}
	if (op->oflags & O_TRUNC_FLAG) {
		struct krsi_file_id t = {};
		if (ino) {
			t.ino = k.ino;
			t.dev = k.dev;
			t.nlink = BPF_CORE_READ(ino, __i_nlink);
		}
		/* a running inode truncated by open (a script), or one the kernel refused (ETXTBSY: a running binary) */
		emit_file(op, KRSI_EV_TRUNCATE, &t, ino ? KRSI_ROUTE_SYSCALL : 0, KRSI_FILE_RET | (ino ? KRSI_FILE_NLINK : 0), ret >= 0 ? 0 : ret);
	}
	bpf_map_delete_elem(&fileops, &id);
}

SEC("tp/syscalls/sys_enter_open")
int krsi_open_enter(struct sys_enter_ctx *ctx)
{
	open_enter((const char *)ctx->args[0], ctx->args[1]);
	return 0;
}

SEC("tp/syscalls/sys_exit_open")
int krsi_open_exit(struct sys_exit_ctx *ctx)
{
	open_exit(ctx->ret);
	return 0;
}

SEC("tp/syscalls/sys_enter_openat")
int krsi_openat_enter(struct sys_enter_ctx *ctx)
{
	open_enter((const char *)ctx->args[1], ctx->args[2]);
	return 0;
}

SEC("tp/syscalls/sys_exit_openat")
int krsi_openat_exit(struct sys_exit_ctx *ctx)
{
	open_exit(ctx->ret);
	return 0;
}

SEC("tp/syscalls/sys_enter_openat2")
int krsi_openat2_enter(struct sys_enter_ctx *ctx)
{
	__u64 oflags = 0;
	bpf_probe_read_user(&oflags, sizeof(oflags), (void *)ctx->args[2]);  /* struct open_how: flags first */
	open_enter((const char *)ctx->args[1], oflags);
	return 0;
}

SEC("tp/syscalls/sys_exit_openat2")
int krsi_openat2_exit(struct sys_exit_ctx *ctx)
{
	open_exit(ctx->ret);
	return 0;
}

SEC("tp/syscalls/sys_enter_creat")
int krsi_creat_enter(struct sys_enter_ctx *ctx)
{
	open_enter((const char *)ctx->args[0], O_TRUNC_FLAG);
	return 0;
}

SEC("tp/syscalls/sys_exit_creat")
int krsi_creat_exit(struct sys_exit_ctx *ctx)
{
	open_exit(ctx->ret);
	return 0;
}

/* the inode an unlink syscall removes (vfs_unlink(idmap, dir, dentry, ...), kernel 5.12 and later);
 * only inside an unlink the sys_enter programs above recorded, so kernel-internal unlinks are ignored */
SEC("kprobe/vfs_unlink")
int BPF_KPROBE(krsi_vfs_unlink, void *idmap, struct inode *dir, struct dentry *dentry)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct fileop *op = bpf_map_lookup_elem(&fileops, &id);
	if (!op || op->target.ino || op->kind != KRSI_EV_UNLINK)
		return 0;  /* the first call is the one the caller asked for (overlayfs calls it again on its upper layer) */
	struct inode *ino = BPF_CORE_READ(dentry, d_inode);
	op->target.ino = BPF_CORE_READ(ino, i_ino);
	op->target.dev = BPF_CORE_READ(ino, i_sb, s_dev);
	op->target.nlink = BPF_CORE_READ(ino, __i_nlink);
	op->route = KRSI_ROUTE_SYSCALL;
	return 0;
}

/* ---- io_uring unlinkat / renameat on tracepoint-only kernels: the same walk, around the request ---- */
struct uring_submit_ctx { __u64 _common; void *ring; void *req; __u64 user_data; __u8 opcode; };
struct uring_complete_ctx { __u64 _common; void *ring; void *req; __u64 user_data; __s32 res; };

SEC("tp/io_uring/io_uring_submit_req")
int krsi_uring_submit(struct uring_submit_ctx *ctx)
{
	if (lsm_active || is_self())
		return 0;  /* the LSM hooks see io_uring's calls themselves */
	__u8 opc = ctx->opcode;
	if (opc != IORING_OP_UNLINKAT && opc != IORING_OP_RENAMEAT)
		return 0;
	__u64 req = (__u64)ctx->req;
	__u32 kind = opc == IORING_OP_UNLINKAT ? KRSI_EV_UNLINK : KRSI_EV_RENAME;
	struct run_walk c = {};
	run_walk(&c);
	bpf_map_update_elem(&uring_ops, &req, &kind, BPF_ANY);
	return 0;
}

SEC("tp/io_uring/io_uring_complete")
int krsi_uring_complete(struct uring_complete_ctx *ctx)
{
	__u64 req = (__u64)ctx->req;
	__u32 *kind = bpf_map_lookup_elem(&uring_ops, &req);
	if (!kind)
		return 0;
	__u32 k = *kind;
	bpf_map_delete_elem(&uring_ops, &req);
	struct fileop *op = fileop_new();
	if (!op)
		return 0;
	struct krsi_file_id t = {};
	__u32 flags = KRSI_FILE_RET;
	if (ctx->res == 0) {
		struct run_walk c = { .detect = 1 };
		run_walk(&c);
		if (c.key.ino) {
			t.ino = c.key.ino;
			t.dev = c.key.dev;
			t.nlink = c.nlink;
			flags |= KRSI_FILE_NLINK;
		}
	}
	emit_file(op, k, &t, KRSI_ROUTE_IO_URING, flags, ctx->res);
	return 0;
}

/* ---- BPF-LSM: the inode itself, from any route (loaded only where BPF LSM works; they only observe) ---- */
static __always_inline void lsm_file(__u32 kind, struct inode *ino, struct dentry *d)
{
	if (!ino || is_self())
		return;
	__u64 id = bpf_get_current_pid_tgid();
	struct fileop *op = bpf_map_lookup_elem(&fileops, &id);
	if (op) {
		/* inside a syscall krsi follows: its exit reports, with the result (open: by its own O_TRUNC check) */
		if (op->kind != kind)
			return;
		__u64 i_ino = BPF_CORE_READ(ino, i_ino);
		if (op->target.ino == i_ino) {
			op->route = KRSI_ROUTE_LSM;  /* vfs_unlink saw it first: the same inode */
		} else if (!op->target.ino) {
			op->target.ino = i_ino;
			op->target.dev = BPF_CORE_READ(ino, i_sb, s_dev);
			op->target.nlink = BPF_CORE_READ(ino, __i_nlink);
			op->route = KRSI_ROUTE_LSM;
		}
		return;
	}
	/* io_uring (an io-wq worker) or a kernel path: reported now, for running inodes only; the result and the
	 * link count after are not known yet */
	struct krsi_inode_key k;
	inode_key(ino, &k);
	if (!bpf_map_lookup_elem(&run_inode, &k))
		return;
	struct fileop *n = fileop_new();
	if (!n)
		return;
	if (d)
		bpf_probe_read_kernel_str(n->path, KRSI_PATH_LEN, BPF_CORE_READ(d, d_name.name));
	struct krsi_file_id t = { .ino = k.ino, .dev = k.dev, .nlink = 0 };
	struct task_struct___files *task = (void *)bpf_get_current_task();
	__u32 route = BPF_CORE_READ(task, flags) & PF_IO_WORKER ? KRSI_ROUTE_IO_URING : KRSI_ROUTE_KERNEL;
	emit_file(n, kind, &t, route, 0, 0);
}

SEC("lsm/inode_unlink")
int BPF_PROG(krsi_lsm_unlink, struct inode *dir, struct dentry *dentry, int ret)
{
	lsm_file(KRSI_EV_UNLINK, BPF_CORE_READ(dentry, d_inode), dentry);
	return earlier(ret);
}

/* the inode a rename moves (old_dentry's): reported when a process runs it (`mv implant /tmp/.x`), as a
 * `rename` whose target is that inode, `path` the new name and `from` the old one */
static __always_inline void lsm_moved(struct inode *ino, struct dentry *old, struct dentry *new)
{
	if (!ino || is_self())
		return;
	struct krsi_inode_key k;
	inode_key(ino, &k);
	if (!bpf_map_lookup_elem(&run_inode, &k))
		return;
	__u64 id = bpf_get_current_pid_tgid();
	struct fileop *op = bpf_map_lookup_elem(&fileops, &id);
	if (op) {
		/* inside a rename syscall krsi follows: its exit reports it, if the rename succeeded */
		if (op->kind == KRSI_EV_RENAME && !op->moved.ino) {
			op->moved.ino = k.ino;
			op->moved.dev = k.dev;
			op->moved.nlink = BPF_CORE_READ(ino, __i_nlink);
		}
		return;
	}
	/* io_uring or a kernel path: now, without the result */
	struct fileop *n = fileop_new();
	if (!n)
		return;
	bpf_probe_read_kernel_str(n->path, KRSI_PATH_LEN, BPF_CORE_READ(new, d_name.name));
	bpf_probe_read_kernel_str(n->path2, KRSI_PATH_LEN, BPF_CORE_READ(old, d_name.name));
	struct krsi_file_id t = { .ino = k.ino, .dev = k.dev, .nlink = BPF_CORE_READ(ino, __i_nlink) };
	struct task_struct___files *task = (void *)bpf_get_current_task();
	__u32 route = BPF_CORE_READ(task, flags) & PF_IO_WORKER ? KRSI_ROUTE_IO_URING : KRSI_ROUTE_KERNEL;
	emit_file(n, KRSI_EV_RENAME, &t, route, KRSI_FILE_NLINK, 0);
}

SEC("lsm/inode_rename")
int BPF_PROG(krsi_lsm_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir, struct dentry *new_dentry, int ret)
{
	/* the inode renamed over (none when the new name is free; RENAME_EXCHANGE calls the hook both ways) */
	lsm_file(KRSI_EV_RENAME, BPF_CORE_READ(new_dentry, d_inode), new_dentry);
	lsm_moved(BPF_CORE_READ(old_dentry, d_inode), old_dentry, new_dentry);
	return earlier(ret);
}

SEC("lsm/path_truncate")
int BPF_PROG(krsi_lsm_path_truncate, const struct path *path, int ret)
{
	struct dentry *d = BPF_CORE_READ(path, dentry);
	lsm_file(KRSI_EV_TRUNCATE, BPF_CORE_READ(d, d_inode), d);
	return earlier(ret);
}

/* ftruncate and open(O_TRUNC) from kernel 6.2 (path_truncate before) */
SEC("lsm/file_truncate")
int BPF_PROG(krsi_lsm_file_truncate, struct file *file, int ret)
{
	struct dentry *d = BPF_CORE_READ(file, f_path.dentry);
	lsm_file(KRSI_EV_TRUNCATE, BPF_CORE_READ(file, f_inode), d);
	return earlier(ret);
}

/* ---- executable memory: mprotect, pkey_mprotect, mmap. Only what matters to a rule is emitted, into the
 * bulk ring: exec added to a region, or writable and executable memory. Protections are the effective ones
 * (READ_IMPLIES_EXEC: PROT_READ implies PROT_EXEC). "Written" is read from the regions themselves
 * (bpf_find_vma): VM_WRITE now, or an anon_vma (a page of it was written, or copied on write). ---- */
#define PROT_READ  0x1
#define PROT_WRITE 0x2
#define PROT_EXEC  0x4
#define VM_WRITE   0x2
#define VM_EXEC    0x4
#define READ_IMPLIES_EXEC 0x0400000
#define MAP_ANONYMOUS 0x20
#define TMPFS_MAGIC 0x01021994
#define FMODE_WRITE 0x2
#define KRSI_SHMAT_FLAG 0x80000000U   /* in mmap_start.flags: a shmat, not an mmap (no MAP_* bit is this) */
#define KRSI_MEM_VMAS 4          /* regions read per mprotect at most (more: KRSI_MEM_UNKNOWN) */

/* PROT_* as the kernel applies it (the hook's `prot`): READ_IMPLIES_EXEC adds PROT_EXEC to PROT_READ.
 * (The kernel skips it on noexec files; this does not: an mmap of a noexec file may read executable.) */
static __always_inline __u32 effective_prot(__u32 req)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 prot = req & (PROT_READ | PROT_WRITE | PROT_EXEC);
	if ((prot & PROT_READ) && (BPF_CORE_READ(task, personality) & READ_IMPLIES_EXEC))
		prot |= PROT_EXEC;
	return prot;
}

/* what the regions of [addr, end) were before an mprotect (filled by vma_cb, one region per call) */
struct vma_walk {
	__u64 addr, end;
	__u32 old_prot;   /* of the first region */
	__u32 added;      /* a region not executable before */
	__u32 written;    /* ...that is writable or was written */
	__u32 seen;       /* regions read */
};

static long vma_cb(struct task_struct *task, struct vm_area_struct *vma, struct vma_walk *w)
{
	unsigned long fl = BPF_CORE_READ(vma, vm_flags);
	if (w->seen == 0)
		w->old_prot = fl & (PROT_READ | PROT_WRITE | PROT_EXEC);  /* VM_READ/WRITE/EXEC are PROT_*'s bits */
	w->seen++;
	if (!(fl & VM_EXEC)) {
		w->added = 1;
		if ((fl & VM_WRITE) || BPF_CORE_READ(vma, anon_vma))
			w->written = 1;
	}
	w->addr = BPF_CORE_READ(vma, vm_end);
	return 0;
}

/* KRSI_MEM_* bits of an mprotect to `prot` (effective) of [start, start + len) */
static __always_inline __u32 mprotect_bits(__u64 start, __u64 len, __u32 prot, __u32 *old_prot)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct vma_walk w = { .addr = start & ~0xfffULL, .end = start + len };
	__u32 bits = 0;
	int i;

	for (i = 0; i < KRSI_MEM_VMAS; i++) {
		if (w.addr >= w.end)
			break;
		if (bpf_find_vma(task, w.addr, vma_cb, &w, 0))
			break;  /* no region there (the call fails) or mmap_lock busy */
	}
	*old_prot = w.old_prot;
	if (w.addr < w.end) {
		bits |= KRSI_MEM_UNKNOWN;  /* not all read: fail closed */
		w.added = w.written = 1;
	}
	if (w.added)
		bits |= KRSI_MEM_EXEC_ADDED;
	if ((prot & PROT_WRITE) || w.written)
		bits |= KRSI_MEM_WX;
	if (w.written && !(prot & PROT_WRITE))
		bits |= KRSI_MEM_FLIP;
	return bits;
}

static __always_inline void mprotect(struct sys_enter_ctx *ctx)
{
	if (is_self())
		return;  /* before anything else: node's JIT mprotects a lot */
	__u32 req = ctx->args[2];
	__u32 prot = effective_prot(req);
	if (!(prot & PROT_EXEC))
		return;  /* nothing becomes executable: not emitted (the flood case) */
	__u32 old = 0;
	__u32 bits = mprotect_bits(ctx->args[0], ctx->args[1], prot, &old);
	if (!(bits & KRSI_MEM_EXEC_ADDED) && !((prot & PROT_WRITE) && (prot & PROT_EXEC)))
		return;  /* executable already, and not writable: nothing new */
	struct krsi_mem_event *ev = reserve_mem(sizeof(*ev), KRSI_EV_MPROTECT);
	if (!ev)
		return;
	fill_hdr(&ev->hdr, KRSI_EV_MPROTECT);
	ev->start = ctx->args[0];
	ev->len = ctx->args[1];
	ev->prot = prot;
	ev->reqprot = req;
	ev->flags = 0;
	ev->mem = bits;
	ev->old_prot = old;
	ev->ret = 0;
	__builtin_memset(&ev->file, 0, sizeof(ev->file));
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

/* mmap in flight: sys_enter (the protection asked) -> sys_exit (the address), keyed by pid_tgid; only
 * executable mappings are remembered */
struct mmap_start {
	__u64 addr, len;
	__u32 prot, reqprot, flags, _pad;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct mmap_start);
} mmaps SEC(".maps");

SEC("tp/syscalls/sys_enter_mmap")
int krsi_mmap_enter(struct sys_enter_ctx *ctx)
{
	if (is_self())
		return 0;
	__u32 req = ctx->args[2];
	__u32 prot = effective_prot(req);
	if (!(prot & PROT_EXEC))
		return 0;  /* not executable: not ours (most mmaps) */
	__u64 id = bpf_get_current_pid_tgid();
	struct mmap_start st = { .addr = ctx->args[0], .len = ctx->args[1], .prot = prot, .reqprot = req, .flags = ctx->args[3] };
	bpf_map_update_elem(&mmaps, &id, &st, BPF_ANY);
	return 0;
}

/* the file behind the new mapping (vm_file), read at exit */
struct mmap_file_walk {
	struct krsi_file_id file;
	__u32 shmem;
	__u32 writable;   /* the file is open for writing: its code can be written through the fd or another mapping */
	__u64 len;   /* the region's length (shmat: the segment's) */
};

static long mmap_cb(struct task_struct *task, struct vm_area_struct *vma, struct mmap_file_walk *w)
{
	struct file *f = BPF_CORE_READ(vma, vm_file);
	w->len = BPF_CORE_READ(vma, vm_end) - BPF_CORE_READ(vma, vm_start);
	if (!f)
		return 0;
	file_id(f, &w->file);
	w->shmem = BPF_CORE_READ(f, f_inode, i_sb, s_magic) == TMPFS_MAGIC;
	w->writable = (BPF_CORE_READ(f, f_mode) & FMODE_WRITE) != 0;
	return 0;
}

static __always_inline int mmap_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct mmap_start *st = bpf_map_lookup_elem(&mmaps, &id);
	if (!st)
		return 0;
	struct mmap_start s = *st;
	bpf_map_delete_elem(&mmaps, &id);
	bool failed = ret < 0 && ret >= -4095;
	struct mmap_file_walk w = {};
	__u32 bits = 0;
	if (failed) {
		if (s.flags & MAP_ANONYMOUS)
			bits |= KRSI_MEM_ANON;
	} else {
		struct task_struct *task = bpf_get_current_task_btf();
		if (bpf_find_vma(task, ret, mmap_cb, &w, 0))
			bits |= KRSI_MEM_UNKNOWN;
		else if (!w.file.ino)
			bits |= KRSI_MEM_ANON;
		else if (w.shmem)
			bits |= KRSI_MEM_SHMEM;
	}
	/* a file mapped executable and not writable, from an fd open read-only (ld.so's libraries), is not an event */
	if (!(s.prot & PROT_WRITE) && !w.writable && !(bits & (KRSI_MEM_ANON | KRSI_MEM_SHMEM | KRSI_MEM_UNKNOWN)))
		return 0;
	bits |= KRSI_MEM_EXEC_ADDED;  /* a new mapping is executable */
	if (w.writable && !(bits & KRSI_MEM_SHMAT))
		bits |= KRSI_MEM_WX;  /* executable, of a file open for writing: a second mapping or write(2) writes its code */
	if (s.flags & KRSI_SHMAT_FLAG) {
		bits |= KRSI_MEM_SHMAT;
		s.flags &= ~KRSI_SHMAT_FLAG;
	}
	if (s.prot & PROT_WRITE)
		bits |= KRSI_MEM_WX;
	struct krsi_mem_event *ev = reserve_mem(sizeof(*ev), KRSI_EV_MMAP);
	if (!ev)
		return 0;
	fill_hdr(&ev->hdr, KRSI_EV_MMAP);
	ev->start = failed ? s.addr : (__u64)ret;
	ev->len = s.len ? s.len : w.len;
	ev->prot = s.prot;
	ev->reqprot = s.reqprot;
	ev->flags = s.flags;
	ev->mem = bits;
	ev->old_prot = 0;
	ev->ret = failed ? ret : 0;
	ev->file = w.file;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

SEC("tp/syscalls/sys_exit_mmap")
int krsi_mmap_exit(struct sys_exit_ctx *ctx)
{
	return mmap_exit(ctx->ret);
}

/* shmat(SHM_EXEC) maps a SysV segment executable, writable unless SHM_RDONLY: an mmap event of its own
 * kind (flags: the shmflg), remembered in the same map as an mmap in flight */
#define SHM_RDONLY 010000
#define SHM_EXEC   0100000

SEC("tp/syscalls/sys_enter_shmat")
int krsi_shmat_enter(struct sys_enter_ctx *ctx)
{
	if (is_self())
		return 0;
	__u32 shmflg = ctx->args[2];
	if (!(shmflg & SHM_EXEC))
		return 0;  /* not executable */
	__u64 id = bpf_get_current_pid_tgid();
	__u32 prot = PROT_READ | PROT_EXEC | ((shmflg & SHM_RDONLY) ? 0 : PROT_WRITE);
	struct mmap_start st = { .addr = ctx->args[1], .len = 0, .prot = prot, .reqprot = prot, .flags = shmflg | KRSI_SHMAT_FLAG };
	bpf_map_update_elem(&mmaps, &id, &st, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_exit_shmat")
int krsi_shmat_exit(struct sys_exit_ctx *ctx)
{
	return mmap_exit(ctx->ret);
}

/* brk under READ_IMPLIES_EXEC: do_brk_flags maps the heap's growth with the personality's VM_EXEC, so the
 * heap becomes writable and executable with no mmap, no mprotect and no LSM hook. sys_enter_brk remembers the
 * old break (only for such a process: most never get past the personality test), sys_exit_brk emits the growth
 * as an anonymous mmap event: prot RWX (effective), reqprot RW (what brk maps), wx. The initial heap of a new
 * image is empty (brk == start_brk): its first growth is a brk. ---- */
#define PAGE_UP(x) (((x) + 0xfffULL) & ~0xfffULL)
#define MAP_PRIVATE 0x02

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);   /* pid_tgid */
	__type(value, __u64); /* the break before the call */
} brks SEC(".maps");

SEC("tp/syscalls/sys_enter_brk")
int krsi_brk_enter(struct sys_enter_ctx *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (!(BPF_CORE_READ(task, personality) & READ_IMPLIES_EXEC))
		return 0;  /* the heap is not executable: not ours (every process but these) */
	if (is_self())
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u64 old = BPF_CORE_READ(task, mm, brk);
	bpf_map_update_elem(&brks, &id, &old, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_exit_brk")
int krsi_brk_exit(struct sys_exit_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 *o = bpf_map_lookup_elem(&brks, &id);
	if (!o)
		return 0;
	__u64 start = PAGE_UP(*o), end = PAGE_UP((__u64)ctx->ret);  /* brk returns the new break (the old one on failure) */
	bpf_map_delete_elem(&brks, &id);
	if (end <= start)
		return 0;  /* no new page: nothing mapped */
	struct krsi_mem_event *ev = reserve_mem(sizeof(*ev), KRSI_EV_MMAP);
	if (!ev)
		return 0;
	fill_hdr(&ev->hdr, KRSI_EV_MMAP);
	ev->start = start;
	ev->len = end - start;
	ev->prot = PROT_READ | PROT_WRITE | PROT_EXEC;
	ev->reqprot = PROT_READ | PROT_WRITE;
	ev->flags = MAP_PRIVATE | MAP_ANONYMOUS;
	ev->mem = KRSI_MEM_WX | KRSI_MEM_ANON | KRSI_MEM_EXEC_ADDED;
	ev->old_prot = 0;
	ev->ret = 0;
	__builtin_memset(&ev->file, 0, sizeof(ev->file));
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

/* An image whose PT_GNU_STACK asks for an executable stack (-z execstack; or no PT_GNU_STACK with
 * READ_IMPLIES_EXEC) starts with a writable and executable stack: setup_arg_pages maps it, no mmap, no hook.
 * On x86_64 the ELF loader sets READ_IMPLIES_EXEC only for 32-bit images without PT_GNU_STACK (5.8+), so
 * -z execstack gives the RWX stack and no personality. Reported at exec as an anonymous mmap event of the stack
 * region (flags MAP_PRIVATE|MAP_ANONYMOUS|MAP_GROWSDOWN), wx: one bpf_find_vma per exec. ---- */
#define MAP_GROWSDOWN 0x100

static long stack_cb(struct task_struct *task, struct vm_area_struct *vma, struct mmap_start *st)
{
	unsigned long fl = BPF_CORE_READ(vma, vm_flags);
	if ((fl & VM_EXEC) && (fl & VM_WRITE)) {
		st->addr = BPF_CORE_READ(vma, vm_start);
		st->len = BPF_CORE_READ(vma, vm_end) - st->addr;
	}
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(krsi_exec_stack, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	if (is_self())
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct mmap_start st = {};
	__u64 sp = BPF_CORE_READ((struct task_struct *)task, mm, start_stack);
	if (bpf_find_vma(task, sp, stack_cb, &st, 0) || !st.len)
		return 0;  /* not writable and executable (every ordinary image), or not read */
	struct krsi_mem_event *ev = reserve_mem(sizeof(*ev), KRSI_EV_MMAP);
	if (!ev)
		return 0;
	fill_hdr(&ev->hdr, KRSI_EV_MMAP);
	ev->start = st.addr;
	ev->len = st.len;
	ev->prot = PROT_READ | PROT_WRITE | PROT_EXEC;
	ev->reqprot = PROT_READ | PROT_WRITE | PROT_EXEC;
	ev->flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN;
	ev->mem = KRSI_MEM_WX | KRSI_MEM_ANON | KRSI_MEM_EXEC_ADDED;
	ev->old_prot = 0;
	ev->ret = 0;
	__builtin_memset(&ev->file, 0, sizeof(ev->file));
	bpf_ringbuf_submit(ev, 0);
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
