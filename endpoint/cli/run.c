// SPDX-License-Identifier: Apache-2.0
/*
 * `corral run`: hands argv, cwd, the environment and the caller's stdin/stdout/stderr
 * (SCM_RIGHTS) to corrald in one RunRequest, then waits for RunExited and exits like the
 * session did. The daemon learns who we are from SO_PEERCRED, never from this message.
 *
 * Signals sent to this process (INT, TERM, HUP, QUIT) are forwarded as RunSignal; WINCH
 * carries the new window size. They are read from a signalfd, blocked before the request is
 * sent, so none is lost and none kills us before the session's status is known. With a
 * terminal on stdin the terminal goes to raw mode once the session runs (corrald relays it
 * to the session's own pty, where the line discipline does the work) and is restored on
 * every way out.
 */
#include "run.h"

#include "cleanup.h"
#include "ipc.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <corral.pb-c.h>

#define RUN_ARGS_MAX 4096
#define RUN_ENV_MAX  4096

extern char **environ;

static struct termios saved_termios;
static bool raw_mode;

static void terminal_raw(void)
{
	struct termios t;
	if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
		return;
	t = saved_termios;
	cfmakeraw(&t);
	if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) == 0)
		raw_mode = true;
}

static void terminal_restore(void)
{
	if (raw_mode)
		(void)tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_termios);
	raw_mode = false;
}

