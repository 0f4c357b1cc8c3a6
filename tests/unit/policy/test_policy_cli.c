// SPDX-License-Identifier: Apache-2.0
/*
 * `corral-admin policy lint`, run as a real program: exit codes (0 clean, 1 findings, 2
 * invalid or usage), the FILE: POINTER: REASON form of compile errors, --json output and
 * --help. The acceptance cases of the policy language live here: the reference examples, and a
 * wrong type, an unknown field and a bad port each exiting 2 with the JSON pointer named.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "util.h"

extern char **environ;

static char *tmpdir;

static int suite_init(void)
{
	tmpdir = harness_mkdtemp("policy-cli");
	return tmpdir ? 0 : -1;
}

static int suite_cleanup(void)
{
	if (tmpdir)
		harness_rm_rf(tmpdir);
	free(tmpdir);
	return 0;
}

struct run {
	int status;
	char *out;
	char *err;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* Runs corral-admin with `args` (NULL-terminated), capturing stdout and stderr. */
static struct run admin(const char *const *args)
{
	struct run res = {.status = -1};
	char bin[4096], out_path[4096], err_path[4096];
	snprintf(bin, sizeof(bin), "%s/bin/corral-admin", harness_binary_dir());
	snprintf(out_path, sizeof(out_path), "%s/stdout", tmpdir);
	snprintf(err_path, sizeof(err_path), "%s/stderr", tmpdir);
	char *argv[32];
	size_t n = 0;
	argv[n++] = bin;
	for (; args[n - 1] && n < ELEMENTSOF(argv) - 1; n++)
		argv[n] = (char *)args[n - 1];
	argv[n] = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	pid_t pid;
	int r = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	int st;
	CU_ASSERT_EQUAL_FATAL(waitpid(pid, &st, 0), pid);
	res.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	size_t len;
	CU_ASSERT_EQUAL(util_read_file(out_path, 1 << 20, &res.out, &len), 0);
	CU_ASSERT_EQUAL(util_read_file(err_path, 1 << 20, &res.err, &len), 0);
	return res;
}

static const char *example(const char *name)
{
	static char paths[4][4096];
	static int next;
	char *p = paths[next++ % 4];
	snprintf(p, 4096, "%s/schema/examples/%s", harness_source_dir(), name);
	return p;
}

/* Writes `single_quoted` JSON (quotes converted) to tmpdir/name; returns the path (static). */
static const char *write_policy(const char *name, const char *single_quoted)
{
	static char path[4096];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	_cleanup_free_ char *json = strdup(single_quoted);
	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	for (char *c = json; *c; c++)
		if (*c == '\'')
			*c = '"';
	CU_ASSERT_EQUAL_FATAL(util_write_file_atomic(path, json, strlen(json), 0644), 0);
	return path;
}

static void test_examples(void)
{
	struct run r = admin(
	        (const char *[]){"policy", "lint", example("strict-coding-agent.json"), NULL});
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_STRING_EQUAL(r.out, "");
	run_free(&r);
	r = admin((const char *[]){"policy", "lint", example("research-agent.json"), NULL});
	CU_ASSERT_EQUAL(r.status, 0);
	run_free(&r);
	r = admin((const char *[]){"policy", "lint", example("audited-assistant.json"), NULL});
	CU_ASSERT_EQUAL(r.status, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "audited-assistant.json: "
	                                     "/profiles/assistant/network/default: "));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "[network-default-allow]"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "5 findings in 1 file"));
	run_free(&r);
	/* All three together: findings win over clean. */
	r = admin((const char *[]){"policy", "lint", example("strict-coding-agent.json"),
	                           example("audited-assistant.json"),
	                           example("research-agent.json"), NULL});
	CU_ASSERT_EQUAL(r.status, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "in 3 files"));
	run_free(&r);
}

