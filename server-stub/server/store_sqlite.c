// SPDX-License-Identifier: Apache-2.0
/*
 * The SQLite backend of the server storage interface (store.h): the only file in corral-server
 * that contains SQL. One connection (WAL, opened through lib/db with server_migrations); the
 * server serialises calls with its store lock. Hot statements (device lookup, event insert) are
 * prepared once and reused.
 */
#include "compliance.h"
#include "store.h"
#include "store_console.h"

#include "cleanup.h"
#include "db.h"
#include "util.h"

#include <errno.h>
#include <openssl/sha.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store_sqlite {
	struct srv_store base; /* first: the interface handle */
	sqlite3 *db;
	sqlite3_stmt *device_get;
	sqlite3_stmt *event_insert;
	sqlite3_stmt *event_seqs;
	sqlite3_stmt *device_seen;
	sqlite3_stmt *heartbeat;
	int in_tx;
};

static struct store_sqlite *impl(struct srv_store *st)
{
	return (struct store_sqlite *)st;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt, sqlite3_finalize)
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)

static int prep(struct store_sqlite *s, const char *sql, sqlite3_stmt **ret)
{
	return sqlite3_prepare_v2(s->db, sql, -1, ret, NULL) == SQLITE_OK ? 0 : -EIO;
}

static int exec(struct store_sqlite *s, const char *sql)
{
	return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

/* Maps a finished step: duplicates are -EEXIST, other constraint failures -EINVAL. */
static int step_result(int r)
{
	if (r == SQLITE_DONE)
		return 0;
	if (r == SQLITE_CONSTRAINT_PRIMARYKEY || r == SQLITE_CONSTRAINT_UNIQUE)
		return -EEXIST;
	if ((r & 0xff) == SQLITE_CONSTRAINT)
		return -EINVAL;
	return -EIO;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_TRANSIENT);
}

/* Text column that is never NULL for json. */
static const char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

static void st_close(struct srv_store *st)
{
	if (!st)
		return;
	struct store_sqlite *s = impl(st);
	sqlite3_finalize(s->device_get);
	sqlite3_finalize(s->event_insert);
	sqlite3_finalize(s->event_seqs);
	sqlite3_finalize(s->device_seen);
	sqlite3_finalize(s->heartbeat);
	sqlite3_close_v2(s->db);
	free(s);
}

static int st_begin(struct srv_store *st)
{
	return exec(impl(st), "BEGIN IMMEDIATE");
}

static int st_commit(struct srv_store *st)
{
	return exec(impl(st), "COMMIT");
}

static void st_rollback(struct srv_store *st)
{
	(void)exec(impl(st), "ROLLBACK");
}

static int st_audit_add(struct srv_store *st, const char *actor, const char *action,
                        const char *target, const char *detail, int64_t at_ms)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st),
	             "INSERT INTO audit(at_ms, actor, action, target, detail) VALUES(?,?,?,?,?)",
	             &q);
	if (r < 0)
		return r;
	sqlite3_bind_int64(q, 1, at_ms);
	bind_text(q, 2, actor);
	bind_text(q, 3, action);
	bind_text(q, 4, target);
	bind_text(q, 5, detail);
	return sqlite3_step(q) == SQLITE_DONE ? 0 : -EIO;
}

static int st_audit_list(struct srv_store *st, unsigned limit, json_t **ret)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st),
	             "SELECT id, at_ms, actor, action, target, detail FROM "
	             "(SELECT * FROM audit ORDER BY id DESC LIMIT ?) ORDER BY id",
	             &q);
	if (r < 0)
		return r;
	sqlite3_bind_int64(q, 1, limit);
	json_t *arr = json_array();
	while ((r = sqlite3_step(q)) == SQLITE_ROW)
		json_array_append_new(
		        arr, json_pack("{sI sI ss ss ss ss}", "id", sqlite3_column_int64(q, 0),
		                       "at_ms", sqlite3_column_int64(q, 1), "actor", col_text(q, 2),
		                       "action", col_text(q, 3), "target", col_text(q, 4), "detail",
		                       col_text(q, 5)));
	if (r != SQLITE_DONE) {
		json_decref(arr);
		return -EIO;
	}
	*ret = arr;
	return 0;
}

