// SPDX-License-Identifier: Apache-2.0
/*
 * corrald offline mode and the corral CLI, with the real binaries: policy apply (applied,
 * rollback, wrong target, bad signature, oversized), policy show, events, status as root and
 * as an unprivileged user, stale after expiry, a clear message when no daemon runs, refusal
 * of bad configuration with file:line, and a clean SIGTERM shutdown.
 */
#include "cleanup.h"
#include "fixture.h"
#include "harness.h"
#include "trust.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *g_dir;
static struct trust_key *g_root, *g_signer, *g_other;
static char g_root_path[700];

static int suite_init(void)
{
	g_dir = harness_mkdtemp("endpoint-offline");
	if (!g_dir || trust_key_generate(&g_root) < 0 || trust_key_generate(&g_signer) < 0 ||
	    trust_key_generate(&g_other) < 0)
		return -1;
	_cleanup_free_ uint8_t *env = NULL;
	size_t len = 0;
	if (fx_make_root(1, &g_root, 1, &g_signer, 1, &g_root, 1, &env, &len) < 0)
		return -1;
	return fx_write(g_dir, "root.tr", env, len, g_root_path, sizeof(g_root_path));
}

static int suite_cleanup(void)
{
	trust_key_free(g_root);
	trust_key_free(g_signer);
	trust_key_free(g_other);
	if (!getenv("CORRAL_KEEP_TMP"))
		harness_rm_rf(g_dir);
	free(g_dir);
	return 0;
}

static int apply(struct fx_daemon *d, uint64_t version, const char *group, int64_t expires_in,
                 struct trust_key *key, char **out)
{
	_cleanup_free_ uint8_t *b = NULL;
	size_t len = 0;
	CU_ASSERT_FATAL(fx_make_bundle(version, group, expires_in, &key, 1, &b, &len) == 0);
	char path[800];
	CU_ASSERT_FATAL(fx_write(d->dir, "bundle", b, len, path, sizeof(path)) == 0);
	const char *args[] = {"policy", "apply", path, NULL};
	return fx_cli(d, out, args);
}

static void test_no_daemon(void)
{
	struct fx_daemon d = {0};
	snprintf(d.sock, sizeof(d.sock), "%s/nothing.sock", g_dir);
	const char *args[] = {"status", NULL};
	char *out = NULL;
	CU_ASSERT_EQUAL(fx_cli(&d, &out, args), 1);
	free(out);
	/* The message goes to stderr; check it through a shell-free dup of stderr. */
	char bin[700];
	snprintf(bin, sizeof(bin), "%s/bin/corral", harness_binary_dir());
	int p[2];
	CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 2);
		setenv("CORRAL_SOCKET", d.sock, 1);
		execl(bin, bin, "status", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char *err = NULL;
	size_t len;
	CU_ASSERT(util_read_fd(p[0], 65536, &err, &len) == 0);
	close(p[0]);
	waitpid(pid, NULL, 0);
	CU_ASSERT_PTR_NOT_NULL(err && strstr(err, "corrald is not running"));
	free(err);
}

