/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The network worker: a child of corrald that does all HTTPS (libcurl, mTLS, only the fleet CA
 * trusted) and parses every byte the server sends, so the root parent never does. It drops to
 * an unprivileged user, sets no_new_privs, confines itself with Landlock (read-only access to
 * the few files name resolution and OpenSSL read, TCP connect only to the server's port) and a
 * seccomp allow-list, then serves typed WorkerMsg frames on its socketpair. A message it does
 * not expect is fatal to it: it exits and the parent restarts it.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

struct cd_worker_opts {
	uid_t uid; /* drop to these ids when started as root */
	gid_t gid;
	uint16_t server_port; /* Landlock TCP connect rule; 0 = no network rule */
	int64_t poll_wait;    /* seconds; bounds the long-poll transfer timeout */
	int log_level;
};

/*
 * Forks the worker. The child keeps only its end of a SOCK_SEQPACKET socketpair and never
 * returns from this call. In the parent returns the child's pid with *ret_sock (the parent's
 * end, close-on-exec, non-blocking) or -errno.
 */
pid_t cd_worker_spawn(const struct cd_worker_opts *opts, int *ret_sock);
