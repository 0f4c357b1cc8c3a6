/* SPDX-License-Identifier: Apache-2.0 */
/* Escape class: fileless exec. Copy /bin/true into a memfd, then execveat(AT_EMPTY_PATH)
 * (seccomp: EPERM) and execve("/proc/self/fd/N") (Landlock: the memfd is not executable). */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "esc.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

int main(void)
{
	char buf[65536], path[64];
	char arg0[] = "true";
	char *argv[] = {arg0, NULL}, *envp[] = {NULL};
	ssize_t n;
	int in, fd;

	ESC_DENIED(syscall(SYS_memfd_create, "x", MFD_EXEC), EPERM, "memfd_create(MFD_EXEC)");
	fd = (int)syscall(SYS_memfd_create, "payload", 0);
	in = open("/bin/true", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || in < 0) {
		printf("setup: memfd/open: %s\n", strerror(errno));
		return 2;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(fd, buf, (size_t)n) != n)
			return 2;
	ESC_DENIED(syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH), EPERM,
	           "execveat(memfd, \"\", AT_EMPTY_PATH)");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ESC_DENIED(execve(path, argv, envp), EACCES, "execve(/proc/self/fd/<memfd>)");
	return esc_status;
}
