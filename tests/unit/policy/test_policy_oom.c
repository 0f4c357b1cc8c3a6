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

/* A policy that raises every finding code, so every append is walked. */
static const char every_finding[] =
        "{\"name\":\"t\",\"default_profile\":\"p\",\"profiles\":{"
        "\"p\":{\"production\":true,\"mode\":\"audit\",\"filesystem\":{\"read\":[\"/\"],"
        "\"write\":[\"/\",\"${HOME}\",\"${HOME}/.kube\"]},\"network\":{\"allow\":[{\"cidr\":"
        "\"0.0.0.0/0\",\"port\":1}],\"dns\":\"open\"},\"syscalls\":{\"baseline\":false},"
        "\"process\":{\"allow_root\":true,\"run_as\":\"root\"}},"
        "\"q\":{\"syscalls\":{\"action\":\"log\"},\"resources\":{\"cpu_max\":10},"
        "\"degrade\":{\"network_to_landlock_ports\":true,\"resources\":true,"
        "\"landlock_partial\":true}},"
        "\"r\":{\"network\":{\"default\":\"allow\"},\"resources\":{\"memory_max\":\"1G\"}}}}";

/* Walks one example through every allocation failure; returns the number of sites passed. */
static long compile_walk(const char *json, size_t len)
{
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
	return n;
}

static void test_compile_oom(void)
{
	/* Between them the examples reach every allocation site of the compiler (paths, hosts,
	 * CIDRs, syscall names, env names, controllers, profile references). */
	static const char *const examples[] = {"strict-coding-agent.json", "research-agent.json",
	                                       "audited-assistant.json"};
	for (size_t i = 0; i < ELEMENTSOF(examples); i++) {
		size_t len;
		_cleanup_free_ char *json = read_example(examples[i], &len);
		long n = compile_walk(json, len);
		CU_ASSERT_TRUE(n > 20 && n < 10000);
	}
	/* run_as with an account name is only in this one. */
	CU_ASSERT_TRUE(compile_walk(every_finding, strlen(every_finding)) > 20);
}

static void test_lint_oom(void)
{
	Corral__Policy *p = NULL;
	CU_ASSERT_EQUAL_FATAL(policy_compile(every_finding, strlen(every_finding), &p, NULL), 0);
	/* Check the premise: every code is raised. */
	struct policy_findings all = {0};
	int total = policy_lint(p, &all);
	for (const char *const *code = policy_lint_codes(); *code; code++) {
		bool seen = false;
		for (size_t i = 0; i < all.count; i++)
			seen |= strcmp(all.items[i].code, *code) == 0;
		CU_ASSERT_TRUE(seen);
	}
	policy_findings_free(&all);
	long n;
	for (n = 0; n < 1000; n++) {
		struct policy_findings f = {0};
		calls = 0;
		fail_at = n;
		int r = policy_lint(p, &f);
		fail_at = -1;
		policy_findings_free(&f);
		if (r >= 0) {
			CU_ASSERT_EQUAL(r, total);
			break;
		}
		CU_ASSERT_EQUAL(r, -ENOMEM);
	}
	CU_ASSERT_EQUAL(n, total);
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

/*
 * jansson running out of memory while parsing or dumping. The walk goes on past runs that
 * succeed despite an injected failure (jansson 2.14's lexer ignores a failed buffer growth and
 * drops a character; see docs/policy.md) until a run in which no failure was injected.
 */
static void test_json_oom(void)
{
	size_t len;
	_cleanup_free_ char *json = read_example("strict-coding-agent.json", &len);
	json_set_alloc_funcs(json_failing_malloc, free);
	int enomem_compile = 0, enomem_compact = 0;
	long n;
	for (n = 0; n < 100000; n++) {
		Corral__Policy *p = NULL;
		struct policy_error err;
		json_calls = 0;
		json_fail_at = n;
		int r = policy_compile(json, len, &p, &err);
		json_fail_at = -1;
		bool injected = json_calls > n;
		if (r == 0)
			corral__policy__free_unpacked(p, NULL);
		if (!injected) {
			CU_ASSERT_EQUAL(r, 0);
			break;
		}
		/* Either way the compile fails closed or yields a policy. */
		CU_ASSERT_TRUE(r == 0 || r == -ENOMEM || r == -EINVAL);
		if (r == -ENOMEM) {
			CU_ASSERT_STRING_EQUAL(err.reason, "out of memory");
			enomem_compile++;
		}
	}
	CU_ASSERT_TRUE(n < 100000);
	for (n = 0; n < 100000; n++) {
		char *out = NULL;
		json_calls = 0;
		json_fail_at = n;
		int r = policy_source_compact(json, len, &out);
		json_fail_at = -1;
		bool injected = json_calls > n;
		if (r < 0)
			CU_ASSERT_PTR_NULL(out);
		free(out);
		if (!injected) {
			CU_ASSERT_EQUAL(r, 0);
			break;
		}
		CU_ASSERT_TRUE(r == 0 || r == -ENOMEM || r == -EINVAL);
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