static void test_invalid(void)
{
	static const struct {
		const char *doc;
		const char *expect;
	} cases[] = {
	        {"{'name':'t','default_profile':'p','profiles':{'p':{'production':'yes'}}}",
	         "/profiles/p/production: must be true or false, not a string"},
	        {"{'name':'t','default_profile':'p','profiles':{'p':{'netwrok':{}}}}",
	         "/profiles/p/netwrok: unknown field"},
	        {"{'name':'t','default_profile':'p','profiles':{'p':{'network':{'allow':[{'cidr':"
	         "'10.0.0.0/8','port':70000}]}}}}",
	         "/profiles/p/network/allow/0/port: 70000 is not a port (1-65535)"},
	        {"{'name':", "(document): line 1"},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		const char *path = write_policy("bad.json", cases[i].doc);
		struct run r = admin((const char *[]){"policy", "lint", path, NULL});
		CU_ASSERT_EQUAL(r.status, 2);
		char want[512];
		snprintf(want, sizeof(want), "%s: %s", path, cases[i].expect);
		if (!strstr(r.err, want))
			fprintf(stderr, "want '%s' in '%s'\n", want, r.err);
		CU_ASSERT_PTR_NOT_NULL(strstr(r.err, want));
		run_free(&r);
	}
	/* Invalid wins over findings; a missing file is invalid too. */
	const char *bad = write_policy("bad.json", "[]");
	struct run r = admin(
	        (const char *[]){"policy", "lint", example("audited-assistant.json"), bad, NULL});
	CU_ASSERT_EQUAL(r.status, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "[network-default-allow]"));
	run_free(&r);
	r = admin((const char *[]){"policy", "lint", "/nonexistent/policy.json", NULL});
	CU_ASSERT_EQUAL(r.status, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "/nonexistent/policy.json: (document): cannot read"));
	run_free(&r);
}

static void test_json(void)
{
	const char *bad = write_policy(
	        "bad.json", "{'name':'t','default_profile':'p','profiles':{'p':{'mode':'x'}}}");
	struct run r = admin((const char *[]){"policy", "lint", "--json",
	                                      example("audited-assistant.json"), bad, NULL});
	CU_ASSERT_EQUAL(r.status, 2);
	json_error_t jerr;
	json_t *arr = json_loads(r.out, 0, &jerr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(arr);
	CU_ASSERT_TRUE(json_is_array(arr));
	CU_ASSERT_EQUAL(json_array_size(arr), 6);
	size_t i;
	json_t *item;
	bool saw_invalid = false, saw_finding = false;
	json_array_foreach (arr, i, item) {
		const char *file = json_string_value(json_object_get(item, "file"));
		const char *code = json_string_value(json_object_get(item, "code"));
		const char *pointer = json_string_value(json_object_get(item, "pointer"));
		const char *message = json_string_value(json_object_get(item, "message"));
		CU_ASSERT_TRUE(file && code && pointer && message);
		CU_ASSERT_EQUAL(json_object_size(item), 4);
		if (code && strcmp(code, "invalid") == 0) {
			saw_invalid = strcmp(file, bad) == 0 &&
			              strcmp(pointer, "/profiles/p/mode") == 0 &&
			              strstr(message, "is not one of");
		}
		if (code && strcmp(code, "network-default-allow") == 0)
			saw_finding = strcmp(pointer, "/profiles/assistant/network/default") == 0;
	}
	CU_ASSERT_TRUE(saw_invalid);
	CU_ASSERT_TRUE(saw_finding);
	json_decref(arr);
	run_free(&r);
	r = admin(
	        (const char *[]){"policy", "lint", "--json", example("research-agent.json"), NULL});
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "[]"));
	run_free(&r);
}

static void test_usage(void)
{
	struct run r = admin((const char *[]){"policy", "lint", "--help", NULL});
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "usage: corral-admin policy lint FILE..."));
	run_free(&r);
	r = admin((const char *[]){"policy", "lint", NULL});
	CU_ASSERT_EQUAL(r.status, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "usage:"));
	run_free(&r);
	r = admin(
	        (const char *[]){"policy", "lint", "--jsn", example("research-agent.json"), NULL});
	CU_ASSERT_EQUAL(r.status, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "unknown option '--jsn'"));
	run_free(&r);
	/* "--" ends the options: a file may be called "--json". */
	r = admin((const char *[]){"policy", "lint", "--", "--json", NULL});
	CU_ASSERT_EQUAL(r.status, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "--json: (document): cannot read"));
	run_free(&r);
	r = admin((const char *[]){"--help", NULL});
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "policy lint"));
	run_free(&r);
}

static const struct harness_test cli_tests[] = {
        {"examples", test_examples},
        {"invalid", test_invalid},
        {"json", test_json},
        {"usage", test_usage},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"policy_lint_cli", suite_init, suite_cleanup, cli_tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