static int st_admin_token_add(struct srv_store *st, const char *id, const char *name,
                              const char *role, const uint8_t *sha, const char *by, int64_t now)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st),
	             "INSERT INTO admin_tokens(id, name, role, secret_sha256, created_at, "
	             "created_by) VALUES(?,?,?,?,?,?)",
	             &q);
	if (r < 0)
		return r;
	bind_text(q, 1, id);
	bind_text(q, 2, name);
	bind_text(q, 3, role);
	sqlite3_bind_blob(q, 4, sha, SRV_SHA256_LEN, SQLITE_TRANSIENT);
	sqlite3_bind_int64(q, 5, now);
	bind_text(q, 6, by);
	return step_result(sqlite3_step(q));
}

static int st_admin_token_get(struct srv_store *st, const char *id, struct srv_admin_token *ret)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st),
	             "SELECT name, role, revoked, secret_sha256 FROM admin_tokens WHERE id = ?",
	             &q);
	if (r < 0)
		return r;
	bind_text(q, 1, id);
	r = sqlite3_step(q);
	if (r == SQLITE_DONE)
		return -ENOENT;
	if (r != SQLITE_ROW || sqlite3_column_bytes(q, 3) != SRV_SHA256_LEN)
		return -EIO;
	struct srv_admin_token t = {0};
	snprintf(t.name, sizeof(t.name), "%s", col_text(q, 0));
	snprintf(t.role, sizeof(t.role), "%s", col_text(q, 1));
	t.revoked = sqlite3_column_int(q, 2) != 0;
	memcpy(t.secret_sha256, sqlite3_column_blob(q, 3), SRV_SHA256_LEN);
	*ret = t;
	return 0;
}

static int count_rows(struct srv_store *st, const char *sql)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st), sql, &q);
	if (r < 0)
		return r;
	if (sqlite3_step(q) != SQLITE_ROW)
		return -EIO;
	return sqlite3_column_int(q, 0);
}

static int st_admin_token_count(struct srv_store *st)
{
	return count_rows(st, "SELECT count(*) FROM admin_tokens");
}

static int st_group_create(struct srv_store *st, const char *name, const char *by, int64_t now)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st), "INSERT INTO groups(name, created_at, created_by) VALUES(?,?,?)",
	             &q);
	if (r < 0)
		return r;
	bind_text(q, 1, name);
	sqlite3_bind_int64(q, 2, now);
	bind_text(q, 3, by);
	return step_result(sqlite3_step(q));
}

static int st_group_exists(struct srv_store *st, const char *name)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st), "SELECT 1 FROM groups WHERE name = ?", &q);
	if (r < 0)
		return r;
	bind_text(q, 1, name);
	r = sqlite3_step(q);
	if (r == SQLITE_ROW)
		return 1;
	return r == SQLITE_DONE ? 0 : -EIO;
}

static int st_group_list(struct srv_store *st, json_t **ret)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st),
	             "SELECT g.name, g.created_at, g.created_by, "
	             "(SELECT count(*) FROM devices d WHERE d.group_name = g.name), "
	             "(SELECT max(version) FROM publications p WHERE p.group_name = g.name) "
	             "FROM groups g ORDER BY g.name",
	             &q);
	if (r < 0)
		return r;
	json_t *arr = json_array();
	while ((r = sqlite3_step(q)) == SQLITE_ROW)
		json_array_append_new(arr, json_pack("{ss sI ss sI sI}", "name", col_text(q, 0),
		                                     "created_at", sqlite3_column_int64(q, 1),
		                                     "created_by", col_text(q, 2), "devices",
		                                     sqlite3_column_int64(q, 3), "policy_version",
		                                     sqlite3_column_int64(q, 4)));
	if (r != SQLITE_DONE) {
		json_decref(arr);
		return -EIO;
	}
	*ret = arr;
	return 0;
}

static int st_enroll_token_add(struct srv_store *st, const char *id, const char *group,
                               const uint8_t *sha, unsigned max_uses, int64_t expires_at,
                               const char *by, int64_t now)
{
	int r = st_group_exists(st, group);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	r = prep(impl(st),
	         "INSERT INTO enroll_tokens(id, group_name, secret_sha256, max_uses, expires_at, "
	         "created_at, created_by) VALUES(?,?,?,?,?,?,?)",
	         &q);
	if (r < 0)
		return r;
	bind_text(q, 1, id);
	bind_text(q, 2, group);
	sqlite3_bind_blob(q, 3, sha, SRV_SHA256_LEN, SQLITE_TRANSIENT);
	sqlite3_bind_int64(q, 4, max_uses);
	sqlite3_bind_int64(q, 5, expires_at);
	sqlite3_bind_int64(q, 6, now);
	bind_text(q, 7, by);
	return sqlite3_step(q) == SQLITE_DONE ? 0 : -EIO;
}

