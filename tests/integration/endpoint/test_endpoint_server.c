// SPDX-License-Identifier: Apache-2.0
/*
 * corrald against the real corral-server on loopback: enrollment with a token (device key
 * generated locally, token removed), a published policy arriving by long-poll within 1 s, a
 * new trust root applied through the rotation rules, a bundle rejected with its reason code
 * and reported to the server, and a server outage: the cached policy stays enforced, is
 * reported stale once it expires, and the daemon recovers (policy and queued events) when
 * the server returns on the same port.
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

static char *g_dir;
static struct fx_server g_srv;
static struct fx_daemon g_a, g_b;
static struct trust_key *g_root1, *g_root2, *g_signer, *g_rogue_root, *g_rogue_signer;
static char g_root_path[700], g_rogue_root_path[700], g_url[128], g_ca[700];
static bool g_ready;

static int suite_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	g_dir = harness_mkdtemp("endpoint-server");
	if (!g_dir || fx_server_start(&g_srv, g_dir, 0) < 0)
		return 0; /* tests skip with the reason */
	if (trust_key_generate(&g_root1) < 0 || trust_key_generate(&g_root2) < 0 ||
	    trust_key_generate(&g_signer) < 0 || trust_key_generate(&g_rogue_root) < 0 ||
	    trust_key_generate(&g_rogue_signer) < 0)
		return -1;
	snprintf(g_url, sizeof(g_url), "https://127.0.0.1:%u", g_srv.port);
	snprintf(g_ca, sizeof(g_ca), "%s/srv/ca.pem", g_dir);
	if (fx_admin(&g_srv, "POST", "groups", "{\"name\":\"eng\"}", NULL) != 201)
		return -1;
	_cleanup_free_ uint8_t *env = NULL, *rogue = NULL;
	size_t len = 0, rlen = 0;
	if (fx_make_root(1, &g_root1, 1, &g_signer, 1, &g_root1, 1, &env, &len) < 0 ||
	    fx_admin_upload(&g_srv, "trust", env, len) != 200 ||
	    fx_write(g_dir, "root.tr", env, len, g_root_path, sizeof(g_root_path)) < 0)
		return -1;
	/* A device installed with a different fleet's root: it must refuse this fleet's policy. */
	if (fx_make_root(1, &g_rogue_root, 1, &g_rogue_signer, 1, &g_rogue_root, 1, &rogue, &rlen) <
	            0 ||
	    fx_write(g_dir, "rogue.tr", rogue, rlen, g_rogue_root_path, sizeof(g_rogue_root_path)) <
	            0)
		return -1;
	g_ready = true;
	return 0;
}

static int suite_cleanup(void)
{
	if (g_a.pid > 0)
		fx_daemon_stop(&g_a, SIGTERM);
	if (g_b.pid > 0)
		fx_daemon_stop(&g_b, SIGTERM);
	fx_server_stop(&g_srv, false);
	trust_key_free(g_root1);
	trust_key_free(g_root2);
	trust_key_free(g_signer);
	trust_key_free(g_rogue_root);
	trust_key_free(g_rogue_signer);
	if (!getenv("CORRAL_KEEP_TMP"))
		harness_rm_rf(g_dir);
	free(g_dir);
	curl_global_cleanup();
	return 0;
}

static int start_device(struct fx_daemon *d, const char *name, const char *root_path)
{
	char dir[700], tok[800];
	snprintf(dir, sizeof(dir), "%s/%s", g_dir, name);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	_cleanup_free_ char *token = fx_enroll_token(&g_srv, "eng");
	if (!token || fx_write(dir, "token", token, strlen(token), tok, sizeof(tok)) < 0)
		return -1;
	const char *args[] = {"--server-url",
	                      g_url,
	                      "--server-ca-file",
	                      g_ca,
	                      "--enroll-token-file",
	                      tok,
	                      "--trust",
	                      root_path,
	                      "--poll-wait",
	                      "20",
	                      "--backoff-max",
	                      "2s",
	                      "--heartbeat-interval",
	                      "60",
	                      "--test-hooks",
	                      "--log-level",
	                      "debug",
	                      NULL};
	return fx_daemon_start(d, dir, args);
}

