/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The escape suite runner (label privileged): runs each esc_* program inside the strict
 * profile (schema/examples/strict-coding-agent.json compiled by the policy compiler; the test
 * programs' directory is added to its execute set) as an unprivileged user, in the process tier and
 * again in the namespace tier, and asserts containment. A program exits 0 only when every attempt
 * failed with the expected error; seccomp-level classes must also have been reported through the
 * notify fd, as corrald would see them. Each outcome is printed.
 */
#include <pty.h>
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "sbx_test_profile.h"
#include "sbx_test_run.h"

static struct sbx_test_dirs dirs;
static struct sbx_features features;
static struct sbx_compiled *strict[2]; /* process tier, namespace tier */
static pid_t outside_pid = -1;
static int abstract_fd = -1, leaked_fd = -1, pty_master = -1, pty_slave = -1;
static char abstract_name[64];
static bool ready;
static char skip_reason[256];

static int setup(void)
{
	char err[256];
	int r;

	if (!sbx_test_host_ready(&features, skip_reason, sizeof(skip_reason)))
		return 0;
	if (sbx_test_dirs_setup(&dirs) < 0)
		return -1;
	/* copy the escape programs where the session may execute them */
	const char *names[] = {"esc_write_outside",   "esc_links",       "esc_proc_root",
	                       "esc_io_uring",        "esc_memfd_exec",  "esc_ldso",
	                       "esc_compat_syscalls", "esc_mount_api",   "esc_userns",
	                       "esc_ptrace",          "esc_kill",        "esc_abstract_unix",
	                       "esc_tiocsti",         "esc_inherited_fd"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char from[512], to[512];
		snprintf(from, sizeof(from), "%s/tests/escape/%s", harness_binary_dir(), names[i]);
		snprintf(to, sizeof(to), "%s/%s", dirs.bin, names[i]);
		if (sbx_test_copy(from, to, 0755) < 0) {
			fprintf(stderr, "cannot copy %s\n", from);
			return -1;
		}
	}
	char policy_path[512];
	snprintf(policy_path, sizeof(policy_path), "%s/schema/examples/strict-coding-agent.json",
	         harness_source_dir());
	for (int tier = 0; tier < 2; tier++) {
		Corral__Policy *pol = NULL;
		Corral__Profile *p = sbx_test_policy_profile(policy_path, dirs.bin, "ESC_*", &pol);
		if (!p)
			return -1;
		if (tier == 1)
			p->process->isolation = CORRAL__ISOLATION__ISOLATION_NAMESPACE;
		r = sbx_compile_profile(p, &features, &strict[tier], err, sizeof(err));
		corral__policy__free_unpacked(pol, NULL);
		if (r < 0) {
			fprintf(stderr, "compile strict profile: %s\n", err);
			return -1;
		}
	}
	/* an outside process of the same user, for kill/ptrace attempts */
	outside_pid = fork();
	if (outside_pid == 0) {
		if (setresgid(SBX_TEST_GID, SBX_TEST_GID, SBX_TEST_GID) < 0 ||
		    setresuid(SBX_TEST_UID, SBX_TEST_UID, SBX_TEST_UID) < 0)
			_exit(1);
		for (;;)
			pause();
	}
	/* an abstract socket served outside */
	snprintf(abstract_name, sizeof(abstract_name), "corral-esc-%d", (int)getpid());
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path + 1, abstract_name, strlen(abstract_name));
	abstract_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (abstract_fd < 0 ||
	    bind(abstract_fd, (struct sockaddr *)&sa,
	         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(abstract_name))) <
	            0 ||
	    listen(abstract_fd, 4) < 0)
		return -1;
	/* an fd the launcher "forgets" to close: open, no CLOEXEC, on the denied tree */
	leaked_fd = open(dirs.secret, O_RDONLY);
	if (leaked_fd < 0 || openpty(&pty_master, &pty_slave, NULL, NULL, NULL) < 0)
		return -1;
	ready = true;
	return 0;
}

static int suite_cleanup(void)
{
	if (outside_pid > 0) {
		kill(outside_pid, SIGKILL);
		waitpid(outside_pid, NULL, 0);
	}
	for (int tier = 0; tier < 2; tier++)
		sbx_compiled_free(strict[tier]);
	if (dirs.base[0])
		harness_rm_rf(dirs.base);
	return 0;
}

/* CUnit does not call the cleanup of a suite whose init failed: do it here. */
static int suite_init(void)
{
	int r = setup();

	if (r < 0)
		suite_cleanup();
	return r;
}

