/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sandbox engine's -errno paths that need no privileges to drive:
 *  - session cgroups (cgroup.c) on a fake hierarchy in a temporary directory (the compiled
 *    profile's host features point there): a missing control file, a write that fails
 *    (/dev/full), a leaf that exists already, a parent that is a file, a name too long for
 *    SBX_PATH_MAX, a v1 limit failing after the v2 leaf was made; each failure names the step
 *    and path and leaves no leaf behind; attach/kill/stats on the same kind of tree;
 *  - the user-namespace id maps (ns.c) written to a process that has no new namespace or no
 *    longer exists;
 *  - the Landlock rule planner (landlock.c): a symlink loop where a denied path must be carved
 *    out (-ELOOP from open), a tree deeper than the walk limit (-ELOOP), an entry whose path
 *    exceeds SBX_PATH_MAX (-ENAMETOOLONG), more rules than SBX_RULES_MAX (-E2BIG), and a
 *    root that does not exist (no rule, no error);
 *  - through sbx_spawn: limits requested on a hierarchy that refuses them (step "cgroup",
 *    nothing runs, no leaf left) and a caller in more than SBX_GROUPS_MAX groups (step
 *    "credentials", EINVAL from getgroups). The run_as account in too many groups is in
 *    tests/privileged/sandbox/test_sandbox_groups.c (it creates system accounts).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "sbx_internal.h"
#include "sbx_test_profile.h"
#include "util.h"

static char *g_dir;

static int suite_init(void)
{
	g_dir = harness_mkdtemp("sandbox-errors");
	return g_dir ? 0 : -1;
}

static int suite_cleanup(void)
{
	if (g_dir && !getenv("CORRAL_KEEP_TMP"))
		harness_rm_rf(g_dir);
	free(g_dir);
	return 0;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static int touch(const char *dir, const char *name, const char *text)
{
	char path[SBX_PATH_MAX + 256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return util_write_file_atomic(path, text, strlen(text), 0644);
}

/* A fake v2 hierarchy at DIR/<tag>: root with cgroup.subtree_control, and <root>/corral. */
static void fake_v2(struct sbx_compiled *c, const char *tag, char *root, size_t len)
{
	char corral[2048];
	snprintf(root, len, "%s/%s", g_dir, tag);
	CU_ASSERT_EQUAL_FATAL(mkdir(root, 0755), 0);
	CU_ASSERT_EQUAL_FATAL(touch(root, "cgroup.subtree_control", ""), 0);
	snprintf(corral, sizeof(corral), "%s/corral", root);
	CU_ASSERT_EQUAL_FATAL(mkdir(corral, 0755), 0);
	CU_ASSERT_EQUAL_FATAL(touch(corral, "cgroup.subtree_control", ""), 0);
	memset(c, 0, sizeof(*c));
	c->features.cgroup_v2 = true;
	snprintf(c->features.cgroup_v2_root, sizeof(c->features.cgroup_v2_root), "%s", root);
}

/* The same hierarchy without a compiled profile (for sbx_spawn through probed features). */
static void fake_v2_root(char *root, size_t len, const char *tag)
{
	char corral[2048];
	snprintf(root, len, "%s/%s", g_dir, tag);
	CU_ASSERT_EQUAL_FATAL(mkdir(root, 0755), 0);
	CU_ASSERT_EQUAL_FATAL(touch(root, "cgroup.subtree_control", ""), 0);
	snprintf(corral, sizeof(corral), "%s/corral", root);
	CU_ASSERT_EQUAL_FATAL(mkdir(corral, 0755), 0);
	CU_ASSERT_EQUAL_FATAL(touch(corral, "cgroup.subtree_control", ""), 0);
}

static void test_cgroup_create_ok_and_kill(void)
{
	struct sbx_compiled c;
	struct sbx_cgroup cg;
	struct sbx_error err = {0};
	char root[1024], leaf[2048], buf[64] = "";

	fake_v2(&c, "cg-ok", root, sizeof(root));
	c.cg_v2 = SBX_CG_PIDS;
	/* no limit values: nothing to write in the (plain directory) leaf */
	CU_ASSERT_EQUAL_FATAL(sbx_cgroup_create(&c, "/corral", "s1", &cg, &err), 0);
	snprintf(leaf, sizeof(leaf), "%s/corral/s1", root);
	CU_ASSERT_STRING_EQUAL(cg.v2_path, leaf);
	CU_ASSERT_TRUE(cg.v2_fd >= 0);
	/* the controllers were enabled on every ancestor */
	char path[SBX_PATH_MAX];
	snprintf(path, sizeof(path), "%s/corral/cgroup.subtree_control", root);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CU_ASSERT_TRUE(fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0);
	if (fd >= 0)
		close(fd);
	CU_ASSERT_STRING_EQUAL(buf, "+pids ");
	/* attach: the leaf has no cgroup.procs file -> ENOENT */
	CU_ASSERT_EQUAL(sbx_cgroup_attach(&cg, getpid(), true), -ENOENT);
	/* kill: cgroup.kill missing -> ENOENT; without cgroup.kill the listed pids are
	 * killed until none is left (an empty list ends it at once) */
	cg.v2_kill = true;
	CU_ASSERT_EQUAL(sbx_cgroup_kill(&cg), -ENOENT);
	cg.v2_kill = false;
	CU_ASSERT_EQUAL(touch(leaf, "cgroup.procs", ""), 0);
	CU_ASSERT_EQUAL(sbx_cgroup_kill(&cg), 0);
	/* a child that lingers in the list keeps the loop going: -EBUSY after the rounds */
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	char line[32];
	snprintf(line, sizeof(line), "%d\n", (int)pid);
	CU_ASSERT_EQUAL(touch(leaf, "cgroup.procs", line), 0);
	CU_ASSERT_EQUAL(sbx_cgroup_kill(&cg), -EBUSY); /* the fake file never empties */
	int st = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	/* statistics from the flat keyed files */
	CU_ASSERT_EQUAL(touch(leaf, "cpu.stat", "usage_usec 1234\nuser_usec 1000\n"), 0);
	CU_ASSERT_EQUAL(touch(leaf, "pids.events", "max 3\n"), 0);
	struct sbx_result res = {0};
	sbx_cgroup_stats(&cg, &res);
	CU_ASSERT_EQUAL(res.cpu_usec, 1234);
	CU_ASSERT_TRUE(res.cpu_from_cgroup);
	CU_ASSERT_EQUAL(res.pids_max_hits, 3);
	/* destroy removes the leaf once it is empty (our fake files are not cgroup files) */
	char f[4096];
	const char *files[] = {"cgroup.procs", "cpu.stat", "pids.events"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(f, sizeof(f), "%s/%s", leaf, files[i]);
		unlink(f);
	}
	sbx_cgroup_destroy(&cg);
	CU_ASSERT_FALSE(exists(leaf));
	CU_ASSERT_EQUAL(cg.v2_fd, -1);
}

static void test_cgroup_create_failures(void)
{
	struct sbx_compiled c;
	struct sbx_cgroup cg;
	struct sbx_error err;
	char root[1024], leaf[2048], path[2600];

	/* a limit whose control file is missing (memory.max in a plain directory) */
	fake_v2(&c, "cg-nofile", root, sizeof(root));
	c.cg_v2 = SBX_CG_MEMORY;
	c.memory_max = 64u << 20;
	memset(&err, 0, sizeof(err));
	CU_ASSERT_EQUAL(sbx_cgroup_create(&c, "/corral", "s1", &cg, &err), -ENOENT);
	CU_ASSERT_STRING_EQUAL(err.step, "cgroup");
	CU_ASSERT_EQUAL(err.error, ENOENT);
	snprintf(leaf, sizeof(leaf), "%s/corral/s1", root);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.message, leaf));
	CU_ASSERT_FALSE(exists(leaf)); /* the half-made leaf is removed */

	/* the hierarchy root refuses the controllers: no cgroup.subtree_control */
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", root);
	CU_ASSERT_EQUAL(unlink(path), 0);
	c.memory_max = 0;
	memset(&err, 0, sizeof(err));
	CU_ASSERT_EQUAL(sbx_cgroup_create(&c, "/corral", "s2", &cg, &err), -ENOENT);
	CU_ASSERT_STRING_EQUAL(err.step, "cgroup");
	snprintf(leaf, sizeof(leaf), "%s/corral/s2", root);
	CU_ASSERT_FALSE(exists(leaf));

	/* a write the kernel refuses: the control file is /dev/full (ENOSPC) */
	CU_ASSERT_EQUAL(symlink("/dev/full", path), 0);
	memset(&err, 0, sizeof(err));
	CU_ASSERT_EQUAL(sbx_cgroup_create(&c, "/corral", "s3", &cg, &err), -ENOSPC);
	CU_ASSERT_EQUAL(err.error, ENOSPC);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "cgroup v2 "));
	snprintf(leaf, sizeof(leaf), "%s/corral/s3", root);
	CU_ASSERT_FALSE(exists(leaf));
	CU_ASSERT_EQUAL(unlink(path), 0);
	CU_ASSERT_EQUAL(touch(root, "cgroup.subtree_control", ""), 0);

	/* the session name is taken: mkdir EEXIST, and the leaf we did not create survives */
	c.cg_v2 = 0;
	snprintf(leaf, sizeof(leaf), "%s/corral/taken", root);
	CU_ASSERT_EQUAL(mkdir(leaf, 0755), 0); /* empty: rmdir would succeed */
	memset(&err, 0, sizeof(err));
	CU_ASSERT_EQUAL(sbx_cgroup_create(&c, "/corral", "taken", &cg, &err), -EEXIST);
	CU_ASSERT_EQUAL(err.error, EEXIST);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.message, leaf));
	CU_ASSERT_TRUE(exists(leaf));

	/* the parent is a regular file: ENOTDIR */
	CU_ASSERT_EQUAL(touch(root, "afile", ""), 0);
	memset(&err, 0, sizeof(err));
	CU_ASSERT_EQUAL(sbx_cgroup_create(&c, "/afile", "s4", &cg, &err), -ENOTDIR);
	CU_ASSERT_STRING_EQUAL(err.step, "cgroup");

	/* a path that does not fit SBX_PATH_MAX */
	char longname[SBX_PATH_MAX];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	memset(&err, 0, sizeof(err));
	CU_ASSERT_EQUAL(sbx_cgroup_create(&c, "/corral", longname, &cg, &err), -ENAMETOOLONG);
	CU_ASSERT_STRING_EQUAL(err.step, "cgroup");
}

