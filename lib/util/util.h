/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure helpers shared by every corral binary: capped file reading, time parsing and formatting,
 * hex, constant-time compares and secret-file checks. Library code here never logs and never
 * exits; functions return >= 0 on success or -errno.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Reads the whole file at `path` (or the open `fd` when path is NULL) into a NUL-terminated heap
 * buffer. Refuses with -EFBIG before allocating more than `max` bytes. On success *ret_buf is
 * owned by the caller and *ret_len excludes the terminating NUL.
 */
int util_read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len);
int util_read_fd(int fd, size_t max, char **ret_buf, size_t *ret_len);

/*
 * Writes `len` bytes to `path` atomically (temp file in the same directory, fsync, rename,
 * fsync of the directory) with permission `mode` (e.g. 0600 for private keys).
 */
int util_write_file_atomic(const char *path, const void *buf, size_t len, unsigned mode);

/*
 * Refuses (-EPERM) a secret file that is group- or world-accessible or not a regular file.
 */
int util_check_secret_file(const char *path);

/* Current time. */
int64_t util_now_sec(void);
int64_t util_now_ms(void);
uint64_t util_monotonic_ms(void);

/*
 * Parses a duration ("90s", "15m", "12h", "30d", "2w", or a plain number of seconds) into
 * seconds. -EINVAL on anything else, -ERANGE on overflow.
 */
int util_parse_duration(const char *s, int64_t *ret_seconds);

/* Parses RFC 3339 ("2026-12-31T23:59:59Z", offsets allowed) into Unix seconds. */
int util_parse_rfc3339(const char *s, int64_t *ret_unix);

/*
 * Parses an expiry argument: a duration from `now` or an RFC 3339 time. Used by every
 * `--expires` flag.
 */
int util_parse_expiry(const char *s, int64_t now, int64_t *ret_unix);

/* Formats Unix seconds as RFC 3339 UTC into buf (at least 21 bytes). Returns buf. */
char *util_format_rfc3339(int64_t t, char *buf, size_t len);

/* Lower-case hex of `len` bytes into `out` (2*len+1 bytes). */
void util_hex(const uint8_t *in, size_t len, char *out);

/* Parses exactly `len` bytes of hex. -EINVAL on bad characters or length. */
int util_unhex(const char *hex, uint8_t *out, size_t len);

/* Constant-time equality of two byte strings (lengths compared first, publicly). */
bool util_secure_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Parses a decimal uint64 with no sign, no junk, no overflow. */
int util_parse_u64(const char *s, uint64_t *ret);

/* Parses sizes like "512M", "2G", "1048576" into bytes. */
int util_parse_size(const char *s, uint64_t *ret_bytes);

/* true when `s` starts with `prefix`. */
bool util_startswith(const char *s, const char *prefix);
