/* SPDX-License-Identifier: Apache-2.0 */
/* For tests that drive -errno paths: a seccomp filter on the calling process (and what it
 * starts) that makes chosen syscalls fail with chosen errnos. Use in a forked child. */
#pragma once

#include <seccomp.h>
#include <stddef.h>

/* One rule: `nr` fails with `err` when its arguments match `args`. */
struct deny {
	int nr;
	int err;
	unsigned nargs;
	struct scmp_arg_cmp args[3];
};

/* Installs the rules (everything else allowed). Returns 0 or a libseccomp -errno. */
int install_denials(const struct deny *d, size_t n);