static int enroll_locked(struct store_sqlite *s, const struct srv_enroll_in *in,
                         enum srv_enroll_result *ret_result, char ret_group[SRV_ID_MAX])
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(s,
	             "SELECT group_name, secret_sha256, max_uses, uses, expires_at "
	             "FROM enroll_tokens WHERE id = ?",
	             &q);
	if (r < 0)
		return r;
	bind_text(q, 1, in->token_id);
	r = sqlite3_step(q);
	if (r == SQLITE_DONE ||
	    (r == SQLITE_ROW &&
	     !util_secure_equal(sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1),
	                        in->secret_sha256, SRV_SHA256_LEN))) {
		*ret_result = SRV_ENROLL_INVALID;
		return 0;
	}
	if (r != SQLITE_ROW)
		return -EIO;
	char group[SRV_ID_MAX];
	snprintf(group, sizeof(group), "%s", col_text(q, 0));
	if (sqlite3_column_int64(q, 4) <= in->now) {
		*ret_result = SRV_ENROLL_EXPIRED;
		return 0;
	}
	/* The conditional UPDATE is the use counter: it succeeds for exactly max_uses callers
	 * even if two enrollments raced on separate connections. */
	_cleanup_stmt_ sqlite3_stmt *u = NULL;
	r = prep(s, "UPDATE enroll_tokens SET uses = uses + 1 WHERE id = ? AND uses < max_uses",
	         &u);
	if (r < 0)
		return r;
	bind_text(u, 1, in->token_id);
	if (sqlite3_step(u) != SQLITE_DONE)
		return -EIO;
	if (sqlite3_changes(s->db) != 1) {
		*ret_result = SRV_ENROLL_EXHAUSTED;
		return 0;
	}
	_cleanup_stmt_ sqlite3_stmt *d = NULL;
	r = prep(s,
	         "INSERT INTO devices(device_id, group_name, hostname, agent_version, "
	         "enroll_token_id, enrolled_at, cert_serial, cert_expires_at, last_seen) "
	         "VALUES(?,?,?,?,?,?,?,?,?)",
	         &d);
	if (r < 0)
		return r;
	bind_text(d, 1, in->device_id);
	bind_text(d, 2, group);
	bind_text(d, 3, in->hostname);
	bind_text(d, 4, in->agent_version);
	bind_text(d, 5, in->token_id);
	sqlite3_bind_int64(d, 6, in->now);
	bind_text(d, 7, in->cert_serial);
	sqlite3_bind_int64(d, 8, in->cert_expires_at);
	sqlite3_bind_int64(d, 9, in->now);
	if (sqlite3_step(d) != SQLITE_DONE)
		return -EIO;
	memcpy(ret_group, group, SRV_ID_MAX);
	*ret_result = SRV_ENROLL_OK;
	return 1; /* commit */
}

static int st_enroll(struct srv_store *st, const struct srv_enroll_in *in,
                     enum srv_enroll_result *ret_result, char ret_group[SRV_ID_MAX])
{
	struct store_sqlite *s = impl(st);
	int r = st_begin(st);
	if (r < 0)
		return r;
	r = enroll_locked(s, in, ret_result, ret_group);
	if (r <= 0) {
		st_rollback(st);
		return r;
	}
	r = st_commit(st);
	if (r < 0)
		st_rollback(st);
	return r;
}

static int st_device_get(struct srv_store *st, const char *device_id, struct srv_device *ret)
{
	struct store_sqlite *s = impl(st);
	sqlite3_stmt *q = s->device_get;
	sqlite3_reset(q);
	bind_text(q, 1, device_id);
	int r = sqlite3_step(q);
	if (r == SQLITE_DONE) {
		sqlite3_reset(q);
		return -ENOENT;
	}
	if (r != SQLITE_ROW) {
		sqlite3_reset(q);
		return -EIO;
	}
	struct srv_device d = {0};
	d.rowid = sqlite3_column_int64(q, 0);
	snprintf(d.device_id, sizeof(d.device_id), "%s", device_id);
	snprintf(d.group, sizeof(d.group), "%s", col_text(q, 1));
	d.revoked = sqlite3_column_type(q, 2) != SQLITE_NULL;
	d.acked_seq = (uint64_t)sqlite3_column_int64(q, 3);
	sqlite3_reset(q);
	*ret = d;
	return 0;
}

