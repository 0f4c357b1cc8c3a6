// SPDX-License-Identifier: Apache-2.0
/*
 * `corral run` end to end, as root: a real corrald in offline mode in a temporary directory,
 * a real signed policy (keys, trust root and bundle made here with lib/trust and lib/policy),
 * applied with `corral policy apply`, then sessions started by the real `corral` CLI running
 * as an unprivileged test account (created with useradd, removed at the end) whose HOME and
 * WORKDIR live in the temporary directory.
 *
 * Covered: no policy refuses; root without allow_root refuses; work in WORKDIR; $HOME/.ssh and
 * /etc denied; io_uring_setup EPERM with a SYSCALL violation in `corral events --json`;
 * exit code 42; SIGTERM to the CLI forwarded (143); SIGKILL inside (137); a pty session;
 * --profile not selectable (2); a loopback connect denied by BPF with a NETWORK violation;
 * memory_max 64M vs 200M allocated (OOM, SessionExit.oom_killed); BPF egress unavailable
 * (test hook) refuses a restricting profile and degrades one that allows Landlock ports;
 * a second RunRequest on a connection with a running session refused (EBUSY), its
 * descriptors closed, the first session unaffected; Landlock denials (a carve-out ~/.ssh
 * file, a write outside the write set) reported as FILESYSTEM violations of the session
 * through kernel audit, and the kernel's audit state as it was once corrald has exited.
 */
#include "cleanup.h"
#include "fixture.h"
#include "fsaudit.h"
#include "harness.h"
#include "ipc.h"
#include "policy.h"
#include "trust.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/prctl.h>

#define TEST_USER "corral-sess-test"

static char *g_dir;
static char g_root_path[700], g_probe[700], g_work[700], g_home[700], g_cg[64];
static struct trust_key *g_root, *g_signer;
static struct fx_daemon g_d;
static bool g_ready, g_user_made;
static uid_t g_uid;
static gid_t g_gid;
static int g_audit_before = -1; /* kernel audit on (1) / off (0) before corrald; -1 unknown */

/* ---- helpers ------------------------------------------------------------------------- */

static int run_cmd(const char *const *argv)
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		dup2(null, 1);
		dup2(null, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (util_read_file(from, 64u << 20, &buf, &len) < 0)
		return -1;
	int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	int r = write(fd, buf, len) == (ssize_t)len ? 0 : -1;
	close(fd);
	return r;
}

static const char policy_fmt[] =
        "{\"name\": \"session-test\", \"default_profile\": \"strict\","
        " \"user_selectable\": [\"strict\", \"small\", \"ports\", \"web\", \"audit\"],"
        " \"profiles\": {"
        "  \"strict\": {\"mode\": \"enforce\","
        "   \"filesystem\": {\"read\": [\"/usr\", \"/lib\", \"/lib64\", \"/bin\", \"/etc\","
        "      \"/dev/null\", \"/dev/pts\", \"%s\", \"${HOME}\", \"${WORKDIR}\", \"${TMP}\"],"
        "    \"write\": [\"${WORKDIR}\", \"${TMP}\", \"/dev/null\", \"/dev/pts\"],"
        "    \"execute\": [\"/usr\", \"/lib\", \"/lib64\", \"/bin\", \"%s\"],"
        "    \"deny\": [\"${HOME}/.ssh\"]},"
        "   \"network\": {\"default\": \"deny\", \"dns\": \"deny\"},"
        "   \"syscalls\": {\"baseline\": true, \"action\": \"errno\"},"
        "   \"resources\": {\"pids_max\": 64},"
        "   \"degrade\": {\"resources\": true},"
        "   \"process\": {\"isolation\": \"process\", \"env_allow\": [\"PATH\"]}},"
        "  \"small\": {\"mode\": \"enforce\","
        "   \"filesystem\": {\"read\": [\"/usr\", \"/lib\", \"/lib64\", \"%s\", \"${WORKDIR}\"],"
        "    \"execute\": [\"/usr\", \"/lib\", \"/lib64\", \"%s\"]},"
        "   \"network\": {\"default\": \"deny\", \"dns\": \"deny\"},"
        "   \"resources\": {\"memory_max\": \"64M\"},"
        "   \"process\": {\"isolation\": \"process\"}},"
        "  \"ports\": {\"mode\": \"enforce\","
        "   \"filesystem\": {\"read\": [\"/usr\", \"/lib\", \"/lib64\", \"%s\", \"${WORKDIR}\"],"
        "    \"execute\": [\"/usr\", \"/lib\", \"/lib64\", \"%s\"]},"
        "   \"network\": {\"default\": \"deny\", \"dns\": \"deny\","
        "    \"allow\": [{\"cidr\": \"127.0.0.1/32\", \"port\": 9, \"protocol\": \"tcp\"}]},"
        "   \"degrade\": {\"network_to_landlock_ports\": true},"
        "   \"process\": {\"isolation\": \"process\"}},"
        "  \"web\": {\"mode\": \"enforce\","
        "   \"filesystem\": {\"read\": [\"/usr\", \"/lib\", \"/lib64\", \"%s\", \"${WORKDIR}\"],"
        "    \"execute\": [\"/usr\", \"/lib\", \"/lib64\", \"%s\"]},"
        "   \"network\": {\"default\": \"deny\", \"dns\": \"deny\","
        "    \"hosts\": [\"allowed.test:443\"]},"
        "   \"process\": {\"isolation\": \"process\"}},"
        "  \"audit\": {\"mode\": \"audit\","
        "   \"filesystem\": {\"read\": [\"/usr\", \"/lib\", \"/lib64\", \"%s\", \"${WORKDIR}\"],"
        "    \"execute\": [\"/usr\", \"/lib\", \"/lib64\", \"%s\"]},"
        "   \"network\": {\"default\": \"deny\", \"dns\": \"deny\"},"
        "   \"process\": {\"isolation\": \"process\"}},"
        "  \"hidden\": {\"mode\": \"enforce\","
        "   \"filesystem\": {\"read\": [\"/usr\"], \"execute\": [\"/usr\"]},"
        "   \"process\": {\"isolation\": \"process\"}}}}";

static int make_bundle(const char *path, uint64_t version)
{
	char bindir[700], json[16384];
	snprintf(bindir, sizeof(bindir), "%s/bin", g_dir);
	snprintf(json, sizeof(json), policy_fmt, bindir, bindir, bindir, bindir, bindir, bindir,
	         bindir, bindir, bindir, bindir);
	Corral__Policy *pol = NULL;
	struct policy_error perr;
	if (policy_compile(json, strlen(json), &pol, &perr) < 0) {
		char buf[512];
		fprintf(stderr, "policy: %s\n", policy_error_format(&perr, buf, sizeof(buf)));
		return -1;
	}
	Corral__Target tg = CORRAL__TARGET__INIT;
	tg.kind_case = CORRAL__TARGET__KIND_GROUP;
	tg.group = (char *)"eng";
	Corral__Target *tgp[1] = {&tg};
	Corral__PolicyBundle b = CORRAL__POLICY_BUNDLE__INIT;
	b.version = version;
	b.issued_at = util_now_sec() - 10;
	b.expires_at = util_now_sec() + 3600;
	b.n_targets = 1;
	b.targets = tgp;
	b.policy = pol;
	_cleanup_free_ uint8_t *env = NULL;
	size_t len = 0;
	int r = trust_bundle_sign(&b, &g_signer, 1, &env, &len);
	corral__policy__free_unpacked(pol, NULL);
	if (r < 0)
		return -1;
	return util_write_file_atomic(path, env, len, 0644);
}

struct run_out {
	int code;
	char *out, *err;
};

static void run_out_free(struct run_out *o)
{
	free(o->out);
	free(o->err);
}

/* Supplementary groups the CLI runs with (none unless a test sets them). */
static const gid_t *g_cli_groups;
static size_t g_cli_ngroups;

