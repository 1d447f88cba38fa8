// probe.bpf.c - the two tiny programs bpf/support.ts loads to find what this kernel can do.
// Neither is ever left attached: supported() loads, (for the tracepoint) attaches, then closes.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* can tp/ programs load and attach (through tracefs)? */
SEC("tp/syscalls/sys_enter_getppid")
int probe_tp(void *ctx)
{
	return 0;
}

/* can BTF-enabled tracepoint programs (tp_btf/, used for exec) load and attach? */
SEC("tp_btf/sched_process_exec")
int probe_tp_btf(void *ctx)
{
	return 0;
}

/* do LSM programs load (BPF LSM built in and allowed)? always allows */
SEC("lsm/file_mprotect")
int probe_lsm(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