static uint64_t publish(uint64_t version, int64_t expires_in)
{
	_cleanup_free_ uint8_t *b = NULL;
	size_t len = 0;
	if (fx_make_bundle(version, "eng", expires_in, &g_signer, 1, &b, &len) < 0)
		return 0;
	uint64_t t0 = util_monotonic_ms();
	return fx_admin_upload(&g_srv, "groups/eng/policy", b, len) == 200 ? t0 : 0;
}

static void test_enroll(void)
{
	if (!g_ready)
		HARNESS_SKIP("corral-server did not start (see its log)");
	CU_ASSERT_FATAL(start_device(&g_a, "a", g_root_path) == 0);
	long ms = fx_wait_status_true(&g_a, "enrolled", 10000);
	CU_ASSERT_FATAL(ms >= 0);
	printf("\n  enrolled in %ld ms\n", ms);
	json_t *st = fx_status(&g_a);
	const char *id = json_string_value(json_object_get(st, "device_id"));
	CU_ASSERT(id && util_startswith(id, "d-"));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(st, "groups"), 0)),
	                       "eng");
	CU_ASSERT(json_integer_value(json_object_get(st, "certificate_expires_at")) >
	          util_now_sec());
	json_decref(st);
	char p[800];
	struct stat sst;
	snprintf(p, sizeof(p), "%s/token", g_a.dir);
	CU_ASSERT_EQUAL(stat(p, &sst), -1); /* single-use token removed */
	snprintf(p, sizeof(p), "%s/data/device.key", g_a.dir);
	CU_ASSERT_FATAL(stat(p, &sst) == 0);
	CU_ASSERT_EQUAL(sst.st_mode & 0777, 0600);
}

static void test_longpoll_within_1s(void)
{
	if (!g_ready || g_a.pid <= 0)
		HARNESS_SKIP("no enrolled device");
	usleep(500 * 1000); /* the long-poll is parked at the server */
	uint64_t t0 = publish(1, 3600);
	CU_ASSERT_FATAL(t0 != 0);
	long ms = fx_wait_status_int(&g_a, "policy_version", 1, 5000);
	CU_ASSERT(ms >= 0);
	uint64_t el = util_monotonic_ms() - t0;
	printf("\n  policy applied %llu ms after the publish\n", (unsigned long long)el);
	CU_ASSERT(el < 1000);
	json_t *st = fx_status(&g_a);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(st, "freshness")), "fresh");
	json_decref(st);
}

static void test_new_trust_root(void)
{
	if (!g_ready || g_a.pid <= 0)
		HARNESS_SKIP("no enrolled device");
	_cleanup_free_ uint8_t *env = NULL;
	size_t len = 0;
	struct trust_key *sign[2] = {g_root1, g_root2};
	CU_ASSERT_FATAL(fx_make_root(2, &g_root2, 1, &g_signer, 1, sign, 2, &env, &len) == 0);
	CU_ASSERT_FATAL(fx_admin_upload(&g_srv, "trust", env, len) == 200);
	CU_ASSERT(fx_wait_status_int(&g_a, "trust_root_version", 2, 5000) >= 0);
	/* Policy signed by the (unchanged) signer still applies under the new root. */
	CU_ASSERT_FATAL(publish(2, 3600) != 0);
	CU_ASSERT(fx_wait_status_int(&g_a, "policy_version", 2, 5000) >= 0);
}

