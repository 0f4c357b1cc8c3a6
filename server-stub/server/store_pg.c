// SPDX-License-Identifier: Apache-2.0
/*
 * The PostgreSQL backend of the server storage interface (store.h), for several corral-server
 * replicas sharing one database. The only file besides store_sqlite*.c with SQL in it.
 *
 * - One libpq connection for the calls (the server serialises them with its store lock); it is
 *   re-established transparently between transactions when the database restarted.
 * - Schema: schema/sql/server-pg/NNN_*.sql (numbers match the SQLite set), applied at open by
 *   a small runner that records versions in `schema_version`, all in one transaction under an
 *   advisory lock so replicas starting together migrate once.
 * - Cross-replica wake-ups: publish and trust_root_add NOTIFY `corral_change` inside their
 *   transaction (delivered at commit); watch() runs a thread with a second connection that
 *   LISTENs and polls its socket (PQsocket), handing each notification to the server.
 * - Enrollment counts uses with one conditional UPDATE ... RETURNING: with READ COMMITTED, a
 *   second replica's UPDATE of the same row waits for the first to commit and re-checks
 *   `uses < max_uses` on the new row, so a token is never used more than max_uses times.
 * - Reports: one multi-row statement per chunk: keys into event_keys (unique (device, seq),
 *   ON CONFLICT DO NOTHING), then the events whose key was new.
 * - Events are partitioned by day (001_init.sql); events_prune creates partitions ahead and
 *   drops whole days past the retention.
 *
 * Results are requested in binary format so bytea needs no unescaping; col_i64 decodes integers
 * in either format.
 */
#include "compliance.h"
#include "store.h"
#include "store_console.h"

#include "cleanup.h"
#include "db.h"
#include "util.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <openssl/sha.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHANGE_CHANNEL   "corral_change"
#define REPORT_CHUNK     500u /* rows per INSERT: 7 parameters each, far under 65535 */
#define WATERMARK_MAX    100000
#define PARTITIONS_AHEAD 2
#define DAY_MS           86400000LL
#define MIGRATION_LOCK   7400

struct store_pg {
	struct srv_store base; /* first: the interface handle */
	PGconn *conn;
	char *url;
	bool in_tx;
	bool change_seq;        /* corral_change_seq exists (migrated) */
	int64_t partitions_day; /* day for which upkeep last created partitions */

	/* watch() */
	pthread_t watch_thread;
	bool watching;
	int stop_pipe[2];
	srv_store_change_cb cb;
	void *cb_userdata;
};

static struct store_pg *impl(struct srv_store *st)
{
	return (struct store_pg *)st;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(PGresult, PQclear)
#define _cleanup_res_ _cleanup_(PQclearp)

/* ---- parameters and results ------------------------------------------------------------ */

#define PG_MAXP 16

struct pgp {
	int n;
	const char *v[PG_MAXP];
	int len[PG_MAXP];
	int fmt[PG_MAXP];
	char num[PG_MAXP][24];
};

static void p_i64(struct pgp *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof(p->num[0]), "%lld", (long long)v);
	p->v[p->n] = p->num[p->n];
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

static void p_text(struct pgp *p, const char *s)
{
	p->v[p->n] = s ? s : "";
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

static void p_null(struct pgp *p)
{
	p->v[p->n] = NULL;
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

static void p_bytes(struct pgp *p, const void *b, size_t len)
{
	p->v[p->n] = len ? b : "";
	p->len[p->n] = (int)len;
	p->fmt[p->n] = 1;
	p->n++;
}

/* Maps a failed result: unique violations are -EEXIST, other constraint failures -EINVAL. */
static int result_error(const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (!state)
		return -EIO;
	if (strcmp(state, "23505") == 0)
		return -EEXIST;
	if (strncmp(state, "23", 2) == 0)
		return -EINVAL;
	return -EIO;
}

/* A connection lost between transactions is re-established before the next call. */
static void ensure_connected(struct store_pg *s)
{
	if (!s->in_tx && PQstatus(s->conn) != CONNECTION_OK)
		PQreset(s->conn);
}

/* Runs one statement with binary results. *ret (optional) receives the result on success. */
static int q_run_n(struct store_pg *s, const char *sql, int n, const char *const *v, const int *len,
                   const int *fmt, PGresult **ret)
{
	ensure_connected(s);
	PGresult *res = PQexecParams(s->conn, sql, n, NULL, v, len, fmt, 1);
	ExecStatusType t = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK) {
		int r = result_error(res);
		PQclear(res);
		return r;
	}
	if (ret)
		*ret = res;
	else
		PQclear(res);
	return 0;
}

static int q_run(struct store_pg *s, const char *sql, const struct pgp *p, PGresult **ret)
{
	return q_run_n(s, sql, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL, p ? p->fmt : NULL,
	               ret);
}

static int64_t col_i64(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	const char *v = PQgetvalue(res, row, col);
	if (PQfformat(res, col) == 0)
		return strtoll(v, NULL, 10);
	switch (PQgetlength(res, row, col)) {
	case 8: {
		uint64_t x;
		memcpy(&x, v, 8);
		return (int64_t)be64toh(x);
	}
	case 4: {
		uint32_t x;
		memcpy(&x, v, 4);
		return (int32_t)be32toh(x);
	}
	case 2: {
		uint16_t x;
		memcpy(&x, v, 2);
		return (int16_t)be16toh(x);
	}
	case 1:
		return (unsigned char)v[0];
	default:
		return 0;
	}
}

/* Text column that is never NULL for json (binary text is the bytes plus a NUL from libpq). */
static const char *col_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
}

static const uint8_t *col_blob(const PGresult *res, int row, int col, size_t *ret_len)
{
	*ret_len = (size_t)PQgetlength(res, row, col);
	return (const uint8_t *)PQgetvalue(res, row, col);
}

/* ---- transactions ---------------------------------------------------------------------- */

static int st_begin(struct srv_store *st)
{
	struct store_pg *s = impl(st);
	int r = q_run(s, "BEGIN", NULL, NULL);
	if (r >= 0)
		s->in_tx = true;
	return r;
}

static int st_commit(struct srv_store *st)
{
	struct store_pg *s = impl(st);
	int r = q_run(s, "COMMIT", NULL, NULL);
	s->in_tx = false;
	/* The change counter moved at each write statement, before this commit made the rows
	 * visible: move it again now (004_console_pg.sql). Best effort, and absent while a
	 * database is still being migrated to version 4. */
	if (r >= 0 && s->change_seq)
		(void)q_run(s, "SELECT nextval('corral_change_seq')", NULL, NULL);
	return r;
}

static void st_rollback(struct srv_store *st)
{
	struct store_pg *s = impl(st);
	if (PQstatus(s->conn) == CONNECTION_OK)
		(void)q_run(s, "ROLLBACK", NULL, NULL);
	s->in_tx = false;
}

/* Runs fn in its own transaction when the caller has none open. */
static int tx_begin_own(struct srv_store *st, bool *own)
{
	*own = !impl(st)->in_tx;
	return *own ? st_begin(st) : 0;
}

static int tx_end_own(struct srv_store *st, bool own, int r)
{
	if (!own)
		return r;
	if (r >= 0) {
		int k = st_commit(st);
		if (k < 0) {
			st_rollback(st);
			return k;
		}
		return r;
	}
	st_rollback(st);
	return r;
}

/* ---- audit, tokens, groups --------------------------------------------------------------- */

static int st_audit_add(struct srv_store *st, const char *actor, const char *action,
                        const char *target, const char *detail, int64_t at_ms)
{
	struct pgp p = {0};
	p_i64(&p, at_ms);
	p_text(&p, actor);
	p_text(&p, action);
	p_text(&p, target);
	p_text(&p, detail);
	return q_run(impl(st),
	             "INSERT INTO audit(at_ms, actor, action, target, detail) "
	             "VALUES($1,$2,$3,$4,$5)",
	             &p, NULL);
}

static int st_audit_list(struct srv_store *st, unsigned limit, json_t **ret)
{
	struct pgp p = {0};
	p_i64(&p, limit);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st),
	              "SELECT id, at_ms, actor, action, target, detail FROM "
	              "(SELECT * FROM audit ORDER BY id DESC LIMIT $1) a ORDER BY id",
	              &p, &res);
	if (r < 0)
		return r;
	json_t *arr = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(
		        arr, json_pack("{sI sI ss ss ss ss}", "id", col_i64(res, i, 0), "at_ms",
		                       col_i64(res, i, 1), "actor", col_text(res, i, 2), "action",
		                       col_text(res, i, 3), "target", col_text(res, i, 4), "detail",
		                       col_text(res, i, 5)));
	*ret = arr;
	return 0;
}

static int st_admin_token_add(struct srv_store *st, const char *id, const char *name,
                              const char *role, const uint8_t *sha, const char *by, int64_t now)
{
	struct pgp p = {0};
	p_text(&p, id);
	p_text(&p, name);
	p_text(&p, role);
	p_bytes(&p, sha, SRV_SHA256_LEN);
	p_i64(&p, now);
	p_text(&p, by);
	return q_run(impl(st),
	             "INSERT INTO admin_tokens(id, name, role, secret_sha256, created_at, "
	             "created_by) VALUES($1,$2,$3,$4,$5,$6)",
	             &p, NULL);
}

static int st_admin_token_get(struct srv_store *st, const char *id, struct srv_admin_token *ret)
{
	struct pgp p = {0};
	p_text(&p, id);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st),
	              "SELECT name, role, revoked, secret_sha256 FROM admin_tokens WHERE id = $1",
	              &p, &res);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0)
		return -ENOENT;
	size_t len;
	const uint8_t *sha = col_blob(res, 0, 3, &len);
	if (len != SRV_SHA256_LEN)
		return -EIO;
	struct srv_admin_token t = {0};
	snprintf(t.name, sizeof(t.name), "%s", col_text(res, 0, 0));
	snprintf(t.role, sizeof(t.role), "%s", col_text(res, 0, 1));
	t.revoked = col_i64(res, 0, 2) != 0;
	memcpy(t.secret_sha256, sha, SRV_SHA256_LEN);
	*ret = t;
	return 0;
}

static int st_admin_token_count(struct srv_store *st)
{
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st), "SELECT count(*) FROM admin_tokens", NULL, &res);
	if (r < 0)
		return r;
	return (int)col_i64(res, 0, 0);
}

