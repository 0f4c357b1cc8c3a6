// SPDX-License-Identifier: Apache-2.0
/*
 * Durable, bounded event outbox (see outbox.h). Counters live in the one-row outbox_state
 * table and are updated in the same transaction as the rows they count, so a crash at any
 * point leaves counters and rows consistent and never reuses a sequence number.
 */
#include "outbox.h"

#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

/* Per-row bookkeeping added to the body size so that tiny events still count. */
#define ROW_OVERHEAD 64u

/* The statements of an append, compiled once (an append used to parse eight SQL texts). */
enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_SYNC_NORMAL,
	S_SYNC_FULL,
	S_INSERT_OUTBOX,
	S_INSERT_RECENT,
	S_TRIM_RECENT,
	S_SAVE_STATE,
	S_EVICT,
	S__MAX
};

static const char *const stmt_sql[S__MAX] = {
        [S_BEGIN] = "BEGIN IMMEDIATE",
        [S_COMMIT] = "COMMIT",
        [S_ROLLBACK] = "ROLLBACK",
        [S_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
        [S_SYNC_FULL] = "PRAGMA synchronous = FULL",
        [S_INSERT_OUTBOX] = "INSERT INTO outbox (seq, kind, class, time_ms, body) "
                            "VALUES (?, ?, ?, ?, ?)",
        [S_INSERT_RECENT] = "INSERT OR REPLACE INTO recent (seq, body) VALUES (?, ?)",
        [S_TRIM_RECENT] = "DELETE FROM recent WHERE seq <= ?",
        [S_SAVE_STATE] = "UPDATE outbox_state SET next_seq = ?, acked_seq = ?, bytes = ?, "
                         "count = ?, drop_heartbeats = ?, drop_sessions = ?, "
                         "drop_violations = ?, drop_other = ? WHERE id = 1",
        [S_EVICT] = "DELETE FROM outbox WHERE seq = (SELECT seq FROM outbox WHERE "
                    "class = ? ORDER BY seq LIMIT 1) RETURNING length(body)",
};

struct cd_outbox {
	sqlite3 *db;
	uint64_t max_bytes, max_events;
	struct cd_outbox_stats st;
	/* a lazy commit is in the WAL but not yet fdatasync'ed */
	bool unsynced;
	sqlite3_stmt *stmts[S__MAX];
};

/* The cached statement `id`, compiled on first use; NULL when it cannot be. Callers step it
 * and then release it with done(), which resets it so it holds no lock between appends. */
static sqlite3_stmt *stmt(struct cd_outbox *ob, enum stmt_id id)
{
	if (!ob->stmts[id] &&
	    sqlite3_prepare_v3(ob->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &ob->stmts[id],
	                       NULL) != SQLITE_OK)
		return NULL;
	return ob->stmts[id];
}

static void done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Runs a cached statement that returns no rows. */
static int run_stmt(struct cd_outbox *ob, enum stmt_id id)
{
	sqlite3_stmt *st = stmt(ob, id);
	if (!st)
		return -EIO;
	int rc = sqlite3_step(st);
	done(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

enum cd_outbox_class cd_outbox_class_of(Corral__EventKind kind)
{
	switch (kind) {
	case CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT:
		return CD_OUTBOX_CLASS_HEARTBEAT;
	case CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START:
	case CORRAL__EVENT_KIND__EVENT_KIND_SESSION_EXIT:
		return CD_OUTBOX_CLASS_SESSION;
	case CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION:
		return CD_OUTBOX_CLASS_VIOLATION;
	default:
		return CD_OUTBOX_CLASS_KEEP;
	}
}

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

static int load_state(struct cd_outbox *ob)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(ob->db,
	                       "SELECT next_seq, acked_seq, bytes, count, drop_heartbeats, "
	                       "drop_sessions, drop_violations, drop_other FROM outbox_state "
	                       "WHERE id = 1",
	                       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	int r = -EIO;
	if (sqlite3_step(st) == SQLITE_ROW) {
		ob->st.next_seq = (uint64_t)sqlite3_column_int64(st, 0);
		ob->st.acked_seq = (uint64_t)sqlite3_column_int64(st, 1);
		ob->st.bytes = (uint64_t)sqlite3_column_int64(st, 2);
		ob->st.depth = (uint64_t)sqlite3_column_int64(st, 3);
		ob->st.drop_heartbeats = (uint64_t)sqlite3_column_int64(st, 4);
		ob->st.drop_sessions = (uint64_t)sqlite3_column_int64(st, 5);
		ob->st.drop_violations = (uint64_t)sqlite3_column_int64(st, 6);
		ob->st.drop_other = (uint64_t)sqlite3_column_int64(st, 7);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

static int save_state(struct cd_outbox *ob, const struct cd_outbox_stats *s)
{
	sqlite3_stmt *st = stmt(ob, S_SAVE_STATE);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)s->next_seq);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)s->acked_seq);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)s->bytes);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)s->depth);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)s->drop_heartbeats);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)s->drop_sessions);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)s->drop_violations);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)s->drop_other);
	int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	done(st);
	return r;
}

