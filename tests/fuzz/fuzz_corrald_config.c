// SPDX-License-Identifier: Apache-2.0
/* libFuzzer target: corrald's configuration parser (files written by admins and MDMs). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cd_config cfg;
	char err[256];
	if (cd_config_init(&cfg) < 0)
		return 0;
	(void)cd_config_parse(&cfg, "fuzz.conf", (const char *)data, size, err, sizeof(err));
	(void)cd_config_validate(&cfg, err, sizeof(err));
	cd_config_free(&cfg);
	return 0;
}