static int st_group_create(struct srv_store *st, const char *name, const char *by, int64_t now)
{
	struct pgp p = {0};
	p_text(&p, name);
	p_i64(&p, now);
	p_text(&p, by);
	return q_run(impl(st), "INSERT INTO groups(name, created_at, created_by) VALUES($1,$2,$3)",
	             &p, NULL);
}

static int st_group_exists(struct srv_store *st, const char *name)
{
	struct pgp p = {0};
	p_text(&p, name);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st), "SELECT 1 FROM groups WHERE name = $1", &p, &res);
	if (r < 0)
		return r;
	return PQntuples(res) > 0;
}

static int st_group_list(struct srv_store *st, json_t **ret)
{
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st),
	              "SELECT g.name, g.created_at, g.created_by, "
	              "(SELECT count(*) FROM devices d WHERE d.group_name = g.name), "
	              "(SELECT max(version) FROM publications p WHERE p.group_name = g.name) "
	              "FROM groups g ORDER BY g.name",
	              NULL, &res);
	if (r < 0)
		return r;
	json_t *arr = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(arr,
		                      json_pack("{ss sI ss sI sI}", "name", col_text(res, i, 0),
		                                "created_at", col_i64(res, i, 1), "created_by",
		                                col_text(res, i, 2), "devices", col_i64(res, i, 3),
		                                "policy_version", col_i64(res, i, 4)));
	*ret = arr;
	return 0;
}

/* ---- enrollment ------------------------------------------------------------------------- */

static int st_enroll_token_add(struct srv_store *st, const char *id, const char *group,
                               const uint8_t *sha, unsigned max_uses, int64_t expires_at,
                               const char *by, int64_t now)
{
	int r = st_group_exists(st, group);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	struct pgp p = {0};
	p_text(&p, id);
	p_text(&p, group);
	p_bytes(&p, sha, SRV_SHA256_LEN);
	p_i64(&p, max_uses);
	p_i64(&p, expires_at);
	p_i64(&p, now);
	p_text(&p, by);
	r = q_run(impl(st),
	          "INSERT INTO enroll_tokens(id, group_name, secret_sha256, max_uses, expires_at, "
	          "created_at, created_by) VALUES($1,$2,$3,$4,$5,$6,$7)",
	          &p, NULL);
	return r == -EEXIST ? -EIO : r;
}

static int enroll_locked(struct store_pg *s, const struct srv_enroll_in *in,
                         enum srv_enroll_result *ret_result, char ret_group[SRV_ID_MAX])
{
	struct pgp p = {0};
	p_text(&p, in->token_id);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(s,
	              "SELECT group_name, secret_sha256, expires_at FROM enroll_tokens "
	              "WHERE id = $1",
	              &p, &res);
	if (r < 0)
		return r;
	size_t len = 0;
	if (PQntuples(res) == 0 ||
	    !util_secure_equal(col_blob(res, 0, 1, &len), (size_t)PQgetlength(res, 0, 1),
	                       in->secret_sha256, SRV_SHA256_LEN)) {
		*ret_result = SRV_ENROLL_INVALID;
		return 0;
	}
	char group[SRV_ID_MAX];
	snprintf(group, sizeof(group), "%s", col_text(res, 0, 0));
	if (col_i64(res, 0, 2) <= in->now) {
		*ret_result = SRV_ENROLL_EXPIRED;
		return 0;
	}
	/* The use counter: exactly max_uses callers get a row back, across every replica. */
	_cleanup_res_ PGresult *u = NULL;
	r = q_run(s,
	          "UPDATE enroll_tokens SET uses = uses + 1 WHERE id = $1 AND uses < max_uses "
	          "RETURNING uses",
	          &p, &u);
	if (r < 0)
		return r;
	if (PQntuples(u) != 1) {
		*ret_result = SRV_ENROLL_EXHAUSTED;
		return 0;
	}
	struct pgp d = {0};
	p_text(&d, in->device_id);
	p_text(&d, group);
	p_text(&d, in->hostname);
	p_text(&d, in->agent_version);
	p_text(&d, in->token_id);
	p_i64(&d, in->now);
	p_text(&d, in->cert_serial);
	p_i64(&d, in->cert_expires_at);
	r = q_run(s,
	          "INSERT INTO devices(device_id, group_name, hostname, agent_version, "
	          "enroll_token_id, enrolled_at, cert_serial, cert_expires_at, last_seen) "
	          "VALUES($1,$2,$3,$4,$5,$6,$7,$8,$6)",
	          &d, NULL);
	if (r < 0)
		return r == -EEXIST ? -EIO : r;
	memcpy(ret_group, group, SRV_ID_MAX);
	*ret_result = SRV_ENROLL_OK;
	return 1; /* commit */
}

static int st_enroll(struct srv_store *st, const struct srv_enroll_in *in,
                     enum srv_enroll_result *ret_result, char ret_group[SRV_ID_MAX])
{
	int r = st_begin(st);
	if (r < 0)
		return r;
	r = enroll_locked(impl(st), in, ret_result, ret_group);
	if (r <= 0) {
		st_rollback(st);
		return r;
	}
	r = st_commit(st);
	return r < 0 ? r : 0;
}

/* ---- devices ------------------------------------------------------------------------------ */

static int st_device_get(struct srv_store *st, const char *device_id, struct srv_device *ret)
{
	struct pgp p = {0};
	p_text(&p, device_id);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st),
	              "SELECT id, group_name, revoked_at IS NOT NULL, acked_seq FROM devices "
	              "WHERE device_id = $1",
	              &p, &res);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0)
		return -ENOENT;
	struct srv_device d = {0};
	d.rowid = col_i64(res, 0, 0);
	snprintf(d.device_id, sizeof(d.device_id), "%s", device_id);
	snprintf(d.group, sizeof(d.group), "%s", col_text(res, 0, 1));
	d.revoked = col_i64(res, 0, 2) != 0;
	d.acked_seq = (uint64_t)col_i64(res, 0, 3);
	*ret = d;
	return 0;
}

static int st_device_set_cert(struct srv_store *st, const char *device_id, const char *serial,
                              int64_t expires_at)
{
	struct pgp p = {0};
	p_text(&p, serial);
	p_i64(&p, expires_at);
	p_text(&p, device_id);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st),
	              "UPDATE devices SET cert_serial = $1, cert_expires_at = $2 "
	              "WHERE device_id = $3",
	              &p, &res);
	if (r < 0)
		return r;
	return strcmp(PQcmdTuples(res), "1") == 0 ? 0 : -ENOENT;
}

static int st_device_revoke(struct srv_store *st, const char *device_id, int64_t now)
{
	struct srv_device d;
	int r = st_device_get(st, device_id, &d);
	if (r < 0)
		return r;
	if (d.revoked)
		return -EALREADY;
	struct pgp p = {0};
	p_i64(&p, now);
	p_text(&p, device_id);
	return q_run(impl(st), "UPDATE devices SET revoked_at = $1 WHERE device_id = $2", &p, NULL);
}

#define DEVICE_COLUMNS                                                                         \
	"device_id, group_name, hostname, agent_version, enrolled_at, cert_expires_at, "       \
	"revoked_at, acked_seq, last_seen, heartbeat_at, policy_version, trust_root_version, " \
	"freshness, kernel_release, features_requested, features_enforced, cert_serial, "      \
	"features_missing "

/* The same JSON as the SQLite backend's device rows. */
static json_t *device_row_json(const PGresult *res, int i)
{
	static const char *const freshness[] = {"unknown", "fresh", "stale", "no-policy"};
	int64_t f = col_i64(res, i, 12);
	bool revoked = !PQgetisnull(res, i, 6);
	json_t *o = json_pack(
	        "{ss ss ss ss sI sI sb sI sI sI sI sI ss ss ss}", "device_id", col_text(res, i, 0),
	        "group", col_text(res, i, 1), "hostname", col_text(res, i, 2), "agent_version",
	        col_text(res, i, 3), "enrolled_at", col_i64(res, i, 4), "cert_expires_at",
	        col_i64(res, i, 5), "revoked", revoked, "acked_seq", col_i64(res, i, 7),
	        "last_seen", col_i64(res, i, 8), "heartbeat_at", col_i64(res, i, 9),
	        "policy_version", col_i64(res, i, 10), "trust_root_version", col_i64(res, i, 11),
	        "freshness", f >= 0 && f < 4 ? freshness[f] : "unknown", "kernel_release",
	        col_text(res, i, 13), "cert_serial", col_text(res, i, 16));
	if (!o)
		return NULL;
	if (revoked)
		json_object_set_new(o, "revoked_at", json_integer(col_i64(res, i, 6)));
	json_object_set_new(o, "features_missing", json_string(col_text(res, i, 17)));
	for (int c = 14; c <= 15; c++) {
		json_t *feat = json_loads(col_text(res, i, c), 0, NULL);
		if (feat)
			json_object_set_new(o, c == 14 ? "features_requested" : "features_enforced",
			                    feat);
	}
	return o;
}

static int st_device_list(struct srv_store *st, const char *group, json_t **ret)
{
	struct pgp p = {0};
	if (group)
		p_text(&p, group);
	else
		p_null(&p);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st),
	              "SELECT " DEVICE_COLUMNS
	              "FROM devices WHERE $1::text IS NULL OR group_name = $1 ORDER BY id",
	              &p, &res);
	if (r < 0)
		return r;
	json_t *arr = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(arr, device_row_json(res, i));
	*ret = arr;
	return 0;
}

static int st_device_show(struct srv_store *st, const char *device_id, json_t **ret)
{
	struct pgp p = {0};
	p_text(&p, device_id);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st), "SELECT " DEVICE_COLUMNS "FROM devices WHERE device_id = $1", &p,
	              &res);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0)
		return -ENOENT;
	*ret = device_row_json(res, 0);
	return *ret ? 0 : -ENOMEM;
}

/* ---- reports ------------------------------------------------------------------------------ */

