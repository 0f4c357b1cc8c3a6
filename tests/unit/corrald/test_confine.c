// SPDX-License-Identifier: Apache-2.0
/*
 * Self-confinement of corrald's helpers (confine.h), in forked children: the Landlock ruleset
 * allows exactly the listed paths (write only where asked, no execute, no signals outside);
 * dropping capabilities leaves none; every -errno path, driven by seccomp denials.
 */
#include "confine.h"
#include "deny.h"
#include "harness.h"
#include "landlock_abi.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *g_dir;
static char g_rw[600], g_other[600], g_ro_file[600];

static int setup(void)
{
	g_dir = harness_mkdtemp("confine");
	if (!g_dir)
		return -1;
	snprintf(g_rw, sizeof(g_rw), "%s/rw", g_dir);
	snprintf(g_other, sizeof(g_other), "%s/other", g_dir);
	snprintf(g_ro_file, sizeof(g_ro_file), "%s/other/ro", g_dir);
	if (mkdir(g_rw, 0755) < 0 || mkdir(g_other, 0755) < 0)
		return -1;
	int fd = open(g_ro_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, "x", 1) != 1)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void)
{
	harness_rm_rf(g_dir);
	free(g_dir);
	return 0;
}

/* Runs fn in a child; its return value (0 = every check held, else the failed check's
 * number) is the exit status. */
static int in_child(int (*fn)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(fn());
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int landlock_abi(void)
{
	return (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
}

static int open_errno(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return errno;
}

static int child_landlock(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return 1;
	const struct cd_confine_path paths[] = {
	        {g_rw, true}, {g_ro_file, false}, {"/nonexistent/corral-confine", false}};
	if (cd_confine_landlock(paths, 3, 0) != 0)
		return 2;
	char p[700], q[700];
	snprintf(p, sizeof(p), "%s/new", g_rw);
	snprintf(q, sizeof(q), "%s/renamed", g_rw);
	if (open_errno(p, O_WRONLY | O_CREAT) != 0 || rename(p, q) < 0 || unlink(q) < 0)
		return 3; /* create, rename within, remove: allowed in the writable directory */
	if (open_errno(g_ro_file, O_RDONLY) != 0)
		return 4;
	if (open_errno(g_ro_file, O_WRONLY) != EACCES)
		return 5;
	snprintf(p, sizeof(p), "%s/new", g_other);
	if (open_errno(p, O_WRONLY | O_CREAT) != EACCES)
		return 6;
	if (open_errno("/etc/passwd", O_RDONLY) != EACCES)
		return 7;
	char *const argv[] = {(char *)"true", NULL};
	execv("/bin/true", argv);
	if (errno != EACCES)
		return 8;
	/* ABI 6 scopes signals: the test runner is outside the domain */
	if (landlock_abi() >= 6 && (kill(getppid(), 0) == 0 || errno != EPERM))
		return 9;
	return 0;
}

static void test_landlock(void)
{
	if (landlock_abi() <= 0) {
		harness_skip("the kernel has no Landlock");
		return;
	}
	CU_ASSERT_EQUAL(in_child(child_landlock), 0);
}

static int child_caps(void)
{
	if (cd_confine_drop_caps() != 0)
		return 1;
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return 2;
	char line[256];
	int bad = 3;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "CapEff:\t", 8) == 0)
			bad = strcmp(line + 8, "0000000000000000\n") == 0 ? 0 : 4;
	fclose(f);
	if (bad)
		return bad;
	/* uid 0 still owns its files, but chown needs CAP_CHOWN */
	if (chown(g_ro_file, 1, 1) == 0 || errno != EPERM)
		return 5;
	return 0;
}

static void test_drop_caps(void)
{
	if (!harness_is_root()) {
		harness_skip("needs root (capabilities to drop)");
		return;
	}
	CU_ASSERT_EQUAL(in_child(child_caps), 0);
}

#define ARG(n, v) SCMP_A##n(SCMP_CMP_EQ, (scmp_datum_t)(v))

static const struct cd_confine_path g_one[] = {{"/usr", false}};

static int call_landlock(void)
{
	return cd_confine_landlock(g_one, 1, 0);
}

static int call_landlock_port(void)
{
	return cd_confine_landlock(NULL, 0, 443);
}

static int call_drop_caps(void)
{
	return cd_confine_drop_caps();
}

/* One -errno path: under denial `d`, `call` returns `want`. */
struct errno_case {
	struct deny d;
	int (*call)(void);
	int want;
};

static const struct errno_case *g_case;

static int child_case(void)
{
	if (install_denials(&g_case->d, 1) < 0)
		return 1;
	return g_case->call() == g_case->want ? 0 : 2;
}

static void run_case(const struct errno_case *c)
{
	g_case = c;
	CU_ASSERT_EQUAL(in_child(child_case), 0);
}

static void test_errno_paths(void)
{
	/* rule type 1 = LANDLOCK_RULE_PATH_BENEATH, 2 = LANDLOCK_RULE_NET_PORT (ABI 4) */
	static const struct errno_case no_landlock = {
	        {SCMP_SYS(landlock_create_ruleset), ENOSYS, 0, {}}, call_landlock, -EOPNOTSUPP};
	static const struct errno_case capset = {
	        {SCMP_SYS(capset), EPERM, 0, {}}, call_drop_caps, -EPERM};
	static const struct errno_case ambient = {
	        {SCMP_SYS(prctl), EPERM, 1, {ARG(0, PR_CAP_AMBIENT)}}, call_drop_caps, -EPERM};
	static const struct errno_case restrict_self = {
	        {SCMP_SYS(landlock_restrict_self), EPERM, 0, {}}, call_landlock, -EPERM};
	static const struct errno_case path_rule = {
	        {SCMP_SYS(landlock_add_rule), EINVAL, 1, {ARG(1, 1)}}, call_landlock, -EINVAL};
	static const struct errno_case port_rule = {
	        {SCMP_SYS(landlock_add_rule), EINVAL, 1, {ARG(1, 2)}}, call_landlock_port, -EINVAL};
	run_case(&no_landlock);
	run_case(&capset);
	run_case(&ambient);
	if (landlock_abi() <= 0) {
		harness_skip("the kernel has no Landlock: ruleset errors not reachable");
		return;
	}
	/* a path that cannot be opened for a reason other than absence */
	char longpath[PATH_MAX + 16];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	const struct cd_confine_path bad[] = {{longpath, false}};
	CU_ASSERT_EQUAL(cd_confine_landlock(bad, 1, 0), -ENAMETOOLONG);
	run_case(&restrict_self);
	run_case(&path_rule);
	if (landlock_abi() >= 4) {
		run_case(&port_rule);
	} else {
		harness_skip("Landlock ABI < 4: no network rules");
	}
}

int main(int argc, char **argv)
{
	static const struct harness_test tests[] = {
	        {"landlock", test_landlock},
	        {"drop_caps", test_drop_caps},
	        {"errno_paths", test_errno_paths},
	        {NULL, NULL},
	};
	static const struct harness_suite suites[] = {
	        {"confine", setup, teardown, tests},
	        {NULL, NULL, NULL, NULL},
	};
	return harness_main(argc, argv, suites);
}
