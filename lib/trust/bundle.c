// SPDX-License-Identifier: Apache-2.0
/*
 * Policy bundles: signing the exact serialized PolicyBundle bytes and verifying a received
 * envelope against a trust root. The payload is decoded only after a threshold of the root's
 * policy-signing keys has vouched for those bytes, so unauthenticated bytes never reach the
 * PolicyBundle decoder. Each rejection carries one distinct reason (see trust.h).
 */
#include "internal.h"
#include "cleanup.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void env_freep(Corral__SignedEnvelope **p)
{
	if (*p)
		corral__signed_envelope__free_unpacked(*p, NULL);
}

static void bundle_freep(Corral__PolicyBundle **p)
{
	if (*p)
		corral__policy_bundle__free_unpacked(*p, NULL);
}

static bool bundle_targets(const Corral__PolicyBundle *b, const struct trust_bundle_ctx *ctx)
{
	for (size_t i = 0; i < b->n_targets; i++) {
		const Corral__Target *t = b->targets[i];
		if (t->kind_case == CORRAL__TARGET__KIND_DEVICE_ID) {
			if (ctx->device_id && ctx->device_id[0] &&
			    strcmp(t->device_id, ctx->device_id) == 0)
				return true;
		} else if (t->kind_case == CORRAL__TARGET__KIND_GROUP) {
			for (size_t g = 0; g < ctx->n_groups; g++)
				if (ctx->groups[g] && strcmp(t->group, ctx->groups[g]) == 0)
					return true;
		}
	}
	return false;
}

int trust_bundle_verify(const Corral__TrustRoot *root, const uint8_t *buf, size_t len,
                        const struct trust_bundle_ctx *ctx, Corral__PolicyBundle **ret_bundle,
                        struct trust_bundle_info *ret_info, struct trust_result *res)
{
	if (!root || !ctx)
		return -EINVAL;
	_cleanup_(env_freep) Corral__SignedEnvelope *env = NULL;
	int r = trust_envelope_decode(buf, len, CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE,
	                              &env, res);
	if (r < 0)
		return r;
	/* Root keys are known keys (their signature is not "unknown") but only the policy
	 * signers count: a root key signs policies only when also listed as a signer. */
	const struct trust_keylist known[] = {
	        {root->signer_keys, root->n_signer_keys},
	        {root->root_keys, root->n_root_keys},
	};
	struct trust_valid_sigs valid;
	r = trust_check_signatures(env, known, ELEMENTSOF(known), false, &valid, res);
	if (r < 0)
		return r;
	size_t n = trust_count_signers(&valid, root->signer_keys, root->n_signer_keys);
	if (n < root->signer_threshold)
		return trust_fail(res, TRUST_THRESHOLD,
		                  "signed by %zu distinct policy signers, %u required", n,
		                  root->signer_threshold);
	_cleanup_(bundle_freep) Corral__PolicyBundle *b =
	        corral__policy_bundle__unpack(NULL, env->payload.len, env->payload.data);
	if (!b)
		return trust_fail(res, TRUST_MALFORMED, "payload is not a PolicyBundle");
	if (b->version == 0 || !b->policy || b->expires_at <= b->issued_at)
		return trust_fail(res, TRUST_MALFORMED,
		                  "bundle lacks a version, a policy or a valid time window");
	/* An expired root vouches for nothing: repair is a root rotation, not a new bundle. */
	if (root->expires_at <= ctx->now)
		return trust_fail(res, TRUST_TRUST_EXPIRED, "trust root %llu expired %lld s ago",
		                  (unsigned long long)root->version,
		                  (long long)(ctx->now - root->expires_at));
	if (b->issued_at > ctx->now + TRUST_CLOCK_SKEW_SEC)
		return trust_fail(res, TRUST_NOT_YET_VALID,
		                  "bundle %llu is issued %lld s in the future (allowance %d s)",
		                  (unsigned long long)b->version,
		                  (long long)(b->issued_at - ctx->now), TRUST_CLOCK_SKEW_SEC);
	if (b->expires_at <= ctx->now)
		return trust_fail(res, TRUST_EXPIRED, "bundle %llu expired %lld s ago",
		                  (unsigned long long)b->version,
		                  (long long)(ctx->now - b->expires_at));
	bool check_target = (ctx->device_id && ctx->device_id[0]) || ctx->n_groups > 0;
	if (check_target && !bundle_targets(b, ctx))
		return trust_fail(res, TRUST_WRONG_TARGET,
		                  "bundle %llu targets neither this device nor its groups",
		                  (unsigned long long)b->version);
	if (b->version <= ctx->min_version_exclusive)
		return trust_fail(res, TRUST_ROLLBACK,
		                  "bundle %llu is not newer than %llu, already applied",
		                  (unsigned long long)b->version,
		                  (unsigned long long)ctx->min_version_exclusive);
	if (ret_info) {
		memset(ret_info, 0, sizeof(*ret_info));
		ret_info->version = b->version;
		ret_info->issued_at = b->issued_at;
		ret_info->expires_at = b->expires_at;
		/* Only the keys that counted: signers of the root with a valid signature. */
		for (size_t i = 0; i < valid.n; i++)
			if (trust_root_has_key(root->signer_keys, root->n_signer_keys,
			                       valid.ids[i]))
				snprintf(ret_info->signer_key_ids[ret_info->n_signers++],
				         sizeof(ret_info->signer_key_ids[0]), "%s", valid.ids[i]);
	}
	trust_ok(res);
	if (ret_bundle)
		*ret_bundle = TAKE_PTR(b);
	return 0;
}

int trust_bundle_sign(const Corral__PolicyBundle *bundle, struct trust_key *const *keys,
                      size_t n_keys, uint8_t **ret, size_t *ret_len)
{
	if (!bundle || bundle->version == 0 || bundle->n_targets == 0 || !bundle->policy ||
	    bundle->expires_at <= bundle->issued_at)
		return -EINVAL;
	size_t plen = corral__policy_bundle__get_packed_size(bundle);
	if (plen > TRUST_ENVELOPE_MAX)
		return -EMSGSIZE;
	_cleanup_free_ uint8_t *payload = malloc(plen ? plen : 1);
	if (!payload)
		return -ENOMEM;
	/* Serialized once: the signatures and the envelope carry these very bytes. */
	corral__policy_bundle__pack(bundle, payload);
	return trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE, payload, plen,
	                           keys, n_keys, ret, ret_len);
}