static int apply_heartbeat(struct store_pg *s, int64_t rowid, const Corral__Event *ev)
{
	/* detail is a oneof (a union): trust the member only when detail_case names it. */
	if (ev->detail_case != CORRAL__EVENT__DETAIL_HEARTBEAT || !ev->heartbeat)
		return 0;
	const Corral__Heartbeat *hb = ev->heartbeat;
	_cleanup_free_ char *req = srv_features_json(hb->requested);
	_cleanup_free_ char *enf = srv_features_json(hb->enforced);
	char missing[512];
	srv_features_missing(hb->requested, hb->enforced, missing, sizeof(missing));
	struct pgp p = {0};
	p_i64(&p, ev->time_ms / 1000);
	p_i64(&p, (int64_t)hb->policy_version);
	p_i64(&p, (int64_t)hb->trust_root_version);
	p_i64(&p, hb->freshness);
	p_text(&p, hb->agent_version);
	p_text(&p, hb->kernel_release);
	p_text(&p, req);
	p_text(&p, enf);
	p_text(&p, missing);
	p_i64(&p, rowid);
	return q_run(s,
	             "UPDATE devices SET heartbeat_at = GREATEST(heartbeat_at, $1), "
	             "policy_version = $2, trust_root_version = $3, freshness = $4, "
	             "agent_version = $5, kernel_release = $6, features_requested = $7, "
	             "features_enforced = $8, features_missing = $9 WHERE id = $10",
	             &p, NULL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * Inserts events [from, to) of the batch in one statement: their (device, seq) keys into
 * event_keys, and the events whose key was new into events. Appends the seqs stored now to
 * inserted[*n_inserted].
 */
static int insert_chunk(struct store_pg *s, const struct srv_device *dev,
                        const Corral__ReportBatch *batch, size_t from, size_t to, int64_t now_ms,
                        uint64_t *inserted, size_t *n_inserted)
{
	size_t rows = to - from, np = rows * 7;
	_cleanup_free_ const char **v = calloc(np, sizeof(*v));
	_cleanup_free_ int *len = calloc(np, sizeof(*len));
	_cleanup_free_ int *fmt = calloc(np, sizeof(*fmt));
	_cleanup_free_ char *nums = malloc(np * 24);
	_cleanup_free_ uint8_t **packed = calloc(rows, sizeof(*packed));
	/* "($1,$2,...,$7)," is at most 7 * 7 + 3 bytes per row; the first row has casts and
	 * the fixed text around the rows is under 1 KiB. */
	size_t cap = 2048 + rows * 56;
	_cleanup_free_ char *sql = malloc(cap);
	int r = 0;
	if (!v || !len || !fmt || !nums || !packed || !sql)
		return -ENOMEM;
	size_t off = (size_t)snprintf(sql, cap,
	                              "WITH v(device, seq, time_ms, kind, policy_version, "
	                              "received_ms, event) AS (VALUES ");
	for (size_t i = 0; i < rows; i++) {
		const Corral__Event *ev = batch->events[from + i];
		size_t need = corral__event__get_packed_size(ev);
		packed[i] = malloc(need ? need : 1);
		if (!packed[i]) {
			r = -ENOMEM;
			goto out;
		}
		corral__event__pack(ev, packed[i]);
		uint64_t pv = ev->policy_version;
		if (ev->kind == CORRAL__EVENT_KIND__EVENT_KIND_POLICY_APPLIED &&
		    ev->detail_case == CORRAL__EVENT__DETAIL_POLICY_APPLIED && ev->policy_applied &&
		    ev->policy_applied->version)
			pv = ev->policy_applied->version;
		int64_t vals[6] = {dev->rowid, (int64_t)ev->seq, ev->time_ms,
		                   ev->kind,   (int64_t)pv,      now_ms};
		size_t base = i * 7;
		for (size_t k = 0; k < 6; k++) {
			char *num = nums + (base + k) * 24;
			snprintf(num, 24, "%lld", (long long)vals[k]);
			v[base + k] = num;
		}
		v[base + 6] = (const char *)packed[i];
		len[base + 6] = (int)need;
		fmt[base + 6] = 1;
		if (i == 0)
			off += (size_t)snprintf(sql + off, cap - off,
			                        "($1::bigint,$2::bigint,$3::bigint,$4::integer,"
			                        "$5::bigint,$6::bigint,$7::bytea)");
		else
			off += (size_t)snprintf(sql + off, cap - off,
			                        ",($%zu,$%zu,$%zu,$%zu,$%zu,$%zu,$%zu)", base + 1,
			                        base + 2, base + 3, base + 4, base + 5, base + 6,
			                        base + 7);
	}
	/* The events stored now that the console folds in (violations, rejections) are queued
	 * for its read model in the same statement (see 004_console_pg.sql). */
	snprintf(
	        sql + off, cap - off,
	        "), k AS (INSERT INTO event_keys(device, seq, time_ms) "
	        "SELECT device, seq, time_ms FROM v ON CONFLICT DO NOTHING RETURNING device, seq), "
	        "e AS (INSERT INTO events(device, seq, time_ms, kind, policy_version, received_ms, "
	        "event) "
	        "SELECT DISTINCT ON (v.seq) v.* FROM v JOIN k USING (device, seq) "
	        "ORDER BY v.seq ON CONFLICT DO NOTHING RETURNING device, seq, time_ms, kind), "
	        "q AS (INSERT INTO console_pending(device, seq, time_ms) "
	        "SELECT device, seq, time_ms FROM e WHERE kind IN (%d, %d) ON CONFLICT DO NOTHING) "
	        "SELECT seq FROM e",
	        CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION,
	        CORRAL__EVENT_KIND__EVENT_KIND_POLICY_REJECTED);
	PGresult *res = NULL;
	r = q_run_n(s, sql, (int)np, v, len, fmt, &res);
	if (r >= 0) {
		for (int i = 0; i < PQntuples(res); i++)
			inserted[(*n_inserted)++] = (uint64_t)col_i64(res, i, 0);
		PQclear(res);
	}
out:
	for (size_t i = 0; i < rows; i++)
		free(packed[i]);
	return r;
}

static int report_locked(struct store_pg *s, const struct srv_device *dev,
                         const Corral__ReportBatch *batch, int64_t now_ms, uint64_t *ret_acked)
{
	_cleanup_free_ uint64_t *inserted =
	        calloc(batch->n_events ? batch->n_events : 1, sizeof(*inserted));
	if (!inserted)
		return -ENOMEM;
	size_t n_inserted = 0;
	int r;
	for (size_t from = 0; from < batch->n_events; from += REPORT_CHUNK) {
		size_t to = from + REPORT_CHUNK < batch->n_events ? from + REPORT_CHUNK
		                                                  : batch->n_events;
		r = insert_chunk(s, dev, batch, from, to, now_ms, inserted, &n_inserted);
		if (r < 0)
			return r;
	}
	/* A duplicate (already stored) heartbeat must not roll compliance state back: only
	 * heartbeats this call inserted are applied, in batch order. */
	if (n_inserted)
		qsort(inserted, n_inserted, sizeof(*inserted), cmp_u64);
	for (size_t i = 0; i < batch->n_events; i++) {
		const Corral__Event *ev = batch->events[i];
		if (ev->kind != CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT || !n_inserted ||
		    !bsearch(&ev->seq, inserted, n_inserted, sizeof(*inserted), cmp_u64))
			continue;
		r = apply_heartbeat(s, dev->rowid, ev);
		if (r < 0)
			return r;
	}
	/* Advance the contiguous watermark from where it stood. */
	uint64_t acked = dev->acked_seq;
	struct pgp p = {0};
	p_i64(&p, dev->rowid);
	p_i64(&p, (int64_t)acked);
	p_i64(&p, WATERMARK_MAX);
	_cleanup_res_ PGresult *res = NULL;
	r = q_run(s,
	          "SELECT seq FROM event_keys WHERE device = $1 AND seq > $2 ORDER BY seq LIMIT $3",
	          &p, &res);
	if (r < 0)
		return r;
	for (int i = 0; i < PQntuples(res); i++) {
		uint64_t seq = (uint64_t)col_i64(res, i, 0);
		if (seq != acked + 1)
			break;
		acked = seq;
	}
	/* GREATEST: another replica may have advanced the same device meanwhile. */
	struct pgp u = {0};
	p_i64(&u, (int64_t)acked);
	p_i64(&u, now_ms / 1000);
	p_i64(&u, dev->rowid);
	r = q_run(s,
	          "UPDATE devices SET acked_seq = GREATEST(acked_seq, $1), last_seen = $2 "
	          "WHERE id = $3",
	          &u, NULL);
	if (r < 0)
		return r;
	*ret_acked = acked;
	return 0;
}

static int st_report_store(struct srv_store *st, const struct srv_device *dev,
                           const Corral__ReportBatch *batch, int64_t now_ms, uint64_t *ret_acked)
{
	int r = st_begin(st);
	if (r < 0)
		return r;
	uint64_t acked = 0;
	r = report_locked(impl(st), dev, batch, now_ms, &acked);
	if (r >= 0)
		r = st_commit(st);
	if (r < 0) {
		st_rollback(st);
		return r;
	}
	*ret_acked = acked;
	return 0;
}

/* ---- publications and trust roots --------------------------------------------------------- */

/* Queues a notification for the other replicas; delivered when the transaction commits. */
static int notify_change(struct store_pg *s, const char *payload)
{
	struct pgp p = {0};
	p_text(&p, payload);
	return q_run(s, "SELECT pg_notify('" CHANGE_CHANNEL "', $1)", &p, NULL);
}

static int st_publish(struct srv_store *st, const char *group, uint64_t version, const uint8_t *env,
                      size_t len, int64_t issued_at, int64_t expires_at, const char *by,
                      int64_t now_ms)
{
	struct store_pg *s = impl(st);
	bool own;
	int r = tx_begin_own(st, &own);
	if (r < 0)
		return r;
	struct pgp p = {0};
	p_i64(&p, (int64_t)version);
	_cleanup_res_ PGresult *res = NULL;
	r = q_run(s, "SELECT envelope FROM bundles WHERE version = $1", &p, &res);
	if (r < 0)
		return tx_end_own(st, own, r);
	if (PQntuples(res) > 0) {
		size_t blen;
		const uint8_t *b = col_blob(res, 0, 0, &blen);
		if (!util_secure_equal(b, blen, env, len))
			return tx_end_own(st, own, -EEXIST);
	} else {
		uint8_t sha[SRV_SHA256_LEN];
		char hex[2 * SRV_SHA256_LEN + 1];
		SHA256(env, len, sha);
		util_hex(sha, sizeof(sha), hex);
		struct pgp b = {0};
		p_i64(&b, (int64_t)version);
		p_bytes(&b, env, len);
		p_text(&b, hex);
		p_i64(&b, issued_at);
		p_i64(&b, expires_at);
		p_i64(&b, now_ms / 1000);
		r = q_run(s,
		          "INSERT INTO bundles(version, envelope, sha256, issued_at, expires_at, "
		          "first_published_at) VALUES($1,$2,$3,$4,$5,$6)",
		          &b, NULL);
		if (r < 0)
			return tx_end_own(st, own, r == -EEXIST ? -EIO : r);
	}
	struct pgp q = {0};
	p_text(&q, group);
	p_i64(&q, (int64_t)version);
	p_i64(&q, now_ms);
	p_text(&q, by);
	r = q_run(s,
	          "INSERT INTO publications(group_name, version, published_ms, published_by) "
	          "VALUES($1,$2,$3,$4)",
	          &q, NULL);
	if (r == -EEXIST)
		r = -EALREADY;
	if (r >= 0) {
		_cleanup_free_ char *payload = NULL;
		if (asprintf(&payload, "g:%s", group) < 0)
			r = -ENOMEM;
		else
			r = notify_change(s, payload);
	}
	return tx_end_own(st, own, r);
}

static int st_group_head_version(struct srv_store *st, const char *group, uint64_t *ret)
{
	struct pgp p = {0};
	p_text(&p, group);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st),
	              "SELECT coalesce(max(version), 0) FROM publications WHERE group_name = $1",
	              &p, &res);
	if (r < 0)
		return r;
	*ret = (uint64_t)col_i64(res, 0, 0);
	return 0;
}

