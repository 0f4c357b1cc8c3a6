// SPDX-License-Identifier: Apache-2.0
/*
 * util_secure_equal, alone in its object file: it is the only util function that needs
 * libcrypto (CRYPTO_memcmp), and a static link pulls in whole objects. Binaries that never
 * compare secrets (the `corral` CLI, on every agent launch) then carry no libcrypto code,
 * in particular not its start-up constructor, which runs CPUID several times (each one a VM
 * exit, ~5 us, on virtualized hosts).
 */
#include "util.h"

#include <openssl/crypto.h>

bool util_secure_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return false;
	return CRYPTO_memcmp(a, b, alen) == 0;
}
