/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Privileged sandbox tests (root; skip with the reason otherwise): real sessions proving each
 * rule. Filesystem reads/writes allowed and denied with EACCES (Landlock), carve-outs, the
 * syscall baseline denied with EPERM and reported via notify, kill/log/audit actions, memory and
 * pids limits triggered and reported, exit codes and signals, an interactive pty, the namespace
 * tier, failing steps reported by name, the session kill, the environment allowlist and
 * Landlock TCP port rules.
 */
#include <grp.h>
#include <netinet/in.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "sbx_test_profile.h"
#include "sbx_test_run.h"

static struct sbx_test_dirs dirs;
static struct sbx_features features;
static char probe[300];
static bool ready;
static char skip_reason[256];

static int setup(void)
{
	char from[512];

	if (!sbx_test_host_ready(&features, skip_reason, sizeof(skip_reason)))
		return 0;
	if (sbx_test_dirs_setup(&dirs) < 0)
		return -1;
	snprintf(from, sizeof(from), "%s/tests/sbx_probe", harness_binary_dir());
	snprintf(probe, sizeof(probe), "%s/sbx_probe", dirs.bin);
	if (sbx_test_copy(from, probe, 0755) < 0)
		return -1;
	ready = true;
	return 0;
}

static int suite_cleanup(void)
{
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

#define REQUIRE_READY()                                  \
	do {                                             \
		if (!ready)                              \
			HARNESS_SKIP("%s", skip_reason); \
	} while (0)

/* Compiles the strict profile with optional tweaks. */
static struct sbx_compiled *strict(void (*tweak)(struct sbx_test_profile *))
{
	struct sbx_test_profile tp;
	struct sbx_compiled *c = NULL;
	char err[256];
	Corral__Profile *p = sbx_test_strict_profile(&tp, dirs.bin);

	if (tweak)
		tweak(&tp);
	if (sbx_compile_profile(p, &features, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "compile: %s\n", err);
		return NULL;
	}
	return c;
}

/* Runs the probe with one subcommand; returns its first output line in o->output. */
static void run_probe(struct sbx_compiled *c, const char *cmd, const char *arg,
                      struct sbx_test_outcome *o)
{
	const char *argv[] = {probe, cmd, arg, NULL};

	CU_ASSERT_EQUAL_FATAL(sbx_test_run(c, argv, &dirs, o), 0);
	o->output[strcspn(o->output, "\n")] = '\0';
}

static void expect_probe(struct sbx_compiled *c, const char *cmd, const char *arg, const char *want)
{
	struct sbx_test_outcome o;

	run_probe(c, cmd, arg, &o);
	printf("\n    probe %s %s -> %s (want %s)", cmd, arg, o.output, want);
	CU_ASSERT_STRING_EQUAL(o.output, want);
}

static void test_filesystem(void)
{
	char p[512];
	struct sbx_compiled *c;

	REQUIRE_READY();
	c = strict(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	snprintf(p, sizeof(p), "%s/existing.txt", dirs.work);
	expect_probe(c, "write", p, "OK"); /* ${WORKDIR} writable */
	snprintf(p, sizeof(p), "%s/new.txt", dirs.tmp);
	expect_probe(c, "create", p, "OK"); /* ${TMP} writable */
	snprintf(p, sizeof(p), "%s/notes.txt", dirs.home);
	expect_probe(c, "read", p, "OK");      /* ${HOME} readable */
	expect_probe(c, "write", p, "EACCES"); /* but not writable */
	expect_probe(c, "read", "/etc/hostname", "OK");
	expect_probe(c, "write", "/etc/hostname", "EACCES");
	snprintf(p, sizeof(p), "%s/x", dirs.outside);
	expect_probe(c, "create", p, "EACCES"); /* outside every rule */
	snprintf(p, sizeof(p), "%s/existing.txt", dirs.work);
	expect_probe(c, "exec", p, "EACCES"); /* ${WORKDIR} is not executable */
	sbx_compiled_free(c);
}

static void test_carve_out(void)
{
	char p[512];
	struct sbx_compiled *c;

	REQUIRE_READY();
	c = strict(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	expect_probe(c, "read", dirs.secret, "EACCES");     /* inside the carve-out */
	expect_probe(c, "listdir", dirs.ssh, "EACCES");     /* the denied directory itself */
	expect_probe(c, "exec", dirs.denied_bin, "EACCES"); /* nor its binaries */
	snprintf(p, sizeof(p), "%s/notes.txt", dirs.home);
	expect_probe(c, "read", p, "OK"); /* siblings stay readable */
	/* an ancestor of a carve-out gets no rule of its own: not listable, nothing new in it */
	expect_probe(c, "listdir", dirs.home, "EACCES");
	snprintf(p, sizeof(p), "%s/.aws", dirs.home);
	expect_probe(c, "create", p, "EACCES");
	sbx_compiled_free(c);
}

static void test_seccomp_notify(void)
{
	struct sbx_compiled *c;
	struct sbx_test_outcome o;

	REQUIRE_READY();
	c = strict(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	run_probe(c, "unshare", "", &o);
	CU_ASSERT_STRING_EQUAL(o.output, "EPERM");
	CU_ASSERT_EQUAL(o.violations, 1);
	CU_ASSERT_STRING_EQUAL(o.last_syscall, "unshare");
	bool notify = false;
	for (size_t i = 0; i < o.nlayers; i++)
		notify = notify || strcmp(o.layers[i], "seccomp:notify") == 0;
	CU_ASSERT_TRUE(notify);
	sbx_compiled_free(c);
}

static void tweak_kill(struct sbx_test_profile *t)
{
	t->sys.action = CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_KILL;
}

static void tweak_extra_deny(struct sbx_test_profile *t)
{
	t->sys_deny[t->sys.n_deny++] = (char *)"getppid";
	t->sys_deny[t->sys.n_deny++] = (char *)"socket";
}

static void test_seccomp_kill_and_additions(void)
{
	struct sbx_compiled *c;
	struct sbx_test_outcome o;

	REQUIRE_READY();
	c = strict(tweak_kill);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	run_probe(c, "unshare", "", &o);
	CU_ASSERT_EQUAL(o.res.signal, SIGSYS);
	sbx_compiled_free(c);

	/* the profile's additions are denied like the baseline */
	c = strict(tweak_extra_deny);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	run_probe(c, "connect", "1", &o);
	CU_ASSERT_STRING_EQUAL(o.output, "EPERM");
	CU_ASSERT_STRING_EQUAL(o.last_syscall, "socket");
	sbx_compiled_free(c);
}

static void tweak_audit(struct sbx_test_profile *t)
{
	t->profile.mode = CORRAL__MODE__MODE_AUDIT;
}

static void test_audit_mode(void)
{
	struct sbx_compiled *c;
	struct sbx_test_outcome o;
	size_t nd;

	REQUIRE_READY();
	c = strict(tweak_audit);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_TRUE(sbx_compiled_audit(c));
	/* nothing is denied... */
	run_probe(c, "unshare", "", &o);
	CU_ASSERT_STRING_EQUAL(o.output, "OK");
	/* ...but it is reported */
	CU_ASSERT_EQUAL(o.violations, 1);
	CU_ASSERT_STRING_EQUAL(o.last_syscall, "unshare");
	/* Landlock has no log-only mode: skipped, and the layers say so */
	run_probe(c, "read", dirs.secret, &o);
	CU_ASSERT_STRING_EQUAL(o.output, "OK");
	const char *const *d = sbx_compiled_degraded(c, &nd);
	CU_ASSERT_TRUE(nd >= 1 && strstr(d[0], "landlock") != NULL);
	sbx_compiled_free(c);
}

static void tweak_small(struct sbx_test_profile *t)
{
	t->res.memory_max_bytes = 32ull << 20;
	t->res.pids_max = 8;
	t->res.cpu_max_percent = 50;
}

static void test_resources(void)
{
	struct sbx_compiled *c;
	struct sbx_test_outcome o;

	REQUIRE_READY();
	if (!((features.cgroup_v2_controllers | features.cgroup_v1_controllers) & SBX_CG_MEMORY) ||
	    !((features.cgroup_v2_controllers | features.cgroup_v1_controllers) & SBX_CG_PIDS))
		HARNESS_SKIP("no memory/pids cgroup controller on this host");
	c = strict(tweak_small);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	/* memory: 128 MiB touched under a 32 MiB limit -> OOM kill, reported */
	run_probe(c, "alloc", "128", &o);
	printf("\n    alloc 128M under 32M: signal %d oom_kills %llu peak %llu", o.res.signal,
	       (unsigned long long)o.res.oom_kills, (unsigned long long)o.res.memory_peak_bytes);
	CU_ASSERT_EQUAL(o.res.signal, SIGKILL);
	CU_ASSERT_TRUE(o.res.oom_kills >= 1);
	CU_ASSERT_TRUE(o.res.memory_peak_bytes >= (16ull << 20));
	CU_ASSERT_TRUE(o.res.memory_peak_bytes <= (32ull << 20));
	/* within the limit it works and the peak is reported */
	run_probe(c, "alloc", "8", &o);
	CU_ASSERT_STRING_EQUAL(o.output, "OK");
	CU_ASSERT_EQUAL(o.res.oom_kills, 0);
	CU_ASSERT_TRUE(o.res.memory_peak_bytes >= (8ull << 20));
	/* pids: at most 8 tasks in the session */
	run_probe(c, "fork", "20", &o);
	printf("\n    fork 20 under pids.max 8: %s, pids_max_hits %llu", o.output,
	       (unsigned long long)o.res.pids_max_hits);
	CU_ASSERT_STRING_EQUAL(o.output, "forked 7 EAGAIN");
	CU_ASSERT_TRUE(o.res.pids_max_hits >= 1);
	/* CPU time is accounted */
	run_probe(c, "spin", "50", &o);
	CU_ASSERT_TRUE(o.res.cpu_usec > 0);
	sbx_compiled_free(c);
}

/* Reads the first line of dir/file into buf (newline stripped). */
static int read_line(const char *dir, const char *file, char *buf, size_t len)
{
	char path[1024];
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/*
 * While a session runs, its limits are in the files of the cgroups it is in (v2 where the
 * controller is on v2, else v1); after the session they are gone.
 */
static void test_limits_in_place(void)
{
	struct sbx_compiled *c;
	struct sbx *s;
	struct sbx_child *ch = NULL;
	struct sbx_error err;
	struct sbx_result res;
	const char *argv[] = {"/bin/sleep", "30", NULL};
	char path[256], line[512], dirs_seen[4][1024] = {{0}}, value[128];
	unsigned found = 0;
	FILE *f;

	REQUIRE_READY();
	c = strict(tweak_small);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	s = sbx_new();
	sbx_set_profile(s, c);
	sbx_set_argv(s, argv);
	sbx_set_ids(s, SBX_TEST_UID, SBX_TEST_GID, NULL, 0);
	sbx_set_vars(s, dirs.home, dirs.work, dirs.tmp);
	CU_ASSERT_EQUAL_FATAL(sbx_spawn(s, &ch, &err), 0);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)sbx_child_pid(ch));
	f = fopen(path, "re");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		c2[1 + strcspn(c2 + 1, "\n")] = '\0';
		const char *ctl = c1 + 1, *cg = c2 + 1;
		int slot = -1;
		const char *root = NULL;
		if (!ctl[0] && features.cgroup_v2) {
			slot = 0, root = features.cgroup_v2_root;
		} else if (strcmp(ctl, "memory") == 0 && features.cgroup_v1_memory[0]) {
			slot = 1, root = features.cgroup_v1_memory;
		} else if (strcmp(ctl, "pids") == 0 && features.cgroup_v1_pids[0]) {
			slot = 2, root = features.cgroup_v1_pids;
		} else if (strstr(ctl, "cpu") && !strstr(ctl, "cpuset") &&
		           features.cgroup_v1_cpu[0] && strcmp(ctl, "cpuacct") != 0) {
			slot = 3, root = features.cgroup_v1_cpu;
		}
		if (slot >= 0 && (size_t)snprintf(dirs_seen[slot], sizeof(dirs_seen[slot]), "%s%s",
		                                  root, cg) >= sizeof(dirs_seen[slot]))
			dirs_seen[slot][0] = '\0';
	}
	fclose(f);
	/* the session has its own v2 cgroup */
	CU_ASSERT_PTR_NOT_NULL(strstr(dirs_seen[0], "/corral/sbx-"));
	const struct {
		unsigned bit;
		int v1_slot;
		const char *v2_file, *v2_want, *v1_file, *v1_want;
	} checks[] = {
	        {SBX_CG_MEMORY, 1, "memory.max", "33554432", "memory.limit_in_bytes", "33554432"},
	        {SBX_CG_PIDS, 2, "pids.max", "8", "pids.max", "8"},
	        {SBX_CG_CPU, 3, "cpu.max", "50000 100000", "cpu.cfs_quota_us", "50000"},
	};
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		bool v2 = features.cgroup_v2_controllers & checks[i].bit;
		const char *dir = v2 ? dirs_seen[0] : dirs_seen[checks[i].v1_slot];
		const char *file = v2 ? checks[i].v2_file : checks[i].v1_file;
		if (!v2 && !(features.cgroup_v1_controllers & checks[i].bit))
			continue;
		CU_ASSERT_EQUAL(read_line(dir, file, value, sizeof(value)), 0);
		printf("\n    %s/%s = %s", dir, file, value);
		CU_ASSERT_STRING_EQUAL(value, v2 ? checks[i].v2_want : checks[i].v1_want);
		found++;
	}
	CU_ASSERT_TRUE(found > 0);
	CU_ASSERT_EQUAL(sbx_child_kill(ch), 0);
	CU_ASSERT_EQUAL(sbx_child_wait(ch, &res), 0);
	CU_ASSERT_EQUAL(res.signal, SIGKILL);
	/* waited for: emptied but still there (the caller reports first); freed: removed */
	for (int i = 0; i < 4; i++)
		if (dirs_seen[i][0] && strstr(dirs_seen[i], "/corral/sbx-"))
			CU_ASSERT_EQUAL(access(dirs_seen[i], F_OK), 0);
	sbx_child_free(ch);
	for (int i = 0; i < 4; i++)
		if (dirs_seen[i][0] && strstr(dirs_seen[i], "/corral/sbx-"))
			CU_ASSERT_NOT_EQUAL(access(dirs_seen[i], F_OK), 0);
	sbx_free(s);
	sbx_compiled_free(c);
}

static void test_exit_status(void)
{
	struct sbx_compiled *c;
	struct sbx_test_outcome o;

	REQUIRE_READY();
	c = strict(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	run_probe(c, "exit", "42", &o);
	CU_ASSERT_EQUAL(o.res.exit_code, 42);
	CU_ASSERT_EQUAL(o.res.signal, 0);
	run_probe(c, "signal", "15", &o);
	CU_ASSERT_EQUAL(o.res.signal, SIGTERM);

	/* a signal forwarded from outside (a client's Ctrl-C) */
	const char *argv[] = {"/bin/sleep", "30", NULL};
	struct sbx *s = sbx_new();
	struct sbx_child *ch = NULL;
	struct sbx_error err;
	sbx_set_profile(s, c);
	sbx_set_argv(s, argv);
	sbx_set_ids(s, SBX_TEST_UID, SBX_TEST_GID, NULL, 0);
	sbx_set_vars(s, dirs.home, dirs.work, dirs.tmp);
	CU_ASSERT_EQUAL_FATAL(sbx_spawn(s, &ch, &err), 0);
	CU_ASSERT_EQUAL(sbx_child_signal(ch, SIGINT), 0);
	CU_ASSERT_EQUAL(sbx_child_wait(ch, &o.res), 0);
	CU_ASSERT_EQUAL(o.res.signal, SIGINT);
	CU_ASSERT_EQUAL(sbx_child_signal(ch, SIGINT), -ESRCH);
	sbx_child_free(ch);
	sbx_free(s);
	sbx_compiled_free(c);
}

static void test_pty_session(void)
{
	struct sbx_compiled *c;
	struct sbx *s;
	struct sbx_child *ch = NULL;
	struct sbx_error err;
	struct sbx_result res;
	int master, slave;
	char buf[4096] = "";
	size_t len = 0;
	const char *argv[] = {"/bin/sh", "-c",
	                      "test -t 0 && echo TTY-OK; read line; echo got-$line; exit 3", NULL};

	REQUIRE_READY();
	c = strict(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL_FATAL(openpty(&master, &slave, NULL, NULL, NULL), 0);
	s = sbx_new();
	sbx_set_profile(s, c);
	sbx_set_argv(s, argv);
	sbx_set_ids(s, SBX_TEST_UID, SBX_TEST_GID, NULL, 0);
	sbx_set_vars(s, dirs.home, dirs.work, dirs.tmp);
	sbx_set_stdio(s, slave, slave, slave);
	CU_ASSERT_EQUAL_FATAL(sbx_spawn(s, &ch, &err), 0);
	close(slave);
	CU_ASSERT_EQUAL(write(master, "hello\n", 6), 6);
	/* read until the session closes the pty (EIO on the master) */
	for (;;) {
		struct pollfd p = {.fd = master, .events = POLLIN};
		if (poll(&p, 1, 10000) <= 0)
			break;
		ssize_t n = read(master, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	CU_ASSERT_EQUAL(sbx_child_wait(ch, &res), 0);
	printf("\n    pty output: %s", buf);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "TTY-OK"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "got-hello"));
	CU_ASSERT_EQUAL(res.exit_code, 3);
	sbx_child_free(ch);
	sbx_free(s);
	close(master);
	sbx_compiled_free(c);
}

static void tweak_ns(struct sbx_test_profile *t)
{
	t->proc.isolation = CORRAL__ISOLATION__ISOLATION_NAMESPACE;
}

static void test_namespace_tier(void)
{
	struct sbx_compiled *c;
	struct sbx_test_outcome o;
	char script[1024];

	REQUIRE_READY();
	c = strict(tweak_ns);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	snprintf(script, sizeof(script),
	         "echo pid=$$; hostname; ls /proc | grep -c '^[0-9]' ; "
	         "ls -a %s | wc -l; echo hi > /tmp/x && cat /tmp/x; "
	         "touch /etc/nope 2>&1 | grep -c 'Read-only' ; id -u",
	         dirs.ssh);
	CU_ASSERT_EQUAL_FATAL(sbx_test_sh(c, script, &dirs, &o), 0);
	printf("\n    namespace tier output:\n%s", o.output);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.output, "pid=1\n"));   /* own pid namespace */
	CU_ASSERT_PTR_NOT_NULL(strstr(o.output, "corral\n"));  /* own uts namespace */
	CU_ASSERT_PTR_NOT_NULL(strstr(o.output, "hi\n"));      /* private /tmp = ${TMP} */
	CU_ASSERT_PTR_NOT_NULL(strstr(o.output, "\n65534\n")); /* real identity kept */
	CU_ASSERT_EQUAL(o.res.exit_code, 0);
	char p[300];
	snprintf(p, sizeof(p), "%s/x", dirs.tmp);
	CU_ASSERT_EQUAL(access(p, F_OK), 0); /* the private /tmp was the session's ${TMP} */
	sbx_compiled_free(c);
}

static void test_failed_steps(void)
{
	struct sbx_compiled *c;
	struct sbx *s;
	struct sbx_child *ch = NULL;
	struct sbx_error err;
	const char *argv[] = {"/nonexistent/binary", NULL};
	const char *ok_argv[] = {"/bin/true", NULL};

	REQUIRE_READY();
	c = strict(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	s = sbx_new();
	sbx_set_profile(s, c);
	sbx_set_ids(s, SBX_TEST_UID, SBX_TEST_GID, NULL, 0);
	sbx_set_vars(s, dirs.home, dirs.work, dirs.tmp);

	/* exec of a missing binary: step "exec", ENOENT */
	sbx_set_argv(s, argv);
	CU_ASSERT_EQUAL(sbx_spawn(s, &ch, &err), -ENOENT);
	CU_ASSERT_STRING_EQUAL(err.step, "exec");
	CU_ASSERT_EQUAL(err.error, ENOENT);
	printf("\n    %s", err.message);

	/* a binary Landlock does not allow executing: step "exec", EACCES */
	const char *denied[] = {dirs.denied_bin, NULL};
	sbx_set_argv(s, denied);
	CU_ASSERT_EQUAL(sbx_spawn(s, &ch, &err), -EACCES);
	CU_ASSERT_STRING_EQUAL(err.step, "exec");

	/* a missing working directory: step "chdir" */
	sbx_set_argv(s, ok_argv);
	sbx_set_cwd(s, "/nonexistent/dir");
	CU_ASSERT_EQUAL(sbx_spawn(s, &ch, &err), -ENOENT);
	CU_ASSERT_STRING_EQUAL(err.step, "chdir");
	sbx_set_cwd(s, dirs.work);

	/* root without allow_root: refused before anything runs */
	sbx_set_ids(s, 0, 0, NULL, 0);
	CU_ASSERT_EQUAL(sbx_spawn(s, &ch, &err), -EPERM);
	CU_ASSERT_STRING_EQUAL(err.step, "credentials");
	sbx_free(s);
	sbx_compiled_free(c);
}

static void tweak_run_as_missing(struct sbx_test_profile *t)
{
	t->proc.run_as = (char *)"corral-no-such-account";
}

static void tweak_run_as_nobody(struct sbx_test_profile *t)
{
	t->proc.run_as = (char *)"nobody";
}

static void test_run_as(void)
{
	struct sbx_compiled *c;
	struct sbx_test_outcome o;
	const char *argv[] = {"/usr/bin/id", "-u", NULL};

	REQUIRE_READY();
	c = strict(tweak_run_as_missing);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(sbx_test_run(c, argv, &dirs, &o), -ENOENT);
	CU_ASSERT_STRING_EQUAL(o.err.step, "credentials");
	sbx_compiled_free(c);

	c = strict(tweak_run_as_nobody);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(sbx_test_run(c, argv, &dirs, &o), 0);
	CU_ASSERT_STRING_EQUAL(o.output, "65534\n");
	sbx_compiled_free(c);
}

static void test_kill_session(void)
{
	struct sbx_compiled *c;
	struct sbx *s;
	struct sbx_child *ch = NULL;
	struct sbx_error err;
	struct sbx_result res;
	const char *argv[] = {probe, "children", NULL};

	REQUIRE_READY();
	c = strict(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	s = sbx_new();
	sbx_set_profile(s, c);
	sbx_set_argv(s, argv);
	sbx_set_ids(s, SBX_TEST_UID, SBX_TEST_GID, NULL, 0);
	sbx_set_vars(s, dirs.home, dirs.work, dirs.tmp);
	CU_ASSERT_EQUAL_FATAL(sbx_spawn(s, &ch, &err), 0);
	usleep(200000);
	CU_ASSERT_TRUE(sbx_child_cgroup_fd(ch) >= 0 || !features.cgroup_v2);
	CU_ASSERT_EQUAL(sbx_child_kill(ch), 0);
	CU_ASSERT_EQUAL(sbx_child_wait(ch, &res), 0);
	CU_ASSERT_EQUAL(res.signal, SIGKILL);
	CU_ASSERT_EQUAL(sbx_child_wait(ch, &res), -ECHILD);
	sbx_child_free(ch);
	sbx_free(s);
	sbx_compiled_free(c);
}

static void test_environment(void)
{
	struct sbx_compiled *c;
	struct sbx_test_outcome o;
	const char *envp[] = {"ESC_FOO=bar", "UNRELATED=secret", "HOME=/root", "PATH=/usr/bin",
	                      NULL};
	const char *a1[] = {probe, "env", "ESC_FOO", NULL};
	const char *a2[] = {probe, "env", "UNRELATED", NULL};
	const char *a3[] = {probe, "env", "HOME", NULL};

	REQUIRE_READY();
	c = strict(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(sbx_test_run_full(c, a1, envp, &dirs, -1, NULL, &o), 0);
	CU_ASSERT_STRING_EQUAL(o.output, "ESC_FOO=bar\n"); /* PREFIX_* pattern */
	CU_ASSERT_EQUAL(sbx_test_run_full(c, a2, envp, &dirs, -1, NULL, &o), 0);
	CU_ASSERT_STRING_EQUAL(o.output, "UNRELATED=(unset)\n");
	CU_ASSERT_EQUAL(sbx_test_run_full(c, a3, envp, &dirs, -1, NULL, &o), 0);
	char want[300];
	snprintf(want, sizeof(want), "HOME=%s\n", dirs.home); /* from the session, not the caller */
	CU_ASSERT_STRING_EQUAL(o.output, want);
	sbx_compiled_free(c);
}

static uint16_t allowed_port;

static void hook_tcp(struct sbx *s)
{
	sbx_set_landlock_tcp_ports(s, &allowed_port, 1, NULL, 0);
}

static void test_landlock_tcp_ports(void)
{
	struct sbx_compiled *c;
	struct sbx_test_outcome o;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int lfd;
	char port[16], other[16];

	REQUIRE_READY();
	if (features.landlock_abi < 4)
		HARNESS_SKIP("Landlock TCP rules need ABI 4");
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(lfd >= 0);
	CU_ASSERT_FATAL(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CU_ASSERT_FATAL(listen(lfd, 4) == 0);
	CU_ASSERT_FATAL(getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0);
	allowed_port = ntohs(sa.sin_port);
	snprintf(port, sizeof(port), "%u", allowed_port);
	snprintf(other, sizeof(other), "%u", allowed_port == 65535 ? 1 : allowed_port + 1);
	c = strict(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	const char *a1[] = {probe, "connect", port, NULL};
	const char *a2[] = {probe, "connect", other, NULL};
	const char *a3[] = {probe, "bind", other, NULL};
	CU_ASSERT_EQUAL(sbx_test_run_full(c, a1, NULL, &dirs, -1, hook_tcp, &o), 0);
	CU_ASSERT_STRING_EQUAL(o.output, "OK\n");
	CU_ASSERT_EQUAL(sbx_test_run_full(c, a2, NULL, &dirs, -1, hook_tcp, &o), 0);
	CU_ASSERT_STRING_EQUAL(o.output, "EACCES\n");
	CU_ASSERT_EQUAL(sbx_test_run_full(c, a3, NULL, &dirs, -1, hook_tcp, &o), 0);
	CU_ASSERT_STRING_EQUAL(o.output, "EACCES\n");
	/* without the hook the port rules are absent */
	CU_ASSERT_EQUAL(sbx_test_run_full(c, a2, NULL, &dirs, -1, NULL, &o), 0);
	CU_ASSERT_STRING_EQUAL(o.output, "ECONNREFUSED\n");
	close(lfd);
	sbx_compiled_free(c);
}

static void tweak_no_limits(struct sbx_test_profile *t)
{
	t->res.memory_max_bytes = 0;
	t->res.pids_max = 0;
}

/*
 * The library used by an unprivileged program (an agent runtime without corrald): sessions
 * run as the caller itself, Landlock and seccomp still apply (no_new_privs), a cgroup it may
 * not create is refused when limits need it and reported when they do not, and the session
 * kill falls back to the process group. Runs in a forked child that drops to nobody; the
 * child's exit code is the number of the first failed check.
 */
static int unprivileged_checks(struct sbx_compiled *limited, struct sbx_compiled *plain)
{
	const char *argv[] = {probe, "read", dirs.secret, NULL};
	const char *sleeper[] = {"/bin/sleep", "100", NULL};
	struct sbx *s = sbx_new();
	struct sbx_child *ch = NULL;
	struct sbx_error err;
	struct sbx_result res;
	size_t n;
	bool lost = false, unpriv = false;
	int out[2];
	char buf[64] = "";

	if (setresgid(SBX_TEST_GID, SBX_TEST_GID, SBX_TEST_GID) < 0 ||
	    setresuid(SBX_TEST_UID, SBX_TEST_UID, SBX_TEST_UID) < 0 || !s || pipe(out) < 0)
		return 1;
	sbx_set_profile(s, limited);
	sbx_set_argv(s, argv);
	sbx_set_vars(s, dirs.home, dirs.work, dirs.tmp);
	sbx_set_stdio(s, -1, out[1], out[1]);
	/* limits requested, cgroups not creatable, no degrade: refused, not run unlimited */
	if (sbx_spawn(s, &ch, &err) >= 0 || strcmp(err.step, "cgroup") != 0)
		return 2;
	sbx_set_profile(s, plain);
	/* running as someone else needs privilege */
	sbx_set_ids(s, 0, 0, NULL, 0);
	if (sbx_spawn(s, &ch, &err) != -EPERM)
		return 3;
	sbx_set_ids(s, SBX_TEST_UID, SBX_TEST_GID, NULL, 0);
	if (sbx_spawn(s, &ch, &err) < 0)
		return 4;
	const char *const *l = sbx_enforced_layers(ch, &n);
	for (size_t i = 0; i < n; i++) {
		lost = lost || strstr(l[i], "cgroup:none") != NULL;
		unpriv = unpriv || strcmp(l[i], "creds:unprivileged-caller") == 0;
	}
	if (!lost || !unpriv)
		return 5;
	if (sbx_child_wait(ch, &res) < 0 || res.exit_code != 1)
		return 6;
	sbx_child_free(ch);
	close(out[1]);
	if (read(out[0], buf, sizeof(buf) - 1) <= 0 || strncmp(buf, "EACCES", 6) != 0)
		return 7; /* Landlock held without privilege */
	sbx_set_argv(s, sleeper);
	sbx_set_stdio(s, -1, -1, -1);
	if (sbx_spawn(s, &ch, &err) < 0 || sbx_child_kill(ch) < 0 || sbx_child_wait(ch, &res) < 0 ||
	    res.signal != SIGKILL)
		return 8;
	sbx_child_free(ch);
	sbx_free(s);
	return 0;
}

static void test_unprivileged_caller(void)
{
	struct sbx_compiled *limited, *plain;
	int status = 0;
	pid_t pid;

	REQUIRE_READY();
	limited = strict(NULL);
	plain = strict(tweak_no_limits);
	CU_ASSERT_PTR_NOT_NULL_FATAL(limited);
	CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(unprivileged_checks(limited, plain));
	waitpid(pid, &status, 0);
	printf("\n    unprivileged caller checks: exit %d", WEXITSTATUS(status));
	CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	sbx_compiled_free(limited);
	sbx_compiled_free(plain);
}

/*
 * A session started from inside a session (an agent running corral-sbx-run): clone3 is ENOSYS
 * there, so the engine falls back to clone + cgroup.procs; the kernel allows one seccomp
 * listener per filter chain, so the inner filter runs without one and says so in its layers.
 */
static void test_nested_session(void)
{
	struct sbx_compiled *c;
	struct sbx_test_outcome o;
	char from[512], runner[512];

	REQUIRE_READY();
#ifdef CORRAL_SANITIZED
	/* the launcher is sanitized in this build and LeakSanitizer needs ptrace, which the
	 * session denies (the test programs are built plain for that reason) */
	HARNESS_SKIP("corral-sbx-run is sanitized in this build and cannot run inside a session");
#endif
	snprintf(from, sizeof(from), "%s/bin/corral-sbx-run", harness_binary_dir());
	snprintf(runner, sizeof(runner), "%s/corral-sbx-run", dirs.bin);
	if (sbx_test_copy(from, runner, 0755) < 0)
		HARNESS_SKIP("corral-sbx-run not built");
	c = strict(tweak_no_limits);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	const char *argv[] = {runner,     "--read", "/",   "--exec",  "/",
	                      "--layers", "--",     probe, "unshare", NULL};
	CU_ASSERT_EQUAL_FATAL(sbx_test_run(c, argv, &dirs, &o), 0);
	printf("\n    nested output:\n%s", o.output);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.output, "layer seccomp:nested"));
	/* neither claimed as enforced for the inner session */
	CU_ASSERT_PTR_NULL(strstr(o.output, "layer seccomp:notify\n"));
	CU_ASSERT_PTR_NULL(strstr(o.output, "layer cgroup:v2:session\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.output, "errno 38")); /* ENOSYS: still denied */
	CU_ASSERT_EQUAL(o.res.exit_code, 1);
	sbx_compiled_free(c);
}

/* Runs corral-sbx-run ARGS as the test user; output (stdout+stderr) in out, exit code back. */
static int run_runner_as_user(const char *const *args, char *out, size_t outlen)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		if (setgroups(0, NULL) < 0 ||
		    setresgid(SBX_TEST_GID, SBX_TEST_GID, SBX_TEST_GID) < 0 ||
		    setresuid(SBX_TEST_UID, SBX_TEST_UID, SBX_TEST_UID) < 0 || chdir(dirs.work) < 0)
			_exit(124);
		execv(args[0], (char *const *)args);
		_exit(124);
	}
	close(pfd[1]);
	size_t len = 0;
	ssize_t n;
	while (len + 1 < outlen && (n = read(pfd[0], out + len, outlen - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(pfd[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * corral-sbx-run --mechanisms-only, the baseline of the runtime-overhead benchmark: the
 * profile's Landlock rules and seccomp filter hold on their own (a denied read, a baseline
 * syscall), an allowed read works, and what it cannot apply (another identity) is refused.
 */
static void test_mechanisms_only(void)
{
	char rel[700], runner[PATH_MAX], out[4096];
	REQUIRE_READY();
	snprintf(rel, sizeof(rel), "%s/bin/corral-sbx-run", harness_binary_dir());
	if (!realpath(rel, runner) || access(runner, X_OK) < 0) /* the child changes directory */
		HARNESS_SKIP("corral-sbx-run not built");
	char allowed[300];
	snprintf(allowed, sizeof(allowed), "%s/existing.txt", dirs.work);
	const char *ok[] = {runner,   "--mechanisms-only",
	                    "--read", "/usr",
	                    "--read", dirs.work,
	                    "--exec", "/usr",
	                    "--exec", "/lib",
	                    "--exec", "/lib64",
	                    "--exec", dirs.bin,
	                    "--",     probe,
	                    "read",   allowed,
	                    NULL};
	int rc = run_runner_as_user(ok, out, sizeof(out));
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "OK"));
	if (rc != 0)
		printf("\n    mechanisms-only: exit %d: %s", rc, out);
	const char *denied[] = {runner,   "--mechanisms-only",
	                        "--read", "/usr",
	                        "--exec", "/usr",
	                        "--exec", "/lib",
	                        "--exec", "/lib64",
	                        "--exec", dirs.bin,
	                        "--",     probe,
	                        "read",   dirs.secret,
	                        NULL};
	CU_ASSERT_EQUAL(run_runner_as_user(denied, out, sizeof(out)), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "EACCES"));
	const char *sys[] = {runner, "--mechanisms-only", "--read", "/", "--exec", "/", "--",
	                     probe,  "unshare",           NULL};
	CU_ASSERT_EQUAL(run_runner_as_user(sys, out, sizeof(out)), 1);
	CU_ASSERT_PTR_NULL(strstr(out, "OK"));
	const char *ids[] = {runner, "--mechanisms-only", "--uid", "0", "--", "/bin/true", NULL};
	CU_ASSERT_EQUAL(run_runner_as_user(ids, out, sizeof(out)), 125);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "runs as the caller"));
	const char *missing[] = {runner, "--mechanisms-only", "--read", "/", "--exec", "/",
	                         "--",   "/nonexistent/x",    NULL};
	CU_ASSERT_EQUAL(run_runner_as_user(missing, out, sizeof(out)), 125);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "step exec"));
}

static const struct harness_test tests[] = {
        {"mechanisms_only", test_mechanisms_only},
        {"filesystem", test_filesystem},
        {"carve_out", test_carve_out},
        {"seccomp_notify", test_seccomp_notify},
        {"seccomp_kill_and_additions", test_seccomp_kill_and_additions},
        {"audit_mode", test_audit_mode},
        {"resources", test_resources},
        {"limits_in_place", test_limits_in_place},
        {"exit_status", test_exit_status},
        {"pty_session", test_pty_session},
        {"namespace_tier", test_namespace_tier},
        {"failed_steps", test_failed_steps},
        {"run_as", test_run_as},
        {"kill_session", test_kill_session},
        {"environment", test_environment},
        {"landlock_tcp_ports", test_landlock_tcp_ports},
        {"unprivileged_caller", test_unprivileged_caller},
        {"nested_session", test_nested_session},
        {NULL, NULL},
};

int main(int argc, char **argv)
{
	static const struct harness_suite suites[] = {
	        {"sandbox_privileged", suite_init, suite_cleanup, tests},
	        {NULL, NULL, NULL, NULL},
	};
	return harness_main(argc, argv, suites);
}