int cd_outbox_open(sqlite3 *db, uint64_t max_bytes, uint64_t max_events,
                   struct cd_outbox **ret_outbox)
{
	struct cd_outbox *ob = calloc(1, sizeof(*ob));
	if (!ob)
		return -ENOMEM;
	ob->db = db;
	ob->max_bytes = max_bytes;
	ob->max_events = max_events;
	int r = load_state(ob);
	if (r < 0) {
		free(ob);
		return r;
	}
	*ret_outbox = ob;
	return 0;
}

void cd_outbox_free(struct cd_outbox *ob)
{
	if (!ob)
		return;
	for (size_t i = 0; i < S__MAX; i++)
		sqlite3_finalize(ob->stmts[i]);
	free(ob);
}

void cd_outbox_get_stats(const struct cd_outbox *ob, struct cd_outbox_stats *ret)
{
	*ret = ob->st;
}

static bool fits(const struct cd_outbox *ob, const struct cd_outbox_stats *s, uint64_t size)
{
	return s->depth + 1 <= ob->max_events && s->bytes + size <= ob->max_bytes;
}

static void count_drop(struct cd_outbox_stats *s, int cls)
{
	switch (cls) {
	case CD_OUTBOX_CLASS_HEARTBEAT:
		s->drop_heartbeats++;
		break;
	case CD_OUTBOX_CLASS_SESSION:
		s->drop_sessions++;
		break;
	case CD_OUTBOX_CLASS_VIOLATION:
		s->drop_violations++;
		break;
	default:
		s->drop_other++;
	}
}

/* Evicts the oldest row of class `cls`; returns 1 when one was evicted, 0 when none. */
static int evict_one(struct cd_outbox *ob, struct cd_outbox_stats *s, int cls)
{
	sqlite3_stmt *st = stmt(ob, S_EVICT);
	if (!st)
		return -EIO;
	sqlite3_bind_int(st, 1, cls);
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		uint64_t sz = (uint64_t)sqlite3_column_int64(st, 0) + ROW_OVERHEAD;
		s->bytes = s->bytes >= sz ? s->bytes - sz : 0;
		s->depth = s->depth ? s->depth - 1 : 0;
		count_drop(s, cls);
		r = sqlite3_step(st) == SQLITE_DONE ? 1 : -EIO;
	} else {
		r = r == SQLITE_DONE ? 0 : -EIO;
	}
	done(st);
	return r;
}