static void test_cgroup_v1_failure_undoes_v2(void)
{
	struct sbx_compiled c;
	struct sbx_cgroup cg;
	struct sbx_error err = {0};
	char root[1024], v1[1024], leaf[2048];

	fake_v2(&c, "cg-hybrid", root, sizeof(root));
	snprintf(v1, sizeof(v1), "%s/cg-hybrid-v1-pids", g_dir);
	CU_ASSERT_EQUAL_FATAL(mkdir(v1, 0755), 0);
	snprintf(c.features.cgroup_v1_pids, sizeof(c.features.cgroup_v1_pids), "%s", v1);
	c.cg_v1 = SBX_CG_PIDS;
	c.pids_max = 32; /* pids.max is missing in the fake v1 leaf */
	CU_ASSERT_EQUAL(sbx_cgroup_create(&c, "/corral", "h1", &cg, &err), -ENOENT);
	CU_ASSERT_STRING_EQUAL(err.step, "cgroup");
	CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "cgroup v1 "));
	snprintf(leaf, sizeof(leaf), "%s/corral/h1", root);
	CU_ASSERT_FALSE(exists(leaf)); /* the v2 leaf made before is gone too */
	snprintf(leaf, sizeof(leaf), "%s/corral/h1", v1);
	CU_ASSERT_FALSE(exists(leaf));
	/* without the limit value it succeeds and both leaves exist until destroyed */
	c.pids_max = 0;
	CU_ASSERT_EQUAL_FATAL(sbx_cgroup_create(&c, "/corral", "h2", &cg, &err), 0);
	snprintf(leaf, sizeof(leaf), "%s/corral/h2", v1);
	CU_ASSERT_STRING_EQUAL(cg.v1_path[1], leaf);
	CU_ASSERT_TRUE(exists(leaf));
	/* attach writes the pid into cgroup.procs of every leaf: v1 missing -> ENOENT */
	CU_ASSERT_EQUAL(sbx_cgroup_attach(&cg, getpid(), false), -ENOENT);
	sbx_cgroup_destroy(&cg);
	CU_ASSERT_FALSE(exists(leaf));
}

