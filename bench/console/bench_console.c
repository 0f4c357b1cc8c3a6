// SPDX-License-Identifier: Apache-2.0
/*
 * Benchmark of the web console's overview at fleet scale.
 *
 *   bench_console seed DIR [DEVICES [EVENTS]]   fill DIR/server.db (defaults 10000, 1000000)
 *   bench_console time URL CA TOKEN [N]        time the overview page's API calls N times
 *
 * `seed` goes through corral-server's own storage interface (the same enroll and
 * report_store calls the device API makes, minus TLS) so a million events take a minute, not
 * an hour of simulated mTLS uploads; bundles are really signed with lib/trust. `time` issues
 * the three requests the overview page makes (changes, overview, violation stats) in parallel,
 * like the browser, over one keep-alive TLS connection each, and prints p50/p95/max.
 */
#include "srv.h"
#include "store.h"
#include "store_console.h"

#include "cleanup.h"
#include "trust.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define BATCH 100

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sign_bundle(struct trust_key *key, uint64_t version, uint8_t **ret, size_t *ret_len)
{
	Corral__Profile prof = CORRAL__PROFILE__INIT;
	prof.name = (char *)"default";
	Corral__Profile *profs[1] = {&prof};
	Corral__Policy pol = CORRAL__POLICY__INIT;
	pol.name = (char *)"bench";
	pol.n_profiles = 1;
	pol.profiles = profs;
	static const char *const groups[] = {"canary", "prod"};
	Corral__Target tg[2], *tgp[2];
	for (size_t i = 0; i < 2; i++) {
		corral__target__init(&tg[i]);
		tg[i].kind_case = CORRAL__TARGET__KIND_GROUP;
		tg[i].group = (char *)groups[i];
		tgp[i] = &tg[i];
	}
	Corral__PolicyBundle b = CORRAL__POLICY_BUNDLE__INIT;
	b.version = version;
	b.issued_at = util_now_sec() - 86400 * 8;
	b.expires_at = util_now_sec() + 86400 * 30;
	b.n_targets = 2;
	b.targets = tgp;
	b.policy = &pol;
	b.source_json = (char *)"{\"profiles\": [{\"name\": \"default\"}]}";
	return trust_bundle_sign(&b, &key, 1, ret, ret_len);
}

