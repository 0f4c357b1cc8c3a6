/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Agent sessions started by `corral run` (RunRequest with the caller's stdio as SCM_RIGHTS).
 * This is where the sandbox engine (endpoint/sandbox, sbx_spawn) is wired in: the daemon
 * hands a RunRequest, the three descriptors, the peer's credentials and the policy in force
 * to cd_session_start(); the session reports RunStarted / RunExited / RunFailed back on the
 * client socket and writes session_start / session_exit events through the emit callback.
 *
 * The per-profile work (compiled profiles, network layer, network violation sources) lives
 * in enforce.h; a session only does per-session work (see session.c for the order).
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include <corral.pb-c.h>

struct cd_enforce;
struct cd_fsaudit;
struct cd_session; /* opaque */
struct cd_tmppool;

/* Per-session TMP is CD_SESSION_TMP_DIR/CD_SESSION_TMP_NAME<session id>. */
#define CD_SESSION_TMP_DIR  "/tmp"
#define CD_SESSION_TMP_NAME "corral-"

/* What the daemon offers a session. */
struct cd_session_env {
	const Corral__PolicyBundle *bundle; /* policy in force (borrowed), NULL when none */
	/* Writes an event to the outbox (seq assigned there). Returns 0 or -errno. */
	int (*emit)(void *userdata, Corral__Event *ev);
	void *userdata;
	/* Per-profile enforcement (borrowed); NULL = enforcement could not start: runs refused. */
	struct cd_enforce *enforce;
	/* Pre-created TMP directories (borrowed, tmppool.h); NULL: each session does its mkdir. */
	struct cd_tmppool *tmp_pool;
	/* Filesystem denials from kernel audit (borrowed, fsaudit.h); NULL or unavailable: the
	 * session's layers say that filesystem denials are not reported. */
	struct cd_fsaudit *fsaudit;
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

/* A descriptor to watch for the session's progress (an epoll fd over its pidfd, seccomp
 * notifications and terminal relay), or -1. */
int cd_session_fd(const struct cd_session *s);

/* Called when cd_session_fd() is readable: reaps, reports RunExited and the exit event.
 * Returns 1 when the session ended. */
int cd_session_process(struct cd_session *s);

/* Kills (SIGKILL) a session whose client went away (its exit event is still written), and
 * frees it. NULL is fine. */
void cd_session_free(struct cd_session *s);