static int st_device_set_cert(struct srv_store *st, const char *device_id, const char *serial,
                              int64_t expires_at)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st),
	             "UPDATE devices SET cert_serial = ?, cert_expires_at = ? WHERE device_id = ?",
	             &q);
	if (r < 0)
		return r;
	bind_text(q, 1, serial);
	sqlite3_bind_int64(q, 2, expires_at);
	bind_text(q, 3, device_id);
	if (sqlite3_step(q) != SQLITE_DONE)
		return -EIO;
	return sqlite3_changes(impl(st)->db) == 1 ? 0 : -ENOENT;
}

static int st_device_revoke(struct srv_store *st, const char *device_id, int64_t now)
{
	struct srv_device d;
	int r = st_device_get(st, device_id, &d);
	if (r < 0)
		return r;
	if (d.revoked)
		return -EALREADY;
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	r = prep(impl(st), "UPDATE devices SET revoked_at = ? WHERE device_id = ?", &q);
	if (r < 0)
		return r;
	sqlite3_bind_int64(q, 1, now);
	bind_text(q, 2, device_id);
	return sqlite3_step(q) == SQLITE_DONE ? 0 : -EIO;
}

#define DEVICE_COLUMNS                                                                         \
	"device_id, group_name, hostname, agent_version, enrolled_at, cert_expires_at, "       \
	"revoked_at, acked_seq, last_seen, heartbeat_at, policy_version, trust_root_version, " \
	"freshness, kernel_release, features_requested, features_enforced, cert_serial, "      \
	"features_missing "

static json_t *device_row_json(sqlite3_stmt *q)
{
	static const char *const freshness[] = {"unknown", "fresh", "stale", "no-policy"};
	int f = sqlite3_column_int(q, 12);
	json_t *o = json_pack(
	        "{ss ss ss ss sI sI sb sI sI sI sI sI ss ss ss}", "device_id", col_text(q, 0),
	        "group", col_text(q, 1), "hostname", col_text(q, 2), "agent_version",
	        col_text(q, 3), "enrolled_at", sqlite3_column_int64(q, 4), "cert_expires_at",
	        sqlite3_column_int64(q, 5), "revoked", sqlite3_column_type(q, 6) != SQLITE_NULL,
	        "acked_seq", sqlite3_column_int64(q, 7), "last_seen", sqlite3_column_int64(q, 8),
	        "heartbeat_at", sqlite3_column_int64(q, 9), "policy_version",
	        sqlite3_column_int64(q, 10), "trust_root_version", sqlite3_column_int64(q, 11),
	        "freshness", f >= 0 && f < 4 ? freshness[f] : "unknown", "kernel_release",
	        col_text(q, 13), "cert_serial", col_text(q, 16));
	if (!o)
		return NULL;
	if (sqlite3_column_type(q, 6) != SQLITE_NULL)
		json_object_set_new(o, "revoked_at", json_integer(sqlite3_column_int64(q, 6)));
	json_object_set_new(o, "features_missing", json_string(col_text(q, 17)));
	for (int i = 14; i <= 15; i++) {
		json_t *feat = json_loads(col_text(q, i), 0, NULL);
		if (feat)
			json_object_set_new(o, i == 14 ? "features_requested" : "features_enforced",
			                    feat);
	}
	return o;
}

static int st_device_list(struct srv_store *st, const char *group, json_t **ret)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st),
	             "SELECT " DEVICE_COLUMNS
	             "FROM devices WHERE ?1 IS NULL OR group_name = ?1 ORDER BY id",
	             &q);
	if (r < 0)
		return r;
	if (group)
		bind_text(q, 1, group);
	json_t *arr = json_array();
	while ((r = sqlite3_step(q)) == SQLITE_ROW)
		json_array_append_new(arr, device_row_json(q));
	if (r != SQLITE_DONE) {
		json_decref(arr);
		return -EIO;
	}
	*ret = arr;
	return 0;
}

static int st_device_show(struct srv_store *st, const char *device_id, json_t **ret)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st), "SELECT " DEVICE_COLUMNS "FROM devices WHERE device_id = ?", &q);
	if (r < 0)
		return r;
	bind_text(q, 1, device_id);
	r = sqlite3_step(q);
	if (r == SQLITE_DONE)
		return -ENOENT;
	if (r != SQLITE_ROW)
		return -EIO;
	*ret = device_row_json(q);
	return *ret ? 0 : -ENOMEM;
}

