// SPDX-License-Identifier: Apache-2.0
/*
 * The SQLite backend of the console's storage calls (store_console.h). Reads the tables the
 * device and admin APIs write, plus the console read model of migration 002_console.sql:
 * a trigger queues each new violation and policy rejection in console_pending, and sync()
 * decodes the queue into console_violations (indexed by time, kind, profile, user, device),
 * an hourly rollup and per-device counters. Every console query runs sync() first, so the
 * device API's insert path pays one small insert per violation and nothing else.
 */
#include "store.h"
#include "store_console.h"

#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNC_CHUNK 5000
/* Per call: the store lock is held meanwhile, so a backlog is folded in over several
 * requests rather than stalling device reports for seconds. */
#define SYNC_MAX_ROWS    (4 * SYNC_CHUNK)
#define DEGRADED_LIST    20
#define HOUR_MS          3600000LL
#define SESSION_SCAN_MAX 5000
#define SQL_MAX          2048

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt, sqlite3_finalize)
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)

static int prep(struct srv_store *st, const char *sql, sqlite3_stmt **ret)
{
	return sqlite3_prepare_v2(srv_store_sqlite_db(st), sql, -1, ret, NULL) == SQLITE_OK ? 0
	                                                                                    : -EIO;
}

static const char *col_text(sqlite3_stmt *q, int i)
{
	const unsigned char *t = sqlite3_column_text(q, i);
	return t ? (const char *)t : "";
}

static void bind_opt_text(sqlite3_stmt *q, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(q, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(q, i);
}

/* ---- read model catch-up ---------------------------------------------------------------- */

struct sync_stmts {
	sqlite3_stmt *viol, *hour, *dev_v, *dev_r;
};

static int fold_violation(struct sync_stmts *s, sqlite3 *db, int64_t device, int64_t seq,
                          const Corral__Event *ev)
{
	int vkind = ev->violation ? (int)ev->violation->kind : 0;
	sqlite3_stmt *q = s->viol;
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, device);
	sqlite3_bind_int64(q, 2, seq);
	sqlite3_bind_int64(q, 3, ev->time_ms);
	sqlite3_bind_int(q, 4, vkind);
	sqlite3_bind_text(q, 5, ev->profile ? ev->profile : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 6, ev->user ? ev->user : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 7, ev->session_id ? ev->session_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 8, (int64_t)ev->policy_version);
	if (sqlite3_step(q) != SQLITE_DONE)
		return -EIO;
	/* Counted once: the rollups only move when the row is new. */
	if (sqlite3_changes(db) != 1)
		return 0;
	q = s->hour;
	sqlite3_reset(q);
	int64_t hour = ev->time_ms - ((ev->time_ms % HOUR_MS) + HOUR_MS) % HOUR_MS;
	sqlite3_bind_int64(q, 1, hour);
	sqlite3_bind_int(q, 2, vkind);
	sqlite3_bind_text(q, 3, ev->profile ? ev->profile : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, ev->user ? ev->user : "", -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE)
		return -EIO;
	q = s->dev_v;
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, device);
	sqlite3_bind_int64(q, 2, ev->time_ms);
	return sqlite3_step(q) == SQLITE_DONE ? 1 : -EIO;
}

static int fold_rejection(struct sync_stmts *s, int64_t device, const Corral__Event *ev)
{
	const Corral__PolicyRejected *pr = ev->policy_rejected;
	if (!pr)
		return 0;
	sqlite3_stmt *q = s->dev_r;
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, device);
	sqlite3_bind_int64(q, 2, (int64_t)pr->version);
	sqlite3_bind_text(q, 3, pr->reason ? pr->reason : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, ev->time_ms);
	return sqlite3_step(q) == SQLITE_DONE ? 1 : -EIO;
}

static void sync_stmts_free(struct sync_stmts *s)
{
	sqlite3_finalize(s->viol);
	sqlite3_finalize(s->hour);
	sqlite3_finalize(s->dev_v);
	sqlite3_finalize(s->dev_r);
}

