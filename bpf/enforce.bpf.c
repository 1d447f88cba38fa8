// SPDX-License-Identifier: GPL-2.0
/* enforce.bpf.c - krsi's BPF-LSM enforcement programs (the "allow or deny" step).
 * Each program: return an earlier LSM's non-zero ret; never deny pid 1 or krsi; look up; allow on a
 * miss or an expired entry; else write a denied event, count it, and return -EPERM (monitor: 0).
 * Semantics: engine/enforcement/semantics.ts (SEMANTICS). Structs and constants: krsi.h;
 * should match: bpf/abi.ts (test/bpf/layout.test.ts). Maps are pinned by enforcers/programs.ts
 * under /sys/fs/bpf/krsi/enforce/ so enforcement outlives krsi.
 * Hook signatures checked against Debian 12's 6.1 kernel (include/linux/lsm_hook_defs.h). */
#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "krsi.h"

char LICENSE[] SEC("license") = "GPL";

#define EPERM 1
#define PROT_WRITE 0x2
#define PROT_EXEC 0x4
#define VM_WRITE 0x2
#define VM_EXEC 0x4
#define READING_MODULE 2   /* enum kernel_read_file_id */
#define LOADING_MODULE 2   /* enum kernel_load_data_id */
#define TMPFS_MAGIC     0x01021994
#define HUGETLBFS_MAGIC 0x958458f6
/* the other ids of enum kernel_read_file_id and enum kernel_load_data_id (the same numbers in both, 5.10 to 6.12):
 * in allowlist mode firmware, policy and certificates pass, kexec is refused, and any other id (UNKNOWN, or
 * one this build does not know) fails closed */
#define READING_FIRMWARE        1
#define READING_KEXEC_IMAGE     3
#define READING_KEXEC_INITRAMFS 4
#define READING_POLICY          5
#define READING_X509_CERTIFICATE 6

/* ---- the kernel fields we read (CO-RE) ---- */
struct super_block { __u32 s_dev; unsigned long s_magic; } __attribute__((preserve_access_index));
struct inode { unsigned long i_ino; struct super_block *i_sb; unsigned int __i_nlink; } __attribute__((preserve_access_index));
struct qstr { const unsigned char *name; } __attribute__((preserve_access_index));
struct dentry { struct dentry *d_parent; struct qstr d_name; } __attribute__((preserve_access_index));
struct path { struct dentry *dentry; } __attribute__((preserve_access_index));
struct file { struct inode *f_inode; struct path f_path; } __attribute__((preserve_access_index));
/* the inode's ctime: i_ctime up to 6.5, __i_ctime in 6.6-6.10, i_ctime_sec / i_ctime_nsec from 6.11 */
struct timespec64 { __s64 tv_sec; long tv_nsec; } __attribute__((preserve_access_index));
struct inode___ctime_ts { struct timespec64 i_ctime; } __attribute__((preserve_access_index));
struct inode___ctime_priv { struct timespec64 __i_ctime; } __attribute__((preserve_access_index));
struct inode___ctime_split { __s64 i_ctime_sec; __u32 i_ctime_nsec; } __attribute__((preserve_access_index));
struct mm_struct { struct file *exe_file; } __attribute__((preserve_access_index));
typedef struct { int counter; } atomic_t;
struct signal_struct { atomic_t live; } __attribute__((preserve_access_index));
struct task_struct {
	int tgid;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct signal_struct *signal;
} __attribute__((preserve_access_index));
struct linux_binprm { struct file *file; } __attribute__((preserve_access_index));
/* vm_flags: a plain field up to 6.2, in an anonymous union from 6.3 (CO-RE finds both) */
struct vm_area_struct { unsigned long vm_flags; void *anon_vma; } __attribute__((preserve_access_index));

#include "hdr.h"   /* fill_hdr(): after the CO-RE declarations it reads */
#include "lsm.h"