static int st_group_heads(struct srv_store *st, srv_store_blob_cb cb, void *userdata)
{
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st),
	              "SELECT p.group_name, b.version, b.envelope FROM "
	              "(SELECT group_name, max(version) AS version FROM publications "
	              "GROUP BY group_name) p JOIN bundles b ON b.version = p.version",
	              NULL, &res);
	if (r < 0)
		return r;
	for (int i = 0; i < PQntuples(res); i++) {
		size_t len;
		const uint8_t *b = col_blob(res, i, 2, &len);
		int k = cb((uint64_t)col_i64(res, i, 1), col_text(res, i, 0), b, len, userdata);
		if (k < 0)
			return k;
	}
	return 0;
}

static int st_policy_history(struct srv_store *st, const char *group, json_t **ret)
{
	struct pgp p = {0};
	p_text(&p, group);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st),
	              "SELECT p.version, p.published_ms, p.published_by, b.sha256, b.issued_at, "
	              "b.expires_at FROM publications p JOIN bundles b ON b.version = p.version "
	              "WHERE p.group_name = $1 ORDER BY p.version",
	              &p, &res);
	if (r < 0)
		return r;
	json_t *arr = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(
		        arr,
		        json_pack("{sI sI ss ss sI sI}", "version", col_i64(res, i, 0),
		                  "published_ms", col_i64(res, i, 1), "published_by",
		                  col_text(res, i, 2), "sha256", col_text(res, i, 3), "issued_at",
		                  col_i64(res, i, 4), "expires_at", col_i64(res, i, 5)));
	*ret = arr;
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t percentile(const int64_t *v, size_t n, unsigned pct)
{
	if (n == 0)
		return 0;
	size_t idx = (n * pct + 99) / 100; /* nearest-rank, as the SQLite backend */
	if (idx == 0)
		idx = 1;
	return v[idx - 1];
}

static int st_rollout_status(struct srv_store *st, const char *group, json_t **ret)
{
	struct store_pg *s = impl(st);
	uint64_t head = 0;
	int r = st_group_head_version(st, group, &head);
	if (r < 0)
		return r;
	struct pgp p = {0};
	p_text(&p, group);
	_cleanup_res_ PGresult *res = NULL;
	r = q_run(s,
	          "SELECT policy_version, count(*) FROM devices WHERE group_name = $1 AND "
	          "revoked_at IS NULL GROUP BY policy_version ORDER BY policy_version",
	          &p, &res);
	if (r < 0)
		return r;
	json_t *by = json_array();
	int64_t total = 0, on_head = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		int64_t v = col_i64(res, i, 0), n = col_i64(res, i, 1);
		total += n;
		if ((uint64_t)v == head)
			on_head = n;
		json_array_append_new(by, json_pack("{sI sI}", "version", v, "devices", n));
	}
	/* publish -> applied latency of the head version: first POLICY_APPLIED event per device. */
	struct pgp l = {0};
	p_text(&l, group);
	p_i64(&l, CORRAL__EVENT_KIND__EVENT_KIND_POLICY_APPLIED);
	p_i64(&l, (int64_t)head);
	_cleanup_res_ PGresult *lr = NULL;
	r = q_run(s,
	          "SELECT min(e.time_ms) - min(p.published_ms) FROM events e "
	          "JOIN devices d ON d.id = e.device "
	          "JOIN publications p ON p.group_name = d.group_name AND p.version = "
	          "e.policy_version "
	          "WHERE d.group_name = $1 AND e.kind = $2 AND e.policy_version = $3 "
	          "GROUP BY e.device",
	          &l, &lr);
	if (r < 0) {
		json_decref(by);
		return r;
	}
	size_t n = (size_t)PQntuples(lr);
	_cleanup_free_ int64_t *lat = calloc(n ? n : 1, sizeof(*lat));
	if (!lat) {
		json_decref(by);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		int64_t v = col_i64(lr, (int)i, 0);
		lat[i] = v < 0 ? 0 : v;
	}
	if (n)
		qsort(lat, n, sizeof(*lat), cmp_i64);
	*ret = json_pack("{ss sI sI sI so s{sI sI sI sI}}", "group", group, "head_version",
	                 (json_int_t)head, "devices", total, "devices_on_head", on_head,
	                 "by_version", by, "apply_latency_ms", "n", (json_int_t)n, "p50",
	                 percentile(lat, n, 50), "p95", percentile(lat, n, 95), "p99",
	                 percentile(lat, n, 99));
	return *ret ? 0 : -ENOMEM;
}

static int st_events_query(struct srv_store *st, const struct srv_event_filter *f, json_t **ret)
{
	struct pgp p = {0};
	if (f->device_id)
		p_text(&p, f->device_id);
	else
		p_null(&p);
	p_i64(&p, f->kind);
	p_i64(&p, f->since_ms);
	p_i64(&p, f->limit);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st),
	              "SELECT d.device_id, e.received_ms, e.event FROM events e "
	              "JOIN devices d ON d.id = e.device "
	              "WHERE ($1::text IS NULL OR d.device_id = $1) AND ($2 < 0 OR e.kind = $2) "
	              "AND e.time_ms >= $3 ORDER BY e.time_ms DESC, e.device, e.seq DESC "
	              "LIMIT $4",
	              &p, &res);
	if (r < 0)
		return r;
	json_t *arr = json_array();
	for (int i = 0; i < PQntuples(res); i++) {
		size_t len;
		const uint8_t *b = col_blob(res, i, 2, &len);
		json_t *ev = srv_event_json(b, len);
		if (!ev)
			continue;
		json_object_set_new(ev, "device_id", json_string(col_text(res, i, 0)));
		json_object_set_new(ev, "received_ms", json_integer(col_i64(res, i, 1)));
		json_array_append_new(arr, ev);
	}
	*ret = arr;
	return 0;
}

static int st_trust_root_add(struct srv_store *st, uint64_t version, const uint8_t *env, size_t len,
                             int64_t expires_at, const char *by, int64_t now)
{
	struct store_pg *s = impl(st);
	bool own;
	int r = tx_begin_own(st, &own);
	if (r < 0)
		return r;
	struct pgp p = {0};
	p_i64(&p, (int64_t)version);
	p_bytes(&p, env, len);
	p_i64(&p, expires_at);
	p_i64(&p, now);
	p_text(&p, by);
	r = q_run(s,
	          "INSERT INTO trust_roots(version, envelope, expires_at, published_at, "
	          "published_by) VALUES($1,$2,$3,$4,$5)",
	          &p, NULL);
	if (r >= 0)
		r = notify_change(s, "t");
	return tx_end_own(st, own, r);
}

static int st_trust_roots_load(struct srv_store *st, srv_store_blob_cb cb, void *userdata)
{
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st), "SELECT version, envelope FROM trust_roots ORDER BY version", NULL,
	              &res);
	if (r < 0)
		return r;
	for (int i = 0; i < PQntuples(res); i++) {
		size_t len;
		const uint8_t *b = col_blob(res, i, 1, &len);
		int k = cb((uint64_t)col_i64(res, i, 0), NULL, b, len, userdata);
		if (k < 0)
			return k;
	}
	return 0;
}

/* ---- retention ------------------------------------------------------------------------------ */

/* Creates the daily partitions from yesterday to PARTITIONS_AHEAD days ahead, once a day. */
static int partitions_upkeep(struct store_pg *s)
{
	int64_t today = util_now_ms() / DAY_MS;
	if (s->partitions_day == today)
		return 0;
	for (int64_t d = today - 1; d <= today + PARTITIONS_AHEAD; d++) {
		struct pgp p = {0};
		p_i64(&p, d);
		int r = q_run(s, "SELECT corral_event_partition($1)", &p, NULL);
		if (r < 0)
			return r;
	}
	s->partitions_day = today;
	return 0;
}

static int st_events_prune(struct srv_store *st, int64_t older_than_ms, unsigned max_rows)
{
	struct store_pg *s = impl(st);
	if (s->in_tx)
		return -EBUSY;
	int r = partitions_upkeep(s);
	if (r < 0 || older_than_ms <= 0)
		return r;
	/* Whole days first (cheap: DROP TABLE), then the rest row by row in a bounded batch. */
	struct pgp p = {0};
	p_i64(&p, older_than_ms);
	r = q_run(s, "SELECT corral_event_drop_before($1)", &p, NULL);
	if (r < 0)
		return r;
	p_i64(&p, max_rows);
	_cleanup_res_ PGresult *res = NULL, *keys = NULL;
	r = q_run(s,
	          "DELETE FROM events WHERE (device, seq, time_ms) IN (SELECT device, seq, "
	          "time_ms FROM events WHERE time_ms < $1 LIMIT $2)",
	          &p, &res);
	if (r < 0)
		return r;
	/* Keys go with their events: a resend of a pruned event is then stored again, as the
	 * SQLite backend does. */
	r = q_run(s,
	          "DELETE FROM event_keys WHERE (device, seq) IN (SELECT device, seq FROM "
	          "event_keys WHERE time_ms < $1 LIMIT $2)",
	          &p, &keys);
	if (r < 0)
		return r;
	return strtoull(PQcmdTuples(res), NULL, 10) >= max_rows ||
	                       strtoull(PQcmdTuples(keys), NULL, 10) >= max_rows
	               ? 1
	               : 0;
}

/* ---- cross-replica notifications --------------------------------------------------------------
 */

