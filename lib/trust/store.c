// SPDX-License-Identifier: Apache-2.0
/*
 * The endpoint trust store (see store.h). State lives in two tables: trust_root (one row per
 * root of the chain, raw envelope bytes) and trust_state (one row: last known good bundle,
 * highest version applied). The in-memory chain is a cache of what the database says and is
 * only replaced after a transaction has committed.
 */
#include "store.h"
#include "internal.h"
#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <string.h>

#include <sqlite3.h>

struct trust_store {
	sqlite3 *db;
	Corral__TrustRoot **roots; /* the chain, oldest first */
	size_t n_roots;
};

static void stmt_finalizep(sqlite3_stmt **p)
{
	sqlite3_finalize(*p);
}
#define _cleanup_stmt_ _cleanup_(stmt_finalizep)

static void root_freep(Corral__TrustRoot **p)
{
	if (*p)
		corral__trust_root__free_unpacked(*p, NULL);
}

static int prepare(struct trust_store *st, const char *sql, sqlite3_stmt **ret)
{
	return sqlite3_prepare_v2(st->db, sql, -1, ret, NULL) == SQLITE_OK ? 0 : -EIO;
}

static int exec(struct trust_store *st, const char *sql)
{
	return sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

/* IMMEDIATE: take the write lock up front, so the read of the highest version and the write
 * that follows cannot interleave with another writer. */
static int tx_begin(struct trust_store *st)
{
	return exec(st, "BEGIN IMMEDIATE");
}

static int tx_commit(struct trust_store *st)
{
	if (exec(st, "COMMIT") < 0) {
		(void)exec(st, "ROLLBACK");
		return -EIO;
	}
	return 0;
}

static void tx_rollback(struct trust_store *st)
{
	(void)exec(st, "ROLLBACK");
}

static const Corral__TrustRoot *current_root(const struct trust_store *st)
{
	return st->n_roots ? st->roots[st->n_roots - 1] : NULL;
}

static int chain_push(struct trust_store *st, Corral__TrustRoot *root)
{
	Corral__TrustRoot **n = realloc(st->roots, (st->n_roots + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	st->roots = n;
	st->roots[st->n_roots++] = root;
	return 0;
}

static void chain_truncate(struct trust_store *st, size_t n)
{
	while (st->n_roots > n)
		corral__trust_root__free_unpacked(st->roots[--st->n_roots], NULL);
}

/* Loads and re-verifies the stored chain from its bytes (no time checks: these roots were
 * accepted when current; whether the last one is still current is for the verifier of each
 * bundle to say, as trust-expired). */
static int load_chain(struct trust_store *st)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	if (prepare(st, "SELECT version, envelope FROM trust_root ORDER BY version", &q) < 0)
		return -EIO;
	for (;;) {
		int s = sqlite3_step(q);
		if (s == SQLITE_DONE)
			break;
		if (s != SQLITE_ROW)
			return -EIO;
		const uint8_t *env = sqlite3_column_blob(q, 1);
		size_t len = (size_t)sqlite3_column_bytes(q, 1);
		Corral__TrustRoot *root = NULL;
		int r = st->n_roots == 0 ? trust_root_verify_first(env, len, 0, false, &root, NULL)
		                         : trust_root_verify_successor(current_root(st), env, len,
		                                                       0, false, &root, NULL);
		if (r < 0)
			return -EBADMSG;
		if ((int64_t)root->version != sqlite3_column_int64(q, 0)) {
			corral__trust_root__free_unpacked(root, NULL);
			return -EBADMSG;
		}
		r = chain_push(st, root);
		if (r < 0) {
			corral__trust_root__free_unpacked(root, NULL);
			return r;
		}
	}
	return 0;
}

void trust_store_free(struct trust_store *st)
{
	if (!st)
		return;
	chain_truncate(st, 0);
	free(st->roots);
	free(st);
}

int trust_store_open(struct sqlite3 *db, struct trust_store **ret)
{
	if (!db || !ret)
		return -EINVAL;
	struct trust_store *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->db = db;
	int r = load_chain(st);
	if (r >= 0) {
		/* The single state row must exist (002_trust.sql inserts it). */
		_cleanup_stmt_ sqlite3_stmt *q = NULL;
		if (prepare(st, "SELECT highest_version FROM trust_state WHERE id = 1", &q) < 0 ||
		    sqlite3_step(q) != SQLITE_ROW)
			r = -EIO;
	}
	if (r < 0) {
		trust_store_free(st);
		return r;
	}
	*ret = st;
	return 0;
}

/* Is `env` byte-identical to the stored root of `version`? 1 yes, 0 no/absent, -EIO. */
static int stored_root_equals(struct trust_store *st, uint64_t version, const uint8_t *env,
                              size_t len)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	if (prepare(st, "SELECT envelope FROM trust_root WHERE version = ?", &q) < 0 ||
	    sqlite3_bind_int64(q, 1, (sqlite3_int64)version) != SQLITE_OK)
		return -EIO;
	int s = sqlite3_step(q);
	if (s == SQLITE_DONE)
		return 0;
	if (s != SQLITE_ROW)
		return -EIO;
	return util_secure_equal(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0), env,
	                         len)
	               ? 1
	               : 0;
}

