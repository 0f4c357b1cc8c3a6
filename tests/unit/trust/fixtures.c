// SPDX-License-Identifier: Apache-2.0
/* Trust test fixtures (see fixtures.h). */
#include "fixtures.h"
#include "harness.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static struct trust_key *keys[FX_N_KEYS];

struct trust_key *fx_key(enum fx_key k)
{
	if (!keys[k]) {
		uint8_t seed[32];
		memset(seed, 0x40 + (int)k, sizeof(seed));
		CU_ASSERT_EQUAL_FATAL(trust_key_from_seed(seed, &keys[k]), 0);
	}
	return keys[k];
}

void fx_keys_free(void)
{
	for (size_t i = 0; i < FX_N_KEYS; i++) {
		trust_key_free(keys[i]);
		keys[i] = NULL;
	}
}

static void key_list(const enum fx_key *ids, size_t n, struct trust_key **out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = fx_key(ids[i]);
}

struct fx_blob fx_root(uint64_t version, int64_t issued, int64_t expires, const enum fx_key *roots,
                       size_t n_roots, uint32_t rt, const enum fx_key *signers, size_t n_signers,
                       uint32_t st, const enum fx_key *sign, size_t n_sign)
{
	struct trust_key *rk[TRUST_MAX_SIGNATURES], *sk[TRUST_MAX_SIGNATURES],
	        *gk[TRUST_MAX_SIGNATURES];
	key_list(roots, n_roots, rk);
	key_list(signers, n_signers, sk);
	key_list(sign, n_sign, gk);
	struct trust_root_spec spec = {
	        .version = version,
	        .issued_at = issued,
	        .expires_at = expires,
	        .root_keys = rk,
	        .n_root_keys = n_roots,
	        .root_threshold = rt,
	        .signer_keys = sk,
	        .n_signer_keys = n_signers,
	        .signer_threshold = st,
	};
	struct fx_blob b = {0};
	CU_ASSERT_EQUAL_FATAL(trust_root_sign(&spec, gk, n_sign, &b.data, &b.len), 0);
	return b;
}

struct fx_blob fx_root_v1(void)
{
	static const enum fx_key roots[] = {FX_ROOT1, FX_ROOT2};
	static const enum fx_key signers[] = {FX_SIGNER1, FX_SIGNER2};
	return fx_root(1, FX_NOW - FX_DAY, FX_NOW + 365 * FX_DAY, roots, 2, 2, signers, 2, 2, roots,
	               2);
}

struct fx_blob fx_bundle_targets(uint64_t version, int64_t issued, int64_t expires,
                                 const char *const *targets, size_t n_targets,
                                 const enum fx_key *sign, size_t n_sign)
{
	Corral__Policy policy = CORRAL__POLICY__INIT;
	policy.name = (char *)"fixture";
	policy.default_profile = (char *)"coder";
	Corral__Target t[8], *tp[8];
	for (size_t i = 0; i < n_targets; i++) {
		corral__target__init(&t[i]);
		if (strncmp(targets[i], "group:", 6) == 0) {
			t[i].kind_case = CORRAL__TARGET__KIND_GROUP;
			t[i].group = (char *)targets[i] + 6;
		} else {
			t[i].kind_case = CORRAL__TARGET__KIND_DEVICE_ID;
			t[i].device_id = (char *)targets[i] + 7;
		}
		tp[i] = &t[i];
	}
	Corral__PolicyBundle b = CORRAL__POLICY_BUNDLE__INIT;
	b.version = version;
	b.issued_at = issued;
	b.expires_at = expires;
	b.n_targets = n_targets;
	b.targets = tp;
	b.policy = &policy;
	b.source_json = (char *)"{\"name\":\"fixture\"}";
	struct trust_key *gk[TRUST_MAX_SIGNATURES];
	key_list(sign, n_sign, gk);
	struct fx_blob out = {0};
	CU_ASSERT_EQUAL_FATAL(trust_bundle_sign(&b, gk, n_sign, &out.data, &out.len), 0);
	return out;
}

struct fx_blob fx_bundle(uint64_t version, int64_t issued, int64_t expires, const enum fx_key *sign,
                         size_t n_sign)
{
	static const char *const targets[] = {"group:eng", "device:dev-1"};
	return fx_bundle_targets(version, issued, expires, targets, 2, sign, n_sign);
}

Corral__TrustRoot *fx_root_decode(struct fx_blob b)
{
	Corral__TrustRoot *root = NULL;
	CU_ASSERT_EQUAL_FATAL(trust_root_verify_first(b.data, b.len, 0, false, &root, NULL), 0);
	return root;
}

struct fx_blob fx_envelope_edit(struct fx_blob b, void (*edit)(Corral__SignedEnvelope *env))
{
	Corral__SignedEnvelope *env = corral__signed_envelope__unpack(NULL, b.len, b.data);
	CU_ASSERT_PTR_NOT_NULL_FATAL(env);
	edit(env);
	struct fx_blob out = {0};
	out.len = corral__signed_envelope__get_packed_size(env);
	out.data = malloc(out.len + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out.data);
	corral__signed_envelope__pack(env, out.data);
	corral__signed_envelope__free_unpacked(env, NULL);
	return out;
}

void fx_blob_free(struct fx_blob *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}
