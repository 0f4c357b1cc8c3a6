// SPDX-License-Identifier: Apache-2.0
/* Demo probe: exits 0 when io_uring_setup succeeds, 1 (printing the errno) when refused. */
#include <errno.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	long fd = syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0) {
		fprintf(stderr, "io_uring_setup: %s\n", strerror(errno));
		return 1;
	}
	close((int)fd);
	return 0;
}