/* Starts `corral --socket S run ARGS...` as the test user in WORKDIR; pipes for stdio. */
static pid_t spawn_cli(const struct fx_daemon *d, const char *const *args, bool as_root,
                       int *ret_out, int *ret_err)
{
	char rel[700], bin[PATH_MAX];
	snprintf(rel, sizeof(rel), "%s/bin/corral", harness_binary_dir());
	if (!realpath(rel, bin)) /* the child changes directory before exec */
		return -1;
	const char *argv[40];
	size_t n = 0;
	argv[n++] = bin;
	argv[n++] = "--socket";
	argv[n++] = d->sock;
	argv[n++] = "run";
	for (size_t i = 0; args[i] && n < 39; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		dup2(null, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		if (!as_root && (setgroups(g_cli_ngroups, g_cli_groups) < 0 || setgid(g_gid) < 0 ||
		                 setuid(g_uid) < 0))
			_exit(125);
		if (chdir(g_work) < 0)
			_exit(125);
		setenv("HOME", g_home, 1);
		setenv("PATH", "/usr/bin:/bin", 1);
		execv(bin, (char *const *)argv);
		_exit(125);
	}
	close(po[1]);
	close(pe[1]);
	*ret_out = po[0];
	*ret_err = pe[0];
	return pid;
}

static int finish_cli(pid_t pid, int out_fd, int err_fd, struct run_out *o)
{
	size_t len;
	(void)util_read_fd(out_fd, 1 << 20, &o->out, &len);
	(void)util_read_fd(err_fd, 1 << 20, &o->err, &len);
	close(out_fd);
	close(err_fd);
	int st = 0;
	waitpid(pid, &st, 0);
	o->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (!o->out)
		o->out = strdup("");
	if (!o->err)
		o->err = strdup("");
	return o->code;
}

static int run_in(const struct fx_daemon *d, struct run_out *o, bool as_root,
                  const char *const *args)
{
	int of, ef;
	pid_t pid = spawn_cli(d, args, as_root, &of, &ef);
	if (pid < 0)
		return -1;
	return finish_cli(pid, of, ef, o);
}

static int run(struct run_out *o, const char *const *args)
{
	return run_in(&g_d, o, false, args);
}

/* Events of the daemon, newest first (raw IPC: the full messages). */
static Corral__IpcResponse *events(const struct fx_daemon *d)
{
	Corral__EventsRequest er = CORRAL__EVENTS_REQUEST__INIT;
	er.limit = 200;
	Corral__IpcRequest rq = CORRAL__IPC_REQUEST__INIT;
	rq.body_case = CORRAL__IPC_REQUEST__BODY_EVENTS;
	rq.events = &er;
	return fx_ipc(d, &rq);
}

/* Newest event of `kind` (and, for violations, violation kind and target substring). */
static const Corral__Event *find_event(const Corral__IpcResponse *resp, Corral__EventKind kind,
                                       Corral__ViolationKind vkind, const char *target)
{
	if (!resp || resp->body_case != CORRAL__IPC_RESPONSE__BODY_EVENTS)
		return NULL;
	for (size_t i = 0; i < resp->events->n_events; i++) {
		const Corral__Event *e = resp->events->events[i];
		if (e->kind != kind)
			continue;
		if (kind == CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION &&
		    (!e->violation || e->violation->kind != vkind ||
		     (target && !strstr(e->violation->target, target))))
			continue;
		return e;
	}
	return NULL;
}

static bool has_layer(const Corral__Event *e, const char *layer)
{
	if (!e || !e->session_start)
		return false;
	for (size_t i = 0; i < e->session_start->n_layers; i++)
		if (strcmp(e->session_start->layers[i], layer) == 0)
			return true;
	return false;
}

/* ---- suite ----------------------------------------------------------------------------- */

static int suite_init(void)
{
	if (!harness_is_root())
		return 0;
	g_dir = harness_mkdtemp("session");
	if (!g_dir || chmod(g_dir, 0755) < 0)
		return -1;
	snprintf(g_home, sizeof(g_home), "%s/home", g_dir);
	snprintf(g_work, sizeof(g_work), "%s/home/work", g_dir);
	snprintf(g_cg, sizeof(g_cg), "corral-test-%d", (int)getpid());

	/* the test account: HOME in our directory, no login shell needed */
	struct passwd *pw = getpwnam(TEST_USER);
	if (!pw) {
		const char *ua[] = {"/usr/sbin/useradd", "-M",      "-N",   "-g",
		                    "nogroup",           "-d",      g_home, "-s",
		                    "/bin/sh",           TEST_USER, NULL};
		if (run_cmd(ua) != 0)
			return 0; /* tests skip: no account */
		g_user_made = true;
		pw = getpwnam(TEST_USER);
	} else {
		/* left over from an interrupted run: the name is ours, so reuse and remove it */
		const char *um[] = {"/usr/sbin/usermod", "-d", g_home, TEST_USER, NULL};
		(void)run_cmd(um);
		g_user_made = true;
		pw = getpwnam(TEST_USER);
	}
	if (!pw)
		return 0;
	g_uid = pw->pw_uid;
	g_gid = pw->pw_gid;

	char p[800];
	if (mkdir(g_home, 0750) < 0 || chown(g_home, g_uid, g_gid) < 0 || mkdir(g_work, 0750) < 0 ||
	    chown(g_work, g_uid, g_gid) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/.ssh", g_home);
	if (mkdir(p, 0700) < 0 || chown(p, g_uid, g_gid) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/.ssh/id_ed25519", g_home);
	if (util_write_file_atomic(p, "secret\n", 7, 0600) < 0 || chown(p, g_uid, g_gid) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/bin", g_dir);
	if (mkdir(p, 0755) < 0)
		return -1;
	snprintf(g_probe, sizeof(g_probe), "%s/bin/session_probe", g_dir);
	snprintf(p, sizeof(p), "%s/tests/session_probe", harness_binary_dir());
	if (copy_file(p, g_probe, 0755) < 0)
		return -1;

	if (trust_key_generate(&g_root) < 0 || trust_key_generate(&g_signer) < 0)
		return -1;
	_cleanup_free_ uint8_t *env = NULL;
	size_t len = 0;
	if (fx_make_root(1, &g_root, 1, &g_signer, 1, &g_root, 1, &env, &len) < 0 ||
	    fx_write(g_dir, "root.tr", env, len, g_root_path, sizeof(g_root_path)) < 0)
		return -1;
	char ddir[700];
	snprintf(ddir, sizeof(ddir), "%s/d1", g_dir);
	if (mkdir(ddir, 0755) < 0)
		return -1;
	/* kernel audit before corrald touches it: the last test checks it is restored */
	int afd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
	bool on = false;
	if (afd >= 0 && cd_fsaudit_ctl_status(afd, &on) == 0)
		g_audit_before = on;
	if (afd >= 0)
		close(afd);
	setenv("CORRAL_TEST_CGROUP_PARENT", g_cg, 1);
	unsetenv("CORRAL_TEST_EGRESS_UNAVAILABLE");
	const char *args[] = {"--offline", "--trust",      g_root_path, "--group",
	                      "eng",       "--test-hooks", NULL};
	if (fx_daemon_start(&g_d, ddir, args) < 0)
		return -1;
	/* the socket directory must be reachable by the test user */
	(void)chmod(ddir, 0755);
	g_ready = true;
	return 0;
}

static int suite_cleanup(void)
{
	if (g_d.pid > 0)
		fx_daemon_stop(&g_d, SIGTERM);
	if (g_user_made) {
		const char *ud[] = {"/usr/sbin/userdel", TEST_USER, NULL};
		(void)run_cmd(ud);
	}
	trust_key_free(g_root);
	trust_key_free(g_signer);
	if (g_dir && !getenv("CORRAL_KEEP_TMP"))
		harness_rm_rf(g_dir);
	free(g_dir);
	return 0;
}

#define NEED_READY()                                                                     \
	do {                                                                             \
		if (!harness_is_root())                                                  \
			HARNESS_SKIP("needs root (starts corrald, creates an account)"); \
		if (!g_ready)                                                            \
			HARNESS_SKIP("no test account (useradd failed)");                \
	} while (0)

/* Before any policy: refused, never unconfined. Then the policy is applied. */
static void test_no_policy_then_apply(void)
{
	NEED_READY();
	struct run_out o = {0};
	const char *a[] = {"--", g_probe, "exit", "0", NULL};
	CU_ASSERT_EQUAL(run(&o, a), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "no policy in force"));
	if (!strstr(o.err, "no policy in force"))
		fprintf(stderr, "corral run (%d): %s\n", o.code, o.err);
	run_out_free(&o);

	char path[800];
	snprintf(path, sizeof(path), "%s/bundle", g_dir);
	CU_ASSERT_FATAL(make_bundle(path, 1) == 0);
	const char *ap[] = {"policy", "apply", path, NULL};
	CU_ASSERT_EQUAL_FATAL(fx_cli(&g_d, NULL, ap), 0);
}

static void test_root_refused(void)
{
	NEED_READY();
	struct run_out o = {0};
	const char *a[] = {"--", g_probe, "exit", "0", NULL};
	CU_ASSERT_EQUAL(run_in(&g_d, &o, true, a), 126);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "cannot start session: credentials"));
	run_out_free(&o);
}

static void test_files(void)
{
	NEED_READY();
	struct run_out o = {0};
	char p[800];
	snprintf(p, sizeof(p), "%s/created-in-session", g_work);
	const char *w[] = {"--", g_probe, "write", p, NULL};
	CU_ASSERT_EQUAL(run(&o, w), 0);
	CU_ASSERT_STRING_EQUAL(o.out, "ok\n");
	run_out_free(&o);
	struct stat st;
	CU_ASSERT(stat(p, &st) == 0 && st.st_uid == g_uid);

	const char *r[] = {"--", g_probe, "read", p, NULL};
	CU_ASSERT_EQUAL(run(&o, r), 0);
	run_out_free(&o);

	snprintf(p, sizeof(p), "%s/.ssh/id_ed25519", g_home);
	const char *s[] = {"--", g_probe, "read", p, NULL};
	CU_ASSERT_EQUAL(run(&o, s), 1);
	CU_ASSERT_STRING_EQUAL(o.out, "EACCES\n");
	run_out_free(&o);

	const char *e[] = {"--", g_probe, "write", "/etc/corral-session-test", NULL};
	CU_ASSERT_EQUAL(run(&o, e), 1);
	CU_ASSERT_STRING_EQUAL(o.out, "EACCES\n");
	run_out_free(&o);
	CU_ASSERT(access("/etc/corral-session-test", F_OK) < 0);
}

/* The newest violation of `kind` with `target` (waits up to 3 s: audit records reach corrald
 * through the kernel's audit thread, asynchronously). Caller frees *ret_resp. */
static const Corral__Event *wait_violation(const struct fx_daemon *d, Corral__ViolationKind kind,
                                           const char *target, Corral__IpcResponse **ret_resp)
{
	for (int i = 0; i < 30; i++) {
		Corral__IpcResponse *resp = events(d);
		if (resp && resp->body_case == CORRAL__IPC_RESPONSE__BODY_EVENTS)
			for (size_t k = 0; k < resp->events->n_events; k++) {
				const Corral__Event *e = resp->events->events[k];
				if (e->kind == CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION &&
				    e->violation && e->violation->kind == kind &&
				    strcmp(e->violation->target, target) == 0) {
					*ret_resp = resp;
					return e;
				}
			}
		if (resp)
			corral__ipc_response__free_unpacked(resp, NULL);
		usleep(100 * 1000);
	}
	*ret_resp = NULL;
	return NULL;
}

/* The SessionStart of session `id`. */
static const Corral__Event *session_start_of(const Corral__IpcResponse *resp, const char *id)
{
	for (size_t k = 0; resp && k < resp->events->n_events; k++) {
		const Corral__Event *e = resp->events->events[k];
		if (e->kind == CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START &&
		    strcmp(e->session_id, id) == 0)
			return e;
	}
	return NULL;
}

/* Landlock denials as FILESYSTEM violations: a file in the ~/.ssh carve-out (read_file) and a
 * file created outside the write set (make_reg on its directory), each with the session id of
 * the session that was denied, its user and profile. */
static void test_filesystem_violation(void)
{
	NEED_READY();
	Corral__IpcResponse *resp = events(&g_d);
	const Corral__Event *st =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	bool available = has_layer(st, "report:filesystem");
	bool said_unavailable = false;
	for (size_t i = 0; i < st->session_start->n_layers; i++)
		said_unavailable |= strncmp(st->session_start->layers[i],
		                            "report:filesystem (unavailable: ", 32) == 0;
	CU_ASSERT(available != said_unavailable); /* one or the other, never silent */
	if (resp)
		corral__ipc_response__free_unpacked(resp, NULL);
	if (!available)
		HARNESS_SKIP("filesystem denial reporting unavailable on this host (see layers)");

	struct run_out o = {0};
	char key[800];
	snprintf(key, sizeof(key), "%s/.ssh/id_ed25519", g_home);
	const char *s1[] = {"--", g_probe, "read", key, NULL};
	CU_ASSERT_EQUAL(run(&o, s1), 1);
	CU_ASSERT_STRING_EQUAL(o.out, "EACCES\n");
	run_out_free(&o);
	const Corral__Event *v =
	        wait_violation(&g_d, CORRAL__VIOLATION_KIND__VIOLATION_KIND_FILESYSTEM, key, &resp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_PTR_NOT_NULL(strstr(v->violation->detail, "blockers=fs.read_file"));
	CU_ASSERT_PTR_NOT_NULL(strstr(v->violation->detail, " ino="));
	CU_ASSERT_FALSE(v->violation->audit_only);
	CU_ASSERT_EQUAL(v->uid, g_uid);
	CU_ASSERT_STRING_EQUAL(v->user, TEST_USER);
	CU_ASSERT_STRING_EQUAL(v->profile, "strict");
	CU_ASSERT_EQUAL(v->policy_version, 1);
	/* the session that was denied: its SessionStart has the same id and ran the probe */
	st = session_start_of(resp, v->session_id);
	CU_ASSERT_PTR_NOT_NULL(st);
	CU_ASSERT(st && st->session_start->n_argv == 3 &&
	          strcmp(st->session_start->argv[2], key) == 0);
	CU_ASSERT(has_layer(st, "report:filesystem"));
	corral__ipc_response__free_unpacked(resp, NULL);

	/* outside the write set (HOME is only readable): Landlock logs the directory the file
	 * was to be made in (no other test writes there, so the target is this session's) */
	char created[800];
	snprintf(created, sizeof(created), "%s/fsaudit-new-file", g_home);
	const char *s2[] = {"--", g_probe, "write", created, NULL};
	CU_ASSERT_EQUAL(run(&o, s2), 1);
	CU_ASSERT_STRING_EQUAL(o.out, "EACCES\n");
	run_out_free(&o);
	v = wait_violation(&g_d, CORRAL__VIOLATION_KIND__VIOLATION_KIND_FILESYSTEM, g_home, &resp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_PTR_NOT_NULL(strstr(v->violation->detail, "fs.make_reg"));
	st = session_start_of(resp, v->session_id);
	CU_ASSERT(st && st->session_start->n_argv == 3 &&
	          strcmp(st->session_start->argv[2], created) == 0);
	corral__ipc_response__free_unpacked(resp, NULL);
}

/* A corrald started in a network namespace of its own (as the demo runs it): the kernel
 * multicasts audit records only in the initial namespace, so corrald makes its audit sockets
 * in pid 1's; where it cannot (pid 1's namespace unreadable, as on the build VM whose pid 1 is
 * not a normal init), its self-test finds that no record arrives and sessions say reporting
 * is unavailable. Either way it never claims reporting it does not deliver. */
static void test_filesystem_violation_other_netns(void)
{
	NEED_READY();
	char ddir[700];
	snprintf(ddir, sizeof(ddir), "%s/d3", g_dir);
	CU_ASSERT_FATAL(mkdir(ddir, 0755) == 0);
	int own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	CU_ASSERT_FATAL(own >= 0);
	CU_ASSERT_FATAL(unshare(CLONE_NEWNET) == 0);
	struct fx_daemon d3 = {0};
	const char *args[] = {"--offline", "--trust",      g_root_path, "--group",
	                      "eng",       "--test-hooks", NULL};
	/* profile cgroups of its own: on exit it detaches its BPF programs from them */
	char cg3[80];
	snprintf(cg3, sizeof(cg3), "%s-d3", g_cg);
	setenv("CORRAL_TEST_CGROUP_PARENT", cg3, 1);
	int r = fx_daemon_start(&d3, ddir, args);
	setenv("CORRAL_TEST_CGROUP_PARENT", g_cg, 1);
	CU_ASSERT_FATAL(setns(own, CLONE_NEWNET) == 0);
	close(own);
	CU_ASSERT_FATAL(r == 0);
	(void)chmod(ddir, 0755);
	char path[800];
	snprintf(path, sizeof(path), "%s/bundle", g_dir);
	const char *ap[] = {"policy", "apply", path, NULL};
	CU_ASSERT_EQUAL(fx_cli(&d3, NULL, ap), 0);
	struct run_out o = {0};
	char key[800];
	snprintf(key, sizeof(key), "%s/.ssh/id_ed25519", g_home);
	const char *s1[] = {"--", g_probe, "read", key, NULL};
	CU_ASSERT_EQUAL(run_in(&d3, &o, false, s1), 1);
	CU_ASSERT_STRING_EQUAL(o.out, "EACCES\n");
	run_out_free(&o);
	Corral__IpcResponse *resp = events(&d3);
	const Corral__Event *st =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	bool reported = has_layer(st, "report:filesystem");
	const char *why = NULL;
	for (size_t i = 0; i < st->session_start->n_layers; i++)
		if (strncmp(st->session_start->layers[i], "report:filesystem (unavailable: ", 32) ==
		    0)
			why = st->session_start->layers[i];
	CU_ASSERT(reported != (why != NULL));
	if (why) {
		printf("\n    %s", why);
		CU_ASSERT_PTR_NOT_NULL(strstr(why, "self-test: no Landlock audit record"));
		CU_ASSERT_PTR_NOT_NULL(strstr(why, "network namespace"));
	}
	corral__ipc_response__free_unpacked(resp, NULL);
	if (reported) {
		const Corral__Event *v = wait_violation(
		        &d3, CORRAL__VIOLATION_KIND__VIOLATION_KIND_FILESYSTEM, key, &resp);
		CU_ASSERT_PTR_NOT_NULL(v);
		if (resp)
			corral__ipc_response__free_unpacked(resp, NULL);
	}
	CU_ASSERT_EQUAL(fx_daemon_stop(&d3, SIGTERM), 0);
	/* g_d set audit up; d3 changed nothing, or undid its own change at once */
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
	bool on = false;
	CU_ASSERT(fd >= 0 && cd_fsaudit_ctl_status(fd, &on) == 0 &&
	          on == (g_audit_before == 1 || g_d.pid > 0));
	if (fd >= 0)
		close(fd);
}

/* Adds (or deletes) the audit rule `-a never,exclude -F msgtype=1424`: Landlock domain
 * records are then never created. Returns the kernel's answer (0 or -errno). */
static int exclude_domain_records(bool add)
{
	struct {
		struct nlmsghdr h;
		struct audit_rule_data r;
	} msg;
	memset(&msg, 0, sizeof(msg));
	msg.h.nlmsg_len = sizeof(msg);
	msg.h.nlmsg_type = add ? AUDIT_ADD_RULE : AUDIT_DEL_RULE;
	msg.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	msg.h.nlmsg_seq = 77;
	msg.r.flags = AUDIT_FILTER_EXCLUDE;
	msg.r.action = AUDIT_NEVER;
	msg.r.field_count = 1;
	msg.r.fields[0] = AUDIT_MSGTYPE;
	msg.r.fieldflags[0] = AUDIT_EQUAL;
	msg.r.values[0] = CD_FSAUDIT_TYPE_DOMAIN;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
	if (fd < 0)
		return -errno;
	struct timeval tv = {.tv_sec = 2};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int r = -EIO;
	if (send(fd, &msg, sizeof(msg), 0) == (ssize_t)sizeof(msg)) {
		_Alignas(struct nlmsghdr) char buf[4096];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
		if (n >= (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) &&
		    h->nlmsg_type == NLMSG_ERROR)
			r = ((const struct nlmsgerr *)NLMSG_DATA(h))->error;
	}
	close(fd);
	return r;
}

/* Landlock's domain records excluded by an audit rule: corrald's self-test sees none arrive,
 * so its sessions say reporting is unavailable instead of claiming it (and it changed nothing:
 * audit was on already). */
static void test_filesystem_selftest_fails(void)
{
	NEED_READY();
	CU_ASSERT_FATAL(exclude_domain_records(true) == 0);
	char ddir[700];
	snprintf(ddir, sizeof(ddir), "%s/d4", g_dir);
	CU_ASSERT_FATAL(mkdir(ddir, 0755) == 0);
	char cg4[80];
	snprintf(cg4, sizeof(cg4), "%s-d4", g_cg);
	setenv("CORRAL_TEST_CGROUP_PARENT", cg4, 1);
	struct fx_daemon d4 = {0};
	const char *args[] = {"--offline", "--trust",      g_root_path, "--group",
	                      "eng",       "--test-hooks", NULL};
	int r = fx_daemon_start(&d4, ddir, args);
	setenv("CORRAL_TEST_CGROUP_PARENT", g_cg, 1);
	Corral__IpcResponse *resp = NULL;
	if (r == 0) {
		(void)chmod(ddir, 0755);
		char path[800];
		snprintf(path, sizeof(path), "%s/bundle", g_dir);
		const char *ap[] = {"policy", "apply", path, NULL};
		/* the first answer comes once start-up (and its self-test) is over */
		CU_ASSERT_EQUAL(fx_cli(&d4, NULL, ap), 0);
		struct run_out o = {0};
		const char *a[] = {"--", g_probe, "exit", "0", NULL};
		CU_ASSERT_EQUAL(run_in(&d4, &o, false, a), 0);
		run_out_free(&o);
		resp = events(&d4);
	}
	CU_ASSERT_EQUAL(exclude_domain_records(false), 0);
	CU_ASSERT_FATAL(r == 0);
	const Corral__Event *st =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_FALSE(has_layer(st, "report:filesystem"));
	bool said = false;
	for (size_t i = 0; i < st->session_start->n_layers; i++)
		said |= strstr(st->session_start->layers[i],
		               "report:filesystem (unavailable: self-test: no Landlock audit "
		               "record "
		               "reached corrald within 1000 ms") != NULL;
	CU_ASSERT_TRUE(said);
	corral__ipc_response__free_unpacked(resp, NULL);
	CU_ASSERT_EQUAL(fx_daemon_stop(&d4, SIGTERM), 0);
}

/* Another process switches kernel audit off while corrald reports: corrald sees the
 * configuration change record, and the next session says reporting is unavailable (no session
 * is told about reporting that can no longer happen). Audit is switched on again afterwards,
 * so the suite's corrald still restores exactly what it changed. */
static void test_audit_switched_off(void)
{
	NEED_READY();
	Corral__IpcResponse *resp = events(&g_d);
	const Corral__Event *st =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, 0, NULL);
	bool reporting = has_layer(st, "report:filesystem");
	if (resp)
		corral__ipc_response__free_unpacked(resp, NULL);
	if (!reporting)
		HARNESS_SKIP("filesystem denial reporting unavailable on this host");
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
	CU_ASSERT_FATAL(fd >= 0);
	char why[256] = "";
	struct cd_fsaudit_changes off = {.rule_added = false, .audit_enabled = true};
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_restore(fd, &off, why, sizeof(why)), 0);
	usleep(200 * 1000);
	struct run_out o = {0};
	const char *a[] = {"--", g_probe, "exit", "0", NULL};
	CU_ASSERT_EQUAL(run(&o, a), 0);
	run_out_free(&o);
	struct cd_fsaudit_changes on = {false, false};
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_setup(fd, NULL, &on, why, sizeof(why)), 0);
	CU_ASSERT_TRUE(on.audit_enabled);
	close(fd);
	resp = events(&g_d);
	st = find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, 0, NULL);
	CU_ASSERT_FALSE(has_layer(st, "report:filesystem"));
	bool said = false;
	for (size_t i = 0; st && i < st->session_start->n_layers; i++)
		said |= strstr(st->session_start->layers[i],
		               "unavailable: kernel audit was switched off by another process") !=
		        NULL;
	CU_ASSERT_TRUE(said);
	if (resp)
		corral__ipc_response__free_unpacked(resp, NULL);
}