static int apply_heartbeat(struct store_sqlite *s, int64_t rowid, const Corral__Event *ev)
{
	/* detail is a oneof (a union): trust the member only when detail_case names it. */
	if (ev->detail_case != CORRAL__EVENT__DETAIL_HEARTBEAT || !ev->heartbeat)
		return 0;
	const Corral__Heartbeat *hb = ev->heartbeat;
	_cleanup_free_ char *req = srv_features_json(hb->requested);
	_cleanup_free_ char *enf = srv_features_json(hb->enforced);
	char missing[512];
	srv_features_missing(hb->requested, hb->enforced, missing, sizeof(missing));
	sqlite3_stmt *q = s->heartbeat;
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, ev->time_ms / 1000);
	sqlite3_bind_int64(q, 2, (int64_t)hb->policy_version);
	sqlite3_bind_int64(q, 3, (int64_t)hb->trust_root_version);
	sqlite3_bind_int(q, 4, hb->freshness);
	bind_text(q, 5, hb->agent_version);
	bind_text(q, 6, hb->kernel_release);
	bind_text(q, 7, req);
	bind_text(q, 8, enf);
	bind_text(q, 9, missing);
	sqlite3_bind_int64(q, 10, rowid);
	int r = sqlite3_step(q);
	sqlite3_reset(q);
	return r == SQLITE_DONE ? 0 : -EIO;
}

static int report_locked(struct store_sqlite *s, const struct srv_device *dev,
                         const Corral__ReportBatch *batch, int64_t now_ms, uint64_t *ret_acked)
{
	uint8_t stackbuf[4096];
	for (size_t i = 0; i < batch->n_events; i++) {
		const Corral__Event *ev = batch->events[i];
		size_t need = corral__event__get_packed_size(ev);
		_cleanup_free_ uint8_t *heap = NULL;
		uint8_t *buf = stackbuf;
		if (need > sizeof(stackbuf)) {
			heap = malloc(need);
			if (!heap)
				return -ENOMEM;
			buf = heap;
		}
		corral__event__pack(ev, buf);
		uint64_t pv = ev->policy_version;
		if (ev->kind == CORRAL__EVENT_KIND__EVENT_KIND_POLICY_APPLIED &&
		    ev->policy_applied && ev->policy_applied->version)
			pv = ev->policy_applied->version;
		sqlite3_stmt *q = s->event_insert;
		sqlite3_reset(q);
		sqlite3_bind_int64(q, 1, dev->rowid);
		sqlite3_bind_int64(q, 2, (int64_t)ev->seq);
		sqlite3_bind_int64(q, 3, ev->time_ms);
		sqlite3_bind_int(q, 4, ev->kind);
		sqlite3_bind_int64(q, 5, (int64_t)pv);
		sqlite3_bind_int64(q, 6, now_ms);
		sqlite3_bind_blob(q, 7, buf, (int)need, SQLITE_STATIC);
		int r = sqlite3_step(q);
		bool inserted = sqlite3_changes(s->db) == 1;
		sqlite3_reset(q);
		if (r != SQLITE_DONE)
			return -EIO;
		/* A duplicate (already stored) heartbeat must not roll compliance state back. */
		if (inserted && ev->kind == CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT) {
			r = apply_heartbeat(s, dev->rowid, ev);
			if (r < 0)
				return r;
		}
	}
	/* Advance the contiguous watermark from where it stood. */
	uint64_t acked = dev->acked_seq;
	sqlite3_stmt *q = s->event_seqs;
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, dev->rowid);
	sqlite3_bind_int64(q, 2, (int64_t)acked);
	int r;
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(q, 0);
		if (seq != acked + 1)
			break;
		acked = seq;
	}
	sqlite3_reset(q);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		return -EIO;
	q = s->device_seen;
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, (int64_t)acked);
	sqlite3_bind_int64(q, 2, now_ms / 1000);
	sqlite3_bind_int64(q, 3, dev->rowid);
	r = sqlite3_step(q);
	sqlite3_reset(q);
	if (r != SQLITE_DONE)
		return -EIO;
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