static void window_size(unsigned *rows, unsigned *cols)
{
	struct winsize ws;
	*rows = *cols = 0;
	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 ||
	    ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

static int send_signal(int sock, int signo)
{
	Corral__RunSignal rs = CORRAL__RUN_SIGNAL__INIT;
	rs.signo = signo;
	if (signo == SIGWINCH)
		window_size(&rs.rows, &rs.cols);
	Corral__IpcRequest rq = CORRAL__IPC_REQUEST__INIT;
	rq.body_case = CORRAL__IPC_REQUEST__BODY_SIGNAL;
	rq.signal = &rs;
	return cd_ipc_send(sock, &rq.base, CD_IPC_FRAME_MAX, NULL, 0);
}

static void run_usage(void)
{
	fprintf(stderr, "Usage: corral run [--profile NAME] [--] COMMAND [ARG...]\n");
}

/* Returns an exit code >= 0 when the session is over, -1 to keep waiting. */
static int handle_response(const Corral__IpcResponse *resp, bool tty)
{
	switch (resp->body_case) {
	case CORRAL__IPC_RESPONSE__BODY_RUN_STARTED:
		return -1; /* the terminal went raw before the request (see cli_run) */
	case CORRAL__IPC_RESPONSE__BODY_RUN_EXITED:
		terminal_restore();
		if (resp->run_exited->term_signal > 0) {
			fprintf(stderr, "corral: session killed by signal %d\n",
			        resp->run_exited->term_signal);
			return 128 + (resp->run_exited->term_signal & 0x7f);
		}
		return resp->run_exited->exit_status & 0xff;
	case CORRAL__IPC_RESPONSE__BODY_RUN_FAILED: {
		const Corral__RunFailed *f = resp->run_failed;
		terminal_restore();
		/* refusals by policy are the caller's to fix: usage-class exit code */
		if (strcmp(f->step, "policy") == 0 || strcmp(f->step, "select") == 0) {
			fprintf(stderr, "corral: %s\n", f->message);
			return 2;
		}
		fprintf(stderr, "corral: cannot start session: %s: %s\n", f->step,
		        f->message && *f->message ? f->message : strerror(f->err));
		return strcmp(f->step, "exec") == 0 && f->err == ENOENT ? 127 : 126;
	}
	case CORRAL__IPC_RESPONSE__BODY_ERROR:
		terminal_restore();
		fprintf(stderr, "corral: %s\n", resp->error->message);
		return 1;
	default:
		terminal_restore();
		fprintf(stderr, "corral: unexpected answer from corrald\n");
		return 1;
	}
}

int cli_run(const char *socket_path, int argc, char **argv)
{
	const char *profile = NULL;
	int i = 0;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc) {
			profile = argv[++i];
			continue;
		}
		if (strncmp(argv[i], "--profile=", 10) == 0) {
			profile = argv[i] + 10;
			continue;
		}
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			run_usage();
			return 0;
		}
		if (argv[i][0] == '-') {
			fprintf(stderr, "corral: run: unknown option '%s'\n", argv[i]);
			run_usage();
			return 2;
		}
		break;
	}
	if (i >= argc || argc - i > RUN_ARGS_MAX) {
		run_usage();
		return 2;
	}

	char cwd[4096];
	if (!getcwd(cwd, sizeof(cwd))) {
		fprintf(stderr, "corral: cannot determine the working directory: %s\n",
		        strerror(errno));
		return 2;
	}
	size_t n_env = 0;
	while (environ && environ[n_env] && n_env < RUN_ENV_MAX)
		n_env++;

	Corral__RunRequest rr = CORRAL__RUN_REQUEST__INIT;
	rr.argv = argv + i;
	rr.n_argv = (size_t)(argc - i);
	rr.cwd = cwd;
	rr.env = environ;
	rr.n_env = n_env;
	rr.profile = (char *)(profile ? profile : "");
	rr.tty = isatty(STDIN_FILENO) == 1;
	if (rr.tty)
		window_size(&rr.rows, &rr.cols);
	Corral__IpcRequest rq = CORRAL__IPC_REQUEST__INIT;
	rq.body_case = CORRAL__IPC_REQUEST__BODY_RUN;
	rq.run = &rr;

	/* blocked before the request: a signal from now on is forwarded, never fatal to us */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGWINCH);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	_cleanup_close_ int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		fprintf(stderr, "corral: signalfd: %s\n", strerror(errno));
		return 1;
	}

	_cleanup_close_ int sock = cd_ipc_connect(socket_path);
	if (sock < 0) {
		if (sock == -ENOENT || sock == -ECONNREFUSED)
			fprintf(stderr, "corral: corrald is not running (no daemon at %s).\n",
			        socket_path);
		else
			fprintf(stderr, "corral: cannot connect to %s: %s\n", socket_path,
			        strerror(-sock));
		return 1;
	}
	/* Raw before the session exists: once it runs, corrald relays our terminal at once,
	 * and switching later would race with what the user (or a script) types after the
	 * first prompt. TCSADRAIN, not TCSAFLUSH: typeahead belongs to the session. */
	if (rr.tty)
		terminal_raw();
	int stdio[3] = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO};
	int r = cd_ipc_send(sock, &rq.base, CD_IPC_FRAME_MAX, stdio, 3);
	if (r < 0) {
		terminal_restore();
		fprintf(stderr, "corral: send: %s%s\n", strerror(-r),
		        r == -EMSGSIZE ? " (arguments and environment too large)" : "");
		return 1;
	}

	int code = -1;
	while (code < 0) {
		struct pollfd pfd[2] = {{.fd = sock, .events = POLLIN},
		                        {.fd = sfd, .events = POLLIN}};
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			code = 1;
			break;
		}
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				(void)send_signal(sock, (int)si.ssi_signo);
		}
		if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		_cleanup_free_ uint8_t *buf = NULL;
		ssize_t n = cd_ipc_recv(sock, CD_IPC_FRAME_MAX, &buf, NULL, 0, NULL);
		if (n == -EAGAIN || n == -EINTR)
			continue;
		if (n <= 0) {
			terminal_restore();
			fprintf(stderr, "corral: lost the connection to corrald (%s)\n",
			        n == 0 ? "closed" : strerror((int)-n));
			code = 1;
			break;
		}
		Corral__IpcResponse *resp = corral__ipc_response__unpack(NULL, (size_t)n, buf);
		if (!resp) {
			terminal_restore();
			fprintf(stderr, "corral: malformed answer from corrald\n");
			code = 1;
			break;
		}
		code = handle_response(resp, rr.tty);
		corral__ipc_response__free_unpacked(resp, NULL);
	}
	terminal_restore();
	return code;
}
