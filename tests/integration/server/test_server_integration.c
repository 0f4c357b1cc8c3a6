// SPDX-License-Identifier: Apache-2.0
/*
 * Integration test of corral-server: starts the real binary on a free loopback port in a
 * temporary directory and talks to it over real TLS with libcurl, using device keys and CSRs
 * generated here with OpenSSL and bundles/trust roots signed here with lib/trust. Covers
 * enrollment and each of its failures, mTLS refusals (no certificate, foreign CA, revoked),
 * cross-device isolation, long-poll wake-up latency and timeout, publish refusals, report
 * idempotency and limits, admin roles, the audit log, renewal, corral-admin, and a restart.
 */
#include "harness.h"
#include "https.h"

#include "cleanup.h"
#include "trust.h"
#include "util.h"

#include <corral.pb-c.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *g_dir;
static pid_t g_pid = -1;
static unsigned g_port;
static char g_admin[256];
static char g_viewer[256];
static struct trust_key *g_root_key, *g_root_key2, *g_signer1, *g_signer2;

struct device {
	char id[128];
	char crt[1024];
	char key[1024];
};
static struct device g_a, g_b, g_c;

/* ---- server process ---------------------------------------------------------------------- */

static int start_server(void)
{
	char cfg[600], log[600], bin[600];
	snprintf(cfg, sizeof(cfg), "%s/server.json", g_dir);
	snprintf(log, sizeof(log), "%s/server.log", g_dir);
	snprintf(bin, sizeof(bin), "%s/bin/corral-server", harness_binary_dir());
	/* CORRAL_TEST_DATABASE (tests/integration/pg): the same suite on a PostgreSQL backend. */
	const char *db = getenv("CORRAL_TEST_DATABASE");
	char json[1600];
	snprintf(json, sizeof(json),
	         "{\"report_rate\": 1, \"report_burst\": 20, \"cert_lifetime\": \"1d\"%s%s%s}",
	         db ? ", \"database\": \"" : "", db ? db : "", db ? "\"" : "");
	if (util_write_file_atomic(cfg, json, strlen(json), 0644) < 0)
		return -1;
	/* Truncate the log so we only look at this run's "listening" line. */
	int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (lfd < 0)
		return -1;
	char datadir[600];
	snprintf(datadir, sizeof(datadir), "%s/data", g_dir);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(lfd, 2);
		execl(bin, bin, "--data-dir", datadir, "--listen", "127.0.0.1:0", "--config", cfg,
		      (char *)NULL);
		_exit(127);
	}
	close(lfd);
	if (pid < 0)
		return -1;
	g_pid = pid;
	for (int i = 0; i < 200; i++) {
		_cleanup_free_ char *text = NULL;
		size_t len;
		if (util_read_file(log, 1 << 20, &text, &len) == 0) {
			const char *p = strstr(text, "listening on https://127.0.0.1:");
			if (p) {
				g_port = (unsigned)strtoul(
				        p + strlen("listening on https://127.0.0.1:"), NULL, 10);
				return 0;
			}
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			g_pid = -1;
			fprintf(stderr, "server exited: %s\n", text ? text : "");
			return -1;
		}
		usleep(25000);
	}
	return -1;
}