static int sync_chunk(struct srv_store *st, struct sync_stmts *s, int *ret_rows)
{
	sqlite3 *db = srv_store_sqlite_db(st);
	_cleanup_stmt_ sqlite3_stmt *q = NULL, *del = NULL;
	int r = prep(st,
	             "SELECT p.device, p.seq, e.event FROM console_pending p "
	             "LEFT JOIN events e ON e.device = p.device AND e.seq = p.seq LIMIT ?",
	             &q);
	if (r < 0 ||
	    (r = prep(st, "DELETE FROM console_pending WHERE device = ? AND seq = ?", &del)) < 0)
		return r;
	sqlite3_bind_int(q, 1, SYNC_CHUNK);
	int rows = 0, added = 0;
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t device = sqlite3_column_int64(q, 0), seq = sqlite3_column_int64(q, 1);
		const void *blob = sqlite3_column_blob(q, 2);
		size_t len = (size_t)sqlite3_column_bytes(q, 2);
		rows++;
		Corral__Event *ev = blob ? corral__event__unpack(NULL, len, blob) : NULL;
		int k = 0;
		if (ev && ev->kind == CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION)
			k = fold_violation(s, db, device, seq, ev);
		else if (ev && ev->kind == CORRAL__EVENT_KIND__EVENT_KIND_POLICY_REJECTED)
			k = fold_rejection(s, device, ev);
		if (ev)
			corral__event__free_unpacked(ev, NULL);
		if (k < 0)
			return k;
		added += k;
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, device);
		sqlite3_bind_int64(del, 2, seq);
		if (sqlite3_step(del) != SQLITE_DONE)
			return -EIO;
	}
	if (r != SQLITE_DONE)
		return -EIO;
	*ret_rows = rows;
	return added;
}

static int c_sync(struct srv_store *st)
{
	_cleanup_stmt_ sqlite3_stmt *any = NULL;
	int r = prep(st, "SELECT 1 FROM console_pending LIMIT 1", &any);
	if (r < 0)
		return r;
	r = sqlite3_step(any);
	if (r == SQLITE_DONE)
		return 0; /* the common case: nothing new, no write transaction */
	if (r != SQLITE_ROW)
		return -EIO;
	struct sync_stmts s = {0};
	if ((r = prep(st,
	              "INSERT OR IGNORE INTO console_violations(device, seq, time_ms, vkind, "
	              "profile, user_name, session, policy_version) VALUES(?,?,?,?,?,?,?,?)",
	              &s.viol)) < 0 ||
	    (r = prep(st,
	              "INSERT INTO console_vhour(hour_ms, vkind, profile, user_name, n) "
	              "VALUES(?,?,?,?,1) ON CONFLICT DO UPDATE SET n = n + 1",
	              &s.hour)) < 0 ||
	    (r = prep(st,
	              "INSERT INTO console_devices(device, violations, last_violation_ms) "
	              "VALUES(?1, 1, ?2) ON CONFLICT DO UPDATE SET violations = violations + 1, "
	              "last_violation_ms = max(last_violation_ms, ?2)",
	              &s.dev_v)) < 0 ||
	    (r = prep(st,
	              "INSERT INTO console_devices(device, reject_version, reject_reason, "
	              "reject_ms) VALUES(?1, ?2, ?3, ?4) ON CONFLICT DO UPDATE SET "
	              "reject_version = ?2, reject_reason = ?3, reject_ms = ?4 "
	              "WHERE ?2 >= reject_version",
	              &s.dev_r)) < 0) {
		sync_stmts_free(&s);
		return r;
	}
	int done = 0, rows = 0;
	r = st->ops->begin(st);
	while (r >= 0) {
		r = sync_chunk(st, &s, &rows);
		if (r >= 0)
			done += rows;
		if (r < 0 || rows < SYNC_CHUNK || done >= SYNC_MAX_ROWS)
			break;
	}
	sync_stmts_free(&s);
	if (r >= 0)
		r = st->ops->commit(st);
	if (r < 0) {
		st->ops->rollback(st);
		return r;
	}
	return done;
}

/* ---- devices ------------------------------------------------------------------------------ */

/* Every device with its state; ?1 = now (s), ?2 = not-seen threshold (s). The CASE tests
 * in srv_console_classify()'s order (store_console_common.c): keep the two in step. */
