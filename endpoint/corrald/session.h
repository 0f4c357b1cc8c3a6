/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Agent sessions started by `corral run` (RunRequest with the caller's stdio as SCM_RIGHTS).
 * This is where the sandbox engine (endpoint/sandbox, sbx_spawn) is wired in: the daemon
 * hands a RunRequest, the three descriptors, the peer's credentials and the policy in force
 * to cd_session_start(); the session reports RunStarted / RunExited / RunFailed back on the
 * client socket and writes session_start / session_exit events through the emit callback.
 *
 * Until the engine is wired in, cd_session_start() answers RunFailed{step="spawn",
 * err=ENOSYS} so the CLI protocol and the daemon's bookkeeping can already be exercised.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include <corral.pb-c.h>

struct cd_session; /* opaque */

/* What the daemon offers a session. */
struct cd_session_env {
	const Corral__PolicyBundle *bundle; /* policy in force (borrowed), NULL when none */
	/* Writes an event to the outbox (seq assigned there). Returns 0 or -errno. */
	int (*emit)(void *userdata, Corral__Event *ev);
	void *userdata;
};

/*
 * Starts a session for the client connected on `client_sock` (borrowed) whose credentials are
 * `uid`/`pid`. `fds` are the client's stdin/stdout/stderr (ownership taken). Returns 0 with
 * *ret_session set when a session is running (the daemon then watches cd_session_fd()), or
 * 1 when the request was answered and finished immediately (e.g. RunFailed), or -errno.
 */
int cd_session_start(const struct cd_session_env *env, int client_sock, uid_t uid, pid_t pid,
                     const Corral__RunRequest *req, int *fds, size_t n_fds,
                     struct cd_session **ret_session);

/* Forwards a RunSignal from the client (signal or window size). */
int cd_session_signal(struct cd_session *s, const Corral__RunSignal *sig);

/* A descriptor to watch for the session's progress (pidfd), or -1. */
int cd_session_fd(const struct cd_session *s);

/* Called when cd_session_fd() is readable: reaps, reports RunExited and the exit event.
 * Returns 1 when the session ended. */
int cd_session_process(struct cd_session *s);

/* Kills (SIGKILL) a session whose client went away, and frees it. NULL is fine. */
void cd_session_free(struct cd_session *s);