static int stop_server(void)
{
	if (g_pid <= 0)
		return -1;
	kill(g_pid, SIGTERM);
	int st = 0;
	for (int i = 0; i < 400; i++) {
		if (waitpid(g_pid, &st, WNOHANG) == g_pid) {
			g_pid = -1;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(25000);
	}
	kill(g_pid, SIGKILL);
	waitpid(g_pid, &st, 0);
	g_pid = -1;
	return -1;
}

/* ---- HTTP ------------------------------------------------------------------------------- */

/* One request. dev: its client certificate (NULL = none); bearer: admin token. */
static int http(const char *method, const char *path, const void *body, size_t len,
                const char *ctype, const struct device *dev, const char *bearer,
                struct th_response *out)
{
	char ca[600];
	snprintf(ca, sizeof(ca), "%s/data/ca.pem", g_dir);
	struct th_request rq = {.port = g_port,
	                        .ca_file = ca,
	                        .method = method,
	                        .path = path,
	                        .body = body,
	                        .len = len,
	                        .ctype = ctype,
	                        .bearer = bearer,
	                        .cert = dev ? dev->crt : NULL,
	                        .key = dev ? dev->key : NULL};
	return th_https(&rq, out);
}

/* Admin JSON call; returns the status, *ret the parsed body (may be NULL). */
static long admin(const char *method, const char *path, const char *json, const char *bearer,
                  json_t **ret)
{
	struct th_response r;
	char full[512];
	snprintf(full, sizeof(full), "/api/v1/%s", path);
	if (http(method, full, json, json ? strlen(json) : 0, json ? "application/json" : NULL,
	         NULL, bearer, &r) < 0)
		return -1;
	if (ret)
		*ret = r.body ? json_loads(r.body, 0, NULL) : NULL;
	long s = r.status;
	th_response_free(&r);
	return s;
}

static long admin_upload(const char *path, const uint8_t *env, size_t len, json_t **ret)
{
	struct th_response r;
	char full[512];
	snprintf(full, sizeof(full), "/api/v1/%s", path);
	if (http("POST", full, env, len, "application/octet-stream", NULL, g_admin, &r) < 0)
		return -1;
	if (ret)
		*ret = r.body ? json_loads(r.body, 0, NULL) : NULL;
	long s = r.status;
	th_response_free(&r);
	return s;
}

static char *enroll_token(const char *group, int uses, long long expires_at)
{
	char body[256];
	snprintf(body, sizeof(body), "{\"group\":\"%s\",\"uses\":%d,\"expires_at\":%lld}", group,
	         uses, expires_at);
	json_t *j = NULL;
	long s = admin("POST", "enroll-tokens", body, g_admin, &j);
	char *t = s == 201 ? strdup(json_string_value(json_object_get(j, "token"))) : NULL;
	json_decref(j);
	return t;
}

/* ---- device keys and enrollment --------------------------------------------------------- */

static int write_pem_key(const char *path, EVP_PKEY *k)
{
	FILE *f = fopen(path, "we");
	if (!f)
		return -errno;
	int ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	chmod(path, 0600);
	return ok == 1 ? 0 : -EIO;
}

static int write_pem_cert_der(const char *path, const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	if (!x)
		return -EBADMSG;
	FILE *f = fopen(path, "we");
	if (!f) {
		X509_free(x);
		return -errno;
	}
	int ok = PEM_write_X509(f, x);
	fclose(f);
	X509_free(x);
	return ok == 1 ? 0 : -EIO;
}

static int pack_enroll(const char *token, const uint8_t *csr, size_t csr_len, uint8_t **ret,
                       size_t *ret_len)
{
	Corral__EnrollRequest rq = CORRAL__ENROLL_REQUEST__INIT;
	rq.token = (char *)token;
	rq.csr_der = (ProtobufCBinaryData){csr_len, (uint8_t *)csr};
	rq.hostname = (char *)"test-host";
	rq.agent_version = (char *)"0.1.0";
	*ret_len = corral__enroll_request__get_packed_size(&rq);
	*ret = malloc(*ret_len + 1);
	corral__enroll_request__pack(&rq, *ret);
	return 0;
}

/* Enrolls with `token`; on 200 fills *dev (files in the temp dir). Returns the HTTP status. */
static long enroll(const char *token, const char *name, struct device *dev, char *reason,
                   size_t reasonlen, Corral__EnrollResponse **ret_resp)
{
	EVP_PKEY *k = NULL;
	_cleanup_free_ uint8_t *csr = NULL, *body = NULL;
	size_t csr_len = 0, len = 0;
	if (th_make_csr("ignored-by-server", &k, &csr, &csr_len) < 0)
		return -1;
	pack_enroll(token, csr, csr_len, &body, &len);
	struct th_response r;
	if (http("POST", "/v1/enroll", body, len, "application/x-protobuf", NULL, NULL, &r) < 0) {
		EVP_PKEY_free(k);
		return -1;
	}
	long status = r.status;
	if (reason)
		snprintf(reason, reasonlen, "%s", r.reason);
	if (status == 200) {
		Corral__EnrollResponse *resp =
		        corral__enroll_response__unpack(NULL, r.len, (uint8_t *)r.body);
		if (!resp)
			status = -2;
		else {
			snprintf(dev->id, sizeof(dev->id), "%s", resp->device_id);
			snprintf(dev->crt, sizeof(dev->crt), "%s/%s.crt", g_dir, name);
			snprintf(dev->key, sizeof(dev->key), "%s/%s.key", g_dir, name);
			write_pem_key(dev->key, k);
			write_pem_cert_der(dev->crt, resp->certificate_der.data,
			                   resp->certificate_der.len);
			if (ret_resp)
				*ret_resp = resp;
			else
				corral__enroll_response__free_unpacked(resp, NULL);
		}
	}
	EVP_PKEY_free(k);
	th_response_free(&r);
	return status;
}

/* ---- signed material ------------------------------------------------------------------------- */

static int make_root(uint64_t version, struct trust_key *const *roots, size_t n_roots,
                     struct trust_key *const *sign, size_t n_sign, uint8_t **ret, size_t *ret_len)
{
	struct trust_key *signers[2] = {g_signer1, g_signer2};
	struct trust_root_spec spec = {
	        .version = version,
	        .issued_at = util_now_sec() - 10,
	        .expires_at = util_now_sec() + 86400 * 30,
	        .root_keys = roots,
	        .n_root_keys = n_roots,
	        .root_threshold = 1,
	        .signer_keys = signers,
	        .n_signer_keys = 2,
	        .signer_threshold = 2,
	};
	return trust_root_sign(&spec, sign, n_sign, ret, ret_len);
}

static int make_bundle(uint64_t version, const char *const *groups, size_t n_groups,
                       bool both_signers, const char *name, uint8_t **ret, size_t *ret_len)
{
	Corral__Profile prof = CORRAL__PROFILE__INIT;
	prof.name = (char *)"default";
	Corral__Profile *profs[1] = {&prof};
	Corral__Policy pol = CORRAL__POLICY__INIT;
	pol.name = (char *)name;
	pol.default_profile = (char *)"default";
	pol.n_profiles = 1;
	pol.profiles = profs;
	Corral__Target tg[4];
	Corral__Target *tgp[4];
	for (size_t i = 0; i < n_groups && i < 4; i++) {
		corral__target__init(&tg[i]);
		tg[i].kind_case = CORRAL__TARGET__KIND_GROUP;
		tg[i].group = (char *)groups[i];
		tgp[i] = &tg[i];
	}
	Corral__PolicyBundle b = CORRAL__POLICY_BUNDLE__INIT;
	b.version = version;
	b.issued_at = util_now_sec() - 10;
	b.expires_at = util_now_sec() + 86400;
	b.n_targets = n_groups;
	b.targets = tgp;
	b.policy = &pol;
	struct trust_key *keys[2] = {g_signer1, g_signer2};
	return trust_bundle_sign(&b, keys, both_signers ? 2 : 1, ret, ret_len);
}

/* ---- device requests ------------------------------------------------------------------------- */

static long poll_policy(const struct device *d, uint64_t have, uint64_t root, unsigned wait,
                        Corral__PolicyUpdate **ret, char *reason)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/policy?have=%llu&root=%llu&wait=%u",
	         (unsigned long long)have, (unsigned long long)root, wait);
	struct th_response r;
	if (http("GET", path, NULL, 0, NULL, d, NULL, &r) < 0)
		return -1;
	long s = r.status;
	if (reason)
		snprintf(reason, 128, "%s", r.reason);
	if (ret)
		*ret = s == 200 ? corral__policy_update__unpack(NULL, r.len, (uint8_t *)r.body)
		                : NULL;
	th_response_free(&r);
	return s;
}

static Corral__Event *mk_event(uint64_t seq, Corral__EventKind kind)
{
	Corral__Event *e = calloc(1, sizeof(*e));
	corral__event__init(e);
	e->seq = seq;
	e->time_ms = util_now_ms();
	e->kind = kind;
	e->user = (char *)"alice";
	e->profile = (char *)"default";
	return e;
}

/* Sends events with sequences [from, to] (list order) as one batch; returns status, ack. */
static long report(const struct device *d, const char *claimed_id, const uint64_t *seqs, size_t n,
                   Corral__Heartbeat *hb, uint64_t *ret_ack, struct th_response *ret_res)
{
	Corral__Event **evs = calloc(n ? n : 1, sizeof(*evs));
	for (size_t i = 0; i < n; i++) {
		evs[i] = mk_event(seqs[i], hb && i == 0 ? CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT
		                                        : CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION);
		if (hb && i == 0) {
			evs[i]->detail_case = CORRAL__EVENT__DETAIL_HEARTBEAT;
			evs[i]->heartbeat = hb;
		}
	}
	Corral__ReportBatch b = CORRAL__REPORT_BATCH__INIT;
	b.device_id = (char *)(claimed_id ? claimed_id : "");
	b.n_events = n;
	b.events = evs;
	size_t len = corral__report_batch__get_packed_size(&b);
	uint8_t *buf = malloc(len + 1);
	corral__report_batch__pack(&b, buf);
	for (size_t i = 0; i < n; i++)
		free(evs[i]);
	free(evs);
	struct th_response r;
	int rc = http("POST", "/v1/report", buf, len, "application/x-protobuf", d, NULL, &r);
	free(buf);
	if (rc < 0)
		return -1;
	long s = r.status;
	if (s == 200 && ret_ack) {
		Corral__ReportAck *ack = corral__report_ack__unpack(NULL, r.len, (uint8_t *)r.body);
		*ret_ack = ack ? ack->acked_seq : (uint64_t)-1;
		if (ack)
			corral__report_ack__free_unpacked(ack, NULL);
	}
	if (ret_res)
		*ret_res = r;
	else
		th_response_free(&r);
	return s;
}

