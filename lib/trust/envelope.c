// SPDX-License-Identifier: Apache-2.0
/*
 * Signed envelopes: the reason codes, the domain-separated message, signing, size-capped
 * decoding and the per-signature checks shared by trust roots and policy bundles.
 *
 * Signatures are always checked over the payload bytes exactly as they arrived in the
 * envelope; nothing is ever re-serialized before verification.
 */
#include "internal.h"
#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

static const char *const reason_codes[] = {
        [TRUST_OK] = "ok",
        [TRUST_MALFORMED] = "malformed",
        [TRUST_TOO_LARGE] = "too-large",
        [TRUST_UNKNOWN_ALGORITHM] = "unknown-algorithm",
        [TRUST_BAD_SIGNATURE] = "bad-signature",
        [TRUST_UNKNOWN_KEY] = "unknown-key",
        [TRUST_THRESHOLD] = "threshold",
        [TRUST_EXPIRED] = "expired",
        [TRUST_NOT_YET_VALID] = "not-yet-valid",
        [TRUST_WRONG_TARGET] = "wrong-target",
        [TRUST_ROLLBACK] = "rollback",
        [TRUST_TRUST_EXPIRED] = "trust-expired",
        [TRUST_VERSION_GAP] = "version-gap",
};

const char *trust_reason_code(enum trust_reason r)
{
	if ((size_t)r >= ELEMENTSOF(reason_codes) || !reason_codes[r])
		return "malformed";
	return reason_codes[r];
}

int trust_reason_errno(enum trust_reason r)
{
	/* Distinct errnos so a caller that only sees the return value can still tell them apart. */
	switch (r) {
	case TRUST_OK:
		return 0;
	case TRUST_TOO_LARGE:
		return -EMSGSIZE;
	case TRUST_UNKNOWN_ALGORITHM:
		return -EPROTONOSUPPORT;
	case TRUST_BAD_SIGNATURE:
		return -EBADMSG;
	case TRUST_UNKNOWN_KEY:
		return -ENOKEY;
	case TRUST_THRESHOLD:
		return -EKEYREJECTED;
	case TRUST_EXPIRED:
		return -EKEYEXPIRED;
	case TRUST_NOT_YET_VALID:
		return -ETIME;
	case TRUST_WRONG_TARGET:
		return -EXDEV;
	case TRUST_ROLLBACK:
		return -ESTALE;
	case TRUST_TRUST_EXPIRED:
		return -EKEYREVOKED;
	case TRUST_VERSION_GAP:
		return -ERANGE;
	case TRUST_MALFORMED:
	default:
		return -EINVAL;
	}
}

int trust_fail(struct trust_result *res, enum trust_reason reason, const char *fmt, ...)
{
	if (res) {
		res->reason = reason;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
		va_end(ap);
	}
	return trust_reason_errno(reason);
}

void trust_ok(struct trust_result *res)
{
	if (res) {
		res->reason = TRUST_OK;
		res->detail[0] = '\0';
	}
}

int trust_signed_message(Corral__PayloadType type, const uint8_t *payload, size_t len,
                         uint8_t **ret, size_t *ret_len)
{
	if (len > TRUST_ENVELOPE_MAX)
		return -EMSGSIZE;
	size_t total = TRUST_SIG_DOMAIN_LEN + 4 + len;
	uint8_t *m = malloc(total);
	if (!m)
		return -ENOMEM;
	memcpy(m, TRUST_SIG_DOMAIN, TRUST_SIG_DOMAIN_LEN); /* includes the NUL */
	uint32_t t = (uint32_t)type;
	m[TRUST_SIG_DOMAIN_LEN + 0] = (uint8_t)(t >> 24);
	m[TRUST_SIG_DOMAIN_LEN + 1] = (uint8_t)(t >> 16);
	m[TRUST_SIG_DOMAIN_LEN + 2] = (uint8_t)(t >> 8);
	m[TRUST_SIG_DOMAIN_LEN + 3] = (uint8_t)t;
	if (len)
		memcpy(m + TRUST_SIG_DOMAIN_LEN + 4, payload, len);
	*ret = m;
	*ret_len = total;
	return 0;
}

