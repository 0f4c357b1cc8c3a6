// SPDX-License-Identifier: Apache-2.0
/*
 * The endpoint trust store: roots installed and rotated through SQLite, bundles applied with
 * rollback protection that survives a restart, freshness, tamper detection, every -errno path,
 * and a kill -9 loop that checks a crash never leaves a partial state.
 */
#include "fixtures.h"
#include "harness.h"
#include "store.h"
#include "cleanup.h"
#include "db.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

static const enum fx_key S12[] = {FX_SIGNER1, FX_SIGNER2};
static const enum fx_key R12[] = {FX_ROOT1, FX_ROOT2};
static const enum fx_key R23[] = {FX_ROOT2, FX_ROOT3};
static const enum fx_key R34[] = {FX_ROOT3, FX_ROOT4};
static const enum fx_key R123[] = {FX_ROOT1, FX_ROOT2, FX_ROOT3};
static const enum fx_key R234[] = {FX_ROOT2, FX_ROOT3, FX_ROOT4};
static const char *const ENG[] = {"eng"};

struct env {
	char *dir;
	char *path;
	sqlite3 *db;
	struct trust_store *st;
};

static void env_open(struct env *e)
{
	char err[256];
	CU_ASSERT_EQUAL_FATAL(db_open(e->path, endpoint_migrations, 0, &e->db, err, sizeof(err)),
	                      0);
	CU_ASSERT_EQUAL_FATAL(trust_store_open(e->db, &e->st), 0);
}

static void env_close(struct env *e)
{
	trust_store_free(e->st);
	e->st = NULL;
	if (e->db)
		sqlite3_close_v2(e->db);
	e->db = NULL;
}

static void env_setup(struct env *e)
{
	memset(e, 0, sizeof(*e));
	e->dir = harness_mkdtemp("trust-store");
	CU_ASSERT_FATAL(asprintf(&e->path, "%s/corrald.db", e->dir) > 0);
	env_open(e);
}

static void env_teardown(struct env *e)
{
	env_close(e);
	harness_rm_rf(e->dir);
	free(e->dir);
	free(e->path);
}

static void install_v1(struct env *e)
{
	struct fx_blob v1 = fx_root_v1();
	struct trust_result res;
	CU_ASSERT_EQUAL_FATAL(trust_store_install_root(e->st, v1.data, v1.len, FX_NOW, &res), 1);
	fx_blob_free(&v1);
}

static int apply(struct env *e, uint64_t version, int64_t now, struct trust_result *res)
{
	struct fx_blob b = fx_bundle(version, FX_NOW - 60, FX_NOW + 30 * FX_DAY, S12, 2);
	struct trust_result local;
	int r = trust_store_apply_bundle(e->st, b.data, b.len, "dev-1", ENG, 1, now, NULL,
	                                 res ? res : &local);
	fx_blob_free(&b);
	return r;
}

static void test_install_apply_current(void)
{
	struct env e;
	env_setup(&e);
	CU_ASSERT_EQUAL(trust_store_freshness(e.st, FX_NOW),
	                CORRAL__FRESHNESS__FRESHNESS_NO_POLICY);
	CU_ASSERT_PTR_NULL(trust_store_current_root(e.st));
	install_v1(&e);
	uint64_t v = 0;
	int64_t exp = 0;
	CU_ASSERT_EQUAL(trust_store_root_info(e.st, &v, &exp), 0);
	CU_ASSERT_EQUAL(v, 1);
	CU_ASSERT_EQUAL(exp, FX_NOW + 365 * FX_DAY);
	CU_ASSERT_PTR_NOT_NULL(trust_store_current_root(e.st));

	struct fx_blob b = fx_bundle(4, FX_NOW - 60, FX_NOW + 30 * FX_DAY, S12, 2);
	struct trust_bundle_info info;
	struct trust_result res;
	CU_ASSERT_EQUAL_FATAL(
	        trust_store_apply_bundle(e.st, b.data, b.len, "dev-1", ENG, 1, FX_NOW, &info, &res),
	        0);
	CU_ASSERT_EQUAL(info.version, 4);
	CU_ASSERT_EQUAL(info.n_signers, 2);
	CU_ASSERT_EQUAL(trust_store_highest_version(e.st, &v), 0);
	CU_ASSERT_EQUAL(v, 4);

	uint8_t *raw = NULL;
	size_t len = 0;
	Corral__PolicyBundle *bundle = NULL;
	struct trust_bundle_info cur;
	CU_ASSERT_EQUAL_FATAL(trust_store_current(e.st, &raw, &len, &bundle, &cur), 0);
	/* The raw signed bytes, exactly as received. */
	CU_ASSERT_EQUAL(len, b.len);
	CU_ASSERT(memcmp(raw, b.data, len) == 0);
	CU_ASSERT_EQUAL(bundle->version, 4);
	CU_ASSERT_STRING_EQUAL(cur.signer_key_ids[0], trust_key_id(fx_key(FX_SIGNER1)));
	free(raw);
	corral__policy_bundle__free_unpacked(bundle, NULL);
	CU_ASSERT_EQUAL(trust_store_current(e.st, NULL, NULL, NULL, NULL), 0);
	CU_ASSERT_EQUAL(trust_store_freshness(e.st, FX_NOW), CORRAL__FRESHNESS__FRESHNESS_FRESH);
	fx_blob_free(&b);
	env_teardown(&e);
}

