/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Trust: Ed25519 keys, signed envelopes, trust roots and policy-bundle verification, modelled on
 * The Update Framework. The same code runs in corral-admin (signing, `policy verify`), in
 * corral-server (refusing bad publishes) and in corrald (accepting policies).
 *
 * Every rejection carries a reason code (trust_reason_code()) that is stable and user-facing:
 * malformed, too-large, unknown-algorithm, bad-signature, unknown-key, threshold, expired,
 * not-yet-valid, wrong-target, rollback, trust-expired (and version-gap for a trust root that
 * skips a version).
 *
 * Signatures cover a domain-separated message: "corral-sig-v1\0" || u32be(payload_type) ||
 * payload bytes, so a signature can never be moved between payload types.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <corral.pb-c.h>

/* Envelopes larger than this are refused before they are read in full (endless data). */
#define TRUST_ENVELOPE_MAX (4u * 1024u * 1024u)
/* Issued-at may be this far in the future (clock skew) before `not-yet-valid`. */
#define TRUST_CLOCK_SKEW_SEC 300
/* At most this many signatures are examined in one envelope. */
#define TRUST_MAX_SIGNATURES 32
/* Ed25519 raw key and signature sizes. */
#define TRUST_ED25519_PUB_LEN 32
#define TRUST_ED25519_SIG_LEN 64
/* Key id: hex SHA-256 of the raw public key. */
#define TRUST_KEY_ID_LEN 64

enum trust_reason {
	TRUST_OK = 0,
	TRUST_MALFORMED,
	TRUST_TOO_LARGE,
	TRUST_UNKNOWN_ALGORITHM,
	TRUST_BAD_SIGNATURE,
	TRUST_UNKNOWN_KEY,
	TRUST_THRESHOLD,
	TRUST_EXPIRED,
	TRUST_NOT_YET_VALID,
	TRUST_WRONG_TARGET,
	TRUST_ROLLBACK,
	TRUST_TRUST_EXPIRED,
	/* A trust root whose version skips ahead of previous + 1 ("version-gap"). */
	TRUST_VERSION_GAP,
};

/* "malformed", "too-large", ... ("ok" for TRUST_OK). Static string. */
const char *trust_reason_code(enum trust_reason r);

/* Maps a reason to the -errno the module returns (-EBADMSG, -ESTALE, -EKEYEXPIRED, ...). */
int trust_reason_errno(enum trust_reason r);

/* Outcome of a verification: reason plus a human detail ("key 3fa1... is not a signer"). */
struct trust_result {
	enum trust_reason reason;
	char detail[256];
};

/* ---- keys ---------------------------------------------------------------------------- */

struct trust_key; /* opaque: an Ed25519 public or private key */

/* Generates a fresh Ed25519 private key. Caller frees with trust_key_free(). */
int trust_key_generate(struct trust_key **ret_key);
/* Builds a private key from a 32-byte Ed25519 seed (deterministic keys for tests and fuzzing). */
int trust_key_from_seed(const uint8_t seed[32], struct trust_key **ret_key);
/* Loads a PEM private key; refuses (-EPERM) when the file is group/world accessible. */
int trust_key_load_private(const char *path, struct trust_key **ret_key);
/* Loads a PEM public key (or the public half of a private key file). */
int trust_key_load_public(const char *path, struct trust_key **ret_key);
/* Builds a public key from 32 raw bytes (-EINVAL for any other length). */
int trust_key_from_raw(const uint8_t *raw, size_t len, struct trust_key **ret_key);
/* Writes DIR/NAME.key (0600, private) and DIR/NAME.pub (0644). -EEXIST when either exists. */
int trust_key_save(const struct trust_key *key, const char *dir, const char *name);
/* Hex key id (64 chars + NUL), owned by the key. */
const char *trust_key_id(const struct trust_key *key);
/* Raw 32-byte public key, owned by the key. */
const uint8_t *trust_key_raw_public(const struct trust_key *key);
/* true when the key can sign. */
bool trust_key_is_private(const struct trust_key *key);
/* Frees the key (NULL is fine). */
void trust_key_free(struct trust_key *key);
/* Signs `len` bytes of `msg` (64-byte signature into sig). -EINVAL when the key is public. */
int trust_key_sign(const struct trust_key *key, const uint8_t *msg, size_t len,
                   uint8_t sig[TRUST_ED25519_SIG_LEN]);
/* Fills a PublicKey message that borrows the key's id and raw bytes (valid while key lives). */
void trust_key_to_proto(const struct trust_key *key, const char *name, Corral__PublicKey *out);

/* ---- envelopes ----------------------------------------------------------------------- */

/*
 * Signs `payload` with each private key and returns a serialized SignedEnvelope in *ret (caller
 * frees with free()). -EINVAL when a key is not private.
 */
int trust_envelope_sign(Corral__PayloadType type, const uint8_t *payload, size_t payload_len,
                        struct trust_key *const *keys, size_t n_keys, uint8_t **ret,
                        size_t *ret_len);

/*
 * Adds signatures by `keys` to an existing serialized envelope of type `type`, over its payload
 * bytes exactly as they are (two-person signing on separate machines: the second signer
 * co-signs the first one's file). A key that already signed is not added twice. *ret is the
 * new serialized envelope (caller frees). -EINVAL for a public key, a malformed envelope or a
 * wrong type; -E2BIG past TRUST_MAX_SIGNATURES.
 */
int trust_envelope_cosign(const uint8_t *env, size_t len, Corral__PayloadType type,
                          struct trust_key *const *keys, size_t n_keys, uint8_t **ret,
                          size_t *ret_len);

