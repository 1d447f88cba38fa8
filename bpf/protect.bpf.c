// SPDX-License-Identifier: GPL-2.0
/* protect.bpf.c - krsi's self-protection while enforcing: BPF-LSM programs that refuse, to every
 * process but krsi and pid 1, what would switch enforcement off: an fd on krsi's maps,
 * detaching or replacing its links, unlinking or renaming its pins, unmounting their bpffs, ptrace-attaching
 * krsi. A signal that would stop krsi is reported, not refused. Each is a `denied` event (op TAMPER) in
 * enforce.bpf.c's ring buffer, counted in tamper_count.
 * Loaded by enforcers/protect.ts, which sets krsi_tgid, reuses enforce.bpf.c's pinned `denied_events` and
 * fills protected_ids / protected_inodes / stop_allowed; the links are held by krsi run only, so the
 * programs detach when it exits. Structs and constants: krsi.h (should match: bpf/abi.ts). Hook signatures:
 * Debian 12's 6.1 (lsm_hook_defs.h). */
#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "krsi.h"

char LICENSE[] SEC("license") = "GPL";

#define EPERM 1
#define PTRACE_MODE_ATTACH 0x02
#define SIGINT_ 2
#define SIGCHLD_ 17
#define SIGCONT_ 18
#define SIGURG_ 23
#define SIGWINCH_ 28

/* ---- the kernel fields we read (CO-RE) ---- */
struct super_block { __u32 s_dev; } __attribute__((preserve_access_index));
struct inode { unsigned long i_ino; struct super_block *i_sb; unsigned int __i_nlink; } __attribute__((preserve_access_index));
struct dentry { struct inode *d_inode; } __attribute__((preserve_access_index));
struct file { struct inode *f_inode; void *private_data; } __attribute__((preserve_access_index));
struct fdtable { unsigned int max_fds; struct file **fd; } __attribute__((preserve_access_index));
struct files_struct { struct fdtable *fdt; } __attribute__((preserve_access_index));
struct mm_struct { struct file *exe_file; } __attribute__((preserve_access_index));
struct task_struct {
	int tgid;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct files_struct *files;
} __attribute__((preserve_access_index));
struct bpf_map { __u32 id; } __attribute__((preserve_access_index));
struct bpf_link { __u32 id; } __attribute__((preserve_access_index));
struct vfsmount { struct super_block *mnt_sb; } __attribute__((preserve_access_index));
struct kernel_siginfo;
struct cred;

/* krsi's tgid, set before load and read-only after: not enforce.bpf.c's config.krsi_tgid, which a map fd
 * opened while krsi was down could still rewrite (protection can refuse new fds, not revoke old ones) */
const volatile __u32 krsi_tgid = 0;

#include "hdr.h"   /* fill_hdr(): after the CO-RE declarations it reads */
#include "lsm.h"

/* ---- maps ---- */
/* enforce.bpf.c's ring buffer, reused through its pin (enforcers/maps.ts MAP_PINS): same definition */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} denied_events SEC(".maps");

/* krsi's maps and links (its own, enforce.bpf.c's, signals.bpf.c's): presence */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct krsi_obj_key);
	__type(value, __u8);
} protected_ids SEC(".maps");

/* krsi's pins and pin directories, as (s_dev, i_ino): presence */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct krsi_inode_key);
	__type(value, __u8);
} protected_inodes SEC(".maps");

/* executables (s_dev, i_ino) whose processes may stop krsi unreported (krsi run --allow-stop-from) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct krsi_inode_key);
	__type(value, __u8);
} stop_allowed SEC(".maps");

/* attempts per enum krsi_deny_reason (slot 0: ring buffer records lost) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KRSI_TAMPER_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} tamper_count SEC(".maps");

/* ---- helpers ---- */
/* krsi's tgid when protection applies to the current task; 0: allow (krsi itself, pid 1) */
static __always_inline __u32 guarded(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!krsi_tgid || tgid == krsi_tgid || tgid == 1)
		return 0;
	return krsi_tgid;
}