/* Inserts one serialized event as `seq` into the outbox and the recent list. */
static int insert_row(struct cd_outbox *ob, uint64_t seq, const Corral__Event *ev,
                      const uint8_t *body, size_t len)
{
	sqlite3_stmt *st = stmt(ob, S_INSERT_OUTBOX);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	sqlite3_bind_int(st, 2, (int)ev->kind);
	sqlite3_bind_int(st, 3, (int)cd_outbox_class_of(ev->kind));
	sqlite3_bind_int64(st, 4, ev->time_ms);
	sqlite3_bind_blob(st, 5, body, (int)len, SQLITE_STATIC);
	int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	done(st);
	if (r < 0)
		return r;
	if (!(st = stmt(ob, S_INSERT_RECENT)))
		return -EIO;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	sqlite3_bind_blob(st, 2, body, (int)len, SQLITE_STATIC);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	done(st);
	if (r < 0)
		return r;
	/* Trimmed every CD_OUTBOX_RECENT_STEP events, not on each: the delete dirties the page of
	 * the oldest rows, one more WAL frame per commit (corral run commits two on its path). */
	if (seq > CD_OUTBOX_RECENT && seq % CD_OUTBOX_RECENT_STEP == 0) {
		if (!(st = stmt(ob, S_TRIM_RECENT)))
			return -EIO;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)(seq - CD_OUTBOX_RECENT));
		r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
		done(st);
	}
	return r;
}

/* Serializes ev (seq assigned) into a heap buffer. */
static int pack_event(const Corral__Event *ev, uint8_t **ret, size_t *ret_len)
{
	size_t len = corral__event__get_packed_size(ev);
	if (len > CD_OUTBOX_EVENT_MAX)
		return -EMSGSIZE;
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	corral__event__pack(ev, buf);
	*ret = buf;
	*ret_len = len;
	return 0;
}

/*
 * Writes the pending `dropped` event inside the caller's transaction when there is room for it
 * and still room for `reserve` more bytes afterwards. Resets the counters it reports.
 */
static int maybe_write_dropped(struct cd_outbox *ob, struct cd_outbox_stats *s, uint64_t reserve)
{
	if (!s->drop_heartbeats && !s->drop_sessions && !s->drop_violations && !s->drop_other)
		return 0;
	Corral__Dropped d = CORRAL__DROPPED__INIT;
	d.heartbeats = s->drop_heartbeats;
	d.sessions = s->drop_sessions;
	d.violations = s->drop_violations;
	d.other = s->drop_other;
	Corral__Event ev = CORRAL__EVENT__INIT;
	ev.kind = CORRAL__EVENT_KIND__EVENT_KIND_DROPPED;
	ev.time_ms = util_now_ms();
	ev.seq = s->next_seq;
	ev.detail_case = CORRAL__EVENT__DETAIL_DROPPED;
	ev.dropped = &d;
	_cleanup_free_ uint8_t *body = NULL;
	size_t len = 0;
	int r = pack_event(&ev, &body, &len);
	if (r < 0)
		return r;
	struct cd_outbox_stats after = *s;
	after.depth++;
	after.bytes += len + ROW_OVERHEAD;
	if (after.depth + (reserve ? 1 : 0) > ob->max_events ||
	    after.bytes + reserve > ob->max_bytes)
		return 0; /* no room yet: stays pending, counters keep growing */
	r = insert_row(ob, ev.seq, &ev, body, len);
	if (r < 0)
		return r;
	after.next_seq++;
	after.drop_heartbeats = after.drop_sessions = after.drop_violations = after.drop_other = 0;
	*s = after;
	return 1;
}

bool cd_outbox_lazy_class(enum cd_outbox_class cls)
{
	return cls == CD_OUTBOX_CLASS_SESSION;
}

/* Records a commit: a FULL commit fdatasyncs the whole WAL file, earlier lazy frames
 * included; a lazy one leaves the WAL unsynced. */
static void committed(struct cd_outbox *ob, bool lazy)
{
	ob->unsynced = lazy;
}

bool cd_outbox_unsynced(const struct cd_outbox *ob)
{
	return ob->unsynced;
}