/* ---- maps (pin paths: enforcers/maps.ts MAP_PINS) ---- */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct krsi_inode_key);
	__type(value, struct krsi_verdict);
} deny_inode SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);   /* tgid */
	__type(value, struct krsi_verdict);
} deny_tgid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct krsi_inode_key);
	__type(value, struct krsi_verdict);   /* presence (and expiry) */
} module_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct krsi_inode_key);
	__type(value, struct krsi_verdict);   /* presence (and expiry) */
} module_deny SEC(".maps");

/* the allowlisted module files' ctime when the allowlist was resolved (enforcers/module-files.ts) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct krsi_inode_key);
	__type(value, struct krsi_file_stamp);
} module_stamp SEC(".maps");

/* a module file refused by deny_inode / the denylist: that tgid's init_module (from memory) is refused
 * until `until` too, with the same reason and rule (busybox insmod falls back to it at once). Kernel-only
 * state, not pinned: it lives as long as the programs. */
struct module_refusal {
	__u64 until;     /* bpf_ktime_get_boot_ns() deadline */
	__u32 reason;    /* enum krsi_deny_reason of the file refusal */
	__u32 rule_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);   /* tgid */
	__type(value, struct module_refusal);
} module_refused SEC(".maps");

/* the talk's in-kernel counter: W->X flips per tgid (LRU: a lost exit never fills it) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} mprotect_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct krsi_config);
} config SEC(".maps");

/* denials per enum krsi_deny_reason (slot 0: ring buffer records lost) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KRSI_DENY_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} deny_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} denied_events SEC(".maps");

/* ---- helpers ---- */
static __always_inline struct krsi_config *cfg(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&config, &zero);
}

/* pid 1 and krsi itself are never denied, whatever the maps say */
static __always_inline bool exempt(__u32 tgid, struct krsi_config *c)
{
	return tgid == 1 || (c && c->krsi_tgid && tgid == c->krsi_tgid);
}

/* a verdict is live iff it never expires or its deadline is still ahead (CLOCK_BOOTTIME) */
static __always_inline struct krsi_verdict *live(void *map, const void *key)
{
	struct krsi_verdict *v = bpf_map_lookup_elem(map, key);
	if (!v)
		return 0;   /* no entry: allow */
	if (v->expires && bpf_ktime_get_boot_ns() >= v->expires)
		return 0;   /* expired: allow (user space deletes it later) */
	return v;
}

static __always_inline void bump(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&deny_count, &slot);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* f is a hook argument (a BTF pointer): plain loads, CO-RE relocated, no probe-read helper calls */
static __always_inline void inode_key(struct file *f, struct krsi_inode_key *k)
{
	struct inode *ino = f->f_inode;
	k->ino = ino->i_ino;
	k->dev = ino->i_sb->s_dev;
	k->_pad = 0;
}

/* audit trail + counter; returns what the hook returns: -EPERM, or 0 in monitor mode */
static __always_inline int deny(struct krsi_config *c, __u32 op, __u32 reason, __u32 rule_id,
				const struct krsi_inode_key *k)
{
	bool enforce = c && c->enforce;
	struct krsi_denied_event *ev;

	bump(reason);
	ev = bpf_ringbuf_reserve(&denied_events, sizeof(*ev), 0);
	if (!ev) {
		bump(0);   /* record lost: counted, the verdict still holds */
		return lsm_ret(enforce ? -EPERM : 0);
	}
	fill_hdr(&ev->hdr, KRSI_EV_DENIED);
	ev->op = op;
	ev->reason = reason;
	ev->rule_id = rule_id;
	ev->enforced = enforce;
	ev->inode.ino = k ? k->ino : 0;
	ev->inode.dev = k ? k->dev : 0;
	ev->inode._pad = 0;
	bpf_ringbuf_submit(ev, 0);
	return lsm_ret(enforce ? -EPERM : 0);
}

