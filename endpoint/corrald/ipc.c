// SPDX-License-Identifier: Apache-2.0
/*
 * SOCK_SEQPACKET framing with SCM_RIGHTS (see ipc.h). MSG_TRUNC and MSG_CTRUNC are checked on
 * every receive: a peer can never make us act on half a message or leak descriptors into us.
 */
#include "ipc.h"

#include "cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int cd_ipc_send(int sock, const ProtobufCMessage *msg, size_t max, const int *fds, size_t n_fds)
{
	if (n_fds > CD_IPC_FDS_MAX)
		return -EINVAL;
	size_t len = protobuf_c_message_get_packed_size(msg);
	if (len > max)
		return -EMSGSIZE;
	/* A zero-length SEQPACKET read means EOF to the peer: every frame we send is a message
	 * with its oneof set, hence at least two bytes. */
	if (len == 0)
		return -EINVAL;
	_cleanup_free_ uint8_t *buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * CD_IPC_FDS_MAX)];
	} ctl;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (n_fds > 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}
	ssize_t w;
	do
		w = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	return 0;
}

ssize_t cd_ipc_recv(int sock, size_t max, uint8_t **ret_buf, int *ret_fds, size_t max_fds,
                    size_t *ret_n_fds)
{
	/* One byte more than allowed so an oversized packet shows up as MSG_TRUNC. */
	_cleanup_free_ uint8_t *buf = malloc(max + 1);
	if (!buf)
		return -ENOMEM;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * CD_IPC_FDS_MAX)];
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = max + 1};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctl.buf,
	                    .msg_controllen = sizeof(ctl.buf)};
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	int fds[CD_IPC_FDS_MAX];
	size_t nfds = 0;
	bool bad = (mh.msg_flags & MSG_CTRUNC) != 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			bad = true;
			continue;
		}
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *p = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < k; i++) {
			if (nfds < CD_IPC_FDS_MAX)
				fds[nfds++] = p[i];
			else {
				close(p[i]);
				bad = true;
			}
		}
	}
	ssize_t r = n;
	if (mh.msg_flags & MSG_TRUNC || (size_t)n > max)
		r = -EMSGSIZE;
	else if (bad || nfds > max_fds)
		r = -EBADMSG;
	if (r < 0 || !ret_fds) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		nfds = 0;
	}
	if (r < 0)
		return r;
	if (ret_fds)
		memcpy(ret_fds, fds, nfds * sizeof(int));
	if (ret_n_fds)
		*ret_n_fds = nfds;
	*ret_buf = TAKE_PTR(buf);
	return n;
}

static int make_addr(const char *path, struct sockaddr_un *sa)
{
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

int cd_ipc_listen(const char *path)
{
	struct sockaddr_un sa;
	int r = make_addr(path, &sa);
	if (r < 0)
		return r;
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		/* A live daemon answers; a stale socket file from a crash is replaced. */
		int probe = cd_ipc_connect(path);
		if (probe >= 0) {
			close(probe);
			return -EADDRINUSE;
		}
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
	}
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Bind under a umask that leaves the socket connectable by all, then listen. */
	mode_t old = umask(0111);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0)
		return -errno;
	if (chmod(path, 0666) < 0)
		return -errno;
	if (listen(fd, 64) < 0)
		return -errno;
	return TAKE_FD(fd);
}

int cd_ipc_connect(const char *path)
{
	struct sockaddr_un sa;
	int r = make_addr(path, &sa);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return TAKE_FD(fd);
}

int cd_ipc_peer(int sock, uid_t *ret_uid, pid_t *ret_pid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	if (ret_uid)
		*ret_uid = uc.uid;
	if (ret_pid)
		*ret_pid = uc.pid;
	return 0;
}
