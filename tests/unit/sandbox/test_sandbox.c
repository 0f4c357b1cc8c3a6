/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the sandbox engine that need no privileges: profile compilation against faked
 * host features (requires, degrade, layers), path template expansion, setter validation, the
 * compiled seccomp filter's behaviour (loaded in a forked child), notify error paths.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "harness.h"
#include "sbx_internal.h"
#include "sbx_test_profile.h"

static struct sbx_features full_features(void)
{
	struct sbx_features f = {
	        .landlock_abi = 7,
	        .seccomp = true,
	        .seccomp_notify = true,
	        .seccomp_log = true,
	        .user_namespaces = true,
	        .clone_into_cgroup = true,
	        .cgroup_v2 = true,
	        .cgroup_v2_kill = true,
	        .cgroup_v2_controllers = SBX_CG_MEMORY | SBX_CG_PIDS | SBX_CG_CPU,
	};
	snprintf(f.cgroup_v2_root, sizeof(f.cgroup_v2_root), "/sys/fs/cgroup");
	return f;
}

static bool has(const char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(list[i], s))
			return true;
	return false;
}

static int compile(const Corral__Profile *p, const struct sbx_features *f, struct sbx_compiled **c,
                   char *err)
{
	*c = NULL;
	return sbx_compile_profile(p, f, c, err, 256);
}

static void test_compile_full(void)
{
	struct sbx_test_profile tp;
	struct sbx_features f = full_features();
	struct sbx_compiled *c;
	char err[256];
	size_t n;

	CU_ASSERT_EQUAL_FATAL(compile(sbx_test_strict_profile(&tp, NULL), &f, &c, err), 0);
	const char *const *l = sbx_compiled_layers(c, &n);
	CU_ASSERT_TRUE(has(l, n, "landlock:abi7"));
	CU_ASSERT_TRUE(has(l, n, "landlock:scope:signal,abstract-unix"));
	CU_ASSERT_TRUE(has(l, n, "seccomp:baseline"));
	CU_ASSERT_TRUE(has(l, n, "seccomp:arch"));
	CU_ASSERT_TRUE(has(l, n, "seccomp:notify"));
	CU_ASSERT_TRUE(has(l, n, "cgroup:v2:memory"));
	CU_ASSERT_TRUE(has(l, n, "cgroup:v2:pids"));
	CU_ASSERT_FALSE(sbx_compiled_audit(c));
	sbx_compiled_degraded(c, &n);
	CU_ASSERT_EQUAL(n, 0);
	/* the prologue: arch check first, then the x32 bit */
	CU_ASSERT_TRUE(c->bpf_len > 10);
	CU_ASSERT_EQUAL(c->bpf[0].code, BPF_LD | BPF_W | BPF_ABS);
	CU_ASSERT_EQUAL(c->bpf[1].k, 0xc000003eu); /* AUDIT_ARCH_X86_64 */
	CU_ASSERT_EQUAL(c->bpf[3].k, 0x40000000u);
	CU_ASSERT_TRUE(c->ll_handled_fs & LANDLOCK_ACCESS_FS_IOCTL_DEV);
	CU_ASSERT_FALSE(c->ll_write & (1ULL << 6)); /* MAKE_CHAR never granted */
	sbx_compiled_free(c);
}

static void test_compile_hybrid_v1(void)
{
	struct sbx_test_profile tp;
	struct sbx_features f = full_features();
	struct sbx_compiled *c;
	char err[256];
	size_t n;

	f.cgroup_v2_controllers = 0;
	f.cgroup_v1_controllers = SBX_CG_MEMORY | SBX_CG_PIDS;
	CU_ASSERT_EQUAL_FATAL(compile(sbx_test_strict_profile(&tp, NULL), &f, &c, err), 0);
	const char *const *l = sbx_compiled_layers(c, &n);
	CU_ASSERT_TRUE(has(l, n, "cgroup:v1:memory"));
	CU_ASSERT_TRUE(has(l, n, "cgroup:v1:pids"));
	CU_ASSERT_TRUE(has(l, n, "cgroup:v2:session"));
	CU_ASSERT_EQUAL(c->cg_v1, SBX_CG_MEMORY | SBX_CG_PIDS);
	CU_ASSERT_EQUAL(c->cg_v2, 0);
	sbx_compiled_free(c);
}

