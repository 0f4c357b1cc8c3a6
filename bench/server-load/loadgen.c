// SPDX-License-Identifier: Apache-2.0
/*
 * corral-loadgen: a load generator for corral-server (libcurl multi, one thread, no thread per
 * device). Phases:
 *   1. setup: group "load", a fresh trust root (keys made here with lib/trust), an enrollment
 *      token for N devices;
 *   2. enroll N devices (P-256 keys and CSRs made here), 64 at a time;
 *   3. hold N long-polls (GET /v1/policy?wait=300, each with its own client certificate) and
 *      wait until the server reports all N suspended (GET /api/v1/stats);
 *   4. publish a signed bundle and time, per device, publish -> 200 with the bundle;
 *      print p50/p95/p99/max and the server's RSS (--server-pid);
 *   5. ingest: D devices each send B batches of E events back to back; print events/s stored.
 * With --device-server URL (repeatable) devices are spread over those replicas (device i on
 * replica i mod R) while setup and the publish go to --server: several corral-server replicas
 * on one PostgreSQL database (docs/scaling.md); the held long-polls are summed over them.
 * Only loopback servers are meant to be targeted.
 */
#include "cleanup.h"
#include "trust.h"
#include "util.h"

#include <corral.pb-c.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

struct dev {
	char id[64];
	char *cert_pem;
	char *key_pem;
	size_t cert_len, key_len;
	uint64_t done_ms; /* long-poll answered with the bundle */
	uint64_t next_seq;
};

struct xfer {
	CURL *easy;
	struct dev *dev;
	char *body;
	size_t len;
	uint8_t *upload;
	int kind; /* 0 enroll, 1 poll, 2 report */
	struct curl_slist *hdr;
};

static const char *opt_server, *opt_ca, *opt_token_file;
#define DEVICE_SERVERS_MAX 8
static const char *opt_device_servers[DEVICE_SERVERS_MAX];
static unsigned n_device_servers;
static const char *g_admin_base; /* admin requests: --server unless set (stats per replica) */
static char g_admin_token[256];
static unsigned opt_devices = 1000, opt_ingest_devices = 100, opt_batch = 500, opt_batches = 20;
static int opt_server_pid;
static struct dev *g_devs;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t add = sz * n;
	if (x->len + add > (8u << 20))
		return 0;
	char *nb = realloc(x->body, x->len + add + 1);
	if (!nb)
		return 0;
	memcpy(nb + x->len, p, add);
	x->len += add;
	nb[x->len] = '\0';
	x->body = nb;
	return add;
}

static void die(const char *what)
{
	fprintf(stderr, "corral-loadgen: %s\n", what);
	exit(1);
}

static CURL *easy_new(const char *path, struct xfer *x)
{
	char url[512];
	const char *base = g_admin_base ? g_admin_base : opt_server;
	if (x->dev && n_device_servers)
		base = opt_device_servers[(size_t)(x->dev - g_devs) % n_device_servers];
	snprintf(url, sizeof(url), "%s%s", base, path);
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, opt_ca);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_PRIVATE, x);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 400L);
	x->hdr = curl_slist_append(NULL, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->hdr);
	x->easy = c;
	return c;
}

static void xfer_free(struct xfer *x)
{
	curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->hdr);
	free(x->body);
	free(x->upload);
	free(x);
}

static void use_device_cert(CURL *c, const struct dev *d)
{
	struct curl_blob cert = {d->cert_pem, d->cert_len, CURL_BLOB_NOCOPY};
	struct curl_blob key = {d->key_pem, d->key_len, CURL_BLOB_NOCOPY};
	curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert);
	curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
	curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
}

