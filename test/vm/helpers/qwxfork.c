/* qwxfork.so - an injected library that makes memory W+X and forks at once (test/enforcers/quarantine.test.ts):
 * the child's fork event is queued behind the W+X event, so the process table does not know the child when
 * the verdict is applied. Its constructor maps a page RWX, reads CLOCK_BOOTTIME (the W+X event's time, as
 * krsi's events carry it), forks; the parent prints "wx=<ns> child=<pid>" to stderr; both go on to run the
 * program (e.g. sleep); with QWXFORK_EXIT set the parent exits at once instead (mmap RWX; fork(); _exit()). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

__attribute__((constructor)) static void qwxfork_init(void)
{
	struct timespec t;
	void *p = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	clock_gettime(CLOCK_BOOTTIME, &t);
	pid_t c = fork();
	if (c == 0) return;
	fprintf(stderr, "wx=%lld child=%d mmap=%s\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec, (int)c, p == MAP_FAILED ? "failed" : "ok");
	if (getenv("QWXFORK_EXIT")) _exit(0);
}
