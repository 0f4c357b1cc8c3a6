// SPDX-License-Identifier: Apache-2.0
/*
 * Pure helpers shared by every corral binary (see util.h). Side effects are limited to the
 * files the caller names.
 */
#include "util.h"
#include "cleanup.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int util_read_fd(int fd, size_t max, char **ret_buf, size_t *ret_len)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	/* A regular file's size is known: refuse before allocating. Pipes are read up to max. */
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
		return -EFBIG;
	/* procfs, sysfs and cgroupfs report regular files of size 0: start with a page for them
	 * rather than growing from one byte (a dozen read calls for /proc/<pid>/status). */
	size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
	if (cap > max + 1)
		cap = max + 1;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	size_t len = 0;
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > max) {
				/* Exactly max bytes so far: only EOF now keeps us under the cap. */
				char probe;
				ssize_t pr;
				do
					pr = read(fd, &probe, 1);
				while (pr < 0 && errno == EINTR);
				if (pr < 0)
					return -errno;
				if (pr > 0)
					return -EFBIG;
				break;
			}
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			char *n = realloc(buf, ncap);
			if (!n)
				return -ENOMEM;
			buf = n;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max)
			return -EFBIG;
	}
	buf[len] = '\0';
	*ret_buf = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int util_read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	return util_read_fd(fd, max, ret_buf, ret_len);
}

int util_write_file_atomic(const char *path, const void *buf, size_t len, unsigned mode)
{
	size_t plen = strlen(path);
	if (plen == 0 || plen > PATH_MAX - 16)
		return -ENAMETOOLONG;
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = 0;
	if (fchmod(fd, mode) < 0) {
		r = -errno;
		goto fail;
	}
	const char *p = buf;
	size_t left = len;
	while (left > 0) {
		ssize_t w = write(fd, p, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto fail;
		}
		p += w;
		left -= (size_t)w;
	}
	if (fsync(fd) < 0) {
		r = -errno;
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto fail;
	}
	/* Make the rename itself durable. */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

int util_check_secret_file(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return -EPERM;
	return 0;
}

int64_t util_now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

int64_t util_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t util_monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int util_parse_u64(const char *s, uint64_t *ret)
{
	if (!s || !*s)
		return -EINVAL;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

int util_parse_duration(const char *s, int64_t *ret_seconds)
{
	if (!s || !*s)
		return -EINVAL;
	size_t n = strlen(s);
	uint64_t mult = 1;
	char num[32];
	if (n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 's':
		mult = 1;
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	case 'w':
		mult = 7 * 86400;
		break;
	default:
		if (!isdigit((unsigned char)num[n - 1]))
			return -EINVAL;
		n++;
	}
	num[n - 1] = '\0';
	uint64_t v;
	int r = util_parse_u64(num, &v);
	if (r < 0)
		return r;
	if (v > (uint64_t)INT64_MAX / mult)
		return -ERANGE;
	*ret_seconds = (int64_t)(v * mult);
	return 0;
}

static int parse_digits(const char **p, int n, int *ret)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -EINVAL;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*ret = v;
	return 0;
}

int util_parse_rfc3339(const char *s, int64_t *ret_unix)
{
	if (!s)
		return -EINVAL;
	const char *p = s;
	int Y, M, D, h, m, sec;
	if (parse_digits(&p, 4, &Y) < 0 || *p++ != '-' || parse_digits(&p, 2, &M) < 0 ||
	    *p++ != '-' || parse_digits(&p, 2, &D) < 0 || (*p != 'T' && *p != 't' && *p != ' '))
		return -EINVAL;
	p++;
	if (parse_digits(&p, 2, &h) < 0 || *p++ != ':' || parse_digits(&p, 2, &m) < 0 ||
	    *p++ != ':' || parse_digits(&p, 2, &sec) < 0)
		return -EINVAL;
	if (*p == '.') { /* fractional seconds are accepted and dropped */
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	int64_t off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;
		p++;
		if (parse_digits(&p, 2, &oh) < 0 || *p++ != ':' || parse_digits(&p, 2, &om) < 0)
			return -EINVAL;
		if (oh > 23 || om > 59)
			return -EINVAL;
		off = sign * (oh * 3600 + om * 60);
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -EINVAL;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (D > mdays[M - 1])
		return -EINVAL;
	bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
	if (M == 2 && D == 29 && !leap)
		return -EINVAL;
	/* Days from civil (Howard Hinnant's algorithm), no timezone state involved. */
	int y = Y - (M <= 2);
	int era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (unsigned)((153 * (M + (M > 2 ? -3 : 9)) + 2) / 5 + D - 1);
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = (int64_t)era * 146097 + (int64_t)doe - 719468;
	*ret_unix = days * 86400 + h * 3600 + m * 60 + (sec > 59 ? 59 : sec) - off;
	return 0;
}

int util_parse_expiry(const char *s, int64_t now, int64_t *ret_unix)
{
	int64_t d;
	if (util_parse_duration(s, &d) == 0) {
		if (d > INT64_MAX - now)
			return -ERANGE;
		*ret_unix = now + d;
		return 0;
	}
	return util_parse_rfc3339(s, ret_unix);
}

char *util_format_rfc3339(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "?");
	return buf;
}

void util_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int util_unhex(const char *hex, uint8_t *out, size_t len)
{
	if (strlen(hex) != 2 * len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int util_parse_size(const char *s, uint64_t *ret_bytes)
{
	if (!s || !*s)
		return -EINVAL;
	size_t n = strlen(s);
	char num[32];
	if (n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	uint64_t mult = 1;
	char last = num[n - 1];
	if (last == 'B' && n > 1) { /* allow "512MB"/"2GiB"-free forms: "K","M","G","T" +"B" */
		num[--n] = '\0';
		last = num[n - 1];
	}
	switch (last) {
	case 'K':
	case 'k':
		mult = 1ULL << 10;
		break;
	case 'M':
		mult = 1ULL << 20;
		break;
	case 'G':
		mult = 1ULL << 30;
		break;
	case 'T':
		mult = 1ULL << 40;
		break;
	default:
		if (!isdigit((unsigned char)last))
			return -EINVAL;
		n++;
	}
	num[n - 1] = '\0';
	uint64_t v;
	int r = util_parse_u64(num, &v);
	if (r < 0)
		return r;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*ret_bytes = v * mult;
	return 0;
}

bool util_startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}
