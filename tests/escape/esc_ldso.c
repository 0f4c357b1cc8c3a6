/* SPDX-License-Identifier: Apache-2.0 */
/* Escape class: running a binary the profile does not allow by invoking the dynamic loader
 * directly (ld.so maps the file itself, so execve's checks on it never run). The binary in
 * the denied tree cannot even be opened, so ld.so fails. A binary the session writes into
 * ${TMP} (writable, not executable) is readable, so Landlock cannot stop ld.so mapping it;
 * the namespace tier mounts such paths noexec, which refuses the mapping (ESC_NS=1). */
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "esc.h"

static int ldso(const char *bin)
{
	int status = 0;
	pid_t pid = fork();

	if (pid < 0)
		exit(2);
	if (pid == 0) {
		execl("/lib64/ld-linux-x86-64.so.2", "ld.so", bin, (char *)NULL);
		_exit(99);
	}
	waitpid(pid, &status, 0);
	return status;
}

static int copy(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);

	if (in < 0 || out < 0)
		return -1;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			return -1;
	close(in);
	close(out);
	return 0;
}

int main(void)
{
	const char *bin = esc_env("ESC_DENIED_BIN");
	char written[4096];
	int status;

	ESC_DENIED(execve(bin, (char *[]){(char *)bin, NULL}, (char *[]){NULL}), EACCES,
	           "execve of the denied binary");
	status = ldso(bin);
	/* the denied binary is /bin/true: exit 0 would mean it ran */
	esc_expect(!(WIFEXITED(status) && WEXITSTATUS(status) == 0), EACCES, EACCES,
	           "ld.so <denied binary>");

	snprintf(written, sizeof(written), "%s/written-true", esc_env("ESC_TMP"));
	if (copy("/bin/true", written) < 0) {
		printf("setup: cannot write %s\n", written);
		return 2;
	}
	ESC_DENIED(execve(written, (char *[]){written, NULL}, (char *[]){NULL}), EACCES,
	           "execve of a binary written to ${TMP}");
	status = ldso(written);
	if (getenv("ESC_NS")) {
		esc_expect(!(WIFEXITED(status) && WEXITSTATUS(status) == 0), EACCES, EACCES,
		           "ld.so <binary written to ${TMP}> (noexec mount)");
	} else {
		printf("known limit (process tier): ld.so <binary written to ${TMP}> %s; "
		       "the namespace tier mounts writable paths noexec\n",
		       WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ran" : "failed");
	}
	return esc_status;
}