/*
 * Reads an envelope file, refusing (-EMSGSIZE, too-large) one larger than TRUST_ENVELOPE_MAX
 * before reading it in full. Other I/O errors return -errno with reason malformed. On success
 * *ret_buf (caller frees) holds *ret_len bytes.
 */
int trust_envelope_read_file(const char *path, uint8_t **ret_buf, size_t *ret_len,
                             struct trust_result *res);

/*
 * Decodes a serialized envelope (size-capped first) and checks its type. On success
 * *ret_env is owned by the caller (corral__signed_envelope__free_unpacked).
 */
int trust_envelope_decode(const uint8_t *buf, size_t len, Corral__PayloadType expect_type,
                          Corral__SignedEnvelope **ret_env, struct trust_result *res);

/* ---- trust roots ---------------------------------------------------------------------- */

/*
 * Verifies a first (installed) trust root: signed by a threshold of its own root keys, not
 * expired at `now`. On success *ret_root is owned by the caller
 * (corral__trust_root__free_unpacked). Returns 0 or a negative errno with *res filled.
 */
int trust_root_verify_initial(const uint8_t *env, size_t len, int64_t now,
                              Corral__TrustRoot **ret_root, struct trust_result *res);

/*
 * Verifies the successor of `prev`: version must be prev->version + 1 (no skipping, no going
 * back), signed by a threshold of prev's root keys AND a threshold of its own root keys.
 * Expiry of `prev` does not block rotation (that is how an expired root is repaired); the new
 * root itself must not be expired.
 */
int trust_root_verify_next(const Corral__TrustRoot *prev, const uint8_t *env, size_t len,
                           int64_t now, Corral__TrustRoot **ret_root, struct trust_result *res);

/*
 * Verifies a chain of roots given oldest first: the first as an initial root, each later one as
 * the successor of the one before. Only the last must be unexpired at `now` (intermediate roots
 * were superseded, their expiry no longer matters). *ret_root is the last root.
 */
int trust_root_verify_chain(const uint8_t *const *envs, const size_t *lens, size_t n, int64_t now,
                            Corral__TrustRoot **ret_root, struct trust_result *res);

/*
 * Decodes a root envelope's payload WITHOUT verifying any signature (to read its version before
 * deciding how to verify it). Never trust the result for anything else.
 */
int trust_root_peek(const uint8_t *env, size_t len, Corral__TrustRoot **ret_root,
                    struct trust_result *res);

/* What a new trust root says; keys are borrowed. */
struct trust_root_spec {
	uint64_t version;
	int64_t issued_at;
	int64_t expires_at;
	struct trust_key *const *root_keys;
	size_t n_root_keys;
	uint32_t root_threshold;
	struct trust_key *const *signer_keys;
	size_t n_signer_keys;
	uint32_t signer_threshold;
	/* Optional human labels, parallel to the key arrays (NULL = no labels). */
	const char *const *root_names;
	const char *const *signer_names;
};

/*
 * Builds the TrustRoot for `spec` and signs it with `sign_keys` (private). *ret is a serialized
 * SignedEnvelope{TrustRoot} the caller frees. -EINVAL for an inconsistent spec (threshold 0 or
 * above the number of keys, duplicate keys) or a public signing key.
 */
int trust_root_sign(const struct trust_root_spec *spec, struct trust_key *const *sign_keys,
                    size_t n_sign_keys, uint8_t **ret, size_t *ret_len);

/* true when a PublicKey with this id is listed. */
bool trust_root_has_key(Corral__PublicKey *const *keys, size_t n, const char *key_id);

/* ---- policy bundles ------------------------------------------------------------------- */

struct trust_bundle_ctx {
	int64_t now;
	/* Refuse versions <= this (highest ever applied); 0 = none applied yet. */
	uint64_t min_version_exclusive;
	/* Targeting: the bundle must name this device or one of these groups. When both are
	 * empty/NULL, targeting is not checked (admin-side verification without --group). */
	const char *device_id;
	const char *const *groups;
	size_t n_groups;
};

/* What a verified bundle was signed by. */
struct trust_bundle_info {
	uint64_t version;
	int64_t issued_at;
	int64_t expires_at;
	size_t n_signers;
	char signer_key_ids[TRUST_MAX_SIGNATURES][TRUST_KEY_ID_LEN + 1];
};

/*
 * Verifies a serialized SignedEnvelope{PolicyBundle} against `root`, in this order:
 * too-large, malformed (envelope), unknown-algorithm, (unknown-key, bad-signature per
 * signature), threshold (distinct signer keys of the root; root keys count only if also
 * signers), malformed (payload: decoded only once its signatures hold), trust-expired (root
 * expired), not-yet-valid, expired, wrong-target, rollback.
 * On success *ret_bundle (may be NULL) is owned by the caller
 * (corral__policy_bundle__free_unpacked) and *ret_info (may be NULL) is filled.
 */
int trust_bundle_verify(const Corral__TrustRoot *root, const uint8_t *env, size_t len,
                        const struct trust_bundle_ctx *ctx, Corral__PolicyBundle **ret_bundle,
                        struct trust_bundle_info *ret_info, struct trust_result *res);

/*
 * Serializes `bundle` once and signs exactly those bytes with `keys`. *ret is a serialized
 * SignedEnvelope{PolicyBundle} the caller frees. -EINVAL for a public key or a bundle without
 * version, targets or policy.
 */
int trust_bundle_sign(const Corral__PolicyBundle *bundle, struct trust_key *const *keys,
                      size_t n_keys, uint8_t **ret, size_t *ret_len);
