// SPDX-License-Identifier: Apache-2.0
/* libFuzzer target: the hostname normaliser (endpoint/net/hostname.c) and host-rule matching.
 * Invariants checked: a normalised name is stable (normalising it again gives itself) and
 * holds only lower-case LDH bytes and dots. */
#include "proxy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[256], again[256];
	const char *reason;
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	int k = egress_host_normalise(buf, size, out, sizeof(out), &reason);
	if (k == EGRESS_HOST_NAME) {
		for (const char *p = out; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
			      *p == '.'))
				abort();
		if (egress_host_normalise(out, strlen(out), again, sizeof(again), &reason) !=
		            EGRESS_HOST_NAME ||
		    strcmp(out, again) != 0)
			abort();
	}
	free(buf);
	return 0;
}