static void test_rejected_bundle_keeps_old_in_force(void)
{
	struct env e;
	env_setup(&e);
	install_v1(&e);
	CU_ASSERT_EQUAL_FATAL(apply(&e, 2, FX_NOW, NULL), 0);
	/* Forged, wrong target, rollback: each refused with its reason; v2 stays. */
	static const enum fx_key one[] = {FX_SIGNER1};
	struct fx_blob b = fx_bundle(3, FX_NOW, FX_NOW + FX_DAY, one, 1);
	struct trust_result res;
	CU_ASSERT_EQUAL(
	        trust_store_apply_bundle(e.st, b.data, b.len, "dev-1", ENG, 1, FX_NOW, NULL, &res),
	        -EKEYREJECTED);
	CU_ASSERT_EQUAL(res.reason, TRUST_THRESHOLD);
	CU_ASSERT_EQUAL(
	        trust_store_apply_bundle(e.st, b.data, b.len, "dev-9", NULL, 0, FX_NOW, NULL, &res),
	        -EKEYREJECTED);
	fx_blob_free(&b);
	static const char *const fin[] = {"group:finance"};
	b = fx_bundle_targets(3, FX_NOW, FX_NOW + FX_DAY, fin, 1, S12, 2);
	CU_ASSERT_EQUAL(
	        trust_store_apply_bundle(e.st, b.data, b.len, "dev-1", ENG, 1, FX_NOW, NULL, &res),
	        -EXDEV);
	CU_ASSERT_EQUAL(res.reason, TRUST_WRONG_TARGET);
	fx_blob_free(&b);
	CU_ASSERT_EQUAL(apply(&e, 2, FX_NOW, &res), -ESTALE);
	CU_ASSERT_EQUAL(res.reason, TRUST_ROLLBACK);
	CU_ASSERT_EQUAL(apply(&e, 1, FX_NOW, &res), -ESTALE);
	struct trust_bundle_info info;
	CU_ASSERT_EQUAL(trust_store_current(e.st, NULL, NULL, NULL, &info), 0);
	CU_ASSERT_EQUAL(info.version, 2);
	env_teardown(&e);
}

static void test_rollback_refused_after_restart(void)
{
	struct env e;
	env_setup(&e);
	install_v1(&e);
	CU_ASSERT_EQUAL_FATAL(apply(&e, 5, FX_NOW, NULL), 0);
	env_close(&e);
	env_open(&e);
	uint64_t v = 0;
	CU_ASSERT_EQUAL(trust_store_highest_version(e.st, &v), 0);
	CU_ASSERT_EQUAL(v, 5);
	struct trust_result res;
	CU_ASSERT_EQUAL(apply(&e, 4, FX_NOW, &res), -ESTALE);
	CU_ASSERT_EQUAL(res.reason, TRUST_ROLLBACK);
	CU_ASSERT_EQUAL(apply(&e, 5, FX_NOW, &res), -ESTALE);
	CU_ASSERT_EQUAL(apply(&e, 6, FX_NOW, &res), 0);
	/* The root chain survives too. */
	uint64_t rv = 0;
	CU_ASSERT_EQUAL(trust_store_root_info(e.st, &rv, NULL), 0);
	CU_ASSERT_EQUAL(rv, 1);
	env_teardown(&e);
}

