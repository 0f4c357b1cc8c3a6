// SPDX-License-Identifier: Apache-2.0
/*
 * CUnit runner with honest exit codes and visible skips (see harness.h).
 */

#include "harness.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned harness_skips;

void harness_skip(const char *fmt, ...)
{
	char reason[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	CU_pTest t = CU_get_current_test();
	printf("\nSKIP %s: %s\n", t ? t->pName : "?", reason);
	fflush(stdout);
	harness_skips++;
}

bool harness_is_root(void)
{
	return geteuid() == 0;
}

const char *harness_source_dir(void)
{
	const char *s = getenv("CORRAL_SOURCE_DIR");
	return s ? s : ".";
}

const char *harness_binary_dir(void)
{
	const char *s = getenv("CORRAL_BINARY_DIR");
	return s ? s : ".";
}

char *harness_mkdtemp(const char *tag)
{
	const char *tmp = getenv("TMPDIR");
	char *p = NULL;
	if (asprintf(&p, "%s/corral-%s-XXXXXX", tmp ? tmp : "/tmp", tag) < 0)
		return NULL;
	if (!mkdtemp(p)) {
		free(p);
		return NULL;
	}
	return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int harness_rm_rf(const char *path)
{
	if (!path)
		return 0;
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}

static bool wanted(int argc, char **argv, const char *suite)
{
	if (argc < 2)
		return true;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], suite) == 0)
			return true;
	return false;
}

int harness_main(int argc, char **argv, const struct harness_suite *suites)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	unsigned total = 0;
	for (const struct harness_suite *s = suites; s->name; s++) {
		if (!wanted(argc, argv, s->name))
			continue;
		CU_pSuite cs = CU_add_suite(s->name, s->init, s->cleanup);
		if (!cs)
			goto fail;
		for (const struct harness_test *t = s->tests; t->name; t++) {
			if (!CU_add_test(cs, t->name, t->fn))
				goto fail;
			total++;
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failures = CU_get_number_of_failures();
	unsigned tests_failed = CU_get_number_of_tests_failed();
	unsigned suite_failures = CU_get_number_of_suites_failed();
	unsigned ran = CU_get_number_of_tests_run();
	CU_cleanup_registry();
	unsigned passed =
	        ran >= tests_failed + harness_skips ? ran - tests_failed - harness_skips : 0;
	printf("\n%u passed, %u failed, %u skipped\n", passed, tests_failed + suite_failures,
	       harness_skips);
	if (failures || suite_failures)
		return tests_failed > 100 ? 100 : (int)(tests_failed ? tests_failed : 1);
	if (total > 0 && harness_skips == ran)
		return 77;
	return 0;
fail:
	fprintf(stderr, "CUnit registry error: %s\n", CU_get_error_msg());
	CU_cleanup_registry();
	return 2;
}