/* Synchronous admin request (setup, stats, publish). Returns status; *ret body. */
static long admin_call(const char *method, const char *path, const char *ctype, const void *body,
                       size_t len, char **ret)
{
	struct xfer x = {0};
	char full[256], auth[400], ct[128];
	snprintf(full, sizeof(full), "/api/v1/%s", path);
	CURL *c = easy_new(full, &x);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", g_admin_token);
	x.hdr = curl_slist_append(x.hdr, auth);
	if (ctype) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
		x.hdr = curl_slist_append(x.hdr, ct);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, x.hdr);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	long status = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(x.hdr);
	if (ret)
		*ret = x.body;
	else
		free(x.body);
	return status;
}

static long admin_json(const char *method, const char *path, const char *json, char **ret)
{
	return admin_call(method, path, json ? "application/json" : NULL, json,
	                  json ? strlen(json) : 0, ret);
}

/* /proc/SERVER_PID/`file` as text into *ret (caller frees); -1 without a server pid. */
static int read_server_proc(const char *file, char **ret)
{
	if (opt_server_pid <= 0)
		return -1;
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/%s", opt_server_pid, file);
	size_t len;
	return util_read_file(p, 1 << 16, ret, &len) < 0 ? -1 : 0;
}

static long rss_kb(const char *field)
{
	_cleanup_free_ char *text = NULL;
	if (read_server_proc("status", &text) < 0)
		return -1;
	const char *f = strstr(text, field);
	return f ? strtol(f + strlen(field), NULL, 10) : -1;
}

/* Server CPU time (user + system) in ms, from /proc/PID/stat. */
static long server_cpu_ms(void)
{
	_cleanup_free_ char *text = NULL;
	if (read_server_proc("stat", &text) < 0)
		return -1;
	const char *s = strrchr(text, ')');
	unsigned long ut = 0, st = 0;
	if (!s ||
	    sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)((ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* ---- event loop: curl_multi_socket_action on epoll, O(active sockets) per wake-up ---- */

/* One event loop (an epoll fd and curl's timer) per thread that drives a multi handle. */
struct loop {
	int epfd;
	long timeout_ms;
	unsigned established; /* handshakes done, requests on their way (PREREQFUNCTION) */
};

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	(void)easy;
	(void)socketp;
	struct loop *l = userp;
	struct epoll_event ev = {0};
	ev.data.fd = fd;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
	(void)m;
	((struct loop *)userp)->timeout_ms = timeout_ms;
	return 0;
}

static CURLM *multi_new(struct loop *l)
{
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->timeout_ms = -1;
	l->established = 0;
	CURLM *m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(m, CURLMOPT_SOCKETDATA, l);
	curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(m, CURLMOPT_TIMERDATA, l);
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)opt_devices + 16);
	return m;
}

static void multi_free(CURLM *m, struct loop *l)
{
	curl_multi_cleanup(m);
	close(l->epfd);
}

/* One round: wait for socket activity (or curl's timer) and let curl act on it. */
static void drive(CURLM *m, struct loop *l)
{
	struct epoll_event evs[256];
	int running = 0;
	int wait = l->timeout_ms < 0 || l->timeout_ms > 50 ? 50 : (int)l->timeout_ms;
	int n = epoll_wait(l->epfd, evs, 256, wait);
	if (n <= 0) {
		curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
		return;
	}
	for (int i = 0; i < n; i++) {
		int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
		            (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
		            (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
		curl_multi_socket_action(m, evs[i].data.fd, flags, &running);
	}
	if (l->timeout_ms == 0)
		curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
}

/* The next finished transfer of `m`, already removed from it: its xfer, HTTP status (0 when
 * there was none) and curl result. false when no transfer has finished. */
static bool next_done(CURLM *m, struct xfer **x, long *status, CURLcode *res)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(m, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *easy = msg->easy_handle;
		*res = msg->data.result; /* msg is invalid once the handle is removed */
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)x);
		*status = 0;
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, status);
		curl_multi_remove_handle(m, easy);
		return true;
	}
	return false;
}

/* ---- phase 1: setup -------------------------------------------------------------------------- */

static struct trust_key *g_root, *g_signer;
static char g_enroll_token[256];

