/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Framing for corrald's local sockets: the `corral` CLI socket and the socketpair to the
 * network worker. Both are SOCK_SEQPACKET: one protobuf message per packet, at most
 * CD_IPC_FRAME_MAX bytes, file descriptors (policy files, a session's stdio) attached as
 * SCM_RIGHTS. A packet that was truncated, or carries more descriptors than the receiver
 * accepts, is refused as a whole (-EMSGSIZE / -EBADMSG) and its descriptors are closed.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

/* Local CLI frames. */
#define CD_IPC_FRAME_MAX (64u * 1024u)
/* Worker frames carry report batches and policy updates (bundles up to TRUST_ENVELOPE_MAX). */
#define CD_WORKER_FRAME_MAX (6u * 1024u * 1024u)
/* At most this many descriptors in one packet (RunRequest: stdin, stdout, stderr). */
#define CD_IPC_FDS_MAX 3u

/*
 * Packs `msg` and sends it as one packet with `n_fds` descriptors (not consumed). Returns 0,
 * -EMSGSIZE when the packed message exceeds `max`, -ENOMEM, or -errno from sendmsg.
 */
int cd_ipc_send(int sock, const ProtobufCMessage *msg, size_t max, const int *fds, size_t n_fds);

/*
 * Receives one packet into a heap buffer of at most `max` bytes. Received descriptors are
 * stored in ret_fds (O_CLOEXEC, owned by the caller) up to `max_fds`; extra ones are closed
 * and the packet refused. Returns the length (0 = orderly EOF), -EMSGSIZE (truncated),
 * -EBADMSG (bad control data), -EAGAIN, or -errno. *ret_buf is owned by the caller (free).
 */
ssize_t cd_ipc_recv(int sock, size_t max, uint8_t **ret_buf, int *ret_fds, size_t max_fds,
                    size_t *ret_n_fds);

/*
 * Creates the listening socket at `path` (a stale socket file is replaced; any other file is
 * refused with -EEXIST), mode 0666 so every local user can ask for status; admin requests are
 * checked per peer with SO_PEERCRED. Non-blocking, close-on-exec. Returns the fd or -errno.
 */
int cd_ipc_listen(const char *path);

/* Connects to the daemon socket at `path`. Returns the fd or -errno (-ENOENT, -ECONNREFUSED
 * when no daemon runs). */
int cd_ipc_connect(const char *path);

/* Credentials of the peer of a connected unix socket. */
int cd_ipc_peer(int sock, uid_t *ret_uid, pid_t *ret_pid);