/* ---- user-namespace id maps ------------------------------------------------------------ */

static void test_ns_write_maps_errors(void)
{
	struct sbx_plan plan;
	memset(&plan, 0, sizeof(plan));
	plan.uid = getuid();
	plan.gid = getgid();
	/* a process in our own user namespace: its maps are fixed -> EPERM (as root: uid_map;
	 * unprivileged: already setgroups, EPERM or EACCES by the /proc file's checks) */
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	int r = sbx_ns_write_maps(pid, &plan);
	if (r != -EPERM)
		printf("\n    sbx_ns_write_maps: %s", strerror(-r));
	CU_ASSERT_TRUE(r == -EPERM || (geteuid() != 0 && r == -EACCES));
	kill(pid, SIGKILL);
	int st;
	waitpid(pid, &st, 0);
	/* a process that is gone: no /proc entry -> ENOENT */
	CU_ASSERT_EQUAL(sbx_ns_write_maps(pid, &plan), -ENOENT);
}

/* ---- Landlock rule planning -------------------------------------------------------------- */

/* Compiles a profile reading `nread` copies of `read_path`, denying `deny`. */
static struct sbx_compiled *ll_profile(const char *read_path, size_t nread, const char *deny)
{
	struct sbx_test_profile tp;
	struct sbx_features f = {.landlock_abi = 7, .seccomp = true};
	struct sbx_compiled *c = NULL;
	char err[256];