int cd_outbox_sync(struct cd_outbox *ob)
{
	if (!ob->unsynced)
		return 0;
	/* SQLite's own handle on the WAL file and its own sync routine: exactly what a FULL
	 * commit would have done at its end (fdatasync of the WAL). */
	sqlite3_file *wal = NULL;
	if (sqlite3_file_control(ob->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) != SQLITE_OK ||
	    !wal || !wal->pMethods || wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL) != SQLITE_OK)
		return -EIO;
	ob->unsynced = false;
	return 0;
}

static int append_txn(struct cd_outbox *ob, Corral__Event *ev, int cls, bool lazy,
                      uint64_t *ret_seq)
{
	int r = run_stmt(ob, S_BEGIN);
	if (r < 0)
		return r;
	struct cd_outbox_stats s = ob->st;
	/* The size is known only with the final seq; seq varint length changes are covered by
	 * packing after the dropped event (which may take a seq first). */
	ev->seq = s.next_seq;
	_cleanup_free_ uint8_t *body = NULL;
	size_t len = 0;
	r = pack_event(ev, &body, &len);
	if (r < 0)
		goto rollback;
	uint64_t need = len + ROW_OVERHEAD;
	if (need > ob->max_bytes) {
		r = -EMSGSIZE;
		goto rollback;
	}
	/* Report earlier drops first when both fit, so the server sees them in order. */
	r = maybe_write_dropped(ob, &s, need);
	if (r < 0)
		goto rollback;
	if (r > 0) {
		free(body);
		body = NULL;
		ev->seq = s.next_seq;
		r = pack_event(ev, &body, &len);
		if (r < 0)
			goto rollback;
		need = len + ROW_OVERHEAD;
	}
	/* Make room: lower classes first; the event's own class last (oldest first). KEEP-class
	 * rows are never evicted. */
	bool dropped_self = false;
	for (int victim = CD_OUTBOX_CLASS_HEARTBEAT; !fits(ob, &s, need); victim++) {
		if (victim > cls || victim >= CD_OUTBOX_CLASS_KEEP) {
			dropped_self = true;
			break;
		}
		r = evict_one(ob, &s, victim);
		if (r < 0)
			goto rollback;
		if (r > 0)
			victim--; /* same class again until it fits or the class is empty */
	}
	if (dropped_self) {
		count_drop(&s, cls);
		r = save_state(ob, &s);
		if (r < 0)
			goto rollback;
		r = run_stmt(ob, S_COMMIT);
		if (r < 0)
			goto rollback;
		committed(ob, lazy);
		ob->st = s;
		return -ENOSPC;
	}
	r = insert_row(ob, s.next_seq, ev, body, len);
	if (r < 0)
		goto rollback;
	uint64_t seq = s.next_seq;
	s.next_seq++;
	s.depth++;
	s.bytes += need;
	r = save_state(ob, &s);
	if (r < 0)
		goto rollback;
	r = run_stmt(ob, S_COMMIT);
	if (r < 0)
		goto rollback;
	committed(ob, lazy);
	ob->st = s;
	if (ret_seq)
		*ret_seq = seq;
	return 0;
rollback:
	(void)run_stmt(ob, S_ROLLBACK);
	return r;
}

int cd_outbox_append(struct cd_outbox *ob, Corral__Event *ev, uint64_t *ret_seq)
{
	if (ev->time_ms == 0)
		ev->time_ms = util_now_ms();
	int cls = (int)cd_outbox_class_of(ev->kind);
	bool lazy = cd_outbox_lazy_class((enum cd_outbox_class)cls);
	/* synchronous=NORMAL for this one transaction only: the connection is shared with the
	 * trust store and the daemon state, whose commits stay FULL (db_open's setting). Both
	 * levels keep a commit across a crash of the process (it is in the WAL, in the page
	 * cache); only FULL also survives an OS crash or power loss. */
	if (lazy && run_stmt(ob, S_SYNC_NORMAL) < 0)
		return -EIO;
	int r = append_txn(ob, ev, cls, lazy, ret_seq);
	if (lazy && run_stmt(ob, S_SYNC_FULL) < 0) {
		/* never leave the shared connection lazy */
		r = -EIO;
	}
	return r;
}

