// SPDX-License-Identifier: Apache-2.0
/*
 * SQLite open + migrations. Each migration runs in one IMMEDIATE transaction together with its
 * user_version bump, so a crash leaves the database at the previous or the next version, never
 * between.
 */
#include "db.h"
#include "cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
}

int db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		set_err(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

int db_schema_version(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	int v = -EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

int db_migrate(sqlite3 *db, const struct db_migration *migrations, char *err, size_t errlen)
{
	unsigned known = 0;
	for (const struct db_migration *m = migrations; m->sql; m++)
		known = m->version;
	int cur = db_schema_version(db);
	if (cur < 0) {
		set_err(err, errlen, "cannot read schema version: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	if ((unsigned)cur > known) {
		set_err(err, errlen,
		        "database schema version %d is newer than this program supports (%u); "
		        "refusing to open it (was corral downgraded?)",
		        cur, known);
		return -EPROTO;
	}
	for (const struct db_migration *m = migrations; m->sql; m++) {
		if (m->version <= (unsigned)cur)
			continue;
		int r = db_exec(db, "BEGIN IMMEDIATE", err, errlen);
		if (r < 0)
			return r;
		r = db_exec(db, m->sql, err, errlen);
		if (r == 0) {
			char pragma[64];
			snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %u", m->version);
			r = db_exec(db, pragma, err, errlen);
		}
		if (r == 0)
			r = db_exec(db, "COMMIT", err, errlen);
		if (r < 0) {
			char saved[512] = "";
			if (err)
				snprintf(saved, sizeof(saved), "%s", err);
			(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			set_err(err, errlen, "migration %s failed: %s", m->name, saved);
			return r;
		}
	}
	return 0;
}

int db_open(const char *path, const struct db_migration *migrations, unsigned flags,
            sqlite3 **ret_db, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int oflags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	oflags |= (flags & DB_OPEN_READONLY) ? SQLITE_OPEN_READONLY
	                                     : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if (!(flags & DB_OPEN_READONLY)) {
		/* Create the file 0600 ourselves: SQLite would use the umask. */
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			int e = errno;
			set_err(err, errlen, "%s: %s", path, strerror(e));
			return -e;
		}
		close(fd);
	}
	if (sqlite3_open_v2(path, &db, oflags, NULL) != SQLITE_OK) {
		set_err(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close_v2(db);
		return -EIO;
	}
	sqlite3_busy_timeout(db, 5000);
	int r = 0;
	if (!(flags & DB_OPEN_READONLY)) {
		r = db_exec(db,
		            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
		            "PRAGMA foreign_keys = ON;",
		            err, errlen);
		if (r == 0)
			r = db_migrate(db, migrations, err, errlen);
	} else {
		r = db_exec(db, "PRAGMA foreign_keys = ON;", err, errlen);
	}
	if (r < 0) {
		sqlite3_close_v2(db);
		return r;
	}
	*ret_db = db;
	return 0;
}
