// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: policy_compile() on arbitrary bytes (policy files come from admins, and
 * the server compiles what admins publish). A successful compile is also linted, packed and
 * unpacked, which checks that every string and sub-message the compiler built is well formed;
 * policy_source_compact() runs on the same input. Seeds: tests/fuzz/seeds/policy_compile/.
 */
#include "policy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Corral__Policy *p = NULL;
	struct policy_error err;
	int r = policy_compile((const char *)data, size, &p, &err);
	if (r == 0) {
		struct policy_findings f = {0};
		(void)policy_lint(p, &f);
		policy_findings_free(&f);
		size_t len = corral__policy__get_packed_size(p);
		uint8_t *buf = malloc(len ? len : 1);
		if (buf) {
			corral__policy__pack(p, buf);
			Corral__Policy *back = corral__policy__unpack(NULL, len, buf);
			if (!back)
				abort();
			if (back->n_profiles != p->n_profiles ||
			    !policy_find_profile(back, p->default_profile))
				abort();
			corral__policy__free_unpacked(back, NULL);
			free(buf);
		}
		corral__policy__free_unpacked(p, NULL);
	} else {
		/* Errors are always printable and terminated. */
		if (strlen(err.pointer) >= sizeof(err.pointer) ||
		    strlen(err.reason) >= sizeof(err.reason))
			abort();
		for (const char *c = err.pointer; *c; c++)
			if ((unsigned char)*c < 0x20)
				abort();
	}
	char *compact = NULL;
	if (policy_source_compact((const char *)data, size, &compact) == 0)
		free(compact);
	return 0;
}