static int seed(const char *dir, unsigned n_dev, unsigned n_ev)
{
	char err[256], path[4200];
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/server.db", dir);
	struct srv_store *st = NULL;
	int r = srv_store_sqlite_open(path, &st, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "open %s: %s\n", path, err);
		return r;
	}
	const struct srv_store_ops *ops = st->ops;
	int64_t now = util_now_sec(), now_ms = util_now_ms();
	struct trust_key *key = NULL;
	_cleanup_free_ uint8_t *b1 = NULL, *b2 = NULL;
	size_t l1 = 0, l2 = 0;
	uint8_t sha[SRV_SHA256_LEN];
	SHA256((const uint8_t *)"bench", 5, sha);
	if ((r = trust_key_generate(&key)) < 0 || (r = sign_bundle(key, 1, &b1, &l1)) < 0 ||
	    (r = sign_bundle(key, 2, &b2, &l2)) < 0)
		goto out;
	if ((r = ops->begin(st)) < 0 || (r = ops->group_create(st, "canary", "bench", now)) < 0 ||
	    (r = ops->group_create(st, "prod", "bench", now)) < 0 ||
	    (r = ops->enroll_token_add(st, "benchtokencanary", "canary", sha, 1000000, now + 86400,
	                               "bench", now)) < 0 ||
	    (r = ops->enroll_token_add(st, "benchtokenprod00", "prod", sha, 1000000, now + 86400,
	                               "bench", now)) < 0 ||
	    (r = ops->publish(st, "canary", 1, b1, l1, now - 86400 * 8, now + 86400 * 30, "bench",
	                      now_ms - 86400000LL * 7)) < 0 ||
	    (r = ops->publish(st, "prod", 1, b1, l1, now - 86400 * 8, now + 86400 * 30, "bench",
	                      now_ms - 86400000LL * 7)) < 0 ||
	    (r = ops->publish(st, "canary", 2, b2, l2, now - 86400, now + 86400 * 30, "bench",
	                      now_ms - 86400000LL * 2)) < 0 ||
	    (r = ops->commit(st)) < 0)
		goto out;
	double t0 = now_s();
	unsigned per_dev = n_dev ? n_ev / n_dev : 0;
	static const char *const users[] = {"alice", "bob", "carol", "dave", "erin"};
	static const char *const profiles[] = {"default", "build", "browse"};
	static const char *const targets[] = {"/home/u/.ssh/id_ed25519", "203.0.113.9:443",
	                                      "ptrace", "memory.max"};
	Corral__Event *evs = calloc(BATCH, sizeof(*evs));
	Corral__Event **evp = calloc(BATCH, sizeof(*evp));
	Corral__Violation *viol = calloc(BATCH, sizeof(*viol));
	Corral__Heartbeat hb = CORRAL__HEARTBEAT__INIT;
	Corral__KernelFeatures req = CORRAL__KERNEL_FEATURES__INIT,
	                       enf = CORRAL__KERNEL_FEATURES__INIT;
	Corral__PolicyApplied applied = CORRAL__POLICY_APPLIED__INIT;
	if (!evs || !evp || !viol) {
		r = -ENOMEM;
		goto out_free;
	}
	req.landlock_abi = 4;
	req.seccomp = true;
	hb.requested = &req;
	hb.enforced = &enf;
	hb.agent_version = (char *)"0.1.0";
	hb.kernel_release = (char *)"6.18.0";
	hb.trust_root_version = 1;
	for (unsigned d = 0; d < n_dev; d++) {
		bool canary = d % 10 == 0;
		char id[SRV_ID_MAX], host[64], serial[32], sess[48];
		snprintf(id, sizeof(id), "d-bench%017u", d);
		snprintf(host, sizeof(host), "host-%05u", d);
		snprintf(serial, sizeof(serial), "%08x", d);
		struct srv_enroll_in in = {
		        .token_id = canary ? "benchtokencanary" : "benchtokenprod00",
		        .secret_sha256 = sha,
		        .device_id = id,
		        .hostname = host,
		        .agent_version = "0.1.0",
		        .cert_serial = serial,
		        .cert_expires_at = now + 86400 * 30,
		        .now = now - 86400 * 8,
		};
		enum srv_enroll_result res;
		char group[SRV_ID_MAX];
		if ((r = ops->enroll(st, &in, &res, group)) < 0)
			goto out_free;
		if (res != SRV_ENROLL_OK) {
			r = -EPERM;
			goto out_free;
		}
		struct srv_device dev;
		if ((r = ops->device_get(st, id, &dev)) < 0)
			goto out_free;
		uint64_t policy = canary && d % 20 == 0 ? 2 : 1;
		/* Mostly compliant; some stale, degraded, out of date or silent. */
		hb.policy_version = policy;
		hb.freshness = d % 97 == 0 ? CORRAL__FRESHNESS__FRESHNESS_STALE
		                           : CORRAL__FRESHNESS__FRESHNESS_FRESH;
		enf.landlock_abi = d % 53 == 0 ? 0 : 4;
		enf.seccomp = true;
		applied.version = policy;
		uint64_t seq = 0;
		for (unsigned done = 0; done < per_dev; done += BATCH) {
			size_t n = per_dev - done < BATCH ? per_dev - done : BATCH;
			for (size_t i = 0; i < n; i++) {
				Corral__Event *e = &evs[i];
				corral__event__init(e);
				e->seq = ++seq;
				/* Spread over the last 7 days, oldest first. */
				e->time_ms =
				        now_ms - 7 * 86400000LL +
				        (int64_t)((double)(done + i) / per_dev * 7 * 86400000.0);
				e->policy_version = policy;
				snprintf(sess, sizeof(sess), "s-%u-%llu", d,
				         (unsigned long long)(seq / 20));
				unsigned k = (unsigned)((d * 7 + seq) % 10);
				if (seq == 1) {
					e->kind = CORRAL__EVENT_KIND__EVENT_KIND_POLICY_APPLIED;
					e->detail_case = CORRAL__EVENT__DETAIL_POLICY_APPLIED;
					e->policy_applied = &applied;
				} else if (k < 3 || done + i + 1 == per_dev) {
					e->kind = CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT;
					e->detail_case = CORRAL__EVENT__DETAIL_HEARTBEAT;
					e->heartbeat = &hb;
				} else {
					/* 70% violations: the heavy case for the console. */
					Corral__Violation *v = &viol[i];
					corral__violation__init(v);
					v->kind = (Corral__ViolationKind)(1 + seq % 4);
					v->target = (char *)targets[seq % 4];
					v->comm = (char *)"agent";
					v->pid = 1000 + (uint32_t)(seq % 50);
					v->hostname = host;
					e->kind = CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION;
					e->detail_case = CORRAL__EVENT__DETAIL_VIOLATION;
					e->violation = v;
					e->user = (char *)users[(d + seq / 20) % 5];
					e->profile = (char *)profiles[seq / 20 % 3];
					e->session_id = sess;
				}
				evp[i] = e;
			}
			/* session_id points at one buffer: fine, report_store packs each event
			 * before the next is built. */
			Corral__ReportBatch b = CORRAL__REPORT_BATCH__INIT;
			b.n_events = n;
			b.events = evp;
			uint64_t acked;
			if ((r = ops->report_store(st, &dev, &b, util_now_ms(), &acked)) < 0)
				goto out_free;
			dev.acked_seq = acked;
		}
		if (d % 1000 == 999)
			fprintf(stderr, "seeded %u devices (%.0f s)\n", d + 1, now_s() - t0);
	}
	double t1 = now_s();
	long folded = 0;
	while ((r = ops->console->sync(st)) > 0)
		folded += r;
	double t2 = now_s();
	if (r >= 0)
		printf("seeded %u devices, %u events in %.1f s; console read model catch-up of %ld "
		       "violations: %.1f s (one time)\n",
		       n_dev, per_dev * n_dev, t1 - t0, folded, t2 - t1);
