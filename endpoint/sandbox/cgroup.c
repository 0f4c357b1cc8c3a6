/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Session cgroups on cgroup v2, v1 or both (hybrid hosts): one leaf per session for memory,
 * pids and CPU limits, statistics at exit, and killing the whole session.
 *
 * v2 is preferred per controller; a controller missing from v2 but mounted as a v1 hierarchy
 * is used there (hybrid hosts keep memory/pids/cpu on v1). The v2 leaf is created whenever v2
 * is mounted, even without controllers: the child is cloned straight into it
 * (CLONE_INTO_CGROUP), cgroup.kill ends the session, cpu.stat counts its CPU time, and the
 * network layer attaches its BPF programs to it. v1 leaves are joined by the parent writing
 * the pid into cgroup.procs before it releases the child, so no code runs outside them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "sbx_internal.h"
#include "util.h"

static const char *const v1_names[3] = {"memory", "pids", "cpu"};

static int write_str(const char *dir, const char *file, const char *value)
{
	char path[SBX_PATH_MAX];
	_cleanup_close_ int fd = -1;
	size_t n = strlen(value);

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, value, n) != (ssize_t)n)
		return -errno;
	return 0;
}

static int write_u64(const char *dir, const char *file, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return write_str(dir, file, buf);
}

/* Reads a whole small cgroup file. */
static int read_small(const char *dir, const char *file, char **ret)
{
	char path[SBX_PATH_MAX];
	size_t len;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	return util_read_file(path, 65536, ret, &len);
}

static uint64_t read_u64(const char *dir, const char *file)
{
	_cleanup_free_ char *buf = NULL;
	uint64_t v = 0;

	if (read_small(dir, file, &buf) < 0)
		return 0;
	buf[strcspn(buf, "\n")] = '\0';
	(void)util_parse_u64(buf, &v);
	return v;
}