/* Last: once corrald exits cleanly, kernel audit is as it was before it started, and when
 * corrald had to install the rule -a never,task, the rule is gone again. */
static void test_audit_state_restored(void)
{
	NEED_READY();
	if (g_audit_before < 0)
		HARNESS_SKIP("kernel audit status unreadable here (no NETLINK_AUDIT)");
	CU_ASSERT_EQUAL(fx_daemon_stop(&g_d, SIGTERM), 0);
	g_ready = false; /* no daemon for later tests */
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
	CU_ASSERT_FATAL(fd >= 0);
	bool on = false;
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_status(fd, &on), 0);
	CU_ASSERT_EQUAL((int)on, g_audit_before);
	if (!on) {
		/* the rule is absent: installing it succeeds (then it is removed again) */
		struct cd_fsaudit_changes ch = {false, false};
		char why[256] = "";
		CU_ASSERT_EQUAL(cd_fsaudit_ctl_setup(fd, NULL, &ch, why, sizeof(why)), 0);
		CU_ASSERT_TRUE(ch.rule_added);
		CU_ASSERT_TRUE(ch.audit_enabled);
		CU_ASSERT_EQUAL(cd_fsaudit_ctl_restore(fd, &ch, why, sizeof(why)), 0);

		/* a corrald killed with SIGKILL leaves audit on; the next one on the same data
		 * directory adopts that and undoes it when it exits cleanly */
		char ddir[700];
		snprintf(ddir, sizeof(ddir), "%s/d5", g_dir);
		CU_ASSERT_FATAL(mkdir(ddir, 0755) == 0);
		struct fx_daemon d5 = {0};
		const char *args[] = {"--offline", "--trust",      g_root_path, "--group",
		                      "eng",       "--test-hooks", NULL};
		/* `corral status` answers once start-up (audit set-up included) is over */
		const char *status[] = {"status", NULL};
		CU_ASSERT_FATAL(fx_daemon_start(&d5, ddir, args) == 0);
		CU_ASSERT_EQUAL(fx_cli(&d5, NULL, status), 0);
		fx_daemon_stop(&d5, SIGKILL);
		CU_ASSERT(cd_fsaudit_ctl_status(fd, &on) == 0 && on);
		CU_ASSERT_FATAL(fx_daemon_start(&d5, ddir, args) == 0);
		CU_ASSERT_EQUAL(fx_cli(&d5, NULL, status), 0);
		CU_ASSERT_EQUAL(fx_daemon_stop(&d5, SIGTERM), 0);
		CU_ASSERT(cd_fsaudit_ctl_status(fd, &on) == 0 && !on);
		memset(&ch, 0, sizeof(ch));
		CU_ASSERT_EQUAL(cd_fsaudit_ctl_setup(fd, NULL, &ch, why, sizeof(why)), 0);
		CU_ASSERT_TRUE(ch.rule_added); /* the killed one's rule is gone too */
		CU_ASSERT_EQUAL(cd_fsaudit_ctl_restore(fd, &ch, why, sizeof(why)), 0);
		char log[800];
		snprintf(log, sizeof(log), "%s/corrald.log", ddir);
		_cleanup_free_ char *text = NULL;
		size_t len = 0;
		CU_ASSERT(util_read_file(log, 1 << 20, &text, &len) == 0 && text &&
		          strstr(text, "audit left on by a corrald that was killed: adopted"));
	}
	close(fd);
}

