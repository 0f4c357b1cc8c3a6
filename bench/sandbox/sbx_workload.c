/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Syscall-heavy workloads for the sandbox benchmark: `getppid N` (the cheapest syscall, so
 * the seccomp filter's per-call cost dominates) and `openclose N PATH` (path lookup under
 * Landlock). Run inside and outside a session by bench/sandbox/bench.sh.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 2 ? atol(argv[2]) : 1000000;

	if (argc > 1 && strcmp(argv[1], "getppid") == 0) {
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "openclose") == 0) {
		const char *path = argc > 3 ? argv[3] : "/etc/hostname";
		for (long i = 0; i < n; i++) {
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				perror(path);
				return 1;
			}
			close(fd);
		}
		return 0;
	}
	fprintf(stderr, "usage: sbx_workload getppid|openclose N [PATH]\n");
	return 2;
}
