// SPDX-License-Identifier: Apache-2.0
/*
 * What the session tests run inside `corral run`: one action per invocation, the outcome
 * printed as one line ("ok" or the errno name), so the test checks what the kernel answered
 * inside the sandbox without a shell or interpreter in between.
 *
 *   session_probe read PATH | write PATH | io_uring | io_uring-flood N | connect PORT |
 *                 alloc MB | tty |
 *                 proxy HOST:PORT | winch | ready-wait | exit N
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int report(int r)
{
	if (r == 0) {
		puts("ok");
		return 0;
	}
	const char *name = r == EACCES   ? "EACCES"
	                   : r == EPERM  ? "EPERM"
	                   : r == ENOENT ? "ENOENT"
	                                 : strerror(r);
	puts(name);
	return 1;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc < 2)
		return 2;
	const char *cmd = argv[1];
	if (strcmp(cmd, "read") == 0 && argc == 3) {
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		char c;
		return report(fd < 0 || read(fd, &c, 1) < 0 ? errno : 0);
	}
	if (strcmp(cmd, "write") == 0 && argc == 3) {
		int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		return report(fd < 0 || write(fd, "x\n", 2) != 2 ? errno : 0);
	}
	if (strcmp(cmd, "io_uring") == 0) {
		long r = syscall(425 /* io_uring_setup */, 8, NULL);
		return report(r < 0 ? errno : 0);
	}
	if (strcmp(cmd, "io_uring-flood") == 0 && argc == 3) {
		int n = atoi(argv[2]), denied = 0;
		for (int i = 0; i < n; i++)
			denied += syscall(425, 8, NULL) < 0 && errno == EPERM;
		printf("denied=%d\n", denied);
		return 0;
	}
	if (strcmp(cmd, "connect") == 0 && argc == 3) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET,
		                         .sin_port = htons((uint16_t)atoi(argv[2])),
		                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		return report(s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? errno
		                                                                          : 0);
	}
	if (strcmp(cmd, "alloc") == 0 && argc == 3) {
		size_t mb = (size_t)atol(argv[2]);
		for (size_t i = 0; i < mb; i++) {
			char *p = malloc(1u << 20);
			if (!p)
				return report(ENOMEM);
			memset(p, 0x5a, 1u << 20);
		}
		return report(0);
	}
	if (strcmp(cmd, "tty") == 0) {
		struct winsize ws = {0};
		char *name = ttyname(0);
		(void)ioctl(0, TIOCGWINSZ, &ws);
		/* terminal injection into our own terminal must be refused (seccomp baseline) */
		char c = 'x';
		int r = ioctl(0, TIOCSTI, &c) < 0 ? errno : 0;
		printf("tty=%s size=%u %u tiocsti=%s\n", name ? name : "none", ws.ws_row, ws.ws_col,
		       r == EPERM ? "EPERM"
		       : r        ? strerror(r)
		                  : "ok");
		return 0;
	}
	if (strcmp(cmd, "proxy") == 0 && argc == 3) {
		/* CONNECT through the proxy the session was given; prints its status line */
		const char *env = getenv("HTTPS_PROXY");
		const char *colon = env ? strrchr(env, ':') : NULL;
		if (!env || strncmp(env, "http://127.0.0.1:", 17) != 0 || !colon) {
			puts("noproxy");
			return 1;
		}
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET,
		                         .sin_port = htons((uint16_t)atoi(colon + 1)),
		                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return report(errno);
		char req[512], resp[256] = "";
		int n = snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n",
		                 argv[2], argv[2]);
		if (write(s, req, (size_t)n) != n)
			return report(errno);
		ssize_t got = read(s, resp, sizeof(resp) - 1);
		if (got < 0)
			return report(errno);
		resp[got] = '\0';
		resp[strcspn(resp, "\r\n")] = '\0';
		puts(resp);
		return 0;
	}
	if (strcmp(cmd, "winch") == 0) {
		/* prints the size, waits for SIGWINCH, prints the new size, then waits for the
		 * terminal's interrupt character to kill it */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGWINCH);
		sigprocmask(SIG_BLOCK, &set, NULL);
		struct winsize ws = {0};
		(void)ioctl(0, TIOCGWINSZ, &ws);
		printf("size=%u %u ready\n", ws.ws_row, ws.ws_col);
		int sig = 0;
		alarm(20);
		sigwait(&set, &sig);
		(void)ioctl(0, TIOCGWINSZ, &ws);
		printf("now=%u %u\n", ws.ws_row, ws.ws_col);
		pause();
		return 0;
	}
	if (strcmp(cmd, "ready-wait") == 0) {
		puts("ready");
		pause();
		return 0;
	}
	if (strcmp(cmd, "exit") == 0 && argc == 3)
		return atoi(argv[2]);
	return 2;
}