static void test_stale_stays_in_force(void)
{
	struct env e;
	env_setup(&e);
	install_v1(&e);
	CU_ASSERT_EQUAL_FATAL(apply(&e, 1, FX_NOW, NULL), 0);
	int64_t later = FX_NOW + 31 * FX_DAY; /* bundle expired, root not */
	CU_ASSERT_EQUAL(trust_store_freshness(e.st, later), CORRAL__FRESHNESS__FRESHNESS_STALE);
	/* Still there: the device keeps enforcing it, never falls open. */
	Corral__PolicyBundle *bundle = NULL;
	CU_ASSERT_EQUAL(trust_store_current(e.st, NULL, NULL, &bundle, NULL), 0);
	CU_ASSERT_PTR_NOT_NULL(bundle);
	corral__policy_bundle__free_unpacked(bundle, NULL);
	/* An expired replacement is refused (freeze) and the stale one remains. */
	struct trust_result res;
	struct fx_blob b = fx_bundle(2, FX_NOW, FX_NOW + FX_DAY, S12, 2);
	CU_ASSERT_EQUAL(
	        trust_store_apply_bundle(e.st, b.data, b.len, "dev-1", ENG, 1, later, NULL, &res),
	        -EKEYEXPIRED);
	fx_blob_free(&b);
	CU_ASSERT_EQUAL(trust_store_freshness(e.st, later), CORRAL__FRESHNESS__FRESHNESS_STALE);
	/* Once the trust root expires, nothing new is accepted: trust-expired. */
	int64_t much_later = FX_NOW + 400 * FX_DAY;
	b = fx_bundle(3, much_later - 10, much_later + FX_DAY, S12, 2);
	CU_ASSERT_EQUAL(trust_store_apply_bundle(e.st, b.data, b.len, "dev-1", ENG, 1, much_later,
	                                         NULL, &res),
	                -EKEYREVOKED);
	CU_ASSERT_EQUAL(res.reason, TRUST_TRUST_EXPIRED);
	fx_blob_free(&b);
	CU_ASSERT_EQUAL(trust_store_current(e.st, NULL, NULL, NULL, NULL), 0);
	env_teardown(&e);
}

static void test_rotation_chain_of_three(void)
{
	struct env e;
	env_setup(&e);
	install_v1(&e);
	CU_ASSERT_EQUAL_FATAL(apply(&e, 1, FX_NOW, NULL), 0);
	struct fx_blob v2 = fx_root(2, FX_NOW, FX_NOW + 90 * FX_DAY, R23, 2, 2, S12, 2, 2, R123, 3);
	static const enum fx_key s3[] = {FX_SIGNER3};
	struct fx_blob v3 = fx_root(3, FX_NOW, FX_NOW + 90 * FX_DAY, R34, 2, 2, s3, 1, 1, R234, 3);
	struct trust_result res;
	CU_ASSERT_EQUAL(trust_store_apply_root(e.st, v2.data, v2.len, FX_NOW, &res), 1);
	CU_ASSERT_EQUAL(trust_store_apply_root(e.st, v3.data, v3.len, FX_NOW, &res), 1);
	/* Re-delivering an applied root is a no-op. */
	CU_ASSERT_EQUAL(trust_store_apply_root(e.st, v2.data, v2.len, FX_NOW, &res), 0);
	uint64_t rv = 0;
	CU_ASSERT_EQUAL(trust_store_root_info(e.st, &rv, NULL), 0);
	CU_ASSERT_EQUAL(rv, 3);
	/* Signers rotated: the old signers' bundle is now unknown-key, the new one applies;
	 * the highest version (and the bundle from before rotation) carried over. */
	CU_ASSERT_EQUAL(apply(&e, 2, FX_NOW, &res), -ENOKEY);
	CU_ASSERT_EQUAL(res.reason, TRUST_UNKNOWN_KEY);
	CU_ASSERT_EQUAL(trust_store_current(e.st, NULL, NULL, NULL, NULL), 0);
	struct fx_blob b = fx_bundle(2, FX_NOW, FX_NOW + FX_DAY, s3, 1);
	CU_ASSERT_EQUAL(
	        trust_store_apply_bundle(e.st, b.data, b.len, "dev-1", ENG, 1, FX_NOW, NULL, &res),
	        0);
	fx_blob_free(&b);
	/* After a restart the chain is re-verified from its bytes and still at v3. */
	env_close(&e);
	env_open(&e);
	CU_ASSERT_EQUAL(trust_store_root_info(e.st, &rv, NULL), 0);
	CU_ASSERT_EQUAL(rv, 3);
	CU_ASSERT_EQUAL(trust_store_current(e.st, NULL, NULL, NULL, NULL), 0);
	fx_blob_free(&v2);
	fx_blob_free(&v3);
	env_teardown(&e);
}