static int st_publish(struct srv_store *st, const char *group, uint64_t version, const uint8_t *env,
                      size_t len, int64_t issued_at, int64_t expires_at, const char *by,
                      int64_t now_ms)
{
	struct store_sqlite *s = impl(st);
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(s, "SELECT envelope FROM bundles WHERE version = ?", &q);
	if (r < 0)
		return r;
	sqlite3_bind_int64(q, 1, (int64_t)version);
	r = sqlite3_step(q);
	if (r == SQLITE_ROW) {
		if (!util_secure_equal(sqlite3_column_blob(q, 0),
		                       (size_t)sqlite3_column_bytes(q, 0), env, len))
			return -EEXIST;
	} else if (r == SQLITE_DONE) {
		uint8_t sha[SRV_SHA256_LEN];
		char hex[2 * SRV_SHA256_LEN + 1];
		SHA256(env, len, sha);
		util_hex(sha, sizeof(sha), hex);
		_cleanup_stmt_ sqlite3_stmt *ins = NULL;
		r = prep(s,
		         "INSERT INTO bundles(version, envelope, sha256, issued_at, expires_at, "
		         "first_published_at) VALUES(?,?,?,?,?,?)",
		         &ins);
		if (r < 0)
			return r;
		sqlite3_bind_int64(ins, 1, (int64_t)version);
		sqlite3_bind_blob(ins, 2, env, (int)len, SQLITE_STATIC);
		bind_text(ins, 3, hex);
		sqlite3_bind_int64(ins, 4, issued_at);
		sqlite3_bind_int64(ins, 5, expires_at);
		sqlite3_bind_int64(ins, 6, now_ms / 1000);
		if (sqlite3_step(ins) != SQLITE_DONE)
			return -EIO;
	} else
		return -EIO;
	_cleanup_stmt_ sqlite3_stmt *p = NULL;
	r = prep(s,
	         "INSERT INTO publications(group_name, version, published_ms, published_by) "
	         "VALUES(?,?,?,?)",
	         &p);
	if (r < 0)
		return r;
	bind_text(p, 1, group);
	sqlite3_bind_int64(p, 2, (int64_t)version);
	sqlite3_bind_int64(p, 3, now_ms);
	bind_text(p, 4, by);
	r = step_result(sqlite3_step(p));
	return r == -EEXIST ? -EALREADY : r;
}

static int st_group_head_version(struct srv_store *st, const char *group, uint64_t *ret)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st),
	             "SELECT coalesce(max(version), 0) FROM publications WHERE group_name = ?", &q);
	if (r < 0)
		return r;
	bind_text(q, 1, group);
	if (sqlite3_step(q) != SQLITE_ROW)
		return -EIO;
	*ret = (uint64_t)sqlite3_column_int64(q, 0);
	return 0;
}

static int st_group_heads(struct srv_store *st, srv_store_blob_cb cb, void *userdata)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st),
	             "SELECT p.group_name, b.version, b.envelope FROM "
	             "(SELECT group_name, max(version) AS version FROM publications "
	             "GROUP BY group_name) p JOIN bundles b ON b.version = p.version",
	             &q);
	if (r < 0)
		return r;
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		int k = cb((uint64_t)sqlite3_column_int64(q, 1), col_text(q, 0),
		           sqlite3_column_blob(q, 2), (size_t)sqlite3_column_bytes(q, 2), userdata);
		if (k < 0)
			return k;
	}
	return r == SQLITE_DONE ? 0 : -EIO;
}

static int st_policy_history(struct srv_store *st, const char *group, json_t **ret)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st),
	             "SELECT p.version, p.published_ms, p.published_by, b.sha256, b.issued_at, "
	             "b.expires_at FROM publications p JOIN bundles b ON b.version = p.version "
	             "WHERE p.group_name = ? ORDER BY p.version",
	             &q);
	if (r < 0)
		return r;
	bind_text(q, 1, group);
	json_t *arr = json_array();
	while ((r = sqlite3_step(q)) == SQLITE_ROW)
		json_array_append_new(arr, json_pack("{sI sI ss ss sI sI}", "version",
		                                     sqlite3_column_int64(q, 0), "published_ms",
		                                     sqlite3_column_int64(q, 1), "published_by",
		                                     col_text(q, 2), "sha256", col_text(q, 3),
		                                     "issued_at", sqlite3_column_int64(q, 4),
		                                     "expires_at", sqlite3_column_int64(q, 5)));
	if (r != SQLITE_DONE) {
		json_decref(arr);
		return -EIO;
	}
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
	size_t idx = (n * pct + 99) / 100; /* nearest-rank */
	if (idx == 0)
		idx = 1;
	return v[idx - 1];
}