static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static PGconn *connect_quiet(const char *url)
{
	PGconn *c = PQconnectdb(url);
	if (c)
		PQsetNoticeProcessor(c, ignore_notice, NULL);
	return c;
}

/* Waits up to ms for the stop pipe; true when asked to stop. */
static bool wait_stop(struct store_pg *s, int ms)
{
	struct pollfd p = {.fd = s->stop_pipe[0], .events = POLLIN};
	return poll(&p, 1, ms) > 0;
}

static void *watch_main(void *arg)
{
	struct store_pg *s = arg;
	PGconn *c = NULL;
	bool connected_before = false;
	for (;;) {
		if (!c || PQstatus(c) != CONNECTION_OK) {
			PQfinish(c);
			c = connect_quiet(s->url);
			PGresult *res = c && PQstatus(c) == CONNECTION_OK
			                        ? PQexec(c, "LISTEN " CHANGE_CHANNEL)
			                        : NULL;
			bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
			PQclear(res);
			if (!ok) {
				PQfinish(c);
				c = NULL;
				if (wait_stop(s, 500))
					break;
				continue;
			}
			/* Whatever was published while we were not listening is reloaded. */
			if (connected_before)
				s->cb("", s->cb_userdata);
			connected_before = true;
		}
		struct pollfd fds[2] = {
		        {.fd = PQsocket(c), .events = POLLIN},
		        {.fd = s->stop_pipe[0], .events = POLLIN},
		};
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[1].revents)
			break;
		if (!PQconsumeInput(c)) {
			PQfinish(c);
			c = NULL;
			continue;
		}
		PGnotify *n;
		while ((n = PQnotifies(c))) {
			const char *what = n->extra;
			if (util_startswith(what, "g:"))
				s->cb(what + 2, s->cb_userdata);
			else if (strcmp(what, "t") == 0)
				s->cb(NULL, s->cb_userdata);
			else
				s->cb("", s->cb_userdata);
			PQfreemem(n);
		}
	}
	PQfinish(c);
	return NULL;
}

static int st_watch(struct srv_store *st, srv_store_change_cb cb, void *userdata)
{
	struct store_pg *s = impl(st);
	if (s->watching)
		return -EALREADY;
	if (pipe2(s->stop_pipe, O_CLOEXEC) < 0)
		return -errno;
	s->cb = cb;
	s->cb_userdata = userdata;
	int r = pthread_create(&s->watch_thread, NULL, watch_main, s);
	if (r != 0) {
		close(s->stop_pipe[0]);
		close(s->stop_pipe[1]);
		return -r;
	}
	s->watching = true;
	return 0;
}

/* ---- open, migrate, close ------------------------------------------------------------------ */

static void st_close(struct srv_store *st)
{
	if (!st)
		return;
	struct store_pg *s = impl(st);
	if (s->watching) {
		(void)!write(s->stop_pipe[1], "x", 1);
		pthread_join(s->watch_thread, NULL);
		close(s->stop_pipe[0]);
		close(s->stop_pipe[1]);
	}
	PQfinish(s->conn);
	free(s->url);
	free(s);
}

/*
 * Applies every migration above the recorded version, all in one transaction under an
 * advisory lock (replicas starting together: the second waits, then finds nothing to do).
 */
static int migrate(struct store_pg *s, char *err, size_t errlen)
{
	unsigned known = 0;
	while (server_pg_migrations[known].sql)
		known++;
	int r = st_begin(&s->base);
	if (r < 0)
		goto fail;
	struct pgp lock = {0};
	p_i64(&lock, MIGRATION_LOCK);
	_cleanup_res_ PGresult *res = NULL;
	if ((r = q_run(s, "SELECT pg_advisory_xact_lock($1)", &lock, NULL)) < 0 ||
	    (r = q_run(s,
	               "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
	               "name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
	               NULL, NULL)) < 0 ||
	    (r = q_run(s, "SELECT coalesce(max(version), 0) FROM schema_version", NULL, &res)) < 0)
		goto fail;
	int64_t current = col_i64(res, 0, 0);
	if (current > (int64_t)known) {
		st_rollback(&s->base);
		snprintf(err, errlen,
		         "database schema version %lld is newer than this server knows (%u)",
		         (long long)current, known);
		return -EPROTO;
	}
	for (unsigned i = 0; i < known; i++) {
		const struct db_migration *m = &server_pg_migrations[i];
		if ((int64_t)m->version <= current)
			continue;
		/* PQexec: a migration file holds several statements (no parameters). */
		PGresult *mr = PQexec(s->conn, m->sql);
		if (PQresultStatus(mr) != PGRES_COMMAND_OK &&
		    PQresultStatus(mr) != PGRES_TUPLES_OK) {
			snprintf(err, errlen, "migration %s: %s", m->name,
			         PQresultErrorMessage(mr));
			PQclear(mr);
			st_rollback(&s->base);
			return -EIO;
		}
		PQclear(mr);
		struct pgp p = {0};
		p_i64(&p, m->version);
		p_text(&p, m->name);
		p_i64(&p, util_now_sec());
		if ((r = q_run(s,
		               "INSERT INTO schema_version(version, name, applied_at) "
		               "VALUES($1,$2,$3)",
		               &p, NULL)) < 0)
			goto fail;
	}
	if ((r = st_commit(&s->base)) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "migrating the database: %s", PQerrorMessage(s->conn));
	st_rollback(&s->base);
	return r < 0 ? r : -EIO;
}

/* ---- console (store_console.h) -------------------------------------------------------------
 *
 * The same read model as the SQLite backend (002_console.sql, filled since 004_console_pg.sql):
 * the report path queues new violations and rejections in console_pending, sync() decodes the
 * queue into console_violations, the hourly rollup console_vhour and per-device counters in
 * console_devices. The JSON is built by store_console_common.c, as for SQLite. Orderings that
 * depend on text compare in the "C" collation, SQLite's byte order.
 */

#define SYNC_CHUNK 1000 /* rows per statement: 8 parameters each, far under 65535 */
/* Per call: the store lock is held meanwhile, so a backlog is folded in over several
 * requests rather than stalling device reports. */
#define SYNC_MAX_ROWS 20000
#define SYNC_COLS     8
#define DEGRADED_LIST 20
#define HOUR_MS       3600000LL

/* Violation rows decoded from one chunk, as libpq text parameters. */
struct fold_rows {
	const char *v[SYNC_CHUNK * SYNC_COLS];
	char num[SYNC_CHUNK][5][24];
	char *strs[SYNC_CHUNK * 3]; /* profile, user, session copies */
	size_t n;
};

static void fold_rows_clear(struct fold_rows *f)
{
	for (size_t i = 0; i < f->n * 3; i++)
		free(f->strs[i]);
	f->n = 0;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when the bytes there are not one. */
static size_t utf8_seq_len(const unsigned char *s)
{
	size_t n = s[0] < 0x80             ? 1
	           : (s[0] & 0xe0) == 0xc0 ? 2
	           : (s[0] & 0xf0) == 0xe0 ? 3
	           : (s[0] & 0xf8) == 0xf0 ? 4
	                                   : 0;
	if (n == 2 && s[0] < 0xc2)
		return 0; /* overlong */
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if (n == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0)))
		return 0; /* overlong, surrogate */
	if (n == 4 &&
	    ((s[0] == 0xf0 && s[1] < 0x90) || s[0] > 0xf4 || (s[0] == 0xf4 && s[1] >= 0x90)))
		return 0; /* overlong, beyond U+10FFFF */
	return n;
}

/*
 * A copy of s that PostgreSQL accepts as text: bytes that are not valid UTF-8 become '?'.
 * Agents send these fields; one malformed name must not wedge the read model's queue (the
 * whole chunk's INSERT would fail on every sync). NULL on allocation failure.
 */