static void setup(void)
{
	if (trust_key_generate(&g_root) < 0 || trust_key_generate(&g_signer) < 0)
		die("key generation");
	struct trust_key *roots[1] = {g_root}, *signers[1] = {g_signer};
	struct trust_root_spec spec = {
	        .version = 1,
	        .issued_at = util_now_sec() - 60,
	        .expires_at = util_now_sec() + 86400,
	        .root_keys = roots,
	        .n_root_keys = 1,
	        .root_threshold = 1,
	        .signer_keys = signers,
	        .n_signer_keys = 1,
	        .signer_threshold = 1,
	};
	_cleanup_free_ uint8_t *env = NULL;
	size_t len = 0;
	if (trust_root_sign(&spec, roots, 1, &env, &len) < 0)
		die("trust root");
	if (admin_call("POST", "trust", "application/octet-stream", env, len, NULL) != 200)
		die("publishing the trust root (use a fresh server)");
	if (admin_json("POST", "groups", "{\"name\":\"load\"}", NULL) != 201)
		die("creating group 'load'");
	char body[256];
	snprintf(body, sizeof(body), "{\"group\":\"load\",\"uses\":%u,\"expires_at\":%lld}",
	         opt_devices, (long long)util_now_sec() + 86400);
	char *resp = NULL;
	if (admin_json("POST", "enroll-tokens", body, &resp) != 201)
		die("creating the enrollment token");
	json_t *j = json_loads(resp, 0, NULL);
	snprintf(g_enroll_token, sizeof(g_enroll_token), "%s",
	         json_string_value(json_object_get(j, "token")));
	json_decref(j);
	free(resp);
}

/* ---- phase 2: enroll ------------------------------------------------------------------------- */

static char *pem_of_key(EVP_PKEY *k, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *out = malloc((size_t)n + 1);
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	*len = (size_t)n;
	BIO_free(b);
	return out;
}

static char *pem_of_cert(const uint8_t *der, size_t dlen, size_t *len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)dlen);
	if (!x)
		return NULL;
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, x);
	X509_free(x);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *out = malloc((size_t)n + 1);
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	*len = (size_t)n;
	BIO_free(b);
	return out;
}

static struct xfer *enroll_start(struct dev *d)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	X509_REQ_set_pubkey(req, k);
	X509_REQ_sign(req, k, EVP_sha256());
	uint8_t *der = NULL;
	int n = i2d_X509_REQ(req, &der);
	X509_REQ_free(req);
	d->key_pem = pem_of_key(k, &d->key_len);
	EVP_PKEY_free(k);
	Corral__EnrollRequest rq = CORRAL__ENROLL_REQUEST__INIT;
	rq.token = g_enroll_token;
	rq.csr_der = (ProtobufCBinaryData){(size_t)n, der};
	rq.hostname = (char *)"loadgen";
	rq.agent_version = (char *)"loadgen";
	struct xfer *x = calloc(1, sizeof(*x));
	x->dev = d;
	x->kind = 0;
	size_t len = corral__enroll_request__get_packed_size(&rq);
	x->upload = malloc(len);
	corral__enroll_request__pack(&rq, x->upload);
	OPENSSL_free(der);
	CURL *c = easy_new("/v1/enroll", x);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->upload);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	return x;
}