/* WORKDIR the caller may enter but not list (mode 0100): refused before anything runs. */
static void test_workdir_refused(void)
{
	NEED_READY();
	char dir[700];
	CU_ASSERT_FATAL((size_t)snprintf(dir, sizeof(dir), "%.600s/xonly", g_work) < sizeof(dir));
	CU_ASSERT_FATAL(mkdir(dir, 0700) == 0 && chown(dir, g_uid, g_gid) == 0 &&
	                chmod(dir, 0100) == 0);
	char saved[700];
	snprintf(saved, sizeof(saved), "%s", g_work);
	snprintf(g_work, sizeof(g_work), "%s", dir);
	struct run_out o = {0};
	const char *a[] = {"--", g_probe, "exit", "0", NULL};
	CU_ASSERT_EQUAL(run(&o, a), 126);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "cannot start session: workdir:"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "may not enter it"));
	run_out_free(&o);
	snprintf(g_work, sizeof(g_work), "%s", saved);
	(void)rmdir(dir);
}

static void test_io_uring_violation(void)
{
	NEED_READY();
	struct run_out o = {0};
	const char *a[] = {"--", g_probe, "io_uring", NULL};
	CU_ASSERT_EQUAL(run(&o, a), 1);
	CU_ASSERT_STRING_EQUAL(o.out, "EPERM\n");
	run_out_free(&o);

	/* through the CLI users have */
	char *out = NULL;
	const char *ev[] = {"events", "--json", "--limit", "20", NULL};
	CU_ASSERT_EQUAL(fx_cli(&g_d, &out, ev), 0);
	CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "io_uring_setup nr=425"));
	free(out);
	/* and the full event */
	Corral__IpcResponse *resp = events(&g_d);
	const Corral__Event *e =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION,
	                   CORRAL__VIOLATION_KIND__VIOLATION_KIND_SYSCALL, "io_uring_setup");
	CU_ASSERT_PTR_NOT_NULL(e);
	if (e) {
		CU_ASSERT_EQUAL(e->uid, g_uid);
		CU_ASSERT_STRING_EQUAL(e->user, TEST_USER);
		CU_ASSERT_STRING_EQUAL(e->profile, "strict");
		CU_ASSERT_EQUAL(e->policy_version, 1);
		CU_ASSERT_EQUAL(strlen(e->session_id), 32);
		CU_ASSERT_STRING_EQUAL(e->violation->comm, "session_probe");
		CU_ASSERT_FALSE(e->violation->audit_only);
	}
	const Corral__Event *st =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL(st);
	if (st && e) {
		CU_ASSERT_STRING_EQUAL(st->session_id, e->session_id);
		CU_ASSERT_STRING_EQUAL(st->session_start->cwd, g_work);
		CU_ASSERT(has_layer(st, "seccomp:notify") || has_layer(st, "seccomp:baseline"));
	}
	if (resp)
		corral__ipc_response__free_unpacked(resp, NULL);
}