static void test_compile_requires(void)
{
	struct sbx_test_profile tp;
	struct sbx_features f = full_features();
	struct sbx_compiled *c;
	char err[256];
	Corral__Profile *p = sbx_test_strict_profile(&tp, NULL);

	tp.req.landlock_abi = 99;
	CU_ASSERT_EQUAL(compile(p, &f, &c, err), -ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "Landlock ABI 99"));
	CU_ASSERT_PTR_NULL(c);
	tp.req.landlock_abi = 0;

	char *ctl[] = {(char *)"memory"};
	tp.req.cgroup_controllers = ctl;
	tp.req.n_cgroup_controllers = 1;
	f.cgroup_v2_controllers = 0;
	CU_ASSERT_EQUAL(compile(p, &f, &c, err), -ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "memory"));
	char *bad[] = {(char *)"blkio"};
	tp.req.cgroup_controllers = bad;
	CU_ASSERT_EQUAL(compile(p, &f, &c, err), -EINVAL);
	tp.req.n_cgroup_controllers = 0;

	f = full_features();
	f.seccomp = false;
	CU_ASSERT_EQUAL(compile(p, &f, &c, err), -ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "seccomp"));

	f = full_features();
	f.cgroup_v2 = false;
	tp.req.bpf_network = true;
	CU_ASSERT_EQUAL(compile(p, &f, &c, err), -ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "BPF"));
	tp.req.bpf_network = false;

	f = full_features();
	f.user_namespaces = false;
	tp.req.user_namespaces = true;
	CU_ASSERT_EQUAL(compile(p, &f, &c, err), -ENOTSUP);
	tp.req.user_namespaces = false;
	tp.proc.isolation = CORRAL__ISOLATION__ISOLATION_NAMESPACE;
	CU_ASSERT_EQUAL(compile(p, &f, &c, err), -ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "namespace"));
}

static void test_compile_degrade(void)
{
	struct sbx_test_profile tp;
	struct sbx_features f = full_features();
	struct sbx_compiled *c;
	char err[256];
	size_t n;
	Corral__Profile *p = sbx_test_strict_profile(&tp, NULL);

	tp.req.landlock_abi = 0;
	/* no Landlock at all: never fails open */
	f.landlock_abi = 0;
	CU_ASSERT_EQUAL(compile(p, &f, &c, err), -ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "Landlock is unavailable"));
	tp.deg.landlock_partial = true;
	CU_ASSERT_EQUAL(compile(p, &f, &c, err), -ENOTSUP);
	tp.deg.landlock_partial = false;

	/* an older ABI: refused unless partial is allowed, then reported */
	f.landlock_abi = 3;
	CU_ASSERT_EQUAL(compile(p, &f, &c, err), -ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "ioctl_dev"));
	tp.deg.landlock_partial = true;
	CU_ASSERT_EQUAL_FATAL(compile(p, &f, &c, err), 0);
	const char *const *d = sbx_compiled_degraded(c, &n);
	CU_ASSERT_TRUE(has(d, n, "landlock:partial (abi3"));
	CU_ASSERT_FALSE(c->ll_handled_fs & LANDLOCK_ACCESS_FS_IOCTL_DEV);
	CU_ASSERT_EQUAL(c->ll_scoped, 0);
	sbx_compiled_free(c);

	/* missing controllers: refused unless degrade.resources */
	f = full_features();
	f.cgroup_v2_controllers = 0;
	CU_ASSERT_EQUAL(compile(p, &f, &c, err), -ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "degrade.resources"));
	tp.deg.resources = true;
	CU_ASSERT_EQUAL_FATAL(compile(p, &f, &c, err), 0);
	d = sbx_compiled_degraded(c, &n);
	CU_ASSERT_TRUE(has(d, n, "cgroup:memory (no controller)"));
	CU_ASSERT_TRUE(has(d, n, "cgroup:pids (no controller)"));
	sbx_compiled_free(c);

	/* no notify: still enforced with EPERM, but the report gap is stated */
	f = full_features();
	f.seccomp_notify = false;
	CU_ASSERT_EQUAL_FATAL(compile(p, &f, &c, err), 0);
	const char *const *l = sbx_compiled_layers(c, &n);
	CU_ASSERT_TRUE(has(l, n, "seccomp:errno"));
	d = sbx_compiled_degraded(c, &n);
	CU_ASSERT_TRUE(has(d, n, "seccomp:notify (unavailable"));
	sbx_compiled_free(c);
}

