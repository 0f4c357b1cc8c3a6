/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A profile's run_as account in more supplementary groups than SBX_GROUPS_MAX: sbx_spawn
 * refuses at the "credentials" step with E2BIG (never runs the session with a truncated group
 * list). Root only: the test creates SBX_GROUPS_MAX + 2 groups and an account in all of them
 * with groupadd/useradd and removes them at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "sbx_internal.h"
#include "sbx_test_profile.h"

static char *g_dir;

static int suite_init(void)
{
	g_dir = harness_mkdtemp("sandbox-groups");
	return g_dir ? 0 : -1;
}

static int suite_cleanup(void)
{
	if (g_dir && !getenv("CORRAL_KEEP_TMP"))
		harness_rm_rf(g_dir);
	free(g_dir);
	return 0;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* The strict profile on this host's probed features, running as `run_as`. */
static struct sbx_compiled *host_profile(const char *run_as, char *err, size_t errlen)
{
	struct sbx_test_profile tp;
	struct sbx_features f;
	struct sbx_compiled *c = NULL;

	if (sbx_features_probe(&f) < 0) {
		snprintf(err, errlen, "feature probe failed");
		return NULL;
	}
	sbx_test_strict_profile(&tp, NULL);
	tp.req.landlock_abi = 0;
	tp.req.seccomp = false;
	tp.deg.landlock_partial = true;
	tp.deg.resources = true;
	tp.proc.run_as = (char *)run_as;
	if (sbx_compile_profile(&tp.profile, &f, &c, err, errlen) < 0)
		return NULL;
	return c;
}

/* Runs a system tool quietly; returns its exit status or -1. */
static int run_tool(const char *const *argv)
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define RUNAS_GROUPS (SBX_GROUPS_MAX + 2)

/* A run_as account in more supplementary groups than SBX_GROUPS_MAX: refused (E2BIG), not
 * run with a truncated group list. Creates the groups and account (root), removes them. */
static void test_spawn_run_as_too_many_groups(void)
{
	char user[32], names[RUNAS_GROUPS][32], list[RUNAS_GROUPS * 32] = "", err_text[256] = "";
	int made = 0;
	bool user_made = false;

	if (geteuid() != 0)
		HARNESS_SKIP("needs root (creates %d groups and an account)", RUNAS_GROUPS);
	if (access("/usr/sbin/groupadd", X_OK) < 0 || access("/usr/sbin/useradd", X_OK) < 0)
		HARNESS_SKIP("groupadd/useradd not installed");
	snprintf(user, sizeof(user), "corral-ge%d", (int)getpid() % 100000);
	for (; made < RUNAS_GROUPS; made++) {
		snprintf(names[made], sizeof(names[made]), "corral-g%d-%d", (int)getpid() % 100000,
		         made);
		const char *ga[] = {"/usr/sbin/groupadd", names[made], NULL};
		if (run_tool(ga) != 0)
			break;
		if (made)
			sbx_str_append(list, sizeof(list), ",");
		sbx_str_append(list, sizeof(list), names[made]);
	}
	CU_ASSERT_EQUAL(made, RUNAS_GROUPS);
	if (made == RUNAS_GROUPS) {
		const char *ua[] = {"/usr/sbin/useradd",
		                    "-M",
		                    "-N",
		                    "-s",
		                    "/usr/sbin/nologin",
		                    "-G",
		                    list,
		                    user,
		                    NULL};
		user_made = run_tool(ua) == 0;
		CU_ASSERT_TRUE(user_made);
	}
	if (user_made) {
		struct sbx_compiled *c = host_profile(user, err_text, sizeof(err_text));
		if (!c)
			printf("\n    compile: %s", err_text);
		CU_ASSERT_PTR_NOT_NULL(c);
		if (c) {
			char marker[1200], cmd[1300];
			snprintf(marker, sizeof(marker), "%s/runas-ran", g_dir);
			snprintf(cmd, sizeof(cmd), "echo > %s", marker);
			const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
			struct sbx *s = sbx_new();
			struct sbx_child *ch = NULL;
			struct sbx_error err;
			memset(&err, 0, sizeof(err));
			CU_ASSERT_EQUAL(sbx_set_profile(s, c), 0);
			CU_ASSERT_EQUAL(sbx_set_argv(s, argv), 0);
			CU_ASSERT_EQUAL(sbx_spawn(s, &ch, &err), -E2BIG);
			CU_ASSERT_PTR_NULL(ch);
			CU_ASSERT_STRING_EQUAL(err.step, "credentials");
			CU_ASSERT_EQUAL(err.error, E2BIG);
			CU_ASSERT_PTR_NOT_NULL(strstr(err.message, user));
			CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "groups of"));
			CU_ASSERT_FALSE(exists(marker));
			sbx_free(s);
			sbx_compiled_free(c);
		}
		const char *ud[] = {"/usr/sbin/userdel", user, NULL};
		CU_ASSERT_EQUAL(run_tool(ud), 0);
	}
	for (int i = 0; i < made; i++) {
		const char *gd[] = {"/usr/sbin/groupdel", names[i], NULL};
		CU_ASSERT_EQUAL(run_tool(gd), 0);
	}
}

static const struct harness_test tests[] = {
        {"run_as_too_many_groups", test_spawn_run_as_too_many_groups},
        {NULL, NULL},
};

int main(int argc, char **argv)
{
	static const struct harness_suite suites[] = {
	        {"sandbox_groups", suite_init, suite_cleanup, tests},
	        {NULL, NULL, NULL, NULL},
	};
	return harness_main(argc, argv, suites);
}