static void enroll_all(void)
{
	struct loop lp;
	CURLM *m = multi_new(&lp);
	unsigned next = 0, done = 0, running = 0;
	const unsigned window = 64;
	uint64_t t0 = util_monotonic_ms();
	while (done < opt_devices) {
		while (running < window && next < opt_devices) {
			curl_multi_add_handle(m, enroll_start(&g_devs[next++])->easy);
			running++;
		}
		drive(m, &lp);
		struct xfer *x;
		long status;
		CURLcode res;
		while (next_done(m, &x, &status, &res)) {
			if (res != CURLE_OK || status != 200) {
				fprintf(stderr, "enroll: %s status %ld\n", curl_easy_strerror(res),
				        status);
				die("enrollment failed");
			}
			Corral__EnrollResponse *r =
			        corral__enroll_response__unpack(NULL, x->len, (uint8_t *)x->body);
			if (!r)
				die("bad EnrollResponse");
			snprintf(x->dev->id, sizeof(x->dev->id), "%s", r->device_id);
			x->dev->cert_pem = pem_of_cert(r->certificate_der.data,
			                               r->certificate_der.len, &x->dev->cert_len);
			x->dev->next_seq = 1;
			corral__enroll_response__free_unpacked(r, NULL);
			xfer_free(x);
			running--;
			done++;
		}
	}
	multi_free(m, &lp);
	uint64_t el = util_monotonic_ms() - t0;
	printf("enrolled %u devices in %.1f s (%.0f/s)\n", opt_devices, el / 1000.0,
	       opt_devices * 1000.0 / (double)(el ? el : 1));
}

/* ---- phases 3+4: long-polls and publish -------------------------------------------------- */

static uint64_t g_publish_ms;
static long g_publish_cpu_ms;
static long server_cpu_ms(void);
static volatile int g_published;

static long stats_long_polls_at(const char *base)
{
	char *resp = NULL;
	long n = -1;
	g_admin_base = base;
	if (admin_json("GET", "stats", NULL, &resp) == 200) {
		json_t *j = json_loads(resp, 0, NULL);
		n = (long)json_integer_value(json_object_get(j, "long_polls"));
		json_decref(j);
	}
	g_admin_base = NULL;
	free(resp);
	return n;
}

/* Long-polls held by the replicas the devices use (each replica counts its own). */
static long stats_long_polls(void)
{
	if (!n_device_servers)
		return stats_long_polls_at(NULL);
	long sum = 0;
	for (unsigned i = 0; i < n_device_servers; i++) {
		long n = stats_long_polls_at(opt_device_servers[i]);
		if (n < 0)
			return -1;
		sum += n;
	}
	return sum;
}

static void *publisher(void *arg)
{
	(void)arg;
	/* Wait until every long-poll is suspended on the server. */
	for (int i = 0; i < 6000; i++) {
		if (stats_long_polls() >= (long)opt_devices)
			break;
		usleep(100 * 1000);
	}
	long held = stats_long_polls();
	printf("server holds %ld long-polls; server RSS %ld kB\n", held, rss_kb("VmRSS:"));
	Corral__Profile prof = CORRAL__PROFILE__INIT;
	prof.name = (char *)"default";
	Corral__Profile *profs[1] = {&prof};
	Corral__Policy pol = CORRAL__POLICY__INIT;
	pol.name = (char *)"load";
	pol.default_profile = (char *)"default";
	pol.n_profiles = 1;
	pol.profiles = profs;
	Corral__Target tg = CORRAL__TARGET__INIT;
	tg.kind_case = CORRAL__TARGET__KIND_GROUP;
	tg.group = (char *)"load";
	Corral__Target *tgp[1] = {&tg};
	Corral__PolicyBundle b = CORRAL__POLICY_BUNDLE__INIT;
	b.version = 1;
	b.issued_at = util_now_sec() - 60;
	b.expires_at = util_now_sec() + 86400;
	b.n_targets = 1;
	b.targets = tgp;
	b.policy = &pol;
	uint8_t *env = NULL;
	size_t len = 0;
	struct trust_key *keys[1] = {g_signer};
	if (trust_bundle_sign(&b, keys, 1, &env, &len) < 0)
		die("signing the bundle");
	g_publish_cpu_ms = server_cpu_ms();
	g_publish_ms = util_monotonic_ms();
	__atomic_store_n(&g_published, 1, __ATOMIC_SEQ_CST);
	long st = admin_call("POST", "groups/load/policy", "application/octet-stream", env, len,
	                     NULL);
	if (st != 200)
		die("publish refused");
	free(env);
	return NULL;
}