/* ---- exec: deny a denied binary (inode) and any exec by a denied tgid ---- */
SEC("lsm/bprm_check_security")
int BPF_PROG(krsi_bprm_check, struct linux_binprm *bprm, int ret)
{
	struct krsi_config *c;
	__u32 tgid;
	struct krsi_inode_key k;
	struct krsi_verdict *v;

	if (ret)
		return earlier(ret);   /* an earlier LSM already refused */
	c = cfg();
	tgid = bpf_get_current_pid_tgid() >> 32;
	if (exempt(tgid, c))
		return 0;     /* init and krsi are never denied */
	inode_key(bprm->file, &k);
	v = live(&deny_inode, &k);
	if (v && (v->ops & KRSI_OP_EXEC))
		return deny(c, KRSI_OP_EXEC, KRSI_DENY_INODE, v->rule_id, &k);   /* a denied binary */
	v = live(&deny_tgid, &tgid);
	if (v && (v->ops & KRSI_OP_EXEC))
		return deny(c, KRSI_OP_EXEC, KRSI_DENY_TGID, v->rule_id, &k);    /* a denied/quarantined process */
	return 0;         /* no live verdict: allow */
}

/* ---- exec from a memfd or of a file with no link left (fileless execution), opt-in: config.flags.
 * Its own program on the hook, after krsi_bprm_check (an earlier refusal is passed on). ---- */
static __always_inline bool fileless(struct file *f)
{
	struct inode *ino = f->f_inode;
	struct dentry *d = f->f_path.dentry;
	unsigned long magic = ino->i_sb->s_magic;
	char name[8] = {};

	if (ino->__i_nlink == 0)
		return true;   /* unlinked after open, O_TMPFILE, memfd (shmem clears its link count) */
	if (d->d_parent != d || (magic != TMPFS_MAGIC && magic != HUGETLBFS_MAGIC))
		return false;  /* a file in a directory */
	/* a pseudo dentry on the internal shmem/hugetlbfs mount named by memfd_create */
	bpf_probe_read_kernel(name, 6, d->d_name.name);
	return name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' && name[4] == 'd' && name[5] == ':';
}

SEC("lsm/bprm_check_security")
int BPF_PROG(krsi_bprm_fileless, struct linux_binprm *bprm, int ret)
{
	struct krsi_config *c;
	__u32 tgid;
	struct krsi_inode_key k;

	if (ret)
		return earlier(ret);   /* an earlier LSM (or krsi_bprm_check) already refused */
	c = cfg();
	if (!c || !(c->flags & KRSI_CFG_DENY_FILELESS))
		return 0;     /* off (the default) */
	tgid = bpf_get_current_pid_tgid() >> 32;
	if (exempt(tgid, c))
		return 0;     /* init and krsi are never denied */
	if (!fileless(bprm->file))
		return 0;     /* a file with a name on disk: allow */
	inode_key(bprm->file, &k);
	return deny(c, KRSI_OP_EXEC, KRSI_DENY_FILELESS, 0, &k);   /* a memfd or an unlinked file */
}

/* ---- mprotect: deny PROT_EXEC (the effective prot: READ_IMPLIES_EXEC included) for a denied tgid, and
 * past the in-kernel counter of W->X flips. A flip makes a region executable after it was written and drops
 * write: the region is not executable, and writable (VM_WRITE) or written (an anon_vma: a page of it was
 * written or copied on write); the new prot has PROT_EXEC and not PROT_WRITE. A JIT that maps its code
 * writable and executable at once (HotSpot, V8 here) makes no flips. The kernel calls this once per region. ---- */