static void test_compile_modes(void)
{
	struct sbx_test_profile tp;
	struct sbx_features f = full_features();
	struct sbx_compiled *c;
	char err[256];
	size_t n;
	Corral__Profile *p = sbx_test_strict_profile(&tp, NULL);

	tp.profile.mode = CORRAL__MODE__MODE_AUDIT;
	CU_ASSERT_EQUAL_FATAL(compile(p, &f, &c, err), 0);
	CU_ASSERT_TRUE(sbx_compiled_audit(c));
	CU_ASSERT_TRUE(c->seccomp_notify_continue);
	CU_ASSERT_EQUAL(c->landlock_abi, 0);
	const char *const *l = sbx_compiled_layers(c, &n);
	CU_ASSERT_TRUE(has(l, n, "mode:audit"));
	const char *const *d = sbx_compiled_degraded(c, &n);
	CU_ASSERT_TRUE(has(d, n, "landlock (skipped: audit mode"));
	sbx_compiled_free(c);

	tp.profile.mode = CORRAL__MODE__MODE_ENFORCE;
	tp.sys.action = CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_KILL;
	CU_ASSERT_EQUAL_FATAL(compile(p, &f, &c, err), 0);
	l = sbx_compiled_layers(c, &n);
	CU_ASSERT_TRUE(has(l, n, "seccomp:kill"));
	CU_ASSERT_FALSE(c->seccomp_notify);
	sbx_compiled_free(c);

	tp.sys.action = CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_LOG;
	CU_ASSERT_EQUAL_FATAL(compile(p, &f, &c, err), 0);
	CU_ASSERT_TRUE(c->seccomp_notify_continue);
	sbx_compiled_free(c);

	tp.sys.action = CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_ERRNO;
	tp.sys.baseline_disabled = true;
	CU_ASSERT_EQUAL_FATAL(compile(p, &f, &c, err), 0);
	d = sbx_compiled_degraded(c, &n);
	CU_ASSERT_TRUE(has(d, n, "seccomp:baseline (disabled by policy)"));
	sbx_compiled_free(c);
}

static void test_compile_invalid(void)
{
	struct sbx_test_profile tp;
	struct sbx_features f = full_features();
	struct sbx_compiled *c;
	char err[256];
	Corral__Profile *p = sbx_test_strict_profile(&tp, NULL);

	tp.sys_deny[tp.sys.n_deny++] = (char *)"no_such_syscall";
	CU_ASSERT_EQUAL(compile(p, &f, &c, err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "no_such_syscall"));
	tp.sys.n_deny = 0;

	const char *bad[] = {"relative/path", "${FOO}/x", "/a/../b",
	                     "/a/./b",        "${HOME}x", "/a/${HOME}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tp.read[0] = (char *)bad[i];
		CU_ASSERT_EQUAL(compile(p, &f, &c, err), -EINVAL);
	}
	tp.read[0] = (char *)"/usr";
	tp.deny[0] = (char *)"../etc";
	CU_ASSERT_EQUAL(compile(p, &f, &c, err), -EINVAL);
	CU_ASSERT_EQUAL(sbx_compile_profile(NULL, &f, &c, err, sizeof(err)), -EINVAL);
}

static void test_expand(void)
{
	char *out = NULL;
	size_t follow = 0;

	CU_ASSERT_EQUAL(sbx_expand("${HOME}/src", "/home/u", "/w", "/t", &out, &follow), 0);
	CU_ASSERT_STRING_EQUAL(out, "/home/u/src");
	CU_ASSERT_EQUAL(follow, strlen("/home/u"));
	free(out);
	CU_ASSERT_EQUAL(sbx_expand("${TMP}", "/home/u", "/w", "/t", &out, &follow), 0);
	CU_ASSERT_STRING_EQUAL(out, "/t");
	free(out);
	CU_ASSERT_EQUAL(sbx_expand("/usr//lib/", NULL, NULL, NULL, &out, &follow), 0);
	CU_ASSERT_STRING_EQUAL(out, "/usr/lib");
	CU_ASSERT_EQUAL(follow, strlen("/usr/lib"));
	free(out);
	CU_ASSERT_EQUAL(sbx_expand("${WORKDIR}/x", "/h", NULL, "/t", &out, &follow), -ENOENT);
	CU_ASSERT_EQUAL(sbx_expand("${NOPE}/x", "/h", "/w", "/t", &out, &follow), -EINVAL);
}