static int on_prereq(void *clientp, char *conn_primary_ip, char *conn_local_ip, int primary_port,
                     int local_port)
{
	(void)conn_primary_ip;
	(void)conn_local_ip;
	(void)primary_port;
	(void)local_port;
	((struct loop *)clientp)->established++;
	return CURL_PREREQFUNC_OK;
}

static struct xfer *poll_start(struct dev *d, unsigned wait, struct loop *l)
{
	struct xfer *x = calloc(1, sizeof(*x));
	x->dev = d;
	x->kind = 1;
	char path[128];
	snprintf(path, sizeof(path), "/v1/policy?have=0&root=1&wait=%u", wait);
	CURL *c = easy_new(path, x);
	use_device_cert(c, d);
	curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(c, CURLOPT_PREREQDATA, l);
	return x;
}

#define POLLERS 2

struct poller {
	unsigned index;
	unsigned got, errors;
};

/* Holds the long-polls of devices index, index + POLLERS, ... until each is answered. */
static void *poller_main(void *arg)
{
	struct poller *p = arg;
	struct loop lp;
	CURLM *m = multi_new(&lp);
	unsigned mine = 0;
	for (unsigned i = p->index; i < opt_devices; i += POLLERS)
		mine++;
	/* Open the long-polls with at most 64 TLS handshakes in flight per thread, as a fleet
	 * reconnecting after a server restart would (devices back off and jitter). */
	unsigned next = p->index, started = 0;
	while (p->got + p->errors < mine) {
		while (next < opt_devices && started - lp.established < 64) {
			curl_multi_add_handle(m, poll_start(&g_devs[next], 300, &lp)->easy);
			next += POLLERS;
			started++;
		}
		drive(m, &lp);
		struct xfer *x;
		long status;
		CURLcode res;
		while (next_done(m, &x, &status, &res)) {
			Corral__PolicyUpdate *up =
			        status == 200 ? corral__policy_update__unpack(NULL, x->len,
			                                                      (uint8_t *)x->body)
			                      : NULL;
			if (up && up->bundle.len > 0 &&
			    __atomic_load_n(&g_published, __ATOMIC_SEQ_CST)) {
				x->dev->done_ms = util_monotonic_ms();
				p->got++;
			} else {
				p->errors++;
				fprintf(stderr, "poll: %s status %ld\n", curl_easy_strerror(res),
				        status);
			}
			if (up)
				corral__policy_update__free_unpacked(up, NULL);
			xfer_free(x);
		}
	}
	multi_free(m, &lp);
	return NULL;
}

static void longpoll_publish(void)
{
	uint64_t t0 = util_monotonic_ms();
	/* The publisher waits until the server holds every long-poll, then publishes. */
	pthread_t pub, th[POLLERS];
	struct poller pollers[POLLERS];
	pthread_create(&pub, NULL, publisher, NULL);
	for (unsigned i = 0; i < POLLERS; i++) {
		pollers[i] = (struct poller){.index = i};
		pthread_create(&th[i], NULL, poller_main, &pollers[i]);
	}
	unsigned errors = 0;
	for (unsigned i = 0; i < POLLERS; i++) {
		pthread_join(th[i], NULL);
		errors += pollers[i].errors;
	}
	long wake_cpu = server_cpu_ms() - g_publish_cpu_ms;
	pthread_join(pub, NULL);
	uint64_t *lat = calloc(opt_devices, sizeof(*lat));
	size_t n = 0;
	for (unsigned i = 0; i < opt_devices; i++)
		if (g_devs[i].done_ms)
			lat[n++] = g_devs[i].done_ms - g_publish_ms;
	qsort(lat, n, sizeof(*lat), cmp_u64);
	if (n == 0)
		die("no device received the bundle");
	printf("long-polls set up in %.1f s\n", (g_publish_ms - t0) / 1000.0);
	printf("publish -> device has bundle, %zu devices (%u errors): p50 %llu ms, p95 %llu ms, "
	       "p99 %llu ms, max %llu ms\n",
	       n, errors, (unsigned long long)lat[(n * 50 + 99) / 100 - 1],
	       (unsigned long long)lat[(n * 95 + 99) / 100 - 1],
	       (unsigned long long)lat[(n * 99 + 99) / 100 - 1], (unsigned long long)lat[n - 1]);
	printf("server CPU from publish to the last answer: %ld ms (%.1f us per device)\n",
	       wake_cpu, wake_cpu * 1000.0 / (double)n);
	char *resp = NULL;
	if (admin_json("GET", "stats", NULL, &resp) == 200) {
		json_t *j = json_loads(resp, 0, NULL);
		printf("server-side fan-out (wake-up -> last long-poll answered): %lld ms for %lld "
		       "devices\n",
		       (long long)json_integer_value(json_object_get(j, "last_fanout_ms")),
		       (long long)json_integer_value(json_object_get(j, "last_fanout_devices")));
		json_decref(j);
	}
	free(resp);
	printf("server RSS now %ld kB, peak %ld kB\n", rss_kb("VmRSS:"), rss_kb("VmHWM:"));
	free(lat);
}

