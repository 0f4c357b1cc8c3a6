// SPDX-License-Identifier: Apache-2.0
/*
 * Two corral-server replicas on one PostgreSQL database (CORRAL_TEST_DATABASE, set by
 * pg-cluster.sh run; skipped without it). Replica A creates the CA on first start; B is started
 * on a copy of A's data directory (CA key, server certificate, admin token), as docs/scaling.md
 * describes. Checks:
 *   - enrollment use counts are atomic across replicas (a token of N uses, 2N concurrent
 *     attempts split over A and B: exactly N devices);
 *   - devices long-polling on B receive a bundle published on A within 100 ms of the publish;
 *   - devices report to B while B is killed with SIGKILL mid-stream; they move to A with the
 *     certificates B issued (no re-enrollment), resend what was not acknowledged, and every
 *     event B acknowledged is in the database (no loss, no duplicate);
 *   - after the kill, a publish on A reaches the devices now polling A.
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

#define N_DEVICES      16
#define WAKE_TARGET_MS 100
#define N_SEQ          400 /* events per device in the failover test */
#define SEQ_BATCH      10

struct replica {
	char name[4];
	char dir[600];
	pid_t pid;
	unsigned port;
};

struct device {
	char id[128];
	char crt[700];
	char key[700];
};

static char *g_dir;
static const char *g_db;
static struct replica g_a = {.name = "a", .pid = -1}, g_b = {.name = "b", .pid = -1};
static char g_admin[256];
static struct trust_key *g_root_key, *g_signer1, *g_signer2;
static struct device g_dev[N_DEVICES];
static size_t g_n_dev;

/* ---- replicas ------------------------------------------------------------------------------ */

static int start_replica(struct replica *r)
{
	char cfg[700], log[700], bin[600];
	snprintf(r->dir, sizeof(r->dir), "%s/%s", g_dir, r->name);
	snprintf(cfg, sizeof(cfg), "%s/%s.json", g_dir, r->name);
	snprintf(log, sizeof(log), "%s/%s.log", g_dir, r->name);
	snprintf(bin, sizeof(bin), "%s/bin/corral-server", harness_binary_dir());
	char json[1600];
	snprintf(json, sizeof(json),
	         "{\"report_rate\": 1000, \"report_burst\": 1000, \"database\": \"%s\"}", g_db);
	if (util_write_file_atomic(cfg, json, strlen(json), 0644) < 0)
		return -1;
	int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (lfd < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(lfd, 2);
		execl(bin, bin, "--data-dir", r->dir, "--listen", "127.0.0.1:0", "--config", cfg,
		      (char *)NULL);
		_exit(127);
	}
	close(lfd);
	if (pid < 0)
		return -1;
	r->pid = pid;
	for (int i = 0; i < 400; i++) {
		_cleanup_free_ char *text = NULL;
		size_t len;
		if (util_read_file(log, 1 << 20, &text, &len) == 0) {
			const char *p = strstr(text, "listening on https://127.0.0.1:");
			if (p) {
				r->port = (unsigned)strtoul(
				        p + strlen("listening on https://127.0.0.1:"), NULL, 10);
				return 0;
			}
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			r->pid = -1;
			fprintf(stderr, "replica %s exited: %s\n", r->name, text ? text : "");
			return -1;
		}
		usleep(25000);
	}
	return -1;
}

static void kill_replica(struct replica *r, int sig)
{
	if (r->pid <= 0)
		return;
	kill(r->pid, sig);
	int st;
	waitpid(r->pid, &st, 0);
	r->pid = -1;
}

