/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corrald's identity and enrollment state: small key/value rows in the `device` table of its
 * database (device id, certificate and CA chain PEM, groups, timestamps).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct sqlite3;

#define CD_STATE_VALUE_MAX (256u * 1024u)

/*
 * Reads `key`. On success *ret_val is a NUL-terminated heap copy (free) and *ret_len (may be
 * NULL) its length. Returns 0, -ENOENT, -EFBIG (over CD_STATE_VALUE_MAX) or -EIO.
 */
int cd_state_get(struct sqlite3 *db, const char *key, char **ret_val, size_t *ret_len);

/* Writes `key` (insert or replace). Returns 0 or -EIO. */
int cd_state_set(struct sqlite3 *db, const char *key, const void *val, size_t len);
int cd_state_set_str(struct sqlite3 *db, const char *key, const char *val);
int cd_state_set_i64(struct sqlite3 *db, const char *key, int64_t val);

/* Reads an integer written by cd_state_set_i64; -ENOENT or -EINVAL otherwise. */
int cd_state_get_i64(struct sqlite3 *db, const char *key, int64_t *ret);