int trust_envelope_sign(Corral__PayloadType type, const uint8_t *payload, size_t payload_len,
                        struct trust_key *const *keys, size_t n_keys, uint8_t **ret,
                        size_t *ret_len)
{
	if (n_keys > TRUST_MAX_SIGNATURES || (payload_len && !payload))
		return -EINVAL;
	for (size_t i = 0; i < n_keys; i++)
		if (!trust_key_is_private(keys[i]))
			return -EINVAL;
	_cleanup_free_ uint8_t *msg = NULL;
	size_t msg_len = 0;
	int r = trust_signed_message(type, payload, payload_len, &msg, &msg_len);
	if (r < 0)
		return r;
	uint8_t sigs[TRUST_MAX_SIGNATURES][TRUST_ED25519_SIG_LEN];
	Corral__Signature sig_msgs[TRUST_MAX_SIGNATURES];
	Corral__Signature *sig_ptrs[TRUST_MAX_SIGNATURES];
	for (size_t i = 0; i < n_keys; i++) {
		r = trust_key_sign(keys[i], msg, msg_len, sigs[i]);
		if (r < 0)
			return r;
		corral__signature__init(&sig_msgs[i]);
		sig_msgs[i].key_id = (char *)trust_key_id(keys[i]);
		sig_msgs[i].algorithm = CORRAL__ALGORITHM__ALGORITHM_ED25519;
		sig_msgs[i].signature.data = sigs[i];
		sig_msgs[i].signature.len = TRUST_ED25519_SIG_LEN;
		sig_ptrs[i] = &sig_msgs[i];
	}
	Corral__SignedEnvelope env = CORRAL__SIGNED_ENVELOPE__INIT;
	env.payload_type = type;
	env.payload.data = (uint8_t *)payload;
	env.payload.len = payload_len;
	env.n_signatures = n_keys;
	env.signatures = sig_ptrs;
	size_t len = corral__signed_envelope__get_packed_size(&env);
	if (len > TRUST_ENVELOPE_MAX)
		return -EMSGSIZE;
	uint8_t *out = malloc(len ? len : 1);
	if (!out)
		return -ENOMEM;
	corral__signed_envelope__pack(&env, out);
	*ret = out;
	*ret_len = len;
	return 0;
}

int trust_envelope_read_file(const char *path, uint8_t **ret_buf, size_t *ret_len,
                             struct trust_result *res)
{
	char *buf = NULL;
	size_t len = 0;
	/* util_read_file refuses a regular file by its size before allocating, and stops reading
	 * a pipe one byte past the cap: an endless stream is never buffered. */
	int r = util_read_file(path, TRUST_ENVELOPE_MAX, &buf, &len);
	if (r == -EFBIG)
		return trust_fail(res, TRUST_TOO_LARGE, "%s is larger than %u bytes", path,
		                  TRUST_ENVELOPE_MAX);
	if (r < 0) {
		trust_fail(res, TRUST_MALFORMED, "%s: %s", path, strerror(-r));
		return r;
	}
	trust_ok(res);
	*ret_buf = (uint8_t *)buf;
	*ret_len = len;
	return 0;
}

int trust_envelope_decode(const uint8_t *buf, size_t len, Corral__PayloadType expect_type,
                          Corral__SignedEnvelope **ret_env, struct trust_result *res)
{
	/* Size first: nothing larger than the cap is parsed at all. */
	if (len > TRUST_ENVELOPE_MAX)
		return trust_fail(res, TRUST_TOO_LARGE, "envelope is %zu bytes, the limit is %u",
		                  len, TRUST_ENVELOPE_MAX);
	if (!buf || len == 0)
		return trust_fail(res, TRUST_MALFORMED, "empty envelope");
	Corral__SignedEnvelope *env = corral__signed_envelope__unpack(NULL, len, buf);
	if (!env)
		return trust_fail(res, TRUST_MALFORMED, "envelope is not a SignedEnvelope");
	if (env->payload_type != expect_type) {
		int t = (int)env->payload_type;
		corral__signed_envelope__free_unpacked(env, NULL);
		return trust_fail(res, TRUST_MALFORMED, "payload type %d, expected %d", t,
		                  (int)expect_type);
	}
	if (env->payload.len == 0) {
		corral__signed_envelope__free_unpacked(env, NULL);
		return trust_fail(res, TRUST_MALFORMED, "empty payload");
	}
	if (env->n_signatures > TRUST_MAX_SIGNATURES) {
		size_t n = env->n_signatures;
		corral__signed_envelope__free_unpacked(env, NULL);
		return trust_fail(res, TRUST_MALFORMED, "%zu signatures, at most %d are examined",
		                  n, TRUST_MAX_SIGNATURES);
	}
	trust_ok(res);
	*ret_env = env;
	return 0;
}

