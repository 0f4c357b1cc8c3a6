// SPDX-License-Identifier: Apache-2.0
/*
 * Kernel feature probes (see features.h). Each probe is the cheapest call that proves the
 * feature usable: the Landlock version query, PR_GET_SECCOMP, loading a two-instruction cgroup
 * socket program (which fails without BPF or privilege), reading cgroup.controllers.
 */
#include "kfeatures.h"

#include "cleanup.h"
#include "landlock_abi.h"
#include "util.h"

#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint32_t probe_landlock(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return abi > 0 ? (uint32_t)abi : 0;
}

static bool file_contains_word(const char *path, const char *word)
{
	_cleanup_free_ char *buf = NULL;
	if (util_read_file(path, 4096, &buf, NULL) < 0)
		return false;
	size_t wl = strlen(word);
	for (char *p = buf; (p = strstr(p, word)); p += wl) {
		bool start = p == buf || p[-1] == ' ' || p[-1] == '\n';
		bool end = p[wl] == '\0' || p[wl] == ' ' || p[wl] == '\n';
		if (start && end)
			return true;
	}
	return false;
}

static bool probe_bpf_cgroup(void)
{
	/* r0 = 1; exit: the smallest valid cgroup_skb program. */
	struct bpf_insn insns[2] = {
	        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1},
	        {.code = BPF_JMP | BPF_EXIT},
	};
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_SKB;
	attr.insns = (uint64_t)(uintptr_t)insns;
	attr.insn_cnt = 2;
	attr.license = (uint64_t)(uintptr_t) "Apache-2.0";
	long fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	if (fd < 0)
		return false;
	close((int)fd);
	return true;
}

static void add_controller(struct cd_features *f, const char *name, const char *where)
{
	if (f->n_controllers >= CD_FEATURES_CONTROLLERS_MAX)
		return;
	snprintf(f->controllers[f->n_controllers++], sizeof(f->controllers[0]), "%s:%s", name,
	         where);
}

void cd_features_detect(const char *sysfs_root, const char *procfs_root, struct cd_features *ret)
{
	struct cd_features f;
	memset(&f, 0, sizeof(f));
	char path[512];
	f.landlock_abi = probe_landlock();
	f.seccomp = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
	snprintf(path, sizeof(path), "%s/sys/kernel/seccomp/actions_avail", procfs_root);
	f.seccomp_user_notify = f.seccomp && file_contains_word(path, "user_notif");

	/* Pure v2 mounts the unified hierarchy at /sys/fs/cgroup; hybrid hosts at .../unified. */
	char v2[512];
	snprintf(v2, sizeof(v2), "%s/fs/cgroup/cgroup.controllers", sysfs_root);
	if (access(v2, R_OK) != 0)
		snprintf(v2, sizeof(v2), "%s/fs/cgroup/unified/cgroup.controllers", sysfs_root);
	f.cgroup_v2 = access(v2, R_OK) == 0;
	static const char *const wanted[] = {"memory", "pids", "cpu"};
	for (size_t i = 0; i < ELEMENTSOF(wanted); i++) {
		if (f.cgroup_v2 && file_contains_word(v2, wanted[i])) {
			add_controller(&f, wanted[i], "v2");
			continue;
		}
		snprintf(path, sizeof(path), "%s/fs/cgroup/%s/tasks", sysfs_root, wanted[i]);
		if (access(path, F_OK) == 0) {
			add_controller(&f, wanted[i], "v1");
			f.cgroup_v1_fallback = true;
		}
	}
	f.bpf_cgroup = f.cgroup_v2 && probe_bpf_cgroup();
	snprintf(path, sizeof(path), "%s/sys/user/max_user_namespaces", procfs_root);
	_cleanup_free_ char *buf = NULL;
	uint64_t n = 0;
	if (util_read_file(path, 64, &buf, NULL) == 0) {
		buf[strcspn(buf, "\n")] = '\0';
		f.user_namespaces = util_parse_u64(buf, &n) == 0 && n > 0;
	}
	*ret = f;
}

void cd_features_to_proto(const struct cd_features *f, Corral__KernelFeatures *out, char **ptrs)
{
	corral__kernel_features__init(out);
	out->landlock_abi = f->landlock_abi;
	out->seccomp = f->seccomp;
	out->seccomp_user_notify = f->seccomp_user_notify;
	out->cgroup_v2 = f->cgroup_v2;
	out->cgroup_v1_fallback = f->cgroup_v1_fallback;
	out->bpf_cgroup = f->bpf_cgroup;
	out->user_namespaces = f->user_namespaces;
	for (size_t i = 0; i < f->n_controllers; i++)
		ptrs[i] = (char *)f->controllers[i];
	out->cgroup_controllers = ptrs;
	out->n_cgroup_controllers = f->n_controllers;
}

void cd_features_requested(const Corral__Policy *policy, Corral__KernelFeatures *out, char **ptrs)
{
	corral__kernel_features__init(out);
	out->cgroup_controllers = ptrs;
	if (!policy)
		return;
	for (size_t i = 0; i < policy->n_profiles; i++) {
		const Corral__Requirements *rq = policy->profiles[i]->requires;
		if (!rq)
			continue;
		if (rq->landlock_abi > out->landlock_abi)
			out->landlock_abi = rq->landlock_abi;
		out->seccomp |= rq->seccomp;
		out->bpf_cgroup |= rq->bpf_network;
		out->user_namespaces |= rq->user_namespaces;
		for (size_t c = 0; c < rq->n_cgroup_controllers; c++) {
			bool seen = false;
			for (size_t k = 0; k < out->n_cgroup_controllers; k++)
				seen |= strcmp(ptrs[k], rq->cgroup_controllers[c]) == 0;
			if (!seen && out->n_cgroup_controllers < CD_FEATURES_CONTROLLERS_MAX)
				ptrs[out->n_cgroup_controllers++] = rq->cgroup_controllers[c];
		}
	}
}