/* A session hammering a denied call: every call is denied, but at most 50 violations per
 * second reach the outbox (the rest are counted), so an agent cannot flood the outbox. */
static void test_violation_rate_limit(void)
{
	NEED_READY();
	struct run_out o = {0};
	const char *a[] = {"--", g_probe, "io_uring-flood", "300", NULL};
	CU_ASSERT_EQUAL(run(&o, a), 0);
	CU_ASSERT_STRING_EQUAL(o.out, "denied=300\n");
	run_out_free(&o);
	Corral__IpcResponse *resp = events(&g_d);
	const Corral__Event *st =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	size_t n = 0;
	for (size_t i = 0; i < resp->events->n_events; i++) {
		const Corral__Event *e = resp->events->events[i];
		n += e->kind == CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION &&
		     strcmp(e->session_id, st->session_id) == 0;
	}
	/* one window of 50, maybe a second one if the loop straddled a second boundary */
	CU_ASSERT(n >= 50 && n <= 100);
	if (n < 50 || n > 100)
		fprintf(stderr, "violations reported for 300 denied calls: %zu\n", n);
	corral__ipc_response__free_unpacked(resp, NULL);
}

static void test_exit_codes(void)
{
	NEED_READY();
	struct run_out o = {0};
	const char *a[] = {"--", g_probe, "exit", "42", NULL};
	CU_ASSERT_EQUAL(run(&o, a), 42);
	run_out_free(&o);

	const char *k[] = {"--", "/bin/sh", "-c", "kill -KILL $$", NULL};
	CU_ASSERT_EQUAL(run(&o, k), 137);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "corral: session killed by signal 9"));
	run_out_free(&o);

	const char *n[] = {"--", "/nonexistent/agent", NULL};
	CU_ASSERT_EQUAL(run(&o, n), 127);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "corral: cannot start session: exec"));
	run_out_free(&o);

	Corral__IpcResponse *resp = events(&g_d);
	const Corral__Event *x =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_EXIT, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL(x);
	if (x)
		CU_ASSERT_EQUAL(x->session_exit->term_signal, SIGKILL);
	if (resp)
		corral__ipc_response__free_unpacked(resp, NULL);
}

static void test_sigterm_forwarded(void)
{
	NEED_READY();
	int of, ef;
	const char *a[] = {"--", g_probe, "ready-wait", NULL};
	pid_t pid = spawn_cli(&g_d, a, false, &of, &ef);
	CU_ASSERT_FATAL(pid > 0);
	/* the probe's stdout is unbuffered: "ready" and "\n" may come in separate writes */
	char buf[16] = "";
	size_t got = 0;
	while (got < 6) {
		struct pollfd pfd = {.fd = of, .events = POLLIN};
		ssize_t n = poll(&pfd, 1, 20000) == 1 ? read(of, buf + got, 6 - got) : -1;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	CU_ASSERT_STRING_EQUAL(buf, "ready\n");
	kill(pid, SIGTERM);
	struct run_out o = {0};
	CU_ASSERT_EQUAL(finish_cli(pid, of, ef, &o), 143);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "killed by signal 15"));
	run_out_free(&o);
}

/*
 * Starts `corral --socket S run -- CMD...` as the test user on a new pty of rows x cols (its
 * controlling terminal); the master side in *ret_master. PS1 is set when `ps1` is given.
 */
static pid_t spawn_cli_pty(unsigned short rows, unsigned short cols, const char *ps1,
                           const char *const *cmd, int *ret_master)
{
	int master, slave;
	struct winsize ws = {.ws_row = rows, .ws_col = cols};
	char rel[700], bin[PATH_MAX];
	const char *argv[16] = {bin, "--socket", g_d.sock, "run", "--"};
	size_t n = 5;
	for (size_t i = 0; cmd[i] && n < ELEMENTSOF(argv) - 1; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	snprintf(rel, sizeof(rel), "%s/bin/corral", harness_binary_dir());
	if (!realpath(rel, bin) || openpty(&master, &slave, NULL, NULL, &ws) < 0)
		return -1;
	if (fchown(slave, g_uid, g_gid) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(master);
		setsid();
		ioctl(slave, TIOCSCTTY, 0);
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
		if (setgroups(0, NULL) < 0 || setgid(g_gid) < 0 || setuid(g_uid) < 0 ||
		    chdir(g_work) < 0)
			_exit(125);
		if (ps1)
			setenv("PS1", ps1, 1);
		execv(bin, (char *const *)argv);
		_exit(125);
	}
	close(slave);
	*ret_master = master;
	return pid;
}

static void test_pty(void)
{
	NEED_READY();
	int master = -1;
	const char *cmd[] = {g_probe, "tty", NULL};
	pid_t pid = spawn_cli_pty(33, 111, NULL, cmd, &master);
	CU_ASSERT_FATAL(pid > 0);
	char out[4096];
	size_t len = 0;
	for (;;) {
		struct pollfd pfd = {.fd = master, .events = POLLIN};
		if (poll(&pfd, 1, 10000) != 1)
			break;
		ssize_t n = read(master, out + len, sizeof(out) - 1 - len);
		if (n <= 0)
			break; /* EIO once the CLI exited */
		len += (size_t)n;
	}
	out[len] = '\0';
	int st = 0;
	waitpid(pid, &st, 0);
	close(master);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "tty=/dev/pts/"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "size=33 111"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "tiocsti=EPERM"));
	if (!strstr(out, "tty=/dev/pts/") || !strstr(out, "tiocsti=EPERM"))
		fprintf(stderr, "pty output: %s\n", out);
	Corral__IpcResponse *resp = events(&g_d);
	const Corral__Event *e =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION,
	                   CORRAL__VIOLATION_KIND__VIOLATION_KIND_SYSCALL, "ioctl");
	CU_ASSERT_PTR_NOT_NULL(e);
	if (e)
		CU_ASSERT_PTR_NOT_NULL(strstr(e->violation->detail, "0x5412")); /* TIOCSTI */
	if (resp)
		corral__ipc_response__free_unpacked(resp, NULL);
}