/* ---- phase 5: ingest ------------------------------------------------------------------------ */

static struct xfer *report_start(struct dev *d, struct xfer *reuse)
{
	Corral__Event *evs = calloc(opt_batch, sizeof(*evs));
	Corral__Event **evp = calloc(opt_batch, sizeof(*evp));
	Corral__Violation v = CORRAL__VIOLATION__INIT;
	v.kind = CORRAL__VIOLATION_KIND__VIOLATION_KIND_FILESYSTEM;
	v.comm = (char *)"agent";
	v.target = (char *)"/home/alice/.ssh/id_ed25519";
	v.pid = 4242;
	int64_t now = util_now_ms();
	for (unsigned i = 0; i < opt_batch; i++) {
		corral__event__init(&evs[i]);
		evs[i].seq = d->next_seq + i;
		evs[i].time_ms = now;
		evs[i].kind = CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION;
		evs[i].session_id = (char *)"s-123";
		evs[i].user = (char *)"alice";
		evs[i].profile = (char *)"coder";
		evs[i].policy_version = 1;
		evs[i].detail_case = CORRAL__EVENT__DETAIL_VIOLATION;
		evs[i].violation = &v;
		evp[i] = &evs[i];
	}
	Corral__ReportBatch b = CORRAL__REPORT_BATCH__INIT;
	b.n_events = opt_batch;
	b.events = evp;
	struct xfer *x = reuse;
	if (!x) {
		x = calloc(1, sizeof(*x));
		x->dev = d;
		x->kind = 2;
	}
	size_t len = corral__report_batch__get_packed_size(&b);
	free(x->upload);
	x->upload = malloc(len);
	corral__report_batch__pack(&b, x->upload);
	free(evs);
	free(evp);
	free(x->body);
	x->body = NULL;
	x->len = 0;
	/* The same easy handle for every batch of a device keeps its TLS connection alive, as
	 * corrald's worker does. */
	CURL *c = x->easy;
	if (!c) {
		c = easy_new("/v1/report", x);
		use_device_cert(c, d);
	}
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->upload);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	return x;
}