static void test_rotation_refusals(void)
{
	struct env e;
	env_setup(&e);
	install_v1(&e);
	struct trust_result res;
	/* Only the old root's keys: refused. */
	struct fx_blob old_only = fx_root(2, FX_NOW, FX_NOW + FX_DAY, R34, 2, 2, S12, 2, 2, R12, 2);
	CU_ASSERT_EQUAL(trust_store_apply_root(e.st, old_only.data, old_only.len, FX_NOW, &res),
	                -EKEYREJECTED);
	CU_ASSERT_EQUAL(res.reason, TRUST_THRESHOLD);
	/* Skipping v2: refused. */
	static const enum fx_key all[] = {FX_ROOT1, FX_ROOT2, FX_ROOT3, FX_ROOT4};
	struct fx_blob v3 = fx_root(3, FX_NOW, FX_NOW + FX_DAY, R34, 2, 2, S12, 2, 2, all, 4);
	CU_ASSERT_EQUAL(trust_store_apply_root(e.st, v3.data, v3.len, FX_NOW, &res), -ERANGE);
	CU_ASSERT_EQUAL(res.reason, TRUST_VERSION_GAP);
	/* A different v1 (older or equal, not the one installed): rollback. */
	struct fx_blob other_v1 = fx_root(1, FX_NOW, FX_NOW + FX_DAY, R34, 2, 2, S12, 2, 2, R34, 2);
	CU_ASSERT_EQUAL(trust_store_apply_root(e.st, other_v1.data, other_v1.len, FX_NOW, &res),
	                -ESTALE);
	CU_ASSERT_EQUAL(res.reason, TRUST_ROLLBACK);
	/* ...and as a second "first" root: -EEXIST. */
	CU_ASSERT_EQUAL(trust_store_install_root(e.st, other_v1.data, other_v1.len, FX_NOW, &res),
	                -EEXIST);
	CU_ASSERT_EQUAL(trust_store_install_root(e.st, v3.data, v3.len, FX_NOW, &res), -EEXIST);
	struct fx_blob v1 = fx_root_v1();
	CU_ASSERT_EQUAL(trust_store_install_root(e.st, v1.data, v1.len, FX_NOW, &res), 0);
	static const uint8_t junk[] = {0xff, 0x01};
	CU_ASSERT_EQUAL(trust_store_install_root(e.st, junk, sizeof(junk), FX_NOW, &res), -EINVAL);
	CU_ASSERT_EQUAL(trust_store_apply_root(e.st, junk, sizeof(junk), FX_NOW, &res), -EINVAL);
	uint64_t rv = 0;
	CU_ASSERT_EQUAL(trust_store_root_info(e.st, &rv, NULL), 0);
	CU_ASSERT_EQUAL(rv, 1);

	/* A batch is all or nothing: v2 good, v3 broken (only new keys) -> neither stored. */
	struct fx_blob v2 = fx_root(2, FX_NOW, FX_NOW + FX_DAY, R23, 2, 2, S12, 2, 2, R123, 3);
	struct fx_blob v3_bad = fx_root(3, FX_NOW, FX_NOW + FX_DAY, R34, 2, 2, S12, 2, 2, R34, 2);
	const uint8_t *envs[] = {v1.data, v2.data, v3_bad.data};
	const size_t lens[] = {v1.len, v2.len, v3_bad.len};
	CU_ASSERT_EQUAL(trust_store_apply_roots(e.st, envs, lens, 3, FX_NOW, &res), -EKEYREJECTED);
	CU_ASSERT_EQUAL(trust_store_root_info(e.st, &rv, NULL), 0);
	CU_ASSERT_EQUAL(rv, 1);
	env_close(&e);
	env_open(&e);
	CU_ASSERT_EQUAL(trust_store_root_info(e.st, &rv, NULL), 0);
	CU_ASSERT_EQUAL(rv, 1);
	/* The good prefix alone applies (v1 skipped as identical). */
	CU_ASSERT_EQUAL(trust_store_apply_roots(e.st, envs, lens, 2, FX_NOW, &res), 1);
	CU_ASSERT_EQUAL(trust_store_apply_roots(e.st, envs, lens, 0, FX_NOW, &res), 0);
	CU_ASSERT_EQUAL(trust_store_root_info(e.st, &rv, NULL), 0);
	CU_ASSERT_EQUAL(rv, 2);
	fx_blob_free(&v1);
	fx_blob_free(&v2);
	fx_blob_free(&v3);
	fx_blob_free(&v3_bad);
	fx_blob_free(&other_v1);
	fx_blob_free(&old_only);
	env_teardown(&e);
}