static const Corral__PublicKey *find_key(const struct trust_keylist *known, size_t n_known,
                                         const char *key_id)
{
	for (size_t l = 0; l < n_known; l++)
		for (size_t i = 0; i < known[l].n; i++)
			if (strcmp(known[l].keys[i]->key_id, key_id) == 0)
				return known[l].keys[i];
	return NULL;
}

/* Printable prefix of an untrusted key id for details. */
static void short_id(const char *id, char out[17])
{
	size_t i = 0;
	for (; id && id[i] && i < 16; i++)
		out[i] = (id[i] >= 0x21 && id[i] < 0x7f) ? id[i] : '?';
	out[i] = '\0';
}

int trust_check_signatures(const Corral__SignedEnvelope *env, const struct trust_keylist *known,
                           size_t n_known, bool skip_unknown, struct trust_valid_sigs *ret_valid,
                           struct trust_result *res)
{
	/* Algorithms first: a signature we cannot even interpret rejects the envelope. */
	for (size_t i = 0; i < env->n_signatures; i++)
		if (env->signatures[i]->algorithm != CORRAL__ALGORITHM__ALGORITHM_ED25519)
			return trust_fail(res, TRUST_UNKNOWN_ALGORITHM,
			                  "signature %zu uses algorithm %d", i,
			                  (int)env->signatures[i]->algorithm);
	_cleanup_free_ uint8_t *msg = NULL;
	size_t msg_len = 0;
	int r = trust_signed_message(env->payload_type, env->payload.data, env->payload.len, &msg,
	                             &msg_len);
	if (r < 0)
		return r == -EMSGSIZE ? trust_fail(res, TRUST_TOO_LARGE, "payload too large") : r;
	struct trust_valid_sigs valid = {0};
	for (size_t i = 0; i < env->n_signatures; i++) {
		const Corral__Signature *s = env->signatures[i];
		char sid[17];
		short_id(s->key_id, sid);
		const Corral__PublicKey *k = find_key(known, n_known, s->key_id);
		if (!k && skip_unknown)
			continue;
		if (!k)
			return trust_fail(res, TRUST_UNKNOWN_KEY,
			                  "key %s... is not in the trust root", sid);
		if (!trust_ed25519_verify(k->public_key.data, k->public_key.len, msg, msg_len,
		                          s->signature.data, s->signature.len))
			return trust_fail(res, TRUST_BAD_SIGNATURE,
			                  "signature by key %s... does not verify", sid);
		bool seen = false;
		for (size_t j = 0; j < valid.n; j++)
			seen |= strcmp(valid.ids[j], k->key_id) == 0;
		if (!seen) {
			snprintf(valid.ids[valid.n], sizeof(valid.ids[0]), "%s", k->key_id);
			valid.n++;
		}
	}
	trust_ok(res);
	*ret_valid = valid;
	return 0;
}

size_t trust_count_signers(const struct trust_valid_sigs *valid, Corral__PublicKey *const *keys,
                           size_t n_keys)
{
	size_t n = 0;
	/* valid->ids are distinct, so each listed key is counted at most once. */
	for (size_t i = 0; i < valid->n; i++)
		if (trust_root_has_key(keys, n_keys, valid->ids[i]))
			n++;
	return n;
}

bool trust_root_has_key(Corral__PublicKey *const *keys, size_t n, const char *key_id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i]->key_id, key_id) == 0)
			return true;
	return false;
}

