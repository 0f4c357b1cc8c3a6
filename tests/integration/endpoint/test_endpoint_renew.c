// SPDX-License-Identifier: Apache-2.0
/*
 * Certificate renewal against the real corral-server: with a 60 s certificate lifetime the
 * device renews on its own (new key, new certificate), reports it, and keeps syncing over
 * mTLS with the renewed certificate.
 */
#include "cleanup.h"
#include "fixture.h"
#include "harness.h"
#include "trust.h"
#include "util.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *g_dir;
static struct fx_server g_srv;
static struct fx_daemon g_d;

static int suite_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	g_dir = harness_mkdtemp("endpoint-renew");
	return g_dir ? 0 : -1;
}

static int suite_cleanup(void)
{
	if (g_d.pid > 0)
		fx_daemon_stop(&g_d, SIGTERM);
	fx_server_stop(&g_srv, false);
	if (!getenv("CORRAL_KEEP_TMP"))
		harness_rm_rf(g_dir);
	free(g_dir);
	curl_global_cleanup();
	return 0;
}

static void test_renews_before_expiry(void)
{
	if (fx_server_start_cfg(&g_srv, g_dir, 0, "{\"cert_lifetime\": \"60s\"}") < 0)
		HARNESS_SKIP("corral-server did not start");
	CU_ASSERT_FATAL(fx_admin(&g_srv, "POST", "groups", "{\"name\":\"eng\"}", NULL) == 201);
	struct trust_key *root = NULL, *signer = NULL;
	CU_ASSERT_FATAL(trust_key_generate(&root) == 0 && trust_key_generate(&signer) == 0);
	_cleanup_free_ uint8_t *env = NULL;
	size_t len = 0;
	CU_ASSERT_FATAL(fx_make_root(1, &root, 1, &signer, 1, &root, 1, &env, &len) == 0);
	CU_ASSERT_FATAL(fx_admin_upload(&g_srv, "trust", env, len) == 200);
	char dev[700], rootp[800], tokp[800], url[128], ca[800];
	snprintf(dev, sizeof(dev), "%s/dev", g_dir);
	CU_ASSERT_FATAL(mkdir(dev, 0700) == 0);
	CU_ASSERT_FATAL(fx_write(dev, "root.tr", env, len, rootp, sizeof(rootp)) == 0);
	_cleanup_free_ char *token = fx_enroll_token(&g_srv, "eng");
	CU_ASSERT_FATAL(token != NULL);
	CU_ASSERT_FATAL(fx_write(dev, "token", token, strlen(token), tokp, sizeof(tokp)) == 0);
	/* By name: resolution runs inside the worker's Landlock and seccomp confinement. */
	snprintf(url, sizeof(url), "https://localhost:%u", g_srv.port);
	snprintf(ca, sizeof(ca), "%s/srv/ca.pem", g_dir);
	const char *args[] = {"--server-url",
	                      url,
	                      "--server-ca-file",
	                      ca,
	                      "--enroll-token-file",
	                      tokp,
	                      "--trust",
	                      rootp,
	                      "--poll-wait",
	                      "20",
	                      "--backoff-max",
	                      "2s",
	                      NULL};
	CU_ASSERT_FATAL(fx_daemon_start(&g_d, dev, args) == 0);
	CU_ASSERT_FATAL(fx_wait_status_true(&g_d, "enrolled", 10000) >= 0);
	json_t *st = fx_status(&g_d);
	long long first = json_integer_value(json_object_get(st, "certificate_expires_at"));
	json_decref(st);
	CU_ASSERT_FATAL(first > util_now_sec());
	char keyp[800];
	snprintf(keyp, sizeof(keyp), "%s/data/device.key", dev);
	_cleanup_free_ char *key1 = NULL;
	CU_ASSERT_FATAL(util_read_file(keyp, 65536, &key1, NULL) == 0);

	/* Renewal is due well before the 60 s certificate expires. */
	long long now_exp = first;
	uint64_t start = util_monotonic_ms();
	while (now_exp == first && util_monotonic_ms() - start < 50000) {
		usleep(250000);
		st = fx_status(&g_d);
		now_exp =
		        st ? json_integer_value(json_object_get(st, "certificate_expires_at")) : 0;
		json_decref(st);
	}
	printf("\n  renewed after %llu ms, %lld s before the old certificate expired\n",
	       (unsigned long long)(util_monotonic_ms() - start), first - util_now_sec());
	CU_ASSERT(now_exp > first);
	CU_ASSERT(util_now_sec() < first);
	_cleanup_free_ char *key2 = NULL;
	CU_ASSERT_FATAL(util_read_file(keyp, 65536, &key2, NULL) == 0);
	CU_ASSERT(strcmp(key1, key2) != 0); /* a new key with every renewal */
	struct stat sst;
	CU_ASSERT(stat(keyp, &sst) == 0 && (sst.st_mode & 0777) == 0600);

	/* mTLS with the renewed certificate: a policy still arrives. */
	struct trust_key *keys[1] = {signer};
	_cleanup_free_ uint8_t *b = NULL;
	size_t blen = 0;
	CU_ASSERT_FATAL(fx_make_bundle(1, "eng", 3600, keys, 1, &b, &blen) == 0);
	CU_ASSERT_FATAL(fx_admin_upload(&g_srv, "groups/eng/policy", b, blen) == 200);
	CU_ASSERT(fx_wait_status_int(&g_d, "policy_version", 1, 5000) >= 0);
	const char *ev[] = {"events", "--limit", "50", NULL};
	char *out = NULL;
	CU_ASSERT(fx_cli(&g_d, &out, ev) == 0 && out && strstr(out, "certificate-renewed"));
	free(out);
	trust_key_free(root);
	trust_key_free(signer);
	CU_ASSERT_EQUAL(fx_daemon_stop(&g_d, SIGTERM), 0);
}

static const struct harness_test tests[] = {
        {"renews_before_expiry", test_renews_before_expiry},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"endpoint_renew", suite_init, suite_cleanup, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
