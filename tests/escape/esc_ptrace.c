/* SPDX-License-Identifier: Apache-2.0 */
/* Escape class: reading or controlling a process outside the sandbox running as the same
 * user (ESC_PID): ptrace, process_vm_readv/writev, /proc/<pid>/mem. */
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "esc.h"

int main(void)
{
	pid_t pid = (pid_t)atoi(esc_env("ESC_PID"));
	char buf[16], path[64];
	struct iovec local = {buf, sizeof(buf)}, remote = {(void *)0x400000, sizeof(buf)};

	ESC_DENIED(ptrace(PTRACE_ATTACH, pid, NULL, NULL), EPERM, "ptrace(ATTACH, outside pid)");
	ESC_DENIED(ptrace(PTRACE_SEIZE, pid, NULL, NULL), EPERM, "ptrace(SEIZE, outside pid)");
	ESC_DENIED(process_vm_readv(pid, &local, 1, &remote, 1, 0), EPERM, "process_vm_readv");
	ESC_DENIED(process_vm_writev(pid, &local, 1, &remote, 1, 0), EPERM, "process_vm_writev");
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	/* the mem file needs ptrace access, which Landlock's domain check refuses */
	ESC_DENIED(open(path, O_RDONLY | O_CLOEXEC), EACCES, "open /proc/<outside pid>/mem");
	return esc_status;
}