#define DEVICE_STATE_SQL                                                                       \
	"SELECT d.device_id, d.group_name, d.hostname, d.agent_version, d.enrolled_at, "       \
	"d.cert_expires_at, d.revoked_at, d.acked_seq, d.last_seen, d.heartbeat_at, "          \
	"d.policy_version, d.trust_root_version, d.freshness, d.kernel_release, "              \
	"d.features_requested, d.features_enforced, d.cert_serial, coalesce(h.v, 0) AS head, " \
	"coalesce(c.violations, 0), coalesce(c.reject_version, 0), "                           \
	"coalesce(c.reject_reason, ''), coalesce(c.reject_ms, 0), "                            \
	"CASE WHEN d.revoked_at IS NOT NULL THEN 'revoked' "                                   \
	"WHEN max(d.last_seen, d.enrolled_at) < ?1 - ?2 THEN 'not-seen' "                      \
	"WHEN d.heartbeat_at = 0 THEN 'pending' "                                              \
	"WHEN coalesce(c.reject_version, 0) > d.policy_version THEN 'failing' "                \
	"WHEN d.freshness = 2 THEN 'stale' "                                                   \
	"WHEN d.policy_version < coalesce(h.v, 0) THEN 'out-of-date' "                         \
	"WHEN d.features_missing <> '' THEN 'degraded' "                                       \
	"ELSE 'compliant' END AS state, d.features_missing "                                   \
	"FROM devices d LEFT JOIN (SELECT group_name, max(version) AS v FROM publications "    \
	"GROUP BY group_name) h ON h.group_name = d.group_name "                               \
	"LEFT JOIN console_devices c ON c.device = d.id"

/* Columns of DEVICE_STATE_SQL. */
enum {
	DC_ID,
	DC_GROUP,
	DC_HOST,
	DC_AGENT,
	DC_ENROLLED,
	DC_CERT_EXP,
	DC_REVOKED,
	DC_ACKED,
	DC_SEEN,
	DC_HEARTBEAT,
	DC_POLICY,
	DC_ROOT,
	DC_FRESH,
	DC_KERNEL,
	DC_FREQ,
	DC_FENF,
	DC_SERIAL,
	DC_HEAD,
	DC_VIOLATIONS,
	DC_REJ_V,
	DC_REJ_REASON,
	DC_REJ_MS,
	DC_STATE,
	DC_MISSING,
};

static json_t *device_json(sqlite3_stmt *q)
{
	struct srv_console_device_row row = {
	        .device_id = col_text(q, DC_ID),
	        .group = col_text(q, DC_GROUP),
	        .hostname = col_text(q, DC_HOST),
	        .agent_version = col_text(q, DC_AGENT),
	        .kernel_release = col_text(q, DC_KERNEL),
	        .cert_serial = col_text(q, DC_SERIAL),
	        .features_requested = col_text(q, DC_FREQ),
	        .features_enforced = col_text(q, DC_FENF),
	        .features_missing = col_text(q, DC_MISSING),
	        .state = col_text(q, DC_STATE),
	        .reject_reason = col_text(q, DC_REJ_REASON),
	        .revoked = sqlite3_column_type(q, DC_REVOKED) != SQLITE_NULL,
	        .freshness = sqlite3_column_int(q, DC_FRESH),
	        .enrolled_at = sqlite3_column_int64(q, DC_ENROLLED),
	        .cert_expires_at = sqlite3_column_int64(q, DC_CERT_EXP),
	        .revoked_at = sqlite3_column_int64(q, DC_REVOKED),
	        .acked_seq = sqlite3_column_int64(q, DC_ACKED),
	        .last_seen = sqlite3_column_int64(q, DC_SEEN),
	        .heartbeat_at = sqlite3_column_int64(q, DC_HEARTBEAT),
	        .policy_version = sqlite3_column_int64(q, DC_POLICY),
	        .trust_root_version = sqlite3_column_int64(q, DC_ROOT),
	        .head_version = sqlite3_column_int64(q, DC_HEAD),
	        .violations = sqlite3_column_int64(q, DC_VIOLATIONS),
	        .reject_version = sqlite3_column_int64(q, DC_REJ_V),
	        .reject_ms = sqlite3_column_int64(q, DC_REJ_MS),
	};
	return srv_console_device_json(&row);
}