/* ---- suite setup ------------------------------------------------------------------------- */

static int suite_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	g_dir = harness_mkdtemp("server-it");
	if (!g_dir || start_server() < 0)
		return -1;
	char path[600];
	snprintf(path, sizeof(path), "%s/data/admin.token", g_dir);
	_cleanup_free_ char *tok = NULL;
	size_t len;
	if (util_read_file(path, 256, &tok, &len) < 0)
		return -1;
	tok[strcspn(tok, "\n")] = '\0';
	snprintf(g_admin, sizeof(g_admin), "%s", tok);
	if (trust_key_generate(&g_root_key) < 0 || trust_key_generate(&g_root_key2) < 0 ||
	    trust_key_generate(&g_signer1) < 0 || trust_key_generate(&g_signer2) < 0)
		return -1;
	return 0;
}

static int suite_cleanup(void)
{
	stop_server();
	trust_key_free(g_root_key);
	trust_key_free(g_root_key2);
	trust_key_free(g_signer1);
	trust_key_free(g_signer2);
	if (getenv("CORRAL_KEEP_TMP") == NULL)
		harness_rm_rf(g_dir);
	free(g_dir);
	curl_global_cleanup();
	return 0;
}

/* ---- tests ------------------------------------------------------------------------------------
 */

static void test_first_start(void)
{
	struct stat st;
	const char *secret[] = {"ca.key", "server.key", "admin.token", "server.db"};
	for (size_t i = 0; i < ELEMENTSOF(secret); i++) {
		if (getenv("CORRAL_TEST_DATABASE") && strcmp(secret[i], "server.db") == 0)
			continue; /* the database is PostgreSQL's */
		char p[700];
		snprintf(p, sizeof(p), "%s/data/%s", g_dir, secret[i]);
		CU_ASSERT_FATAL(stat(p, &st) == 0);
		CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	}
	char p[700], log[700];
	snprintf(p, sizeof(p), "%s/data/ca.pem", g_dir);
	CU_ASSERT(stat(p, &st) == 0);
	/* The admin token is never logged. */
	snprintf(log, sizeof(log), "%s/server.log", g_dir);
	_cleanup_free_ char *text = NULL;
	size_t len;
	CU_ASSERT_FATAL(util_read_file(log, 1 << 20, &text, &len) == 0);
	CU_ASSERT_PTR_NULL(strstr(text, strchr(g_admin, '.') + 1));
	json_t *j = NULL;
	CU_ASSERT_EQUAL(admin("GET", "whoami", NULL, g_admin, &j), 200);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "role")), "admin");
	json_decref(j);
}

static void test_admin_roles(void)
{
	json_t *j = NULL;
	CU_ASSERT_EQUAL_FATAL(
	        admin("POST", "tokens", "{\"role\":\"viewer\",\"name\":\"bob\"}", g_admin, &j),
	        201);
	snprintf(g_viewer, sizeof(g_viewer), "%s", json_string_value(json_object_get(j, "token")));
	json_decref(j);
	CU_ASSERT_EQUAL(admin("GET", "groups", NULL, g_viewer, NULL), 200);
	CU_ASSERT_EQUAL(admin("POST", "groups", "{\"name\":\"nope\"}", g_viewer, NULL), 403);
	CU_ASSERT_EQUAL(
	        admin("POST", "tokens", "{\"role\":\"admin\",\"name\":\"x\"}", g_viewer, NULL),
	        403);
	CU_ASSERT_EQUAL(admin("GET", "groups", NULL, NULL, NULL), 401);
	CU_ASSERT_EQUAL(admin("GET", "groups", NULL, "garbage", NULL), 401);
	/* Right id, wrong secret. */
	char forged[256];
	snprintf(forged, sizeof(forged), "%.17s%s", g_admin,
	         "0000000000000000000000000000000000000000000000000000000000000000");
	CU_ASSERT_EQUAL(admin("GET", "groups", NULL, forged, NULL), 401);
	CU_ASSERT_EQUAL(admin("POST", "groups", "{\"name\":\"canary\"}", g_admin, NULL), 201);
	CU_ASSERT_EQUAL(admin("POST", "groups", "{\"name\":\"prod\"}", g_admin, NULL), 201);
	CU_ASSERT_EQUAL(admin("POST", "groups", "{\"name\":\"prod\"}", g_admin, NULL), 409);
	/* Unauthenticated uploads are refused from the headers, before the body is read. */
	size_t big = 3 * 1024 * 1024;
	_cleanup_free_ char *junk = calloc(1, big);
	struct th_response r;
	CU_ASSERT(http("POST", "/api/v1/trust", junk, big, NULL, NULL, "0123456789abcdef.x", &r) ==
	          0);
	CU_ASSERT_EQUAL(r.status, 401);
	th_response_free(&r);
	CU_ASSERT(http("POST", "/v1/report", junk, big / 2, NULL, NULL, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 401);
	CU_ASSERT_STRING_EQUAL(r.reason, "no-certificate");
	th_response_free(&r);
	CU_ASSERT_EQUAL(admin("POST", "groups", "{\"name\":\"bad name!\"}", g_admin, NULL), 400);
	CU_ASSERT_EQUAL(admin("POST", "groups", "not json", g_admin, NULL), 400);
}

static void test_trust_publish(void)
{
	_cleanup_free_ uint8_t *env = NULL;
	size_t len = 0;
	struct trust_key *roots[1] = {g_root_key};
	CU_ASSERT_FATAL(make_root(1, roots, 1, roots, 1, &env, &len) == 0);
	/* A bundle cannot be published before the fleet has a trust root. */
	_cleanup_free_ uint8_t *b = NULL;
	size_t blen = 0;
	const char *g[] = {"canary"};
	CU_ASSERT_FATAL(make_bundle(1, g, 1, true, "early", &b, &blen) == 0);
	json_t *j = NULL;
	CU_ASSERT_EQUAL(admin_upload("groups/canary/policy", b, blen, &j), 409);
	json_decref(j);
	CU_ASSERT_EQUAL(admin_upload("trust", (const uint8_t *)"junk", 4, &j), 422);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "error")), "malformed");
	json_decref(j);
	CU_ASSERT_EQUAL(admin_upload("trust", env, len, &j), 200);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "version")), 1);
	json_decref(j);
	/* The same root again is not a valid successor. */
	CU_ASSERT_EQUAL(admin_upload("trust", env, len, NULL), 422);
}

