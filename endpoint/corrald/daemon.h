/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The corrald parent process: one epoll loop over a signalfd (SIGTERM, SIGINT, SIGCHLD), one
 * timerfd (heartbeat, retries with backoff, certificate renewal, policy expiry), the local IPC
 * listening socket and its clients, and the socketpair to the network worker. It owns the
 * database (trust store, outbox, identity) and never parses network bytes itself.
 */
#pragma once

#include "config.h"

struct cd_daemon;

/* Opens state and sockets for `cfg` (borrowed; must outlive the daemon). Logs the reason of a
 * failure. Returns 0 or -errno. */
int cd_daemon_new(const struct cd_config *cfg, struct cd_daemon **ret);

/* Runs until SIGTERM/SIGINT. Returns 0 on a clean shutdown or -errno. */
int cd_daemon_run(struct cd_daemon *d);

void cd_daemon_free(struct cd_daemon *d);
