/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compliance of a device's kernel features: what the policy in force requested versus what the
 * host actually enforces (both from the device's heartbeat). One definition, used when a
 * heartbeat is stored (every backend) and shown by the console and corral-admin: a feature is
 * missing only when the host enforces less than requested; a host that offers more (Landlock
 * ABI 7 where 4 was asked) is compliant.
 */
#pragma once

#include <stddef.h>

#include <corral.pb-c.h>

/*
 * Writes the missing features as a comma-separated list into buf ("" when none), e.g.
 * "landlock_abi 4 (host 2), cgroup:memory, bpf_cgroup". Either argument may be NULL (nothing
 * requested: nothing missing; nothing reported as enforced: everything requested missing).
 * Returns the number of missing features; the list is truncated (ending in "...") when buf is
 * too small, the count is not.
 */
int srv_features_missing(const Corral__KernelFeatures *requested,
                         const Corral__KernelFeatures *enforced, char *buf, size_t len);

/*
 * The features as a compact JSON object (the device rows' features_requested /
 * features_enforced), or NULL when `k` is NULL or on allocation failure. Caller frees.
 */
char *srv_features_json(const Corral__KernelFeatures *k);
