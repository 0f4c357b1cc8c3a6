// SPDX-License-Identifier: Apache-2.0
/* Unit tests for lib/db migrations: fresh, upgrade, future version refused, failure rollback. */
#include "harness.h"
#include "db.h"
#include "cleanup.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

static const struct db_migration v1[] = {
        {1, "001_a", "CREATE TABLE a (x INTEGER);"},
        {0, NULL, NULL},
};
static const struct db_migration v2[] = {
        {1, "001_a", "CREATE TABLE a (x INTEGER);"},
        {2, "002_b", "CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (42);"},
        {0, NULL, NULL},
};
static const struct db_migration v2_broken[] = {
        {1, "001_a", "CREATE TABLE a (x INTEGER);"},
        {2, "002_b", "CREATE TABLE b (y INTEGER); INSERT INTO nosuch VALUES (1);"},
        {0, NULL, NULL},
};

static char *path_in(const char *dir)
{
	char *p = NULL;
	CU_ASSERT(asprintf(&p, "%s/t.db", dir) > 0);
	return p;
}

static void test_fresh_and_upgrade(void)
{
	_cleanup_free_ char *dir = harness_mkdtemp("db");
	_cleanup_free_ char *path = path_in(dir);
	char err[512];
	sqlite3 *db = NULL;
	CU_ASSERT_EQUAL_FATAL(db_open(path, v1, 0, &db, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(db_schema_version(db), 1);
	sqlite3_close_v2(db);
	struct stat st;
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 077, 0);

	CU_ASSERT_EQUAL_FATAL(db_open(path, v2, 0, &db, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(db_schema_version(db), 2);
	sqlite3_stmt *q = NULL;
	CU_ASSERT_EQUAL(sqlite3_prepare_v2(db, "SELECT x FROM a", -1, &q, NULL), SQLITE_OK);
	CU_ASSERT_EQUAL(sqlite3_step(q), SQLITE_ROW);
	CU_ASSERT_EQUAL(sqlite3_column_int(q, 0), 42);
	sqlite3_finalize(q);
	sqlite3_close_v2(db);

	/* Reopen at the same version: nothing re-applied (the insert would duplicate). */
	CU_ASSERT_EQUAL_FATAL(db_open(path, v2, 0, &db, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(sqlite3_prepare_v2(db, "SELECT count(*) FROM a", -1, &q, NULL), SQLITE_OK);
	CU_ASSERT_EQUAL(sqlite3_step(q), SQLITE_ROW);
	CU_ASSERT_EQUAL(sqlite3_column_int(q, 0), 1);
	sqlite3_finalize(q);
	sqlite3_close_v2(db);
	harness_rm_rf(dir);
}

static void test_future_refused(void)
{
	_cleanup_free_ char *dir = harness_mkdtemp("db");
	_cleanup_free_ char *path = path_in(dir);
	char err[512] = "";
	sqlite3 *db = NULL;
	CU_ASSERT_EQUAL_FATAL(db_open(path, v2, 0, &db, err, sizeof(err)), 0);
	sqlite3_close_v2(db);
	db = NULL;
	CU_ASSERT_EQUAL(db_open(path, v1, 0, &db, err, sizeof(err)), -EPROTO);
	CU_ASSERT_PTR_NULL(db);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "newer than this program supports"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "2"));
	harness_rm_rf(dir);
}

static void test_failed_migration_rolls_back(void)
{
	_cleanup_free_ char *dir = harness_mkdtemp("db");
	_cleanup_free_ char *path = path_in(dir);
	char err[512] = "";
	sqlite3 *db = NULL;
	CU_ASSERT_EQUAL(db_open(path, v2_broken, 0, &db, err, sizeof(err)), -EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "002_b"));
	/* Version 1 stays applied, 2 left no trace. */
	CU_ASSERT_EQUAL_FATAL(db_open(path, v1, 0, &db, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(db_schema_version(db), 1);
	CU_ASSERT_NOT_EQUAL(sqlite3_exec(db, "SELECT * FROM b", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close_v2(db);
	harness_rm_rf(dir);
}

static void test_open_errors(void)
{
	char err[512] = "";
	sqlite3 *db = NULL;
	CU_ASSERT_EQUAL(db_open("/nonexistent-dir/x.db", v1, 0, &db, err, sizeof(err)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent-dir/x.db"));
}

static void test_embedded_sets(void)
{
	/* The embedded schemas of both databases apply cleanly to fresh files. */
	_cleanup_free_ char *dir = harness_mkdtemp("db");
	const struct {
		const char *file;
		const struct db_migration *migs;
		unsigned count;
	} sets[] = {{"endpoint.db", endpoint_migrations, endpoint_migrations_count},
	            {"server.db", server_migrations, server_migrations_count}};
	for (size_t i = 0; i < ELEMENTSOF(sets); i++) {
		char path[4096], err[512] = "";
		snprintf(path, sizeof(path), "%s/%s", dir, sets[i].file);
		sqlite3 *db = NULL;
		CU_ASSERT_EQUAL_FATAL(db_open(path, sets[i].migs, 0, &db, err, sizeof(err)), 0);
		CU_ASSERT(sets[i].count >= 1);
		CU_ASSERT_EQUAL(db_schema_version(db), (int)sets[i].count);
		sqlite3_close_v2(db);
	}
	harness_rm_rf(dir);
}

static const struct harness_test db_tests[] = {
        {"fresh_and_upgrade", test_fresh_and_upgrade},
        {"future_refused", test_future_refused},
        {"failed_migration_rolls_back", test_failed_migration_rolls_back},
        {"open_errors", test_open_errors},
        {"embedded_sets", test_embedded_sets},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"db", NULL, NULL, db_tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