static void test_enroll_chain_into_empty_store(void)
{
	/* EnrollResponse.trust_roots: the whole chain into a fresh device, v2 long expired. */
	struct env e;
	env_setup(&e);
	struct fx_blob v1 = fx_root_v1();
	struct fx_blob v2 =
	        fx_root(2, FX_NOW - 60 * FX_DAY, FX_NOW - FX_DAY, R23, 2, 2, S12, 2, 2, R123, 3);
	struct fx_blob v3 = fx_root(3, FX_NOW, FX_NOW + FX_DAY, R34, 2, 2, S12, 2, 2, R234, 3);
	const uint8_t *envs[] = {v1.data, v2.data, v3.data};
	const size_t lens[] = {v1.len, v2.len, v3.len};
	struct trust_result res;
	CU_ASSERT_EQUAL(trust_store_apply_roots(e.st, envs, lens, 3, FX_NOW, &res), 3);
	uint64_t rv = 0;
	CU_ASSERT_EQUAL(trust_store_root_info(e.st, &rv, NULL), 0);
	CU_ASSERT_EQUAL(rv, 3);
	CU_ASSERT_EQUAL(trust_store_apply_roots(e.st, envs, lens, 3, FX_NOW, &res), 0);
	fx_blob_free(&v1);
	fx_blob_free(&v2);
	fx_blob_free(&v3);
	env_teardown(&e);
}

static void test_errno_paths(void)
{
	struct env e;
	env_setup(&e);
	struct trust_result res;
	/* Nothing installed. */
	CU_ASSERT_EQUAL(apply(&e, 1, FX_NOW, &res), -ENOKEY);
	CU_ASSERT_EQUAL(res.reason, TRUST_UNKNOWN_KEY);
	struct fx_blob v1 = fx_root_v1();
	CU_ASSERT_EQUAL(trust_store_apply_root(e.st, v1.data, v1.len, FX_NOW, &res), -ENOKEY);
	CU_ASSERT_EQUAL(trust_store_current(e.st, NULL, NULL, NULL, NULL), -ENOENT);
	CU_ASSERT_EQUAL(trust_store_root_info(e.st, NULL, NULL), -ENOENT);
	/* Expired initial root. */
	struct fx_blob old =
	        fx_root(1, FX_NOW - 9 * FX_DAY, FX_NOW - FX_DAY, R12, 2, 2, S12, 2, 2, R12, 2);
	CU_ASSERT_EQUAL(trust_store_install_root(e.st, old.data, old.len, FX_NOW, &res),
	                -EKEYREVOKED);
	fx_blob_free(&old);
	/* Invalid arguments. */
	struct trust_store *st = NULL;
	CU_ASSERT_EQUAL(trust_store_open(NULL, &st), -EINVAL);
	CU_ASSERT_EQUAL(trust_store_install_root(NULL, v1.data, v1.len, FX_NOW, &res), -EINVAL);
	CU_ASSERT_EQUAL(trust_store_apply_root(NULL, v1.data, v1.len, FX_NOW, &res), -EINVAL);
	CU_ASSERT_EQUAL(trust_store_apply_roots(NULL, NULL, NULL, 1, FX_NOW, &res), -EINVAL);
	CU_ASSERT_EQUAL(
	        trust_store_apply_bundle(NULL, v1.data, v1.len, NULL, NULL, 0, FX_NOW, NULL, &res),
	        -EINVAL);
	CU_ASSERT_EQUAL(trust_store_current(NULL, NULL, NULL, NULL, NULL), -EINVAL);
	CU_ASSERT_EQUAL(trust_store_highest_version(NULL, NULL), -EINVAL);
	CU_ASSERT_EQUAL(trust_store_root_info(NULL, NULL, NULL), -EINVAL);
	CU_ASSERT_EQUAL(trust_store_freshness(NULL, FX_NOW), CORRAL__FRESHNESS__FRESHNESS_UNKNOWN);
	CU_ASSERT_PTR_NULL(trust_store_current_root(NULL));
	trust_store_free(NULL);
	fx_blob_free(&v1);
	env_teardown(&e);

	/* A database without the trust tables: -EIO everywhere. */
	sqlite3 *raw = NULL;
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(":memory:", &raw), SQLITE_OK);
	CU_ASSERT_EQUAL(trust_store_open(raw, &st), -EIO);
	CU_ASSERT_EQUAL_FATAL(sqlite3_exec(raw,
	                                   "CREATE TABLE trust_root (version INTEGER, envelope "
	                                   "BLOB, expires_at INTEGER, installed_at INTEGER)",
	                                   NULL, NULL, NULL),
	                      SQLITE_OK);
	CU_ASSERT_EQUAL(trust_store_open(raw, &st), -EIO);
	CU_ASSERT_PTR_NULL(st);
	sqlite3_close_v2(raw);
}