SEC("lsm/file_mprotect")
int BPF_PROG(krsi_file_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot, int ret)
{
	struct krsi_config *c;
	__u32 tgid;
	struct krsi_verdict *v;
	__u64 count = 0;

	if (ret)
		return earlier(ret);   /* an earlier LSM already refused */
	if (!(prot & PROT_EXEC))
		return 0;     /* nothing executable (effective prot): allow, not counted */
	c = cfg();
	tgid = bpf_get_current_pid_tgid() >> 32;
	if (exempt(tgid, c))
		return 0;     /* init and krsi are never denied (nor counted) */
	if (c && c->mprotect_limit) {
		unsigned long fl = vma->vm_flags;
		bool flip = !(prot & PROT_WRITE) && !(fl & VM_EXEC) && ((fl & VM_WRITE) || vma->anon_vma);
		__u64 *n = bpf_map_lookup_elem(&mprotect_count, &tgid);
		if (flip) {
			if (n) {
				count = __sync_fetch_and_add(n, 1) + 1;
			} else {
				__u64 one = 1;
				if (bpf_map_update_elem(&mprotect_count, &tgid, &one, BPF_NOEXIST) == 0)
					count = 1;   /* first flip of this tgid */
				else if ((n = bpf_map_lookup_elem(&mprotect_count, &tgid)))
					count = __sync_fetch_and_add(n, 1) + 1;   /* another thread raced us */
			}
		} else if (n) {
			count = *n;   /* not a flip: the count so far */
		}
	}
	v = live(&deny_tgid, &tgid);
	if (v && (v->ops & KRSI_OP_MPROTECT_EXEC))
		return deny(c, KRSI_OP_MPROTECT_EXEC, KRSI_DENY_TGID, v->rule_id, 0);   /* a denied/quarantined process */
	if (c && c->mprotect_limit && count > c->mprotect_limit)
		return deny(c, KRSI_OP_MPROTECT_EXEC, KRSI_DENY_MPROTECT_LIMIT, 0, 0);  /* over the talk's limit */
	return 0;         /* under the limit, no verdict: allow */
}

/* ---- mmap (and mprotect's sibling): an executable mapping (effective prot) by a tgid with an
 * mprotect_exec verdict or over the flip counter is refused as its mprotect would be: so the verdict, the
 * quarantine and the counter cannot be sidestepped by mapping W+X (or RX over written data) directly.
 * An mmap is never a flip (a new mapping holds no written data): not counted. (The deny list of inodes has
 * its own mmap_file program.) ---- */
/* an executable mapping by the current process: refused under an mprotect_exec verdict (or quarantine) and past
 * the flip counter's limit, as its mprotect would be; krsi_mmap_file and krsi_shm_shmat */
static __always_inline int exec_mapping(void)
{
	struct krsi_config *c = cfg();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct krsi_verdict *v;
	__u64 *n;

	if (exempt(tgid, c))
		return 0;     /* init and krsi are never denied */
	v = live(&deny_tgid, &tgid);
	if (v && (v->ops & KRSI_OP_MPROTECT_EXEC))
		return deny(c, KRSI_OP_MPROTECT_EXEC, KRSI_DENY_TGID, v->rule_id, 0);   /* a denied/quarantined process */
	if (c && c->mprotect_limit && (n = bpf_map_lookup_elem(&mprotect_count, &tgid)) && *n > c->mprotect_limit)
		return deny(c, KRSI_OP_MPROTECT_EXEC, KRSI_DENY_MPROTECT_LIMIT, 0, 0);  /* over the flip limit */
	return 0;         /* no verdict, under the limit: allow */
}

SEC("lsm/mmap_file")
int BPF_PROG(krsi_mmap_file, struct file *file, unsigned long reqprot, unsigned long prot, unsigned long flags, int ret)
{
	if (ret)
		return earlier(ret);   /* an earlier LSM already refused */
	if (!(prot & PROT_EXEC))
		return 0;     /* not executable: allow (most mappings) */
	return exec_mapping();
}

/* ---- shmat(SHM_EXEC): a SysV segment attached executable (do_shmat maps it without mmap_file), refused as
 * an executable mmap is ---- */
#define SHM_EXEC 0100000
struct kern_ipc_perm;

SEC("lsm/shm_shmat")
int BPF_PROG(krsi_shm_shmat, struct kern_ipc_perm *perm, char *shmaddr, int shmflg, int ret)
{
	if (ret)
		return earlier(ret);   /* an earlier LSM already refused */
	if (!(shmflg & SHM_EXEC))
		return 0;     /* not executable: allow */
	return exec_mapping();
}

