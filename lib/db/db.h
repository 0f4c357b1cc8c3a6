/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SQLite open + versioned migrations (PRAGMA user_version), shared by corrald and
 * corral-server. Migrations live in schema/sql/<db>/NNN_name.sql and are embedded at build time
 * (cmake/EmbedSql.cmake). A database newer than the binary knows is refused, never touched.
 */
#pragma once

#include <stddef.h>

struct sqlite3;

struct db_migration {
	unsigned version; /* 1, 2, ... in order */
	const char *name; /* file name without .sql */
	const char *sql;  /* one or more statements */
};

/* Embedded migration sets (terminated by {0, NULL, NULL}). */
extern const struct db_migration endpoint_migrations[];
extern const unsigned endpoint_migrations_count;
extern const struct db_migration server_migrations[];
extern const unsigned server_migrations_count;
/* corral-server's PostgreSQL migrations (schema/sql/server-pg/): the same numbers as the SQLite
 * set, applied by store_pg.c's runner (PostgreSQL has no PRAGMA user_version). */
extern const struct db_migration server_pg_migrations[];
extern const unsigned server_pg_migrations_count;

enum db_open_flags {
	DB_OPEN_READONLY = 1 << 0,
};

/*
 * Opens (creating when needed, mode 0600) the database at `path`, enables WAL, foreign keys and
 * a busy timeout, then applies every migration above the current user_version, each in its own
 * transaction with the user_version bump. On success *ret_db is owned by the caller
 * (sqlite3_close_v2). Errors: -EPROTO when the database is newer than `migrations` (a
 * downgrade); the message is written to `err` (may be NULL) and names both versions; -EIO for
 * SQLite failures (message in `err`).
 */
int db_open(const char *path, const struct db_migration *migrations, unsigned flags,
            struct sqlite3 **ret_db, char *err, size_t errlen);

/* Applies pending migrations to an open database. Same errors as db_open. */
int db_migrate(struct sqlite3 *db, const struct db_migration *migrations, char *err, size_t errlen);

/* Returns the schema version of an open database (PRAGMA user_version) or -EIO. */
int db_schema_version(struct sqlite3 *db);

/* Executes `sql` (no results); -EIO with the SQLite message in err. */
int db_exec(struct sqlite3 *db, const char *sql, char *err, size_t errlen);