static int st_rollout_status(struct srv_store *st, const char *group, json_t **ret)
{
	struct store_sqlite *s = impl(st);
	uint64_t head = 0;
	int r = st_group_head_version(st, group, &head);
	if (r < 0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	r = prep(s,
	         "SELECT policy_version, count(*) FROM devices WHERE group_name = ? AND "
	         "revoked_at IS NULL GROUP BY policy_version ORDER BY policy_version",
	         &q);
	if (r < 0)
		return r;
	bind_text(q, 1, group);
	json_t *by = json_array();
	int64_t total = 0, on_head = 0;
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t v = sqlite3_column_int64(q, 0), n = sqlite3_column_int64(q, 1);
		total += n;
		if ((uint64_t)v == head)
			on_head = n;
		json_array_append_new(by, json_pack("{sI sI}", "version", v, "devices", n));
	}
	if (r != SQLITE_DONE) {
		json_decref(by);
		return -EIO;
	}
	/* publish -> applied latency of the head version: first POLICY_APPLIED event per device. */
	_cleanup_stmt_ sqlite3_stmt *l = NULL;
	r = prep(s,
	         "SELECT min(e.time_ms) - p.published_ms FROM events e "
	         "JOIN devices d ON d.id = e.device "
	         "JOIN publications p ON p.group_name = d.group_name AND p.version = "
	         "e.policy_version "
	         "WHERE d.group_name = ?1 AND e.kind = ?2 AND e.policy_version = ?3 "
	         "GROUP BY e.device",
	         &l);
	if (r < 0) {
		json_decref(by);
		return r;
	}
	bind_text(l, 1, group);
	sqlite3_bind_int(l, 2, CORRAL__EVENT_KIND__EVENT_KIND_POLICY_APPLIED);
	sqlite3_bind_int64(l, 3, (int64_t)head);
	size_t n = 0, cap = 0;
	_cleanup_free_ int64_t *lat = NULL;
	while ((r = sqlite3_step(l)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			int64_t *nl = realloc(lat, ncap * sizeof(*nl));
			if (!nl) {
				json_decref(by);
				return -ENOMEM;
			}
			lat = nl;
			cap = ncap;
		}
		int64_t v = sqlite3_column_int64(l, 0);
		lat[n++] = v < 0 ? 0 : v;
	}
	if (r != SQLITE_DONE) {
		json_decref(by);
		return -EIO;
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
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st),
	             "SELECT d.device_id, e.received_ms, e.event FROM events e "
	             "JOIN devices d ON d.id = e.device "
	             "WHERE (?1 IS NULL OR d.device_id = ?1) AND (?2 < 0 OR e.kind = ?2) "
	             "AND e.time_ms >= ?3 ORDER BY e.time_ms DESC, e.device, e.seq DESC LIMIT ?4",
	             &q);
	if (r < 0)
		return r;
	if (f->device_id)
		bind_text(q, 1, f->device_id);
	sqlite3_bind_int(q, 2, f->kind);
	sqlite3_bind_int64(q, 3, f->since_ms);
	sqlite3_bind_int64(q, 4, f->limit);
	json_t *arr = json_array();
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		json_t *ev = srv_event_json(sqlite3_column_blob(q, 2),
		                            (size_t)sqlite3_column_bytes(q, 2));
		if (!ev)
			continue;
		json_object_set_new(ev, "device_id", json_string(col_text(q, 0)));
		json_object_set_new(ev, "received_ms", json_integer(sqlite3_column_int64(q, 1)));
		json_array_append_new(arr, ev);
	}
	if (r != SQLITE_DONE) {
		json_decref(arr);
		return -EIO;
	}
	*ret = arr;
	return 0;
}

static int st_trust_root_add(struct srv_store *st, uint64_t version, const uint8_t *env, size_t len,
                             int64_t expires_at, const char *by, int64_t now)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st),
	             "INSERT INTO trust_roots(version, envelope, expires_at, published_at, "
	             "published_by) VALUES(?,?,?,?,?)",
	             &q);
	if (r < 0)
		return r;
	sqlite3_bind_int64(q, 1, (int64_t)version);
	sqlite3_bind_blob(q, 2, env, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, expires_at);
	sqlite3_bind_int64(q, 4, now);
	bind_text(q, 5, by);
	return step_result(sqlite3_step(q));
}