/* Runs one escape program in one tier; asserts it was contained. */
static void run_escape(const char *name, int tier, bool expect_report)
{
	char bin[512], e_home[400], e_secret[400], e_tmp[400], e_outside[400], e_denied[400],
	        e_bin[400], e_pid[64], e_abs[128];
	struct sbx_test_outcome o;

	snprintf(bin, sizeof(bin), "%s/%s", dirs.bin, name);
	snprintf(e_home, sizeof(e_home), "ESC_HOME=%s", dirs.home);
	snprintf(e_secret, sizeof(e_secret), "ESC_SECRET=%s", dirs.secret);
	snprintf(e_tmp, sizeof(e_tmp), "ESC_TMP=%s", tier ? "/tmp" : dirs.tmp);
	snprintf(e_outside, sizeof(e_outside), "ESC_OUTSIDE=%s", dirs.outside);
	snprintf(e_denied, sizeof(e_denied), "ESC_DENIED_DIR=%s", dirs.ssh);
	snprintf(e_bin, sizeof(e_bin), "ESC_DENIED_BIN=%s", dirs.denied_bin);
	snprintf(e_pid, sizeof(e_pid), "ESC_PID=%d", (int)outside_pid);
	snprintf(e_abs, sizeof(e_abs), "ESC_ABSTRACT=%s", abstract_name);
	const char *envp[] = {e_home,
	                      e_secret,
	                      e_tmp,
	                      e_outside,
	                      e_denied,
	                      e_bin,
	                      e_pid,
	                      e_abs,
	                      "PATH=/usr/bin:/bin",
	                      "UNRELATED_SECRET=must-not-pass",
	                      tier ? "ESC_NS=1" : NULL,
	                      NULL};
	const char *argv[] = {bin, NULL};
	int r = sbx_test_run_full(strict[tier], argv, envp, &dirs, pty_slave, NULL, &o);

	CU_ASSERT_EQUAL_FATAL(r, 0);
	bool contained = o.res.signal == 0 && o.res.exit_code == 0;
	printf("\n  escape %-20s tier=%-9s %s (exit %d, signal %d, %u reported via notify)\n", name,
	       tier ? "namespace" : "process", contained ? "CONTAINED" : "NOT CONTAINED",
	       o.res.exit_code, o.res.signal, o.violations);
	for (char *save = NULL, *l = strtok_r(o.output, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save))
		printf("    | %s\n", l);
	CU_ASSERT_TRUE(contained);
	if (expect_report)
		CU_ASSERT_TRUE(o.violations > 0);
}

#define ESCAPE_TEST(name, report, both_tiers)            \
	static void test_##name(void)                    \
	{                                                \
		if (!ready)                              \
			HARNESS_SKIP("%s", skip_reason); \
		run_escape(#name, 0, report);            \
		if (both_tiers)                          \
			run_escape(#name, 1, report);    \
	}

ESCAPE_TEST(esc_write_outside, false, true)
ESCAPE_TEST(esc_links, false, true)
ESCAPE_TEST(esc_proc_root, false, true)
ESCAPE_TEST(esc_io_uring, true, true)
ESCAPE_TEST(esc_memfd_exec, true, true)
ESCAPE_TEST(esc_ldso, false, true)
ESCAPE_TEST(esc_compat_syscalls, false, true)
ESCAPE_TEST(esc_mount_api, true, true)
ESCAPE_TEST(esc_userns, true, true)
/* the pid namespace hides outside processes entirely: these two run in the process tier */
ESCAPE_TEST(esc_ptrace, true, false)
ESCAPE_TEST(esc_kill, false, false)
ESCAPE_TEST(esc_abstract_unix, true, true)
ESCAPE_TEST(esc_tiocsti, true, true)
ESCAPE_TEST(esc_inherited_fd, false, true)

static const struct harness_test tests[] = {
        {"write_outside", test_esc_write_outside},
        {"links", test_esc_links},
        {"proc_root", test_esc_proc_root},
        {"io_uring", test_esc_io_uring},
        {"memfd_exec", test_esc_memfd_exec},
        {"ldso", test_esc_ldso},
        {"compat_syscalls", test_esc_compat_syscalls},
        {"mount_api", test_esc_mount_api},
        {"userns", test_esc_userns},
        {"ptrace", test_esc_ptrace},
        {"kill", test_esc_kill},
        {"abstract_unix", test_esc_abstract_unix},
        {"tiocsti", test_esc_tiocsti},
        {"inherited_fd", test_esc_inherited_fd},
        {NULL, NULL},
};

int main(int argc, char **argv)
{
	static const struct harness_suite suites[] = {
	        {"escape", suite_init, suite_cleanup, tests},
	        {NULL, NULL, NULL, NULL},
	};
	return harness_main(argc, argv, suites);
}