/* a module file refused by deny_inode or the denylist: remember it for this tgid's memory fallback
 * (only when enforcing: in monitor mode the file load goes ahead, there is no fallback) */
static __always_inline int refuse_module_file(struct krsi_config *c, __u32 tgid, __u32 reason, __u32 rule_id,
					      const struct krsi_inode_key *k)
{
	if (c && c->enforce) {
		struct module_refusal r = { .until = bpf_ktime_get_boot_ns() + MODULE_REFUSAL_NS, .reason = reason, .rule_id = rule_id };
		bpf_map_update_elem(&module_refused, &tgid, &r, BPF_ANY);
	}
	return deny(c, KRSI_OP_MODULE_LOAD, reason, rule_id, k);
}

/* kernels from late 2025 read a compressed module (finit_module with MODULE_INIT_COMPRESSED_FILE) under an id of
 * its own, READING_MODULE_COMPRESSED (7 upstream); 6.1 and 6.12 read it as READING_MODULE. CO-RE asks the
 * running kernel's BTF whether the value exists and what it is, at load time (bpf/features.ts reports it) */
enum kernel_read_file_id___krsi { READING_MODULE_COMPRESSED___krsi = 7 };

static __always_inline bool module_file(int id)
{
	if (id == READING_MODULE)
		return true;
	if (bpf_core_enum_value_exists(enum kernel_read_file_id___krsi, READING_MODULE_COMPRESSED___krsi))
		return id == bpf_core_enum_value(enum kernel_read_file_id___krsi, READING_MODULE_COMPRESSED___krsi);
	return false;   /* no such id on this kernel: compressed modules come as READING_MODULE */
}

/* does the inode's ctime still match the stamp taken when the allowlist was resolved? */
static __always_inline bool same_ctime(struct inode *ino, const struct krsi_file_stamp *s)
{
	__s64 sec;
	__u32 nsec;

	if (bpf_core_field_exists(struct inode___ctime_split, i_ctime_sec)) {
		sec = BPF_CORE_READ((struct inode___ctime_split *)ino, i_ctime_sec);
		nsec = BPF_CORE_READ((struct inode___ctime_split *)ino, i_ctime_nsec);
	} else if (bpf_core_field_exists(struct inode___ctime_priv, __i_ctime)) {
		sec = BPF_CORE_READ((struct inode___ctime_priv *)ino, __i_ctime.tv_sec);
		nsec = BPF_CORE_READ((struct inode___ctime_priv *)ino, __i_ctime.tv_nsec);
	} else {
		sec = BPF_CORE_READ((struct inode___ctime_ts *)ino, i_ctime.tv_sec);
		nsec = BPF_CORE_READ((struct inode___ctime_ts *)ino, i_ctime.tv_nsec);
	}
	/* multigrain timestamps (6.13+) keep I_CTIME_QUERIED in bit 31 of i_ctime_nsec and set it when stat()
	 * reads the time: nanoseconds are below 2^30, so the flag is masked off before comparing */
	nsec &= 0x3fffffff;
	return sec == s->ctime_sec && nsec == (s->ctime_nsec & 0x3fffffff);
}

/* a kernel_read_file / kernel_load_data that is not a module, in allowlist mode: firmware, policy and
 * certificates pass; a kexec image or initramfs is refused; any other id fails closed */
static __always_inline int other_read(int id, const struct krsi_inode_key *k)
{
	struct krsi_config *c = cfg();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!c || !(c->module_mode & KRSI_MODULE_ALLOWLIST))
		return 0;     /* no allowlist: not ours */
	if (exempt(tgid, c))
		return 0;     /* init and krsi are never denied */
	if (id == READING_FIRMWARE || id == READING_POLICY || id == READING_X509_CERTIFICATE)
		return 0;     /* not code the kernel runs as its own */
	if (id == READING_KEXEC_IMAGE || id == READING_KEXEC_INITRAMFS)
		return deny(c, KRSI_OP_MODULE_LOAD, KRSI_DENY_KEXEC, 0, k);   /* another kernel: the allowlist's way around */
	return deny(c, KRSI_OP_MODULE_LOAD, KRSI_DENY_READ_ID, 0, k);     /* an id this build does not know: fail closed */
}

