// SPDX-License-Identifier: Apache-2.0
/*
 * The storage backends through store.h: srv_store_open's URL handling, events_prune on SQLite
 * (always), and the PostgreSQL backend directly (with CORRAL_TEST_DATABASE from pg-cluster.sh
 * run; those tests skip without it): migrations (idempotent, and -EPROTO for a newer schema),
 * a refused connection, atomic token uses across two connections, (device, seq) idempotency
 * whatever the time, partitions and retention, LISTEN/NOTIFY delivery between two handles, the
 * config keys of the scale-out (database, event_retention), and the console's calls answering
 * with the same JSON on both backends for one fleet covering every device state.
 */
#include "harness.h"

#include "cleanup.h"
#include "db.h"
#include "srv.h"
#include "store.h"
#include "store_console.h"
#include "util.h"

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *g_dir;
static const char *g_db;
static const uint8_t g_sha[SRV_SHA256_LEN] = {1, 2, 3};

static int suite_init(void)
{
	g_dir = harness_mkdtemp("store-pg");
	g_db = getenv("CORRAL_TEST_DATABASE");
	return g_dir ? 0 : -1;
}

static int suite_cleanup(void)
{
	if (g_dir)
		harness_rm_rf(g_dir);
	free(g_dir);
	return 0;
}

static struct srv_store *open_url(const char *url)
{
	struct srv_store *st = NULL;
	char err[512] = "";
	int r = srv_store_open(url, g_dir, &st, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "open %s: %s\n", url ? url : "(default)", err);
	return r < 0 ? NULL : st;
}

