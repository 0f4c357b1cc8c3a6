// SPDX-License-Identifier: Apache-2.0
/*
 * Small pieces of the policy module around the compiler: reading a policy file with the size
 * cap, formatting errors, and looking profiles up by name.
 */
#include "policy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "util.h"

int policy_compile_file(const char *path, Corral__Policy **ret_policy, struct policy_error *err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = util_read_file(path, POLICY_SOURCE_MAX, &buf, &len);
	if (r < 0) {
		/* util_read_file says -EFBIG for "over the cap"; the policy contract says
		 * -EMSGSIZE, the same as for an in-memory source. */
		if (r == -EFBIG)
			r = -EMSGSIZE;
		if (err) {
			err->pointer[0] = '\0';
			if (r == -EMSGSIZE)
				snprintf(err->reason, sizeof(err->reason),
				         "policy file is larger than the %u byte limit",
				         POLICY_SOURCE_MAX);
			else
				snprintf(err->reason, sizeof(err->reason), "cannot read: %s",
				         strerror(-r));
		}
		return r;
	}
	return policy_compile(buf, len, ret_policy, err);
}

const char *policy_error_format(const struct policy_error *err, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	if (!err)
		snprintf(buf, len, "unknown error");
	else if (err->pointer[0])
		snprintf(buf, len, "%s: %s", err->pointer, err->reason);
	else
		snprintf(buf, len, "(document): %s", err->reason);
	return buf;
}

const Corral__Profile *policy_find_profile(const Corral__Policy *policy, const char *name)
{
	if (!policy || !name)
		return NULL;
	for (size_t i = 0; i < policy->n_profiles; i++)
		if (policy->profiles[i] && policy->profiles[i]->name &&
		    strcmp(policy->profiles[i]->name, name) == 0)
			return policy->profiles[i];
	return NULL;
}
