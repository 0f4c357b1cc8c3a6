// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of corrald's SEQPACKET framing: round trips, descriptor passing, refusal of
 * truncated frames and of surplus descriptors (which must be closed, not leaked), EOF,
 * listening-socket takeover rules and peer credentials.
 */
#include "harness.h"
#include "ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <corral.pb-c.h>

static void pair(int sv[2])
{
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
}

static int send_status(int fd, const int *fds, size_t n)
{
	Corral__StatusRequest sr = CORRAL__STATUS_REQUEST__INIT;
	Corral__IpcRequest rq = CORRAL__IPC_REQUEST__INIT;
	rq.body_case = CORRAL__IPC_REQUEST__BODY_STATUS;
	rq.status = &sr;
	return cd_ipc_send(fd, &rq.base, CD_IPC_FRAME_MAX, fds, n);
}

static void test_roundtrip_and_fds(void)
{
	int sv[2];
	pair(sv);
	int p[2];
	CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
	CU_ASSERT_EQUAL(send_status(sv[0], &p[1], 1), 0);
	uint8_t *buf = NULL;
	int fds[CD_IPC_FDS_MAX];
	size_t n = 0;
	ssize_t len = cd_ipc_recv(sv[1], CD_IPC_FRAME_MAX, &buf, fds, CD_IPC_FDS_MAX, &n);
	CU_ASSERT_FATAL(len > 0);
	Corral__IpcRequest *rq = corral__ipc_request__unpack(NULL, (size_t)len, buf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rq);
	CU_ASSERT_EQUAL(rq->body_case, CORRAL__IPC_REQUEST__BODY_STATUS);
	corral__ipc_request__free_unpacked(rq, NULL);
	free(buf);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
	CU_ASSERT_EQUAL(write(fds[0], "x", 1), 1);
	char c = 0;
	CU_ASSERT_EQUAL(read(p[0], &c, 1), 1);
	CU_ASSERT_EQUAL(c, 'x');
	close(fds[0]);
	close(p[0]);
	close(p[1]);
	/* EOF */
	close(sv[0]);
	CU_ASSERT_EQUAL(cd_ipc_recv(sv[1], CD_IPC_FRAME_MAX, &buf, NULL, 0, NULL), 0);
	free(buf);
	close(sv[1]);
}

static void test_refusals(void)
{
	int sv[2];
	pair(sv);
	uint8_t *buf = NULL;
	/* Nothing to read on a non-blocking socket. */
	CU_ASSERT_FATAL(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
	CU_ASSERT_EQUAL(cd_ipc_recv(sv[1], 64, &buf, NULL, 0, NULL), -EAGAIN);
	/* A frame larger than the receiver's cap is refused whole. */
	char big[200];
	memset(big, 'a', sizeof(big));
	CU_ASSERT_EQUAL(send(sv[0], big, sizeof(big), 0), (ssize_t)sizeof(big));
	CU_ASSERT_EQUAL(cd_ipc_recv(sv[1], 100, &buf, NULL, 0, NULL), -EMSGSIZE);
	/* More descriptors than accepted: refused, and every received one closed. */
	int p[2];
	CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
	int three[3] = {p[1], p[1], p[1]};
	CU_ASSERT_EQUAL(send_status(sv[0], three, 3), 0);
	int fds[CD_IPC_FDS_MAX];
	size_t n = 99;
	CU_ASSERT_EQUAL(cd_ipc_recv(sv[1], CD_IPC_FRAME_MAX, &buf, fds, 1, &n), -EBADMSG);
	close(p[1]);
	/* If a received copy leaked, the pipe would not see EOF. */
	char c;
	CU_ASSERT_EQUAL(read(p[0], &c, 1), 0);
	close(p[0]);
	/* Descriptors to a receiver that accepts none. */
	CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
	CU_ASSERT_EQUAL(send_status(sv[0], &p[1], 1), 0);
	CU_ASSERT_EQUAL(cd_ipc_recv(sv[1], CD_IPC_FRAME_MAX, &buf, NULL, 0, NULL), -EBADMSG);
	close(p[1]);
	CU_ASSERT_EQUAL(read(p[0], &c, 1), 0);
	close(p[0]);
	/* Sender-side caps. */
	Corral__IpcError e = CORRAL__IPC_ERROR__INIT;
	char msg[300];
	memset(msg, 'm', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	e.message = msg;
	Corral__IpcResponse resp = CORRAL__IPC_RESPONSE__INIT;
	resp.body_case = CORRAL__IPC_RESPONSE__BODY_ERROR;
	resp.error = &e;
	CU_ASSERT_EQUAL(cd_ipc_send(sv[0], &resp.base, 100, NULL, 0), -EMSGSIZE);
	CU_ASSERT_EQUAL(cd_ipc_send(sv[0], &resp.base, CD_IPC_FRAME_MAX, fds, 4), -EINVAL);
	Corral__IpcRequest empty = CORRAL__IPC_REQUEST__INIT;
	CU_ASSERT_EQUAL(cd_ipc_send(sv[0], &empty.base, CD_IPC_FRAME_MAX, NULL, 0), -EINVAL);
	/* Peer gone. */
	close(sv[1]);
	CU_ASSERT_EQUAL(send_status(sv[0], NULL, 0), -EPIPE);
	close(sv[0]);
}

static void test_listen_connect_peer(void)
{
	char *dir = harness_mkdtemp("ipc");
	CU_ASSERT_FATAL(dir != NULL);
	char path[512];
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	CU_ASSERT_EQUAL(cd_ipc_connect(path), -ENOENT);
	int l = cd_ipc_listen(path);
	CU_ASSERT_FATAL(l >= 0);
	struct stat st;
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0666);
	/* A live listener is not taken over. */
	CU_ASSERT_EQUAL(cd_ipc_listen(path), -EADDRINUSE);
	int c = cd_ipc_connect(path);
	CU_ASSERT_FATAL(c >= 0);
	int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CU_ASSERT_FATAL(a >= 0);
	uid_t uid = 12345;
	pid_t pid = 0;
	CU_ASSERT_EQUAL(cd_ipc_peer(a, &uid, &pid), 0);
	CU_ASSERT_EQUAL(uid, getuid());
	CU_ASSERT_EQUAL(pid, getpid());
	CU_ASSERT_EQUAL(cd_ipc_peer(-1, &uid, &pid), -EBADF);
	close(a);
	close(c);
	close(l);
	/* A stale socket file (no listener) is replaced. */
	l = cd_ipc_listen(path);
	CU_ASSERT(l >= 0);
	close(l);
	/* Anything else at the path is refused. */
	char file[512];
	snprintf(file, sizeof(file), "%s/file", dir);
	int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	close(fd);
	CU_ASSERT_EQUAL(cd_ipc_listen(file), -EEXIST);
	char longp[200];
	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	CU_ASSERT_EQUAL(cd_ipc_listen(longp), -ENAMETOOLONG);
	CU_ASSERT_EQUAL(cd_ipc_connect(longp), -ENAMETOOLONG);
	char nodir[512];
	snprintf(nodir, sizeof(nodir), "%s/missing/s.sock", dir);
	CU_ASSERT_EQUAL(cd_ipc_listen(nodir), -ENOENT);
	harness_rm_rf(dir);
	free(dir);
}

static const struct harness_test tests[] = {
        {"roundtrip_and_fds", test_roundtrip_and_fds},
        {"refusals", test_refusals},
        {"listen_connect_peer", test_listen_connect_peer},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"ipc", NULL, NULL, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
