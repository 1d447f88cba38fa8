// SPDX-License-Identifier: GPL-2.0
/* signals.bpf.c - krsi's signal programs: exec, fork, exit, unlink, mprotect, module load and unload.
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
struct module { char name[KRSI_MODNAME_LEN]; } __attribute__((preserve_access_index));

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

/* ---- module load and unload: optional (user space turns autoload off when the kernel has no modules) ---- */
static __always_inline void module_event(struct module *mod, __u32 kind)
{
	if (is_self())
		return;
	struct krsi_module_event *ev = reserve(sizeof(*ev), kind);
	if (!ev)
		return;
	fill_hdr(&ev->hdr, kind);
	BPF_CORE_READ_STR_INTO(&ev->name, mod, name);
	bpf_ringbuf_submit(ev, 0);
}

SEC("tp_btf/module_load")
int BPF_PROG(krsi_module_load, struct module *mod)
{
	module_event(mod, KRSI_EV_MODULE_LOAD);
	return 0;
}

/* free_module(): the module leaves the kernel, by delete_module (rmmod) or after its init failed. A
 * module that hides itself (list_del of its own list entry) never gets here: the hidden-module rule
 * tells the two apart with this event. */
SEC("tp_btf/module_free")
int BPF_PROG(krsi_module_unload, struct module *mod)
{
	module_event(mod, KRSI_EV_MODULE_UNLOAD);
	return 0;
}
