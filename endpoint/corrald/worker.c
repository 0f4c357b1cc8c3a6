// SPDX-License-Identifier: Apache-2.0
/*
 * Starting the network worker from the root parent (see worker.h). The worker itself is the
 * separate executable corrald-worker (worker_main.c): it confines itself after exec.
 */
#include "worker.h"

#include "ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

pid_t cd_worker_spawn(const struct cd_worker_opts *opts, int *ret_sock)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* A SEQPACKET frame must fit the sender's buffer whole. Raise both ends above the frame
	 * cap while we are root (SO_SNDBUFFORCE ignores wmem_max); the setting stays with the
	 * socket after the worker drops privileges. */
	int sz = (int)CD_WORKER_FRAME_MAX + 65536;
	for (int i = 0; i < 2; i++)
		if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
			(void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	char uid[16], gid[16], port[8], level[4];
	snprintf(uid, sizeof(uid), "%u", (unsigned)opts->uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)opts->gid);
	snprintf(port, sizeof(port), "%u", (unsigned)opts->server_port);
	snprintf(level, sizeof(level), "%d", opts->log_level);
	char *const argv[] = {(char *)"corrald-worker",
	                      (char *)"--uid",
	                      uid,
	                      (char *)"--gid",
	                      gid,
	                      (char *)"--port",
	                      port,
	                      (char *)"--log-level",
	                      level,
	                      NULL};
	char *const envp[] = {NULL};
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (pid == 0) {
		/* Between fork and exec: only async-signal-safe calls; exit on failure. The
		 * parent blocks SIGTERM/SIGINT/SIGCHLD for its signalfd; the mask survives exec,
		 * so clear it. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (sv[1] == 3) {
			if (fcntl(3, F_SETFD, 0) < 0)
				_exit(126);
		} else if (dup2(sv[1], 3) < 0) {
			_exit(126);
		}
		(void)syscall(SYS_close_range, 4, ~0U, 0);
		execve(opts->path, argv, envp);
		_exit(127);
	}
	close(sv[1]);
	int flags = fcntl(sv[0], F_GETFL);
	fcntl(sv[0], F_SETFL, flags | O_NONBLOCK);
	*ret_sock = sv[0];
	return pid;
}