static int st_trust_roots_load(struct srv_store *st, srv_store_blob_cb cb, void *userdata)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st), "SELECT version, envelope FROM trust_roots ORDER BY version", &q);
	if (r < 0)
		return r;
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		int k = cb((uint64_t)sqlite3_column_int64(q, 0), NULL, sqlite3_column_blob(q, 1),
		           (size_t)sqlite3_column_bytes(q, 1), userdata);
		if (k < 0)
			return k;
	}
	return r == SQLITE_DONE ? 0 : -EIO;
}

/* Age retention in bounded batches, so the store lock is never held for long. */
static int st_events_prune(struct srv_store *st, int64_t older_than_ms, unsigned max_rows)
{
	if (older_than_ms <= 0)
		return 0;
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(impl(st),
	             "DELETE FROM events WHERE (device, seq) IN (SELECT device, seq FROM events "
	             "WHERE time_ms < ? LIMIT ?)",
	             &q);
	if (r < 0)
		return r;
	sqlite3_bind_int64(q, 1, older_than_ms);
	sqlite3_bind_int64(q, 2, max_rows);
	if (sqlite3_step(q) != SQLITE_DONE)
		return -EIO;
	return (unsigned)sqlite3_changes(impl(st)->db) >= max_rows ? 1 : 0;
}

static int st_events_prune_excess(struct srv_store *st, uint64_t keep, unsigned max_rows)
{
	_cleanup_stmt_ sqlite3_stmt *c = NULL, *q = NULL;
	int r = prep(impl(st), "SELECT count(*) FROM events", &c);
	if (r < 0)
		return r;
	if (sqlite3_step(c) != SQLITE_ROW)
		return -EIO;
	uint64_t n = (uint64_t)sqlite3_column_int64(c, 0);
	if (n <= keep)
		return 0;
	uint64_t excess = n - keep;
	unsigned batch = excess < max_rows ? (unsigned)excess : max_rows;
	r = prep(impl(st),
	         "DELETE FROM events WHERE (device, seq) IN (SELECT device, seq FROM events "
	         "ORDER BY time_ms LIMIT ?)",
	         &q);
	if (r < 0)
		return r;
	sqlite3_bind_int64(q, 1, batch);
	if (sqlite3_step(q) != SQLITE_DONE)
		return -EIO;
	return excess > batch ? 1 : 0;
}

static const struct srv_store_ops sqlite_ops = {
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
        .events_prune_excess = st_events_prune_excess,
        .console = &srv_store_sqlite_console_ops,
};

/* The connection, for the console's queries (store_sqlite_console.c, same backend). */
sqlite3 *srv_store_sqlite_db(struct srv_store *st)
{
	return impl(st)->db;
}

int srv_store_sqlite_open(const char *path, struct srv_store **ret, char *err, size_t errlen)
{
	struct store_sqlite *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base.ops = &sqlite_ops;
	int r = db_open(path, server_migrations, 0, &s->db, err, errlen);
	if (r < 0) {
		free(s);
		return r;
	}
	/* WAL with synchronous=NORMAL: a commit survives a process crash; only a power loss
	 * can lose the last transactions, and devices resend whatever was not acknowledged. */
	/* cache_size: the web console's fleet-wide queries (store_sqlite_console.c) read every
	 * device row; 32 MiB of page cache keeps 10,000 devices and the indexes in memory. */
	if (exec(s, "PRAGMA synchronous=NORMAL") < 0 || exec(s, "PRAGMA cache_size=-32768") < 0 ||
	    prep(s, "SELECT id, group_name, revoked_at, acked_seq FROM devices WHERE device_id = ?",
	         &s->device_get) < 0 ||
	    prep(s,
	         "INSERT OR IGNORE INTO events(device, seq, time_ms, kind, policy_version, "
	         "received_ms, event) VALUES(?,?,?,?,?,?,?)",
	         &s->event_insert) < 0 ||
	    prep(s, "SELECT seq FROM events WHERE device = ? AND seq > ? ORDER BY seq",
	         &s->event_seqs) < 0 ||
	    prep(s, "UPDATE devices SET acked_seq = ?, last_seen = ? WHERE id = ?",
	         &s->device_seen) < 0 ||
	    prep(s,
	         "UPDATE devices SET heartbeat_at = max(heartbeat_at, ?), policy_version = ?, "
	         "trust_root_version = ?, freshness = ?, agent_version = ?, kernel_release = ?, "
	         "features_requested = ?, features_enforced = ?, features_missing = ? WHERE id = ?",
	         &s->heartbeat) < 0) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
		st_close(&s->base);
		return -EIO;
	}
	*ret = &s->base;
	return 0;
}
