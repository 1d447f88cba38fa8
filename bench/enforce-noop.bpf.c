// SPDX-License-Identifier: GPL-2.0
/* enforce-noop.bpf.c - bench/enforce.ts's baseline: empty LSM programs on the hooks krsi uses, so the
 * cost of krsi's logic can be told apart from the cost of any BPF LSM program on that hook. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("lsm/bprm_check_security")
int BPF_PROG(noop_bprm_check, void *bprm, int ret)
{
	return ret;   /* decide nothing */
}

SEC("lsm/file_mprotect")
int BPF_PROG(noop_file_mprotect, void *vma, unsigned long reqprot, unsigned long prot, int ret)
{
	return ret;   /* decide nothing */
}

SEC("lsm/mmap_file")
int BPF_PROG(noop_mmap_file, void *file, unsigned long reqprot, unsigned long prot, unsigned long flags, int ret)
{
	return ret;   /* decide nothing */
}
