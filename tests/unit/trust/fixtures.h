/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared fixtures of the trust tests: deterministic keys (from fixed seeds, so failures are
 * reproducible), roots and bundles built and signed with them, and envelope surgery helpers
 * that let a test forge exactly one defect at a time.
 */
#pragma once

#include "trust.h"

#include <stdint.h>

/* Fixed test clock: 2026-06-01T00:00:00Z. */
#define FX_NOW 1780272000LL
#define FX_DAY 86400LL

enum fx_key {
	FX_ROOT1,
	FX_ROOT2,
	FX_ROOT3,
	FX_ROOT4,
	FX_SIGNER1,
	FX_SIGNER2,
	FX_SIGNER3,
	FX_OUTSIDER,
	FX_N_KEYS,
};

/* Deterministic private key (owned by the fixtures; do not free). */
struct trust_key *fx_key(enum fx_key k);
void fx_keys_free(void);

/* A serialized SignedEnvelope (free with free()). */
struct fx_blob {
	uint8_t *data;
	size_t len;
};

/*
 * Root `version` listing root keys `roots` (threshold rt) and signers `signers` (threshold st),
 * issued at issued, expiring at expires, signed by `sign`. Asserts on failure.
 */
struct fx_blob fx_root(uint64_t version, int64_t issued, int64_t expires, const enum fx_key *roots,
                       size_t n_roots, uint32_t rt, const enum fx_key *signers, size_t n_signers,
                       uint32_t st, const enum fx_key *sign, size_t n_sign);

/* The standard root v1: roots {1,2} t=2, signers {S1,S2} t=2, signed by roots 1 and 2. */
struct fx_blob fx_root_v1(void);

/* Bundle `version` targeting group "eng" and device "dev-1", signed by `sign`. */
struct fx_blob fx_bundle(uint64_t version, int64_t issued, int64_t expires, const enum fx_key *sign,
                         size_t n_sign);
/* Same with explicit targets ("group:NAME" / "device:ID"). */
struct fx_blob fx_bundle_targets(uint64_t version, int64_t issued, int64_t expires,
                                 const char *const *targets, size_t n_targets,
                                 const enum fx_key *sign, size_t n_sign);

/* Decoded root of a blob (verified as initial, no time check). Free with free_unpacked. */
Corral__TrustRoot *fx_root_decode(struct fx_blob b);

/* Decode, let `edit` change the envelope, re-encode. */
struct fx_blob fx_envelope_edit(struct fx_blob b, void (*edit)(Corral__SignedEnvelope *env));

void fx_blob_free(struct fx_blob *b);
