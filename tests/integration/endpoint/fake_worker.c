// SPDX-License-Identifier: Apache-2.0
/*
 * Test-only stand-in for corrald-worker (test_endpoint_worker_fault). corrald starts the
 * executable named corrald-worker next to its own binary, so the test copies corrald into a
 * directory of its own and puts this program there under that name, with the real worker as
 * corrald-worker.real. No production code knows about it.
 *
 * At each start it takes the first line of `faults` in its directory (the line is removed):
 *   garbage     one packet that does not decode as a WorkerMsg
 *   unexpected  a well-formed WorkerMsg the parent never expects (a WorkerInit)
 *   fd          a well-formed message with a descriptor attached (refused by the framing)
 *   exit        exits with status 3 at once, the parent's WorkerInit unread (the parent
 *               reads ECONNRESET: a worker that went away, not a malformed one)
 * then (except exit) waits to be killed. With no line left it execs corrald-worker.real with its
 * own arguments, so the daemon syncs normally from then on. Every start is appended to `starts` as
 * "MODE CLOCK_MONOTONIC_MS" so the test can check the restart backoff.
 */
#include "ipc.h"

#include <corral.pb-c.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Pops the first line of DIR/faults into mode (empty when none is left). */
static void pop_fault(const char *dir, char *mode, size_t len)
{
	char path[4200], tmp[4300], buf[4096];
	mode[0] = '\0';
	snprintf(path, sizeof(path), "%s/faults", dir);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *nl = strchr(buf, '\n');
	char *rest = nl ? nl + 1 : buf + n;
	if (nl)
		*nl = '\0';
	size_t m = strnlen(buf, len - 1);
	memcpy(mode, buf, m);
	mode[m] = '\0';
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return;
	fputs(rest, f);
	fclose(f);
	rename(tmp, path);
}

static void note_start(const char *dir, const char *mode)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/starts", dir);
	FILE *f = fopen(path, "ae");
	if (!f)
		return;
	fprintf(f, "%s %lld\n", *mode ? mode : "real", mono_ms());
	fclose(f);
}

int main(int argc, char **argv)
{
	(void)argc;
	char dir[4096];
	ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	if (n <= 0)
		return 126;
	dir[n] = '\0';
	char *slash = strrchr(dir, '/');
	if (!slash)
		return 126;
	*slash = '\0';
	char mode[64];
	pop_fault(dir, mode, sizeof(mode));
	note_start(dir, mode);
	if (!*mode) {
		char real[4200];
		snprintf(real, sizeof(real), "%s/corrald-worker.real", dir);
		char *const envp[] = {NULL};
		execve(real, argv, envp);
		return 127;
	}
	int r = 0;
	if (strcmp(mode, "exit") == 0) {
		/* Make sure the parent's first frame is queued, unread, before we go. */
		struct pollfd p = {.fd = 3, .events = POLLIN};
		(void)poll(&p, 1, 5000);
		return 3;
	}
	if (strcmp(mode, "garbage") == 0) {
		/* Field 1 as a length-delimited field whose length runs past the packet. */
		static const unsigned char junk[] = {0x0a, 0x7f, 0x01, 0x02, 0x03};
		r = send(3, junk, sizeof(junk), MSG_NOSIGNAL) < 0 ? -errno : 0;
	} else {
		Corral__WorkerInit init = CORRAL__WORKER_INIT__INIT;
		init.server_url = (char *)"https://evil.invalid";
		Corral__WorkerMsg m = CORRAL__WORKER_MSG__INIT;
		m.body_case = CORRAL__WORKER_MSG__BODY_INIT;
		m.init = &init;
		int fd = strcmp(mode, "fd") == 0 ? open("/dev/null", O_RDONLY | O_CLOEXEC) : -1;
		r = cd_ipc_send(3, &m.base, CD_WORKER_FRAME_MAX, fd >= 0 ? &fd : NULL,
		                fd >= 0 ? 1 : 0);
	}
	if (r < 0) {
		fprintf(stderr, "fake corrald-worker: send: %s\n", strerror(-r));
		return 1;
	}
	/* The parent must kill us; never exit on our own (that would test the EOF path). */
	for (;;)
		pause();
}
