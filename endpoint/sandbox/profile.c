/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Corral__Profile -> struct sbx_compiled: done once per profile and policy version, so a launch
 * only does per-session work. Checks `requires` (refuse, naming the missing primitive), applies
 * `degrade` (only what the policy allows), and records exactly which layers are enforced and
 * which were degraded, for the session report and the heartbeat.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "sbx_internal.h"

#define SBX_STRINGS_MAX 8192

int sbx_compiled_add_layer(struct sbx_compiled *c, bool degraded, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	if ((degraded ? c->ndegraded : c->nlayers) >= SBX_LAYERS_MAX)
		return -E2BIG;
	/* a fixed pool so earlier pointers stay valid (no realloc) */
	if (!c->strings) {
		c->strings = malloc(SBX_STRINGS_MAX);
		if (!c->strings)
			return -ENOMEM;
		c->strings_cap = SBX_STRINGS_MAX;
	}
	if (c->strings_len + (size_t)n + 1 > c->strings_cap)
		return -E2BIG;
	memcpy(c->strings + c->strings_len, buf, (size_t)n + 1);
	if (degraded)
		c->degraded[c->ndegraded++] = c->strings + c->strings_len;
	else
		c->layers[c->nlayers++] = c->strings + c->strings_len;
	c->strings_len += (size_t)n + 1;
	return 0;
}

static unsigned controller_from_name(const char *n)
{
	return strcmp(n, "memory") == 0 ? SBX_CG_MEMORY
	       : strcmp(n, "pids") == 0 ? SBX_CG_PIDS
	       : strcmp(n, "cpu") == 0  ? SBX_CG_CPU
	                                : 0;
}

static const char *controller_name(unsigned bit)
{
	return bit == SBX_CG_MEMORY ? "memory" : bit == SBX_CG_PIDS ? "pids" : "cpu";
}

static int compile_resources(struct sbx_compiled *c, const Corral__Profile *p,
                             const struct sbx_features *f, char *err, size_t errlen)
{
	const Corral__Resources *res = p->resources;
	unsigned want = 0, required = 0;
	int r = 0;

	if (p->requires)
		for (size_t i = 0; i < p->requires->n_cgroup_controllers; i++) {
			unsigned b = controller_from_name(p->requires->cgroup_controllers[i]);
			if (!b) {
				snprintf(err, errlen, "unknown cgroup controller \"%s\"",
				         p->requires->cgroup_controllers[i]);
				return -EINVAL;
			}
			required |= b;
		}
	if (res) {
		c->memory_max = res->memory_max_bytes;
		c->pids_max = res->pids_max;
		c->cpu_max_percent = res->cpu_max_percent;
		if (res->memory_max_bytes)
			want |= SBX_CG_MEMORY;
		if (res->pids_max)
			want |= SBX_CG_PIDS;
		if (res->cpu_max_percent)
			want |= SBX_CG_CPU;
	}
	c->degrade_resources = p->degrade && p->degrade->resources;
	for (unsigned b = 1; b <= SBX_CG_CPU; b <<= 1) {
		bool v2 = f->cgroup_v2_controllers & b, v1 = f->cgroup_v1_controllers & b;

		if (!((want | required) & b))
			continue;
		if (!v2 && !v1) {
			if (required & b) {
				snprintf(err, errlen,
				         "profile requires the cgroup %s controller, "
				         "which this host lacks",
				         controller_name(b));
				return -ENOTSUP;
			}
			if (!c->degrade_resources) {
				snprintf(err, errlen,
				         "cgroup %s controller unavailable and the "
				         "policy does not allow degrade.resources",
				         controller_name(b));
				return -ENOTSUP;
			}
			r = sbx_compiled_add_layer(c, true, "cgroup:%s (no controller)",
			                           controller_name(b));
			if (r < 0)
				return r;
			continue;
		}
		/* v2 when the controller is there, else the v1 hierarchy (hybrid hosts) */
		if (v2)
			c->cg_v2 |= b;
		else
			c->cg_v1 |= b;
		if (want & b) {
			r = sbx_compiled_add_layer(c, false, "cgroup:%s:%s", v2 ? "v2" : "v1",
			                           controller_name(b));
			if (r < 0)
				return r;
		}
	}
	if (f->cgroup_v2)
		r = sbx_compiled_add_layer(c, false, "cgroup:v2:session");
	return r;
}