	sbx_test_strict_profile(&tp, NULL);
	tp.fs.n_read = 0;
	for (size_t i = 0; i < nread && i < 16; i++)
		tp.read[tp.fs.n_read++] = (char *)read_path;
	tp.fs.n_write = 0;
	tp.fs.n_execute = 0;
	tp.fs.n_deny = 0;
	if (deny)
		tp.deny[tp.fs.n_deny++] = (char *)deny;
	tp.res.memory_max_bytes = 0;
	tp.res.pids_max = 0;
	tp.req.landlock_abi = 0;
	if (sbx_compile_profile(&tp.profile, &f, &c, err, sizeof(err)) < 0) {
		printf("\n    compile: %s", err);
		return NULL;
	}
	return c;
}

static int plan_rules(const struct sbx_compiled *c, size_t *ret_n, struct sbx_error *err)
{
	struct sbx_plan plan;
	memset(&plan, 0, sizeof(plan));
	plan.c = c;
	memset(err, 0, sizeof(*err));
	int r = sbx_landlock_plan(&plan, "/nonexistent-home", NULL, NULL, err);
	*ret_n = plan.nrules;
	for (size_t i = 0; i < plan.nrules; i++)
		free(plan.rules[i].path);
	free(plan.rules);
	return r;
}

/* The same path in several sets becomes one rule with the union of the rights (the kernel ORs
 * rules on one object anyway); distinct paths stay distinct. */
static void test_landlock_plan_merges(void)
{
	struct sbx_test_profile tp;
	struct sbx_features f = {.landlock_abi = 7, .seccomp = true};
	struct sbx_compiled *c = NULL;
	char err[256];

	sbx_test_strict_profile(&tp, NULL);
	tp.fs.n_read = tp.fs.n_write = tp.fs.n_execute = tp.fs.n_deny = 0;
	tp.read[tp.fs.n_read++] = (char *)"/usr";
	tp.read[tp.fs.n_read++] = (char *)"/etc";
	tp.read[tp.fs.n_read++] = (char *)"/usr";
	tp.exec[tp.fs.n_execute++] = (char *)"/usr";
	tp.write[tp.fs.n_write++] = (char *)"/etc";
	tp.res.memory_max_bytes = 0;
	tp.res.pids_max = 0;
	tp.req.landlock_abi = 0;
	CU_ASSERT_EQUAL_FATAL(sbx_compile_profile(&tp.profile, &f, &c, err, sizeof(err)), 0);
	struct sbx_plan plan;
	struct sbx_error e;
	memset(&plan, 0, sizeof(plan));
	memset(&e, 0, sizeof(e));
	plan.c = c;
	CU_ASSERT_EQUAL(sbx_landlock_plan(&plan, "/nonexistent-home", NULL, NULL, &e), 0);
	CU_ASSERT_EQUAL(plan.nrules, 2);
	for (size_t i = 0; i < plan.nrules; i++) {
		const struct sbx_ll_rule *r = &plan.rules[i];
		if (strcmp(r->path, "/usr") == 0) {
			CU_ASSERT_EQUAL(r->access, c->ll_read | c->ll_exec);
		} else if (strcmp(r->path, "/etc") == 0) {
			CU_ASSERT_EQUAL(r->access, c->ll_read | c->ll_write);
		} else {
			CU_FAIL("unexpected rule");
		}
		free(r->path);
	}
	free(plan.rules);
	sbx_compiled_free(c);
}