static char *utf8_copy(const char *s)
{
	char *out = strdup(s ? s : "");
	if (!out)
		return NULL;
	unsigned char *p = (unsigned char *)out;
	while (*p) {
		size_t n = utf8_seq_len(p);
		if (n == 0) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
	return out;
}

static int fold_add(struct fold_rows *f, int64_t device, int64_t seq, const Corral__Event *ev)
{
	size_t i = f->n, b = i * SYNC_COLS;
	int64_t nums[5] = {device, seq, ev->time_ms, ev->violation ? (int)ev->violation->kind : 0,
	                   (int64_t)ev->policy_version};
	for (int k = 0; k < 5; k++)
		snprintf(f->num[i][k], sizeof(f->num[i][k]), "%lld", (long long)nums[k]);
	const char *texts[3] = {ev->profile, ev->user, ev->session_id};
	for (int k = 0; k < 3; k++) {
		f->strs[i * 3 + k] = utf8_copy(texts[k]);
		if (!f->strs[i * 3 + k]) {
			for (int j = 0; j < k; j++)
				free(f->strs[i * 3 + j]);
			return -ENOMEM;
		}
	}
	/* Column order of console_violations. */
	f->v[b + 0] = f->num[i][0];
	f->v[b + 1] = f->num[i][1];
	f->v[b + 2] = f->num[i][2];
	f->v[b + 3] = f->num[i][3];
	f->v[b + 4] = f->strs[i * 3 + 0];
	f->v[b + 5] = f->strs[i * 3 + 1];
	f->v[b + 6] = f->strs[i * 3 + 2];
	f->v[b + 7] = f->num[i][4];
	f->n++;
	return 0;
}

/*
 * Inserts the decoded violations; the rollups only move for rows that were new (a row folded
 * before is not counted twice). Returns the number of new rows.
 */
static int fold_flush(struct store_pg *s, struct fold_rows *f)
{
	if (!f->n)
		return 0;
	size_t cap = 2048 + f->n * 48;
	_cleanup_free_ char *sql = malloc(cap);
	if (!sql)
		return -ENOMEM;
	size_t off = (size_t)snprintf(sql, cap,
	                              "WITH v(device, seq, time_ms, vkind, profile, user_name, "
	                              "session, policy_version) AS (VALUES ");
	for (size_t i = 0; i < f->n; i++) {
		size_t b = i * SYNC_COLS;
		if (i == 0)
			off += (size_t)snprintf(sql + off, cap - off,
			                        "($1::bigint,$2::bigint,$3::bigint,$4::integer,"
			                        "$5::text,$6::text,$7::text,$8::bigint)");
		else
			off += (size_t)snprintf(sql + off, cap - off,
			                        ",($%zu,$%zu,$%zu,$%zu,$%zu,$%zu,$%zu,$%zu)", b + 1,
			                        b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8);
	}
	/* Upserts in key order, so replicas folding at once lock rollup rows in one order. */
	snprintf(sql + off, cap - off,
	         "), n AS (INSERT INTO console_violations SELECT * FROM v ON CONFLICT DO NOTHING "
	         "RETURNING *), "
	         "h AS (INSERT INTO console_vhour(hour_ms, vkind, profile, user_name, n) "
	         "SELECT time_ms - ((time_ms %% %lld) + %lld) %% %lld, vkind, profile, user_name, "
	         "count(*) FROM n GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 "
	         "ON CONFLICT (hour_ms, vkind, profile, user_name) DO UPDATE "
	         "SET n = console_vhour.n + EXCLUDED.n), "
	         "d AS (INSERT INTO console_devices(device, violations, last_violation_ms) "
	         "SELECT device, count(*), max(time_ms) FROM n GROUP BY device ORDER BY device "
	         "ON CONFLICT (device) DO UPDATE SET "
	         "violations = console_devices.violations + EXCLUDED.violations, "
	         "last_violation_ms = GREATEST(console_devices.last_violation_ms, "
	         "EXCLUDED.last_violation_ms)) "
	         "SELECT count(*) FROM n",
	         HOUR_MS, HOUR_MS, HOUR_MS);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run_n(s, sql, (int)(f->n * SYNC_COLS), f->v, NULL, NULL, &res);
	fold_rows_clear(f);
	return r < 0 ? r : (int)col_i64(res, 0, 0);
}

static int fold_rejection(struct store_pg *s, int64_t device, const Corral__Event *ev)
{
	const Corral__PolicyRejected *pr = ev->policy_rejected;
	if (ev->detail_case != CORRAL__EVENT__DETAIL_POLICY_REJECTED || !pr)
		return 0;
	_cleanup_free_ char *reason = utf8_copy(pr->reason);
	if (!reason)
		return -ENOMEM;
	struct pgp p = {0};
	p_i64(&p, device);
	p_i64(&p, (int64_t)pr->version);
	p_text(&p, reason);
	p_i64(&p, ev->time_ms);
	int r = q_run(s,
	              "INSERT INTO console_devices(device, reject_version, reject_reason, "
	              "reject_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (device) DO UPDATE SET "
	              "reject_version = EXCLUDED.reject_version, "
	              "reject_reason = EXCLUDED.reject_reason, reject_ms = EXCLUDED.reject_ms "
	              "WHERE EXCLUDED.reject_version >= console_devices.reject_version",
	              &p, NULL);
	return r < 0 ? r : 1;
}

/* Takes up to SYNC_CHUNK queued events off the queue and folds them in. */
static int sync_chunk(struct store_pg *s, struct fold_rows *f, int *ret_rows)
{
	struct pgp p = {0};
	p_i64(&p, SYNC_CHUNK);
	_cleanup_res_ PGresult *res = NULL;
	/* SKIP LOCKED: another replica folding now keeps its rows, this one takes the rest. */
	int r = q_run(s,
	              "WITH p AS (DELETE FROM console_pending WHERE (device, seq) IN "
	              "(SELECT device, seq FROM console_pending ORDER BY device, seq LIMIT $1 "
	              "FOR UPDATE SKIP LOCKED) RETURNING device, seq, time_ms) "
	              "SELECT p.device, p.seq, e.event FROM p LEFT JOIN events e ON "
	              "e.device = p.device AND e.seq = p.seq AND e.time_ms = p.time_ms "
	              "ORDER BY p.device, p.seq",
	              &p, &res);
	if (r < 0)
		return r;
	int rows = PQntuples(res), added = 0;
	for (int i = 0; i < rows && r >= 0; i++) {
		int64_t device = col_i64(res, i, 0), seq = col_i64(res, i, 1);
		size_t len;
		const uint8_t *blob = PQgetisnull(res, i, 2) ? NULL : col_blob(res, i, 2, &len);
		Corral__Event *ev = blob ? corral__event__unpack(NULL, len, blob) : NULL;
		if (ev && ev->kind == CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION)
			r = fold_add(f, device, seq, ev);
		else if (ev && ev->kind == CORRAL__EVENT_KIND__EVENT_KIND_POLICY_REJECTED &&
		         (r = fold_rejection(s, device, ev)) > 0)
			added += r;
		if (ev)
			corral__event__free_unpacked(ev, NULL);
	}
	if (r >= 0)
		r = fold_flush(s, f);
	fold_rows_clear(f);
	if (r < 0)
		return r;
	*ret_rows = rows;
	return added + r;
}

static int c_sync(struct srv_store *st)
{
	struct store_pg *s = impl(st);
	_cleanup_res_ PGresult *any = NULL;
	int r = q_run(s, "SELECT 1 FROM console_pending LIMIT 1", NULL, &any);
	if (r < 0)
		return r;
	if (PQntuples(any) == 0)
		return 0; /* the common case: nothing new, no write transaction */
	_cleanup_free_ struct fold_rows *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	int done = 0, rows = 0;
	r = st_begin(st);
	while (r >= 0) {
		r = sync_chunk(s, f, &rows);
		if (r >= 0)
			done += rows;
		if (r < 0 || rows < SYNC_CHUNK || done >= SYNC_MAX_ROWS)
			break;
	}
	if (r >= 0)
		r = st_commit(st);
	if (r < 0) {
		st_rollback(st);
		return r;
	}
	return done;
}

/* Every device with its state; $1 = now (s), $2 = not-seen threshold (s). The CASE tests in
 * srv_console_classify()'s order (store_console_common.c): keep the two in step. */
#define PG_DEVICE_STATE_SQL                                                                    \
	"SELECT d.device_id, d.group_name, d.hostname, d.agent_version, d.enrolled_at, "       \
	"d.cert_expires_at, d.revoked_at, d.acked_seq, d.last_seen, d.heartbeat_at, "          \
	"d.policy_version, d.trust_root_version, d.freshness, d.kernel_release, "              \
	"d.features_requested, d.features_enforced, d.cert_serial, coalesce(h.v, 0) AS head, " \
	"coalesce(c.violations, 0) AS violations, coalesce(c.reject_version, 0) AS rej_v, "    \
	"coalesce(c.reject_reason, '') AS rej_reason, coalesce(c.reject_ms, 0) AS rej_ms, "    \
	"CASE WHEN d.revoked_at IS NOT NULL THEN 'revoked' "                                   \
	"WHEN GREATEST(d.last_seen, d.enrolled_at) < $1::bigint - $2::bigint THEN 'not-seen' " \
	"WHEN d.heartbeat_at = 0 THEN 'pending' "                                              \
	"WHEN coalesce(c.reject_version, 0) > d.policy_version THEN 'failing' "                \
	"WHEN d.freshness = 2 THEN 'stale' "                                                   \
	"WHEN d.policy_version < coalesce(h.v, 0) THEN 'out-of-date' "                         \
	"WHEN d.features_missing <> '' THEN 'degraded' "                                       \
	"ELSE 'compliant' END AS state, d.features_missing "                                   \
	"FROM devices d LEFT JOIN (SELECT group_name, max(version) AS v FROM publications "    \
	"GROUP BY group_name) h ON h.group_name = d.group_name "                               \
	"LEFT JOIN console_devices c ON c.device = d.id"

/* Columns of PG_DEVICE_STATE_SQL. */
enum {
	PD_ID,
	PD_GROUP,
	PD_HOST,
	PD_AGENT,
	PD_ENROLLED,
	PD_CERT_EXP,
	PD_REVOKED,
	PD_ACKED,
	PD_SEEN,
	PD_HEARTBEAT,
	PD_POLICY,
	PD_ROOT,
	PD_FRESH,
	PD_KERNEL,
	PD_FREQ,
	PD_FENF,
	PD_SERIAL,
	PD_HEAD,
	PD_VIOLATIONS,
	PD_REJ_V,
	PD_REJ_REASON,
	PD_REJ_MS,
	PD_STATE,
	PD_MISSING,
};

static json_t *console_device_json(const PGresult *res, int i)
{
	struct srv_console_device_row row = {
	        .device_id = col_text(res, i, PD_ID),
	        .group = col_text(res, i, PD_GROUP),
	        .hostname = col_text(res, i, PD_HOST),
	        .agent_version = col_text(res, i, PD_AGENT),
	        .kernel_release = col_text(res, i, PD_KERNEL),
	        .cert_serial = col_text(res, i, PD_SERIAL),
	        .features_requested = col_text(res, i, PD_FREQ),
	        .features_enforced = col_text(res, i, PD_FENF),
	        .features_missing = col_text(res, i, PD_MISSING),
	        .state = col_text(res, i, PD_STATE),
	        .reject_reason = col_text(res, i, PD_REJ_REASON),
	        .revoked = !PQgetisnull(res, i, PD_REVOKED),
	        .freshness = (int)col_i64(res, i, PD_FRESH),
	        .enrolled_at = col_i64(res, i, PD_ENROLLED),
	        .cert_expires_at = col_i64(res, i, PD_CERT_EXP),
	        .revoked_at = col_i64(res, i, PD_REVOKED),
	        .acked_seq = col_i64(res, i, PD_ACKED),
	        .last_seen = col_i64(res, i, PD_SEEN),
	        .heartbeat_at = col_i64(res, i, PD_HEARTBEAT),
	        .policy_version = col_i64(res, i, PD_POLICY),
	        .trust_root_version = col_i64(res, i, PD_ROOT),
	        .head_version = col_i64(res, i, PD_HEAD),
	        .violations = col_i64(res, i, PD_VIOLATIONS),
	        .reject_version = col_i64(res, i, PD_REJ_V),
	        .reject_ms = col_i64(res, i, PD_REJ_MS),
	};
	return srv_console_device_json(&row);
}

static int c_overview(struct srv_store *st, int64_t now, int64_t not_seen_sec, json_t **ret)
{
	struct store_pg *s = impl(st);
	_cleanup_res_ PGresult *g = NULL, *q = NULL, *dg = NULL;
	struct srv_console_overview *ov = NULL;
	json_t *out = NULL;
	int r = srv_console_overview_new(&ov);
	if (r < 0)
		return r;
	/* Every group with its newest version, even without devices. */
	if ((r = q_run(s,
	               "SELECT name, coalesce((SELECT max(version) FROM publications p WHERE "
	               "p.group_name = g.name), 0) FROM groups g ORDER BY name COLLATE \"C\"",
	               NULL, &g)) < 0)
		goto out;
	for (int i = 0; i < PQntuples(g); i++)
		if ((r = srv_console_overview_group(ov, col_text(g, i, 0), col_i64(g, i, 1))) < 0)
			goto out;
	/* One plain scan, classified by srv_console_classify() as on SQLite. */
	struct pgp p = {0};
	p_i64(&p, now);
	p_i64(&p, not_seen_sec);
	if ((r = q_run(s,
	               "SELECT d.group_name, d.policy_version, d.revoked_at IS NOT NULL, "
	               "GREATEST(d.last_seen, d.enrolled_at) < $1::bigint - $2::bigint, "
	               "d.heartbeat_at = 0, coalesce(c.reject_version, 0) > d.policy_version, "
	               "d.freshness = 2, d.features_missing <> '' "
	               "FROM devices d LEFT JOIN console_devices c ON c.device = d.id",
	               &p, &q)) < 0)
		goto out;
	for (int i = 0; i < PQntuples(q); i++)
		if ((r = srv_console_overview_device(ov, col_text(q, i, 0), col_i64(q, i, 1),
		                                     col_i64(q, i, 2), col_i64(q, i, 3),
		                                     col_i64(q, i, 4), col_i64(q, i, 5),
		                                     col_i64(q, i, 6), col_i64(q, i, 7))) < 0)
			goto out;
	if (!(out = srv_console_overview_json(ov))) {
		r = -ENOMEM;
		goto out;
	}
	/* The first few devices enforcing less than they asked for, in id order. */
	p_i64(&p, DEGRADED_LIST);
	if ((r = q_run(s,
	               "SELECT * FROM (" PG_DEVICE_STATE_SQL
	               ") x WHERE revoked_at IS NULL AND features_requested <> features_enforced "
	               "ORDER BY device_id COLLATE \"C\" LIMIT $3",
	               &p, &dg)) < 0)
		goto out;
	json_t *deg = json_object_get(out, "degraded");
	for (int i = 0; i < PQntuples(dg); i++)
		json_array_append_new(deg, console_device_json(dg, i));
	*ret = out;
	out = NULL;
out:
	srv_console_overview_free(ov);
	json_decref(out);
	return r;
}

/* WHERE of the device list over PG_DEVICE_STATE_SQL's columns; $3..$5 are the filters. */
#define PG_DEVICE_FILTER                                                                    \
	"WHERE ($3::text IS NULL OR group_name = $3) AND ($4::text IS NULL OR state = $4) " \
	"AND ($5::text IS NULL OR strpos(device_id, $5) > 0 OR strpos(hostname, $5) > 0)"

static void device_filter_params(struct pgp *p, const struct srv_console_device_filter *f)
{
	p_i64(p, f->now);
	p_i64(p, f->not_seen_sec);
	if (f->group)
		p_text(p, f->group);
	else
		p_null(p);
	if (f->state)
		p_text(p, f->state);
	else
		p_null(p);
	if (f->search && f->search[0])
		p_text(p, f->search);
	else
		p_null(p);
}

static int c_devices(struct srv_store *st, const struct srv_console_device_filter *f, json_t **ret)
{
	struct store_pg *s = impl(st);
	struct pgp p = {0};
	device_filter_params(&p, f);
	p_i64(&p, f->limit);
	p_i64(&p, f->offset);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(s,
	              "SELECT *, count(*) OVER () FROM (" PG_DEVICE_STATE_SQL
	              ") x " PG_DEVICE_FILTER
	              " ORDER BY device_id COLLATE \"C\" LIMIT $6 OFFSET $7",
	              &p, &res);
	if (r < 0)
		return r;
	json_t *items = json_array();
	int64_t total = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		total = col_i64(res, i, PD_MISSING + 1);
		json_array_append_new(items, console_device_json(res, i));
	}
	/* A page past the end still reports the total (count() OVER () saw no row). */
	if (PQntuples(res) == 0 && f->offset > 0) {
		struct pgp c = {0};
		device_filter_params(&c, f);
		_cleanup_res_ PGresult *cres = NULL;
		r = q_run(s, "SELECT count(*) FROM (" PG_DEVICE_STATE_SQL ") x " PG_DEVICE_FILTER,
		          &c, &cres);
		if (r < 0) {
			json_decref(items);
			return r;
		}
		total = col_i64(cres, 0, 0);
	}
	*ret = json_pack("{sI sI so}", "total", (json_int_t)total, "offset", (json_int_t)f->offset,
	                 "items", items);
	return *ret ? 0 : -ENOMEM;
}

