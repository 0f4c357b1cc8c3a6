/* SPDX-License-Identifier: Apache-2.0 */
/* Escape class: running a binary the profile does not allow by invoking the dynamic loader
 * directly (ld.so maps the file itself, so execve's checks on it never run). The binary in
 * the denied tree cannot even be opened, so ld.so fails. */
#include <sys/wait.h>
#include <unistd.h>

#include "esc.h"

int main(void)
{
	const char *bin = esc_env("ESC_DENIED_BIN");
	int status = 0;
	pid_t pid;

	ESC_DENIED(execve(bin, (char *[]){(char *)bin, NULL}, (char *[]){NULL}), EACCES,
	           "execve of the denied binary");
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		execl("/lib64/ld-linux-x86-64.so.2", "ld.so", bin, (char *)NULL);
		_exit(99);
	}
	waitpid(pid, &status, 0);
	/* the denied binary is /bin/true: exit 0 would mean it ran */
	esc_expect(!(WIFEXITED(status) && WEXITSTATUS(status) == 0), EACCES, EACCES,
	           "ld.so <denied binary>");
	return esc_status;
}