/* B gets A's CA, server certificate and admin token: the files replicas share. */
static int copy_data_dir(const struct replica *from, struct replica *to)
{
	snprintf(to->dir, sizeof(to->dir), "%s/%s", g_dir, to->name);
	if (mkdir(to->dir, 0700) < 0)
		return -errno;
	const char *files[] = {"ca.key", "ca.pem", "server.key", "server.pem", "admin.token"};
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		char src[700], dst[700];
		snprintf(src, sizeof(src), "%s/%s", from->dir, files[i]);
		snprintf(dst, sizeof(dst), "%s/%s", to->dir, files[i]);
		_cleanup_free_ char *data = NULL;
		size_t len;
		int r = util_read_file(src, 1 << 20, &data, &len);
		if (r < 0 || (r = util_write_file_atomic(dst, data, len, 0600)) < 0)
			return r;
	}
	return 0;
}

/* ---- HTTP --------------------------------------------------------------------------------- */

static int http(const struct replica *rep, const char *method, const char *path, const void *body,
                size_t len, const char *ctype, const struct device *dev, const char *bearer,
                struct th_response *out)
{
	char ca[700];
	snprintf(ca, sizeof(ca), "%s/ca.pem", g_a.dir);
	struct th_request rq = {.port = rep->port,
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

static long admin(const struct replica *rep, const char *method, const char *path, const char *json,
                  json_t **ret)
{
	struct th_response r;
	char full[512];
	snprintf(full, sizeof(full), "/api/v1/%s", path);
	if (http(rep, method, full, json, json ? strlen(json) : 0, json ? "application/json" : NULL,
	         NULL, g_admin, &r) < 0)
		return -1;
	if (ret)
		*ret = r.body ? json_loads(r.body, 0, NULL) : NULL;
	free(r.body);
	return r.status;
}

static long admin_upload(const struct replica *rep, const char *path, const uint8_t *env,
                         size_t len)
{
	struct th_response r;
	char full[512];
	snprintf(full, sizeof(full), "/api/v1/%s", path);
	if (http(rep, "POST", full, env, len, "application/octet-stream", NULL, g_admin, &r) < 0)
		return -1;
	free(r.body);
	return r.status;
}

/* ---- enrollment ---------------------------------------------------------------------------- */

static int write_files(struct device *dev, const char *name, EVP_PKEY *k, const uint8_t *der,
                       size_t len)
{
	snprintf(dev->crt, sizeof(dev->crt), "%s/%s.crt", g_dir, name);
	snprintf(dev->key, sizeof(dev->key), "%s/%s.key", g_dir, name);
	FILE *f = fopen(dev->key, "we");
	if (!f)
		return -errno;
	int ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	chmod(dev->key, 0600);
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	if (!x || ok != 1)
		return -EIO;
	f = fopen(dev->crt, "we");
	if (!f) {
		X509_free(x);
		return -errno;
	}
	ok = PEM_write_X509(f, x);
	fclose(f);
	X509_free(x);
	return ok == 1 ? 0 : -EIO;
}

/* Enrolls on `rep`; on 200 fills *dev. Returns the HTTP status (-1 transport). */
static long enroll(const struct replica *rep, const char *token, const char *name,
                   struct device *dev)
{
	EVP_PKEY *k = NULL;
	uint8_t *csr = NULL;
	size_t n = 0;
	if (th_make_csr(name, &k, &csr, &n) < 0)
		return -1;
	Corral__EnrollRequest rq = CORRAL__ENROLL_REQUEST__INIT;
	rq.token = (char *)token;
	rq.csr_der = (ProtobufCBinaryData){n, csr};
	rq.hostname = (char *)name;
	rq.agent_version = (char *)"0.1.0";
	size_t len = corral__enroll_request__get_packed_size(&rq);
	_cleanup_free_ uint8_t *body = malloc(len + 1);
	corral__enroll_request__pack(&rq, body);
	free(csr);
	struct th_response r;
	long status = -1;
	if (http(rep, "POST", "/v1/enroll", body, len, "application/x-protobuf", NULL, NULL, &r) ==
	    0) {
		status = r.status;
		if (status == 200) {
			Corral__EnrollResponse *resp =
			        corral__enroll_response__unpack(NULL, r.len, (uint8_t *)r.body);
			if (!resp || write_files(dev, name, k, resp->certificate_der.data,
			                         resp->certificate_der.len) < 0)
				status = -2;
			else
				snprintf(dev->id, sizeof(dev->id), "%s", resp->device_id);
			if (resp)
				corral__enroll_response__free_unpacked(resp, NULL);
		}
		free(r.body);
	}
	EVP_PKEY_free(k);
	return status;
}

/* ---- signed material ------------------------------------------------------------------------- */

static int make_root(uint8_t **ret, size_t *ret_len)
{
	struct trust_key *roots[1] = {g_root_key};
	struct trust_key *signers[2] = {g_signer1, g_signer2};
	struct trust_root_spec spec = {
	        .version = 1,
	        .issued_at = util_now_sec() - 10,
	        .expires_at = util_now_sec() + 86400 * 30,
	        .root_keys = roots,
	        .n_root_keys = 1,
	        .root_threshold = 1,
	        .signer_keys = signers,
	        .n_signer_keys = 2,
	        .signer_threshold = 1,
	};
	return trust_root_sign(&spec, roots, 1, ret, ret_len);
}

static int make_bundle(uint64_t version, uint8_t **ret, size_t *ret_len)
{
	Corral__Profile prof = CORRAL__PROFILE__INIT;
	prof.name = (char *)"default";
	Corral__Profile *profs[1] = {&prof};
	Corral__Policy pol = CORRAL__POLICY__INIT;
	pol.name = (char *)"replicas";
	pol.default_profile = (char *)"default";
	pol.n_profiles = 1;
	pol.profiles = profs;
	Corral__Target tg = CORRAL__TARGET__INIT;
	tg.kind_case = CORRAL__TARGET__KIND_GROUP;
	tg.group = (char *)"fleet";
	Corral__Target *tgp[1] = {&tg};
	Corral__PolicyBundle b = CORRAL__POLICY_BUNDLE__INIT;
	b.version = version;
	b.issued_at = util_now_sec() - 10;
	b.expires_at = util_now_sec() + 86400;
	b.n_targets = 1;
	b.targets = tgp;
	b.policy = &pol;
	struct trust_key *keys[1] = {g_signer1};
	return trust_bundle_sign(&b, keys, 1, ret, ret_len);
}

/* ---- device requests ------------------------------------------------------------------------- */

struct poller {
	const struct replica *rep;
	const struct device *dev;
	uint64_t have;
	long status;
	uint64_t got_version;
	uint64_t done_ms; /* monotonic */
};

static void *poll_main(void *arg)
{
	struct poller *p = arg;
	char path[128];
	snprintf(path, sizeof(path), "/v1/policy?have=%llu&root=1&wait=20",
	         (unsigned long long)p->have);
	struct th_response r;
	if (http(p->rep, "GET", path, NULL, 0, NULL, p->dev, NULL, &r) == 0) {
		p->status = r.status;
		Corral__PolicyUpdate *up =
		        r.status == 200
		                ? corral__policy_update__unpack(NULL, r.len, (uint8_t *)r.body)
		                : NULL;
		if (up) {
			Corral__SignedEnvelope *env = corral__signed_envelope__unpack(
			        NULL, up->bundle.len, up->bundle.data);
			Corral__PolicyBundle *b =
			        env ? corral__policy_bundle__unpack(NULL, env->payload.len,
			                                            env->payload.data)
			            : NULL;
			p->got_version = b ? b->version : 0;
			if (b)
				corral__policy_bundle__free_unpacked(b, NULL);
			if (env)
				corral__signed_envelope__free_unpacked(env, NULL);
			corral__policy_update__free_unpacked(up, NULL);
		}
		free(r.body);
	}
	p->done_ms = util_monotonic_ms();
	return NULL;
}

/* Devices long-poll on `rep` (have = have); a publish of `version` on `pub` wakes them all. */
static void publish_and_wait(const struct replica *rep, const struct replica *pub, uint64_t have,
                             uint64_t version)
{
	struct poller p[N_DEVICES];
	pthread_t t[N_DEVICES];
	for (size_t i = 0; i < g_n_dev; i++) {
		p[i] = (struct poller){.rep = rep, .dev = &g_dev[i], .have = have};
		pthread_create(&t[i], NULL, poll_main, &p[i]);
	}
	/* Let every poll reach the server and suspend. */
	usleep(700 * 1000);
	_cleanup_free_ uint8_t *b = NULL;
	size_t blen = 0;
	CU_ASSERT_FATAL(make_bundle(version, &b, &blen) == 0);
	CU_ASSERT_EQUAL(admin_upload(pub, "groups/fleet/policy", b, blen), 200);
	uint64_t published = util_monotonic_ms();
	uint64_t worst = 0;
	for (size_t i = 0; i < g_n_dev; i++) {
		pthread_join(t[i], NULL);
		CU_ASSERT_EQUAL(p[i].status, 200);
		CU_ASSERT_EQUAL(p[i].got_version, version);
		uint64_t lat = p[i].done_ms > published ? p[i].done_ms - published : 0;
		if (lat > worst)
			worst = lat;
	}
	printf("\n  %zu devices on replica %s got v%llu published on %s: slowest %llu ms after "
	       "the publish returned\n",
	       g_n_dev, rep->name, (unsigned long long)version, pub->name,
	       (unsigned long long)worst);
	CU_ASSERT(worst <= WAKE_TARGET_MS);
}

/* Sends seqs [from, to] as one batch; returns the status and *ret_ack. */
static long report(const struct replica *rep, const struct device *d, uint64_t from, uint64_t to,
                   uint64_t *ret_ack)
{
	size_t n = (size_t)(to - from + 1);
	Corral__Event *ev = calloc(n, sizeof(*ev));
	Corral__Event **evp = calloc(n, sizeof(*evp));
	for (size_t i = 0; i < n; i++) {
		corral__event__init(&ev[i]);
		ev[i].seq = from + i;
		/* The time is a function of seq: a resend is the same event, as a spool sends. */
		ev[i].time_ms = 1700000000000LL + (int64_t)(from + i);
		ev[i].kind = CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION;
		ev[i].user = (char *)"alice";
		ev[i].profile = (char *)"default";
		evp[i] = &ev[i];
	}
	Corral__ReportBatch b = CORRAL__REPORT_BATCH__INIT;
	b.n_events = n;
	b.events = evp;
	size_t len = corral__report_batch__get_packed_size(&b);
	uint8_t *buf = malloc(len + 1);
	corral__report_batch__pack(&b, buf);
	free(evp);
	free(ev);
	struct th_response r;
	long status = -1;
	if (http(rep, "POST", "/v1/report", buf, len, "application/x-protobuf", d, NULL, &r) == 0) {
		status = r.status;
		Corral__ReportAck *ack =
		        status == 200 ? corral__report_ack__unpack(NULL, r.len, (uint8_t *)r.body)
		                      : NULL;
		if (ack) {
			*ret_ack = ack->acked_seq;
			corral__report_ack__free_unpacked(ack, NULL);
		} else if (status == 200)
			status = -2;
		free(r.body);
	}
	free(buf);
	return status;
}

/* A device's report loop: to B until it fails (B killed), then to A; resends from the ack. */
struct reporter {
	const struct device *dev;
	uint64_t acked_by_b; /* highest seq B acknowledged */
	uint64_t acked;      /* final */
	unsigned failovers;
	bool error;
};

static void *report_main(void *arg)
{
	struct reporter *r = arg;
	const struct replica *rep = &g_b;
	uint64_t acked = 0;
	int attempts = 0;
	while (acked < N_SEQ && attempts < 2000) {
		attempts++;
		uint64_t to = acked + SEQ_BATCH > N_SEQ ? N_SEQ : acked + SEQ_BATCH;
		uint64_t ack = 0;
		long s = report(rep, r->dev, acked + 1, to, &ack);
		if (s == 200) {
			if (ack < acked) {
				r->error = true; /* an acknowledgement went backwards */
				break;
			}
			acked = ack;
			if (rep == &g_b)
				r->acked_by_b = ack;
			usleep(2000);
			continue;
		}
		/* Transport error or 503 from a dying replica: move to the other one. */
		if (rep == &g_b) {
			rep = &g_a;
			r->failovers++;
		} else
			usleep(20000);
	}
	r->acked = acked;
	return NULL;
}

/* ---- suite ----------------------------------------------------------------------------------- */

static int suite_init(void)
{
	g_db = getenv("CORRAL_TEST_DATABASE");
	if (!g_db)
		return 0; /* every test skips */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	g_dir = harness_mkdtemp("replicas");
	if (!g_dir || start_replica(&g_a) < 0)
		return -1;
	char path[700];
	snprintf(path, sizeof(path), "%s/admin.token", g_a.dir);
	_cleanup_free_ char *tok = NULL;
	size_t len;
	if (util_read_file(path, 256, &tok, &len) < 0)
		return -1;
	tok[strcspn(tok, "\n")] = '\0';
	snprintf(g_admin, sizeof(g_admin), "%s", tok);
	if (copy_data_dir(&g_a, &g_b) < 0 || start_replica(&g_b) < 0)
		return -1;
	if (trust_key_generate(&g_root_key) < 0 || trust_key_generate(&g_signer1) < 0 ||
	    trust_key_generate(&g_signer2) < 0)
		return -1;
	return 0;
}

static int suite_cleanup(void)
{
	kill_replica(&g_a, SIGTERM);
	kill_replica(&g_b, SIGTERM);
	trust_key_free(g_root_key);
	trust_key_free(g_signer1);
	trust_key_free(g_signer2);
	if (g_dir && getenv("CORRAL_KEEP_TMP") == NULL)
		harness_rm_rf(g_dir);
	free(g_dir);
	if (g_db)
		curl_global_cleanup();
	return 0;
}

struct enroller {
	const struct replica *rep;
	const char *token;
	char name[32];
	struct device dev;
	long status;
};

static void *enroll_main(void *arg)
{
	struct enroller *e = arg;
	e->status = enroll(e->rep, e->token, e->name, &e->dev);
	return NULL;
}

static void test_setup_and_enroll(void)
{
	if (!g_db)
		HARNESS_SKIP("CORRAL_TEST_DATABASE not set (run through pg-cluster.sh run)");
	/* Admin state written through A is visible on B at once (one database). */
	CU_ASSERT_EQUAL_FATAL(admin(&g_a, "POST", "groups", "{\"name\":\"fleet\"}", NULL), 201);
	json_t *j = NULL;
	CU_ASSERT_EQUAL(admin(&g_b, "GET", "groups", NULL, &j), 200);
	CU_ASSERT_EQUAL(json_array_size(j), 1);
	json_decref(j);
	_cleanup_free_ uint8_t *root = NULL;
	size_t rlen = 0;
	CU_ASSERT_FATAL(make_root(&root, &rlen) == 0);
	CU_ASSERT_EQUAL_FATAL(admin_upload(&g_a, "trust", root, rlen), 200);

	/* One token of N uses, 2N concurrent enrollments alternating between A and B. */
	char body[128];
	snprintf(body, sizeof(body), "{\"group\":\"fleet\",\"uses\":%d,\"expires_at\":%lld}",
	         N_DEVICES, (long long)util_now_sec() + 3600);
	CU_ASSERT_EQUAL_FATAL(admin(&g_a, "POST", "enroll-tokens", body, &j), 201);
	char token[256];
	snprintf(token, sizeof(token), "%s", json_string_value(json_object_get(j, "token")));
	json_decref(j);
	struct enroller e[2 * N_DEVICES];
	pthread_t t[2 * N_DEVICES];
	for (int i = 0; i < 2 * N_DEVICES; i++) {
		e[i] = (struct enroller){.rep = i % 2 ? &g_b : &g_a, .token = token};
		snprintf(e[i].name, sizeof(e[i].name), "dev%d", i);
		pthread_create(&t[i], NULL, enroll_main, &e[i]);
	}
	int ok = 0, exhausted = 0;
	for (int i = 0; i < 2 * N_DEVICES; i++) {
		pthread_join(t[i], NULL);
		if (e[i].status == 200 && g_n_dev < N_DEVICES)
			g_dev[g_n_dev++] = e[i].dev;
		ok += e[i].status == 200;
		exhausted += e[i].status == 403;
	}
	printf("\n  %d of %d concurrent enrollments succeeded (token of %d uses)\n", ok,
	       2 * N_DEVICES, N_DEVICES);
	CU_ASSERT_EQUAL(ok, N_DEVICES);
	CU_ASSERT_EQUAL(exhausted, N_DEVICES);
	CU_ASSERT_EQUAL(admin(&g_b, "GET", "devices", NULL, &j), 200);
	CU_ASSERT_EQUAL(json_array_size(j), N_DEVICES);
	json_decref(j);
}

static void test_wake_across_replicas(void)
{
	if (!g_db)
		HARNESS_SKIP("CORRAL_TEST_DATABASE not set");
	CU_ASSERT_FATAL(g_n_dev == N_DEVICES);
	/* Devices on B, publish on A; then the other way round. */
	publish_and_wait(&g_b, &g_a, 0, 1);
	publish_and_wait(&g_a, &g_b, 1, 2);
}

static void test_failover(void)
{
	if (!g_db)
		HARNESS_SKIP("CORRAL_TEST_DATABASE not set");
	CU_ASSERT_FATAL(g_n_dev == N_DEVICES);
	struct reporter r[N_DEVICES];
	pthread_t t[N_DEVICES];
	for (size_t i = 0; i < g_n_dev; i++) {
		r[i] = (struct reporter){.dev = &g_dev[i]};
		pthread_create(&t[i], NULL, report_main, &r[i]);
	}
	/* Kill B while the devices are in the middle of their report streams. */
	usleep(400 * 1000);
	kill_replica(&g_b, SIGKILL);
	uint64_t by_b = 0;
	unsigned moved = 0;
	for (size_t i = 0; i < g_n_dev; i++) {
		pthread_join(t[i], NULL);
		CU_ASSERT(!r[i].error);
		CU_ASSERT_EQUAL(r[i].acked, N_SEQ);
		by_b += r[i].acked_by_b;
		moved += r[i].failovers > 0;
	}
	printf("\n  replica b killed (SIGKILL) after acknowledging %llu events; %u devices moved "
	       "to a\n",
	       (unsigned long long)by_b, moved);
	CU_ASSERT(moved == g_n_dev);
	CU_ASSERT(by_b > 0);
	/* Every event is stored exactly once: per device, N_SEQ events with seqs 1..N_SEQ. */
	for (size_t i = 0; i < g_n_dev; i++) {
		char path[1024];
		snprintf(path, sizeof(path), "events?device=%.127s&limit=%d", g_dev[i].id,
		         2 * N_SEQ);
		json_t *j = NULL;
		CU_ASSERT_EQUAL(admin(&g_a, "GET", path, NULL, &j), 200);
		CU_ASSERT_EQUAL(json_array_size(j), N_SEQ);
		json_decref(j);
		snprintf(path, sizeof(path), "devices/%.127s", g_dev[i].id);
		CU_ASSERT_EQUAL(admin(&g_a, "GET", path, NULL, &j), 200);
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "acked_seq")), N_SEQ);
		json_decref(j);
	}
	/* Devices now long-poll on A, with the certificates B issued: a publish reaches them. */
	publish_and_wait(&g_a, &g_a, 2, 3);
}

static const struct harness_test tests[] = {
        {"setup_and_enroll", test_setup_and_enroll},
        {"wake_across_replicas", test_wake_across_replicas},
        {"failover", test_failover},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"replicas", suite_init, suite_cleanup, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
