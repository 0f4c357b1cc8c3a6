// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: trust-root verification (initial and successor). Even inputs are whole
 * envelopes; odd inputs are a TrustRoot PAYLOAD signed with the previous root's keys and the
 * fixed candidate keys, so structural checks, thresholds and versions are reached too.
 */
#include "trust.h"

#include <stdlib.h>
#include <string.h>

static struct trust_key *keys[4];
static Corral__TrustRoot *prev;

static void setup(void)
{
	uint8_t seed[32];
	for (int i = 0; i < 4; i++) {
		memset(seed, 0x30 + i, sizeof(seed));
		if (trust_key_from_seed(seed, &keys[i]) < 0)
			abort();
	}
	struct trust_root_spec spec = {
	        .version = 1,
	        .issued_at = 1000,
	        .expires_at = 4000000000LL,
	        .root_keys = keys,
	        .n_root_keys = 2,
	        .root_threshold = 2,
	        .signer_keys = keys + 2,
	        .n_signer_keys = 1,
	        .signer_threshold = 1,
	};
	uint8_t *env = NULL;
	size_t len = 0;
	if (trust_root_sign(&spec, keys, 2, &env, &len) < 0 ||
	    trust_root_verify_initial(env, len, 2000, &prev, NULL) < 0)
		abort();
	free(env);
}

static void verify(const uint8_t *env, size_t len)
{
	struct trust_result res;
	Corral__TrustRoot *r = NULL;
	int rc = trust_root_verify_initial(env, len, 1800000000LL, &r, &res);
	if ((rc == 0) != (r != NULL) || (rc < 0 && rc != trust_reason_errno(res.reason)))
		abort();
	if (r)
		corral__trust_root__free_unpacked(r, NULL);
	r = NULL;
	rc = trust_root_verify_next(prev, env, len, 1800000000LL, &r, &res);
	if ((rc == 0) != (r != NULL))
		abort();
	if (r) {
		if (r->version != prev->version + 1)
			abort();
		corral__trust_root__free_unpacked(r, NULL);
	}
	const uint8_t *envs[] = {env, env};
	const size_t lens[] = {len, len};
	r = NULL;
	if (trust_root_verify_chain(envs, lens, 2, 1800000000LL, &r, &res) == 0)
		abort(); /* the same root twice is never a valid chain */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!prev)
		setup();
	if (size == 0)
		return 0;
	if ((data[0] & 1) == 0) {
		verify(data + 1, size - 1);
		return 0;
	}
	uint8_t *env = NULL;
	size_t len = 0;
	if (trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_TRUST_ROOT, data + 1, size - 1,
	                        keys, 4, &env, &len) == 0) {
		verify(env, len);
		free(env);
	}
	return 0;
}