static void test_enroll_success(void)
{
	_cleanup_free_ char *tok = enroll_token("canary", 1, util_now_sec() + 3600);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
	Corral__EnrollResponse *resp = NULL;
	CU_ASSERT_EQUAL_FATAL(enroll(tok, "a", &g_a, NULL, 0, &resp), 200);
	CU_ASSERT(util_startswith(resp->device_id, "d-"));
	CU_ASSERT_EQUAL(resp->n_groups, 1);
	CU_ASSERT_STRING_EQUAL(resp->groups[0], "canary");
	CU_ASSERT_EQUAL(resp->n_ca_chain_der, 1);
	CU_ASSERT_EQUAL(resp->n_trust_roots, 1);
	CU_ASSERT(resp->certificate_expires_at > util_now_sec() + 3600);
	/* Subject CN is the assigned device id. */
	const unsigned char *p = resp->certificate_der.data;
	X509 *x = d2i_X509(NULL, &p, (long)resp->certificate_der.len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x);
	char cn[64] = "";
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
	CU_ASSERT_STRING_EQUAL(cn, resp->device_id);
	X509_free(x);
	corral__enroll_response__free_unpacked(resp, NULL);
	/* Replay of the used single-use token. */
	struct device d;
	char reason[128];
	CU_ASSERT_EQUAL(enroll(tok, "replay", &d, reason, sizeof(reason), NULL), 403);
	CU_ASSERT_STRING_EQUAL(reason, "token-exhausted");
	_cleanup_free_ char *tb = enroll_token("prod", 2, util_now_sec() + 3600);
	CU_ASSERT_EQUAL_FATAL(enroll(tb, "b", &g_b, NULL, 0, NULL), 200);
	CU_ASSERT_EQUAL_FATAL(enroll(tb, "c", &g_c, NULL, 0, NULL), 200);
	CU_ASSERT_STRING_NOT_EQUAL(g_b.id, g_c.id);
}

static void test_enroll_failures(void)
{
	char reason[128];
	struct device d;
	CU_ASSERT_EQUAL(enroll("0123456789abcdef.nope", "x", &d, reason, sizeof(reason), NULL),
	                401);
	CU_ASSERT_STRING_EQUAL(reason, "invalid-token");
	CU_ASSERT_EQUAL(enroll("not-a-token", "x", &d, reason, sizeof(reason), NULL), 401);
	_cleanup_free_ char *tok = enroll_token("canary", 1, util_now_sec() + 3600);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
	char wrong[256];
	snprintf(wrong, sizeof(wrong), "%.17sdeadbeef", tok);
	CU_ASSERT_EQUAL(enroll(wrong, "x", &d, reason, sizeof(reason), NULL), 401);
	CU_ASSERT_STRING_EQUAL(reason, "invalid-token");
	_cleanup_free_ char *old = enroll_token("canary", 5, util_now_sec() - 10);
	CU_ASSERT_PTR_NOT_NULL_FATAL(old);
	CU_ASSERT_EQUAL(enroll(old, "x", &d, reason, sizeof(reason), NULL), 403);
	CU_ASSERT_STRING_EQUAL(reason, "token-expired");
	/* Malformed body, missing CSR, a CSR whose signature fails: none consumes the token. */
	struct th_response r;
	CU_ASSERT(http("POST", "/v1/enroll", "\xff\xff\xff", 3, NULL, NULL, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 400);
	CU_ASSERT_STRING_EQUAL(r.reason, "malformed");
	th_response_free(&r);
	EVP_PKEY *k = NULL;
	_cleanup_free_ uint8_t *csr = NULL, *body = NULL;
	size_t csr_len = 0, len = 0;
	CU_ASSERT_FATAL(th_make_csr("ignored-by-server", &k, &csr, &csr_len) == 0);
	EVP_PKEY_free(k);
	csr[csr_len - 5] ^= 0x55; /* inside the signature */
	pack_enroll(tok, csr, csr_len, &body, &len);
	CU_ASSERT(http("POST", "/v1/enroll", body, len, NULL, NULL, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 400);
	CU_ASSERT_STRING_EQUAL(r.reason, "bad-csr");
	th_response_free(&r);
	free(body);
	body = NULL;
	pack_enroll(tok, NULL, 0, &body, &len);
	CU_ASSERT(http("POST", "/v1/enroll", body, len, NULL, NULL, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 400);
	th_response_free(&r);
	/* Oversized enrollment body. */
	size_t big = 65 * 1024;
	_cleanup_free_ char *junk = calloc(1, big);
	CU_ASSERT(http("POST", "/v1/enroll", junk, big, NULL, NULL, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 413);
	th_response_free(&r);
	/* The single-use token survived all of the above. */
	CU_ASSERT_EQUAL(enroll(tok, "x", &d, reason, sizeof(reason), NULL), 200);
}

static void test_mtls_refusals(void)
{
	char reason[128] = "";
	/* No certificate. */
	struct device none = {0};
	struct th_response r;
	CU_ASSERT(http("GET", "/v1/policy?wait=0", NULL, 0, NULL, NULL, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 401);
	CU_ASSERT_STRING_EQUAL(r.reason, "no-certificate");
	th_response_free(&r);
	(void)none;
	/* A certificate from a foreign CA, with a real device's id as CN. */
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *dev_key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)g_a.id, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, dev_key);
	X509_sign(x, ca_key, EVP_sha256());
	struct device foreign;
	memcpy(foreign.id, g_a.id, sizeof(foreign.id));
	snprintf(foreign.crt, sizeof(foreign.crt), "%s/foreign.crt", g_dir);
	snprintf(foreign.key, sizeof(foreign.key), "%s/foreign.key", g_dir);
	FILE *f = fopen(foreign.crt, "we");
	PEM_write_X509(f, x);
	fclose(f);
	write_pem_key(foreign.key, dev_key);
	X509_free(x);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(dev_key);
	CU_ASSERT_EQUAL(poll_policy(&foreign, 0, 0, 0, NULL, reason), 401);
	CU_ASSERT_STRING_EQUAL(reason, "bad-certificate");
	uint64_t seqs[1] = {1};
	CU_ASSERT_EQUAL(report(&foreign, NULL, seqs, 1, NULL, NULL, NULL), 401);
	/* A revoked device: refused at once, on every endpoint. */
	struct device d;
	_cleanup_free_ char *tok = enroll_token("canary", 1, util_now_sec() + 3600);
	CU_ASSERT_EQUAL_FATAL(enroll(tok, "revoked", &d, NULL, 0, NULL), 200);
	CU_ASSERT_EQUAL(poll_policy(&d, 0, 1, 0, NULL, reason), 304);
	char path[256];
	snprintf(path, sizeof(path), "devices/%s/revoke", d.id);
	CU_ASSERT_EQUAL(admin("POST", path, NULL, g_viewer, NULL), 403);
	CU_ASSERT_EQUAL(admin("POST", path, NULL, g_admin, NULL), 200);
	CU_ASSERT_EQUAL(admin("POST", path, NULL, g_admin, NULL), 409);
	CU_ASSERT_EQUAL(poll_policy(&d, 0, 1, 0, NULL, reason), 403);
	CU_ASSERT_STRING_EQUAL(reason, "revoked");
	CU_ASSERT_EQUAL(report(&d, NULL, seqs, 1, NULL, NULL, NULL), 403);
	CU_ASSERT_EQUAL(admin("POST", "devices/d-unknown/revoke", NULL, g_admin, NULL), 404);
}

struct poll_thread {
	const struct device *dev;
	uint64_t have;
	uint64_t root; /* 0 means 1 */
	long status;
	uint64_t version_seen;
	uint64_t done_ms;
};

static void *poll_main(void *arg)
{
	struct poll_thread *t = arg;
	Corral__PolicyUpdate *up = NULL;
	t->status = poll_policy(t->dev, t->have, t->root ? t->root : 1, 20, &up, NULL);
	t->done_ms = util_monotonic_ms();
	if (up) {
		Corral__SignedEnvelope *env =
		        corral__signed_envelope__unpack(NULL, up->bundle.len, up->bundle.data);
		Corral__PolicyBundle *b = env ? corral__policy_bundle__unpack(
		                                        NULL, env->payload.len, env->payload.data)
		                              : NULL;
		t->version_seen = b ? b->version : 0;
		if (b)
			corral__policy_bundle__free_unpacked(b, NULL);
		if (env)
			corral__signed_envelope__free_unpacked(env, NULL);
		corral__policy_update__free_unpacked(up, NULL);
	}
	return NULL;
}

static void test_longpoll_wakes(void)
{
	/* Nothing published yet; the device already has root 1. */
	CU_ASSERT_EQUAL(poll_policy(&g_a, 0, 1, 0, NULL, NULL), 304);
	/* A device without the trust root gets it at once. */
	Corral__PolicyUpdate *up = NULL;
	CU_ASSERT_EQUAL(poll_policy(&g_a, 0, 0, 5, &up, NULL), 200);
	CU_ASSERT_PTR_NOT_NULL_FATAL(up);
	CU_ASSERT_EQUAL(up->n_trust_roots, 1);
	CU_ASSERT_EQUAL(up->bundle.len, 0);
	corral__policy_update__free_unpacked(up, NULL);

	struct poll_thread t = {.dev = &g_a, .have = 0};
	pthread_t th;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, poll_main, &t) == 0);
	usleep(500 * 1000); /* the poll is now suspended on the server */
	_cleanup_free_ uint8_t *b = NULL;
	size_t blen = 0;
	const char *g[] = {"canary", "prod"};
	CU_ASSERT_FATAL(make_bundle(1, g, 2, true, "v1", &b, &blen) == 0);
	json_t *j = NULL;
	CU_ASSERT_EQUAL(admin_upload("groups/canary/policy", b, blen, &j), 200);
	uint64_t published = util_monotonic_ms();
	json_decref(j);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(t.status, 200);
	CU_ASSERT_EQUAL(t.version_seen, 1);
	long waited = (long)t.done_ms - (long)published;
	printf("\n  long-poll answered %ld ms after the publish returned\n", waited);
	CU_ASSERT(waited <= 100);
	/* The server accounts the fan-out of that publish. */
	json_t *st = NULL;
	CU_ASSERT_EQUAL(admin("GET", "stats", NULL, g_viewer, &st), 200);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "last_fanout_devices")), 1);
	CU_ASSERT(json_integer_value(json_object_get(st, "last_fanout_ms")) <= 100);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "long_polls")), 0);
	json_decref(st);
	char path[700];
	snprintf(path, sizeof(path), "%s/v1.bundle", g_dir);
	util_write_file_atomic(path, b, blen, 0644);
}