static int c_overview(struct srv_store *st, int64_t now, int64_t not_seen_sec, json_t **ret)
{
	_cleanup_stmt_ sqlite3_stmt *g = NULL, *q = NULL, *dg = NULL;
	struct srv_console_overview *ov = NULL;
	json_t *out = NULL;
	int r = srv_console_overview_new(&ov);
	if (r < 0)
		return r;
	/* Every group with its newest version, even without devices. */
	if ((r = prep(st,
	              "SELECT name, coalesce((SELECT max(version) FROM publications p WHERE "
	              "p.group_name = g.name), 0) FROM groups g ORDER BY name",
	              &g)) < 0)
		goto fail;
	while ((r = sqlite3_step(g)) == SQLITE_ROW)
		if ((r = srv_console_overview_group(ov, col_text(g, 0),
		                                    sqlite3_column_int64(g, 1))) < 0)
			goto fail;
	if (r != SQLITE_DONE)
		goto fail;
	/*
	 * One plain scan of the devices, classified in C (srv_console_classify) rather than with
	 * a CASE and GROUP BY in SQL: at 10,000 devices the sort behind GROUP BY costs several
	 * times the scan.
	 */
	if ((r = prep(st,
	              "SELECT d.group_name, d.policy_version, d.revoked_at IS NOT NULL, "
	              "max(d.last_seen, d.enrolled_at) < ?1 - ?2, d.heartbeat_at = 0, "
	              "coalesce(c.reject_version, 0) > d.policy_version, d.freshness = 2, "
	              "d.features_missing <> '' "
	              "FROM devices d LEFT JOIN console_devices c ON c.device = d.id",
	              &q)) < 0)
		goto fail;
	sqlite3_bind_int64(q, 1, now);
	sqlite3_bind_int64(q, 2, not_seen_sec);
	while ((r = sqlite3_step(q)) == SQLITE_ROW)
		if ((r = srv_console_overview_device(
		             ov, col_text(q, 0), sqlite3_column_int64(q, 1),
		             sqlite3_column_int(q, 2), sqlite3_column_int(q, 3),
		             sqlite3_column_int(q, 4), sqlite3_column_int(q, 5),
		             sqlite3_column_int(q, 6), sqlite3_column_int(q, 7))) < 0)
			goto fail;
	if (r != SQLITE_DONE)
		goto fail;
	if (!(out = srv_console_overview_json(ov))) {
		r = -ENOMEM;
		goto fail;
	}
	/* The first few devices enforcing less than they asked for, in id order: the unique
	 * index on device_id lets this stop after DEGRADED_LIST matches. */
	if ((r = prep(st,
	              "SELECT * FROM (" DEVICE_STATE_SQL
	              ") WHERE revoked_at IS NULL AND features_requested <> features_enforced "
	              "ORDER BY device_id LIMIT ?3",
	              &dg)) < 0)
		goto fail;
	sqlite3_bind_int64(dg, 1, now);
	sqlite3_bind_int64(dg, 2, not_seen_sec);
	sqlite3_bind_int(dg, 3, DEGRADED_LIST);
	json_t *deg = json_object_get(out, "degraded");
	while ((r = sqlite3_step(dg)) == SQLITE_ROW)
		json_array_append_new(deg, device_json(dg));
	if (r != SQLITE_DONE)
		goto fail;
	srv_console_overview_free(ov);
	*ret = out;
	return 0;
fail:
	srv_console_overview_free(ov);
	json_decref(out);
	return r < 0 ? r : -EIO;
}

