/* SPDX-License-Identifier: Apache-2.0 */
/* Escape class: io_uring, whose operations bypass seccomp's per-syscall view. The baseline
 * denies io_uring_setup, so no ring (and no IORING_OP_OPENAT of the secret) exists. */
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "esc.h"

int main(void)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof(p));
	ESC_DENIED(syscall(SYS_io_uring_setup, 8, &p), EPERM, "io_uring_setup");
	ESC_DENIED(syscall(SYS_io_uring_enter, 3, 1, 0, 0, NULL, 0), EPERM, "io_uring_enter");
	ESC_DENIED(syscall(SYS_io_uring_register, 3, 0, NULL, 0), EPERM, "io_uring_register");
	return esc_status;
}