static void test_revoke_during_poll(void)
{
	/* A device revoked while its long-poll is suspended is answered 403 at once. */
	struct device d;
	_cleanup_free_ char *tok = enroll_token("canary", 1, util_now_sec() + 3600);
	CU_ASSERT_EQUAL_FATAL(enroll(tok, "revoked2", &d, NULL, 0, NULL), 200);
	struct poll_thread t = {.dev = &d, .have = 1};
	pthread_t th;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, poll_main, &t) == 0);
	usleep(300 * 1000);
	char path[256];
	snprintf(path, sizeof(path), "devices/%s/revoke", d.id);
	uint64_t t0 = util_monotonic_ms();
	CU_ASSERT_EQUAL(admin("POST", path, NULL, g_admin, NULL), 200);
	pthread_join(th, NULL);
	printf("\n  revoked long-poll: status %ld after %lld ms\n", t.status,
	       (long long)(t.done_ms - t0));
	CU_ASSERT_EQUAL(t.status, 403);
	CU_ASSERT(t.done_ms - t0 < 1000);
}

static void test_poll_timeout(void)
{
	uint64_t t0 = util_monotonic_ms();
	CU_ASSERT_EQUAL(poll_policy(&g_a, 1, 1, 1, NULL, NULL), 304);
	uint64_t took = util_monotonic_ms() - t0;
	CU_ASSERT(took >= 900 && took < 3000);
	/* Bad parameters. */
	struct th_response r;
	CU_ASSERT(http("GET", "/v1/policy?have=abc", NULL, 0, NULL, &g_a, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 400);
	th_response_free(&r);
}

static void test_cross_device(void)
{
	/* B (prod) does not see canary's v1; A (canary) does not see prod's v2. */
	CU_ASSERT_EQUAL(poll_policy(&g_b, 0, 1, 0, NULL, NULL), 304);
	_cleanup_free_ uint8_t *b = NULL;
	size_t blen = 0;
	const char *g[] = {"prod"};
	CU_ASSERT_FATAL(make_bundle(2, g, 1, true, "prod-only", &b, &blen) == 0);
	CU_ASSERT_EQUAL(admin_upload("groups/prod/policy", b, blen, NULL), 200);
	CU_ASSERT_EQUAL(poll_policy(&g_a, 1, 1, 0, NULL, NULL), 304);
	Corral__PolicyUpdate *up = NULL;
	CU_ASSERT_EQUAL(poll_policy(&g_b, 0, 1, 0, &up, NULL), 200);
	CU_ASSERT_PTR_NOT_NULL_FATAL(up);
	CU_ASSERT_EQUAL(up->bundle.len, blen);
	CU_ASSERT_STRING_EQUAL(up->groups[0], "prod");
	corral__policy_update__free_unpacked(up, NULL);
	/* A cannot report as B. */
	uint64_t seqs[1] = {1};
	struct th_response r;
	CU_ASSERT_EQUAL(report(&g_a, g_b.id, seqs, 1, NULL, NULL, &r), 403);
	CU_ASSERT_STRING_EQUAL(r.reason, "device-mismatch");
	th_response_free(&r);
}

static void test_publish_refusals(void)
{
	const char *g[] = {"canary"};
	json_t *j = NULL;
	/* Tampered: one byte of the payload changed after signing. */
	_cleanup_free_ uint8_t *b = NULL;
	size_t blen = 0;
	CU_ASSERT_FATAL(make_bundle(5, g, 1, true, "tamper", &b, &blen) == 0);
	uint8_t *t = malloc(blen);
	memcpy(t, b, blen);
	uint8_t *name = memmem(t, blen, "tamper", 6);
	CU_ASSERT_PTR_NOT_NULL_FATAL(name);
	name[0] = 'T';
	CU_ASSERT_EQUAL(admin_upload("groups/canary/policy", t, blen, &j), 422);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "error")), "bad-signature");
	json_decref(j);
	free(t);
	/* Under threshold: one signer where the root wants two. */
	_cleanup_free_ uint8_t *u = NULL;
	size_t ulen = 0;
	CU_ASSERT_FATAL(make_bundle(6, g, 1, false, "under", &u, &ulen) == 0);
	CU_ASSERT_EQUAL(admin_upload("groups/canary/policy", u, ulen, &j), 422);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "error")), "threshold");
	json_decref(j);
	/* Rolled back: a (validly signed) version not above what canary has. */
	_cleanup_free_ uint8_t *o = NULL;
	size_t olen = 0;
	CU_ASSERT_FATAL(make_bundle(1, g, 1, true, "old", &o, &olen) == 0);
	CU_ASSERT_EQUAL(admin_upload("groups/canary/policy", o, olen, &j), 422);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "error")), "rollback");
	json_decref(j);
	/* Wrong target: a bundle for prod published to canary. */
	const char *p[] = {"prod"};
	_cleanup_free_ uint8_t *w = NULL;
	size_t wlen = 0;
	CU_ASSERT_FATAL(make_bundle(7, p, 1, true, "wrong", &w, &wlen) == 0);
	CU_ASSERT_EQUAL(admin_upload("groups/canary/policy", w, wlen, &j), 422);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "error")), "wrong-target");
	json_decref(j);
	/* Viewer may not publish; unknown group. */
	CU_ASSERT_EQUAL(admin_upload("groups/nosuch/policy", w, wlen, NULL), 404);
}