int trust_check_keylist(Corral__PublicKey *const *keys, size_t n, uint32_t threshold,
                        const char *what, struct trust_result *res)
{
	if (n == 0)
		return trust_fail(res, TRUST_MALFORMED, "no %s keys", what);
	if (n > TRUST_MAX_SIGNATURES)
		return trust_fail(res, TRUST_MALFORMED, "%zu %s keys, at most %d", n, what,
		                  TRUST_MAX_SIGNATURES);
	if (threshold == 0 || threshold > n)
		return trust_fail(res, TRUST_MALFORMED, "%s threshold %u with %zu keys", what,
		                  threshold, n);
	for (size_t i = 0; i < n; i++) {
		const Corral__PublicKey *k = keys[i];
		if (k->algorithm != CORRAL__ALGORITHM__ALGORITHM_ED25519)
			return trust_fail(res, TRUST_UNKNOWN_ALGORITHM,
			                  "%s key %zu uses algorithm %d", what, i,
			                  (int)k->algorithm);
		if (k->public_key.len != TRUST_ED25519_PUB_LEN)
			return trust_fail(res, TRUST_MALFORMED, "%s key %zu is %zu bytes", what, i,
			                  k->public_key.len);
		char id[TRUST_KEY_ID_LEN + 1];
		trust_sha256_hex(k->public_key.data, k->public_key.len, id);
		if (strcmp(id, k->key_id) != 0)
			return trust_fail(res, TRUST_MALFORMED,
			                  "%s key %zu: key id is not the SHA-256 of the key", what,
			                  i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(keys[j]->key_id, k->key_id) == 0)
				return trust_fail(res, TRUST_MALFORMED,
				                  "%s key %.16s... listed twice", what, id);
	}
	return 0;
}

int trust_envelope_cosign(const uint8_t *buf, size_t len, Corral__PayloadType type,
                          struct trust_key *const *keys, size_t n_keys, uint8_t **ret,
                          size_t *ret_len)
{
	if (n_keys > TRUST_MAX_SIGNATURES)
		return -E2BIG;
	for (size_t i = 0; i < n_keys; i++)
		if (!trust_key_is_private(keys[i]))
			return -EINVAL;
	Corral__SignedEnvelope *env = NULL;
	if (trust_envelope_decode(buf, len, type, &env, NULL) < 0)
		return -EINVAL;
	_cleanup_free_ uint8_t *msg = NULL;
	size_t msg_len = 0;
	int r = trust_signed_message(type, env->payload.data, env->payload.len, &msg, &msg_len);
	if (r < 0)
		goto out;
	/* New signatures live on this stack frame; the unpacked ones stay owned by env. */
	uint8_t sigs[TRUST_MAX_SIGNATURES][TRUST_ED25519_SIG_LEN];
	Corral__Signature sig_msgs[TRUST_MAX_SIGNATURES];
	Corral__Signature *all[TRUST_MAX_SIGNATURES];
	size_t n = env->n_signatures;
	for (size_t i = 0; i < n; i++)
		all[i] = env->signatures[i];
	for (size_t i = 0; i < n_keys; i++) {
		bool have = false;
		for (size_t j = 0; j < n; j++)
			have |= strcmp(all[j]->key_id, trust_key_id(keys[i])) == 0;
		if (have)
			continue;
		if (n >= TRUST_MAX_SIGNATURES) {
			r = -E2BIG;
			goto out;
		}
		r = trust_key_sign(keys[i], msg, msg_len, sigs[i]);
		if (r < 0)
			goto out;
		corral__signature__init(&sig_msgs[i]);
		sig_msgs[i].key_id = (char *)trust_key_id(keys[i]);
		sig_msgs[i].algorithm = CORRAL__ALGORITHM__ALGORITHM_ED25519;
		sig_msgs[i].signature.data = sigs[i];
		sig_msgs[i].signature.len = TRUST_ED25519_SIG_LEN;
		all[n++] = &sig_msgs[i];
	}
	Corral__SignedEnvelope out = CORRAL__SIGNED_ENVELOPE__INIT;
	out.payload_type = env->payload_type;
	out.payload = env->payload;
	out.n_signatures = n;
	out.signatures = all;
	size_t olen = corral__signed_envelope__get_packed_size(&out);
	if (olen > TRUST_ENVELOPE_MAX) {
		r = -EMSGSIZE;
		goto out;
	}
	uint8_t *obuf = malloc(olen);
	if (!obuf) {
		r = -ENOMEM;
		goto out;
	}
	corral__signed_envelope__pack(&out, obuf);
	*ret = obuf;
	*ret_len = olen;
	r = 0;
out:
	corral__signed_envelope__free_unpacked(env, NULL);
	return r;
}