static void test_errno_io_after_open(void)
{
	struct env e;
	env_setup(&e);
	install_v1(&e);
	CU_ASSERT_EQUAL_FATAL(apply(&e, 1, FX_NOW, NULL), 0);
	/* The table disappears under the store (disk trouble, a bad migration): -EIO, and the
	 * freshness is UNKNOWN rather than a guess. */
	CU_ASSERT_EQUAL_FATAL(
	        sqlite3_exec(e.db, "ALTER TABLE trust_state RENAME TO gone", NULL, NULL, NULL),
	        SQLITE_OK);
	uint64_t v = 0;
	CU_ASSERT_EQUAL(trust_store_highest_version(e.st, &v), -EIO);
	CU_ASSERT_EQUAL(trust_store_current(e.st, NULL, NULL, NULL, NULL), -EIO);
	CU_ASSERT_EQUAL(apply(&e, 2, FX_NOW, NULL), -EIO);
	CU_ASSERT_EQUAL(trust_store_freshness(e.st, FX_NOW), CORRAL__FRESHNESS__FRESHNESS_UNKNOWN);
	static const enum fx_key r[] = {FX_ROOT1, FX_ROOT2, FX_ROOT3};
	struct fx_blob v2 = fx_root(2, FX_NOW, FX_NOW + FX_DAY, R23, 2, 2, S12, 2, 2, r, 3);
	struct trust_result res;
	CU_ASSERT_EQUAL_FATAL(
	        sqlite3_exec(e.db, "ALTER TABLE trust_root RENAME TO gone_too", NULL, NULL, NULL),
	        SQLITE_OK);
	CU_ASSERT_EQUAL(trust_store_apply_root(e.st, v2.data, v2.len, FX_NOW, &res), -EIO);
	/* The in-memory chain did not move ahead of the (failed) database. */
	uint64_t rv = 0;
	CU_ASSERT_EQUAL(trust_store_root_info(e.st, &rv, NULL), 0);
	CU_ASSERT_EQUAL(rv, 1);
	fx_blob_free(&v2);
	env_teardown(&e);

	/* Install on a store whose table vanished: -EIO, nothing cached. */
	env_setup(&e);
	CU_ASSERT_EQUAL_FATAL(
	        sqlite3_exec(e.db, "ALTER TABLE trust_root RENAME TO gone", NULL, NULL, NULL),
	        SQLITE_OK);
	struct fx_blob v1 = fx_root_v1();
	CU_ASSERT_EQUAL(trust_store_install_root(e.st, v1.data, v1.len, FX_NOW, &res), -EIO);
	CU_ASSERT_PTR_NULL(trust_store_current_root(e.st));
	fx_blob_free(&v1);
	env_teardown(&e);
}

