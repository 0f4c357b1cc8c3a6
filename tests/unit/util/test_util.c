// SPDX-License-Identifier: Apache-2.0
/* Unit tests for lib/util: parsing, capped reads, atomic writes, secret-file checks. */
#include "harness.h"
#include "util.h"
#include "cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_duration(void)
{
	int64_t s;
	CU_ASSERT_EQUAL(util_parse_duration("90s", &s), 0);
	CU_ASSERT_EQUAL(s, 90);
	CU_ASSERT_EQUAL(util_parse_duration("15m", &s), 0);
	CU_ASSERT_EQUAL(s, 900);
	CU_ASSERT_EQUAL(util_parse_duration("30d", &s), 0);
	CU_ASSERT_EQUAL(s, 30 * 86400);
	CU_ASSERT_EQUAL(util_parse_duration("2w", &s), 0);
	CU_ASSERT_EQUAL(s, 14 * 86400);
	CU_ASSERT_EQUAL(util_parse_duration("120", &s), 0);
	CU_ASSERT_EQUAL(s, 120);
	CU_ASSERT_EQUAL(util_parse_duration("", &s), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_duration("5x", &s), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_duration("-5s", &s), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_duration("99999999999999999999d", &s), -ERANGE);
	CU_ASSERT_EQUAL(util_parse_duration("999999999999999w", &s), -ERANGE);
}

static void test_rfc3339(void)
{
	int64_t t;
	CU_ASSERT_EQUAL(util_parse_rfc3339("1970-01-01T00:00:00Z", &t), 0);
	CU_ASSERT_EQUAL(t, 0);
	CU_ASSERT_EQUAL(util_parse_rfc3339("2026-11-27T10:00:00Z", &t), 0);
	CU_ASSERT_EQUAL(t, 1795773600);
	CU_ASSERT_EQUAL(util_parse_rfc3339("2026-11-27T12:00:00+02:00", &t), 0);
	CU_ASSERT_EQUAL(t, 1795773600);
	CU_ASSERT_EQUAL(util_parse_rfc3339("2024-02-29T00:00:00.123Z", &t), 0);
	CU_ASSERT_EQUAL(util_parse_rfc3339("2023-02-29T00:00:00Z", &t), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_rfc3339("2026-13-01T00:00:00Z", &t), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_rfc3339("2026-11-27T10:00:00", &t), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_rfc3339("2026-11-27T10:00:00Zjunk", &t), -EINVAL);
	char buf[32];
	CU_ASSERT_STRING_EQUAL(util_format_rfc3339(1795773600, buf, sizeof(buf)),
	                       "2026-11-27T10:00:00Z");
	CU_ASSERT_EQUAL(util_parse_expiry("1h", 1000, &t), 0);
	CU_ASSERT_EQUAL(t, 4600);
	CU_ASSERT_EQUAL(util_parse_expiry("1970-01-01T00:00:10Z", 1000, &t), 0);
	CU_ASSERT_EQUAL(t, 10);
	CU_ASSERT_EQUAL(util_parse_expiry("tomorrow", 1000, &t), -EINVAL);
}

static void test_hex_and_equal(void)
{
	uint8_t in[3] = {0x00, 0xab, 0xff}, out[3];
	char hex[7];
	util_hex(in, 3, hex);
	CU_ASSERT_STRING_EQUAL(hex, "00abff");
	CU_ASSERT_EQUAL(util_unhex("00ABff", out, 3), 0);
	CU_ASSERT_EQUAL(memcmp(in, out, 3), 0);
	CU_ASSERT_EQUAL(util_unhex("00ab", out, 3), -EINVAL);
	CU_ASSERT_EQUAL(util_unhex("00abzz", out, 3), -EINVAL);
	CU_ASSERT_TRUE(util_secure_equal("abc", 3, "abc", 3));
	CU_ASSERT_FALSE(util_secure_equal("abc", 3, "abd", 3));
	CU_ASSERT_FALSE(util_secure_equal("abc", 3, "abcd", 4));
}

static void test_numbers(void)
{
	uint64_t v;
	CU_ASSERT_EQUAL(util_parse_u64("18446744073709551615", &v), 0);
	CU_ASSERT_EQUAL(v, UINT64_MAX);
	CU_ASSERT_EQUAL(util_parse_u64("18446744073709551616", &v), -ERANGE);
	CU_ASSERT_EQUAL(util_parse_u64("12a", &v), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_u64("", &v), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_size("512M", &v), 0);
	CU_ASSERT_EQUAL(v, 512ULL << 20);
	CU_ASSERT_EQUAL(util_parse_size("2GB", &v), 0);
	CU_ASSERT_EQUAL(v, 2ULL << 30);
	CU_ASSERT_EQUAL(util_parse_size("4096", &v), 0);
	CU_ASSERT_EQUAL(v, 4096);
	CU_ASSERT_EQUAL(util_parse_size("3Q", &v), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_size("99999999999T", &v), -ERANGE);
}

static void test_files(void)
{
	_cleanup_free_ char *dir = harness_mkdtemp("util");
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	char path[4096];
	snprintf(path, sizeof(path), "%s/f", dir);
	CU_ASSERT_EQUAL(util_write_file_atomic(path, "hello", 5, 0600), 0);
	struct stat st;
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
	CU_ASSERT_EQUAL(util_check_secret_file(path), 0);
	char *buf = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL(util_read_file(path, 5, &buf, &len), 0);
	CU_ASSERT_EQUAL(len, 5);
	CU_ASSERT_STRING_EQUAL(buf, "hello");
	free(buf);
	buf = NULL;
	CU_ASSERT_EQUAL(util_read_file(path, 4, &buf, &len), -EFBIG);
	CU_ASSERT_PTR_NULL(buf);
	CU_ASSERT_EQUAL(chmod(path, 0644), 0);
	CU_ASSERT_EQUAL(util_check_secret_file(path), -EPERM);
	CU_ASSERT_EQUAL(util_check_secret_file(dir), -EINVAL);
	snprintf(path, sizeof(path), "%s/missing", dir);
	CU_ASSERT_EQUAL(util_read_file(path, 10, &buf, &len), -ENOENT);
	CU_ASSERT_EQUAL(util_read_file(dir, 10, &buf, &len), -EISDIR);
	snprintf(path, sizeof(path), "%s/nodir/f", dir);
	CU_ASSERT_EQUAL(util_write_file_atomic(path, "x", 1, 0600), -ENOENT);
	/* A pipe has no size up front: the cap is enforced while reading. */
	int p[2];
	CU_ASSERT_EQUAL_FATAL(pipe2(p, O_CLOEXEC), 0);
	CU_ASSERT_EQUAL(write(p[1], "0123456789", 10), 10);
	close(p[1]);
	CU_ASSERT_EQUAL(util_read_fd(p[0], 8, &buf, &len), -EFBIG);
	close(p[0]);
	harness_rm_rf(dir);
}

static const struct harness_test util_tests[] = {
        {"duration", test_duration},
        {"rfc3339", test_rfc3339},
        {"hex_and_equal", test_hex_and_equal},
        {"numbers", test_numbers},
        {"files", test_files},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"util", NULL, NULL, util_tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