/* ---- module from a file (finit_module): verdicts, denylist, allowlist ---- */
SEC("lsm/kernel_read_file")
int BPF_PROG(krsi_kernel_read_file, struct file *file, int id, bool contents, int ret)
{
	struct krsi_config *c;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct krsi_inode_key k;
	struct krsi_verdict *v;

	if (ret)
		return earlier(ret);   /* an earlier LSM already refused */
	if (!module_file(id)) {
		if (!file)
			return other_read(id, 0);
		inode_key(file, &k);
		return other_read(id, &k);   /* firmware, kexec, policy...: only the allowlist cares */
	}
	c = cfg();
	if (exempt(tgid, c))
		return 0;     /* init and krsi are never denied */
	inode_key(file, &k);
	v = live(&deny_inode, &k);
	if (v && (v->ops & KRSI_OP_MODULE_LOAD))
		return refuse_module_file(c, tgid, KRSI_DENY_INODE, v->rule_id, &k);   /* a denied module file */
	v = live(&deny_tgid, &tgid);
	if (v && (v->ops & KRSI_OP_MODULE_LOAD))
		return deny(c, KRSI_OP_MODULE_LOAD, KRSI_DENY_TGID, v->rule_id, &k);    /* a denied process */
	if (!c || !c->module_mode)
		return 0;     /* module lists off: allow */
	if ((c->module_mode & KRSI_MODULE_DENYLIST) && (v = live(&module_deny, &k)))
		return refuse_module_file(c, tgid, KRSI_DENY_MODULE_DENY, v->rule_id, &k);   /* on the denylist */
	if (c->module_mode & KRSI_MODULE_ALLOWLIST) {
		struct krsi_file_stamp *st;

		if (!live(&module_allow, &k))
			return deny(c, KRSI_OP_MODULE_LOAD, KRSI_DENY_MODULE_ALLOW, 0, &k);   /* not on the allowlist */
		st = bpf_map_lookup_elem(&module_stamp, &k);
		if (st && !same_ctime(file->f_inode, st))
			return deny(c, KRSI_OP_MODULE_LOAD, KRSI_DENY_MODULE_CHANGED, 0, &k);   /* rewritten since it was allowlisted */
	}
	return 0;         /* allowed by the lists */
}

/* ---- module from memory (init_module): no file to check, so the allowlist refuses it; a tgid whose
 * module file was just refused is refused here too. A denylist (by inode) is otherwise bypassed by
 * another process loading the module from memory, or by a copy of the file (a new inode): allowlist
 * mode is the strong one. ---- */
SEC("lsm/kernel_load_data")
int BPF_PROG(krsi_kernel_load_data, int id, bool contents, int ret)
{
	struct krsi_config *c;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct krsi_verdict *v;
	struct module_refusal *r;

	if (ret)
		return earlier(ret);   /* an earlier LSM already refused */
	if (id != LOADING_MODULE)
		return other_read(id, 0);   /* firmware, kexec_load, policy...: only the allowlist cares (same ids) */
	c = cfg();
	if (exempt(tgid, c))
		return 0;     /* init and krsi are never denied */
	v = live(&deny_tgid, &tgid);
	if (v && (v->ops & KRSI_OP_MODULE_LOAD))
		return deny(c, KRSI_OP_MODULE_LOAD, KRSI_DENY_TGID, v->rule_id, 0);   /* a denied process */
	r = bpf_map_lookup_elem(&module_refused, &tgid);
	if (r && bpf_ktime_get_boot_ns() < r->until)
		return deny(c, KRSI_OP_MODULE_LOAD, r->reason, r->rule_id, 0);   /* the fallback of a refused file load */
	if (c && (c->module_mode & KRSI_MODULE_ALLOWLIST))
		return deny(c, KRSI_OP_MODULE_LOAD, KRSI_DENY_MODULE_ALLOW, 0, 0);   /* allowlist: an unnamed blob cannot be on it */
	return 0;         /* no allowlist: allow */
}