/* Runs SQL on the test database with a plain libpq connection (setup only). */
static int pg_exec(const char *sql)
{
	PGconn *c = PQconnectdb(g_db);
	PGresult *res = PQexec(c, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
	PQclear(res);
	PQfinish(c);
	return ok ? 0 : -1;
}

static long long pg_count(const char *sql)
{
	PGconn *c = PQconnectdb(g_db);
	PGresult *res = PQexec(c, sql);
	long long n = PQresultStatus(res) == PGRES_TUPLES_OK ? atoll(PQgetvalue(res, 0, 0)) : -1;
	PQclear(res);
	PQfinish(c);
	return n;
}

static Corral__Event *mk_event(uint64_t seq, int64_t time_ms, Corral__EventKind kind)
{
	Corral__Event *e = calloc(1, sizeof(*e));
	corral__event__init(e);
	e->seq = seq;
	e->time_ms = time_ms;
	e->kind = kind;
	return e;
}

static int store_events(struct srv_store *st, const char *device, const uint64_t *seqs,
                        const int64_t *times, size_t n, uint64_t *ret_acked)
{
	struct srv_device d;
	int r = st->ops->device_get(st, device, &d);
	if (r < 0)
		return r;
	Corral__Event **evs = calloc(n, sizeof(*evs));
	for (size_t i = 0; i < n; i++)
		evs[i] = mk_event(seqs[i], times[i], CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION);
	Corral__ReportBatch b = CORRAL__REPORT_BATCH__INIT;
	b.n_events = n;
	b.events = evs;
	r = st->ops->report_store(st, &d, &b, util_now_ms(), ret_acked);
	for (size_t i = 0; i < n; i++)
		free(evs[i]);
	free(evs);
	return r;
}

/* A group "g", a token "t-DEV" of `uses` uses and an enrolled device `dev`. */
static int seed(struct srv_store *st, unsigned uses, const char *dev)
{
	char tok[64];
	snprintf(tok, sizeof(tok), "t-%s", dev);
	int64_t now = util_now_sec();
	int r = st->ops->group_create(st, "g", "test", now);
	if (r < 0 && r != -EEXIST)
		return r;
	r = st->ops->enroll_token_add(st, tok, "g", g_sha, uses, now + 3600, "test", now);
	if (r < 0)
		return r;
	struct srv_enroll_in in = {.token_id = tok,
	                           .secret_sha256 = g_sha,
	                           .device_id = dev,
	                           .hostname = "h",
	                           .agent_version = "v",
	                           .cert_serial = "00",
	                           .cert_expires_at = now + 86400,
	                           .now = now};
	enum srv_enroll_result res;
	char group[SRV_ID_MAX];
	r = st->ops->enroll(st, &in, &res, group);
	return r < 0 ? r : res == SRV_ENROLL_OK ? 0 : -EPERM;
}

static size_t count_events(struct srv_store *st, const char *device)
{
	struct srv_event_filter f = {.device_id = device, .kind = -1, .limit = 10000};
	json_t *j = NULL;
	if (st->ops->events_query(st, &f, &j) < 0)
		return (size_t)-1;
	size_t n = json_array_size(j);
	json_decref(j);
	return n;
}

/* ---- URL handling and SQLite ------------------------------------------------------------------
 */

static void test_open_urls(void)
{
	struct srv_store *st = NULL;
	char err[256] = "";
	CU_ASSERT_EQUAL(srv_store_open("mysql://x", g_dir, &st, err, sizeof(err)), -EINVAL);
	CU_ASSERT(strstr(err, "unknown database URL") != NULL);
	CU_ASSERT_PTR_NULL(st);
	CU_ASSERT(!srv_store_url_is_shared(NULL));
	CU_ASSERT(!srv_store_url_is_shared("sqlite:/x"));
	CU_ASSERT(srv_store_url_is_shared("postgresql://h/db"));
	CU_ASSERT(srv_store_url_is_shared("postgres://h/db"));
	/* Default and "sqlite" are DIR/server.db; "sqlite:PATH" is PATH. */
	st = open_url(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_PTR_NULL(st->ops->watch);
	st->ops->close(st);
	char p[700];
	snprintf(p, sizeof(p), "%s/server.db", g_dir);
	CU_ASSERT(access(p, F_OK) == 0);
	snprintf(p, sizeof(p), "sqlite:%s/other.db", g_dir);
	st = open_url(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	st->ops->close(st);
	snprintf(p, sizeof(p), "%s/other.db", g_dir);
	CU_ASSERT(access(p, F_OK) == 0);
	/* A PostgreSQL server that is not there. */
	char refused[700];
	snprintf(refused, sizeof(refused), "postgresql:///x?host=%s/none&connect_timeout=2", g_dir);
	CU_ASSERT_EQUAL(srv_store_open(refused, g_dir, &st, err, sizeof(err)), -ECONNREFUSED);
	CU_ASSERT(strstr(err, "connecting to PostgreSQL") != NULL);
}

static void test_sqlite_prune(void)
{
	char p[700];
	snprintf(p, sizeof(p), "sqlite:%s/prune.db", g_dir);
	struct srv_store *st = open_url(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL_FATAL(seed(st, 5, "d1"), 0);
	uint64_t seqs[10];
	int64_t times[10];
	for (int i = 0; i < 10; i++) {
		seqs[i] = (uint64_t)i + 1;
		times[i] = 1000 + i; /* 1000..1009 */
	}
	uint64_t acked = 0;
	CU_ASSERT_EQUAL(store_events(st, "d1", seqs, times, 10, &acked), 0);
	CU_ASSERT_EQUAL(acked, 10);
	CU_ASSERT_EQUAL(st->ops->events_prune(st, 0, 100), 0); /* 0: nothing */
	CU_ASSERT_EQUAL(count_events(st, "d1"), 10);
	/* Older than 1006: six rows, in batches of four (1 = call again). */
	CU_ASSERT_EQUAL(st->ops->events_prune(st, 1006, 4), 1);
	CU_ASSERT_EQUAL(count_events(st, "d1"), 6);
	CU_ASSERT_EQUAL(st->ops->events_prune(st, 1006, 4), 0);
	CU_ASSERT_EQUAL(count_events(st, "d1"), 4);
	/* Size bound: keep the newest 2 of the 4 left (1006..1009), one row per call. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(st->ops->events_prune_excess);
	CU_ASSERT_EQUAL(st->ops->events_prune_excess(st, 10, 1), 0); /* under the cap */
	CU_ASSERT_EQUAL(count_events(st, "d1"), 4);
	CU_ASSERT_EQUAL(st->ops->events_prune_excess(st, 2, 1), 1);
	CU_ASSERT_EQUAL(count_events(st, "d1"), 3);
	CU_ASSERT_EQUAL(st->ops->events_prune_excess(st, 2, 1), 0);
	CU_ASSERT_EQUAL(count_events(st, "d1"), 2);
	/* the survivors are the newest */
	CU_ASSERT_EQUAL(st->ops->events_prune(st, 1008, 10), 0);
	CU_ASSERT_EQUAL(count_events(st, "d1"), 2);
	st->ops->close(st);
}

static void test_config_keys(void)
{
	char p[700];
	snprintf(p, sizeof(p), "%s/c.json", g_dir);
	const char *ok = "{\"database\": \"postgresql:///corral\", \"event_retention\": \"30d\", "
	                 "\"event_retention_events\": 5000000}";
	util_write_file_atomic(p, ok, strlen(ok), 0644);
	struct srv_config cfg = {0};
	srv_config_defaults(&cfg);
	char err[256];
	CU_ASSERT_EQUAL(srv_config_load(p, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.database, "postgresql:///corral");
	CU_ASSERT_EQUAL(cfg.event_retention_sec, 30 * 86400);
	CU_ASSERT_EQUAL(cfg.event_retention_events, 5000000);
	const char *bad[] = {"{\"event_retention\": \"soon\"}", "{\"database\": 5}",
	                     "{\"event_retention_events\": 10}",
	                     "{\"event_retention_events\": \"many\"}"};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		util_write_file_atomic(p, bad[i], strlen(bad[i]), 0644);
		CU_ASSERT_EQUAL(srv_config_load(p, &cfg, err, sizeof(err)), -EINVAL);
	}
	char big[1200];
	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	_cleanup_free_ char *json = NULL;
	CU_ASSERT_FATAL(asprintf(&json, "{\"database\": \"%s\"}", big) > 0);
	util_write_file_atomic(p, json, strlen(json), 0644);
	CU_ASSERT_EQUAL(srv_config_load(p, &cfg, err, sizeof(err)), -EINVAL);
}

/* ---- PostgreSQL --------------------------------------------------------------------------------
 */

static void test_pg_migrations(void)
{
	if (!g_db)
		HARNESS_SKIP("CORRAL_TEST_DATABASE not set (run through pg-cluster.sh run)");
	struct srv_store *st = open_url(g_db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_PTR_NOT_NULL(st->ops->watch);
	st->ops->close(st);
	/* Opening again applies nothing new. */
	st = open_url(g_db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	st->ops->close(st);
	/* Every embedded migration applied once, and the two backends are versioned alike. */
	CU_ASSERT_EQUAL(pg_count("SELECT count(*) FROM schema_version"),
	                (long long)server_pg_migrations_count);
	CU_ASSERT_EQUAL(server_pg_migrations_count, server_migrations_count);
	/* A database migrated by a newer server is refused. */
	CU_ASSERT_EQUAL_FATAL(pg_exec("INSERT INTO schema_version VALUES (999, '999_future', 0)"),
	                      0);
	char err[256] = "";
	CU_ASSERT_EQUAL(srv_store_open(g_db, g_dir, &st, err, sizeof(err)), -EPROTO);
	CU_ASSERT(strstr(err, "newer") != NULL);
	CU_ASSERT_EQUAL(pg_exec("DELETE FROM schema_version WHERE version = 999"), 0);
	/* The audit log refuses updates and deletes. */
	st = open_url(g_db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL(st->ops->audit_add(st, "me", "x.y", "t", "", 1), 0);
	st->ops->close(st);
	CU_ASSERT(pg_exec("DELETE FROM audit") < 0);
	CU_ASSERT(pg_exec("UPDATE audit SET actor = 'you'") < 0);
}

struct racer {
	struct srv_store *st;
	int id;
	int ok;
	int exhausted;
};

static void *race_main(void *arg)
{
	struct racer *r = arg;
	for (int i = 0; i < 10; i++) {
		char dev[32];
		snprintf(dev, sizeof(dev), "race-%d-%d", r->id, i);
		struct srv_enroll_in in = {.token_id = "t2",
		                           .secret_sha256 = g_sha,
		                           .device_id = dev,
		                           .hostname = "h",
		                           .agent_version = "v",
		                           .cert_serial = "00",
		                           .cert_expires_at = util_now_sec() + 100,
		                           .now = util_now_sec()};
		enum srv_enroll_result res;
		char group[SRV_ID_MAX];
		if (r->st->ops->enroll(r->st, &in, &res, group) == 0) {
			r->ok += res == SRV_ENROLL_OK;
			r->exhausted += res == SRV_ENROLL_EXHAUSTED;
		}
	}
	return NULL;
}

static void test_pg_enroll_atomic(void)
{
	if (!g_db)
		HARNESS_SKIP("CORRAL_TEST_DATABASE not set");
	/* Two handles = two replicas' connections, racing for a token of 7 uses. */
	struct racer r[2] = {{open_url(g_db), 0, 0, 0}, {open_url(g_db), 1, 0, 0}};
	CU_ASSERT_PTR_NOT_NULL_FATAL(r[0].st);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r[1].st);
	CU_ASSERT_EQUAL(seed(r[0].st, 5, "d1"), 0);
	int64_t now = util_now_sec();
	CU_ASSERT_EQUAL_FATAL(
	        r[0].st->ops->enroll_token_add(r[0].st, "t2", "g", g_sha, 7, now + 60, "x", now),
	        0);
	CU_ASSERT_EQUAL(r[0].st->ops->enroll_token_add(r[0].st, "t3", "nogroup", g_sha, 7, now + 60,
	                                               "x", now),
	                -ENOENT);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, race_main, &r[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CU_ASSERT_EQUAL(r[0].ok + r[1].ok, 7);
	CU_ASSERT_EQUAL(r[0].exhausted + r[1].exhausted, 13);
	/* Expired and wrong-secret tokens. */
	CU_ASSERT_EQUAL(r[0].st->ops->enroll_token_add(r[0].st, "old", "g", g_sha, 1, now - 1, "x",
	                                               now - 10),
	                0);
	uint8_t wrong[SRV_SHA256_LEN] = {9};
	struct srv_enroll_in in = {.token_id = "old",
	                           .secret_sha256 = g_sha,
	                           .device_id = "late",
	                           .cert_serial = "00",
	                           .now = now};
	enum srv_enroll_result res;
	char group[SRV_ID_MAX];
	CU_ASSERT_EQUAL(r[0].st->ops->enroll(r[0].st, &in, &res, group), 0);
	CU_ASSERT_EQUAL(res, SRV_ENROLL_EXPIRED);
	in.token_id = "t2";
	in.secret_sha256 = wrong;
	CU_ASSERT_EQUAL(r[0].st->ops->enroll(r[0].st, &in, &res, group), 0);
	CU_ASSERT_EQUAL(res, SRV_ENROLL_INVALID);
	r[0].st->ops->close(r[0].st);
	r[1].st->ops->close(r[1].st);
}

static void test_pg_report_idempotent(void)
{
	if (!g_db)
		HARNESS_SKIP("CORRAL_TEST_DATABASE not set");
	struct srv_store *st = open_url(g_db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	int64_t now = util_now_ms();
	uint64_t s1[3] = {1, 2, 4};
	int64_t t1[3] = {now, now, now};
	uint64_t acked = 0;
	CU_ASSERT_EQUAL(store_events(st, "d1", s1, t1, 3, &acked), 0);
	CU_ASSERT_EQUAL(acked, 2);
	/* A resend of seq 2 with another time (even another day) is still a duplicate. */
	uint64_t s2[3] = {2, 3, 3};
	int64_t t2[3] = {now - 86400000LL * 3, now, now + 1};
	CU_ASSERT_EQUAL(store_events(st, "d1", s2, t2, 3, &acked), 0);
	CU_ASSERT_EQUAL(acked, 4);
	CU_ASSERT_EQUAL(count_events(st, "d1"), 4);
	/* More than one INSERT chunk (500 rows) in one batch. */
	size_t n = 1200;
	uint64_t *s3 = calloc(n, sizeof(*s3));
	int64_t *t3 = calloc(n, sizeof(*t3));
	for (size_t i = 0; i < n; i++) {
		s3[i] = 5 + i;
		t3[i] = now;
	}
	CU_ASSERT_EQUAL(store_events(st, "d1", s3, t3, n, &acked), 0);
	CU_ASSERT_EQUAL(acked, 4 + n);
	free(s3);
	free(t3);
	CU_ASSERT_EQUAL(count_events(st, "d1"), 4 + n);
	st->ops->close(st);
}

static void test_pg_partitions_retention(void)
{
	if (!g_db)
		HARNESS_SKIP("CORRAL_TEST_DATABASE not set");
	struct srv_store *st = open_url(g_db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	/* Open created yesterday .. two days ahead. */
	CU_ASSERT_EQUAL(pg_count("SELECT count(*) FROM event_partitions"), 4);
	CU_ASSERT_EQUAL(seed(st, 5, "d2"), 0);
	/* Events ten days ago (no partition: events_default) and today (a daily partition). */
	int64_t now = util_now_ms(), old = now - 10 * 86400000LL;
	uint64_t seqs[6] = {1, 2, 3, 4, 5, 6};
	int64_t times[6] = {old, old, old, old, now, now};
	uint64_t acked = 0;
	CU_ASSERT_EQUAL(store_events(st, "d2", seqs, times, 6, &acked), 0);
	CU_ASSERT_EQUAL(acked, 6);
	CU_ASSERT_EQUAL(pg_count("SELECT count(*) FROM events_default"), 4);
	/* A partition created for a day the default partition holds rows of takes them over. */
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT corral_event_partition(%lld)",
	         (long long)(old / 86400000LL));
	CU_ASSERT_EQUAL(pg_exec(sql), 0);
	CU_ASSERT_EQUAL(pg_count("SELECT count(*) FROM events_default"), 0);
	CU_ASSERT_EQUAL(count_events(st, "d2"), 6);
	/* Retention of 5 days: that day's partition is dropped whole, today's rows stay. */
	CU_ASSERT_EQUAL(st->ops->events_prune(st, now - 5 * 86400000LL, 1000), 0);
	CU_ASSERT_EQUAL(count_events(st, "d2"), 2);
	CU_ASSERT_EQUAL(pg_count("SELECT count(*) FROM event_partitions"), 4);
	/* Row-level batches for rows outside any partition (far in the past, default). */
	int64_t older[3] = {old - 86400000LL * 100, old - 86400000LL * 100, old - 86400000LL * 100};
	uint64_t s2[3] = {7, 8, 9};
	CU_ASSERT_EQUAL(store_events(st, "d2", s2, older, 3, &acked), 0);
	CU_ASSERT_EQUAL(count_events(st, "d2"), 5);
	CU_ASSERT_EQUAL(st->ops->events_prune(st, now - 5 * 86400000LL, 2), 1);
	CU_ASSERT_EQUAL(st->ops->events_prune(st, now - 5 * 86400000LL, 2), 0);
	CU_ASSERT_EQUAL(count_events(st, "d2"), 2);
	/* Inside a transaction the upkeep refuses (partition DDL needs its own). */
	CU_ASSERT_EQUAL(st->ops->begin(st), 0);
	CU_ASSERT_EQUAL(st->ops->events_prune(st, 0, 10), -EBUSY);
	st->ops->rollback(st);
	st->ops->close(st);
}

struct seen {
	pthread_mutex_t lock;
	char what[8][64];
	int n;
};

static void on_change(const char *what, void *userdata)
{
	struct seen *s = userdata;
	pthread_mutex_lock(&s->lock);
	if (s->n < 8)
		snprintf(s->what[s->n++], sizeof(s->what[0]), "%s", what ? what : "(root)");
	pthread_mutex_unlock(&s->lock);
}

static int seen_count(struct seen *s)
{
	pthread_mutex_lock(&s->lock);
	int n = s->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void test_pg_notify(void)
{
	if (!g_db)
		HARNESS_SKIP("CORRAL_TEST_DATABASE not set");
	struct srv_store *a = open_url(g_db), *b = open_url(g_db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	struct seen seen = {.lock = PTHREAD_MUTEX_INITIALIZER};
	CU_ASSERT_EQUAL_FATAL(b->ops->watch(b, on_change, &seen), 0);
	CU_ASSERT_EQUAL(b->ops->watch(b, on_change, &seen), -EALREADY);
	usleep(300 * 1000); /* LISTEN is issued on the watch thread */
	const uint8_t env[4] = "envA";
	int64_t now = util_now_ms();
	uint64_t t0 = util_monotonic_ms();
	CU_ASSERT_EQUAL(a->ops->publish(a, "g", 1, env, sizeof(env), 1, 2, "me", now), 0);
	while (seen_count(&seen) < 1 && util_monotonic_ms() - t0 < 2000)
		usleep(1000);
	CU_ASSERT_EQUAL_FATAL(seen_count(&seen), 1);
	CU_ASSERT_STRING_EQUAL(seen.what[0], "g");
	printf("\n  NOTIFY delivered %llu ms after the publish\n",
	       (unsigned long long)(util_monotonic_ms() - t0));
	/* Errors roll back and notify nothing. */
	CU_ASSERT_EQUAL(a->ops->publish(a, "g", 1, env, sizeof(env), 1, 2, "me", now), -EALREADY);
	const uint8_t other[4] = "envB";
	CU_ASSERT_EQUAL(a->ops->publish(a, "g", 1, other, sizeof(other), 1, 2, "me", now), -EEXIST);
	/* Inside a caller's transaction: delivered only at commit. */
	CU_ASSERT_EQUAL(a->ops->begin(a), 0);
	CU_ASSERT_EQUAL(a->ops->trust_root_add(a, 1, env, sizeof(env), 0, "me", 1), 0);
	usleep(200 * 1000);
	CU_ASSERT_EQUAL(seen_count(&seen), 1);
	CU_ASSERT_EQUAL(a->ops->commit(a), 0);
	t0 = util_monotonic_ms();
	while (seen_count(&seen) < 2 && util_monotonic_ms() - t0 < 2000)
		usleep(1000);
	CU_ASSERT_EQUAL_FATAL(seen_count(&seen), 2);
	CU_ASSERT_STRING_EQUAL(seen.what[1], "(root)");
	CU_ASSERT_EQUAL(a->ops->trust_root_add(a, 1, env, sizeof(env), 0, "me", 1), -EEXIST);
	/* The listener reconnects after its connection is killed and asks for a full reload. */
	CU_ASSERT_EQUAL(pg_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
	                        "query LIKE 'LISTEN%'"),
	                0);
	t0 = util_monotonic_ms();
	while (seen_count(&seen) < 3 && util_monotonic_ms() - t0 < 5000)
		usleep(5000);
	CU_ASSERT_EQUAL_FATAL(seen_count(&seen), 3);
	CU_ASSERT_STRING_EQUAL(seen.what[2], "");
	/* The call connection is re-established too, between transactions. */
	CU_ASSERT_EQUAL(pg_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
	                        "pid <> pg_backend_pid() AND query NOT LIKE 'LISTEN%' AND "
	                        "datname = current_database()"),
	                0);
	CU_ASSERT(a->ops->group_exists(a, "g") < 0); /* the call that finds it dead */
	CU_ASSERT_EQUAL(a->ops->group_exists(a, "g"), 1);
	b->ops->close(b);
	a->ops->close(a);
}

static void test_pg_console_calls(void)
{
	if (!g_db)
		HARNESS_SKIP("CORRAL_TEST_DATABASE not set");
	struct srv_store *st = open_url(g_db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	const struct srv_console_store_ops *c = st->ops->console;
	json_t *j = NULL;
	CU_ASSERT_EQUAL(c->enroll_tokens(st, &j), 0);
	CU_ASSERT(json_array_size(j) >= 2);
	json_decref(j);
	CU_ASSERT_EQUAL(c->device_events(st, "d1", NULL, 3, &j), 0);
	CU_ASSERT_EQUAL(json_array_size(j), 3);
	CU_ASSERT_STRING_EQUAL(
	        json_string_value(json_object_get(json_array_get(j, 0), "device_id")), "d1");
	json_decref(j);
	CU_ASSERT_EQUAL(c->device_events(st, "d1", "no-such-session", 3, &j), 0);
	CU_ASSERT_EQUAL(json_array_size(j), 0);
	json_decref(j);
	CU_ASSERT_EQUAL(c->device_events(st, "nobody", NULL, 3, &j), -ENOENT);
	CU_ASSERT_EQUAL(c->metrics(st, &j), 0);
	CU_ASSERT(json_integer_value(json_object_get(j, "events_total")) > 1000);
	json_decref(j);
	uint8_t *env = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL(c->bundle_get(st, 1, &env, &len), 0);
	CU_ASSERT_EQUAL(len, 4);
	free(env);
	CU_ASSERT_EQUAL(c->bundle_get(st, 99, &env, &len), -ENOENT);
	CU_ASSERT(c->change_counter(st) > 0);
	/* The suite's earlier violations (d1) are folded into the read model, and one whose
	 * profile is not UTF-8 does not wedge the queue: it is stored with '?' in its place. */
	Corral__Violation v = CORRAL__VIOLATION__INIT;
	Corral__Event ev = CORRAL__EVENT__INIT, *evs[1] = {&ev};
	ev.seq = 900000;
	ev.time_ms = util_now_ms();
	ev.kind = CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION;
	ev.detail_case = CORRAL__EVENT__DETAIL_VIOLATION;
	ev.violation = &v;
	ev.profile = (char *)"bad\xff\xc3"
	                     "x\xed\xa0\x80";
	struct srv_device d;
	CU_ASSERT_EQUAL_FATAL(st->ops->device_get(st, "d1", &d), 0);
	Corral__ReportBatch b = CORRAL__REPORT_BATCH__INIT;
	b.n_events = 1;
	b.events = evs;
	uint64_t acked;
	CU_ASSERT_EQUAL(st->ops->report_store(st, &d, &b, util_now_ms(), &acked), 0);
	CU_ASSERT(c->sync(st) >= 1);
	CU_ASSERT_EQUAL(c->sync(st), 0);
	struct srv_console_violation_filter vf = {.vkind = -1, .profile = "bad??x???", .limit = 5};
	CU_ASSERT_EQUAL(c->violations(st, &vf, &j), 0);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "total")), 1);
	json_decref(j);
	CU_ASSERT_EQUAL(c->overview(st, util_now_sec(), 600, &j), 0);
	CU_ASSERT(json_integer_value(json_object_get(j, "devices_total")) >= 1);
	json_decref(j);
	st->ops->close(st);
}

/* ---- backend parity: the console's calls answer alike on SQLite and PostgreSQL ------------ */

#define PARITY_NOW 1790000000LL /* fixed clock: both stores see the same times */

struct parity_dev {
	const char *id, *group;
	int64_t last_seen_ms; /* 0 = never heartbeats */
	uint64_t policy;
	int freshness;
	bool degraded, revoke;
};

static const struct parity_dev parity_devs[] = {
        {"dev-a", "g", PARITY_NOW * 1000, 2, 1, false, false},          /* compliant */
        {"dev-B", "g", PARITY_NOW * 1000, 1, 1, false, false},          /* out-of-date */
        {"dev-c", "g", PARITY_NOW * 1000, 2, 2, false, false},          /* stale */
        {"dev_d", "g", PARITY_NOW * 1000, 2, 1, true, false},           /* degraded */
        {"dev-e", "h", 0, 0, 0, false, false},                          /* pending */
        {"dev-f", "h", (PARITY_NOW - 7200) * 1000, 1, 1, false, false}, /* not-seen */
        {"dev-g", "h", PARITY_NOW * 1000, 1, 1, false, true},           /* revoked */
        {"dev-h", "h", PARITY_NOW * 1000, 1, 1, false, false},          /* failing (rejects 3) */
};

static int parity_report(struct srv_store *st, const char *dev, Corral__Event **evs, size_t n,
                         int64_t now_ms)
{
	struct srv_device d;
	int r = st->ops->device_get(st, dev, &d);
	if (r < 0)
		return r;
	Corral__ReportBatch b = CORRAL__REPORT_BATCH__INIT;
	b.n_events = n;
	b.events = evs;
	uint64_t acked;
	return st->ops->report_store(st, &d, &b, now_ms, &acked);
}

/* The same fleet, policies and events into either backend. */
static int parity_fill(struct srv_store *st)
{
	const int64_t now = PARITY_NOW;
	static const uint8_t env[4] = {1, 2, 3, 4};
	int r;
	if ((r = st->ops->group_create(st, "g", "test", now)) < 0 ||
	    (r = st->ops->group_create(st, "h", "test", now)) < 0 ||
	    (r = st->ops->group_create(st, "empty", "test", now)) < 0 ||
	    (r = st->ops->publish(st, "g", 1, env, 4, now, now + 86400, "t", now * 1000)) < 0 ||
	    (r = st->ops->publish(st, "g", 2, env, 4, now, now + 86400, "t", now * 1000)) < 0 ||
	    (r = st->ops->publish(st, "h", 1, env, 4, now, now + 86400, "t", now * 1000)) < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(parity_devs); i++) {
		const struct parity_dev *p = &parity_devs[i];
		char tok[32];
		snprintf(tok, sizeof(tok), "tok-%zu", i);
		r = st->ops->enroll_token_add(st, tok, p->group, g_sha, 1, now + 3600, "test", now);
		if (r < 0)
			return r;
		struct srv_enroll_in in = {.token_id = tok,
		                           .secret_sha256 = g_sha,
		                           .device_id = p->id,
		                           .hostname = i % 2 ? "host-odd" : "host-even",
		                           .agent_version = "v",
		                           .cert_serial = "00",
		                           .cert_expires_at = now + 86400,
		                           .now = p->last_seen_ms ? now - 7200 : now};
		enum srv_enroll_result res;
		char group[SRV_ID_MAX];
		if ((r = st->ops->enroll(st, &in, &res, group)) < 0)
			return r;
		if (!p->last_seen_ms)
			continue;
		Corral__KernelFeatures req = CORRAL__KERNEL_FEATURES__INIT,
		                       enf = CORRAL__KERNEL_FEATURES__INIT;
		req.landlock_abi = 3;
		req.seccomp = true;
		enf.landlock_abi = p->degraded ? 1 : 3;
		enf.seccomp = true;
		Corral__Heartbeat hb = CORRAL__HEARTBEAT__INIT;
		hb.policy_version = p->policy;
		hb.freshness = (Corral__Freshness)p->freshness;
		hb.requested = &req;
		hb.enforced = &enf;
		hb.agent_version = (char *)"1.0";
		hb.kernel_release = (char *)"6.18";
		Corral__Event ev[8], *evs[8];
		Corral__Violation viol[5];
		Corral__PolicyRejected rej = CORRAL__POLICY_REJECTED__INIT;
		size_t n = 0;
		corral__event__init(&ev[n]);
		ev[n].seq = n + 1;
		ev[n].time_ms = p->last_seen_ms;
		ev[n].kind = CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT;
		ev[n].detail_case = CORRAL__EVENT__DETAIL_HEARTBEAT;
		ev[n].heartbeat = &hb;
		n++;
		/* Violations spread over three hours, kinds, profiles, users and sessions. */
		for (size_t k = 0; k < 5 && i != 4; k++, n++) {
			corral__violation__init(&viol[k]);
			viol[k].kind = (Corral__ViolationKind)(1 + (i + k) % 4);
			viol[k].target = (char *)"/etc/shadow";
			corral__event__init(&ev[n]);
			ev[n].seq = n + 1;
			ev[n].time_ms = (now - 3600 * (int64_t)(k % 3)) * 1000 - (int64_t)i;
			ev[n].kind = CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION;
			ev[n].detail_case = CORRAL__EVENT__DETAIL_VIOLATION;
			ev[n].violation = &viol[k];
			ev[n].profile = (char *)(k % 2 ? "claude" : "codex");
			ev[n].user = (char *)(i % 3 ? "alice" : "bob");
			ev[n].session_id = (char *)(k < 2 ? "s-1" : "s-2");
			ev[n].policy_version = p->policy;
		}
		if (strcmp(p->id, "dev-h") == 0) {
			rej.reason = (char *)"bad-signature";
			rej.version = 3;
			corral__event__init(&ev[n]);
			ev[n].seq = n + 1;
			ev[n].time_ms = now * 1000;
			ev[n].kind = CORRAL__EVENT_KIND__EVENT_KIND_POLICY_REJECTED;
			ev[n].detail_case = CORRAL__EVENT__DETAIL_POLICY_REJECTED;
			ev[n].policy_rejected = &rej;
			n++;
		}
		for (size_t k = 0; k < n; k++)
			evs[k] = &ev[k];
		if ((r = parity_report(st, p->id, evs, n, p->last_seen_ms)) < 0)
			return r;
		if (p->revoke && (r = st->ops->device_revoke(st, p->id, now)) < 0)
			return r;
	}
	return st->ops->console->sync(st);
}

/* Compares one call's JSON across the backends; prints both on a difference. */
static void parity_check(const char *what, int r1, json_t *a, int r2, json_t *b)
{
	CU_ASSERT_EQUAL(r1, r2);
	bool same = (r1 < 0 && r2 < 0) || json_equal(a, b);
	if (!same) {
		_cleanup_free_ char *sa = a ? json_dumps(a, JSON_SORT_KEYS) : NULL;
		_cleanup_free_ char *sb = b ? json_dumps(b, JSON_SORT_KEYS) : NULL;
		fprintf(stderr, "%s differs:\n sqlite: %s\n pg:     %s\n", what, sa ? sa : "-",
		        sb ? sb : "-");
	}
	CU_ASSERT(same);
	json_decref(a);
	json_decref(b);
}

static void test_console_parity(void)
{
	if (!g_db)
		HARNESS_SKIP("CORRAL_TEST_DATABASE not set");
	/* A database of its own next to the suite's (same cluster, same credentials). */
	CU_ASSERT_EQUAL_FATAL(pg_exec("DROP DATABASE IF EXISTS corral_parity"), 0);
	CU_ASSERT_EQUAL_FATAL(pg_exec("CREATE DATABASE corral_parity"), 0);
	const char *q = strchr(g_db, '?');
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	char url[700], dir[700], path[800];
	snprintf(url, sizeof(url), "postgresql:///corral_parity%s", q);
	snprintf(dir, sizeof(dir), "%s/parity", g_dir);
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "sqlite:%s/parity.db", dir);
	struct srv_store *sl = open_url(path), *pg = open_url(url);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sl);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pg);
	int n1 = parity_fill(sl), n2 = parity_fill(pg);
	CU_ASSERT(n1 > 0);
	CU_ASSERT_EQUAL(n1, n2);
	const struct srv_console_store_ops *a = sl->ops->console, *b = pg->ops->console;
	/* Folded already: nothing more to do on either. */
	CU_ASSERT_EQUAL(a->sync(sl), 0);
	CU_ASSERT_EQUAL(b->sync(pg), 0);
	json_t *ja = NULL, *jb = NULL;
	int r1, r2;
	const int64_t now = PARITY_NOW, ns = 3600;
	r1 = a->overview(sl, now, ns, &ja);
	r2 = b->overview(pg, now, ns, &jb);
	CU_ASSERT_EQUAL(r1, 0);
	/* Every state is represented once, so the classifier is exercised whole. */
	json_t *states = r1 == 0 ? json_object_get(ja, "states") : NULL;
	const char *names[] = {"compliant", "degraded", "out-of-date", "stale",
	                       "failing",   "pending",  "not-seen",    "revoked"};
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(states, names[i])), 1);
	parity_check("overview", r1, ja, r2, jb);
	struct srv_console_device_filter df[] = {
	        {.now = now, .not_seen_sec = ns, .limit = 100},
	        {.now = now, .not_seen_sec = ns, .limit = 3, .offset = 2},
	        {.now = now, .not_seen_sec = ns, .limit = 3, .offset = 50},
	        {.group = "h", .now = now, .not_seen_sec = ns, .limit = 100},
	        {.state = "failing", .now = now, .not_seen_sec = ns, .limit = 100},
	        {.search = "odd", .now = now, .not_seen_sec = ns, .limit = 100},
	        {.search = "dev_", .now = now, .not_seen_sec = ns, .limit = 100},
	};
	for (size_t i = 0; i < ELEMENTSOF(df); i++) {
		r1 = a->devices(sl, &df[i], &ja);
		r2 = b->devices(pg, &df[i], &jb);
		CU_ASSERT_EQUAL(r1, 0);
		parity_check("devices", r1, ja, r2, jb);
	}
	for (size_t i = 0; i < ELEMENTSOF(parity_devs); i++) {
		r1 = a->device(sl, parity_devs[i].id, now, ns, &ja);
		r2 = b->device(pg, parity_devs[i].id, now, ns, &jb);
		CU_ASSERT_EQUAL(r1, 0);
		parity_check("device", r1, ja, r2, jb);
	}
	r1 = a->device(sl, "nobody", now, ns, &ja);
	r2 = b->device(pg, "nobody", now, ns, &jb);
	CU_ASSERT_EQUAL(r2, -ENOENT);
	parity_check("device nobody", r1, NULL, r2, NULL);
	struct srv_console_violation_filter vf[] = {
	        {.vkind = -1, .limit = 100},
	        {.vkind = -1, .limit = 4, .offset = 3},
	        {.vkind = -1, .limit = 4, .offset = 500},
	        {.vkind = 2, .limit = 100},
	        {.vkind = -1, .device_id = "dev-c", .limit = 100},
	        {.vkind = -1, .device_id = "nobody", .limit = 100},
	        {.vkind = -1, .profile = "claude", .user = "alice", .limit = 100},
	        {.vkind = -1, .session = "s-2", .limit = 100},
	        {.vkind = -1,
	         .since_ms = (now - 3600) * 1000,
	         .until_ms = now * 1000,
	         .limit = 100},
	};
	for (size_t i = 0; i < ELEMENTSOF(vf); i++) {
		r1 = a->violations(sl, &vf[i], &ja);
		r2 = b->violations(pg, &vf[i], &jb);
		CU_ASSERT_EQUAL(r1, 0);
		parity_check("violations", r1, ja, r2, jb);
	}
	const int64_t windows[][3] = {
	        {0, 0, 3600000},
	        {(now - 86400) * 1000, now * 1000 + 1, 7200000},
	        {(now - 5000) * 1000, 0, 1000},
	};
	for (size_t i = 0; i < ELEMENTSOF(windows); i++) {
		r1 = a->violation_stats(sl, windows[i][0], windows[i][1], windows[i][2], &ja);
		r2 = b->violation_stats(pg, windows[i][0], windows[i][1], windows[i][2], &jb);
		CU_ASSERT_EQUAL(r1, 0);
		parity_check("violation_stats", r1, ja, r2, jb);
	}
	for (size_t i = 0; i < 2; i++) {
		const char *sess = i ? "s-1" : NULL;
		r1 = a->device_events(sl, "dev-a", sess, 50, &ja);
		r2 = b->device_events(pg, "dev-a", sess, 50, &jb);
		parity_check("device_events", r1, ja, r2, jb);
	}
	/* A violation stored after the fold is counted once more, once. */
	int64_t before = b->change_counter(pg);
	Corral__Violation v = CORRAL__VIOLATION__INIT;
	v.kind = CORRAL__VIOLATION_KIND__VIOLATION_KIND_NETWORK;
	Corral__Event ev = CORRAL__EVENT__INIT, *evs[1] = {&ev};
	ev.seq = 100;
	ev.time_ms = now * 1000;
	ev.kind = CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION;
	ev.detail_case = CORRAL__EVENT__DETAIL_VIOLATION;
	ev.violation = &v;
	for (int k = 0; k < 2; k++) {
		CU_ASSERT_EQUAL(parity_report(sl, "dev-a", evs, 1, now * 1000), 0);
		CU_ASSERT_EQUAL(parity_report(pg, "dev-a", evs, 1, now * 1000), 0);
		CU_ASSERT_EQUAL(a->sync(sl), 1 - k);
		CU_ASSERT_EQUAL(b->sync(pg), 1 - k);
	}
	CU_ASSERT(b->change_counter(pg) > before);
	r1 = a->device(sl, "dev-a", now, ns, &ja);
	r2 = b->device(pg, "dev-a", now, ns, &jb);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(jb, "violations")), 6);
	parity_check("device after more", r1, ja, r2, jb);
	r1 = a->violation_stats(sl, 0, 0, 3600000, &ja);
	r2 = b->violation_stats(pg, 0, 0, 3600000, &jb);
	parity_check("violation_stats after more", r1, ja, r2, jb);
	sl->ops->close(sl);
	pg->ops->close(pg);
}

static const struct harness_test tests[] = {
        {"open_urls", test_open_urls},
        {"sqlite_prune", test_sqlite_prune},
        {"config_keys", test_config_keys},
        {"pg_migrations", test_pg_migrations},
        {"pg_enroll_atomic", test_pg_enroll_atomic},
        {"pg_report_idempotent", test_pg_report_idempotent},
        {"pg_partitions_retention", test_pg_partitions_retention},
        {"pg_notify", test_pg_notify},
        {"pg_console_calls", test_pg_console_calls},
        {"console_parity", test_console_parity},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"store_pg", suite_init, suite_cleanup, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