static void test_landlock_plan_errors(void)
{
	char base[1024], path[2048], deny[SBX_PATH_MAX];
	struct sbx_compiled *c;
	struct sbx_error err;
	size_t n = 0;

	snprintf(base, sizeof(base), "%s/ll", g_dir);
	CU_ASSERT_EQUAL_FATAL(mkdir(base, 0755), 0);

	/* a root that does not exist: skipped, no rule, no error (with and without a carve-out) */
	snprintf(path, sizeof(path), "%s/missing", base);
	snprintf(deny, sizeof(deny), "%s/missing/secret", base);
	c = ll_profile(path, 1, deny);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(plan_rules(c, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 0);
	sbx_compiled_free(c);

	/* a symlink loop that must be walked for a carve-out: open fails with ELOOP */
	snprintf(path, sizeof(path), "%s/loop", base);
	CU_ASSERT_EQUAL_FATAL(symlink("loop", path), 0);
	snprintf(deny, sizeof(deny), "%s/loop/secret", base);
	c = ll_profile(path, 1, deny);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(plan_rules(c, &n, &err), -ELOOP);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "planning rules for"));
	sbx_compiled_free(c);

	/* deeper than the walk limit (64 levels) down to the denied path: -ELOOP */
	snprintf(path, sizeof(path), "%s/deep", base);
	CU_ASSERT_EQUAL_FATAL(mkdir(path, 0755), 0);
	snprintf(deny, sizeof(deny), "%s", path);
	for (int i = 0; i < 70; i++) {
		sbx_str_append(deny, sizeof(deny), "/d");
		CU_ASSERT_EQUAL_FATAL(mkdir(deny, 0755), 0);
	}
	c = ll_profile(path, 1, deny);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(plan_rules(c, &n, &err), -ELOOP);
	sbx_compiled_free(c);
	/* within the limit the same tree plans fine: one rule per sibling on the way */
	char shallow[SBX_PATH_MAX];
	snprintf(shallow, sizeof(shallow), "%s/d/d/d", path);
	c = ll_profile(path, 1, shallow);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(plan_rules(c, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 0); /* nothing beside the denied chain */
	sbx_compiled_free(c);

	/* an entry whose full path exceeds SBX_PATH_MAX on the way to the carve-out */
	snprintf(path, sizeof(path), "%s/long", base);
	CU_ASSERT_EQUAL_FATAL(mkdir(path, 0755), 0);
	char comp[251];
	memset(comp, 'l', 250);
	comp[250] = '\0';
	snprintf(deny, sizeof(deny), "%s", path);
	/* the deepest directory D: 3840 <= strlen(D) <= 4090, so D itself opens (< PATH_MAX)
	 * but D + "/" + a 255-byte name does not fit SBX_PATH_MAX */
	while (strlen(deny) + 251 <= 4090) {
		sbx_str_append(deny, sizeof(deny), "/");
		sbx_str_append(deny, sizeof(deny), comp);
		CU_ASSERT_EQUAL_FATAL(mkdir(deny, 0755), 0);
	}
	CU_ASSERT_TRUE_FATAL(strlen(deny) >= 3840);
	char sibling[256];
	memset(sibling, 's', 255);
	sibling[255] = '\0';
	{
		int dfd = open(deny, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		CU_ASSERT_TRUE_FATAL(dfd >= 0);
		int fd = openat(dfd, sibling, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		CU_ASSERT_TRUE_FATAL(fd >= 0);
		close(fd);
		close(dfd);
	}
	sbx_str_append(deny, sizeof(deny), "/x");
	c = ll_profile(path, 1, deny);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(plan_rules(c, &n, &err), -ENAMETOOLONG);
	sbx_compiled_free(c);

	/* more than SBX_RULES_MAX (65536) rules: 16 roots x 4200 entries beside a carve-out */
	snprintf(path, sizeof(path), "%s/wide", base);
	CU_ASSERT_EQUAL_FATAL(mkdir(path, 0755), 0);
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CU_ASSERT_TRUE_FATAL(dfd >= 0);
	for (int i = 0; i < 4200; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%d", i);
		int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		CU_ASSERT_TRUE_FATAL(fd >= 0);
		close(fd);
	}
	close(dfd);
	snprintf(deny, sizeof(deny), "%s/f0", path);
	c = ll_profile(path, 1, deny);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(plan_rules(c, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 4199); /* every entry but the denied one */
	sbx_compiled_free(c);
	c = ll_profile(path, 16, deny);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(plan_rules(c, &n, &err), -E2BIG);
	CU_ASSERT_EQUAL(n, 65536);
	sbx_compiled_free(c);
}

/* ---- through sbx_spawn ------------------------------------------------------------------- */

/* The strict profile on this host's probed features, cgroups pointed at `cg_root`. */
/* The strict profile on features `f` (Landlock and seccomp not required), with or without its
 * memory/pids/cpu limits; NULL with the reason in err. */
static struct sbx_compiled *strict_on(const struct sbx_features *f, bool limits, const char *run_as,
                                      char *err, size_t errlen)
{
	struct sbx_test_profile tp;
	struct sbx_compiled *c = NULL;

	sbx_test_strict_profile(&tp, NULL);
	tp.req.landlock_abi = 0;
	tp.req.seccomp = false;
	tp.deg.landlock_partial = true;
	if (!limits)
		tp.res.memory_max_bytes = tp.res.pids_max = tp.res.cpu_max_percent = 0;
	if (run_as)
		tp.proc.run_as = (char *)run_as;
	if (sbx_compile_profile(&tp.profile, f, &c, err, errlen) < 0)
		return NULL;
	return c;
}

/* Points f's v2 hierarchy at `root` with every controller, and no v1. */
static void v2_at(struct sbx_features *f, const char *root)
{
	f->cgroup_v2 = true;
	f->cgroup_v2_controllers = SBX_CG_MEMORY | SBX_CG_PIDS | SBX_CG_CPU;
	f->cgroup_v1_controllers = 0;
	snprintf(f->cgroup_v2_root, sizeof(f->cgroup_v2_root), "%s", root);
}

static struct sbx_compiled *host_profile(const char *cg_root, const char *run_as, char *err,
                                         size_t errlen)
{
	struct sbx_features f;

	if (sbx_features_probe(&f) < 0) {
		snprintf(err, errlen, "feature probe failed");
		return NULL;
	}
	if (cg_root)
		v2_at(&f, cg_root);
	return strict_on(&f, true, run_as, err, errlen);
}

static void test_spawn_cgroup_refused(void)
{
	char root[1024], marker[1200], cmd[1300], err_text[256] = "";
	struct sbx_error err;
	struct sbx_child *ch = NULL;

	/* a hierarchy that refuses the controllers (no cgroup.subtree_control) */
	snprintf(root, sizeof(root), "%s/cg-spawn", g_dir);
	CU_ASSERT_EQUAL_FATAL(mkdir(root, 0755), 0);
	struct sbx_compiled *c = host_profile(root, NULL, err_text, sizeof(err_text));
	if (!c)
		HARNESS_SKIP("the strict profile does not compile on this host: %s", err_text);
	snprintf(marker, sizeof(marker), "%s/ran", root);
	snprintf(cmd, sizeof(cmd), "echo > %s", marker);
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	struct sbx *s = sbx_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(sbx_set_profile(s, c), 0);
	CU_ASSERT_EQUAL(sbx_set_argv(s, argv), 0);
	CU_ASSERT_EQUAL(sbx_set_cgroup(s, "/corral", "refused"), 0);
	if (geteuid() == 0) /* the profile does not allow root: run as nobody */
		CU_ASSERT_EQUAL(sbx_set_ids(s, 65534, 65534, NULL, 0), 0);
	memset(&err, 0, sizeof(err));
	/* limits requested and no degrade: refused at the cgroup step, nothing runs */
	CU_ASSERT_EQUAL(sbx_spawn(s, &ch, &err), -ENOENT);
	if (strcmp(err.step, "cgroup") != 0)
		printf("\n    %s", err.message);
	CU_ASSERT_PTR_NULL(ch);
	CU_ASSERT_STRING_EQUAL(err.step, "cgroup");
	CU_ASSERT_EQUAL(err.error, ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.message, root));
	CU_ASSERT_FALSE(exists(marker));
	char leaf[1200];
	snprintf(leaf, sizeof(leaf), "%s/corral/refused", root);
	CU_ASSERT_FALSE(exists(leaf));
	sbx_free(s);
	sbx_compiled_free(c);
}

/*
 * A session cgroup the child cannot be born into (no CLONE_INTO_CGROUP) whose cgroup.procs
 * cannot be opened: with the CLONE_VM spawn the parent opens it for the child ("opening
 * cgroup.procs"), with the copying spawn it writes the pid itself ("joining"); either way the
 * spawn is refused at step "cgroup" with ENOENT, nothing runs and no leaf is left.
 */
static void test_spawn_cgroup_join_fails(void)
{
	char root[1024], marker[1200], cmd[1300], leaf[1200], err_text[256] = "";
	struct sbx_error err;
	struct sbx_child *ch = NULL;
	struct sbx_features f;
	struct sbx_compiled *c = NULL;

	if (sbx_features_probe(&f) < 0)
		HARNESS_SKIP("feature probe failed");
	fake_v2_root(root, sizeof(root), "cg-join");
	v2_at(&f, root);
	f.clone_into_cgroup = false;
	if (!(c = strict_on(&f, false, NULL, err_text, sizeof(err_text))))
		HARNESS_SKIP("the strict profile does not compile on this host: %s", err_text);
	snprintf(marker, sizeof(marker), "%s/ran", root);
	snprintf(cmd, sizeof(cmd), "echo > %s", marker);
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	struct sbx *s = sbx_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(sbx_set_profile(s, c), 0);
	CU_ASSERT_EQUAL(sbx_set_argv(s, argv), 0);
	CU_ASSERT_EQUAL(sbx_set_cgroup(s, "/corral", "nojoin"), 0);
	if (geteuid() == 0)
		CU_ASSERT_EQUAL(sbx_set_ids(s, 65534, 65534, NULL, 0), 0);
	memset(&err, 0, sizeof(err));
	CU_ASSERT_EQUAL(sbx_spawn(s, &ch, &err), -ENOENT);
	CU_ASSERT_PTR_NULL(ch);
	CU_ASSERT_STRING_EQUAL(err.step, "cgroup");
	CU_ASSERT_EQUAL(err.error, ENOENT);
	CU_ASSERT_PTR_NOT_NULL(
	        strstr(err.message, SBX_HAVE_CLONE_VM ? "opening cgroup.procs" : "joining"));
	CU_ASSERT_FALSE(exists(marker));
	snprintf(leaf, sizeof(leaf), "%s/corral/nojoin", root);
	CU_ASSERT_FALSE(exists(leaf));
	sbx_free(s);
	sbx_compiled_free(c);
}

#if SBX_HAVE_CLONE_VM
/*
 * The CLONE_VM spawn cannot map the child's stack (address space limit just above what the
 * process uses): refused with ENOMEM, nothing runs. Runs in a forked child so the limit
 * stays there. (No spawn in this process has succeeded before, so the child has no cached
 * stack to fall back on: the tests above all fail before clone3.)
 */
static void test_spawn_vm_stack_enomem(void)
{
	char err_text[256] = "";
	struct sbx_features f;
	struct sbx_compiled *c = NULL;

	if (sbx_features_probe(&f) < 0)
		HARNESS_SKIP("feature probe failed");
	/* no limits: an unprivileged run goes on without its session cgroup */
	if (!(c = strict_on(&f, false, NULL, err_text, sizeof(err_text))))
		HARNESS_SKIP("the strict profile does not compile on this host: %s", err_text);
	int pfd[2];
	CU_ASSERT_EQUAL_FATAL(pipe2(pfd, O_CLOEXEC), 0);
	fflush(NULL);
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct sbx_error err;
		struct sbx_child *ch = NULL;
		const char *argv[] = {"/bin/true", NULL};
		struct sbx *s = sbx_new();
		unsigned long pages = 0;
		FILE *statm = fopen("/proc/self/statm", "re");
		memset(&err, 0, sizeof(err));
		if (!s || !statm || fscanf(statm, "%lu", &pages) != 1 ||
		    sbx_set_profile(s, c) < 0 || sbx_set_argv(s, argv) < 0 ||
		    (geteuid() == 0 && sbx_set_ids(s, 65534, 65534, NULL, 0) < 0))
			_exit(2);
		fclose(statm);
		/* room for the small allocations of the plan, not for a 128 KiB stack */
		struct rlimit rl = {.rlim_cur = pages * 4096 + SBX_VM_STACK / 2,
		                    .rlim_max = RLIM_INFINITY};
		if (setrlimit(RLIMIT_AS, &rl) < 0)
			_exit(3);
		int r = sbx_spawn(s, &ch, &err);
		if (write(pfd[1], &err, sizeof(err)) != (ssize_t)sizeof(err))
			_exit(4);
		_exit(r == -ENOMEM && !ch ? 0 : 5);
	}
	close(pfd[1]);
	struct sbx_error err;
	memset(&err, 0, sizeof(err));
	CU_ASSERT_EQUAL(read(pfd[0], &err, sizeof(err)), (ssize_t)sizeof(err));
	close(pfd[0]);
	int st = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		printf("\n    child exit %d, step %s: %s", WEXITSTATUS(st), err.step, err.message);
	CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CU_ASSERT_EQUAL(err.error, ENOMEM);
	CU_ASSERT_STRING_EQUAL(err.step, "clone3");
	sbx_compiled_free(c);
}
#endif

/* A caller in more than SBX_GROUPS_MAX groups: getgroups() fails, the spawn is refused
 * (never run with a truncated group list). Needs root for setgroups(). */
static void test_spawn_caller_too_many_groups(void)
{
	char err_text[256] = "";
	if (geteuid() != 0)
		HARNESS_SKIP("needs root (setgroups with more than %d groups)", SBX_GROUPS_MAX);
	struct sbx_compiled *c = host_profile(NULL, NULL, err_text, sizeof(err_text));
	if (!c)
		HARNESS_SKIP("the strict profile does not compile on this host: %s", err_text);
	int pfd[2];
	CU_ASSERT_EQUAL_FATAL(pipe2(pfd, O_CLOEXEC), 0);
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		gid_t groups[SBX_GROUPS_MAX + 6];
		for (size_t i = 0; i < SBX_GROUPS_MAX + 6; i++)
			groups[i] = (gid_t)(70000 + i);
		struct sbx_error err;
		struct sbx_child *ch = NULL;
		const char *argv[] = {"/bin/true", NULL};
		struct sbx *s = sbx_new();
		memset(&err, 0, sizeof(err));
		if (!s || setgroups(SBX_GROUPS_MAX + 6, groups) < 0 || sbx_set_profile(s, c) < 0 ||
		    sbx_set_argv(s, argv) < 0)
			_exit(2);
		int r = sbx_spawn(s, &ch, &err);
		if (write(pfd[1], &err, sizeof(err)) != (ssize_t)sizeof(err))
			_exit(3);
		_exit(r == -EINVAL && !ch ? 0 : 4);
	}
	close(pfd[1]);
	struct sbx_error err;
	memset(&err, 0, sizeof(err));
	CU_ASSERT_EQUAL(read(pfd[0], &err, sizeof(err)), (ssize_t)sizeof(err));
	close(pfd[0]);
	int st = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CU_ASSERT_STRING_EQUAL(err.step, "credentials");
	CU_ASSERT_EQUAL(err.error, EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "getgroups"));
	sbx_compiled_free(c);
}