void cd_outbox_batch_free(Corral__ReportBatch *batch)
{
	if (!batch)
		return;
	for (size_t i = 0; i < batch->n_events; i++)
		corral__event__free_unpacked(batch->events[i], NULL);
	free(batch->events);
	free(batch->device_id);
	free(batch);
}

/* Upper bound of a serialized placeholder plus its framing in the batch. */
#define PLACEHOLDER_BYTES 32u

/* A DROPPED event with zero counts standing in for an evicted sequence number. Built by
 * packing and unpacking so that cd_outbox_batch_free frees it like any unpacked event. */
static int placeholder(uint64_t seq, int64_t time_ms, Corral__Event **ret)
{
	Corral__Dropped d = CORRAL__DROPPED__INIT;
	Corral__Event ev = CORRAL__EVENT__INIT;
	ev.seq = seq;
	ev.time_ms = time_ms;
	ev.kind = CORRAL__EVENT_KIND__EVENT_KIND_DROPPED;
	ev.detail_case = CORRAL__EVENT__DETAIL_DROPPED;
	ev.dropped = &d;
	uint8_t buf[PLACEHOLDER_BYTES];
	size_t len = corral__event__get_packed_size(&ev);
	if (len > sizeof(buf))
		return -EMSGSIZE;
	corral__event__pack(&ev, buf);
	Corral__Event *out = corral__event__unpack(NULL, len, buf);
	if (!out)
		return -ENOMEM;
	*ret = out;
	return 0;
}

int cd_outbox_batch(struct cd_outbox *ob, size_t max_events, size_t max_bytes,
                    Corral__ReportBatch **ret_batch)
{
	/* Nothing leaves the device before it is on disk: an uploaded, acknowledged sequence
	 * number lost in a power cut would be handed out again after the reboot, and the server's
	 * (device, seq) deduplication would then discard the new event. */
	int r = cd_outbox_sync(ob);
	if (r < 0)
		return r;
	Corral__ReportBatch *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	corral__report_batch__init(b);
	b->device_id = NULL;
	b->after_seq = ob->st.acked_seq;
	if (max_events == 0 || max_events > CD_OUTBOX_BATCH_EVENTS)
		max_events = CD_OUTBOX_BATCH_EVENTS;
	b->events = calloc(max_events, sizeof(Corral__Event *));
	if (!b->events) {
		free(b);
		return -ENOMEM;
	}
	sqlite3_stmt *st = NULL;
	r = 0;
	if (sqlite3_prepare_v2(ob->db, "SELECT body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
	                       -1, &st, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ob->st.acked_seq);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max_events);
	size_t bytes = 0;
	uint64_t expect = ob->st.acked_seq + 1;
	for (;;) {
		int s = sqlite3_step(st);
		if (s == SQLITE_DONE)
			break;
		if (s != SQLITE_ROW) {
			r = -EIO;
			goto out;
		}
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		/* Leave headroom for the batch framing (tags and lengths, < 8 bytes an event). */
		if (b->n_events > 0 && bytes + len + 8 > max_bytes)
			break;
		Corral__Event *ev = corral__event__unpack(
		        NULL, len, (const uint8_t *)sqlite3_column_blob(st, 0));
		if (!ev) {
			r = -EBADMSG;
			goto out;
		}
		/* Sequence numbers evicted by the drop order travel as placeholders, so the server
		 * stores 1..N without a hole and its contiguous acknowledgement moves on. */
		while (expect < ev->seq && b->n_events < max_events &&
		       bytes + PLACEHOLDER_BYTES <= max_bytes) {
			r = placeholder(expect, ev->time_ms, &b->events[b->n_events]);
			if (r < 0) {
				corral__event__free_unpacked(ev, NULL);
				goto out;
			}
			b->n_events++;
			bytes += PLACEHOLDER_BYTES;
			expect++;
		}
		if (expect < ev->seq || b->n_events >= max_events ||
		    (b->n_events > 0 && bytes + len + 8 > max_bytes)) {
			corral__event__free_unpacked(ev, NULL); /* next batch */
			break;
		}
		b->events[b->n_events++] = ev;
		bytes += len + 8;
		expect = ev->seq + 1;
	}
out:
	sqlite3_finalize(st);
	if (r < 0) {
		cd_outbox_batch_free(b);
		return r;
	}
	*ret_batch = b;
	return 0;
}