static __always_inline void bump(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&tamper_count, &slot);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* a denied event (op TAMPER) and its count; returns what the hook returns: -EPERM, or 0 when only reported */
static __always_inline int tamper(__u32 reason, __u64 what, __u32 dev, bool refuse)
{
	struct krsi_denied_event *ev;

	bump(reason);
	ev = bpf_ringbuf_reserve(&denied_events, sizeof(*ev), 0);
	if (!ev) {
		bump(0);   /* record lost: counted, the refusal still holds */
		return lsm_ret(refuse ? -EPERM : 0);
	}
	fill_hdr(&ev->hdr, KRSI_EV_DENIED);
	ev->op = KRSI_OP_TAMPER;
	ev->reason = reason;
	ev->rule_id = 0;
	ev->enforced = refuse;
	ev->inode.ino = what;
	ev->inode.dev = dev;
	ev->inode._pad = 0;
	bpf_ringbuf_submit(ev, 0);
	return lsm_ret(refuse ? -EPERM : 0);
}

static __always_inline bool is_protected(__u32 kind, __u32 id)
{
	struct krsi_obj_key k = { .kind = kind, .id = id };
	return id && bpf_map_lookup_elem(&protected_ids, &k);
}

/* a dentry's inode is one of krsi's pins or pin directories; fills k */
static __always_inline bool pinned(struct dentry *d, struct krsi_inode_key *k)
{
	struct inode *ino = BPF_CORE_READ(d, d_inode);
	if (!ino)
		return false;   /* a negative dentry (rename target that does not exist) */
	k->ino = BPF_CORE_READ(ino, i_ino);
	k->dev = BPF_CORE_READ(ino, i_sb, s_dev);
	k->_pad = 0;
	return bpf_map_lookup_elem(&protected_inodes, k);
}

/* the link id behind the current task's fd, or 0 (read racily: a wrong guess refuses only a call on
 * an fd that is not a link, which fails anyway) */
static __always_inline __u32 link_id_of_fd(__u32 fd)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **arr, *f = 0;
	struct bpf_link *l;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	arr = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	if (!f)
		return 0;
	l = BPF_CORE_READ(f, private_data);
	return l ? BPF_CORE_READ(l, id) : 0;
}

/* ---- an fd on a krsi map: any mode (a read-only fd still lets a loaded program write the map) ---- */
SEC("lsm/bpf_map")
int BPF_PROG(krsi_protect_map, struct bpf_map *map, unsigned int fmode, int ret)
{
	__u32 id;

	if (ret)
		return earlier(ret);   /* an earlier LSM already refused */
	if (!guarded())
		return 0;     /* krsi / pid 1 itself */
	id = map->id;
	if (is_protected(KRSI_OBJ_MAP, id))
		return tamper(KRSI_DENY_TAMPER_MAP, id, fmode, true);
	return 0;         /* another map: allow */
}

/* ---- bpf(2) on a krsi link: an fd by id, detach, or replacing its program ---- */
/* how many arguments the kernel's bpf hook takes, set by enforcers/protect.ts from the kernel's BTF before load:
 * 3 (cmd, attr, size) up to 6.15; 6.16 added `bool kernel`. The LSM's ret comes after them, so a program
 * written for one reads the other's `kernel` flag as ret (and refused every bpf() made from inside the
 * kernel). The branch not taken is never verified: the value is known at load */
const volatile __u32 bpf_hook_args = 3;

SEC("lsm/bpf")
int krsi_protect_bpf(unsigned long long *ctx)
{
	int cmd = (int)ctx[0];
	union bpf_attr *attr = (union bpf_attr *)ctx[1];
	__u32 first = 0, id = 0;
	int ret;

	/* two loads at constant offsets (the verifier refuses a ctx access at a computed one) */
	if (bpf_hook_args == 4) {
		ret = (int)ctx[4];
		asm volatile("" : "+r"(ret));
	} else {
		ret = (int)ctx[3];
	}

	if (ret)
		return earlier(ret);   /* an earlier LSM already refused */
	if (cmd != BPF_LINK_GET_FD_BY_ID && cmd != BPF_LINK_DETACH && cmd != BPF_LINK_UPDATE)
		return 0;     /* not about links: allow */
	if (!guarded())
		return 0;     /* krsi / pid 1 itself */
	/* link_id, link_detach.link_fd and link_update.link_fd all are the attr's first __u32 */
	bpf_probe_read_kernel(&first, sizeof(first), attr);
	id = cmd == BPF_LINK_GET_FD_BY_ID ? first : link_id_of_fd(first);
	if (is_protected(KRSI_OBJ_LINK, id))
		return tamper(KRSI_DENY_TAMPER_LINK, id, cmd, true);
	return 0;         /* another link: allow */
}

