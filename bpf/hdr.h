/* SPDX-License-Identifier: GPL-2.0 */
/* hdr.h - the header every ring buffer record starts with (krsi.h struct krsi_hdr), filled in one place for
 * signals.bpf.c, enforce.bpf.c and protect.bpf.c. Include it after the program's CO-RE declarations of
 * task_struct (tgid, real_parent, mm), mm_struct (exe_file), file (f_inode), inode (i_ino, i_sb, __i_nlink)
 * and super_block (s_dev), which it reads. */
#ifndef KRSI_HDR_H
#define KRSI_HDR_H

/* a file's inode, device (kernel s_dev encoding) and link count */
static __always_inline void file_id(struct file *f, struct krsi_file_id *id)
{
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	id->ino = BPF_CORE_READ(ino, i_ino);
	id->dev = BPF_CORE_READ(ino, i_sb, s_dev);
	id->nlink = BPF_CORE_READ(ino, __i_nlink);
}

/* the common header, from the current task */
static __always_inline void fill_hdr(struct krsi_hdr *h, __u32 kind)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct file *exe;

	h->ts = bpf_ktime_get_boot_ns();
	h->kind = kind;
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->ppid = BPF_CORE_READ(task, real_parent, tgid);
	h->uid = (__u32)bpf_get_current_uid_gid();
	h->_pad = 0;
	h->cgroup = bpf_get_current_cgroup_id();
	h->exe.ino = 0;
	h->exe.dev = 0;
	h->exe.nlink = 0;
	exe = BPF_CORE_READ(task, mm, exe_file);
	if (exe)
		file_id(exe, &h->exe);
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

#endif