int cd_outbox_ack(struct cd_outbox *ob, uint64_t acked_seq)
{
	if (acked_seq >= ob->st.next_seq)
		return -ERANGE;
	if (acked_seq <= ob->st.acked_seq)
		return 0;
	int r = exec(ob->db, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	struct cd_outbox_stats s = ob->st;
	sqlite3_stmt *st = NULL;
	int deleted = 0;
	if (sqlite3_prepare_v2(ob->db, "DELETE FROM outbox WHERE seq <= ? RETURNING length(body)",
	                       -1, &st, NULL) != SQLITE_OK) {
		r = -EIO;
		goto rollback;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)acked_seq);
	for (;;) {
		int x = sqlite3_step(st);
		if (x == SQLITE_DONE)
			break;
		if (x != SQLITE_ROW) {
			sqlite3_finalize(st);
			r = -EIO;
			goto rollback;
		}
		uint64_t sz = (uint64_t)sqlite3_column_int64(st, 0) + ROW_OVERHEAD;
		s.bytes = s.bytes >= sz ? s.bytes - sz : 0;
		s.depth = s.depth ? s.depth - 1 : 0;
		deleted++;
	}
	sqlite3_finalize(st);
	s.acked_seq = acked_seq;
	/* Room was made: report what was dropped while the outbox was full. */
	r = maybe_write_dropped(ob, &s, 0);
	if (r < 0)
		goto rollback;
	r = save_state(ob, &s);
	if (r < 0)
		goto rollback;
	r = exec(ob->db, "COMMIT");
	if (r < 0)
		goto rollback;
	committed(ob, false);
	ob->st = s;
	return deleted;
rollback:
	(void)exec(ob->db, "ROLLBACK");
	return r;
}

void cd_outbox_events_free(Corral__Event **events, size_t n)
{
	if (!events)
		return;
	for (size_t i = 0; i < n; i++)
		corral__event__free_unpacked(events[i], NULL);
	free(events);
}

int cd_outbox_recent(struct cd_outbox *ob, size_t limit, Corral__Event ***ret_events, size_t *ret_n)
{
	if (limit == 0 || limit > CD_OUTBOX_RECENT)
		limit = CD_OUTBOX_RECENT;
	Corral__Event **evs = calloc(limit, sizeof(*evs));
	if (!evs)
		return -ENOMEM;
	size_t n = 0;
	sqlite3_stmt *st = NULL;
	int r = 0;
	if (sqlite3_prepare_v2(ob->db, "SELECT body FROM recent ORDER BY seq DESC LIMIT ?", -1, &st,
	                       NULL) != SQLITE_OK) {
		free(evs);
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
	for (;;) {
		int s = sqlite3_step(st);
		if (s == SQLITE_DONE)
			break;
		if (s != SQLITE_ROW || n >= limit) {
			r = -EIO;
			break;
		}
		Corral__Event *ev =
		        corral__event__unpack(NULL, (size_t)sqlite3_column_bytes(st, 0),
		                              (const uint8_t *)sqlite3_column_blob(st, 0));
		if (!ev) {
			r = -EBADMSG;
			break;
		}
		evs[n++] = ev;
	}
	sqlite3_finalize(st);
	if (r < 0) {
		cd_outbox_events_free(evs, n);
		return r;
	}
	*ret_events = evs;
	*ret_n = n;
	return 0;
}