/* Reads from the pty master into out until `want` appears (or EOF/timeout). */
static bool read_until(int master, char *out, size_t cap, size_t *len, const char *want)
{
	while (!strstr(out, want)) {
		struct pollfd pfd = {.fd = master, .events = POLLIN};
		if (poll(&pfd, 1, 10000) != 1)
			return false;
		ssize_t n = read(master, out + *len, cap - 1 - *len);
		if (n <= 0)
			return false;
		*len += (size_t)n;
		out[*len] = '\0';
	}
	return true;
}

/* Window changes reach the session (CLI SIGWINCH -> RunSignal -> TIOCSWINSZ), and ^C typed
 * on the raw terminal reaches the session's line discipline as SIGINT (exit 130). */
static void test_pty_winch_and_interrupt(void)
{
	NEED_READY();
	int master = -1;
	const char *cmd[] = {g_probe, "winch", NULL};
	pid_t pid = spawn_cli_pty(24, 80, NULL, cmd, &master);
	CU_ASSERT_FATAL(pid > 0);
	char out[8192] = "";
	size_t len = 0;
	CU_ASSERT(read_until(master, out, sizeof(out), &len, "size=24 80 ready"));
	struct winsize big = {.ws_row = 40, .ws_col = 120};
	CU_ASSERT(ioctl(master, TIOCSWINSZ, &big) == 0); /* SIGWINCH to the CLI */
	CU_ASSERT(read_until(master, out, sizeof(out), &len, "now=40 120"));
	CU_ASSERT(write(master, "\003", 1) == 1);
	(void)read_until(master, out, sizeof(out), &len, "\x01never");
	int st = 0;
	waitpid(pid, &st, 0);
	/* the CLI restored the terminal it had put in raw mode */
	struct termios t;
	CU_ASSERT(tcgetattr(master, &t) == 0 && (t.c_lflag & ICANON) && (t.c_lflag & ECHO));
	close(master);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 130);
	if (!strstr(out, "now=40 120") || !WIFEXITED(st) || WEXITSTATUS(st) != 130)
		fprintf(stderr, "pty output (status %d): %s\n", st, out);
}

/* An interactive shell on the relayed pty: typed commands run, their output comes back, and
 * `exit 5` ends the session with 5. */
static void test_pty_shell(void)
{
	NEED_READY();
	int master = -1;
	const char *sh[] = {"/bin/sh", "-i", NULL};
	pid_t pid = spawn_cli_pty(24, 80, "corral$ ", sh, &master);
	CU_ASSERT_FATAL(pid > 0);
	char out[8192] = "";
	size_t len = 0;
	CU_ASSERT(read_until(master, out, sizeof(out), &len, "$ "));
	const char *cmd = "echo sum=$((40+2)) in $(pwd)\n";
	CU_ASSERT(write(master, cmd, strlen(cmd)) == (ssize_t)strlen(cmd));
	char want[800];
	snprintf(want, sizeof(want), "sum=42 in %.700s", g_work);
	CU_ASSERT(read_until(master, out, sizeof(out), &len, want));
	CU_ASSERT(write(master, "exit 5\n", 7) == 7);
	(void)read_until(master, out, sizeof(out), &len, "\x01never");
	int st = 0;
	waitpid(pid, &st, 0);
	close(master);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 5);
	if (!strstr(out, want) || !WIFEXITED(st) || WEXITSTATUS(st) != 5)
		fprintf(stderr, "shell output (status %d): %s\n", st, out);
}

static void test_profile_selection(void)
{
	NEED_READY();
	struct run_out o = {0};
	const char *a[] = {"--profile", "hidden", "--", g_probe, "exit", "0", NULL};
	CU_ASSERT_EQUAL(run(&o, a), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "profile \"hidden\" is not selectable"));
	run_out_free(&o);
	const char *b[] = {"--profile", "no-such", "--", g_probe, "exit", "0", NULL};
	CU_ASSERT_EQUAL(run(&o, b), 2);
	run_out_free(&o);
}

static void test_network_denied(void)
{
	NEED_READY();
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	CU_ASSERT_FATAL(ls >= 0 && bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	                listen(ls, 4) == 0 && getsockname(ls, (struct sockaddr *)&sa, &sl) == 0);
	char port[16], target[32];
	snprintf(port, sizeof(port), "%u", (unsigned)ntohs(sa.sin_port));
	snprintf(target, sizeof(target), "127.0.0.1:%s", port);
	struct run_out o = {0};
	const char *a[] = {"--", g_probe, "connect", port, NULL};
	int rc = run(&o, a);
	close(ls);
	Corral__IpcResponse *resp = events(&g_d);
	const Corral__Event *st =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, 0, NULL);
	if (!has_layer(st, "net:bpf")) {
		run_out_free(&o);
		if (resp)
			corral__ipc_response__free_unpacked(resp, NULL);
		HARNESS_SKIP("BPF egress unavailable on this host (strict profile refused)");
	}
	CU_ASSERT_EQUAL(rc, 1);
	CU_ASSERT_STRING_EQUAL(o.out, "EPERM\n");
	run_out_free(&o);
	const Corral__Event *e = find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION,
	                                    CORRAL__VIOLATION_KIND__VIOLATION_KIND_NETWORK, target);
	CU_ASSERT_PTR_NOT_NULL(e);
	if (e && st) {
		CU_ASSERT_STRING_EQUAL(e->session_id, st->session_id);
		CU_ASSERT_PTR_NOT_NULL(strstr(e->violation->detail, "protocol=tcp"));
		CU_ASSERT_EQUAL(e->uid, g_uid);
	}
	if (resp)
		corral__ipc_response__free_unpacked(resp, NULL);
}

static void test_memory_limit(void)
{
	NEED_READY();
	struct run_out o = {0};
	const char *a[] = {"--profile", "small", "--", g_probe, "alloc", "200", NULL};
	int rc = run(&o, a);
	if (rc == 126 && strstr(o.err, "memory")) {
		fprintf(stderr, "%s", o.err);
		run_out_free(&o);
		HARNESS_SKIP("no memory controller for session cgroups");
	}
	CU_ASSERT_EQUAL(rc, 137);
	run_out_free(&o);
	Corral__IpcResponse *resp = events(&g_d);
	const Corral__Event *x =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_EXIT, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL(x);
	if (x) {
		CU_ASSERT_STRING_EQUAL(x->profile, "small");
		CU_ASSERT_TRUE(x->session_exit->oom_killed);
		CU_ASSERT_EQUAL(x->session_exit->term_signal, SIGKILL);
	}
	if (resp)
		corral__ipc_response__free_unpacked(resp, NULL);
}

