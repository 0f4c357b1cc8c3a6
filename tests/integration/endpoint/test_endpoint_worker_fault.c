// SPDX-License-Identifier: Apache-2.0
/*
 * A misbehaving network worker, injected: corrald runs from a copy of its executable next to
 * a stand-in corrald-worker (fake_worker.c) whose first three starts send an undecodable
 * packet, a well-formed message the parent never expects, and a packet with a descriptor
 * attached; the fourth exits at once with the parent's first frame unread (ECONNRESET: gone,
 * not malformed); the fifth start execs the real worker. Against the real corral-server the
 * parent must kill each bad worker (it never exits on its own), restart it after the
 * backoff it logged (bounded by backoff_max), report each fault as an agent_health
 * "worker-malformed" event next to "worker-restarted", and then enroll, receive policy and
 * upload those events as if nothing had happened.
 */
#include "cleanup.h"
#include "fixture.h"
#include "harness.h"
#include "trust.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BACKOFF_MAX_MS 2000

static char *g_dir;
static struct fx_server g_srv;
static struct fx_daemon g_d;
static struct trust_key *g_root, *g_signer;
static char g_root_path[700], g_url[128], g_ca[700], g_bindir[700];
static bool g_ready;

static int copy_exe(const char *from, const char *to)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (util_read_file(from, (size_t)512 * 1024 * 1024, &buf, &len) < 0)
		return -1;
	return util_write_file_atomic(to, buf, len, 0755) < 0 ? -1 : 0;
}

static int suite_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	g_dir = harness_mkdtemp("endpoint-worker-fault");
	if (!g_dir || fx_server_start(&g_srv, g_dir, 0) < 0)
		return 0; /* tests skip with the reason */
	if (trust_key_generate(&g_root) < 0 || trust_key_generate(&g_signer) < 0)
		return -1;
	snprintf(g_url, sizeof(g_url), "https://127.0.0.1:%u", g_srv.port);
	snprintf(g_ca, sizeof(g_ca), "%s/srv/ca.pem", g_dir);
	if (fx_admin(&g_srv, "POST", "groups", "{\"name\":\"eng\"}", NULL) != 201)
		return -1;
	_cleanup_free_ uint8_t *env = NULL;
	size_t len = 0;
	if (fx_make_root(1, &g_root, 1, &g_signer, 1, &g_root, 1, &env, &len) < 0 ||
	    fx_admin_upload(&g_srv, "trust", env, len) != 200 ||
	    fx_write(g_dir, "root.tr", env, len, g_root_path, sizeof(g_root_path)) < 0)
		return -1;
	/* corrald finds its helpers next to /proc/self/exe: give it a directory of its own. */
	char from[700], to[800];
	snprintf(g_bindir, sizeof(g_bindir), "%s/bin", g_dir);
	if (mkdir(g_bindir, 0755) < 0)
		return -1;
	snprintf(from, sizeof(from), "%s/bin/corrald", harness_binary_dir());
	snprintf(to, sizeof(to), "%s/corrald", g_bindir);
	if (copy_exe(from, to) < 0)
		return -1;
	snprintf(from, sizeof(from), "%s/bin/corrald-crypto", harness_binary_dir());
	snprintf(to, sizeof(to), "%s/corrald-crypto", g_bindir);
	if (copy_exe(from, to) < 0)
		return -1;
	snprintf(from, sizeof(from), "%s/bin/corrald-worker", harness_binary_dir());
	snprintf(to, sizeof(to), "%s/corrald-worker.real", g_bindir);
	if (copy_exe(from, to) < 0)
		return -1;
	snprintf(to, sizeof(to), "%s/corrald-worker", g_bindir);
	if (copy_exe(FAKE_WORKER_PATH, to) < 0)
		return -1;
	g_ready = true;
	return 0;
}

static int suite_cleanup(void)
{
	if (g_d.pid > 0)
		fx_daemon_stop(&g_d, SIGTERM);
	fx_server_stop(&g_srv, false);
	trust_key_free(g_root);
	trust_key_free(g_signer);
	if (!getenv("CORRAL_KEEP_TMP"))
		harness_rm_rf(g_dir);
	free(g_dir);
	curl_global_cleanup();
	return 0;
}

