// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: frames corrald receives from local clients and from its network worker,
 * through the same receive path (size cap, control-data checks) and decoders the daemon uses.
 */
#include "ipc.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <corral.pb-c.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > CD_IPC_FRAME_MAX + 16)
		return 0;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	int sz = (int)(CD_IPC_FRAME_MAX * 2);
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (send(sv[0], data, size, 0) == (ssize_t)size) {
		uint8_t *buf = NULL;
		int fds[CD_IPC_FDS_MAX];
		size_t n = 0;
		ssize_t len = cd_ipc_recv(sv[1], CD_IPC_FRAME_MAX, &buf, fds, CD_IPC_FDS_MAX, &n);
		if (len > 0) {
			Corral__IpcRequest *rq =
			        corral__ipc_request__unpack(NULL, (size_t)len, buf);
			if (rq)
				corral__ipc_request__free_unpacked(rq, NULL);
			Corral__IpcResponse *rs =
			        corral__ipc_response__unpack(NULL, (size_t)len, buf);
			if (rs)
				corral__ipc_response__free_unpacked(rs, NULL);
			Corral__WorkerMsg *wm = corral__worker_msg__unpack(NULL, (size_t)len, buf);
			if (wm)
				corral__worker_msg__free_unpacked(wm, NULL);
		}
		free(buf);
	}
	close(sv[0]);
	close(sv[1]);
	return 0;
}