static void test_promote(void)
{
	/* Staged rollout: v3 to canary first, then the same signed bytes to prod. */
	const char *g[] = {"canary", "prod"};
	_cleanup_free_ uint8_t *b = NULL;
	size_t blen = 0;
	CU_ASSERT_FATAL(make_bundle(3, g, 2, true, "v3", &b, &blen) == 0);
	CU_ASSERT_EQUAL(admin_upload("groups/canary/policy", b, blen, NULL), 200);
	CU_ASSERT_EQUAL(admin_upload("groups/canary/policy", b, blen, NULL), 422);
	CU_ASSERT_EQUAL(poll_policy(&g_b, 2, 1, 0, NULL, NULL), 304);
	CU_ASSERT_EQUAL(admin_upload("groups/prod/policy", b, blen, NULL), 200);
	Corral__PolicyUpdate *up = NULL;
	CU_ASSERT_EQUAL(poll_policy(&g_b, 2, 1, 0, &up, NULL), 200);
	CU_ASSERT_PTR_NOT_NULL_FATAL(up);
	CU_ASSERT(up->bundle.len == blen && memcmp(up->bundle.data, b, blen) == 0);
	corral__policy_update__free_unpacked(up, NULL);
	json_t *j = NULL;
	CU_ASSERT_EQUAL(admin("GET", "groups/prod/policy", NULL, g_viewer, &j), 200);
	CU_ASSERT_EQUAL(json_array_size(j), 2);
	json_decref(j);
	/* A different bundle reusing version 3 is refused even where 3 is new. */
	const char *o[] = {"other"};
	CU_ASSERT_EQUAL(admin("POST", "groups", "{\"name\":\"other\"}", g_admin, NULL), 201);
	_cleanup_free_ uint8_t *c = NULL;
	size_t clen = 0;
	CU_ASSERT_FATAL(make_bundle(3, o, 1, true, "conflict", &c, &clen) == 0);
	CU_ASSERT_EQUAL(admin_upload("groups/other/policy", c, clen, &j), 422);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "error")), "rollback");
	json_decref(j);
}

static void test_report_idempotent(void)
{
	uint64_t s5[5] = {1, 2, 3, 4, 5};
	uint64_t ack = 0;
	Corral__Heartbeat hb = CORRAL__HEARTBEAT__INIT;
	hb.policy_version = 3;
	hb.freshness = CORRAL__FRESHNESS__FRESHNESS_FRESH;
	hb.trust_root_version = 1;
	hb.agent_version = (char *)"0.1.0-test";
	Corral__KernelFeatures kf = CORRAL__KERNEL_FEATURES__INIT;
	kf.landlock_abi = 7;
	kf.seccomp = true;
	hb.enforced = &kf;
	hb.requested = &kf;
	CU_ASSERT_EQUAL(report(&g_a, g_a.id, s5, 5, &hb, &ack, NULL), 200);
	CU_ASSERT_EQUAL(ack, 5);
	/* The same batch again: stored once, same ack. */
	CU_ASSERT_EQUAL(report(&g_a, NULL, s5, 5, &hb, &ack, NULL), 200);
	CU_ASSERT_EQUAL(ack, 5);
	char q[512];
	snprintf(q, sizeof(q), "events?device=%s&limit=100", g_a.id);
	json_t *j = NULL;
	CU_ASSERT_EQUAL(admin("GET", q, NULL, g_viewer, &j), 200);
	CU_ASSERT_EQUAL(json_array_size(j), 5);
	json_decref(j);
	/* A gap holds the ack back until it is filled. */
	uint64_t s7[1] = {7}, s6[1] = {6};
	CU_ASSERT_EQUAL(report(&g_a, NULL, s7, 1, NULL, &ack, NULL), 200);
	CU_ASSERT_EQUAL(ack, 5);
	CU_ASSERT_EQUAL(report(&g_a, NULL, s6, 1, NULL, &ack, NULL), 200);
	CU_ASSERT_EQUAL(ack, 7);
	/* B's events are B's: A's seq 1..7 do not touch B's ack. */
	uint64_t s1[1] = {1};
	CU_ASSERT_EQUAL(report(&g_b, NULL, s1, 1, NULL, &ack, NULL), 200);
	CU_ASSERT_EQUAL(ack, 1);
	/* The heartbeat updated A's compliance state. */
	snprintf(q, sizeof(q), "devices/%s", g_a.id);
	CU_ASSERT_EQUAL(admin("GET", q, NULL, g_viewer, &j), 200);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "policy_version")), 3);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "freshness")), "fresh");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "agent_version")),
	                       "0.1.0-test");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "acked_seq")), 7);
	CU_ASSERT(json_integer_value(json_object_get(j, "last_seen")) > 0);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(j, "features_enforced"),
	                                                   "landlock_abi")),
	                7);
	json_decref(j);
	/* Filters: by kind. */
	CU_ASSERT_EQUAL(admin("GET", "events?kind=6", NULL, g_viewer, &j), 200);
	CU_ASSERT_EQUAL(json_array_size(j), 1);
	json_decref(j);
}

struct chunked_src {
	size_t left;
};

static size_t chunked_read(char *buf, size_t size, size_t n, void *ud)
{
	struct chunked_src *src = ud;
	size_t want = size * n < src->left ? size * n : src->left;
	memset(buf, 0x0a, want);
	src->left -= want;
	return want;
}