/* The n-th (from 0) "restarting in N ms" of the daemon log, or -1. */
static long long logged_delay(const char *log, int nth)
{
	const char *p = log;
	for (int i = 0; p; i++) {
		p = strstr(p, "restarting in ");
		if (!p)
			return -1;
		p += strlen("restarting in ");
		if (i == nth)
			return strtoll(p, NULL, 10);
	}
	return -1;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void test_malformed_worker_restarted(void)
{
	if (!g_ready)
		HARNESS_SKIP("corral-server did not start (see its log)");
	char dir[700], tok[800], faults[800], bin[800];
	snprintf(dir, sizeof(dir), "%s/dev", g_dir);
	CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
	_cleanup_free_ char *token = fx_enroll_token(&g_srv, "eng");
	CU_ASSERT_FATAL(token != NULL);
	CU_ASSERT_FATAL(fx_write(dir, "token", token, strlen(token), tok, sizeof(tok)) == 0);
	snprintf(faults, sizeof(faults), "%s/faults", g_bindir);
	static const char modes[] = "garbage\nunexpected\nfd\nexit\n";
	CU_ASSERT_FATAL(util_write_file_atomic(faults, modes, strlen(modes), 0644) == 0);
	snprintf(bin, sizeof(bin), "%s/corrald", g_bindir);
	const char *args[] = {"--server-url",
	                      g_url,
	                      "--server-ca-file",
	                      g_ca,
	                      "--enroll-token-file",
	                      tok,
	                      "--trust",
	                      g_root_path,
	                      "--poll-wait",
	                      "20",
	                      "--backoff-max",
	                      "2s",
	                      "--heartbeat-interval",
	                      "60",
	                      "--log-level",
	                      "debug",
	                      NULL};
	CU_ASSERT_FATAL(fx_daemon_start_bin(&g_d, dir, bin, args) == 0);

	/* Three bad workers, each killed and restarted, one that exits, then the real one. */
	CU_ASSERT_FATAL(fx_wait_status_true(&g_d, "enrolled", 30000) >= 0);
	_cleanup_free_ uint8_t *b = NULL;
	size_t blen = 0;
	CU_ASSERT_FATAL(fx_make_bundle(3, "eng", 3600, &g_signer, 1, &b, &blen) == 0);
	CU_ASSERT_FATAL(fx_admin_upload(&g_srv, "groups/eng/policy", b, blen) == 200);
	CU_ASSERT(fx_wait_status_int(&g_d, "policy_version", 3, 10000) >= 0);

	/* Reported locally: one worker-malformed per fault with its cause, each followed by
	 * worker-restarted with the SIGKILL the parent sent. */
	const char *ev[] = {"events", "--json", "--limit", "200", NULL};
	_cleanup_free_ char *out = NULL;
	CU_ASSERT_FATAL(fx_cli(&g_d, &out, ev) == 0 && out);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "worker-malformed undecodable message"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "worker-malformed unexpected message"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "worker-malformed bad frame"));
	CU_ASSERT_EQUAL(count(out, "worker-malformed"), 3);
	CU_ASSERT_EQUAL(count(out, "worker-restarted killed by signal 9"), 3);
	/* the worker that exited with our frame unread is restarted, not called malformed */
	CU_ASSERT_EQUAL(count(out, "worker-restarted exited with status 3"), 1);

	/* The starts: three faults, then the real worker; each restart waited at least the
	 * delay the parent logged, and that delay is within backoff_max. */
	char starts_path[800];
	snprintf(starts_path, sizeof(starts_path), "%s/starts", g_bindir);
	_cleanup_free_ char *starts = NULL, *log = NULL;
	CU_ASSERT_FATAL(util_read_file(starts_path, 65536, &starts, NULL) == 0);
	CU_ASSERT_FATAL(util_read_file(g_d.log, 4 * 1024 * 1024, &log, NULL) == 0);
	char mode[5][32];
	long long at[5];
	const char *p = starts;
	int n = 0;
	for (; n < 5; n++) {
		int used = 0;
		if (sscanf(p, "%31s %lld\n%n", mode[n], &at[n], &used) != 2)
			break;
		p += used;
	}
	CU_ASSERT_FATAL(n == 5);
	CU_ASSERT_STRING_EQUAL(mode[0], "garbage");
	CU_ASSERT_STRING_EQUAL(mode[1], "unexpected");
	CU_ASSERT_STRING_EQUAL(mode[2], "fd");
	CU_ASSERT_STRING_EQUAL(mode[3], "exit");
	CU_ASSERT_STRING_EQUAL(mode[4], "real");
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "stopping network worker: undecodable message"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "stopping network worker: unexpected message"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "stopping network worker: malformed frame"));
	for (int i = 0; i < 4; i++) {
		long long delay = logged_delay(log, i);
		printf("\n  restart %d: logged backoff %lld ms, next start after %lld ms", i + 1,
		       delay, at[i + 1] - at[i]);
		CU_ASSERT(delay >= 0 && delay <= BACKOFF_MAX_MS);
		CU_ASSERT(at[i + 1] - at[i] >= delay);
	}
	printf("\n");

	/* Sync resumed: the health events reached the server. */
	json_t *st = fx_status(&g_d);
	CU_ASSERT_FATAL(st != NULL);
	char path[256];
	snprintf(path, sizeof(path), "events?device=%s&kind=7",
	         json_string_value(json_object_get(st, "device_id")));
	json_decref(st);
	bool at_server = false;
	for (int i = 0; i < 200 && !at_server; i++) {
		json_t *j = NULL;
		if (fx_admin(&g_srv, "GET", path, NULL, &j) == 200) {
			char *txt = json_dumps(j, 0);
			at_server = txt && count(txt, "worker-malformed") == 3 &&
			            strstr(txt, "undecodable message") && strstr(txt, "bad frame");
			free(txt);
		}
		json_decref(j);
		if (!at_server)
			usleep(50000);
	}
	CU_ASSERT(at_server);
	CU_ASSERT_EQUAL(fx_daemon_stop(&g_d, SIGTERM), 0);
}

static const struct harness_test tests[] = {
        {"malformed_worker_restarted", test_malformed_worker_restarted},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"endpoint_worker_fault", suite_init, suite_cleanup, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
