// protecthelper: the attacker's side of test/vm/protect.test.ts (built on the host with cc -static).
//   protecthelper PID    try, on process PID: ptrace(PTRACE_ATTACH) (then detach), process_vm_readv of one
//                        byte, open(/proc/PID/mem, O_RDWR), pidfd_getfd of its fd 0; print
//                        "ptrace=E vmread=E mem=E getfd=E" (E: errno, 0 = it worked; vmread reads address
//                        0x10000, so EFAULT (14) also means the access check passed)
//   protecthelper hold PIN   open the pinned config map (BPF_OBJ_GET), print "held fd=N" (or "errno=E"),
//                        wait for a line on stdin, then set its krsi_tgid to 0 through that old fd and
//                        print "update=E"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static long bpf(int cmd, union bpf_attr *a) {
	return syscall(SYS_bpf, cmd, a, sizeof(*a));
}

static int hold(const char *pin) {
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.pathname = (uintptr_t)pin;
	int fd = bpf(BPF_OBJ_GET, &a);
	if (fd < 0) { printf("errno=%d\n", errno); return 1; }
	printf("held fd=%d\n", fd);
	char line[64];
	if (!fgets(line, sizeof line, stdin)) return 2;
	uint32_t key = 0, v[4];   /* struct krsi_config: krsi_tgid, mprotect_limit, module_mode, enforce */
	memset(&a, 0, sizeof a);
	a.map_fd = fd; a.key = (uintptr_t)&key; a.value = (uintptr_t)v;
	if (bpf(BPF_MAP_LOOKUP_ELEM, &a)) { printf("lookup=%d\n", errno); return 1; }
	v[0] = 0;
	printf("update=%d\n", bpf(BPF_MAP_UPDATE_ELEM, &a) ? errno : 0);
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 2) { fprintf(stderr, "usage: protecthelper PID | hold PIN\n"); return 2; }
	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(argv[1], "hold") && argc > 2) return hold(argv[2]);
	pid_t pid = atoi(argv[1]);
	int e_ptrace = 0, e_vm = 0, e_mem = 0, e_getfd = 0;
	if (ptrace(PTRACE_ATTACH, pid, 0, 0) == 0) {
		waitpid(pid, NULL, __WALL);
		ptrace(PTRACE_DETACH, pid, 0, 0);
	} else e_ptrace = errno;
	char b;
	struct iovec local = { &b, 1 }, remote = { (void *)0x10000, 1 };
	if (process_vm_readv(pid, &local, 1, &remote, 1, 0) < 0) e_vm = errno;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mem", pid);
	int fd = open(path, O_RDWR);
	if (fd < 0) e_mem = errno; else close(fd);
	int pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) e_getfd = errno;
	else {
		fd = syscall(SYS_pidfd_getfd, pidfd, 0, 0);
		if (fd < 0) e_getfd = errno; else close(fd);
		close(pidfd);
	}
	printf("ptrace=%d vmread=%d mem=%d getfd=%d\n", e_ptrace, e_vm, e_mem, e_getfd);
	return 0;
}