static int c_device(struct srv_store *st, const char *device_id, int64_t now, int64_t not_seen_sec,
                    json_t **ret)
{
	struct pgp p = {0};
	p_i64(&p, now);
	p_i64(&p, not_seen_sec);
	p_text(&p, device_id);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st), PG_DEVICE_STATE_SQL " WHERE d.device_id = $3", &p, &res);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0)
		return -ENOENT;
	*ret = console_device_json(res, 0);
	return *ret ? 0 : -ENOMEM;
}

/* A session is looked for among the device's newest events only (bounded work). */
#define SESSION_SCAN_MAX 5000

static int c_device_events(struct srv_store *st, const char *device_id, const char *session,
                           unsigned limit, json_t **ret)
{
	struct srv_device d;
	int r = st_device_get(st, device_id, &d);
	if (r < 0)
		return r;
	struct pgp p = {0};
	p_i64(&p, d.rowid);
	p_i64(&p, session ? SESSION_SCAN_MAX : limit);
	_cleanup_res_ PGresult *res = NULL;
	r = q_run(impl(st),
	          "SELECT received_ms, event FROM events WHERE device = $1 ORDER BY seq DESC "
	          "LIMIT $2",
	          &p, &res);
	if (r < 0)
		return r;
	json_t *arr = json_array();
	for (int i = 0; i < PQntuples(res) && json_array_size(arr) < limit; i++) {
		size_t len;
		const uint8_t *b = col_blob(res, i, 1, &len);
		json_t *ev = srv_console_event_json(b, len);
		if (!ev)
			continue;
		const char *sid = json_string_value(json_object_get(ev, "session_id"));
		if (session && strcmp(sid ? sid : "", session) != 0) {
			json_decref(ev);
			continue;
		}
		json_object_set_new(ev, "device_id", json_string(device_id));
		json_object_set_new(ev, "received_ms", json_integer(col_i64(res, i, 0)));
		json_array_append_new(arr, ev);
	}
	*ret = arr;
	return 0;
}

/*
 * The WHERE of a violations query, numbering only the parameters it uses (PostgreSQL cannot
 * type one the text never mentions); appends their values to p in the same order.
 */
static int violation_where(const struct srv_console_violation_filter *f, int64_t device,
                           bool has_device, struct pgp *p, char *buf, size_t len)
{
	size_t off = 0;
	int n;
	p_i64(p, f->since_ms);
	n = snprintf(buf, len, "v.time_ms >= $%d", p->n);
	off = n > 0 ? (size_t)n : 0;
#define WHERE_ADD(cond, fmt, push)                                                     \
	do {                                                                           \
		if (cond) {                                                            \
			push;                                                          \
			n = snprintf(buf + off, off < len ? len - off : 0, fmt, p->n); \
			off += n > 0 ? (size_t)n : 0;                                  \
		}                                                                      \
	} while (0)
	WHERE_ADD(f->until_ms, " AND v.time_ms < $%d", p_i64(p, f->until_ms));
	WHERE_ADD(has_device, " AND v.device = $%d", p_i64(p, device));
	WHERE_ADD(f->vkind >= 0, " AND v.vkind = $%d", p_i64(p, f->vkind));
	WHERE_ADD(f->profile, " AND v.profile = $%d", p_text(p, f->profile));
	WHERE_ADD(f->user, " AND v.user_name = $%d", p_text(p, f->user));
	WHERE_ADD(f->session, " AND v.session = $%d", p_text(p, f->session));
#undef WHERE_ADD
	return off >= len ? -ENAMETOOLONG : 0;
}

static int c_violations(struct srv_store *st, const struct srv_console_violation_filter *f,
                        json_t **ret)
{
	struct store_pg *s = impl(st);
	int64_t device = 0;
	int r;
	if (f->device_id) {
		struct srv_device d;
		r = st_device_get(st, f->device_id, &d);
		if (r == -ENOENT) {
			*ret = json_pack("{si sI s[]}", "total", 0, "offset", (json_int_t)f->offset,
			                 "items");
			return *ret ? 0 : -ENOMEM;
		}
		if (r < 0)
			return r;
		device = d.rowid;
	}
	char where[512], sql[2048];
	struct pgp p = {0};
	if ((r = violation_where(f, device, f->device_id != NULL, &p, where, sizeof(where))) < 0)
		return r;
	_cleanup_res_ PGresult *c = NULL, *q = NULL;
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM console_violations v WHERE %s", where);
	if ((r = q_run(s, sql, &p, &c)) < 0)
		return r;
	int64_t total = col_i64(c, 0, 0);
	int lim = p.n + 1;
	p_i64(&p, f->limit);
	p_i64(&p, f->offset);
	snprintf(sql, sizeof(sql),
	         "SELECT d.device_id, d.hostname, e.received_ms, e.event FROM "
	         "(SELECT v.device, v.seq, v.time_ms FROM console_violations v WHERE %s "
	         "ORDER BY v.time_ms DESC, v.device, v.seq DESC LIMIT $%d OFFSET $%d) p "
	         "JOIN devices d ON d.id = p.device "
	         "JOIN events e ON e.device = p.device AND e.seq = p.seq AND e.time_ms = p.time_ms "
	         "ORDER BY p.time_ms DESC, p.device, p.seq DESC",
	         where, lim, lim + 1);
	if ((r = q_run(s, sql, &p, &q)) < 0)
		return r;
	json_t *items = json_array();
	for (int i = 0; i < PQntuples(q); i++) {
		size_t len;
		const uint8_t *b = col_blob(q, i, 3, &len);
		json_t *ev = srv_console_event_json(b, len);
		if (!ev)
			continue;
		json_object_set_new(ev, "device_id", json_string(col_text(q, i, 0)));
		json_object_set_new(ev, "hostname", json_string(col_text(q, i, 1)));
		json_object_set_new(ev, "received_ms", json_integer(col_i64(q, i, 2)));
		json_array_append_new(items, ev);
	}
	*ret = json_pack("{sI sI so}", "total", (json_int_t)total, "offset", (json_int_t)f->offset,
	                 "items", items);
	return *ret ? 0 : -ENOMEM;
}