static void ingest(void)
{
	unsigned nd = opt_ingest_devices < opt_devices ? opt_ingest_devices : opt_devices;
	unsigned *left = calloc(nd, sizeof(*left));
	struct loop lp;
	CURLM *m = multi_new(&lp);
	/* Keep each device's connection alive between its batches, as corrald does. */
	CURL **easies = calloc(nd, sizeof(*easies));
	(void)easies;
	uint64_t t0 = util_monotonic_ms();
	long cpu0 = server_cpu_ms();
	for (unsigned i = 0; i < nd; i++) {
		left[i] = opt_batches;
		curl_multi_add_handle(m, report_start(&g_devs[i], NULL)->easy);
	}
	unsigned active = nd;
	uint64_t stored = 0;
	unsigned errors = 0;
	while (active) {
		drive(m, &lp);
		struct xfer *x;
		long status;
		CURLcode res;
		while (next_done(m, &x, &status, &res)) {
			struct dev *d = x->dev;
			unsigned idx = (unsigned)(d - g_devs);
			Corral__ReportAck *ack =
			        status == 200 ? corral__report_ack__unpack(NULL, x->len,
			                                                   (uint8_t *)x->body)
			                      : NULL;
			if (ack && ack->acked_seq == d->next_seq + opt_batch - 1) {
				stored += opt_batch;
				d->next_seq += opt_batch;
				left[idx]--;
			} else {
				errors++;
				fprintf(stderr, "report: status %ld (%s)\n", status,
				        curl_easy_strerror(res));
			}
			if (ack)
				corral__report_ack__free_unpacked(ack, NULL);
			if (left[idx] > 0 && errors < 100)
				curl_multi_add_handle(m, report_start(d, x)->easy);
			else {
				xfer_free(x);
				active--;
			}
		}
	}
	uint64_t el = util_monotonic_ms() - t0;
	long cpu = server_cpu_ms() - cpu0;
	multi_free(m, &lp);
	free(left);
	free(easies);
	printf("ingest: %llu events (%u devices x %u batches x %u events) stored and acked in %.2f "
	       "s: %.0f events/s (%u errors); server RSS %ld kB\n",
	       (unsigned long long)stored, nd, opt_batches, opt_batch, el / 1000.0,
	       stored * 1000.0 / (double)(el ? el : 1), errors, rss_kb("VmRSS:"));
	printf("ingest: server CPU %.2f s for it: %.0f events per server CPU-second\n",
	       cpu / 1000.0, stored * 1000.0 / (double)(cpu > 0 ? cpu : 1));
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"server", required_argument, NULL, 's'},
	        {"ca", required_argument, NULL, 'c'},
	        {"token-file", required_argument, NULL, 't'},
	        {"devices", required_argument, NULL, 'n'},
	        {"ingest-devices", required_argument, NULL, 'i'},
	        {"batch", required_argument, NULL, 'b'},
	        {"batches", required_argument, NULL, 'k'},
	        {"server-pid", required_argument, NULL, 'p'},
	        {"device-server", required_argument, NULL, 'D'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			opt_server = optarg;
			break;
		case 'c':
			opt_ca = optarg;
			break;
		case 't':
			opt_token_file = optarg;
			break;
		case 'n':
			opt_devices = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'i':
			opt_ingest_devices = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			opt_batch = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'k':
			opt_batches = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			opt_server_pid = atoi(optarg);
			break;
		case 'D':
			if (n_device_servers == DEVICE_SERVERS_MAX)
				die("too many --device-server");
			opt_device_servers[n_device_servers++] = optarg;
			break;
		default:
			printf("usage: corral-loadgen --server URL --ca FILE --token-file FILE "
			       "[--devices N] [--ingest-devices D] [--batch E] [--batches B] "
			       "[--server-pid PID] [--device-server URL]...\n");
			return o == 'h' ? 0 : 2;
		}
	}
	if (!opt_server || !opt_ca || !opt_token_file || opt_devices == 0 || opt_batch == 0)
		die("--server, --ca and --token-file are required");
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < opt_devices + 64)
			die("RLIMIT_NOFILE is below the number of devices");
	}
	_cleanup_free_ char *tok = NULL;
	size_t tl;
	if (util_read_file(opt_token_file, 255, &tok, &tl) < 0)
		die("cannot read the token file");
	tok[strcspn(tok, "\r\n")] = '\0';
	snprintf(g_admin_token, sizeof(g_admin_token), "%s", tok);
	setvbuf(stdout, NULL, _IOLBF, 0);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	g_devs = calloc(opt_devices, sizeof(*g_devs));
	setup();
	enroll_all();
	longpoll_publish();
	if (opt_batches > 0)
		ingest();
	return 0;
}