static int c_devices(struct srv_store *st, const struct srv_console_device_filter *f, json_t **ret)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(st,
	             "SELECT *, count(*) OVER () FROM (" DEVICE_STATE_SQL
	             ") WHERE (?3 IS NULL OR group_name = ?3) AND (?4 IS NULL OR state = ?4) "
	             "AND (?5 IS NULL OR instr(device_id, ?5) > 0 OR instr(hostname, ?5) > 0) "
	             "ORDER BY device_id LIMIT ?6 OFFSET ?7",
	             &q);
	if (r < 0)
		return r;
	sqlite3_bind_int64(q, 1, f->now);
	sqlite3_bind_int64(q, 2, f->not_seen_sec);
	bind_opt_text(q, 3, f->group);
	bind_opt_text(q, 4, f->state);
	bind_opt_text(q, 5, f->search && f->search[0] ? f->search : NULL);
	sqlite3_bind_int(q, 6, (int)f->limit);
	sqlite3_bind_int(q, 7, (int)f->offset);
	json_t *items = json_array();
	int64_t total = 0;
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		total = sqlite3_column_int64(q, DC_MISSING + 1);
		json_array_append_new(items, device_json(q));
	}
	if (r != SQLITE_DONE) {
		json_decref(items);
		return -EIO;
	}
	/* A page past the end still reports the total (count() OVER () saw no row). */
	if (json_array_size(items) == 0 && f->offset > 0) {
		_cleanup_stmt_ sqlite3_stmt *c = NULL;
		r = prep(st,
		         "SELECT count(*) FROM (" DEVICE_STATE_SQL
		         ") WHERE (?3 IS NULL OR group_name = ?3) AND (?4 IS NULL OR state = ?4) "
		         "AND (?5 IS NULL OR instr(device_id, ?5) > 0 OR instr(hostname, ?5) > 0)",
		         &c);
		if (r < 0) {
			json_decref(items);
			return r;
		}
		sqlite3_bind_int64(c, 1, f->now);
		sqlite3_bind_int64(c, 2, f->not_seen_sec);
		bind_opt_text(c, 3, f->group);
		bind_opt_text(c, 4, f->state);
		bind_opt_text(c, 5, f->search && f->search[0] ? f->search : NULL);
		if (sqlite3_step(c) == SQLITE_ROW)
			total = sqlite3_column_int64(c, 0);
	}
	*ret = json_pack("{sI sI so}", "total", (json_int_t)total, "offset", (json_int_t)f->offset,
	                 "items", items);
	return *ret ? 0 : -ENOMEM;
}

static int c_device(struct srv_store *st, const char *device_id, int64_t now, int64_t not_seen_sec,
                    json_t **ret)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(st, DEVICE_STATE_SQL " WHERE d.device_id = ?3", &q);
	if (r < 0)
		return r;
	sqlite3_bind_int64(q, 1, now);
	sqlite3_bind_int64(q, 2, not_seen_sec);
	sqlite3_bind_text(q, 3, device_id, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(q);
	if (r == SQLITE_DONE)
		return -ENOENT;
	if (r != SQLITE_ROW)
		return -EIO;
	*ret = device_json(q);
	return *ret ? 0 : -ENOMEM;
}

static int device_rowid(struct srv_store *st, const char *device_id, int64_t *ret)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(st, "SELECT id FROM devices WHERE device_id = ?", &q);
	if (r < 0)
		return r;
	sqlite3_bind_text(q, 1, device_id, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(q);
	if (r == SQLITE_DONE)
		return -ENOENT;
	if (r != SQLITE_ROW)
		return -EIO;
	*ret = sqlite3_column_int64(q, 0);
	return 0;
}