/* A second daemon told (test hook) that BPF egress is unavailable. */
static void test_egress_unavailable(void)
{
	NEED_READY();
	char ddir[700];
	snprintf(ddir, sizeof(ddir), "%s/d2", g_dir);
	CU_ASSERT_FATAL(mkdir(ddir, 0755) == 0);
	setenv("CORRAL_TEST_EGRESS_UNAVAILABLE", "1", 1);
	struct fx_daemon d2 = {0};
	const char *args[] = {"--offline", "--trust",      g_root_path, "--group",
	                      "eng",       "--test-hooks", NULL};
	int r = fx_daemon_start(&d2, ddir, args);
	unsetenv("CORRAL_TEST_EGRESS_UNAVAILABLE");
	CU_ASSERT_FATAL(r == 0);
	char path[800];
	snprintf(path, sizeof(path), "%s/bundle", g_dir);
	const char *ap[] = {"policy", "apply", path, NULL};
	CU_ASSERT_EQUAL(fx_cli(&d2, NULL, ap), 0);

	struct run_out o = {0};
	const char *a[] = {"--", g_probe, "exit", "0", NULL};
	CU_ASSERT_EQUAL(run_in(&d2, &o, false, a), 126);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "cannot start session: network:"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "BPF egress filtering is unavailable"));
	run_out_free(&o);

	const char *b[] = {"--profile", "ports", "--", g_probe, "exit", "7", NULL};
	CU_ASSERT_EQUAL(run_in(&d2, &o, false, b), 7);
	run_out_free(&o);
	Corral__IpcResponse *resp = events(&d2);
	const Corral__Event *st =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, 0, NULL);
	CU_ASSERT(has_layer(st, "net:landlock-ports"));
	CU_ASSERT(has_layer(st, "landlock:tcp-ports"));
	bool reported = has_layer(st, "report:filesystem");
	if (resp)
		corral__ipc_response__free_unpacked(resp, NULL);
	/* a port the Landlock rules do not allow: EACCES, and (with kernel audit) a NETWORK
	 * violation from the Landlock record, since there is no BPF layer to report it */
	const char *c[] = {"--profile", "ports", "--", g_probe, "connect", "10", NULL};
	CU_ASSERT_EQUAL(run_in(&d2, &o, false, c), 1);
	CU_ASSERT_STRING_EQUAL(o.out, "EACCES\n");
	run_out_free(&o);
	if (reported) {
		const Corral__Event *v = wait_violation(
		        &d2, CORRAL__VIOLATION_KIND__VIOLATION_KIND_NETWORK, "127.0.0.1:10", &resp);
		CU_ASSERT_PTR_NOT_NULL(v);
		CU_ASSERT(v &&
		          strstr(v->violation->detail, "blockers=net.connect_tcp layer=landlock"));
		CU_ASSERT(v && strcmp(v->profile, "ports") == 0);
		if (resp)
			corral__ipc_response__free_unpacked(resp, NULL);
	}
	fx_daemon_stop(&d2, SIGTERM);
}

/* Hostname rules: the session gets the proxy environment (although env_allow does not list
 * it), BPF lets it reach exactly the proxy, and a refused CONNECT is a NETWORK violation. */
static void test_proxy(void)
{
	NEED_READY();
	/* a second session of the same profile idles meanwhile: the refusal must still name
	 * the session that made the request (client socket -> cgroup via sock_diag) */
	int iof = -1, ief = -1;
	const char *idle[] = {"--profile", "web", "--", g_probe, "ready-wait", NULL};
	pid_t idle_pid = spawn_cli(&g_d, idle, false, &iof, &ief);
	CU_ASSERT_FATAL(idle_pid > 0);
	char rbuf[8] = "";
	size_t got = 0;
	while (got < 6) {
		struct pollfd pfd = {.fd = iof, .events = POLLIN};
		ssize_t n = poll(&pfd, 1, 20000) == 1 ? read(iof, rbuf + got, 6 - got) : -1;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	struct run_out o = {0};
	const char *a[] = {"--profile", "web", "--", g_probe, "proxy", "evil.test:443", NULL};
	int rc = run(&o, a);
	kill(idle_pid, SIGTERM);
	struct run_out io = {0};
	(void)finish_cli(idle_pid, iof, ief, &io);
	run_out_free(&io);
	Corral__IpcResponse *resp = events(&g_d);
	const Corral__Event *st = NULL; /* the start of the session that ran the proxy probe */
	for (size_t i = 0; resp && resp->body_case == CORRAL__IPC_RESPONSE__BODY_EVENTS &&
	                   i < resp->events->n_events && !st;
	     i++) {
		const Corral__Event *x = resp->events->events[i];
		if (x->kind == CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START &&
		    x->session_start->n_argv >= 2 &&
		    strcmp(x->session_start->argv[1], "proxy") == 0)
			st = x;
	}
	if (rc == 126 && !has_layer(st, "net:bpf")) {
		run_out_free(&o);
		if (resp)
			corral__ipc_response__free_unpacked(resp, NULL);
		HARNESS_SKIP("BPF egress unavailable on this host");
	}
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT(util_startswith(o.out, "HTTP/1.") && !strstr(o.out, " 200"));
	if (rc != 0 || !util_startswith(o.out, "HTTP/1."))
		fprintf(stderr, "proxy probe (%d): %s %s\n", rc, o.out, o.err);
	run_out_free(&o);
	const Corral__Event *e =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION,
	                   CORRAL__VIOLATION_KIND__VIOLATION_KIND_NETWORK, "evil.test:443");
	CU_ASSERT_PTR_NOT_NULL(e);
	if (e) {
		CU_ASSERT_STRING_EQUAL(e->violation->hostname, "evil.test");
		CU_ASSERT_STRING_EQUAL(e->profile, "web");
		CU_ASSERT_PTR_NOT_NULL(strstr(e->violation->detail, "reason=not-allowed"));
		CU_ASSERT_PTR_NOT_NULL(st);
		if (st)
			CU_ASSERT_STRING_EQUAL(e->session_id, st->session_id);
	}
	if (resp)
		corral__ipc_response__free_unpacked(resp, NULL);
}

/* Audit mode (staged rollouts): nothing denied, everything that would be is reported with
 * audit_only, and the session start says so. */
static void test_audit_mode(void)
{
	NEED_READY();
	struct run_out o = {0};
	const char *a[] = {"--profile", "audit", "--", g_probe, "io_uring", NULL};
	run(&o, a);
	/* allowed through: the kernel itself answers (EFAULT for the NULL params), not EPERM */
	CU_ASSERT(strcmp(o.out, "EPERM\n") != 0);
	run_out_free(&o);
	Corral__IpcResponse *resp = events(&g_d);
	const Corral__Event *e =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION,
	                   CORRAL__VIOLATION_KIND__VIOLATION_KIND_SYSCALL, "io_uring_setup");
	const Corral__Event *st =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL(e);
	CU_ASSERT_PTR_NOT_NULL(st);
	if (e && st) {
		CU_ASSERT_TRUE(e->violation->audit_only);
		CU_ASSERT_STRING_EQUAL(e->profile, "audit");
		CU_ASSERT_STRING_EQUAL(e->session_id, st->session_id);
		CU_ASSERT_EQUAL(st->session_start->mode, CORRAL__MODE__MODE_AUDIT);
	}
	if (resp)
		corral__ipc_response__free_unpacked(resp, NULL);
}

/* The session has the caller's supplementary groups (SO_PEERGROUPS at connect). */
static void test_caller_groups(void)
{
	NEED_READY();
	const gid_t extra[] = {4242, 4243};
	g_cli_groups = extra;
	g_cli_ngroups = 2;
	struct run_out o = {0};
	const char *a[] = {"--", "/usr/bin/id", "-G", NULL};
	CU_ASSERT_EQUAL(run(&o, a), 0);
	g_cli_groups = NULL;
	g_cli_ngroups = 0;
	CU_ASSERT_PTR_NOT_NULL(strstr(o.out, " 4242"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.out, " 4243"));
	if (!strstr(o.out, " 4242"))
		fprintf(stderr, "id -G: %s / %s\n", o.out, o.err);
	run_out_free(&o);
}

/* More supplementary groups than a session can carry: refused, never run with fewer. */
static void test_caller_too_many_groups(void)
{
	NEED_READY();
	gid_t many[70]; /* the engine carries at most SBX_GROUPS_MAX (64) */
	for (size_t i = 0; i < ELEMENTSOF(many); i++)
		many[i] = (gid_t)(60000 + i);
	g_cli_groups = many;
	g_cli_ngroups = ELEMENTSOF(many);
	struct run_out o = {0};
	const char *a[] = {"--", g_probe, "exit", "0", NULL};
	CU_ASSERT_EQUAL(run(&o, a), 126);
	g_cli_groups = NULL;
	g_cli_ngroups = 0;
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "credentials"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "supplementary groups"));
	run_out_free(&o);
}

/* CapBnd of `pid` from /proc (all ones when unreadable, which no assertion accepts). */
static unsigned long long cap_bounding(pid_t pid)
{
	char path[64], *buf = NULL, *line;
	size_t len = 0;
	unsigned long long v = ~0ULL;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (util_read_file(path, 1u << 16, &buf, &len) == 0 && (line = strstr(buf, "CapBnd:")))
		v = strtoull(line + 7, NULL, 16);
	free(buf);
	return v;
}

/* corrald narrows its own bounding set at start to what the worker's exec needs
 * (CAP_SETUID, CAP_SETGID), so sessions inherit that and drop only those two. */
static void test_bounding_set(void)
{
	NEED_READY();
	CU_ASSERT_EQUAL(cap_bounding(g_d.pid), (1ULL << CAP_SETUID) | (1ULL << CAP_SETGID));
	struct run_out o = {0};
	const char *a[] = {"--", g_probe, "exit", "0", NULL};
	CU_ASSERT_EQUAL(run(&o, a), 0);
	run_out_free(&o);
}

/* Without CAP_SETPCAP corrald cannot narrow its bounding set: it says so and still starts
 * (sessions then fail closed at the engine's own bounding-set step). */
