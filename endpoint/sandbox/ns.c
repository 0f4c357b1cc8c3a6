/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Namespaces and mounts for the `namespace` isolation tier: user, mount, pid, ipc and uts
 * namespaces (created by clone3 in sbx.c), the id maps written by the parent, and the mount
 * setup in the child: a read-only root, writable paths kept writable, a fresh /proc for the
 * new pid namespace, denied paths masked by empty read-only mounts, a private /tmp.
 *
 * Landlock stays the primary filesystem control; the mounts are a second, independent layer
 * (a path hidden by a mask is gone even if a Landlock rule were wrong). Landlock rules are
 * opened in the child after these mounts, so they see the mounts (a masked path is a new,
 * ungranted inode; a bind mount keeps its inode and its grant).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "sbx_internal.h"

static int write_file(const char *path, const char *buf)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t n = strlen(buf);

	if (fd < 0)
		return -errno;
	if (write(fd, buf, n) != (ssize_t)n)
		return -errno;
	return 0;
}

/*
 * Maps the session's uid, gid and groups to themselves inside the new user namespace: the
 * session keeps its real identity (files it creates belong to the user), and nothing else is
 * mapped, so no id inside can become real root unless the session is root. A privileged parent
 * may write any single-id maps; an unprivileged one only its own ids, after denying setgroups.
 */
int sbx_ns_write_maps(pid_t pid, const struct sbx_plan *p)
{
	char path[64], map[SBX_GROUPS_MAX * 40 + 64];
	size_t off;
	int r;

	if (geteuid() != 0) {
		snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
		r = write_file(path, "deny");
		if (r < 0 && r != -ENOENT)
			return r;
	}
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)p->uid, (unsigned)p->uid);
	r = write_file(path, map);
	if (r < 0)
		return r;
	off = (size_t)snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)p->gid, (unsigned)p->gid);
	if (geteuid() == 0)
		for (size_t i = 0; i < p->ngroups; i++) {
			bool dup = p->groups[i] == p->gid;
			for (size_t j = 0; j < i; j++)
				dup = dup || p->groups[j] == p->groups[i];
			if (!dup)
				off += (size_t)snprintf(map + off, sizeof(map) - off, "%u %u 1\n",
				                        (unsigned)p->groups[i],
				                        (unsigned)p->groups[i]);
		}
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	return write_file(path, map);
}

/* ---- child side: system calls only ------------------------------------------------------- */

static void set_attr(const struct sbx_plan *p, const char *path, uint64_t set, uint64_t clr)
{
	struct mount_attr attr = {.attr_set = set, .attr_clr = clr};

	if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof(attr)) < 0)
		sbx_child_fail(p, "mount", errno, path);
}

void sbx_ns_setup_mounts(const struct sbx_plan *p)
{
	const struct sbx_mount_plan *m = &p->mounts;
	struct stat st;

	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		sbx_child_fail(p, "mount", errno, "make / private");
	/* Writable paths become mounts of their own (same inodes, so Landlock grants hold) so
	 * they can be made writable again after the root turns read-only. */
	for (size_t i = 0; i < m->nwritable; i++) {
		if (stat(m->writable[i], &st) < 0)
			continue;
		if (mount(m->writable[i], m->writable[i], NULL, MS_BIND | MS_REC, NULL) < 0)
			sbx_child_fail(p, "mount", errno, m->writable[i]);
	}
	/* A /proc for the new pid namespace: the host's would list host processes. */
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		sbx_child_fail(p, "mount", errno, "/proc");
	/* Private /tmp: the session's ${TMP} bound over it (a bind keeps the granted inode). */
	if (m->tmp && stat(m->tmp, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (mount(m->tmp, "/tmp", NULL, MS_BIND | MS_REC, NULL) < 0)
			sbx_child_fail(p, "mount", errno, "/tmp");
	} else if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0) {
		/* no ${TMP}: an empty private tmpfs (Landlock grants it only via a "/" rule) */
		sbx_child_fail(p, "mount", errno, "/tmp");
	}
	/* Everything read-only, recursively (mount_setattr, 5.12+, reaches submounts too)... */
	set_attr(p, "/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0);
	/* ...then the writable paths and /tmp back to read-write, and noexec unless they are in
	 * the execute set: Landlock's EXECUTE right covers execve but not mmap(PROT_EXEC), so
	 * only noexec keeps ld.so from running a file the session wrote. */
	for (size_t i = 0; i < m->nwritable; i++)
		if (stat(m->writable[i], &st) == 0)
			set_attr(p, m->writable[i], m->writable_exec[i] ? 0 : MOUNT_ATTR_NOEXEC,
			         MOUNT_ATTR_RDONLY);
	set_attr(p, "/tmp", m->tmp_exec ? 0 : MOUNT_ATTR_NOEXEC, MOUNT_ATTR_RDONLY);
	/* Masks last, so nothing above re-enables them: an empty read-only tmpfs over a denied
	 * directory, /dev/null over a denied file. */
	for (size_t i = 0; i < m->nmasked; i++) {
		const char *d = m->masked[i];
		if (lstat(d, &st) < 0 || S_ISLNK(st.st_mode))
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (mount("tmpfs", d, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			          "size=0,mode=000") < 0)
				sbx_child_fail(p, "mount", errno, d);
		} else if (mount("/dev/null", d, NULL, MS_BIND, NULL) < 0) {
			sbx_child_fail(p, "mount", errno, d);
		}
	}
	if (sethostname("corral", 6) < 0)
		sbx_child_fail(p, "uts", errno, "sethostname");
}