/* A body without Content-Length (chunked): the cap applies to what has accumulated. */
static long post_chunked(const struct device *d, size_t total)
{
	char ca[700];
	snprintf(ca, sizeof(ca), "%s/data/ca.pem", g_dir);
	struct chunked_src src = {total};
	struct th_request rq = {.port = g_port,
	                        .ca_file = ca,
	                        .method = "POST",
	                        .path = "/v1/report",
	                        .cert = d->crt,
	                        .key = d->key,
	                        .read = chunked_read,
	                        .read_data = &src};
	struct th_response out;
	long status = th_https(&rq, &out) == 0 ? out.status : 0;
	th_response_free(&out);
	return status;
}

static void test_report_limits(void)
{
	CU_ASSERT_EQUAL(post_chunked(&g_c, 2 * 1024 * 1024 + 4096), 413);
	CU_ASSERT_EQUAL(post_chunked(&g_c, 1000), 400); /* under the cap: parsed, malformed */
	struct th_response r;
	/* 413 from Content-Length, before the body is read. */
	size_t big = 2 * 1024 * 1024 + 1;
	_cleanup_free_ char *junk = calloc(1, big);
	CU_ASSERT(http("POST", "/v1/report", junk, big, NULL, &g_c, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 413);
	CU_ASSERT_STRING_EQUAL(r.reason, "too-large");
	th_response_free(&r);
	/* 400 for a body that is not a ReportBatch, and for seq 0. */
	CU_ASSERT(http("POST", "/v1/report", "\xff\x01\x02", 3, NULL, &g_c, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 400);
	CU_ASSERT_STRING_EQUAL(r.reason, "malformed");
	th_response_free(&r);
	uint64_t s0[1] = {0};
	CU_ASSERT_EQUAL(report(&g_c, NULL, s0, 1, NULL, NULL, NULL), 400);
	/* 429 with Retry-After once the burst (20 in this test's config) is spent. */
	uint64_t s1[1] = {1};
	long st = 0;
	int i;
	for (i = 0; i < 40; i++) {
		st = report(&g_c, NULL, s1, 1, NULL, NULL, &r);
		if (st == 429)
			break;
		th_response_free(&r);
	}
	CU_ASSERT_EQUAL(st, 429);
	CU_ASSERT(i >= 15);
	CU_ASSERT_STRING_EQUAL(r.reason, "rate-limited");
	CU_ASSERT(atoi(r.retry_after) >= 1);
	th_response_free(&r);
}

static void test_renew(void)
{
	EVP_PKEY *k = NULL;
	_cleanup_free_ uint8_t *csr = NULL;
	size_t csr_len = 0;
	CU_ASSERT_FATAL(th_make_csr("ignored-by-server", &k, &csr, &csr_len) == 0);
	Corral__RenewRequest rq = CORRAL__RENEW_REQUEST__INIT;
	rq.csr_der = (ProtobufCBinaryData){csr_len, csr};
	size_t len = corral__renew_request__get_packed_size(&rq);
	_cleanup_free_ uint8_t *body = malloc(len);
	corral__renew_request__pack(&rq, body);
	struct th_response r;
	CU_ASSERT(http("POST", "/v1/renew", body, len, NULL, NULL, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 401);
	th_response_free(&r);
	CU_ASSERT(http("POST", "/v1/renew", body, len, NULL, &g_a, NULL, &r) == 0);
	CU_ASSERT_EQUAL_FATAL(r.status, 200);
	Corral__RenewResponse *resp =
	        corral__renew_response__unpack(NULL, r.len, (uint8_t *)r.body);
	CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
	struct device n = g_a;
	snprintf(n.crt, sizeof(n.crt), "%s/a2.crt", g_dir);
	snprintf(n.key, sizeof(n.key), "%s/a2.key", g_dir);
	write_pem_key(n.key, k);
	write_pem_cert_der(n.crt, resp->certificate_der.data, resp->certificate_der.len);
	corral__renew_response__free_unpacked(resp, NULL);
	th_response_free(&r);
	EVP_PKEY_free(k);
	CU_ASSERT_EQUAL(poll_policy(&n, 3, 1, 0, NULL, NULL), 304);
	g_a = n;
}

/* Runs corral-admin with the connection environment; returns exit code, output in *ret. */
static int run_admin(char **ret_out, const char *const *args)
{
	char bin[600], tokf[600], ca[600], server[128];
	snprintf(bin, sizeof(bin), "%s/bin/corral-admin", harness_binary_dir());
	snprintf(tokf, sizeof(tokf), "%s/data/admin.token", g_dir);
	snprintf(ca, sizeof(ca), "%s/data/ca.pem", g_dir);
	snprintf(server, sizeof(server), "https://127.0.0.1:%u", g_port);
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		setenv("CORRAL_SERVER", server, 1);
		setenv("CORRAL_TOKEN_FILE", tokf, 1);
		setenv("CORRAL_CA", ca, 1);
		char *argv[16] = {bin};
		size_t n = 1;
		for (; args[n - 1] && n < 15; n++)
			argv[n] = (char *)args[n - 1];
		argv[n] = NULL;
		execv(bin, argv);
		_exit(127);
	}
	close(pfd[1]);
	util_read_fd(pfd[0], 1 << 20, ret_out, &(size_t){0});
	close(pfd[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_admin_cli(void)
{
	char bundle[700];
	snprintf(bundle, sizeof(bundle), "%s/v4.bundle", g_dir);
	const char *g[] = {"canary"};
	_cleanup_free_ uint8_t *b = NULL;
	size_t blen = 0;
	CU_ASSERT_FATAL(make_bundle(4, g, 1, true, "v4", &b, &blen) == 0);
	CU_ASSERT_FATAL(util_write_file_atomic(bundle, b, blen, 0644) == 0);
	char *out = NULL;
	const char *pub[] = {"policy", "publish", bundle, "--group", "canary", NULL};
	CU_ASSERT_EQUAL(run_admin(&out, pub), 0);
	CU_ASSERT(out && strstr(out, "published: version 4"));
	free(out);
	CU_ASSERT_EQUAL(run_admin(&out, pub), 1);
	CU_ASSERT(out && strstr(out, "rejected: rollback:"));
	free(out);
	const char *list[] = {"device", "list", "--json", NULL};
	CU_ASSERT_EQUAL(run_admin(&out, list), 0);
	json_t *j = out ? json_loads(out, 0, NULL) : NULL;
	CU_ASSERT(json_array_size(j) >= 4);
	json_decref(j);
	free(out);
	const char *roll[] = {"rollout", "status", "--group", "canary", NULL};
	CU_ASSERT_EQUAL(run_admin(&out, roll), 0);
	CU_ASSERT(out && strstr(out, "published version 4"));
	free(out);
	const char *ev[] = {"events", "query", "--kind", "heartbeat", "--json", NULL};
	CU_ASSERT_EQUAL(run_admin(&out, ev), 0);
	j = out ? json_loads(out, 0, NULL) : NULL;
	CU_ASSERT_EQUAL(json_array_size(j), 1);
	json_decref(j);
	free(out);
	const char *et[] = {"enroll-token", "create", "--group", "prod", "--uses", "1",
	                    "--expires",    "1h",     NULL};
	CU_ASSERT_EQUAL(run_admin(&out, et), 0);
	struct device d;
	bool enrolled = false;
	if (out) {
		out[strcspn(out, "\n")] = '\0';
		enrolled = enroll(out, "cli", &d, NULL, 0, NULL) == 200;
		CU_ASSERT(enrolled);
	}
	free(out);
	if (!enrolled)
		return;
	/* device show (table and JSON) and revoke of the device just enrolled */
	const char *show[] = {"device", "show", d.id, NULL};
	CU_ASSERT_EQUAL(run_admin(&out, show), 0);
	CU_ASSERT(out && strstr(out, "device_id") && strstr(out, d.id));
	free(out);
	const char *showj[] = {"device", "show", d.id, "--json", NULL};
	CU_ASSERT_EQUAL(run_admin(&out, showj), 0);
	j = out ? json_loads(out, 0, NULL) : NULL;
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "device_id")), d.id);
	json_decref(j);
	free(out);
	const char *rev[] = {"device", "revoke", d.id, NULL};
	CU_ASSERT_EQUAL(run_admin(&out, rev), 0);
	CU_ASSERT(out && strstr(out, "revoked") && strstr(out, d.id));
	free(out);
	const char *none[] = {"device", "show", "no-such-device", NULL};
	CU_ASSERT_EQUAL(run_admin(&out, none), 1);
	free(out);
	const char *noid[] = {"device", "revoke", NULL};
	CU_ASSERT_EQUAL(run_admin(&out, noid), 2);
	free(out);
}

static void test_audit(void)
{
	json_t *j = NULL;
	CU_ASSERT_EQUAL_FATAL(admin("GET", "audit?limit=1000", NULL, g_viewer, &j), 200);
	const char *want[] = {"token.create",        "group.create",   "trust.publish",
	                      "enroll-token.create", "policy.publish", "device.revoke"};
	for (size_t w = 0; w < ELEMENTSOF(want); w++) {
		bool found = false;
		size_t i;
		json_t *e;
		json_array_foreach (j, i, e) {
			if (strcmp(json_string_value(json_object_get(e, "action")), want[w]) == 0 &&
			    strlen(json_string_value(json_object_get(e, "actor"))) > 0 &&
			    json_integer_value(json_object_get(e, "at_ms")) > 0)
				found = true;
		}
		if (!found)
			printf("\n  audit action %s missing\n", want[w]);
		CU_ASSERT(found);
	}
	/* Refused actions are not changes and leave no entry; viewer reads are not logged. */
	size_t n = json_array_size(j);
	json_decref(j);
	CU_ASSERT_EQUAL(admin("POST", "groups", "{\"name\":\"x\"}", g_viewer, NULL), 403);
	CU_ASSERT_EQUAL(admin("GET", "audit?limit=1000", NULL, g_viewer, &j), 200);
	CU_ASSERT_EQUAL(json_array_size(j), n);
	json_decref(j);
}

static void test_trust_rotation(void)
{
	/* Root v2 adds a new root key, signed by the old (v1) and the new root key. */
	_cleanup_free_ uint8_t *env = NULL;
	size_t len = 0;
	struct trust_key *roots[1] = {g_root_key2};
	struct trust_key *sign[2] = {g_root_key, g_root_key2};
	CU_ASSERT_FATAL(make_root(2, roots, 1, sign, 2, &env, &len) == 0);
	struct poll_thread t = {.dev = &g_b, .have = 3};
	pthread_t th;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, poll_main, &t) == 0);
	usleep(300 * 1000);
	CU_ASSERT_EQUAL(admin_upload("trust", env, len, NULL), 200);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(t.status, 200);
	Corral__PolicyUpdate *up = NULL;
	CU_ASSERT_EQUAL(poll_policy(&g_b, 3, 1, 0, &up, NULL), 200);
	CU_ASSERT_PTR_NOT_NULL_FATAL(up);
	CU_ASSERT_EQUAL(up->n_trust_roots, 1);
	CU_ASSERT_EQUAL(up->bundle.len, 0);
	corral__policy_update__free_unpacked(up, NULL);
	/* A v3 signed only by the new key (not the previous root's) is refused. */
	_cleanup_free_ uint8_t *bad = NULL;
	size_t blen = 0;
	struct trust_key *only_new[1] = {g_root_key};
	CU_ASSERT_FATAL(make_root(3, only_new, 1, only_new, 1, &bad, &blen) == 0);
	CU_ASSERT_EQUAL(admin_upload("trust", bad, blen, NULL), 422);
}

