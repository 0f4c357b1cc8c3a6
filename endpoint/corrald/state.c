// SPDX-License-Identifier: Apache-2.0
/* Key/value identity state in corrald's database (see state.h). */
#include "state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

int cd_state_get(sqlite3 *db, const char *key, char **ret_val, size_t *ret_len)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT value FROM device WHERE key = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	if (r == SQLITE_DONE) {
		sqlite3_finalize(st);
		return -ENOENT;
	}
	if (r != SQLITE_ROW) {
		sqlite3_finalize(st);
		return -EIO;
	}
	size_t len = (size_t)sqlite3_column_bytes(st, 0);
	if (len > CD_STATE_VALUE_MAX) {
		sqlite3_finalize(st);
		return -EFBIG;
	}
	char *v = malloc(len + 1);
	if (!v) {
		sqlite3_finalize(st);
		return -ENOMEM;
	}
	if (len)
		memcpy(v, sqlite3_column_blob(st, 0), len);
	v[len] = '\0';
	sqlite3_finalize(st);
	*ret_val = v;
	if (ret_len)
		*ret_len = len;
	return 0;
}

int cd_state_set(sqlite3 *db, const char *key, const void *val, size_t len)
{
	if (len > CD_STATE_VALUE_MAX)
		return -EFBIG;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO device (key, value) VALUES (?, ?)", -1,
	                       &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, len ? val : "", (int)len, SQLITE_STATIC);
	int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	return r;
}

int cd_state_set_str(sqlite3 *db, const char *key, const char *val)
{
	return cd_state_set(db, key, val, strlen(val));
}

int cd_state_set_i64(sqlite3 *db, const char *key, int64_t val)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRId64, val);
	return cd_state_set_str(db, key, buf);
}

int cd_state_get_i64(sqlite3 *db, const char *key, int64_t *ret)
{
	char *v = NULL;
	int r = cd_state_get(db, key, &v, NULL);
	if (r < 0)
		return r;
	char *end = NULL;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	r = (errno || !end || *end || end == v) ? -EINVAL : 0;
	free(v);
	if (r == 0)
		*ret = x;
	return r;
}
