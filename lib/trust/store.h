/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The endpoint trust store: corrald's durable trust state in its SQLite database
 * (schema/sql/endpoint/002_trust.sql): the chain of trust roots, the last known good policy
 * bundle as its raw signed bytes, and the highest bundle version ever applied.
 *
 * Every change is one SQLite transaction, so a crash (even kill -9) at any point leaves either
 * the old or the new state in force, never a mix and never nothing. Verification is the same
 * lib/trust code corral-admin and corral-server use. The store keeps enforcing an expired
 * bundle (reported stale) rather than falling open.
 *
 * Single-threaded: one trust_store per thread. The database handle stays the caller's.
 */
#pragma once

#include "trust.h"

struct sqlite3;
struct trust_store;

/*
 * Opens the trust store on `db` (opened by the caller with db_open(path, endpoint_migrations,
 * ...); not owned, must outlive the store). Re-verifies the stored root chain from its raw
 * bytes. Returns 0, -EIO (SQLite error, e.g. missing tables), -EBADMSG (a stored root or the
 * chain no longer verifies: the store refuses rather than trusting altered bytes) or -ENOMEM.
 */
int trust_store_open(struct sqlite3 *db, struct trust_store **ret);

/* Frees the store (NULL is fine); does not close the database. */
void trust_store_free(struct trust_store *st);

/*
 * Installs the first trust root (from the package, the MDM or enrollment). Returns 1 when
 * installed, 0 when this exact root is already the installed first root, -EEXIST when a
 * different root is already installed, or a verification error (-errno, *res says why).
 */
int trust_store_install_root(struct trust_store *st, const uint8_t *env, size_t len, int64_t now,
                             struct trust_result *res);

/*
 * Applies the next root of the chain (version = current + 1, signed by a threshold of the
 * current root's keys and of its own). Returns 1 when applied, 0 when this exact root is
 * already in the chain, -ENOKEY when no root is installed, a verification error otherwise
 * (rollback for a different older root, version-gap for a skipped version).
 */
int trust_store_apply_root(struct trust_store *st, const uint8_t *env, size_t len, int64_t now,
                           struct trust_result *res);

/*
 * Applies a list of roots, oldest first (EnrollResponse.trust_roots, PolicyUpdate.trust_roots):
 * roots already in the chain are skipped when identical, the rest are verified in order (only
 * the last needs to be unexpired) and stored in ONE transaction: all or none. With no root
 * installed the first is installed as initial root. Returns the number of roots added.
 */
int trust_store_apply_roots(struct trust_store *st, const uint8_t *const *envs, const size_t *lens,
                            size_t n, int64_t now, struct trust_result *res);

/*
 * Verifies a SignedEnvelope{PolicyBundle} against the current root, for this device and its
 * groups, with rollback protection against the highest version ever applied; on success stores
 * the raw bytes, the version as highest applied and `now` as applied time in ONE transaction.
 * Returns 0 (info filled when non-NULL), -ENOKEY (no trust root), -EIO, or the verification
 * error with *res filled (the stored policy stays in force).
 */
int trust_store_apply_bundle(struct trust_store *st, const uint8_t *env, size_t len,
                             const char *device_id, const char *const *groups, size_t n_groups,
                             int64_t now, struct trust_bundle_info *info, struct trust_result *res);

/*
 * The last known good bundle, re-verified from its stored raw bytes against the root it was
 * applied under. Every output may be NULL; *ret_env (free()) and *ret_bundle
 * (corral__policy_bundle__free_unpacked) are owned by the caller. Returns 0, -ENOENT when no
 * bundle was ever applied, -EBADMSG when the stored bytes no longer verify, -EIO, -ENOMEM.
 */
int trust_store_current(struct trust_store *st, uint8_t **ret_env, size_t *ret_len,
                        Corral__PolicyBundle **ret_bundle, struct trust_bundle_info *info);

/* Highest bundle version ever applied (0 when none). Returns 0 or -EIO. */
int trust_store_highest_version(struct trust_store *st, uint64_t *ret_version);

/* Version and expiry of the current trust root. -ENOENT when none is installed. */
int trust_store_root_info(struct trust_store *st, uint64_t *ret_version, int64_t *ret_expires_at);

/* The current trust root (borrowed, valid until the next apply or free); NULL when none. */
const Corral__TrustRoot *trust_store_current_root(struct trust_store *st);

/*
 * Freshness at `now`: NO_POLICY when nothing was applied, STALE when the last known good
 * bundle expired (it stays in force), FRESH otherwise, UNKNOWN on a database error.
 */
Corral__Freshness trust_store_freshness(struct trust_store *st, int64_t now);