static void test_setters(void)
{
	struct sbx *s = sbx_new();
	const char *empty[] = {NULL};
	const char *ok[] = {"/bin/true", NULL};
	gid_t groups[SBX_GROUPS_MAX + 1] = {0};
	uint16_t ports[1025] = {0};
	struct sbx_child *ch = NULL;
	struct sbx_error err;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(sbx_set_argv(s, NULL), -EINVAL);
	CU_ASSERT_EQUAL(sbx_set_argv(s, empty), -EINVAL);
	CU_ASSERT_EQUAL(sbx_set_argv(s, ok), 0);
	CU_ASSERT_EQUAL(sbx_set_profile(s, NULL), -EINVAL);
	CU_ASSERT_EQUAL(sbx_set_vars(s, "relative", NULL, NULL), -EINVAL);
	CU_ASSERT_EQUAL(sbx_set_vars(s, "/home/../etc", NULL, NULL), -EINVAL);
	CU_ASSERT_EQUAL(sbx_set_vars(s, "/home/u/..", NULL, NULL), -EINVAL);
	CU_ASSERT_EQUAL(sbx_set_vars(s, "/home/u/", "/w", NULL), 0);
	CU_ASSERT_EQUAL(sbx_set_cwd(s, "x"), -EINVAL);
	CU_ASSERT_EQUAL(sbx_set_cwd(s, NULL), -EINVAL);
	CU_ASSERT_EQUAL(sbx_set_ids(s, 1, 1, groups, SBX_GROUPS_MAX + 1), -E2BIG);
	CU_ASSERT_EQUAL(sbx_set_ids(s, 1, 1, NULL, 2), -EINVAL);
	CU_ASSERT_EQUAL(sbx_set_ids(s, 1, 1, groups, 2), 0);
	CU_ASSERT_EQUAL(sbx_set_stdio(s, -2, 1, 2), -EINVAL);
	CU_ASSERT_EQUAL(sbx_set_stdio(s, -1, 1, 2), 0);
	CU_ASSERT_EQUAL(sbx_set_cgroup(s, "corral", "../escape"), -EINVAL);
	CU_ASSERT_EQUAL(sbx_set_cgroup(s, "../x", "s1"), -EINVAL);
	CU_ASSERT_EQUAL(sbx_set_cgroup(s, "corral/", "s1"), -EINVAL);
	CU_ASSERT_EQUAL(sbx_set_cgroup(s, "corral", "a/b"), -EINVAL);
	CU_ASSERT_EQUAL(sbx_set_cgroup(s, "/corral/sessions", "s-1.x"), 0);
	CU_ASSERT_EQUAL(sbx_set_landlock_tcp_ports(s, ports, 1025, NULL, 0), -E2BIG);
	CU_ASSERT_EQUAL(sbx_set_landlock_tcp_ports(s, NULL, 1, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(sbx_set_landlock_tcp_ports(s, ports, 1, ports, 1), 0);
	/* no profile: refused before anything happens */
	CU_ASSERT_EQUAL(sbx_spawn(s, &ch, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.step, "prepare");
	CU_ASSERT_PTR_NULL(ch);
	sbx_free(s);
	sbx_free(NULL);
	sbx_compiled_free(NULL);
	sbx_child_free(NULL);
}

static void test_tcp_ports_need_abi4(void)
{
	struct sbx_test_profile tp;
	struct sbx_features f = full_features();
	struct sbx_compiled *c;
	struct sbx *s = sbx_new();
	struct sbx_child *ch = NULL;
	struct sbx_error err;
	char e[256];
	uint16_t port = 443;
	const char *argv[] = {"/bin/true", NULL};

	f.landlock_abi = 3;
	tp.deg.landlock_partial = true;
	Corral__Profile *p = sbx_test_strict_profile(&tp, NULL);
	tp.deg.landlock_partial = true;
	tp.req.landlock_abi = 0;
	CU_ASSERT_EQUAL_FATAL(compile(p, &f, &c, e), 0);
	sbx_set_profile(s, c);
	sbx_set_argv(s, argv);
	/* as root, run as nobody (the profile does not allow root); else as ourselves */
	if (getuid() == 0)
		sbx_set_ids(s, 65534, 65534, NULL, 0);
	else
		sbx_set_ids(s, getuid(), getgid(), NULL, 0);
	sbx_set_landlock_tcp_ports(s, &port, 1, NULL, 0);
	/* refused in planning, before any process or cgroup exists */
	CU_ASSERT_EQUAL(sbx_spawn(s, &ch, &err), -ENOTSUP);
	CU_ASSERT_STRING_EQUAL(err.step, "landlock");
	CU_ASSERT_PTR_NULL(ch);
	sbx_free(s);
	sbx_compiled_free(c);
}

/* Loads the compiled filter in a forked child and runs `fn` there; returns its wait status. */
static int in_filtered_child(const struct sbx_compiled *c, int (*fn)(void))
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		struct sock_fprog prog = {.len = (unsigned short)c->bpf_len, .filter = c->bpf};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
			_exit(100);
		_exit(fn());
	}
	waitpid(pid, &status, 0);
	return status;
}

static int try_personality(void)
{
	if (syscall(SYS_personality, 0xffffffffUL) < 0)
		return 1; /* the query must work */
	if (syscall(SYS_personality, 0UL) < 0)
		return 2;
	errno = 0;
	if (syscall(SYS_personality, (unsigned long)ADDR_NO_RANDOMIZE) >= 0 || errno != EPERM)
		return 3;
	/* the kernel reads an unsigned int: high bits must not sneak a change through */
	if (syscall(SYS_personality, 0x100000000UL | READ_IMPLIES_EXEC) >= 0 || errno != EPERM)
		return 4;
	return 0;
}

static int try_tiocsti(void)
{
	char ch = 'x';
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	errno = 0;
	if (syscall(SYS_ioctl, fd, 0x100000000UL | TIOCSTI, &ch) >= 0 || errno != EPERM)
		return 1;
	errno = 0;
	if (syscall(SYS_ioctl, fd, (unsigned long)TIOCSTI, &ch) >= 0 || errno != EPERM)
		return 2;
	/* an ordinary ioctl still reaches the kernel (ENOTTY from /dev/null) */
	errno = 0;
	if (syscall(SYS_ioctl, fd, (unsigned long)TCGETS, &ch) >= 0 || errno != ENOTTY)
		return 3;
	return 0;
}

static int try_x32(void)
{
	syscall(0x40000000 | 39);
	return 0;
}

static int try_clone3(void)
{
	errno = 0;
	return syscall(SYS_clone3, NULL, 0) < 0 && errno == ENOSYS ? 0 : 1;
}

static void test_filter_behaviour(void)
{
	struct sbx_test_profile tp;
	struct sbx_features f = full_features();
	struct sbx_compiled *c;
	char err[256];
	int st;

#ifdef CORRAL_SANITIZED
	HARNESS_SKIP("sanitizer runtimes make syscalls the filter is not written for");
#endif
	/* no notify here: the denials answer EPERM themselves (no supervisor in this test) */
	f.seccomp_notify = false;
	f.seccomp = sbx_features_probe(&(struct sbx_features){0}) == 0;
	CU_ASSERT_EQUAL_FATAL(compile(sbx_test_strict_profile(&tp, NULL), &f, &c, err), 0);
	st = in_filtered_child(c, try_personality);
	CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	st = in_filtered_child(c, try_tiocsti);
	CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	st = in_filtered_child(c, try_clone3);
	CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	st = in_filtered_child(c, try_x32);
	CU_ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS);
	sbx_compiled_free(c);
}