static void test_restart(void)
{
	/* A long-poll in flight during SIGTERM is answered (503), then the server exits 0. */
	struct poll_thread t = {.dev = &g_a, .have = 100, .root = 2};
	pthread_t th;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, poll_main, &t) == 0);
	usleep(300 * 1000);
	CU_ASSERT_EQUAL(stop_server(), 0);
	pthread_join(th, NULL);
	printf("\n  in-flight poll at SIGTERM: %ld\n", t.status);
	CU_ASSERT_EQUAL(t.status, 503);
	CU_ASSERT_FATAL(start_server() == 0);
	/* Everything survived: tokens, devices, certificates, published bundles, events. */
	CU_ASSERT_EQUAL(admin("GET", "whoami", NULL, g_admin, NULL), 200);
	CU_ASSERT_EQUAL(admin("GET", "whoami", NULL, g_viewer, NULL), 200);
	Corral__PolicyUpdate *up = NULL;
	CU_ASSERT_EQUAL(poll_policy(&g_a, 0, 2, 0, &up, NULL), 200);
	CU_ASSERT_PTR_NOT_NULL(up);
	if (up)
		corral__policy_update__free_unpacked(up, NULL);
	uint64_t s[1] = {8}, ack = 0;
	CU_ASSERT_EQUAL(report(&g_a, NULL, s, 1, NULL, &ack, NULL), 200);
	CU_ASSERT_EQUAL(ack, 8);
}

static const struct harness_test tests[] = {
        {"first_start", test_first_start},
        {"admin_roles", test_admin_roles},
        {"trust_publish", test_trust_publish},
        {"enroll_success", test_enroll_success},
        {"enroll_failures", test_enroll_failures},
        {"mtls_refusals", test_mtls_refusals},
        {"longpoll_wakes", test_longpoll_wakes},
        {"revoke_during_poll", test_revoke_during_poll},
        {"poll_timeout", test_poll_timeout},
        {"cross_device", test_cross_device},
        {"publish_refusals", test_publish_refusals},
        {"promote", test_promote},
        {"report_idempotent", test_report_idempotent},
        {"report_limits", test_report_limits},
        {"renew", test_renew},
        {"admin_cli", test_admin_cli},
        {"audit", test_audit},
        {"trust_rotation", test_trust_rotation},
        {"restart", test_restart},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"server_integration", suite_init, suite_cleanup, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
