/* SPDX-License-Identifier: GPL-2.0 */
/* lsm.h - what krsi's BPF-LSM programs (enforce.bpf.c, protect.bpf.c) share on the BPF side: the return value
 * every hook goes through, and the header of the `denied` record both write. Include it after the program's
 * CO-RE declarations of task_struct (tgid, real_parent, mm), mm_struct (exe_file), file (f_inode), inode
 * (i_ino, i_sb) and super_block (s_dev), which denied_header() reads. */
#ifndef KRSI_LSM_H
#define KRSI_LSM_H

#define MAX_ERRNO 4095

/* what a hook returns, provably in [-MAX_ERRNO, 0]: from 6.12 the verifier refuses an LSM program unless it
 * can prove that range at every exit. The value is range-checked and the checked register itself is
 * returned (clang would otherwise test a sign-extended copy and return the unchecked original, or compute
 * `enforce ? -EPERM : 0` as a negation the verifier cannot bound); anything outside the range is a refusal */
static __always_inline int lsm_ret(int ret)
{
	long e = ret;

	asm volatile("" : "+r"(e));
	if (e < -MAX_ERRNO || e > 0)
		return -1;   /* -EPERM */
	return e;
}

/* an earlier BPF-LSM program's refusal, passed on */
static __always_inline int earlier(int ret)
{
	return lsm_ret(ret);
}

/* the header of a `denied` record (krsi.h struct krsi_denied_event) for the current task */
static __always_inline void denied_header(struct krsi_hdr *hdr)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct file *exe;

	hdr->ts = bpf_ktime_get_boot_ns();
	hdr->kind = KRSI_EV_DENIED;
	hdr->pid = pid_tgid >> 32;
	hdr->tid = (__u32)pid_tgid;
	hdr->ppid = BPF_CORE_READ(task, real_parent, tgid);
	hdr->uid = (__u32)bpf_get_current_uid_gid();
	hdr->_pad = 0;
	hdr->cgroup = bpf_get_current_cgroup_id();
	hdr->exe.ino = 0;
	hdr->exe.dev = 0;
	hdr->exe.nlink = 0;
	exe = BPF_CORE_READ(task, mm, exe_file);
	if (exe) {
		hdr->exe.ino = BPF_CORE_READ(exe, f_inode, i_ino);
		hdr->exe.dev = BPF_CORE_READ(exe, f_inode, i_sb, s_dev);
	}
	bpf_get_current_comm(hdr->comm, sizeof(hdr->comm));
}

#endif