static void test_notify_errors(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	CU_ASSERT_EQUAL(sbx_notify_handle(-1, false, NULL, NULL), -EBADF);
	CU_ASSERT_EQUAL(sbx_notify_handle(fd, false, NULL, NULL), -ENOTTY);
	close(fd);
	CU_ASSERT_STRING_EQUAL(sbx_syscall_name(39), "getpid");
	CU_ASSERT_STRING_EQUAL(sbx_syscall_name(424242), "?");
}

static void test_features_probe(void)
{
	struct sbx_features f;

	CU_ASSERT_EQUAL(sbx_features_probe(&f), 0);
	printf("\n    landlock abi %d, seccomp %d notify %d, userns %d, cgroup v2 %d (%s) "
	       "controllers v2 %#x v1 %#x",
	       f.landlock_abi, f.seccomp, f.seccomp_notify, f.user_namespaces, f.cgroup_v2,
	       f.cgroup_v2_root, f.cgroup_v2_controllers, f.cgroup_v1_controllers);
	CU_ASSERT_TRUE(f.landlock_abi >= 0);
}

static const struct harness_test tests[] = {
        {"compile_full", test_compile_full},
        {"compile_hybrid_v1", test_compile_hybrid_v1},
        {"compile_requires", test_compile_requires},
        {"compile_degrade", test_compile_degrade},
        {"compile_modes", test_compile_modes},
        {"compile_invalid", test_compile_invalid},
        {"expand", test_expand},
        {"setters", test_setters},
        {"tcp_ports_need_abi4", test_tcp_ports_need_abi4},
        {"filter_behaviour", test_filter_behaviour},
        {"notify_errors", test_notify_errors},
        {"features_probe", test_features_probe},
        {NULL, NULL},
};

int main(int argc, char **argv)
{
	static const struct harness_suite suites[] = {
	        {"sandbox", NULL, NULL, tests},
	        {NULL, NULL, NULL, NULL},
	};
	return harness_main(argc, argv, suites);
}
