// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: SignedEnvelope{PolicyBundle} decoding and verification. Even inputs are
 * verified as whole envelopes (the untrusted-bytes path: size cap, envelope decoder, signature
 * checks). Odd inputs are taken as a bundle PAYLOAD and signed with the fixture signers first,
 * so the fuzzer also reaches the PolicyBundle decoder and every check after the signatures.
 */
#include "trust.h"

#include <stdlib.h>
#include <string.h>

static struct trust_key *signers[2];
static Corral__TrustRoot *root;

static void setup(void)
{
	uint8_t seed[32];
	struct trust_key *rk[2];
	for (int i = 0; i < 2; i++) {
		memset(seed, 0x10 + i, sizeof(seed));
		if (trust_key_from_seed(seed, &rk[i]) < 0)
			abort();
		memset(seed, 0x20 + i, sizeof(seed));
		if (trust_key_from_seed(seed, &signers[i]) < 0)
			abort();
	}
	struct trust_root_spec spec = {
	        .version = 1,
	        .issued_at = 1000,
	        .expires_at = 4000000000LL,
	        .root_keys = rk,
	        .n_root_keys = 2,
	        .root_threshold = 2,
	        .signer_keys = signers,
	        .n_signer_keys = 2,
	        .signer_threshold = 2,
	};
	uint8_t *env = NULL;
	size_t len = 0;
	if (trust_root_sign(&spec, rk, 2, &env, &len) < 0 ||
	    trust_root_verify_initial(env, len, 2000, &root, NULL) < 0)
		abort();
	free(env);
	trust_key_free(rk[0]);
	trust_key_free(rk[1]);
}

static void verify(const uint8_t *env, size_t len)
{
	static const char *const groups[] = {"eng", "ops"};
	struct trust_bundle_ctx ctx = {
	        .now = 1800000000LL,
	        .min_version_exclusive = 3,
	        .device_id = "dev-1",
	        .groups = groups,
	        .n_groups = 2,
	};
	struct trust_result res;
	struct trust_bundle_info info;
	Corral__PolicyBundle *b = NULL;
	int r = trust_bundle_verify(root, env, len, &ctx, &b, &info, &res);
	if (r == 0) {
		if (!b || info.n_signers < 2)
			abort();
		corral__policy_bundle__free_unpacked(b, NULL);
	} else if (b || r != trust_reason_errno(res.reason) || !trust_reason_code(res.reason)) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!root)
		setup();
	if (size == 0)
		return 0;
	if ((data[0] & 1) == 0) {
		verify(data + 1, size - 1);
		Corral__SignedEnvelope *env = NULL;
		if (trust_envelope_decode(data + 1, size - 1,
		                          CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_TRUST_ROOT, &env,
		                          NULL) == 0)
			corral__signed_envelope__free_unpacked(env, NULL);
		return 0;
	}
	uint8_t *env = NULL;
	size_t len = 0;
	if (trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE, data + 1,
	                        size - 1, signers, 2, &env, &len) == 0) {
		verify(env, len);
		free(env);
	}
	return 0;
}
