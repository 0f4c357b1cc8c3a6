// SPDX-License-Identifier: Apache-2.0
/*
 * Agent sessions (see session.h). The sandbox engine is not wired in yet: every RunRequest is
 * answered with RunFailed{step = "spawn", err = ENOSYS}, and the client's descriptors are
 * closed, so nothing runs unconfined by accident.
 */
#include "session.h"

#include "ipc.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

struct cd_session {
	int pidfd;
};

int cd_session_start(const struct cd_session_env *env, int client_sock, uid_t uid, pid_t pid,
                     const Corral__RunRequest *req, int *fds, size_t n_fds,
                     struct cd_session **ret_session)
{
	(void)env;
	(void)uid;
	(void)pid;
	(void)req;
	(void)ret_session;
	for (size_t i = 0; i < n_fds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	Corral__RunFailed f = CORRAL__RUN_FAILED__INIT;
	f.step = (char *)"spawn";
	f.err = ENOSYS;
	f.message = (char *)"this corrald was built without the sandbox engine";
	Corral__IpcResponse resp = CORRAL__IPC_RESPONSE__INIT;
	resp.body_case = CORRAL__IPC_RESPONSE__BODY_RUN_FAILED;
	resp.run_failed = &f;
	int r = cd_ipc_send(client_sock, &resp.base, CD_IPC_FRAME_MAX, NULL, 0);
	return r < 0 ? r : 1;
}

int cd_session_signal(struct cd_session *s, const Corral__RunSignal *sig)
{
	(void)s;
	(void)sig;
	return -ESRCH;
}

int cd_session_fd(const struct cd_session *s)
{
	return s ? s->pidfd : -1;
}

int cd_session_process(struct cd_session *s)
{
	(void)s;
	return 1;
}

void cd_session_free(struct cd_session *s)
{
	if (!s)
		return;
	if (s->pidfd >= 0)
		close(s->pidfd);
	free(s);
}
