// SPDX-License-Identifier: Apache-2.0
/* libFuzzer target: the text parsers of lib/util (durations, RFC 3339, sizes, numbers, hex),
 * which read config files and command-line flags. */
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 256)
		return 0;
	char s[257];
	memcpy(s, data, size);
	s[size] = '\0';
	int64_t t;
	uint64_t u;
	uint8_t out[64];
	(void)util_parse_duration(s, &t);
	(void)util_parse_rfc3339(s, &t);
	(void)util_parse_expiry(s, 1700000000, &t);
	(void)util_parse_size(s, &u);
	(void)util_parse_u64(s, &u);
	if (size <= 128)
		(void)util_unhex(s, out, size / 2);
	return 0;
}