/* sbx_set_landlock_audit on a Landlock ABI older than 7 (the host's probe with the ABI
 * lowered to 6): refused at the landlock step before anything runs; the setter's -EINVAL. */
static void test_spawn_landlock_audit_old_abi(void)
{
	struct sbx_features f;
	struct sbx_compiled *c = NULL;
	char err_text[256] = "";
	CU_ASSERT_EQUAL(sbx_set_landlock_audit(NULL, true), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(sbx_features_probe(&f), 0);
	if (f.landlock_abi < 6)
		HARNESS_SKIP("Landlock ABI %d on this host (the test lowers 6+ to 6)",
		             f.landlock_abi);
	f.landlock_abi = 6;
	f.cgroup_v2 = false;
	f.cgroup_v1_controllers = 0;
	if (!(c = strict_on(&f, false, NULL, err_text, sizeof(err_text))))
		HARNESS_SKIP("the strict profile does not compile at ABI 6: %s", err_text);
	const char *argv[] = {"/bin/true", NULL};
	struct sbx *s = sbx_new();
	struct sbx_child *ch = NULL;
	struct sbx_error err;
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(sbx_set_profile(s, c), 0);
	CU_ASSERT_EQUAL(sbx_set_argv(s, argv), 0);
	if (geteuid() == 0)
		CU_ASSERT_EQUAL(sbx_set_ids(s, 65534, 65534, NULL, 0), 0);
	CU_ASSERT_EQUAL(sbx_set_landlock_audit(s, true), 0);
	memset(&err, 0, sizeof(err));
	CU_ASSERT_EQUAL(sbx_spawn(s, &ch, &err), -ENOTSUP);
	CU_ASSERT_PTR_NULL(ch);
	CU_ASSERT_STRING_EQUAL(err.step, "landlock");
	CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "ABI 7"));
	sbx_free(s);
	sbx_compiled_free(c);
}

static const struct harness_test tests[] = {
        {"cgroup_create_ok_and_kill", test_cgroup_create_ok_and_kill},
        {"cgroup_create_failures", test_cgroup_create_failures},
        {"cgroup_v1_failure_undoes_v2", test_cgroup_v1_failure_undoes_v2},
        {"ns_write_maps_errors", test_ns_write_maps_errors},
        {"landlock_plan_merges", test_landlock_plan_merges},
        {"landlock_plan_errors", test_landlock_plan_errors},
        {"spawn_cgroup_join_fails", test_spawn_cgroup_join_fails},
#if SBX_HAVE_CLONE_VM
        {"spawn_vm_stack_enomem", test_spawn_vm_stack_enomem},
#endif
        {"spawn_cgroup_refused", test_spawn_cgroup_refused},
        {"spawn_caller_too_many_groups", test_spawn_caller_too_many_groups},
        {"spawn_landlock_audit_old_abi", test_spawn_landlock_audit_old_abi},
        {NULL, NULL},
};

int main(int argc, char **argv)
{
	static const struct harness_suite suites[] = {
	        {"sandbox_errors", suite_init, suite_cleanup, tests},
	        {NULL, NULL, NULL, NULL},
	};
	return harness_main(argc, argv, suites);
}
