/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy language: JSON (schema/policy.schema.json) compiled into the protobuf Policy
 * (proto/corral.proto), and the linter that flags risky but valid policies.
 *
 * The compiler is strict: unknown fields, wrong types and out-of-range values are errors that
 * name the JSON pointer and a plain reason, e.g.
 *   "/profiles/coder/network/allow/2/port: 70000 is not a port (1-65535)".
 * Inputs over POLICY_SOURCE_MAX bytes are refused before parsing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <corral.pb-c.h>

#define POLICY_SOURCE_MAX (1024u * 1024u)

struct policy_error {
	char pointer[256]; /* JSON pointer of the offending value ("" for the document) */
	char reason[256];  /* plain-language reason */
};

/*
 * Compiles `len` bytes of JSON into a newly allocated Policy. On success *ret_policy is owned by
 * the caller (free with corral__policy__free_unpacked(p, NULL)). On failure returns -EMSGSIZE
 * (too large), -EINVAL (invalid) or -ENOMEM and fills *err (may be NULL).
 */
int policy_compile(const char *json, size_t len, Corral__Policy **ret_policy,
                   struct policy_error *err);

/*
 * Same, reading the file at `path` with the size cap (-EMSGSIZE when larger, before reading it
 * all). -errno for I/O errors (err->reason says so, pointer "").
 */
int policy_compile_file(const char *path, Corral__Policy **ret_policy, struct policy_error *err);

/* Formats an error as "POINTER: REASON" into buf. Returns buf. */
const char *policy_error_format(const struct policy_error *err, char *buf, size_t len);

/*
 * Parses `len` bytes of JSON (same size cap and duplicate-key refusal as policy_compile) and
 * returns its compact serialisation, keys in document order, in *ret (caller frees with free()).
 * Used to fill PolicyBundle.source_json. Returns 0, -EMSGSIZE, -EINVAL or -ENOMEM. Does not
 * validate the policy itself: compile it first.
 */
int policy_source_compact(const char *json, size_t len, char **ret);

/* Looks up a profile by name; NULL when absent. Borrowed pointer into `policy`. */
const Corral__Profile *policy_find_profile(const Corral__Policy *policy, const char *name);

/*
 * The compiled policy always has every sub-message of every profile (filesystem, network,
 * syscalls, resources, process, requires, degrade) filled with the language's defaults, and
 * lists keep the document's order: a finding or error index is the JSON array index.
 */

/* One linter finding. */
struct policy_finding {
	const char *code;  /* stable identifier, e.g. "writable-system-path" */
	char pointer[256]; /* JSON pointer of the risky value */
	char message[256]; /* why it is risky */
};

struct policy_findings {
	struct policy_finding *items;
	size_t count;
};

/*
 * Lints a compiled policy. Findings are appended to *ret (caller frees with
 * policy_findings_free; start from a zeroed struct). Returns the number of findings appended
 * or -ENOMEM. Codes are listed in docs/policy.md and by policy_lint_codes().
 */
int policy_lint(const Corral__Policy *policy, struct policy_findings *ret);

/* Frees the items of *f and zeroes it; accepts NULL and an empty struct. */
void policy_findings_free(struct policy_findings *f);

/* The stable finding codes, NULL-terminated (static). */
const char *const *policy_lint_codes(void);
