// SPDX-License-Identifier: Apache-2.0
/*
 * Allocation-failure paths of lib/policy. This program is linked with --wrap for malloc,
 * calloc, realloc and strdup, so the Nth allocation made by corral code fails; jansson's own
 * allocations are failed through json_set_alloc_funcs(). Each test walks N = 0, 1, 2, ... until
 * the operation succeeds and checks that every earlier attempt failed cleanly with -ENOMEM
 * (ASan, in the sanitizer build, checks that nothing leaked on the way out).
 */
#include "harness.h"
#include "policy.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "util.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

static long fail_at = -1; /* index of the allocation to fail; -1 = none */
static long calls;

static bool should_fail(void)
{
	return fail_at >= 0 && calls++ == fail_at;
}

void *__wrap_malloc(size_t n)
{
	return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return should_fail() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return should_fail() ? NULL : __real_strdup(s);
}

/* jansson allocator failing its Nth call the same way. */
static long json_fail_at = -1;
static long json_calls;

static void *json_failing_malloc(size_t n)
{
	if (json_fail_at >= 0 && json_calls++ == json_fail_at)
		return NULL;
	return __real_malloc(n);
}

static char *read_example(const char *name, size_t *ret_len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/schema/examples/%s", harness_source_dir(), name);
	char *buf = NULL;
	CU_ASSERT_EQUAL_FATAL(util_read_file(path, POLICY_SOURCE_MAX, &buf, ret_len), 0);
	return buf;
}

static void test_compile_oom(void)
{
	size_t len;
	_cleanup_free_ char *json = read_example("research-agent.json", &len);
	long n;
	for (n = 0; n < 10000; n++) {
		Corral__Policy *p = NULL;
		struct policy_error err;
		calls = 0;
		fail_at = n;
		int r = policy_compile(json, len, &p, &err);
		fail_at = -1;
		if (r == 0) {
			CU_ASSERT_PTR_NOT_NULL(p);
			corral__policy__free_unpacked(p, NULL);
			break;
		}
		CU_ASSERT_EQUAL(r, -ENOMEM);
		CU_ASSERT_PTR_NULL(p);
		CU_ASSERT_STRING_EQUAL(err.reason, "out of memory");
	}
	/* Many allocation sites were exercised, and the walk ended in success. */
	CU_ASSERT_TRUE(n > 50 && n < 10000);
}

static void test_lint_oom(void)
{
	size_t len;
	_cleanup_free_ char *json = read_example("audited-assistant.json", &len);
	Corral__Policy *p = NULL;
	CU_ASSERT_EQUAL_FATAL(policy_compile(json, len, &p, NULL), 0);
	long n;
	for (n = 0; n < 100; n++) {
		struct policy_findings f = {0};
		calls = 0;
		fail_at = n;
		int r = policy_lint(p, &f);
		fail_at = -1;
		policy_findings_free(&f);
		if (r >= 0) {
			CU_ASSERT_TRUE(r >= 4);
			break;
		}
		CU_ASSERT_EQUAL(r, -ENOMEM);
	}
	CU_ASSERT_TRUE(n >= 4 && n < 100);
	corral__policy__free_unpacked(p, NULL);
}

static void test_file_oom(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/schema/examples/strict-coding-agent.json",
	         harness_source_dir());
	Corral__Policy *p = NULL;
	struct policy_error err;
	calls = 0;
	fail_at = 0; /* the read buffer */
	int r = policy_compile_file(path, &p, &err);
	fail_at = -1;
	CU_ASSERT_EQUAL(r, -ENOMEM);
	CU_ASSERT_PTR_NULL(p);
}

/* jansson running out of memory while parsing or dumping. */
static void test_json_oom(void)
{
	size_t len;
	_cleanup_free_ char *json = read_example("strict-coding-agent.json", &len);
	json_set_alloc_funcs(json_failing_malloc, free);
	int enomem_compile = 0, enomem_compact = 0;
	long n;
	for (n = 0; n < 100000; n++) {
		Corral__Policy *p = NULL;
		json_calls = 0;
		json_fail_at = n;
		int r = policy_compile(json, len, &p, NULL);
		json_fail_at = -1;
		if (r == 0) {
			corral__policy__free_unpacked(p, NULL);
			break;
		}
		/* jansson reports most failed allocations as such; a few surface as a parse
		 * error. Either way the compile fails closed. */
		CU_ASSERT_TRUE(r == -ENOMEM || r == -EINVAL);
		enomem_compile += r == -ENOMEM;
	}
	CU_ASSERT_TRUE(n < 100000);
	for (n = 0; n < 100000; n++) {
		char *out = NULL;
		json_calls = 0;
		json_fail_at = n;
		int r = policy_source_compact(json, len, &out);
		json_fail_at = -1;
		if (r == 0) {
			free(out);
			break;
		}
		CU_ASSERT_TRUE(r == -ENOMEM || r == -EINVAL);
		CU_ASSERT_PTR_NULL(out);
		enomem_compact += r == -ENOMEM;
	}
	json_set_alloc_funcs(malloc, free);
	CU_ASSERT_TRUE(n < 100000);
	CU_ASSERT_TRUE(enomem_compile > 0);
	CU_ASSERT_TRUE(enomem_compact > 0);
}

static const struct harness_test oom_tests[] = {
        {"compile", test_compile_oom},
        {"lint", test_lint_oom},
        {"file", test_file_oom},
        {"jansson", test_json_oom},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"oom", NULL, NULL, oom_tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