/* Value of "key N" in a flat keyed file (memory.events, cpu.stat, memory.oom_control). */
static uint64_t read_key(const char *dir, const char *file, const char *key)
{
	_cleanup_free_ char *buf = NULL;
	size_t kl = strlen(key);

	if (read_small(dir, file, &buf) < 0)
		return 0;
	for (char *line = buf; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
			uint64_t v = 0;
			(void)util_parse_u64(line + kl + 1, &v);
			return v;
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

/* mkdir -p below an existing hierarchy root. */
static int mkdir_parents(const char *path, size_t root_len)
{
	char buf[SBX_PATH_MAX];

	if (!sbx_str_copy(buf, sizeof(buf), path))
		return -ENAMETOOLONG;
	/* the parents exist after the first session of a profile: one mkdir then */
	if (mkdir(buf, 0755) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	for (char *s = buf + root_len + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(buf, 0755) < 0)
		return -errno;
	return 0;
}

/* <hierarchy root>[<own cgroup>]/<parent>/<name> */
static int leaf_path(const char *root, const char *controller, const char *parent, const char *name,
                     char *buf, size_t len)
{
	char own[SBX_PATH_MAX] = "";
	int r;

	if (parent[0] != '/') {
		r = sbx_own_cgroup(controller, own, sizeof(own));
		if (r < 0)
			return r;
	}
	if ((size_t)snprintf(buf, len, "%s%s/%s/%s", root, own,
	                     parent[0] == '/' ? parent + 1 : parent, name) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* v2: enables the needed controllers on every level from the hierarchy root down. */
static int enable_v2_controllers(const char *root, const char *leaf, unsigned ctrl)
{
	char buf[SBX_PATH_MAX], value[64] = "";

	if (ctrl & SBX_CG_MEMORY)
		sbx_str_append(value, sizeof(value), "+memory ");
	if (ctrl & SBX_CG_PIDS)
		sbx_str_append(value, sizeof(value), "+pids ");
	if (ctrl & SBX_CG_CPU)
		sbx_str_append(value, sizeof(value), "+cpu ");
	if (!value[0])
		return 0;
	/* every ancestor of the leaf, from the hierarchy root down (the leaf itself is last
	 * and needs nothing: it only holds processes) */
	size_t rl = strlen(root);
	int r = write_str(root, "cgroup.subtree_control", value);
	for (const char *p = leaf + rl + 1, *s; r >= 0 && (s = strchr(p, '/')); p = s + 1) {
		if ((size_t)(s - leaf) >= sizeof(buf))
			return -ENAMETOOLONG;
		memcpy(buf, leaf, (size_t)(s - leaf));
		buf[s - leaf] = '\0';
		r = write_str(buf, "cgroup.subtree_control", value);
	}
	return r;
}

static int set_limits(const struct sbx_compiled *c, const char *dir, unsigned which, bool v2)
{
	int r = 0;

	if ((which & SBX_CG_MEMORY) && c->memory_max) {
		r = write_u64(dir, v2 ? "memory.max" : "memory.limit_in_bytes", c->memory_max);
		/* swap would let the session exceed the limit unseen */
		if (r >= 0 && v2 && access("/proc/swaps", F_OK) == 0)
			(void)write_str(dir, "memory.swap.max", "0");
		if (r < 0)
			return r;
	}
	if ((which & SBX_CG_PIDS) && c->pids_max) {
		r = write_u64(dir, "pids.max", c->pids_max);
		if (r < 0)
			return r;
	}
	if ((which & SBX_CG_CPU) && c->cpu_max_percent) {
		uint64_t quota = (uint64_t)c->cpu_max_percent * 1000; /* period 100 ms */
		if (v2) {
			char buf[64];
			snprintf(buf, sizeof(buf), "%" PRIu64 " 100000", quota);
			r = write_str(dir, "cpu.max", buf);
		} else {
			r = write_u64(dir, "cpu.cfs_period_us", 100000);
			if (r >= 0)
				r = write_u64(dir, "cpu.cfs_quota_us", quota);
		}
	}
	return r;
}

int sbx_cgroup_create(const struct sbx_compiled *c, const char *parent, const char *name,
                      struct sbx_cgroup *ret, struct sbx_error *err)
{
	const struct sbx_features *f = &c->features;
	struct sbx_cgroup cg = {.v2_fd = -1};
	const char *v1_roots[3] = {f->cgroup_v1_memory, f->cgroup_v1_pids, f->cgroup_v1_cpu};
	int r;

	if (f->cgroup_v2) {
		bool made;
		r = leaf_path(f->cgroup_v2_root, "", parent, name, cg.v2_path, sizeof(cg.v2_path));
		if (r >= 0)
			r = mkdir_parents(cg.v2_path, strlen(f->cgroup_v2_root));
		made = r >= 0;
		if (r >= 0)
			r = enable_v2_controllers(f->cgroup_v2_root, cg.v2_path, c->cg_v2);
		if (r >= 0) {
			cg.v2_fd = open(cg.v2_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (cg.v2_fd < 0)
				r = -errno;
		}
		if (r >= 0)
			r = set_limits(c, cg.v2_path, c->cg_v2, true);
		if (r < 0) {
			sbx_str_copy(err->message, sizeof(err->message), "cgroup v2 ");
			sbx_str_append(err->message, sizeof(err->message), cg.v2_path);
			if (!made) /* not created here (e.g. EEXIST): never remove it */
				cg.v2_path[0] = '\0';
			goto fail;
		}
		cg.v2_kill = f->cgroup_v2_kill;
		cg.v2_ctrl = c->cg_v2;
	}
	for (unsigned i = 0; i < 3; i++) {
		bool made;
		if (!(c->cg_v1 & (1u << i)))
			continue;
		r = leaf_path(v1_roots[i], v1_names[i], parent, name, cg.v1_path[i],
		              sizeof(cg.v1_path[i]));
		if (r >= 0)
			r = mkdir_parents(cg.v1_path[i], strlen(v1_roots[i]));
		made = r >= 0;
		if (r >= 0 && i == 0)
			/* v1 memory: without use_hierarchy the limit would not cover children */
			(void)write_str(cg.v1_path[i], "memory.use_hierarchy", "1");
		if (r >= 0)
			r = set_limits(c, cg.v1_path[i], 1u << i, false);
		if (r < 0) {
			sbx_str_copy(err->message, sizeof(err->message), "cgroup v1 ");
			sbx_str_append(err->message, sizeof(err->message),
			               cg.v1_path[i][0] ? cg.v1_path[i] : v1_names[i]);
			/* a leaf made here is removed with the others; one that existed is not */
			if (!made)
				cg.v1_path[i][0] = '\0';
			goto fail;
		}
		cg.v1_ctrl |= 1u << i;
	}
	*ret = cg;
	return 0;
fail:
	sbx_str_copy(err->step, sizeof(err->step), "cgroup");
	err->error = -r;
	sbx_cgroup_destroy(&cg);
	return r;
}

int sbx_cgroup_attach(const struct sbx_cgroup *cg, pid_t pid, bool v2_too)
{
	if (v2_too && cg->v2_path[0]) {
		int r = write_u64(cg->v2_path, "cgroup.procs", (uint64_t)pid);
		if (r < 0)
			return r;
	}
	for (unsigned i = 0; i < 3; i++) {
		int r;
		if (!cg->v1_path[i][0])
			continue;
		r = write_u64(cg->v1_path[i], "cgroup.procs", (uint64_t)pid);
		if (r < 0)
			return r;
	}
	return 0;
}

/* SIGKILLs every pid listed in dir/cgroup.procs; returns how many were listed. */
static int kill_listed(const char *dir)
{
	_cleanup_free_ char *buf = NULL;
	int n = 0;

	if (read_small(dir, "cgroup.procs", &buf) < 0)
		return 0;
	for (char *save = NULL, *t = strtok_r(buf, "\n", &save); t;
	     t = strtok_r(NULL, "\n", &save)) {
		uint64_t pid;
		if (util_parse_u64(t, &pid) >= 0 && pid > 1) {
			(void)kill((pid_t)pid, SIGKILL);
			n++;
		}
	}
	return n;
}

int sbx_cgroup_kill(const struct sbx_cgroup *cg)
{
	const char *dir = NULL;

	if (cg->v2_path[0] && cg->v2_kill)
		return write_str(cg->v2_path, "cgroup.kill", "1");
	/* v1 (or v2 without cgroup.kill): kill what is listed until nothing is left; a fork
	 * racing the loop shows up in the next round. The pids leaf caps how many can appear. */
	dir = cg->v2_path[0] ? cg->v2_path : cg->v1_path[1][0] ? cg->v1_path[1] : cg->v1_path[0];
	if (!dir || !dir[0])
		dir = cg->v1_path[2];
	if (!dir[0])
		return -ENOENT;
	for (int round = 0; round < 1000; round++) {
		if (kill_listed(dir) == 0)
			return 0;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	return -EBUSY;
}

void sbx_cgroup_stats(const struct sbx_cgroup *cg, struct sbx_result *r)
{
	if (cg->v2_path[0]) {
		/* cpu.stat's usage_usec is there even without the cpu controller */
		uint64_t usec = read_key(cg->v2_path, "cpu.stat", "usage_usec");
		if (usec) {
			r->cpu_usec = usec;
			r->cpu_from_cgroup = true;
		}
		if (cg->v2_ctrl & SBX_CG_MEMORY) {
			r->memory_peak_bytes = read_u64(cg->v2_path, "memory.peak");
			r->oom_kills = read_key(cg->v2_path, "memory.events", "oom_kill");
		}
		if (cg->v2_ctrl & SBX_CG_PIDS)
			r->pids_max_hits = read_key(cg->v2_path, "pids.events", "max");
	}
	if (cg->v1_path[0][0]) {
		r->memory_peak_bytes = read_u64(cg->v1_path[0], "memory.max_usage_in_bytes");
		r->oom_kills = read_key(cg->v1_path[0], "memory.oom_control", "oom_kill");
	}
	if (cg->v1_path[1][0])
		r->pids_max_hits = read_key(cg->v1_path[1], "pids.events", "max");
}

/* rmdir, retrying briefly: a killed task leaves its cgroup a moment after it is reaped. */
static void remove_dir(const char *path)
{
	for (int i = 0; i < 200; i++) {
		if (rmdir(path) == 0 || errno == ENOENT)
			return;
		if (errno != EBUSY)
			return;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
}

void sbx_cgroup_destroy(struct sbx_cgroup *cg)
{
	if (cg->v2_fd >= 0) {
		close(cg->v2_fd);
		cg->v2_fd = -1;
	}
	if (cg->v2_path[0])
		remove_dir(cg->v2_path);
	for (unsigned i = 0; i < 3; i++)
		if (cg->v1_path[i][0])
			remove_dir(cg->v1_path[i]);
	cg->v2_path[0] = '\0';
	for (unsigned i = 0; i < 3; i++)
		cg->v1_path[i][0] = '\0';
}
