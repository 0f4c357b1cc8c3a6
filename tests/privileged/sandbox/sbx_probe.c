/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A multi-tool the privileged sandbox tests run inside sessions: each subcommand attempts one
 * operation and prints "OK" or the errno name, so tests can assert the exact error (EACCES
 * from Landlock, EPERM from seccomp, ...). Exit 0 when the operation succeeded, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int report(int r)
{
	if (r >= 0) {
		printf("OK\n");
		return 0;
	}
	switch (errno) {
	case EACCES:
		printf("EACCES\n");
		break;
	case EPERM:
		printf("EPERM\n");
		break;
	case ENOENT:
		printf("ENOENT\n");
		break;
	case EROFS:
		printf("EROFS\n");
		break;
	case EAGAIN:
		printf("EAGAIN\n");
		break;
	case ECONNREFUSED:
		printf("ECONNREFUSED\n");
		break;
	default:
		printf("errno %d\n", errno);
	}
	return 1;
}

static int tcp(const char *port, bool do_connect)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)atoi(port)),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return report(-1);
	return report(do_connect ? connect(fd, (struct sockaddr *)&sa, sizeof(sa))
	                         : bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "", *arg = argc > 2 ? argv[2] : "";

	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(cmd, "read") == 0)
		return report(open(arg, O_RDONLY | O_CLOEXEC));
	if (strcmp(cmd, "write") == 0)
		return report(open(arg, O_WRONLY | O_CLOEXEC));
	if (strcmp(cmd, "create") == 0)
		return report(open(arg, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	if (strcmp(cmd, "listdir") == 0)
		return report(open(arg, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (strcmp(cmd, "exec") == 0)
		return report(execl(arg, arg, (char *)NULL));
	if (strcmp(cmd, "connect") == 0)
		return tcp(arg, true);
	if (strcmp(cmd, "bind") == 0)
		return tcp(arg, false);
	if (strcmp(cmd, "unshare") == 0)
		return report(unshare(CLONE_NEWUSER));
	if (strcmp(cmd, "exit") == 0)
		return atoi(arg);
	if (strcmp(cmd, "signal") == 0)
		return raise(atoi(arg));
	if (strcmp(cmd, "env") == 0) {
		const char *v = getenv(arg);
		printf("%s=%s\n", arg, v ? v : "(unset)");
		return 0;
	}
	if (strcmp(cmd, "alloc") == 0) {
		/* touch N MiB so it is really charged */
		size_t n = (size_t)atol(arg) << 20;
		char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return report(-1);
		for (size_t i = 0; i < n; i += 4096)
			p[i] = 1;
		printf("OK\n");
		return 0;
	}
	if (strcmp(cmd, "fork") == 0) {
		pid_t pids[64];
		int n = atoi(arg), made = 0, last = 0;
		for (int i = 0; i < n && i < 64; i++) {
			pid_t pid = fork();
			if (pid == 0) {
				pause();
				_exit(0);
			}
			if (pid < 0) {
				last = errno;
				break;
			}
			pids[made++] = pid;
		}
		printf("forked %d%s\n", made, last == EAGAIN ? " EAGAIN" : "");
		for (int i = 0; i < made; i++) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
		}
		return 0;
	}
	if (strcmp(cmd, "spin") == 0) {
		volatile unsigned long x = 0;
		for (unsigned long i = 0; i < (unsigned long)atol(arg) * 1000000UL; i++)
			x += i;
		printf("OK\n");
		return 0;
	}
	if (strcmp(cmd, "children") == 0) {
		/* leave descendants running and exit: the session kill must reach them */
		for (int i = 0; i < 3; i++)
			if (fork() == 0) {
				sleep(100);
				_exit(0);
			}
		sleep(100);
		return 0;
	}
	fprintf(stderr, "unknown probe %s\n", cmd);
	return 2;
}
