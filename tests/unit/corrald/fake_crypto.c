// SPDX-License-Identifier: Apache-2.0
/*
 * A stand-in corrald-crypto that misbehaves as its request's `cn` says, so that test_crypto can
 * drive every error path of cd_crypto_call: "hang", "silent" (exit without a reply), "big" (a
 * frame over CD_CRYPTO_FRAME_MAX), "garbage" (bytes that do not decode), "out-of-range" (a
 * reply that decodes but fails cd_crypto_reply_check), "fail-after" (a good reply, then exit 3),
 * "ok" (a good reply).
 */
#include "corral.pb-c.h"
#include "crypto_helper.h"
#include "ipc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
	uint8_t *buf = NULL;
	ssize_t n = cd_ipc_recv(3, CD_CRYPTO_FRAME_MAX, &buf, NULL, 0, NULL);
	if (n <= 0)
		return 1;
	Corral__CryptoRequest *rq = corral__crypto_request__unpack(NULL, (size_t)n, buf);
	free(buf);
	if (!rq)
		return 1;
	char mode[32];
	snprintf(mode, sizeof(mode), "%s", rq->cn);
	corral__crypto_request__free_unpacked(rq, NULL); /* nothing leaks under LSan */
	Corral__CryptoReply rp = CORRAL__CRYPTO_REPLY__INIT;
	static uint8_t csr[] = {0x30, 0x00};
	rp.csr_der.data = csr;
	rp.csr_der.len = sizeof(csr);
	int status = 0;
	if (strcmp(mode, "hang") == 0) {
		pause();
	} else if (strcmp(mode, "silent") == 0) {
		return 0;
	} else if (strcmp(mode, "big") == 0 || strcmp(mode, "garbage") == 0) {
		size_t len = strcmp(mode, "big") == 0 ? CD_CRYPTO_FRAME_MAX + 16 : 64;
		uint8_t *junk = malloc(len);
		if (!junk)
			return 1;
		memset(junk, 0xff, len);
		ssize_t w = send(3, junk, len, MSG_NOSIGNAL);
		free(junk);
		return w == (ssize_t)len ? 0 : 1;
	} else if (strcmp(mode, "out-of-range") == 0) {
		rp.result = 5000;
	} else if (strcmp(mode, "fail-after") == 0) {
		status = 3;
	}
	int r = cd_ipc_send(3, &rp.base, CD_CRYPTO_FRAME_MAX, NULL, 0);
	return r < 0 ? 1 : status;
}
