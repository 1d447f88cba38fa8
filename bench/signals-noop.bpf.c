// SPDX-License-Identifier: GPL-2.0
/* signals-noop.bpf.c - bench/hooks.ts's baseline for the memory signals: empty programs on the
 * tracepoints krsi's mprotect and mmap signals use, so their own cost can be told apart from any BPF
 * program's on the same tracepoint. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp/syscalls/sys_enter_mprotect")
int noop_mprotect(void *ctx)
{
	return 0;
}

SEC("tp/syscalls/sys_enter_mmap")
int noop_mmap_enter(void *ctx)
{
	return 0;
}

SEC("tp/syscalls/sys_exit_mmap")
int noop_mmap_exit(void *ctx)
{
	return 0;
}
