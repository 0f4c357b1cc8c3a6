// SPDX-License-Identifier: Apache-2.0
/*
 * Trust roots: creation, verification of the first installed root, of each successor, and of
 * a whole chain. Modelled on TUF root metadata: a successor is accepted only when a threshold
 * of the previous root's keys AND a threshold of its own keys signed it, and its version is
 * exactly previous + 1, so a device walks every root in order and never goes back.
 */
#include "internal.h"
#include "cleanup.h"

#include <errno.h>
#include <string.h>

static void root_freep(Corral__TrustRoot **p)
{
	if (*p)
		corral__trust_root__free_unpacked(*p, NULL);
}

static void env_freep(Corral__SignedEnvelope **p)
{
	if (*p)
		corral__signed_envelope__free_unpacked(*p, NULL);
}

/* Decodes envelope and payload, with the structural checks of a root. */
static int root_decode(const uint8_t *buf, size_t len, Corral__SignedEnvelope **ret_env,
                       Corral__TrustRoot **ret_root, struct trust_result *res)
{
	_cleanup_(env_freep) Corral__SignedEnvelope *env = NULL;
	int r = trust_envelope_decode(buf, len, CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_TRUST_ROOT, &env,
	                              res);
	if (r < 0)
		return r;
	_cleanup_(root_freep) Corral__TrustRoot *root =
	        corral__trust_root__unpack(NULL, env->payload.len, env->payload.data);
	if (!root)
		return trust_fail(res, TRUST_MALFORMED, "payload is not a TrustRoot");
	if (root->version == 0)
		return trust_fail(res, TRUST_MALFORMED, "trust root version 0");
	if (root->expires_at <= root->issued_at)
		return trust_fail(res, TRUST_MALFORMED, "trust root expires before it is issued");
	r = trust_check_keylist(root->root_keys, root->n_root_keys, root->root_threshold, "root",
	                        res);
	if (r < 0)
		return r;
	r = trust_check_keylist(root->signer_keys, root->n_signer_keys, root->signer_threshold,
	                        "signer", res);
	if (r < 0)
		return r;
	*ret_env = TAKE_PTR(env);
	*ret_root = TAKE_PTR(root);
	return 0;
}

static int root_check_time(const Corral__TrustRoot *root, int64_t now, struct trust_result *res)
{
	if (root->issued_at > now + TRUST_CLOCK_SKEW_SEC)
		return trust_fail(
		        res, TRUST_NOT_YET_VALID, "trust root %llu is issued %lld s in the future",
		        (unsigned long long)root->version, (long long)(root->issued_at - now));
	if (root->expires_at <= now)
		return trust_fail(res, TRUST_TRUST_EXPIRED, "trust root %llu expired %lld s ago",
		                  (unsigned long long)root->version,
		                  (long long)(now - root->expires_at));
	return 0;
}

int trust_root_verify_first(const uint8_t *buf, size_t len, int64_t now, bool check_time,
                            Corral__TrustRoot **ret_root, struct trust_result *res)
{
	_cleanup_(env_freep) Corral__SignedEnvelope *env = NULL;
	_cleanup_(root_freep) Corral__TrustRoot *root = NULL;
	int r = root_decode(buf, len, &env, &root, res);
	if (r < 0)
		return r;
	/* Only its own root keys count. Signatures by other keys are skipped, not refused: a
	 * root installed as the first one on a new device (say v3 from the MDM) still carries
	 * the signatures of its predecessor's keys, which this device never knew. */
	const struct trust_keylist known[] = {
	        {root->root_keys, root->n_root_keys},
	        {root->signer_keys, root->n_signer_keys},
	};
	struct trust_valid_sigs valid;
	r = trust_check_signatures(env, known, ELEMENTSOF(known), true, &valid, res);
	if (r < 0)
		return r;
	size_t n = trust_count_signers(&valid, root->root_keys, root->n_root_keys);
	if (n < root->root_threshold)
		return trust_fail(res, TRUST_THRESHOLD,
		                  "trust root %llu is signed by %zu of its root keys, %u required",
		                  (unsigned long long)root->version, n, root->root_threshold);
	if (check_time) {
		r = root_check_time(root, now, res);
		if (r < 0)
			return r;
	}
	trust_ok(res);
	*ret_root = TAKE_PTR(root);
	return 0;
}

int trust_root_verify_successor(const Corral__TrustRoot *prev, const uint8_t *buf, size_t len,
                                int64_t now, bool check_time, Corral__TrustRoot **ret_root,
                                struct trust_result *res)
{
	if (!prev)
		return -EINVAL;
	_cleanup_(env_freep) Corral__SignedEnvelope *env = NULL;
	_cleanup_(root_freep) Corral__TrustRoot *root = NULL;
	int r = root_decode(buf, len, &env, &root, res);
	if (r < 0)
		return r;
	/* Version before signatures: an old root replayed is a rollback whatever it carries. */
	if (root->version <= prev->version)
		return trust_fail(res, TRUST_ROLLBACK, "trust root %llu is not newer than %llu",
		                  (unsigned long long)root->version,
		                  (unsigned long long)prev->version);
	if (root->version != prev->version + 1)
		return trust_fail(
		        res, TRUST_VERSION_GAP,
		        "trust root %llu skips ahead of %llu (roots are applied in order)",
		        (unsigned long long)root->version, (unsigned long long)prev->version);
	const struct trust_keylist known[] = {
	        {prev->root_keys, prev->n_root_keys},
	        {root->root_keys, root->n_root_keys},
	        {prev->signer_keys, prev->n_signer_keys},
	        {root->signer_keys, root->n_signer_keys},
	};
	struct trust_valid_sigs valid;
	r = trust_check_signatures(env, known, ELEMENTSOF(known), false, &valid, res);
	if (r < 0)
		return r;
	/* Both thresholds: the old keys vouch for the new root, the new keys prove they exist
	 * and are held (TUF's rule), so neither a stolen old key set alone nor a new one alone
	 * can rotate trust. */
	size_t n_old = trust_count_signers(&valid, prev->root_keys, prev->n_root_keys);
	if (n_old < prev->root_threshold)
		return trust_fail(res, TRUST_THRESHOLD,
		                  "trust root %llu is signed by %zu of the previous root's keys, "
		                  "%u required",
		                  (unsigned long long)root->version, n_old, prev->root_threshold);
	size_t n_new = trust_count_signers(&valid, root->root_keys, root->n_root_keys);
	if (n_new < root->root_threshold)
		return trust_fail(
		        res, TRUST_THRESHOLD,
		        "trust root %llu is signed by %zu of its own root keys, %u required",
		        (unsigned long long)root->version, n_new, root->root_threshold);
	if (check_time) {
		r = root_check_time(root, now, res);
		if (r < 0)
			return r;
	}
	trust_ok(res);
	*ret_root = TAKE_PTR(root);
	return 0;
}