/* ---- lifecycle: a new process inherits its parent's tgid verdict (same ops, same expiry), so a
 * quarantined process cannot escape by forking and exec'ing from the child. Threads share the tgid and
 * need nothing; the mprotect counter is not inherited (the child counts its own calls). The tracepoint
 * fires in kernel_clone() before the child is woken, so the child never runs without the entry. ---- */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(krsi_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid;
	__u32 ctgid = child->tgid;
	struct krsi_verdict *v, copy;

	if (ctgid == ptgid)
		return 0;     /* a new thread of the same process */
	v = live(&deny_tgid, &ptgid);
	if (!v)
		return 0;     /* no live verdict on the parent: nothing to inherit (the common case) */
	if (exempt(ptgid, cfg()))
		return 0;     /* an entry on init or krsi is ignored, so it is not spread to their children */
	copy = *v;
	bpf_map_update_elem(&deny_tgid, &ctgid, &copy, BPF_ANY);
	return 0;
}

/* ---- lifecycle: a tgid verdict and the counter end with the process (a reused pid starts clean), and
 * so does krsi's exemption: however krsi ends (SIGKILL, OOM, a crash), no later process with its pid is
 * exempt. A new krsi writes its own tgid at start; one racing this exit loses only its exemption. ---- */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(krsi_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;
	struct krsi_config *c;

	if (p->signal->live.counter != 0)
		return 0;     /* other threads still run: the process lives on */
	c = cfg();
	if (c && c->krsi_tgid == tgid)
		c->krsi_tgid = 0;   /* krsi is gone: its pid is nobody's exemption */
	/* look first: a lookup takes no lock, a delete does, and most processes have no entry */
	if (bpf_map_lookup_elem(&deny_tgid, &tgid))
		bpf_map_delete_elem(&deny_tgid, &tgid);
	if (bpf_map_lookup_elem(&mprotect_count, &tgid))
		bpf_map_delete_elem(&mprotect_count, &tgid);
	if (bpf_map_lookup_elem(&module_refused, &tgid))
		bpf_map_delete_elem(&module_refused, &tgid);
	return 0;
}

/* ---- lifecycle: the W->X flip counter is the image's, and starts again at exec. Not at sched_process_exec:
 * the new image is mapped (mmap_file, PROT_EXEC) before that tracepoint, and a counter over the limit would
 * refuse it after the point of no return (the process dies). bprm_committing_creds runs in begin_new_exec,
 * past the point of no return and before the ELF loader maps anything; a failed exec never gets here (no
 * reset by a refused exec). A void hook: returns 0. ---- */
SEC("lsm/bprm_committing_creds")
int BPF_PROG(krsi_exec_reset, struct linux_binprm *bprm)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	/* look first: a lookup takes no lock, a delete does, and most processes have no entry */
	if (bpf_map_lookup_elem(&mprotect_count, &tgid))
		bpf_map_delete_elem(&mprotect_count, &tgid);
	return 0;
}

/* ---- quarantine: the kill op. A process under a live deny_tgid entry with the KILL bit gets SIGKILL at
 * its next guarded operation: one program per hook, each one lookup (allow on a miss, the common case).
 * bpf_send_signal() signals the current task's process, so it must run in the target's context, which
 * an LSM hook does; the operation is refused too (the signal lands on the way back to user space).
 * Monitor mode (config.enforce 0): reported, not killed. krsi also kills at once from user space
 * (enforcers/kill.ts); this is what no race with the verdict's write can get past. ---- */
#define SIGKILL 9