/* ---- pins: unlink, rmdir, rename (from or over) ---- */
SEC("lsm/inode_unlink")
int BPF_PROG(krsi_protect_unlink, struct inode *dir, struct dentry *dentry, int ret)
{
	struct krsi_inode_key k;

	if (ret)
		return earlier(ret);
	if (!guarded() || !pinned(dentry, &k))
		return 0;     /* not a krsi pin, or krsi / pid 1 */
	return tamper(KRSI_DENY_TAMPER_PIN, k.ino, k.dev, true);
}

SEC("lsm/inode_rmdir")
int BPF_PROG(krsi_protect_rmdir, struct inode *dir, struct dentry *dentry, int ret)
{
	struct krsi_inode_key k;

	if (ret)
		return earlier(ret);
	if (!guarded() || !pinned(dentry, &k))
		return 0;     /* not a krsi pin directory */
	return tamper(KRSI_DENY_TAMPER_PIN, k.ino, k.dev, true);
}

SEC("lsm/inode_rename")
int BPF_PROG(krsi_protect_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
	     struct dentry *new_dentry, int ret)
{
	struct krsi_inode_key k;

	if (ret)
		return earlier(ret);
	if (!guarded())
		return 0;     /* krsi / pid 1 */
	if (pinned(old_dentry, &k) || pinned(new_dentry, &k))
		return tamper(KRSI_DENY_TAMPER_PIN, k.ino, k.dev, true);   /* moving a pin away, or over it */
	return 0;
}

/* ---- unmounting the bpffs that holds the pins drops them (and detaches what only they hold) ---- */
SEC("lsm/sb_umount")
int BPF_PROG(krsi_protect_umount, struct vfsmount *mnt, int flags, int ret)
{
	struct krsi_inode_key k = {};

	if (ret)
		return earlier(ret);
	if (!guarded())
		return 0;
	/* the superblock's root is keyed (dev, 0) by enforcers/protect.ts */
	k.dev = BPF_CORE_READ(mnt, mnt_sb, s_dev);
	if (!bpf_map_lookup_elem(&protected_inodes, &k))
		return 0;     /* another filesystem */
	return tamper(KRSI_DENY_TAMPER_MOUNT, 0, k.dev, true);
}

/* ---- ptrace, process_vm_readv/writev, /proc/PID/mem, pidfd_getfd of krsi (attach mode) ---- */
SEC("lsm/ptrace_access_check")
int BPF_PROG(krsi_protect_ptrace, struct task_struct *child, unsigned int mode, int ret)
{
	__u32 krsi;

	if (ret)
		return earlier(ret);
	if (!(mode & PTRACE_MODE_ATTACH))
		return 0;     /* read mode (ps, /proc/PID/stat): allow */
	krsi = guarded();
	if (!krsi || child->tgid != krsi)
		return 0;     /* not krsi */
	return tamper(KRSI_DENY_TAMPER_PTRACE, krsi, mode, true);
}

/* ---- a signal that would stop krsi: reported, never refused (an admin must be able to stop it) ---- */
SEC("lsm/task_kill")
int BPF_PROG(krsi_protect_kill, struct task_struct *p, struct kernel_siginfo *info, int sig,
	     const struct cred *cred, int ret)
{
	struct task_struct *cur;
	struct krsi_inode_key k = {};
	struct file *exe;
	__u32 krsi;

	if (ret)
		return earlier(ret);
	if (sig == 0 || sig == SIGCHLD_ || sig == SIGCONT_ || sig == SIGURG_ || sig == SIGWINCH_)
		return 0;     /* cannot stop krsi */
	krsi = guarded();
	if (!krsi || p->tgid != krsi)
		return 0;     /* not krsi, or from krsi / pid 1 */
	cur = (struct task_struct *)bpf_get_current_task();
	exe = BPF_CORE_READ(cur, mm, exe_file);
	if (exe) {
		k.ino = BPF_CORE_READ(exe, f_inode, i_ino);
		k.dev = BPF_CORE_READ(exe, f_inode, i_sb, s_dev);
		if (bpf_map_lookup_elem(&stop_allowed, &k))
			return 0;   /* the admin's chosen stopper */
	}
	return tamper(KRSI_DENY_TAMPER_SIGNAL, krsi, sig, false);
}
