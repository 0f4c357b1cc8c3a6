/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Self-confinement of corrald's helper processes (corrald-worker, corrald-crypto): a Landlock
 * ruleset applied to the calling process, and dropping every capability. The sandbox engine
 * (endpoint/sandbox) builds rulesets for agent sessions from profiles; this is the small fixed
 * kind a helper applies to itself before it touches untrusted bytes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cd_confine_path {
	const char *path; /* a file or a directory (then everything beneath it) */
	bool write;       /* also create, write, truncate, rename within, remove */
};

/*
 * Restricts the calling process (and what it later starts) to the listed paths: read access,
 * plus write access where `write` is set; nothing else of the filesystem, no execute. With
 * `connect_port` non-zero and Landlock ABI ≥ 4, TCP connect only to that port and no bind.
 * With ABI ≥ 6, no signals or abstract unix sockets outside the process's domain. Paths that
 * do not exist are skipped. no_new_privs must be set. Returns 0, -EOPNOTSUPP when the kernel
 * has no Landlock, or -errno.
 */
int cd_confine_landlock(const struct cd_confine_path *paths, size_t n, uint16_t connect_port);

/*
 * Clears the effective, permitted and inheritable capability sets and the ambient set: a
 * root process keeps its uid 0 (file ownership) and loses every privilege beyond it.
 * Returns 0 or -errno.
 */
int cd_confine_drop_caps(void);