static __always_inline int kill_check(int ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct krsi_config *c;
	struct krsi_verdict *v;

	if (ret)
		return earlier(ret);   /* an earlier LSM already refused */
	v = bpf_map_lookup_elem(&deny_tgid, &tgid);
	if (!v || !(v->ops & KRSI_OP_KILL))
		return 0;     /* no kill verdict: allow (the common case) */
	if (v->expires && bpf_ktime_get_boot_ns() >= v->expires)
		return 0;     /* expired: allow */
	c = cfg();
	if (exempt(tgid, c))
		return 0;     /* init and krsi are never killed */
	if (c && c->enforce)
		bpf_send_signal(SIGKILL);   /* to the current process (all its threads) */
	return deny(c, KRSI_OP_KILL, KRSI_DENY_TGID, v->rule_id, 0);
}

struct socket;
struct sockaddr;

SEC("lsm/bprm_check_security")
int BPF_PROG(krsi_kill_exec, struct linux_binprm *bprm, int ret) { return kill_check(ret); }

SEC("lsm/file_mprotect")
int BPF_PROG(krsi_kill_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot, int ret) { return kill_check(ret); }

SEC("lsm/mmap_file")
int BPF_PROG(krsi_kill_mmap, struct file *file, unsigned long reqprot, unsigned long prot, unsigned long flags, int ret) { return kill_check(ret); }

SEC("lsm/file_open")
int BPF_PROG(krsi_kill_open, struct file *file, int ret) { return kill_check(ret); }

/* runs in the forking process (current), before the child exists */
SEC("lsm/task_alloc")
int BPF_PROG(krsi_kill_fork, struct task_struct *task, unsigned long clone_flags, int ret) { return kill_check(ret); }

SEC("lsm/socket_connect")
int BPF_PROG(krsi_kill_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret) { return kill_check(ret); }

/* ---- other doors to a denied binary: ld.so ./copy-of-a-denied-binary maps the file PROT_EXEC without a
 * bprm_check on it, and so can any program (mmap of the file, or mprotect(PROT_EXEC) of a mapping of it).
 * The exec deny list (deny_inode with EXEC) refuses those too. Separate programs from the W+X ones. ---- */
struct vm_area_struct___krsi_q { struct file *vm_file; } __attribute__((preserve_access_index));

static __always_inline int denied_mapping(struct file *file, unsigned long prot)
{
	struct krsi_inode_key k;
	struct krsi_verdict *v;
	struct krsi_config *c;

	if (!file || !(prot & PROT_EXEC))
		return 0;     /* anonymous, or not executable: not this door */
	if (file->f_inode == BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), mm, exe_file, f_inode))
		return 0;     /* the process's own executable: an exec bprm_check let through maps its image here (monitor
			       * mode would report it twice; a detach in flight would kill the exec with SIGSEGV) */
	inode_key(file, &k);
	v = live(&deny_inode, &k);
	if (!v || !(v->ops & KRSI_OP_EXEC))
		return 0;     /* not a denied binary: allow */
	c = cfg();
	if (exempt(bpf_get_current_pid_tgid() >> 32, c))
		return 0;     /* init and krsi are never denied */
	return deny(c, KRSI_OP_EXEC, KRSI_DENY_INODE, v->rule_id, &k);   /* running a denied binary's code */
}

/* mmap(file, PROT_EXEC): prot is the effective protection (READ_IMPLIES_EXEC applied), reqprot what was asked */
SEC("lsm/mmap_file")
int BPF_PROG(krsi_mmap_denied, struct file *file, unsigned long reqprot, unsigned long prot, unsigned long flags, int ret)
{
	if (ret)
		return earlier(ret);   /* an earlier LSM already refused */
	return denied_mapping(file, reqprot | prot);
}

/* mprotect(PROT_EXEC) of a mapping of a denied file (mapped readable first) */
SEC("lsm/file_mprotect")
int BPF_PROG(krsi_mprotect_denied, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot, int ret)
{
	struct vm_area_struct___krsi_q *q = (void *)vma;

	if (ret)
		return earlier(ret);   /* an earlier LSM already refused */
	return denied_mapping(q->vm_file, reqprot | prot);
}