int trust_root_verify_initial(const uint8_t *env, size_t len, int64_t now,
                              Corral__TrustRoot **ret_root, struct trust_result *res)
{
	return trust_root_verify_first(env, len, now, true, ret_root, res);
}

int trust_root_verify_next(const Corral__TrustRoot *prev, const uint8_t *env, size_t len,
                           int64_t now, Corral__TrustRoot **ret_root, struct trust_result *res)
{
	return trust_root_verify_successor(prev, env, len, now, true, ret_root, res);
}

int trust_root_verify_chain(const uint8_t *const *envs, const size_t *lens, size_t n, int64_t now,
                            Corral__TrustRoot **ret_root, struct trust_result *res)
{
	if (n == 0)
		return trust_fail(res, TRUST_MALFORMED, "no trust root given");
	_cleanup_(root_freep) Corral__TrustRoot *cur = NULL;
	int r = trust_root_verify_first(envs[0], lens[0], now, n == 1, &cur, res);
	if (r < 0)
		return r;
	for (size_t i = 1; i < n; i++) {
		Corral__TrustRoot *next = NULL;
		r = trust_root_verify_successor(cur, envs[i], lens[i], now, i == n - 1, &next, res);
		if (r < 0)
			return r;
		corral__trust_root__free_unpacked(cur, NULL);
		cur = next;
	}
	*ret_root = TAKE_PTR(cur);
	return 0;
}

int trust_root_peek(const uint8_t *buf, size_t len, Corral__TrustRoot **ret_root,
                    struct trust_result *res)
{
	_cleanup_(env_freep) Corral__SignedEnvelope *env = NULL;
	_cleanup_(root_freep) Corral__TrustRoot *root = NULL;
	int r = root_decode(buf, len, &env, &root, res);
	if (r < 0)
		return r;
	trust_ok(res);
	*ret_root = TAKE_PTR(root);
	return 0;
}

int trust_root_sign(const struct trust_root_spec *spec, struct trust_key *const *sign_keys,
                    size_t n_sign_keys, uint8_t **ret, size_t *ret_len)
{
	if (!spec || spec->n_root_keys > TRUST_MAX_SIGNATURES ||
	    spec->n_signer_keys > TRUST_MAX_SIGNATURES)
		return -EINVAL;
	Corral__PublicKey roots[TRUST_MAX_SIGNATURES], signers[TRUST_MAX_SIGNATURES];
	Corral__PublicKey *root_ptrs[TRUST_MAX_SIGNATURES], *signer_ptrs[TRUST_MAX_SIGNATURES];
	for (size_t i = 0; i < spec->n_root_keys; i++) {
		trust_key_to_proto(spec->root_keys[i],
		                   spec->root_names ? spec->root_names[i] : NULL, &roots[i]);
		root_ptrs[i] = &roots[i];
	}
	for (size_t i = 0; i < spec->n_signer_keys; i++) {
		trust_key_to_proto(spec->signer_keys[i],
		                   spec->signer_names ? spec->signer_names[i] : NULL, &signers[i]);
		signer_ptrs[i] = &signers[i];
	}
	Corral__TrustRoot root = CORRAL__TRUST_ROOT__INIT;
	root.version = spec->version;
	root.issued_at = spec->issued_at;
	root.expires_at = spec->expires_at;
	root.n_root_keys = spec->n_root_keys;
	root.root_keys = root_ptrs;
	root.root_threshold = spec->root_threshold;
	root.n_signer_keys = spec->n_signer_keys;
	root.signer_keys = signer_ptrs;
	root.signer_threshold = spec->signer_threshold;
	/* Refuse to sign what no device would accept. */
	if (root.version == 0 || root.expires_at <= root.issued_at ||
	    trust_check_keylist(root.root_keys, root.n_root_keys, root.root_threshold, "root",
	                        NULL) < 0 ||
	    trust_check_keylist(root.signer_keys, root.n_signer_keys, root.signer_threshold,
	                        "signer", NULL) < 0)
		return -EINVAL;
	size_t plen = corral__trust_root__get_packed_size(&root);
	_cleanup_free_ uint8_t *payload = malloc(plen ? plen : 1);
	if (!payload)
		return -ENOMEM;
	corral__trust_root__pack(&root, payload);
	return trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_TRUST_ROOT, payload, plen,
	                           sign_keys, n_sign_keys, ret, ret_len);
}
