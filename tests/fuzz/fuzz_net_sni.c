// SPDX-License-Identifier: Apache-2.0
/* libFuzzer target: the TLS ClientHello SNI parser of the egress proxy (endpoint/net/sni.c),
 * which reads the first bytes a sandboxed client sends through a CONNECT tunnel. */
#include "proxy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[256], norm[256];
	const char *reason;
	/* a heap copy of exactly `size` bytes so ASan sees any over-read */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	int n = egress_tls_sni(buf, size, name, sizeof(name));
	if (n > 0)
		(void)egress_host_normalise(name, (size_t)n, norm, sizeof(norm), &reason);
	free(buf);
	return 0;
}
