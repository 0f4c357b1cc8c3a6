/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Credentials and capabilities in the child: supplementary groups, gid and uid switched to
 * the session's identity, every capability (effective, permitted, inheritable, ambient) and the
 * bounding set dropped, so nothing the session execs can regain privilege.
 *
 * Ordering: the bounding set can only be shrunk while CAP_SETPCAP is still effective, i.e.
 * before the uid switch; the capability sets are cleared explicitly after it because the
 * kernel's automatic clearing on setuid does not happen inside a user namespace whose root is
 * unmapped (and not at all for a root session). All system calls only: this runs between
 * clone3 and execve.
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sbx_internal.h"

static int last_cap(void)
{
	/* probing with PR_CAPBSET_READ avoids reading /proc (not mounted yet in every tier) */
	int c = CAP_LAST_CAP;

	while (prctl(PR_CAPBSET_READ, c + 1, 0, 0, 0) >= 0)
		c++;
	return c;
}

void sbx_caps_drop_bounding(const struct sbx_plan *p)
{
	int last = last_cap();

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		sbx_child_fail(p, "caps", errno, "clear ambient");
	for (int c = 0; c <= last; c++) {
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == 0 || errno == EINVAL)
			continue;
		/* an unprivileged caller has no CAP_SETPCAP and nothing to drop that could
		 * matter: no_new_privs keeps it from gaining capabilities through exec */
		if (errno == EPERM && !p->change_ids)
			return;
		sbx_child_fail(p, "caps", errno, "drop bounding set");
	}
}

void sbx_creds_drop(const struct sbx_plan *p)
{
	if (!p->change_ids)
		return;
	/* Raw system calls, not libc's wrappers: those broadcast the change to every thread
	 * libc knows of (the parent's, which the child shares memory with under CLONE_VM, see
	 * sbx.c) and take libc locks; the child is one task and only its own creds change.
	 * Groups first: after the uid switch we could no longer change them. */
	if (syscall(SYS_setgroups, p->ngroups, p->groups) < 0)
		sbx_child_fail(p, "setgroups", errno, NULL);
	if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0)
		sbx_child_fail(p, "setgid", errno, NULL);
	if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
		sbx_child_fail(p, "setuid", errno, NULL);
}

void sbx_caps_clear(const struct sbx_plan *p)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};

	/* a root session must not keep capabilities either; lock that in with securebits */
	if (p->uid == 0 && p->change_ids &&
	    prctl(PR_SET_SECUREBITS,
	          SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
	                  SECBIT_NO_SETUID_FIXUP_LOCKED,
	          0, 0, 0) < 0)
		sbx_child_fail(p, "caps", errno, "securebits");
	if (syscall(SYS_capset, &hdr, data) < 0)
		sbx_child_fail(p, "caps", errno, "capset");
}