static int c_device_events(struct srv_store *st, const char *device_id, const char *session,
                           unsigned limit, json_t **ret)
{
	int64_t rowid;
	int r = device_rowid(st, device_id, &rowid);
	if (r < 0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	r = prep(st,
	         "SELECT received_ms, event FROM events WHERE device = ? ORDER BY seq DESC LIMIT ?",
	         &q);
	if (r < 0)
		return r;
	sqlite3_bind_int64(q, 1, rowid);
	/* A session is looked for among the device's newest events only (bounded work). */
	sqlite3_bind_int(q, 2, session ? SESSION_SCAN_MAX : (int)limit);
	json_t *arr = json_array();
	while (json_array_size(arr) < limit && (r = sqlite3_step(q)) == SQLITE_ROW) {
		json_t *ev = srv_console_event_json(sqlite3_column_blob(q, 1),
		                                    (size_t)sqlite3_column_bytes(q, 1));
		if (!ev)
			continue;
		if (session && strcmp(json_string_value(json_object_get(ev, "session_id")) ?: "",
		                      session) != 0) {
			json_decref(ev);
			continue;
		}
		json_object_set_new(ev, "device_id", json_string(device_id));
		json_object_set_new(ev, "received_ms", json_integer(sqlite3_column_int64(q, 0)));
		json_array_append_new(arr, ev);
	}
	if (r != SQLITE_DONE && r != SQLITE_ROW) {
		json_decref(arr);
		return -EIO;
	}
	*ret = arr;
	return 0;
}

/* ---- violations --------------------------------------------------------------------------- */

/* Appends " AND <cond>" for each filter present; binds in the same order (see bind_where). */
static int violation_where(const struct srv_console_violation_filter *f, bool has_device, char *buf,
                           size_t len)
{
	int n = snprintf(
	        buf, len, "v.time_ms >= ?1%s%s%s%s%s%s", f->until_ms ? " AND v.time_ms < ?2" : "",
	        has_device ? " AND v.device = ?3" : "", f->vkind >= 0 ? " AND v.vkind = ?4" : "",
	        f->profile ? " AND v.profile = ?5" : "", f->user ? " AND v.user_name = ?6" : "",
	        f->session ? " AND v.session = ?7" : "");
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static void bind_where(sqlite3_stmt *q, const struct srv_console_violation_filter *f,
                       int64_t device)
{
	/* Numbered parameters that the WHERE text does not use are simply ignored. */
	sqlite3_bind_int64(q, 1, f->since_ms);
	sqlite3_bind_int64(q, 2, f->until_ms);
	sqlite3_bind_int64(q, 3, device);
	sqlite3_bind_int(q, 4, f->vkind);
	bind_opt_text(q, 5, f->profile);
	bind_opt_text(q, 6, f->user);
	bind_opt_text(q, 7, f->session);
}

static int c_violations(struct srv_store *st, const struct srv_console_violation_filter *f,
                        json_t **ret)
{
	int64_t device = 0;
	int r;
	if (f->device_id) {
		r = device_rowid(st, f->device_id, &device);
		if (r == -ENOENT) {
			*ret = json_pack("{si sI s[]}", "total", 0, "offset", (json_int_t)f->offset,
			                 "items");
			return *ret ? 0 : -ENOMEM;
		}
		if (r < 0)
			return r;
	}
	char where[512], sql[SQL_MAX];
	if ((r = violation_where(f, f->device_id != NULL, where, sizeof(where))) < 0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *c = NULL, *q = NULL;
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM console_violations v WHERE %s", where);
	if ((r = prep(st, sql, &c)) < 0)
		return r;
	bind_where(c, f, device);
	if (sqlite3_step(c) != SQLITE_ROW)
		return -EIO;
	int64_t total = sqlite3_column_int64(c, 0);
	snprintf(sql, sizeof(sql),
	         "SELECT d.device_id, d.hostname, e.received_ms, e.event FROM "
	         "(SELECT v.device, v.seq, v.time_ms FROM console_violations v WHERE %s "
	         "ORDER BY v.time_ms DESC, v.device, v.seq DESC LIMIT ?8 OFFSET ?9) p "
	         "JOIN devices d ON d.id = p.device "
	         "JOIN events e ON e.device = p.device AND e.seq = p.seq "
	         "ORDER BY p.time_ms DESC, p.device, p.seq DESC",
	         where);
	if ((r = prep(st, sql, &q)) < 0)
		return r;
	bind_where(q, f, device);
	sqlite3_bind_int(q, 8, (int)f->limit);
	sqlite3_bind_int(q, 9, (int)f->offset);
	json_t *items = json_array();
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		json_t *ev = srv_console_event_json(sqlite3_column_blob(q, 3),
		                                    (size_t)sqlite3_column_bytes(q, 3));
		if (!ev)
			continue;
		json_object_set_new(ev, "device_id", json_string(col_text(q, 0)));
		json_object_set_new(ev, "hostname", json_string(col_text(q, 1)));
		json_object_set_new(ev, "received_ms", json_integer(sqlite3_column_int64(q, 2)));
		json_array_append_new(items, ev);
	}
	if (r != SQLITE_DONE) {
		json_decref(items);
		return -EIO;
	}
	*ret = json_pack("{sI sI so}", "total", (json_int_t)total, "offset", (json_int_t)f->offset,
	                 "items", items);
	return *ret ? 0 : -ENOMEM;
}

static int group_counts(struct srv_store *st, const char *col, int64_t since, int64_t until,
                        json_t *out, const char *name)
{
	char sql[512];
	/* Ties in key order (byte order), as the PostgreSQL backend breaks them. */
	snprintf(sql, sizeof(sql),
	         "SELECT %s, sum(n) AS t FROM console_vhour WHERE hour_ms >= ?1 AND hour_ms < ?2 "
	         "GROUP BY %s ORDER BY t DESC, %s LIMIT 50",
	         col, col, col);
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(st, sql, &q);
	if (r < 0)
		return r;
	sqlite3_bind_int64(q, 1, since);
	sqlite3_bind_int64(q, 2, until);
	json_t *arr = json_array();
	bool is_kind = strcmp(col, "vkind") == 0;
	while ((r = sqlite3_step(q)) == SQLITE_ROW)
		json_array_append_new(
		        arr, json_pack("{ss sI}", "key",
		                       is_kind ? srv_console_vkind_name(sqlite3_column_int(q, 0))
		                               : col_text(q, 0),
		                       "n", sqlite3_column_int64(q, 1)));
	json_object_set_new(out, name, arr);
	return r == SQLITE_DONE ? 0 : -EIO;
}

static int c_violation_stats(struct srv_store *st, int64_t since_ms, int64_t until_ms,
                             int64_t bucket_ms, json_t **ret)
{
	/* The rollup is hourly: round the window out to whole hours. */
	int64_t since = since_ms - ((since_ms % HOUR_MS) + HOUR_MS) % HOUR_MS;
	int64_t until = until_ms ? until_ms : INT64_MAX;
	if (bucket_ms < HOUR_MS)
		bucket_ms = HOUR_MS;
	bucket_ms -= bucket_ms % HOUR_MS;
	json_t *out = json_pack("{sI sI sI}", "since_ms", (json_int_t)since, "until_ms",
	                        (json_int_t)until_ms, "bucket_ms", (json_int_t)bucket_ms);
	if (!out)
		return -ENOMEM;
	_cleanup_stmt_ sqlite3_stmt *q = NULL, *d = NULL;
	int r = prep(st,
	             "SELECT (hour_ms - ?1) / ?3 * ?3 + ?1 AS t, sum(n) FROM console_vhour "
	             "WHERE hour_ms >= ?1 AND hour_ms < ?2 GROUP BY t ORDER BY t",
	             &q);
	if (r < 0)
		goto fail;
	sqlite3_bind_int64(q, 1, since);
	sqlite3_bind_int64(q, 2, until);
	sqlite3_bind_int64(q, 3, bucket_ms);
	json_t *series = json_array();
	int64_t total = 0;
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		total += sqlite3_column_int64(q, 1);
		json_array_append_new(series, json_pack("{sI sI}", "t", sqlite3_column_int64(q, 0),
		                                        "n", sqlite3_column_int64(q, 1)));
	}
	json_object_set_new(out, "series", series);
	json_object_set_new(out, "total", json_integer(total));
	if (r != SQLITE_DONE) {
		r = -EIO;
		goto fail;
	}
	if ((r = group_counts(st, "vkind", since, until, out, "by_kind")) < 0 ||
	    (r = group_counts(st, "profile", since, until, out, "by_profile")) < 0 ||
	    (r = group_counts(st, "user_name", since, until, out, "by_user")) < 0)
		goto fail;
	if ((r = prep(st,
	              "SELECT d.device_id, d.hostname, c.violations FROM console_devices c "
	              "JOIN devices d ON d.id = c.device WHERE c.violations > 0 "
	              "ORDER BY c.violations DESC, d.device_id LIMIT 10",
	              &d)) < 0)
		goto fail;
	json_t *by_dev = json_array();
	while ((r = sqlite3_step(d)) == SQLITE_ROW)
		json_array_append_new(by_dev,
		                      json_pack("{ss ss sI}", "key", col_text(d, 0), "hostname",
		                                col_text(d, 1), "n", sqlite3_column_int64(d, 2)));
	json_object_set_new(out, "by_device", by_dev);
	if (r != SQLITE_DONE) {
		r = -EIO;
		goto fail;
	}
	*ret = out;
	return 0;
fail:
	json_decref(out);
	return r;
}

/* ---- policies, tokens, metrics --------------------------------------------------------------- */

static int c_bundle_get(struct srv_store *st, uint64_t version, uint8_t **ret_env, size_t *ret_len)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(st, "SELECT envelope FROM bundles WHERE version = ?", &q);
	if (r < 0)
		return r;
	sqlite3_bind_int64(q, 1, (int64_t)version);
	r = sqlite3_step(q);
	if (r == SQLITE_DONE)
		return -ENOENT;
	if (r != SQLITE_ROW)
		return -EIO;
	size_t len = (size_t)sqlite3_column_bytes(q, 0);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	if (len)
		memcpy(buf, sqlite3_column_blob(q, 0), len);
	*ret_env = buf;
	*ret_len = len;
	return 0;
}

