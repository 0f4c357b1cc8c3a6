// SPDX-License-Identifier: Apache-2.0
/*
 * Requested-versus-enforced kernel features (see compliance.h). Pure: no storage, no I/O.
 */
#include "compliance.h"

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends ", item" (or "item" first) to buf, marking truncation with "...". */
static void append(char *buf, size_t len, const char *item)
{
	size_t used = strlen(buf);
	if (used + 4 >= len)
		return;
	int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", item);
	if (n < 0 || (size_t)n >= len - used)
		snprintf(buf + (len > 4 ? len - 4 : 0), len > 4 ? 4 : len, "...");
}

/* Enforced controllers are reported as "memory:v1"/"memory:v2" or plain "memory". */
static bool has_controller(const Corral__KernelFeatures *e, const char *name)
{
	if (!e)
		return false;
	size_t n = strlen(name);
	for (size_t i = 0; i < e->n_cgroup_controllers; i++) {
		const char *c = e->cgroup_controllers[i];
		if (c && strncmp(c, name, n) == 0 && (c[n] == '\0' || c[n] == ':'))
			return true;
	}
	return false;
}

int srv_features_missing(const Corral__KernelFeatures *r, const Corral__KernelFeatures *e,
                         char *buf, size_t len)
{
	if (len)
		buf[0] = '\0';
	if (!r)
		return 0;
	int missing = 0;
	char item[96];
	uint32_t have_abi = e ? e->landlock_abi : 0;
	if (r->landlock_abi > have_abi) {
		snprintf(item, sizeof(item), "landlock_abi %u (host %u)", r->landlock_abi,
		         have_abi);
		append(buf, len, item);
		missing++;
	}
	static const struct {
		const char *name;
		size_t off;
	} flags[] = {
	        {"seccomp", offsetof(Corral__KernelFeatures, seccomp)},
	        {"seccomp_user_notify", offsetof(Corral__KernelFeatures, seccomp_user_notify)},
	        {"cgroup_v2", offsetof(Corral__KernelFeatures, cgroup_v2)},
	        {"bpf_cgroup", offsetof(Corral__KernelFeatures, bpf_cgroup)},
	        {"user_namespaces", offsetof(Corral__KernelFeatures, user_namespaces)},
	};
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		bool want = *(const protobuf_c_boolean *)((const char *)r + flags[i].off);
		bool have = e && *(const protobuf_c_boolean *)((const char *)e + flags[i].off);
		if (want && !have) {
			append(buf, len, flags[i].name);
			missing++;
		}
	}
	for (size_t i = 0; i < r->n_cgroup_controllers; i++) {
		const char *c = r->cgroup_controllers[i];
		if (!c || !*c || has_controller(e, c))
			continue;
		snprintf(item, sizeof(item), "cgroup:%.64s", c);
		append(buf, len, item);
		missing++;
	}
	return missing;
}

char *srv_features_json(const Corral__KernelFeatures *k)
{
	if (!k)
		return NULL;
	json_t *ctl = json_array();
	for (size_t i = 0; ctl && i < k->n_cgroup_controllers; i++)
		json_array_append_new(ctl, json_string(k->cgroup_controllers[i]));
	json_t *o = json_pack("{si sb sb sb so sb sb sb}", "landlock_abi", (int)k->landlock_abi,
	                      "seccomp", k->seccomp, "seccomp_user_notify", k->seccomp_user_notify,
	                      "cgroup_v2", k->cgroup_v2, "cgroup_controllers", ctl,
	                      "cgroup_v1_fallback", k->cgroup_v1_fallback, "bpf_cgroup",
	                      k->bpf_cgroup, "user_namespaces", k->user_namespaces);
	if (!o)
		return NULL;
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}