static int insert_root(struct trust_store *st, const Corral__TrustRoot *root, const uint8_t *env,
                       size_t len, int64_t now)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	if (prepare(st,
	            "INSERT INTO trust_root (version, envelope, expires_at, installed_at) "
	            "VALUES (?, ?, ?, ?)",
	            &q) < 0)
		return -EIO;
	if (sqlite3_bind_int64(q, 1, (sqlite3_int64)root->version) != SQLITE_OK ||
	    sqlite3_bind_blob(q, 2, env, (int)len, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(q, 3, root->expires_at) != SQLITE_OK ||
	    sqlite3_bind_int64(q, 4, now) != SQLITE_OK || sqlite3_step(q) != SQLITE_DONE)
		return -EIO;
	return 0;
}

int trust_store_install_root(struct trust_store *st, const uint8_t *env, size_t len, int64_t now,
                             struct trust_result *res)
{
	if (!st || !env)
		return -EINVAL;
	if (st->n_roots > 0) {
		/* Re-installing the same package root is harmless; anything else would let a
		 * second "first" root bypass the rotation rules. */
		_cleanup_(root_freep) Corral__TrustRoot *peek = NULL;
		int r = trust_root_peek(env, len, &peek, res);
		if (r < 0)
			return r;
		if (peek->version != st->roots[0]->version)
			return -EEXIST;
		r = stored_root_equals(st, peek->version, env, len);
		if (r < 0)
			return r;
		return r == 1 ? 0 : -EEXIST;
	}
	_cleanup_(root_freep) Corral__TrustRoot *root = NULL;
	int r = trust_root_verify_initial(env, len, now, &root, res);
	if (r < 0)
		return r;
	if (tx_begin(st) < 0)
		return -EIO;
	r = insert_root(st, root, env, len, now);
	if (r < 0) {
		tx_rollback(st);
		return r;
	}
	r = tx_commit(st);
	if (r < 0)
		return r;
	/* Cached only once durable. */
	r = chain_push(st, root);
	if (r < 0)
		return r;
	root = NULL;
	return 1;
}

/* Verifies and inserts roots inside an open transaction; pushes them on the in-memory chain
 * (the caller truncates it back on rollback). Returns how many were added. */
static int apply_roots_locked(struct trust_store *st, const uint8_t *const *envs,
                              const size_t *lens, size_t n, int64_t now, struct trust_result *res)
{
	/* Skip the roots this device already has, insisting they are the same bytes. */
	size_t first_new = 0;
	for (; first_new < n && st->n_roots > 0; first_new++) {
		_cleanup_(root_freep) Corral__TrustRoot *peek = NULL;
		int r = trust_root_peek(envs[first_new], lens[first_new], &peek, res);
		if (r < 0)
			return r;
		if (peek->version > current_root(st)->version)
			break;
		r = stored_root_equals(st, peek->version, envs[first_new], lens[first_new]);
		if (r < 0)
			return r;
		if (r == 0)
			return trust_fail(res, TRUST_ROLLBACK,
			                  "trust root %llu differs from the one applied and is not "
			                  "newer than %llu",
			                  (unsigned long long)peek->version,
			                  (unsigned long long)current_root(st)->version);
	}
	int added = 0;
	for (size_t i = first_new; i < n; i++) {
		Corral__TrustRoot *root = NULL;
		/* Only the root that ends the chain must be current. */
		bool last = i == n - 1;
		int r = st->n_roots == 0
		                ? trust_root_verify_first(envs[i], lens[i], now, last, &root, res)
		                : trust_root_verify_successor(current_root(st), envs[i], lens[i],
		                                              now, last, &root, res);
		if (r < 0)
			return r;
		r = insert_root(st, root, envs[i], lens[i], now);
		if (r >= 0)
			r = chain_push(st, root);
		if (r < 0) {
			corral__trust_root__free_unpacked(root, NULL);
			return r;
		}
		added++;
	}
	trust_ok(res);
	return added;
}

