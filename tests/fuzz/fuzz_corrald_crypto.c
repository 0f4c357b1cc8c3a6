// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the frames between corrald and corrald-crypto. The helper decodes and
 * checks a CryptoRequest (cd_crypto_request_check); corrald decodes and checks a CryptoReply
 * for the operation it asked (cd_crypto_reply_check), which also decodes the bundle in a view.
 * The first byte picks the operation for the reply check; the rest is the frame.
 */
#include "crypto_helper.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > CD_CRYPTO_FRAME_MAX)
		return 0;
	Corral__CryptoOp op = (Corral__CryptoOp)(data[0] % 9);
	data++;
	size--;
	const char *why = NULL;
	Corral__CryptoRequest *rq = corral__crypto_request__unpack(NULL, size, data);
	if (rq) {
		(void)cd_crypto_request_check(rq, &why);
		corral__crypto_request__free_unpacked(rq, NULL);
	}
	Corral__CryptoReply *rp = corral__crypto_reply__unpack(NULL, size, data);
	if (rp) {
		(void)cd_crypto_reply_check(op, rp, &why);
		corral__crypto_reply__free_unpacked(rp, NULL);
	}
	return 0;
}
