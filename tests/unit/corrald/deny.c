// SPDX-License-Identifier: Apache-2.0
#include "deny.h"

#include <errno.h>

int install_denials(const struct deny *d, size_t n)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r = ctx ? 0 : -ENOMEM;
	for (size_t i = 0; i < n && r == 0; i++)
		r = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO((uint32_t)d[i].err), d[i].nr,
		                           d[i].nargs, d[i].args);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}