out_free:
	free(evs);
	free(evp);
	free(viol);
out:
	trust_key_free(key);
	ops->close(st);
	return r;
}

/* ---- timing ------------------------------------------------------------------------------- */

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
	size_t *total = ud;
	*total += sz * n;
	return sz * n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int time_overview(const char *url, const char *ca, const char *token, unsigned n)
{
	char auth[300];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	char stats[128];
	const char *paths[3] = {"api/v1/changes", "api/v1/console/overview", stats};
	CURL *h[3];
	size_t bytes[3] = {0};
	struct curl_slist *hdr = curl_slist_append(NULL, auth);
	CURLM *m = curl_multi_init();
	for (int i = 0; i < 3; i++) {
		h[i] = curl_easy_init();
		curl_easy_setopt(h[i], CURLOPT_CAINFO, ca);
		curl_easy_setopt(h[i], CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(h[i], CURLOPT_WRITEDATA, &bytes[i]);
		curl_easy_setopt(h[i], CURLOPT_NOSIGNAL, 1L);
	}
	double *lat = calloc(n, sizeof(*lat)), *each[3];
	for (int i = 0; i < 3; i++)
		each[i] = calloc(n, sizeof(double));
	int r = 0;
	/* One warm-up round opens the keep-alive connections (the browser has them too). */
	for (unsigned k = 0; k <= n; k++) {
		snprintf(stats, sizeof(stats),
		         "api/v1/console/violations/stats?since=%lld&bucket=21600000",
		         (long long)util_now_ms() - 7 * 86400000LL);
		for (int i = 0; i < 3; i++) {
			char full[512];
			snprintf(full, sizeof(full), "%s%s", url, paths[i]);
			curl_easy_setopt(h[i], CURLOPT_URL, full);
			curl_multi_add_handle(m, h[i]);
		}
		double t0 = now_s();
		int running = 1;
		while (running) {
			curl_multi_perform(m, &running);
			if (running)
				curl_multi_poll(m, NULL, 0, 100, NULL);
		}
		double t1 = now_s();
		for (int i = 0; i < 3; i++) {
			long status = 0;
			double tt = 0;
			curl_easy_getinfo(h[i], CURLINFO_RESPONSE_CODE, &status);
			curl_easy_getinfo(h[i], CURLINFO_TOTAL_TIME, &tt);
			if (status != 200) {
				fprintf(stderr, "%s: HTTP %ld\n", paths[i], status);
				r = -EIO;
			}
			if (k > 0)
				each[i][k - 1] = tt * 1000;
			curl_multi_remove_handle(m, h[i]);
		}
		if (k > 0)
			lat[k - 1] = (t1 - t0) * 1000;
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("overview API (3 parallel requests, %u runs): p50 %.1f ms, p95 %.1f ms, max %.1f "
	       "ms\n",
	       n, lat[n / 2], lat[(n * 95) / 100 < n ? (n * 95) / 100 : n - 1], lat[n - 1]);
	for (int i = 0; i < 3; i++) {
		qsort(each[i], n, sizeof(double), cmp_double);
		printf("  %-28s p50 %.1f ms, max %.1f ms (%zu bytes)\n",
		       i == 2 ? "console/violations/stats" : paths[i] + 7, each[i][n / 2],
		       each[i][n - 1], bytes[i] / (n + 1));
		free(each[i]);
		curl_easy_cleanup(h[i]);
	}
	free(lat);
	curl_multi_cleanup(m);
	curl_slist_free_all(hdr);
	return r;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "seed") == 0) {
		unsigned dev = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 10000;
		unsigned ev = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 1000000;
		int r = seed(argv[2], dev, ev);
		if (r < 0)
			fprintf(stderr, "seed: %s\n", strerror(-r));
		return r < 0 ? 1 : 0;
	}
	if (argc >= 5 && strcmp(argv[1], "time") == 0) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		int r = time_overview(argv[2], argv[3], argv[4],
		                      argc > 5 ? (unsigned)strtoul(argv[5], NULL, 10) : 30);
		curl_global_cleanup();
		return r < 0 ? 1 : 0;
	}
	fprintf(stderr, "usage: bench_console seed DIR [DEVICES [EVENTS]]\n"
	                "       bench_console time URL CA TOKEN [RUNS]\n");
	return 2;
}