static void test_bounding_set_refused(void)
{
	NEED_READY();
	char ddir[700];
	snprintf(ddir, sizeof(ddir), "%s/d-nosetpcap", g_dir);
	CU_ASSERT_FATAL(mkdir(ddir, 0755) == 0);
	fflush(NULL);
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct fx_daemon d3 = {0};
		const char *args[] = {"--offline", "--trust", g_root_path, "--group", "eng", NULL};
		if (prctl(PR_CAPBSET_DROP, CAP_SETPCAP, 0, 0, 0) < 0 ||
		    fx_daemon_start(&d3, ddir, args) < 0)
			_exit(2);
		char *log = NULL;
		size_t len = 0;
		int ok = cap_bounding(d3.pid) & (1ULL << CAP_SYS_ADMIN);
		fx_daemon_stop(&d3, SIGTERM);
		if (util_read_file(d3.log, 1u << 20, &log, &len) < 0)
			_exit(3);
		ok = ok && strstr(log, "cannot narrow the capability bounding set") != NULL;
		free(log);
		_exit(ok ? 0 : 4);
	}
	int st = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A new policy version: the next session runs under it (compiled for the new version, the
 * profile's BPF programs kept and their rules swapped). */
static void test_policy_update(void)
{
	NEED_READY();
	char path[800];
	snprintf(path, sizeof(path), "%s/bundle2", g_dir);
	CU_ASSERT_FATAL(make_bundle(path, 2) == 0);
	const char *ap[] = {"policy", "apply", path, NULL};
	CU_ASSERT_EQUAL_FATAL(fx_cli(&g_d, NULL, ap), 0);
	struct run_out o = {0};
	const char *a[] = {"--", g_probe, "io_uring", NULL};
	CU_ASSERT_EQUAL(run(&o, a), 1);
	CU_ASSERT_STRING_EQUAL(o.out, "EPERM\n");
	run_out_free(&o);
	Corral__IpcResponse *resp = events(&g_d);
	const Corral__Event *st =
	        find_event(resp, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL(st);
	if (st)
		CU_ASSERT_EQUAL(st->policy_version, 2);
	if (resp)
		corral__ipc_response__free_unpacked(resp, NULL);
}

/* ---- one session per connection ---------------------------------------------------------- */

/* Receives one response within 10 s; NULL on timeout or a bad frame. */
static Corral__IpcResponse *recv_resp(int sock)
{
	struct pollfd p = {.fd = sock, .events = POLLIN};
	if (poll(&p, 1, 10000) != 1)
		return NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	ssize_t n = cd_ipc_recv(sock, CD_IPC_FRAME_MAX, &buf, NULL, 0, NULL);
	return n > 0 ? corral__ipc_response__unpack(NULL, (size_t)n, buf) : NULL;
}

/* Sends a RunRequest for `argv` with fresh pipes as stdio; our ends in ret_in/ret_out. */
static int send_run(int sock, const char *const *argv, int *ret_in, int *ret_out)
{
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	char path_env[] = "PATH=/usr/bin:/bin";
	char *env[] = {path_env};
	Corral__RunRequest rr = CORRAL__RUN_REQUEST__INIT;
	size_t n = 0;
	while (argv[n])
		n++;
	rr.argv = (char **)argv;
	rr.n_argv = n;
	rr.cwd = g_work;
	rr.env = env;
	rr.n_env = 1;
	rr.profile = (char *)"";
	Corral__IpcRequest rq = CORRAL__IPC_REQUEST__INIT;
	rq.body_case = CORRAL__IPC_REQUEST__BODY_RUN;
	rq.run = &rr;
	int fds[3] = {in[0], out[1], out[1]};
	int r = cd_ipc_send(sock, &rq.base, CD_IPC_FRAME_MAX, fds, 3);
	close(in[0]);
	close(out[1]);
	if (r < 0) {
		close(in[1]);
		close(out[0]);
		return -1;
	}
	*ret_in = in[1];
	*ret_out = out[0];
	return 0;
}

/* Whether `fd` reaches EOF within 5 s (every write end elsewhere is closed). */
static bool eof_soon(int fd)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 5000) != 1)
			return false;
		char buf[256];
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n == 0)
			return true;
		if (n < 0)
			return false;
	}
}

/*
 * As the test account (forked child, setuid): a second RunRequest on a connection whose
 * session still runs is refused with EBUSY, never runs, its descriptors are closed by the
 * daemon, and the first session carries on to its own exit status. Exit code: the failed
 * step, 0 when all held.
 */
static int second_run_child(const char *marker)
{
	if (setgroups(0, NULL) < 0 || setgid(g_gid) < 0 || setuid(g_uid) < 0)
		return 2;
	int sock = cd_ipc_connect(g_d.sock);
	if (sock < 0)
		return 3;
	const char *first[] = {"/bin/sh", "-c", "read x; echo got $x; exit 7", NULL};
	int in1, out1;
	if (send_run(sock, first, &in1, &out1) < 0)
		return 4;
	Corral__IpcResponse *r = recv_resp(sock);
	bool started = r && r->body_case == CORRAL__IPC_RESPONSE__BODY_RUN_STARTED;
	if (r)
		corral__ipc_response__free_unpacked(r, NULL);
	if (!started)
		return 5;
	char cmd[900];
	snprintf(cmd, sizeof(cmd), "echo ran > %s", marker);
	const char *second[] = {"/bin/sh", "-c", cmd, NULL};
	int in2, out2;
	if (send_run(sock, second, &in2, &out2) < 0)
		return 6;
	r = recv_resp(sock);
	bool busy = r && r->body_case == CORRAL__IPC_RESPONSE__BODY_ERROR &&
	            r->error->err == EBUSY && strstr(r->error->message, "already");
	if (r)
		corral__ipc_response__free_unpacked(r, NULL);
	if (!busy)
		return 7;
	/* The daemon kept no copy of the refused request's stdout. */
	if (!eof_soon(out2))
		return 8;
	close(in2);
	close(out2);
	/* The first session is untouched: it reads its stdin and exits 7. */
	if (write(in1, "hello\n", 6) != 6)
		return 9;
	close(in1);
	char buf[64] = "";
	struct pollfd p = {.fd = out1, .events = POLLIN};
	ssize_t n = poll(&p, 1, 10000) == 1 ? read(out1, buf, sizeof(buf) - 1) : -1;
	if (n <= 0 || !strstr(buf, "got hello"))
		return 10;
	r = recv_resp(sock);
	bool exited = r && r->body_case == CORRAL__IPC_RESPONSE__BODY_RUN_EXITED &&
	              r->run_exited->exit_status == 7;
	if (r)
		corral__ipc_response__free_unpacked(r, NULL);
	close(out1);
	close(sock);
	return exited ? 0 : 11;
}

static void test_second_run_refused(void)
{
	NEED_READY();
	char marker[800];
	snprintf(marker, sizeof(marker), "%s/second-run-ran", g_work);
	(void)unlink(marker);
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0)
		_exit(second_run_child(marker));
	int st = 0;
	CU_ASSERT_EQUAL_FATAL(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		printf("\n  child failed at step %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CU_ASSERT_EQUAL(access(marker, F_OK), -1); /* the refused command never ran */
	/* The daemon serves on. */
	struct run_out o = {0};
	const char *a[] = {"--", g_probe, "exit", "3", NULL};
	CU_ASSERT_EQUAL(run(&o, a), 3);
	run_out_free(&o);
}

static const struct harness_test tests[] = {
        {"no_policy_then_apply", test_no_policy_then_apply},
        {"bounding_set", test_bounding_set},
        {"caller_groups", test_caller_groups},
        {"caller_too_many_groups", test_caller_too_many_groups},
        {"bounding_set_refused", test_bounding_set_refused},
        {"root_refused", test_root_refused},
        {"files", test_files},
        {"filesystem_violation", test_filesystem_violation},
        {"filesystem_violation_other_netns", test_filesystem_violation_other_netns},
        {"filesystem_selftest_fails", test_filesystem_selftest_fails},
        {"workdir_refused", test_workdir_refused},
        {"io_uring_violation", test_io_uring_violation},
        {"violation_rate_limit", test_violation_rate_limit},
        {"exit_codes", test_exit_codes},
        {"second_run_refused", test_second_run_refused},
        {"sigterm_forwarded", test_sigterm_forwarded},
        {"pty", test_pty},
        {"pty_winch_and_interrupt", test_pty_winch_and_interrupt},
        {"pty_shell", test_pty_shell},
        {"profile_selection", test_profile_selection},
        {"network_denied", test_network_denied},
        {"proxy", test_proxy},
        {"audit_mode", test_audit_mode},
        {"memory_limit", test_memory_limit},
        {"egress_unavailable", test_egress_unavailable},
        {"policy_update", test_policy_update},
        {"audit_switched_off", test_audit_switched_off},
        {"audit_state_restored", test_audit_state_restored},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"session", suite_init, suite_cleanup, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
