/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CUnit harness for corral's test programs. A program lists its suites and calls
 * harness_main(); the exit code is the number of failures (capped), so ctest sees them
 * (CU_basic_run_tests alone returns success even when tests fail).
 *
 * Skips: HARNESS_SKIP("reason") inside a test prints "SKIP <test>: reason" and returns; a
 * program whose every test skipped exits 77, which ctest reports as Skipped. A skip never
 * counts as a pass.
 */
#pragma once

#include <CUnit/CUnit.h>
#include <stdbool.h>

struct harness_test {
	const char *name;
	void (*fn)(void);
};

struct harness_suite {
	const char *name;
	int (*init)(void);
	int (*cleanup)(void);
	const struct harness_test *tests; /* terminated by {NULL, NULL} */
};

/* Runs all suites (or those named in argv[1..]); returns the process exit code. */
int harness_main(int argc, char **argv, const struct harness_suite *suites);

/* Records a skip of the running test with a reason (printed). */
void harness_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define HARNESS_SKIP(...)                  \
	do {                               \
		harness_skip(__VA_ARGS__); \
		return;                    \
	} while (0)

/* true when running as root (privileged tests). */
bool harness_is_root(void);

/* Source and build directories (from ctest's environment; fall back to the cwd). */
const char *harness_source_dir(void);
const char *harness_binary_dir(void);

/* Creates a fresh temporary directory under $TMPDIR (removed by harness_rm_rf). Caller frees. */
char *harness_mkdtemp(const char *tag);

/* Recursively removes `path` (no shell). */
int harness_rm_rf(const char *path);