static void test_rejected_bundle_reported(void)
{
	if (!g_ready)
		HARNESS_SKIP("corral-server did not start");
	CU_ASSERT_FATAL(start_device(&g_b, "b", g_rogue_root_path) == 0);
	CU_ASSERT_FATAL(fx_wait_status_true(&g_b, "enrolled", 10000) >= 0);
	/* The fleet's bundle (version 2) is refused: its signer is not in our root. */
	const char *ev[] = {"events", "--json", "--limit", "50", NULL};
	bool found = false;
	for (int i = 0; i < 100 && !found; i++) {
		char *out = NULL;
		if (fx_cli(&g_b, &out, ev) == 0 && out &&
		    (strstr(out, "\"summary\": \"unknown-key") ||
		     strstr(out, "\"summary\": \"threshold")))
			found = true;
		free(out);
		if (!found)
			usleep(50000);
	}
	CU_ASSERT(found);
	json_t *st = fx_status(&g_b);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "policy_version")), 0);
	char path[256];
	snprintf(path, sizeof(path), "events?device=%s&kind=5",
	         json_string_value(json_object_get(st, "device_id")));
	json_decref(st);
	/* ...and the rejection reached the server with its reason. */
	bool at_server = false;
	for (int i = 0; i < 100 && !at_server; i++) {
		json_t *j = NULL;
		if (fx_admin(&g_srv, "GET", path, NULL, &j) == 200) {
			char *txt = json_dumps(j, 0);
			at_server = txt && (strstr(txt, "unknown-key") || strstr(txt, "threshold"));
			free(txt);
		}
		json_decref(j);
		if (!at_server)
			usleep(50000);
	}
	CU_ASSERT(at_server);
	CU_ASSERT_EQUAL(fx_daemon_stop(&g_b, SIGTERM), 0);
}

static void test_server_down_stale_recover(void)
{
	if (!g_ready || g_a.pid <= 0)
		HARNESS_SKIP("no enrolled device");
	CU_ASSERT_FATAL(publish(3, 4) != 0); /* expires in 4 s */
	CU_ASSERT_FATAL(fx_wait_status_int(&g_a, "policy_version", 3, 5000) >= 0);
	unsigned port = g_srv.port;
	fx_server_stop(&g_srv, true);
	/* Last known good stays in force and turns stale once it expires. */
	CU_ASSERT(fx_wait_status_str(&g_a, "freshness", "stale", 8000) >= 0);
	json_t *st = fx_status(&g_a);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "policy_version")), 3);
	json_decref(st);
	/* Events queue up meanwhile. */
	Corral__TestGenerateRequest tg = CORRAL__TEST_GENERATE_REQUEST__INIT;
	tg.count = 25;
	Corral__IpcRequest rq = CORRAL__IPC_REQUEST__INIT;
	rq.body_case = CORRAL__IPC_REQUEST__BODY_TEST_GENERATE;
	rq.test_generate = &tg;
	Corral__IpcResponse *resp = fx_ipc(&g_a, &rq);
	CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
	CU_ASSERT_EQUAL(resp->body_case, CORRAL__IPC_RESPONSE__BODY_TEST_GENERATED);
	corral__ipc_response__free_unpacked(resp, NULL);
	st = fx_status(&g_a);
	CU_ASSERT(json_integer_value(json_object_get(st, "outbox_depth")) >= 25);
	json_decref(st);
	/* The server returns on the same port; a fresh policy arrives and the outbox drains. */
	CU_ASSERT_FATAL(fx_server_start(&g_srv, g_dir, port) == 0);
	CU_ASSERT_FATAL(publish(4, 3600) != 0);
	CU_ASSERT(fx_wait_status_int(&g_a, "policy_version", 4, 10000) >= 0);
	CU_ASSERT(fx_wait_status_str(&g_a, "freshness", "fresh", 1000) >= 0);
	CU_ASSERT(fx_wait_status_int(&g_a, "outbox_depth", 0, 10000) >= 0);
	CU_ASSERT_EQUAL(fx_daemon_stop(&g_a, SIGTERM), 0);
}

static const struct harness_test tests[] = {
        {"enroll", test_enroll},
        {"longpoll_within_1s", test_longpoll_within_1s},
        {"new_trust_root", test_new_trust_root},
        {"rejected_bundle_reported", test_rejected_bundle_reported},
        {"server_down_stale_recover", test_server_down_stale_recover},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"endpoint_server", suite_init, suite_cleanup, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
