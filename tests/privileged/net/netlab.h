/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test lab for the egress tests: a client and a server network namespace joined by one veth
 * pair (192.0.2.1 / 2001:db8::1 client side; 192.0.2.2, 192.0.2.53 / 2001:db8::2 server side),
 * no other route, so nothing can leave the machine even if a step fails; a profile cgroup and
 * a session cgroup under /sys/fs/cgroup/unified/corral-test-*. Everything is removed by
 * netlab_teardown.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct netlab {
	char cli_ns[64];
	char srv_ns[64];
	char profile_cg[200];
	char session_cg[256];
	int cli_ns_fd;
	int srv_ns_fd;
	int profile_cg_fd;
	uint64_t session_cg_id;
	pid_t server_pid;
};

/* Creates namespaces, veth, cgroups. Returns 0, or -errno with `why` filled (skip reason). */
int netlab_setup(struct netlab *lab, char *why, size_t why_len);

/* Starts TCP listeners on [::]:ports (dual stack) in the server namespace, accepting and
 * closing (or, with echo, echoing) forever in a child. */
int netlab_start_server(struct netlab *lab, const uint16_t *ports, size_t n);

/* Forks a child that joins the session cgroup and the client namespace, runs fn(arg) and exits
 * with its return value (0..255). Returns the exit status or -errno. */
int netlab_run_session(struct netlab *lab, int (*fn)(void *arg), void *arg);

/* Like netlab_run_session but returns at once with the child's pid. */
pid_t netlab_spawn_session(struct netlab *lab, int (*fn)(void *arg), void *arg);

/* Enters the server (srv = true) or client namespace in the calling thread. */
int netlab_enter(struct netlab *lab, bool srv);

/* Stops the server, deletes both namespaces (and the veth with them) and the cgroups. */
void netlab_teardown(struct netlab *lab);

/* connect() with a 2 s timeout: 0 or errno. type SOCK_STREAM or SOCK_DGRAM. */
int netlab_connect(const char *addr, uint16_t port, int type);
/* sendto() over an unconnected UDP socket of the given family (AF_INET / AF_INET6). */
int netlab_sendto(int family, const char *addr, uint16_t port);
