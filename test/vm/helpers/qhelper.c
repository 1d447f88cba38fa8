/* qhelper - the processes of the quarantine evasion cases (test/vm/guest/evasion/quarantine.ts and
 * test/live/quarantine.test.ts). Dynamically linked: LD_PRELOAD must reach it.
 *   tree EXE      fork a child that waits, then execs EXE; the parent prints "child=<pid>", reads a line from
 *                 stdin, lets the child go and prints how it ended
 *   wait-open     print "ready", read a line from stdin, then open() files for 2 s; print "survived"
 *   mmapx FILE    mmap FILE PROT_READ|PROT_EXEC; mmap it PROT_READ and mprotect it PROT_READ|PROT_EXEC
 *   wxchild       fork; the child makes a page W+X (mprotect RW -> RWX) and then opens files for 3 s
 *   wxparent      fork a child that opens files for 3 s; the parent makes a page W+X and does the same
 *   wxthread | wxsetsid | wxdouble | wxcloneparent
 *                 the W+X by a thread of the process; by a child that setsid()s first; by a grandchild whose
 *                 parent exited (reparented to init); by a child cloned with CLONE_PARENT (a sibling of the
 *                 helper): each prints "wxpid=<tgid>" of the process that makes the page W+X
 *   (a child's end is printed by its parent: "child status=N" or "child signal=N") */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>

static void nap(long ms) { struct timespec t = { ms / 1000, (ms % 1000) * 1000000L }; nanosleep(&t, 0); }

/* open a file every 50 ms for ms: each open passes the file_open hook */
static void busy(long ms)
{
	for (long t = 0; t < ms; t += 50) {
		int fd = open("/etc/hostname", O_RDONLY);
		if (fd >= 0) close(fd);
		nap(50);
	}
}

static void report(pid_t c)
{
	int st;
	if (waitpid(c, &st, 0) < 0) { printf("child wait errno=%d\n", errno); return; }
	if (WIFSIGNALED(st)) printf("child signal=%d\n", WTERMSIG(st));
	else printf("child status=%d\n", WEXITSTATUS(st));
	fflush(stdout);
}

static int wx(void)
{
	char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) return -1;
	p[0] = (char)0xc3;
	return mprotect(p, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
}

static void *wxthread(void *arg)
{
	(void)arg;
	printf("wxpid=%d thread wx=%d\n", getpid(), wx());
	return 0;
}

static char stack[65536];
static int cloned(void *arg)
{
	(void)arg;
	nap(100);
	printf("wxpid=%d wx=%d\n", getpid(), wx());
	busy(1000);
	return 0;
}

int main(int argc, char **argv)
{
	char line[64];
	setvbuf(stdout, 0, _IOLBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "tree")) {
		int p[2];
		char b;
		if (pipe(p)) return 2;
		pid_t c = fork();
		if (c == 0) {
			close(p[1]);
			if (read(p[0], &b, 1) != 1) _exit(4);
			execl(argv[2], argv[2], (char *)0);
			printf("child exec errno=%d\n", errno);
			_exit(3);
		}
		close(p[0]);
		printf("child=%d\n", c);
		if (!fgets(line, sizeof line, stdin)) return 2;
		if (write(p[1], "g", 1) != 1) return 2;
		report(c);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "wait-open")) {
		printf("ready\n");
		if (!fgets(line, sizeof line, stdin)) return 2;
		busy(2000);
		printf("survived\n");
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "mmapx")) {
		int fd = open(argv[2], O_RDONLY);
		if (fd < 0) { printf("open errno=%d\n", errno); return 2; }
		void *x = mmap(0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
		if (x == MAP_FAILED) printf("mmap errno=%d\n", errno); else printf("mmap ok\n");
		void *r = mmap(0, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
		if (r == MAP_FAILED) { printf("mmap-r errno=%d\n", errno); return 2; }
		if (mprotect(r, 4096, PROT_READ | PROT_EXEC)) printf("mprotect errno=%d\n", errno); else printf("mprotect ok\n");
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "wxchild")) {
		pid_t c = fork();
		if (c == 0) {
			nap(200);
			printf("child wx=%d\n", wx());
			busy(4000);
			printf("child survived\n");
			_exit(0);
		}
		printf("child=%d\n", c);
		report(c);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "wxparent")) {
		pid_t c = fork();
		if (c == 0) {
			busy(4000);
			printf("child survived\n");
			_exit(0);
		}
		printf("child=%d\n", c);
		nap(200);
		printf("parent wx=%d\n", wx());
		busy(4000);
		printf("parent survived\n");
		report(c);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "wxthread")) {
		pthread_t t;
		if (pthread_create(&t, 0, wxthread, 0)) return 2;
		pthread_join(t, 0);
		busy(1000);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "wxsetsid")) {
		pid_t c = fork();
		if (c == 0) {
			setsid();
			printf("wxpid=%d wx=%d\n", getpid(), wx());
			busy(1000);
			_exit(0);
		}
		report(c);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "wxdouble")) {
		pid_t c = fork();
		if (c == 0) {
			if (fork() == 0) {
				nap(300);   /* the middle process is gone by then */
				printf("wxpid=%d ppid=%d wx=%d\n", getpid(), getppid(), wx());
				busy(1000);
				_exit(0);
			}
			_exit(0);
		}
		report(c);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "wxcloneparent")) {
		if (clone(cloned, stack + sizeof stack, CLONE_PARENT | SIGCHLD, 0) < 0) return 2;
		return 0;
	}
	fprintf(stderr, "usage: qhelper tree EXE | wait-open | mmapx FILE | wxchild | wxparent\n");
	return 2;
}