static int c_enroll_tokens(struct srv_store *st, json_t **ret)
{
	_cleanup_stmt_ sqlite3_stmt *q = NULL;
	int r = prep(st,
	             "SELECT id, group_name, uses, max_uses, expires_at, created_at, created_by "
	             "FROM enroll_tokens ORDER BY created_at DESC, id LIMIT 1000",
	             &q);
	if (r < 0)
		return r;
	json_t *arr = json_array();
	while ((r = sqlite3_step(q)) == SQLITE_ROW)
		json_array_append_new(
		        arr, json_pack("{ss ss sI sI sI sI ss}", "id", col_text(q, 0), "group",
		                       col_text(q, 1), "uses", sqlite3_column_int64(q, 2),
		                       "max_uses", sqlite3_column_int64(q, 3), "expires_at",
		                       sqlite3_column_int64(q, 4), "created_at",
		                       sqlite3_column_int64(q, 5), "created_by", col_text(q, 6)));
	if (r != SQLITE_DONE) {
		json_decref(arr);
		return -EIO;
	}
	*ret = arr;
	return 0;
}

static int c_metrics(struct srv_store *st, json_t **ret)
{
	static const int64_t le_ms[] = {1000,   5000,    30000,   60000,
	                                300000, 1800000, 3600000, 86400000};
	_cleanup_stmt_ sqlite3_stmt *c = NULL, *l = NULL;
	int r = prep(st, "SELECT count(*) FROM events", &c);
	if (r < 0)
		return r;
	if (sqlite3_step(c) != SQLITE_ROW)
		return -EIO;
	int64_t events = sqlite3_column_int64(c, 0);
	/* First application of each (device, version) after its publication to the device's
	 * group. */
	r = prep(st,
	         "SELECT min(e.time_ms) - p.published_ms FROM events e "
	         "JOIN devices d ON d.id = e.device JOIN publications p ON "
	         "p.group_name = d.group_name AND p.version = e.policy_version "
	         "WHERE e.kind = ? GROUP BY e.device, e.policy_version",
	         &l);
	if (r < 0)
		return r;
	sqlite3_bind_int(l, 1, CORRAL__EVENT_KIND__EVENT_KIND_POLICY_APPLIED);
	int64_t counts[ELEMENTSOF(le_ms) + 1] = {0}, sum = 0, n = 0;
	while ((r = sqlite3_step(l)) == SQLITE_ROW) {
		int64_t v = sqlite3_column_int64(l, 0);
		if (v < 0)
			v = 0;
		size_t i = 0;
		while (i < ELEMENTSOF(le_ms) && v > le_ms[i])
			i++;
		counts[i]++;
		sum += v;
		n++;
	}
	if (r != SQLITE_DONE)
		return -EIO;
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

static int64_t c_change_counter(struct srv_store *st)
{
	return sqlite3_total_changes64(srv_store_sqlite_db(st));
}

const struct srv_console_store_ops srv_store_sqlite_console_ops = {
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
