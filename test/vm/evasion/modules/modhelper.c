// modhelper: the module-area syscalls of the evasion VM run, as a real process (static).
//   modhelper finit KO [PARAMS]   finit_module(open(KO), PARAMS, 0): prints "ok" or "errno=N"
//   modhelper kexec_file FILE     kexec_file_load(FILE, -1, "", KEXEC_FILE_NO_INITRAMFS): prints "ok" or "errno=N"
//   modhelper kexec_load          kexec_load(0, 0 segments, NULL, KEXEC_ARCH_DEFAULT): prints "ok" or "errno=N"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int done(long r)
{
	if (r == 0) { printf("ok\n"); return 0; }
	printf("errno=%d\n", errno);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "finit")) {
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0) { printf("open errno=%d\n", errno); return 2; }
		return done(syscall(SYS_finit_module, fd, argc > 3 ? argv[3] : "", 0));
	}
	if (argc >= 3 && !strcmp(argv[1], "kexec_file")) {
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0) { printf("open errno=%d\n", errno); return 2; }
		return done(syscall(SYS_kexec_file_load, fd, -1, 1UL, "", 0x4UL /* KEXEC_FILE_NO_INITRAMFS */));
	}
	if (argc >= 2 && !strcmp(argv[1], "kexec_load"))
		return done(syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0UL));
	fprintf(stderr, "usage: modhelper finit KO [PARAMS] | kexec_file FILE | kexec_load\n");
	return 2;
}