static void test_tampered_database_refused(void)
{
	struct env e;
	env_setup(&e);
	install_v1(&e);
	CU_ASSERT_EQUAL_FATAL(apply(&e, 1, FX_NOW, NULL), 0);
	/* Someone edits the stored bundle bytes: current() refuses rather than serving them. */
	uint8_t *raw = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL_FATAL(trust_store_current(e.st, &raw, &len, NULL, NULL), 0);
	raw[len - 1] ^= 0x01; /* last byte of the last signature */
	sqlite3_stmt *u = NULL;
	CU_ASSERT_EQUAL_FATAL(
	        sqlite3_prepare_v2(e.db, "UPDATE trust_state SET bundle = ?", -1, &u, NULL),
	        SQLITE_OK);
	sqlite3_bind_blob(u, 1, raw, (int)len, SQLITE_STATIC);
	CU_ASSERT_EQUAL(sqlite3_step(u), SQLITE_DONE);
	sqlite3_finalize(u);
	free(raw);
	CU_ASSERT_EQUAL(trust_store_current(e.st, NULL, NULL, NULL, NULL), -EBADMSG);
	/* A bundle pointing at a root version the chain lacks. */
	CU_ASSERT_EQUAL_FATAL(sqlite3_exec(e.db, "UPDATE trust_state SET bundle_root_version = 9",
	                                   NULL, NULL, NULL),
	                      SQLITE_OK);
	CU_ASSERT_EQUAL(trust_store_current(e.st, NULL, NULL, NULL, NULL), -EBADMSG);
	/* Someone swaps the stored root for their own: the store refuses to open. */
	struct fx_blob evil = fx_root(1, FX_NOW, FX_NOW + FX_DAY, R34, 2, 2, R34, 2, 1, R34, 2);
	sqlite3_stmt *q = NULL;
	CU_ASSERT_EQUAL_FATAL(
	        sqlite3_prepare_v2(e.db, "UPDATE trust_root SET envelope = ?", -1, &q, NULL),
	        SQLITE_OK);
	sqlite3_bind_blob(q, 1, evil.data, (int)evil.len, SQLITE_STATIC);
	CU_ASSERT_EQUAL(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);
	/* A self-signed replacement v1 verifies on its own; so append a bogus v2 instead. */
	CU_ASSERT_EQUAL_FATAL(sqlite3_exec(e.db, "INSERT INTO trust_root VALUES (2, x'0a00', 0, 0)",
	                                   NULL, NULL, NULL),
	                      SQLITE_OK);
	env_close(&e);
	char err[256];
	CU_ASSERT_EQUAL_FATAL(db_open(e.path, endpoint_migrations, 0, &e.db, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(trust_store_open(e.db, &e.st), -EBADMSG);
	CU_ASSERT_PTR_NULL(e.st);
	/* A stored version column that disagrees with the signed payload. */
	CU_ASSERT_EQUAL_FATAL(sqlite3_exec(e.db,
	                                   "DELETE FROM trust_root WHERE version = 2; "
	                                   "UPDATE trust_root SET version = 5",
	                                   NULL, NULL, NULL),
	                      SQLITE_OK);
	CU_ASSERT_EQUAL(trust_store_open(e.db, &e.st), -EBADMSG);
	fx_blob_free(&evil);
	env_teardown(&e);
}

/* ---- kill -9 during apply ---------------------------------------------------------------- */

#define KILL_ROUNDS 100

/* Child: apply ever newer bundles until killed. Bundles are signed here, so a kill can land
 * anywhere: in signing, verifying, or inside the SQLite transaction and its fsyncs. */
static void __attribute__((noreturn)) apply_forever(const char *path)
{
	char err[256];
	sqlite3 *db = NULL;
	struct trust_store *st = NULL;
	if (db_open(path, endpoint_migrations, 0, &db, err, sizeof(err)) < 0 ||
	    trust_store_open(db, &st) < 0)
		_exit(3);
	for (;;) {
		uint64_t v = 0;
		if (trust_store_highest_version(st, &v) < 0)
			_exit(4);
		struct trust_key *k[] = {fx_key(FX_SIGNER1), fx_key(FX_SIGNER2)};
		Corral__Policy policy = CORRAL__POLICY__INIT;
		Corral__Target t = CORRAL__TARGET__INIT, *tp = &t;
		t.kind_case = CORRAL__TARGET__KIND_GROUP;
		t.group = (char *)"eng";
		Corral__PolicyBundle b = CORRAL__POLICY_BUNDLE__INIT;
		b.version = v + 1;
		b.issued_at = FX_NOW;
		b.expires_at = FX_NOW + FX_DAY;
		b.n_targets = 1;
		b.targets = &tp;
		b.policy = &policy;
		uint8_t *env = NULL;
		size_t len = 0;
		if (trust_bundle_sign(&b, k, 2, &env, &len) < 0)
			_exit(5);
		struct trust_result res;
		if (trust_store_apply_bundle(st, env, len, NULL, ENG, 1, FX_NOW, NULL, &res) < 0)
			_exit(6);
		free(env);
	}
}

static void test_kill9_during_apply_never_partial(void)
{
	struct env e;
	env_setup(&e);
	install_v1(&e);
	CU_ASSERT_EQUAL_FATAL(apply(&e, 1, FX_NOW, NULL), 0);
	/* Load the fixture keys before forking so every child derives nothing new. */
	(void)fx_key(FX_SIGNER1);
	(void)fx_key(FX_SIGNER2);
	env_close(&e);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	uint64_t last_highest = 1;
	int killed_mid_run = 0;
	for (int round = 0; round < KILL_ROUNDS; round++) {
		pid_t pid = fork();
		CU_ASSERT_FATAL(pid >= 0);
		if (pid == 0)
			apply_forever(e.path);
		/* 0-40 ms: sometimes during db_open, mostly inside the apply loop. */
		struct timespec ts = {0, (long)(rand() % 40000) * 1000L};
		nanosleep(&ts, NULL);
		CU_ASSERT_EQUAL(kill(pid, SIGKILL), 0);
		int status = 0;
		CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			killed_mid_run++;
		else
			CU_FAIL("child exited by itself (apply failed)");

		/* The state is the old or the new pair: a stored bundle that re-verifies from
		 * its raw bytes, whose version is the highest applied, never below the last. */
		env_open(&e);
		uint64_t highest = 0;
		CU_ASSERT_EQUAL(trust_store_highest_version(e.st, &highest), 0);
		struct trust_bundle_info info;
		uint8_t *raw = NULL;
		size_t len = 0;
		CU_ASSERT_EQUAL_FATAL(trust_store_current(e.st, &raw, &len, NULL, &info), 0);
		const Corral__TrustRoot *root = trust_store_current_root(e.st);
		struct trust_bundle_ctx ctx = {.now = FX_NOW};
		struct trust_result res;
		CU_ASSERT_EQUAL(trust_bundle_verify(root, raw, len, &ctx, NULL, NULL, &res), 0);
		CU_ASSERT(highest >= info.version);
		CU_ASSERT_EQUAL(highest, info.version);
		CU_ASSERT(highest >= last_highest);
		last_highest = highest;
		free(raw);
		env_close(&e);
	}
	CU_ASSERT_EQUAL(killed_mid_run, KILL_ROUNDS);
	/* The loop did make progress (kills landed between and during applies). */
	CU_ASSERT(last_highest > 1);
	printf("\n    kill -9 rounds: %d, highest version reached: %llu\n", KILL_ROUNDS,
	       (unsigned long long)last_highest);
	e.st = NULL;
	e.db = NULL;
	env_teardown(&e);
}

static int suite_cleanup(void)
{
	fx_keys_free();
	return 0;
}

static const struct harness_test store_tests[] = {
        {"install_apply_current", test_install_apply_current},
        {"rejected_bundle_keeps_old_in_force", test_rejected_bundle_keeps_old_in_force},
        {"rollback_refused_after_restart", test_rollback_refused_after_restart},
        {"stale_stays_in_force", test_stale_stays_in_force},
        {"rotation_chain_of_three", test_rotation_chain_of_three},
        {"rotation_refusals", test_rotation_refusals},
        {"enroll_chain_into_empty_store", test_enroll_chain_into_empty_store},
        {"errno_paths", test_errno_paths},
        {"errno_io_after_open", test_errno_io_after_open},
        {"tampered_database_refused", test_tampered_database_refused},
        {"kill9_during_apply_never_partial", test_kill9_during_apply_never_partial},
        {NULL, NULL},
};

int main(int argc, char **argv)
{
	static const struct harness_suite suites[] = {
	        {"store", NULL, suite_cleanup, store_tests},
	        {NULL, NULL, NULL, NULL},
	};
	return harness_main(argc, argv, suites);
}