int trust_store_apply_roots(struct trust_store *st, const uint8_t *const *envs, const size_t *lens,
                            size_t n, int64_t now, struct trust_result *res)
{
	if (!st || (n && (!envs || !lens)))
		return -EINVAL;
	if (n == 0)
		return 0;
	if (tx_begin(st) < 0)
		return -EIO;
	size_t before = st->n_roots;
	int added = apply_roots_locked(st, envs, lens, n, now, res);
	int r = added;
	if (r >= 0)
		r = tx_commit(st);
	else
		tx_rollback(st);
	if (r < 0) {
		/* Not committed: the cache must not claim roots the database does not hold. */
		chain_truncate(st, before);
		return r;
	}
	return added;
}

int trust_store_apply_root(struct trust_store *st, const uint8_t *env, size_t len, int64_t now,
                           struct trust_result *res)
{
	if (!st || !env)
		return -EINVAL;
	if (st->n_roots == 0) {
		trust_fail(res, TRUST_UNKNOWN_KEY, "no trust root installed");
		return -ENOKEY;
	}
	const uint8_t *envs[] = {env};
	const size_t lens[] = {len};
	return trust_store_apply_roots(st, envs, lens, 1, now, res);
}

int trust_store_apply_bundle(struct trust_store *st, const uint8_t *env, size_t len,
                             const char *device_id, const char *const *groups, size_t n_groups,
                             int64_t now, struct trust_bundle_info *info, struct trust_result *res)
{
	if (!st)
		return -EINVAL;
	const Corral__TrustRoot *root = current_root(st);
	if (!root) {
		trust_fail(res, TRUST_UNKNOWN_KEY, "no trust root installed");
		return -ENOKEY;
	}
	if (tx_begin(st) < 0)
		return -EIO;
	uint64_t highest = 0;
	int r = trust_store_highest_version(st, &highest);
	if (r < 0)
		goto rollback;
	struct trust_bundle_ctx ctx = {
	        .now = now,
	        .min_version_exclusive = highest,
	        .device_id = device_id,
	        .groups = groups,
	        .n_groups = n_groups,
	};
	struct trust_bundle_info bi;
	r = trust_bundle_verify(root, env, len, &ctx, NULL, &bi, res);
	if (r < 0)
		goto rollback;
	{
		_cleanup_stmt_ sqlite3_stmt *q = NULL;
		/* Bundle, its version and the highest version move together: this single UPDATE
		 * is the whole state change, so there is no in-between state to crash into. */
		if (prepare(st,
		            "UPDATE trust_state SET highest_version = ?1, bundle = ?2, "
		            "bundle_version = ?1, bundle_expires_at = ?3, "
		            "bundle_root_version = ?4, applied_at = ?5 WHERE id = 1",
		            &q) < 0 ||
		    sqlite3_bind_int64(q, 1, (sqlite3_int64)bi.version) != SQLITE_OK ||
		    sqlite3_bind_blob(q, 2, env, (int)len, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_int64(q, 3, bi.expires_at) != SQLITE_OK ||
		    sqlite3_bind_int64(q, 4, (sqlite3_int64)root->version) != SQLITE_OK ||
		    sqlite3_bind_int64(q, 5, now) != SQLITE_OK || sqlite3_step(q) != SQLITE_DONE ||
		    sqlite3_changes(st->db) != 1) {
			r = -EIO;
			goto rollback;
		}
	}
	r = tx_commit(st);
	if (r < 0)
		return r;
	if (info)
		*info = bi;
	return 0;
rollback:
	tx_rollback(st);
	return r;
}

int trust_store_highest_version(struct trust_store *st, uint64_t *ret_version)
{
	if (!st || !ret_version)
		return -EINVAL;
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	if (prepare(st, "SELECT highest_version FROM trust_state WHERE id = 1", &q) < 0 ||
	    sqlite3_step(q) != SQLITE_ROW)
		return -EIO;
	*ret_version = (uint64_t)sqlite3_column_int64(q, 0);
	return 0;
}

static const Corral__TrustRoot *root_by_version(const struct trust_store *st, uint64_t version)
{
	for (size_t i = 0; i < st->n_roots; i++)
		if (st->roots[i]->version == version)
			return st->roots[i];
	return NULL;
}

int trust_store_current(struct trust_store *st, uint8_t **ret_env, size_t *ret_len,
                        Corral__PolicyBundle **ret_bundle, struct trust_bundle_info *info)
{
	if (!st)
		return -EINVAL;
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	if (prepare(st,
	            "SELECT bundle, bundle_root_version, applied_at, highest_version "
	            "FROM trust_state WHERE id = 1",
	            &q) < 0 ||
	    sqlite3_step(q) != SQLITE_ROW)
		return -EIO;
	if (sqlite3_column_type(q, 0) == SQLITE_NULL)
		return -ENOENT;
	const uint8_t *env = sqlite3_column_blob(q, 0);
	size_t len = (size_t)sqlite3_column_bytes(q, 0);
	const Corral__TrustRoot *root = root_by_version(st, (uint64_t)sqlite3_column_int64(q, 1));
	if (!root || !env)
		return -EBADMSG;
	/* Re-verify as at the moment it was applied: same root, same clock, no targeting (the
	 * device's groups may have changed since; the bundle stays in force until replaced). */
	struct trust_bundle_ctx ctx = {.now = sqlite3_column_int64(q, 2)};
	Corral__PolicyBundle *b = NULL;
	struct trust_bundle_info bi;
	if (trust_bundle_verify(root, env, len, &ctx, &b, &bi, NULL) < 0)
		return -EBADMSG;
	if (bi.version > (uint64_t)sqlite3_column_int64(q, 3)) {
		corral__policy_bundle__free_unpacked(b, NULL);
		return -EBADMSG;
	}
	uint8_t *copy = NULL;
	if (ret_env) {
		copy = malloc(len);
		if (!copy) {
			corral__policy_bundle__free_unpacked(b, NULL);
			return -ENOMEM;
		}
		memcpy(copy, env, len);
		*ret_env = copy;
		if (ret_len)
			*ret_len = len;
	}
	if (ret_bundle)
		*ret_bundle = b;
	else
		corral__policy_bundle__free_unpacked(b, NULL);
	if (info)
		*info = bi;
	return 0;
}

int trust_store_root_info(struct trust_store *st, uint64_t *ret_version, int64_t *ret_expires_at)
{
	if (!st)
		return -EINVAL;
	const Corral__TrustRoot *root = current_root(st);
	if (!root)
		return -ENOENT;
	if (ret_version)
		*ret_version = root->version;
	if (ret_expires_at)
		*ret_expires_at = root->expires_at;
	return 0;
}

const Corral__TrustRoot *trust_store_current_root(struct trust_store *st)
{
	return st ? current_root(st) : NULL;
}

Corral__Freshness trust_store_freshness(struct trust_store *st, int64_t now)
{
	if (!st)
		return CORRAL__FRESHNESS__FRESHNESS_UNKNOWN;
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	if (prepare(st, "SELECT bundle_expires_at FROM trust_state WHERE id = 1", &q) < 0 ||
	    sqlite3_step(q) != SQLITE_ROW)
		return CORRAL__FRESHNESS__FRESHNESS_UNKNOWN;
	if (sqlite3_column_type(q, 0) == SQLITE_NULL)
		return CORRAL__FRESHNESS__FRESHNESS_NO_POLICY;
	/* Expired means stale, never "no policy": the last known good stays in force. */
	return sqlite3_column_int64(q, 0) <= now ? CORRAL__FRESHNESS__FRESHNESS_STALE
	                                         : CORRAL__FRESHNESS__FRESHNESS_FRESH;
}
