/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Landlock's user-space ABI beyond what Debian 12's <linux/landlock.h> (ABI 2) declares: the
 * newer access rights, rule types, scopes and restrict-self flags, the ABI 6 ruleset
 * attribute and the network port rule. One copy for the sandbox engine (agent sessions) and
 * corrald's self-confining helpers.
 */
#pragma once

#include <linux/landlock.h>
#include <stdint.h>
#include <sys/syscall.h>

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule       445
#define SYS_landlock_restrict_self  446
#endif
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP    (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#define CORRAL_LL_RULE_PATH_BENEATH                1
#define CORRAL_LL_RULE_NET_PORT                    2
#define CORRAL_LL_SCOPE_ABSTRACT_UNIX_SOCKET       (1ULL << 0)
#define CORRAL_LL_SCOPE_SIGNAL                     (1ULL << 1)
#define CORRAL_LL_RESTRICT_SELF_LOG_SAME_EXEC_OFF  (1U << 0)
#define CORRAL_LL_RESTRICT_SELF_LOG_NEW_EXEC_ON    (1U << 1)
#define CORRAL_LL_RESTRICT_SELF_LOG_SUBDOMAINS_OFF (1U << 2)

/* ruleset_attr as of ABI 6 (the kernel accepts a smaller size from older ABIs). */
struct corral_ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

struct corral_ll_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
} __attribute__((packed));
