// SPDX-License-Identifier: Apache-2.0
/*
 * `corral-admin policy lint FILE... [--json]`: compiles each policy file and lints it, offline.
 * Exit status: 0 when every file is clean, 1 when there are findings, 2 when a file is invalid
 * (cannot be read or does not compile) or the arguments are wrong. Invalid wins over findings
 * so scripts can tell "fix the syntax" from "review the risks".
 */
#include "admin.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "policy.h"

#define LINT_EXIT_CLEAN    0
#define LINT_EXIT_FINDINGS 1
#define LINT_EXIT_INVALID  2

static void lint_usage(FILE *f)
{
	fprintf(f, "usage: corral-admin policy lint FILE... [--json]\n\n"
	           "Compiles each policy and reports risky settings. Output lines are\n"
	           "FILE: POINTER: MESSAGE [CODE]; --json prints an array of\n"
	           "{file, code, pointer, message} instead (code \"invalid\" for a file that\n"
	           "does not compile). Codes are explained in docs/policy.md.\n\n"
	           "exit status: 0 clean, 1 findings, 2 invalid policy or usage error\n");
}

/* Appends one {file, code, pointer, message} object; false when out of memory. */
static bool json_add(json_t *arr, const char *file, const char *code, const char *pointer,
                     const char *message)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "file", file, "code", code, "pointer",
	                      pointer, "message", message);
	return o && json_array_append_new(arr, o) == 0;
}

static int lint_run(int argc, char **argv)
{
	bool as_json = false;
	int n_files = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			lint_usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--json") == 0) {
			as_json = true;
		} else if (strcmp(argv[i], "--") == 0) {
			n_files += argc - i - 1;
			break;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "corral-admin policy lint: unknown option '%s'\n", argv[i]);
			lint_usage(stderr);
			return LINT_EXIT_INVALID;
		} else {
			n_files++;
		}
	}
	if (n_files == 0) {
		lint_usage(stderr);
		return LINT_EXIT_INVALID;
	}

	json_auto_t *out = as_json ? json_array() : NULL;
	if (as_json && !out) {
		fprintf(stderr, "corral-admin policy lint: out of memory\n");
		return LINT_EXIT_INVALID;
	}
	int status = LINT_EXIT_CLEAN;
	size_t total = 0;
	bool files_only = false;
	for (int i = 1; i < argc; i++) {
		const char *file = argv[i];
		if (!files_only && strcmp(file, "--") == 0) {
			files_only = true;
			continue;
		}
		if (!files_only && strcmp(file, "--json") == 0)
			continue;
		Corral__Policy *pol = NULL;
		struct policy_error err;
		int r = policy_compile_file(file, &pol, &err);
		if (r < 0) {
			status = LINT_EXIT_INVALID;
			if (as_json) {
				if (!json_add(out, file, "invalid", err.pointer, err.reason))
					goto oom;
			} else {
				char buf[600];
				fprintf(stderr, "%s: %s\n", file,
				        policy_error_format(&err, buf, sizeof(buf)));
			}
			continue;
		}
		struct policy_findings findings = {0};
		r = policy_lint(pol, &findings);
		corral__policy__free_unpacked(pol, NULL);
		if (r < 0) {
			policy_findings_free(&findings);
			goto oom;
		}
		for (size_t k = 0; k < findings.count; k++) {
			const struct policy_finding *f = &findings.items[k];
			if (as_json) {
				if (!json_add(out, file, f->code, f->pointer, f->message)) {
					policy_findings_free(&findings);
					goto oom;
				}
			} else {
				printf("%s: %s: %s [%s]\n", file, f->pointer, f->message, f->code);
			}
		}
		total += findings.count;
		if (findings.count > 0 && status == LINT_EXIT_CLEAN)
			status = LINT_EXIT_FINDINGS;
		policy_findings_free(&findings);
	}
	if (as_json) {
		if (json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
			goto oom;
		putchar('\n');
	} else if (status != LINT_EXIT_INVALID) {
		fprintf(stderr, "%zu finding%s in %d file%s\n", total, total == 1 ? "" : "s",
		        n_files, n_files == 1 ? "" : "s");
	}
	return status;
oom:
	fprintf(stderr, "corral-admin policy lint: out of memory\n");
	return LINT_EXIT_INVALID;
}

const struct admin_command admin_lint_commands[] = {
        {"policy lint", "FILE... [--json]", "compile policies and report risky settings", lint_run},
        {NULL, NULL, NULL, NULL},
};
