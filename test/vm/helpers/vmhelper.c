// vmhelper: small static probes for the in-VM enforcement tests (built on the host with cc -static).
//   vmhelper exec PATH           execv(PATH); on failure print "errno=N" and exit 100
//   vmhelper mprotect N [wait]   (wait: read a line from stdin first) N W->X flips on a fresh page (write it,
//                                mprotect(PROT_READ|PROT_EXEC), mprotect(PROT_READ|PROT_WRITE) again: the in-kernel
//                                counter counts flips); print "ok=N" or "fail=I errno=E" (I: 1-based flip index)
//   vmhelper finit KO [wait]     (wait: read a line from stdin first) finit_module(open(KO)); print "ok" or "errno=N"
//   vmhelper finitz KO           the same with MODULE_INIT_COMPRESSED_FILE (a .ko.xz the kernel decompresses)
//   vmhelper forkexec PATH [wait]  (wait: read a line first) fork; the child sleeps 1 s (the test reads the
//                                maps), then execv(PATH) ("child errno=N", exit 100); the parent prints
//                                "child=PID" at once and "status=S" (the child's exit status) at the end
//   vmhelper init KO             init_module(2) from memory (the file read into a buffer); print "ok" or "errno=N"
//   vmhelper pid1 OUT            (run as pid 1) mprotect PROT_EXEC, write "pid=P mprotect=E" to OUT, power off
//   vmhelper bexec N PATH        bench: N x (fork, execv PATH, wait); print the median ns per round trip
//   vmhelper bmprot N            bench: N x mprotect adding PROT_EXEC (and N dropping it); median ns per call
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp_ll(const void *a, const void *b) {
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

static long long median(long long *v, int n) {
	qsort(v, n, sizeof *v, cmp_ll);
	return n ? v[n / 2] : 0;
}

static int mprotect_exec(void *p) {
	return mprotect(p, 4096, PROT_READ | PROT_EXEC) ? errno : 0;
}

int main(int argc, char **argv) {
	if (argc < 3) { fprintf(stderr, "usage: vmhelper exec|mprotect|finit|pid1 ARG\n"); return 2; }
	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(argv[1], "exec")) {
		execv(argv[2], argv + 2);
		printf("errno=%d\n", errno);
		return 100;
	}
	if (!strcmp(argv[1], "mprotect")) {
		int n = atoi(argv[2]);
		char line[64];
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) { perror("mmap"); return 2; }
		if (argc > 3 && !fgets(line, sizeof line, stdin)) return 2;   /* parent: map entries are in place */
		for (int i = 1; i <= n; i++) {
			*(volatile char *)p = (char)i;
			int e = mprotect_exec(p);
			if (e) { printf("fail=%d errno=%d\n", i, e); return 1; }
			if (mprotect(p, 4096, PROT_READ | PROT_WRITE)) { perror("mprotect rw"); return 2; }
		}
		printf("ok=%d\n", n);
		return 0;
	}
	if (!strcmp(argv[1], "finit") || !strcmp(argv[1], "finitz")) {
		char line[64];
		int flags = argv[1][5] == 'z' ? 4 /* MODULE_INIT_COMPRESSED_FILE */ : 0;
		if (argc > 3 && !fgets(line, sizeof line, stdin)) return 2;   /* wait: parent puts map entries first */
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0) { perror(argv[2]); return 2; }
		if (syscall(SYS_finit_module, fd, "", flags)) { printf("errno=%d\n", errno); return 1; }
		printf("ok\n");
		return 0;
	}
	if (!strcmp(argv[1], "forkexec")) {
		char line[64];
		if (argc > 3 && !fgets(line, sizeof line, stdin)) return 2;   /* wait: parent puts map entries first */
		pid_t c = fork();
		if (c < 0) { perror("fork"); return 2; }
		if (c == 0) {
			sleep(1);
			execl(argv[2], argv[2], (char *)NULL);
			printf("child errno=%d\n", errno);
			_exit(100);
		}
		printf("child=%d\n", c);
		int st;
		waitpid(c, &st, 0);
		printf("status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		return 0;
	}
	if (!strcmp(argv[1], "init")) {
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0) { perror(argv[2]); return 2; }
		off_t len = lseek(fd, 0, SEEK_END);
		char *buf = malloc(len);
		if (!buf || pread(fd, buf, len, 0) != len) { perror("read"); return 2; }
		if (syscall(SYS_init_module, buf, (unsigned long)len, "")) { printf("errno=%d\n", errno); return 1; }
		printf("ok\n");
		return 0;
	}
	if (!strcmp(argv[1], "pid1")) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		int e = p == MAP_FAILED ? errno : mprotect_exec(p);
		FILE *f = fopen(argv[2], "w");
		if (f) { fprintf(f, "pid=%d mprotect=%d\n", getpid(), e); fclose(f); }
		sync();
		reboot(RB_POWER_OFF);
		return 0;
	}
	if (!strcmp(argv[1], "bexec") && argc > 3) {
		int n = atoi(argv[2]);
		long long *v = calloc(n, sizeof *v);
		for (int i = 0; i < n; i++) {
			long long t = now_ns();
			pid_t c = fork();
			if (c == 0) { execl(argv[3], argv[3], (char *)NULL); _exit(127); }
			int st;
			waitpid(c, &st, 0);
			v[i] = now_ns() - t;
			if (!WIFEXITED(st) || WEXITSTATUS(st)) { fprintf(stderr, "bexec: %s failed\n", argv[3]); return 1; }
		}
		printf("%lld\n", median(v, n));
		return 0;
	}
	if (!strcmp(argv[1], "bmprot")) {
		int n = atoi(argv[2]);
		long long *v = calloc(n, sizeof *v);
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		for (int i = 0; i < n; i++) {
			long long t = now_ns();
			if (mprotect(p, 4096, PROT_READ | PROT_EXEC) || mprotect(p, 4096, PROT_READ | PROT_WRITE)) { perror("mprotect"); return 1; }
			v[i] = (now_ns() - t) / 2;
		}
		printf("%lld\n", median(v, n));
		return 0;
	}
	fprintf(stderr, "vmhelper: unknown mode %s\n", argv[1]);
	return 2;
}