static void test_bad_config_refused(void)
{
	char cfg[700];
	const char *text = "offline = yes\n\nheartbeat_interval = often\n";
	CU_ASSERT_FATAL(fx_write(g_dir, "bad.conf", text, strlen(text), cfg, sizeof(cfg)) == 0);
	char bin[700];
	snprintf(bin, sizeof(bin), "%s/bin/corrald", harness_binary_dir());
	int p[2];
	CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 2);
		execl(bin, bin, "--config", cfg, "--config-dir", "/nonexistent-corral",
		      (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char *err = NULL;
	size_t len;
	CU_ASSERT(util_read_fd(p[0], 65536, &err, &len) == 0);
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	CU_ASSERT_PTR_NOT_NULL(err && strstr(err, "bad.conf:3: heartbeat_interval"));
	free(err);
}

/* Runs `bin` offline with `trust` as trust root, data in g_dir/TAG-data; returns its exit
 * status with its stderr in *ret_err (caller frees). */
static int run_offline(const char *bin, const char *trust, const char *tag, char **ret_err)
{
	char data[700], sock[700], conf[700];
	snprintf(conf, sizeof(conf), "%s/%s-conf.d", g_dir, tag); /* no drop-ins */
	if (mkdir(conf, 0755) < 0)
		return -1;
	snprintf(data, sizeof(data), "%s/%s-data", g_dir, tag);
	snprintf(sock, sizeof(sock), "%s/%s.sock", g_dir, tag);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 2);
		execl(bin, bin, "--config", "/dev/null", "--config-dir", conf, "--offline",
		      "--trust", trust, "--data-dir", data, "--socket", sock, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	size_t len;
	if (util_read_fd(p[0], 65536, ret_err, &len) < 0)
		*ret_err = NULL;
	close(p[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	CU_ASSERT_EQUAL(access(sock, F_OK), -1); /* nothing left listening */
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Fail closed: without its crypto helper corrald cannot verify what it would enforce, so it
 * refuses to start and says which file is missing. An empty trust root file is named too. */
static void test_crypto_helper_missing_refused(void)
{
	char bindir[700], bin[800];
	snprintf(bindir, sizeof(bindir), "%s/nohelper", g_dir);
	CU_ASSERT_FATAL(mkdir(bindir, 0755) == 0);
	snprintf(bin, sizeof(bin), "%s/corrald", bindir);
	char from[700];
	snprintf(from, sizeof(from), "%s/bin/corrald", harness_binary_dir());
	char *exe = NULL;
	size_t exe_len = 0;
	CU_ASSERT_FATAL(util_read_file(from, (size_t)512 * 1024 * 1024, &exe, &exe_len) == 0);
	CU_ASSERT_FATAL(util_write_file_atomic(bin, exe, exe_len, 0755) == 0);
	free(exe);
	char *err = NULL;
	CU_ASSERT(run_offline(bin, g_root_path, "nohelper", &err) == 1);
	CU_ASSERT_PTR_NOT_NULL(err && strstr(err, "nohelper/corrald-crypto: No such file"));
	free(err);
	err = NULL;
	char empty[700];
	CU_ASSERT_FATAL(fx_write(g_dir, "empty.tr", "", 0, empty, sizeof(empty)) == 0);
	CU_ASSERT(run_offline(from, empty, "emptyroot", &err) == 1);
	CU_ASSERT_PTR_NOT_NULL(err && strstr(err, "empty.tr: empty file"));
	free(err);
}

static void test_offline_policy_cycle(void)
{
	char dir[700];
	snprintf(dir, sizeof(dir), "%s/d1", g_dir);
	/* Reachable by the unprivileged user of the status check below. */
	CU_ASSERT_FATAL(chmod(g_dir, 0755) == 0);
	CU_ASSERT_FATAL(mkdir(dir, 0755) == 0);
	struct fx_daemon d;
	const char *args[] = {"--offline", "--trust", g_root_path, "--group", "eng", NULL};
	CU_ASSERT_FATAL(fx_daemon_start(&d, dir, args) == 0);

	json_t *st = fx_status(&d);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_TRUE(json_is_true(json_object_get(st, "offline")));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(st, "freshness")), "no-policy");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "trust_root_version")), 1);
	json_decref(st);

	char *out = NULL;
	CU_ASSERT_EQUAL(apply(&d, 1, "eng", 3, g_signer, &out), 0);
	CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "applied: version 1"));
	free(out);
	CU_ASSERT_EQUAL(apply(&d, 1, "eng", 3600, g_signer, &out), 1);
	CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "rejected: rollback:"));
	free(out);
	CU_ASSERT_EQUAL(apply(&d, 2, "ops", 3600, g_signer, &out), 1);
	CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "rejected: wrong-target:"));
	free(out);
	CU_ASSERT_EQUAL(apply(&d, 3, "eng", 3600, g_other, &out), 1);
	if (!out ||
	    !(strstr(out, "rejected: unknown-key:") || strstr(out, "rejected: threshold:"))) {
		printf("\nunexpected: %s\n", out ? out : "(null)");
		CU_FAIL("foreign signer not rejected");
	}
	free(out);
	/* Oversized: refused before being read in full, with the verifier's code. */
	char big[800];
	snprintf(big, sizeof(big), "%s/big", dir);
	int fd = open(big, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(ftruncate(fd, TRUST_ENVELOPE_MAX + 1) == 0);
	close(fd);
	const char *bigargs[] = {"policy", "apply", big, NULL};
	CU_ASSERT_EQUAL(fx_cli(&d, &out, bigargs), 1);
	CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "rejected: too-large:"));
	free(out);

	const char *show[] = {"policy", "show", "--json", NULL};
	CU_ASSERT_EQUAL(fx_cli(&d, &out, show), 0);
	json_t *j = out ? json_loads(out, 0, NULL) : NULL;
	free(out);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "version")), 1);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "name")), "it-policy");
	CU_ASSERT_STRING_EQUAL(
	        json_string_value(json_array_get(json_object_get(j, "signer_key_ids"), 0)),
	        trust_key_id(g_signer));
	json_decref(j);

	/* Events: applied and every rejection, with reason codes, newest first. */
	const char *ev[] = {"events", "--json", "--limit", "50", NULL};
	CU_ASSERT_EQUAL(fx_cli(&d, &out, ev), 0);
	j = out ? json_loads(out, 0, NULL) : NULL;
	free(out);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	unsigned applied = 0, rejected = 0;
	size_t i;
	json_t *e;
	json_array_foreach (json_object_get(j, "events"), i, e) {
		const char *k = json_string_value(json_object_get(e, "kind"));
		applied += strcmp(k, "POLICY_APPLIED") == 0;
		rejected += strcmp(k, "POLICY_REJECTED") == 0;
	}
	CU_ASSERT_EQUAL(applied, 1);
	CU_ASSERT_EQUAL(rejected, 4);
	json_decref(j);

	/* Unprivileged users may read status but not apply. */
	pid_t pid = fork();
	if (pid == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(99);
		char *o = NULL;
		const char *sargs[] = {"status", NULL};
		int rc1 = fx_cli(&d, &o, sargs);
		free(o);
		char path[800];
		snprintf(path, sizeof(path), "%s/bundle", dir);
		const char *aargs[] = {"policy", "apply", "/dev/null", NULL};
		int rc2 = fx_cli(&d, &o, aargs);
		free(o);
		const char *fargs[] = {"flush", NULL};
		int rc3 = fx_cli(&d, &o, fargs);
		free(o);
		(void)path;
		_exit(rc1 == 0 && rc2 == 1 && rc3 == 1 ? 0 : 1);
	}
	int wst;
	waitpid(pid, &wst, 0);
	if (harness_is_root())
		CU_ASSERT(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);

	/* Root may flush (offline: nothing to upload to, the request is still answered). */
	const char *fargs[] = {"flush", NULL};
	CU_ASSERT_EQUAL(fx_cli(&d, &out, fargs), 0);
	CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "pending"));
	free(out);

	/* `corral run` requests reach the session module; one without the caller's three stdio
	 * descriptors is refused (EINVAL) before anything is spawned. Real sessions are
	 * exercised by tests/privileged/session. */
	Corral__RunRequest run = CORRAL__RUN_REQUEST__INIT;
	char *argv0[] = {(char *)"/bin/true"};
	run.argv = argv0;
	run.n_argv = 1;
	Corral__IpcRequest rq = CORRAL__IPC_REQUEST__INIT;
	rq.body_case = CORRAL__IPC_REQUEST__BODY_RUN;
	rq.run = &run;
	Corral__IpcResponse *resp = fx_ipc(&d, &rq);
	CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
	CU_ASSERT_EQUAL(resp->body_case, CORRAL__IPC_RESPONSE__BODY_RUN_FAILED);
	if (resp->body_case == CORRAL__IPC_RESPONSE__BODY_RUN_FAILED)
		CU_ASSERT_EQUAL(resp->run_failed->err, EINVAL);
	corral__ipc_response__free_unpacked(resp, NULL);
	/* The test hook is off unless configured. */
	Corral__TestGenerateRequest tg = CORRAL__TEST_GENERATE_REQUEST__INIT;
	tg.count = 1;
	rq.body_case = CORRAL__IPC_REQUEST__BODY_TEST_GENERATE;
	rq.test_generate = &tg;
	resp = fx_ipc(&d, &rq);
	CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
	CU_ASSERT_EQUAL(resp->body_case, CORRAL__IPC_RESPONSE__BODY_ERROR);
	if (resp->body_case == CORRAL__IPC_RESPONSE__BODY_ERROR)
		CU_ASSERT_EQUAL(resp->error->err, EOPNOTSUPP);
	corral__ipc_response__free_unpacked(resp, NULL);

	/* The bundle expires after 3 s: still enforced, reported stale. */
	CU_ASSERT(fx_wait_status_str(&d, "freshness", "stale", 6000) >= 0);
	st = fx_status(&d);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "policy_version")), 1);
	json_decref(st);

	CU_ASSERT_EQUAL(fx_daemon_stop(&d, SIGTERM), 0);
	struct stat sst;
	CU_ASSERT_EQUAL(stat(d.sock, &sst), -1); /* socket removed on shutdown */

	/* Restart keeps the policy and the highest version (rollback survives restarts). */
	CU_ASSERT_FATAL(fx_daemon_start(&d, dir, args) == 0);
	CU_ASSERT_EQUAL(apply(&d, 1, "eng", 3600, g_signer, &out), 1);
	CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "rollback"));
	free(out);
	CU_ASSERT_EQUAL(apply(&d, 5, "eng", 3600, g_signer, &out), 0);
	free(out);
	CU_ASSERT(fx_wait_status_str(&d, "freshness", "fresh", 2000) >= 0);
	/* A second daemon on the same socket refuses to start. */
	struct fx_daemon d2;
	if (fx_daemon_start(&d2, dir, args) == 0)
		CU_ASSERT_EQUAL(fx_daemon_stop(&d2, 0), 1);
	CU_ASSERT_EQUAL(fx_daemon_stop(&d, SIGTERM), 0);
}

static const struct harness_test tests[] = {
        {"no_daemon", test_no_daemon},
        {"bad_config_refused", test_bad_config_refused},
        {"crypto_helper_missing_refused", test_crypto_helper_missing_refused},
        {"offline_policy_cycle", test_offline_policy_cycle},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"endpoint_offline", suite_init, suite_cleanup, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
