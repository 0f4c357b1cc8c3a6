/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel feature detection for heartbeats and `corral status`: Landlock ABI, seccomp (and
 * user notification), cgroup v2 and its controllers with the v1 fallback of hybrid hosts,
 * cgroup BPF and user namespaces. Detection only probes; it never changes system state.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <corral.pb-c.h>

#define CD_FEATURES_CONTROLLERS_MAX 8

struct cd_features {
	uint32_t landlock_abi;
	bool seccomp;
	bool seccomp_user_notify;
	bool cgroup_v2;
	bool cgroup_v1_fallback;
	bool bpf_cgroup;
	bool user_namespaces;
	/* "memory:v2", "pids:v1", ... */
	char controllers[CD_FEATURES_CONTROLLERS_MAX][16];
	size_t n_controllers;
};

/*
 * Probes the running kernel. `sysfs_root` and `procfs_root` are "/sys" and "/proc" (tests
 * point them at fake trees). Always succeeds; absent features read as false/0.
 */
void cd_features_detect(const char *sysfs_root, const char *procfs_root, struct cd_features *ret);

/*
 * Fills the protobuf view of `f`. `ptrs` must hold CD_FEATURES_CONTROLLERS_MAX pointers; the
 * message borrows strings from `f` and the array from `ptrs`.
 */
void cd_features_to_proto(const struct cd_features *f, Corral__KernelFeatures *out, char **ptrs);

/*
 * The features a policy asks for: the maximum over its profiles' `requires` (Landlock ABI,
 * seccomp, controllers, BPF network, user namespaces). `ptrs` as above; strings are borrowed
 * from `policy`. NULL policy gives an empty request.
 */
void cd_features_requested(const Corral__Policy *policy, Corral__KernelFeatures *out, char **ptrs);