int sbx_compile_profile(const Corral__Profile *p, const struct sbx_features *features,
                        struct sbx_compiled **ret, char *err, size_t errlen)
{
	struct sbx_compiled *c;
	char dummy[1];
	int r;

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (!p || !features || !ret)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->features = *features;
	c->audit = p->mode == CORRAL__MODE__MODE_AUDIT;
	if (c->audit && (r = sbx_compiled_add_layer(c, false, "mode:audit")) < 0)
		goto fail;
	if (p->process) {
		c->namespaces = p->process->isolation == CORRAL__ISOLATION__ISOLATION_NAMESPACE;
		c->allow_root = p->process->allow_root;
		if (p->process->run_as && p->process->run_as[0] &&
		    !(c->run_as = strdup(p->process->run_as))) {
			r = -ENOMEM;
			goto fail;
		}
		c->env_allow = calloc(p->process->n_env_allow + 1, sizeof(char *));
		if (!c->env_allow) {
			r = -ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i < p->process->n_env_allow; i++) {
			if (!(c->env_allow[i] = strdup(p->process->env_allow[i]))) {
				r = -ENOMEM;
				goto fail;
			}
			c->nenv_allow++;
		}
	}
	if (p->requires && p->requires->seccomp && !features->seccomp) {
		snprintf(err, errlen, "profile requires seccomp, which this host lacks");
		r = -ENOTSUP;
		goto fail;
	}
	if (p->requires && p->requires->bpf_network && !features->cgroup_v2) {
		snprintf(err, errlen,
		         "profile requires BPF network filtering, which needs cgroup v2 "
		         "(not mounted)");
		r = -ENOTSUP;
		goto fail;
	}
	if (((p->requires && p->requires->user_namespaces) || c->namespaces) &&
	    !features->user_namespaces) {
		snprintf(err, errlen, "%s user namespaces, which this host lacks",
		         c->namespaces ? "isolation tier namespace needs" : "profile requires");
		r = -ENOTSUP;
		goto fail;
	}
	if ((r = sbx_landlock_compile(c, p, features, err, errlen)) < 0 ||
	    (r = sbx_seccomp_compile(c, p, features, err, errlen)) < 0 ||
	    (r = compile_resources(c, p, features, err, errlen)) < 0)
		goto fail;
	if (c->namespaces &&
	    (r = sbx_compiled_add_layer(c, false, "ns:user,mount,pid,ipc,uts,ro-root")) < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	if (!err[0] && errlen > 1)
		snprintf(err, errlen, "%s", strerror(-r));
	sbx_compiled_free(c);
	return r;
}

void sbx_compiled_free(struct sbx_compiled *c)
{
	if (!c)
		return;
	free(c->run_as);
	for (size_t i = 0; i < c->npaths; i++)
		free(c->paths[i].text);
	free(c->paths);
	for (size_t i = 0; i < c->ndeny; i++)
		free(c->deny[i]);
	free(c->deny);
	for (size_t i = 0; c->env_allow && i < c->nenv_allow; i++)
		free(c->env_allow[i]);
	free(c->env_allow);
	free(c->bpf);
	free(c->strings);
	free(c);
}

const char *const *sbx_compiled_layers(const struct sbx_compiled *c, size_t *ret_n)
{
	*ret_n = c->nlayers;
	return c->layers;
}

const char *const *sbx_compiled_degraded(const struct sbx_compiled *c, size_t *ret_n)
{
	*ret_n = c->ndegraded;
	return c->degraded;
}

bool sbx_compiled_audit(const struct sbx_compiled *c)
{
	return c->audit;
}
