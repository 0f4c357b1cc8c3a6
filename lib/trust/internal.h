/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the files of lib/trust (not part of the public contract): filling a
 * trust_result, checking an envelope's signatures against sets of listed keys, and the
 * domain-separated message every signature covers.
 */
#pragma once

#include "trust.h"

#include <stdarg.h>

/* Prefix of every signed message, NUL included (14 bytes). */
#define TRUST_SIG_DOMAIN     "corral-sig-v1"
#define TRUST_SIG_DOMAIN_LEN 14

/* Fills *res (may be NULL) and returns trust_reason_errno(reason). */
int trust_fail(struct trust_result *res, enum trust_reason reason, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Sets *res (may be NULL) to TRUST_OK. */
void trust_ok(struct trust_result *res);

/* Builds "corral-sig-v1\0" || u32be(type) || payload into a new buffer (caller frees). */
int trust_signed_message(Corral__PayloadType type, const uint8_t *payload, size_t len,
                         uint8_t **ret, size_t *ret_len);

/* Verifies one Ed25519 signature with a raw public key. true when valid. */
bool trust_ed25519_verify(const uint8_t *pub, size_t pub_len, const uint8_t *msg, size_t len,
                          const uint8_t *sig, size_t sig_len);

/* A list of keys the payload may be signed by. */
struct trust_keylist {
	Corral__PublicKey *const *keys;
	size_t n;
};

/* Distinct key ids whose signatures verified. */
struct trust_valid_sigs {
	size_t n;
	char ids[TRUST_MAX_SIGNATURES][TRUST_KEY_ID_LEN + 1];
};

/*
 * Checks every signature of `env`: unknown-algorithm first (any signature), then per signature
 * unknown-key (listed in none of `known`) and bad-signature. A duplicate signature by one key
 * is verified but recorded once. With `skip_unknown`, signatures by unlisted keys are ignored
 * instead (an initial root installed on its own still carries its predecessor's signatures).
 * On success fills *ret_valid.
 */
int trust_check_signatures(const Corral__SignedEnvelope *env, const struct trust_keylist *known,
                           size_t n_known, bool skip_unknown, struct trust_valid_sigs *ret_valid,
                           struct trust_result *res);

/* Number of distinct valid signers that are listed in `keys`. */
size_t trust_count_signers(const struct trust_valid_sigs *valid, Corral__PublicKey *const *keys,
                           size_t n_keys);

/*
 * Structural checks of a list of keys in a root: algorithm, 32-byte key, id = SHA-256 of the
 * key, no duplicates, 1 <= threshold <= n. `what` names the list in the detail.
 */
int trust_check_keylist(Corral__PublicKey *const *keys, size_t n, uint32_t threshold,
                        const char *what, struct trust_result *res);

/* Hex SHA-256 of raw bytes into out (65 bytes). */
void trust_sha256_hex(const uint8_t *in, size_t len, char out[TRUST_KEY_ID_LEN + 1]);

/*
 * The root verifiers with the time checks (not-yet-valid, trust-expired) optional: a root that
 * was superseded by a later one in a chain need not be current any more.
 */
int trust_root_verify_first(const uint8_t *buf, size_t len, int64_t now, bool check_time,
                            Corral__TrustRoot **ret_root, struct trust_result *res);
int trust_root_verify_successor(const Corral__TrustRoot *prev, const uint8_t *buf, size_t len,
                                int64_t now, bool check_time, Corral__TrustRoot **ret_root,
                                struct trust_result *res);
