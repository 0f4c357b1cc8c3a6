/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel feature probe: which sandbox primitives this host offers (Landlock ABI, seccomp
 * actions, user namespaces, cgroup v2 and v1 hierarchies with their controllers). The result
 * drives profile compilation: `requires` refuses, `degrade` decides, and the enforced layers
 * are reported from it, so a missing feature is never silently ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cleanup.h"
#include "sbx_internal.h"
#include "util.h"

static int probe_landlock(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return abi < 0 ? 0 : (int)abi;
}

static bool seccomp_action_avail(uint32_t action)
{
	return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

static unsigned controller_bit(const char *name)
{
	if (strcmp(name, "memory") == 0)
		return SBX_CG_MEMORY;
	if (strcmp(name, "pids") == 0)
		return SBX_CG_PIDS;
	if (strcmp(name, "cpu") == 0)
		return SBX_CG_CPU;
	return 0;
}

/* Reads the space-separated controller list of a v2 cgroup.controllers file. */
static unsigned read_v2_controllers(const char *root)
{
	char path[SBX_PATH_MAX];
	_cleanup_free_ char *buf = NULL;
	size_t len;
	unsigned mask = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/cgroup.controllers", root) >= sizeof(path))
		return 0;
	if (util_read_file(path, 4096, &buf, &len) < 0)
		return 0;
	for (char *save = NULL, *tok = strtok_r(buf, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save))
		mask |= controller_bit(tok);
	return mask;
}

/*
 * Parses /proc/self/mountinfo: "id parent maj:min root mountpoint opts ... - fstype src sopts".
 * cgroup v1 hierarchies name their controllers in the super options ("rw,memory").
 */
static void probe_cgroups(struct sbx_features *f)
{
	_cleanup_fclose_ FILE *mi = fopen("/proc/self/mountinfo", "re");
	char line[4096];

	if (!mi)
		return;
	while (fgets(line, sizeof(line), mi)) {
		char *fields[6] = {0}, *save = NULL, *dash, *fstype, *sopts;
		size_t n = 0;

		dash = strstr(line, " - ");
		if (!dash)
			continue;
		*dash = '\0';
		for (char *tok = strtok_r(line, " ", &save); tok && n < 6;
		     tok = strtok_r(NULL, " ", &save))
			fields[n++] = tok;
		if (n < 5)
			continue;
		save = NULL;
		fstype = strtok_r(dash + 3, " ", &save);
		(void)strtok_r(NULL, " ", &save); /* source */
		sopts = strtok_r(NULL, " \n", &save);
		if (!fstype)
			continue;
		if (strcmp(fstype, "cgroup2") == 0 && !f->cgroup_v2) {
			f->cgroup_v2 = sbx_str_copy(f->cgroup_v2_root, sizeof(f->cgroup_v2_root),
			                            fields[4]);
			f->cgroup_v2_controllers = read_v2_controllers(f->cgroup_v2_root);
		} else if (strcmp(fstype, "cgroup") == 0 && sopts) {
			char *osave = NULL;
			for (char *o = strtok_r(sopts, ",", &osave); o;
			     o = strtok_r(NULL, ",", &osave)) {
				unsigned bit = controller_bit(o);
				char *dst = bit == SBX_CG_MEMORY ? f->cgroup_v1_memory
				            : bit == SBX_CG_PIDS ? f->cgroup_v1_pids
				            : bit == SBX_CG_CPU  ? f->cgroup_v1_cpu
				                                 : NULL;
				if (dst && !dst[0] && sbx_str_copy(dst, SBX_PATH_MAX, fields[4]))
					f->cgroup_v1_controllers |= bit;
			}
		}
	}
}

int sbx_own_cgroup(const char *controller, char *buf, size_t len)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096];

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2, *nl;

		if (!c1)
			continue;
		c2 = strchr(c1 + 1, ':');
		if (!c2)
			continue;
		*c2 = '\0';
		nl = strchr(c2 + 1, '\n');
		if (nl)
			*nl = '\0';
		bool match = false;
		if (!controller[0]) {
			match = c2 == c1 + 1 && util_startswith(line, "0:");
		} else {
			char *save = NULL;
			for (char *t = strtok_r(c1 + 1, ",", &save); t;
			     t = strtok_r(NULL, ",", &save))
				if (strcmp(t, controller) == 0)
					match = true;
		}
		if (!match)
			continue;
		/* "/" means the hierarchy root: return "" so callers can append "/x" */
		return sbx_str_copy(buf, len, strcmp(c2 + 1, "/") == 0 ? "" : c2 + 1)
		               ? 0
		               : -ENAMETOOLONG;
	}
	return -ENOENT;
}

static bool kernel_at_least(unsigned major, unsigned minor)
{
	struct utsname u;
	unsigned a = 0, b = 0;

	if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &a, &b) != 2)
		return false;
	return a > major || (a == major && b >= minor);
}

static bool probe_userns(void)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	uint64_t max = 0;

	if (util_read_file("/proc/sys/user/max_user_namespaces", 64, &buf, &len) < 0)
		return false;
	buf[strcspn(buf, "\n")] = '\0';
	if (util_parse_u64(buf, &max) < 0 || max == 0)
		return false;
	if (geteuid() != 0) {
		_cleanup_free_ char *u = NULL;
		if (util_read_file("/proc/sys/kernel/unprivileged_userns_clone", 64, &u, &len) >=
		            0 &&
		    u[0] == '0')
			return false;
	}
	return true;
}

int sbx_features_probe(struct sbx_features *ret)
{
	struct sbx_features f = {0};

	if (access("/proc/self/mountinfo", R_OK) < 0)
		return -errno;
	f.landlock_abi = probe_landlock();
	f.seccomp = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
	f.seccomp_notify = f.seccomp && seccomp_action_avail(SECCOMP_RET_USER_NOTIF);
	f.seccomp_log = f.seccomp && seccomp_action_avail(SECCOMP_RET_LOG);
	f.user_namespaces = probe_userns();
	probe_cgroups(&f);
	/* The root cgroup has neither cgroup.kill nor a place to clone into, so these two are
	 * dated by the kernel release: CLONE_INTO_CGROUP came in 5.7, cgroup.kill in 5.14. */
	f.clone_into_cgroup = f.cgroup_v2 && kernel_at_least(5, 7);
	f.cgroup_v2_kill = f.cgroup_v2 && kernel_at_least(5, 14);
	*ret = f;
	return 0;
}