static int group_counts(struct store_pg *s, const char *col, int64_t since, int64_t until,
                        json_t *out, const char *name)
{
	char sql[512];
	/* Ties in key order, as the SQLite backend breaks them. */
	snprintf(sql, sizeof(sql),
	         "SELECT %s, sum(n)::bigint AS t FROM console_vhour WHERE hour_ms >= $1 "
	         "AND hour_ms < $2 GROUP BY %s ORDER BY t DESC, %s%s LIMIT 50",
	         col, col, col, strcmp(col, "vkind") == 0 ? "" : " COLLATE \"C\"");
	struct pgp p = {0};
	p_i64(&p, since);
	p_i64(&p, until);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(s, sql, &p, &res);
	if (r < 0)
		return r;
	json_t *arr = json_array();
	bool is_kind = strcmp(col, "vkind") == 0;
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(
		        arr, json_pack("{ss sI}", "key",
		                       is_kind ? srv_console_vkind_name((int)col_i64(res, i, 0))
		                               : col_text(res, i, 0),
		                       "n", col_i64(res, i, 1)));
	json_object_set_new(out, name, arr);
	return 0;
}

static int c_violation_stats(struct srv_store *st, int64_t since_ms, int64_t until_ms,
                             int64_t bucket_ms, json_t **ret)
{
	struct store_pg *s = impl(st);
	/* The rollup is hourly: round the window out to whole hours (as on SQLite). */
	int64_t since = since_ms - ((since_ms % HOUR_MS) + HOUR_MS) % HOUR_MS;
	int64_t until = until_ms ? until_ms : INT64_MAX;
	if (bucket_ms < HOUR_MS)
		bucket_ms = HOUR_MS;
	bucket_ms -= bucket_ms % HOUR_MS;
	json_t *out = json_pack("{sI sI sI}", "since_ms", (json_int_t)since, "until_ms",
	                        (json_int_t)until_ms, "bucket_ms", (json_int_t)bucket_ms);
	if (!out)
		return -ENOMEM;
	_cleanup_res_ PGresult *q = NULL, *d = NULL;
	struct pgp p = {0};
	p_i64(&p, since);
	p_i64(&p, until);
	p_i64(&p, bucket_ms);
	int r = q_run(s,
	              "SELECT (hour_ms - $1::bigint) / $3::bigint * $3::bigint + $1::bigint AS t, "
	              "sum(n)::bigint FROM console_vhour WHERE hour_ms >= $1::bigint "
	              "AND hour_ms < $2::bigint GROUP BY t ORDER BY t",
	              &p, &q);
	if (r < 0)
		goto fail;
	json_t *series = json_array();
	int64_t total = 0;
	for (int i = 0; i < PQntuples(q); i++) {
		total += col_i64(q, i, 1);
		json_array_append_new(
		        series, json_pack("{sI sI}", "t", col_i64(q, i, 0), "n", col_i64(q, i, 1)));
	}
	json_object_set_new(out, "series", series);
	json_object_set_new(out, "total", json_integer(total));
	if ((r = group_counts(s, "vkind", since, until, out, "by_kind")) < 0 ||
	    (r = group_counts(s, "profile", since, until, out, "by_profile")) < 0 ||
	    (r = group_counts(s, "user_name", since, until, out, "by_user")) < 0)
		goto fail;
	if ((r = q_run(s,
	               "SELECT d.device_id, d.hostname, c.violations FROM console_devices c "
	               "JOIN devices d ON d.id = c.device WHERE c.violations > 0 "
	               "ORDER BY c.violations DESC, d.device_id COLLATE \"C\" LIMIT 10",
	               NULL, &d)) < 0)
		goto fail;
	json_t *by_dev = json_array();
	for (int i = 0; i < PQntuples(d); i++)
		json_array_append_new(by_dev,
		                      json_pack("{ss ss sI}", "key", col_text(d, i, 0), "hostname",
		                                col_text(d, i, 1), "n", col_i64(d, i, 2)));
	json_object_set_new(out, "by_device", by_dev);
	*ret = out;
	return 0;
fail:
	json_decref(out);
	return r;
}

static int c_bundle_get(struct srv_store *st, uint64_t version, uint8_t **ret_env, size_t *ret_len)
{
	struct pgp p = {0};
	p_i64(&p, (int64_t)version);
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st), "SELECT envelope FROM bundles WHERE version = $1", &p, &res);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0)
		return -ENOENT;
	size_t len;
	const uint8_t *b = col_blob(res, 0, 0, &len);
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, b, len);
	*ret_env = copy;
	*ret_len = len;
	return 0;
}

static int c_enroll_tokens(struct srv_store *st, json_t **ret)
{
	_cleanup_res_ PGresult *res = NULL;
	int r = q_run(impl(st),
	              "SELECT id, group_name, uses, max_uses, expires_at, created_at, created_by "
	              "FROM enroll_tokens ORDER BY created_at DESC, id LIMIT 1000",
	              NULL, &res);
	if (r < 0)
		return r;
	json_t *arr = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(
		        arr, json_pack("{ss ss sI sI sI sI ss}", "id", col_text(res, i, 0), "group",
		                       col_text(res, i, 1), "uses", col_i64(res, i, 2), "max_uses",
		                       col_i64(res, i, 3), "expires_at", col_i64(res, i, 4),
		                       "created_at", col_i64(res, i, 5), "created_by",
		                       col_text(res, i, 6)));
	*ret = arr;
	return 0;
}

/* The same histogram as the SQLite backend's /metrics data. */
static int c_metrics(struct srv_store *st, json_t **ret)
{
	static const int64_t le_ms[] = {1000,   5000,    30000,   60000,
	                                300000, 1800000, 3600000, 86400000};
	_cleanup_res_ PGresult *c = NULL, *l = NULL;
	int r = q_run(impl(st), "SELECT count(*) FROM event_keys", NULL, &c);
	if (r < 0)
		return r;
	int64_t events = col_i64(c, 0, 0);
	struct pgp p = {0};
	p_i64(&p, CORRAL__EVENT_KIND__EVENT_KIND_POLICY_APPLIED);
	r = q_run(impl(st),
	          "SELECT min(e.time_ms) - min(p.published_ms) FROM events e "
	          "JOIN devices d ON d.id = e.device JOIN publications p ON "
	          "p.group_name = d.group_name AND p.version = e.policy_version "
	          "WHERE e.kind = $1 GROUP BY e.device, e.policy_version",
	          &p, &l);
	if (r < 0)
		return r;
	int64_t counts[ELEMENTSOF(le_ms) + 1] = {0}, sum = 0, n = 0;
	for (int row = 0; row < PQntuples(l); row++) {
		int64_t v = col_i64(l, row, 0);
		if (v < 0)
			v = 0;
		size_t i = 0;
		while (i < ELEMENTSOF(le_ms) && v > le_ms[i])
			i++;
		counts[i]++;
		sum += v;
		n++;
	}
	json_t *buckets = json_array();
	int64_t cum = 0;
	for (size_t i = 0; i <= ELEMENTSOF(le_ms); i++) {
		cum += counts[i];
		json_array_append_new(buckets,
		                      json_pack("[II]",
		                                (json_int_t)(i < ELEMENTSOF(le_ms) ? le_ms[i] : -1),
		                                (json_int_t)cum));
	}
	*ret = json_pack("{sI s{so sI sI}}", "events_total", (json_int_t)events,
	                 "publish_to_applied_ms", "buckets", buckets, "sum", (json_int_t)sum,
	                 "count", (json_int_t)n);
	return *ret ? 0 : -ENOMEM;
}

/* Write statements and commits of any replica (corral_change_seq, 004_console_pg.sql: shared,
 * immediate, and only moved by writes, so a console polling it does not see its own reads).
 * 0 on error. */
static int64_t c_change_counter(struct srv_store *st)
{
	_cleanup_res_ PGresult *res = NULL;
	if (q_run(impl(st), "SELECT last_value FROM corral_change_seq", NULL, &res) < 0)
		return 0;
	return col_i64(res, 0, 0);
}

static const struct srv_console_store_ops pg_console_ops = {
        .sync = c_sync,
        .overview = c_overview,
        .devices = c_devices,
        .device = c_device,
        .device_events = c_device_events,
        .violations = c_violations,
        .violation_stats = c_violation_stats,
        .bundle_get = c_bundle_get,
        .enroll_tokens = c_enroll_tokens,
        .metrics = c_metrics,
        .change_counter = c_change_counter,
};

static const struct srv_store_ops pg_ops = {
        .close = st_close,
        .begin = st_begin,
        .commit = st_commit,
        .rollback = st_rollback,
        .audit_add = st_audit_add,
        .audit_list = st_audit_list,
        .admin_token_add = st_admin_token_add,
        .admin_token_get = st_admin_token_get,
        .admin_token_count = st_admin_token_count,
        .group_create = st_group_create,
        .group_exists = st_group_exists,
        .group_list = st_group_list,
        .enroll_token_add = st_enroll_token_add,
        .enroll = st_enroll,
        .device_get = st_device_get,
        .device_set_cert = st_device_set_cert,
        .device_revoke = st_device_revoke,
        .device_list = st_device_list,
        .device_show = st_device_show,
        .report_store = st_report_store,
        .publish = st_publish,
        .group_head_version = st_group_head_version,
        .group_heads = st_group_heads,
        .policy_history = st_policy_history,
        .rollout_status = st_rollout_status,
        .events_query = st_events_query,
        .trust_root_add = st_trust_root_add,
        .trust_roots_load = st_trust_roots_load,
        .events_prune = st_events_prune,
        .watch = st_watch,
        .console = &pg_console_ops,
};

int srv_store_pg_open(const char *url, struct srv_store **ret, char *err, size_t errlen)
{
	struct store_pg *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base.ops = &pg_ops;
	s->url = strdup(url);
	if (!s->url) {
		free(s);
		return -ENOMEM;
	}
	s->conn = connect_quiet(url);
	if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
		snprintf(err, errlen, "connecting to PostgreSQL: %s",
		         s->conn ? PQerrorMessage(s->conn) : "out of memory");
		st_close(&s->base);
		return -ECONNREFUSED;
	}
	int r = migrate(s, err, errlen);
	s->change_seq = r >= 0;
	if (r >= 0 && (r = partitions_upkeep(s)) < 0)
		snprintf(err, errlen, "creating event partitions: %s", PQerrorMessage(s->conn));
	if (r < 0) {
		st_close(&s->base);
		return r;
	}
	*ret = &s->base;
	return 0;
}
