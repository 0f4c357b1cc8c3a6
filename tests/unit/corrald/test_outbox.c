// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the durable outbox: sequence numbers survive reopen, batches respect their
 * caps, acks delete only what was acknowledged, and a full outbox drops heartbeats, then
 * sessions, then violations, never policy events, and reports the drop with one `dropped`
 * event once there is room. Session start/exit events are committed lazily (synchronous=NORMAL
 * for their own transaction only) and made durable by cd_outbox_sync, any FULL commit, and
 * before every batch.
 */
#include "db.h"
#include "harness.h"
#include "outbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

static char *tmpdir;

static sqlite3 *open_db(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/corrald.db", tmpdir);
	sqlite3 *db = NULL;
	char err[256];
	int r = db_open(path, endpoint_migrations, 0, &db, err, sizeof(err));
	if (r < 0)
		printf("db_open: %s\n", err);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	return db;
}

static int setup(void)
{
	tmpdir = harness_mkdtemp("outbox");
	return tmpdir ? 0 : -1;
}

static int teardown(void)
{
	harness_rm_rf(tmpdir);
	free(tmpdir);
	return 0;
}

static void fresh(void)
{
	char path[4096];
	const char *sfx[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/corrald.db%s", tmpdir, sfx[i]);
		unlink(path);
	}
}

static int append_kind(struct cd_outbox *ob, Corral__EventKind kind, uint64_t *seq)
{
	Corral__Event ev = CORRAL__EVENT__INIT;
	Corral__AgentHealth h = CORRAL__AGENT_HEALTH__INIT;
	ev.kind = kind;
	h.state = (char *)"test";
	h.detail = (char *)"0123456789012345678901234567890123456789";
	ev.detail_case = CORRAL__EVENT__DETAIL_AGENT_HEALTH;
	ev.agent_health = &h;
	return cd_outbox_append(ob, &ev, seq);
}

static void test_seq_and_reopen(void)
{
	fresh();
	sqlite3 *db = open_db();
	struct cd_outbox *ob = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_outbox_open(db, 1 << 20, 1000, &ob), 0);
	uint64_t seq = 0;
	for (uint64_t i = 1; i <= 10; i++) {
		CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION, &seq), 0);
		CU_ASSERT_EQUAL(seq, i);
	}
	struct cd_outbox_stats s;
	cd_outbox_get_stats(ob, &s);
	CU_ASSERT_EQUAL(s.depth, 10);
	CU_ASSERT_EQUAL(s.next_seq, 11);
	CU_ASSERT_EQUAL(cd_outbox_ack(ob, 4), 4);
	CU_ASSERT_EQUAL(cd_outbox_ack(ob, 3), 0); /* stale ack: nothing */
	CU_ASSERT_EQUAL(cd_outbox_ack(ob, 11), -ERANGE);
	cd_outbox_free(ob);
	sqlite3_close_v2(db);

	db = open_db();
	CU_ASSERT_EQUAL_FATAL(cd_outbox_open(db, 1 << 20, 1000, &ob), 0);
	cd_outbox_get_stats(ob, &s);
	CU_ASSERT_EQUAL(s.depth, 6);
	CU_ASSERT_EQUAL(s.acked_seq, 4);
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT, &seq), 0);
	CU_ASSERT_EQUAL(seq, 11);
	/* acking everything leaves an empty outbox but keeps the counter */
	CU_ASSERT_EQUAL(cd_outbox_ack(ob, 11), 7);
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT, &seq), 0);
	CU_ASSERT_EQUAL(seq, 12);
	/* recent list keeps acknowledged events, newest first */
	Corral__Event **evs = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL_FATAL(cd_outbox_recent(ob, 5, &evs, &n), 0);
	CU_ASSERT_EQUAL(n, 5);
	CU_ASSERT_EQUAL(evs[0]->seq, 12);
	CU_ASSERT_EQUAL(evs[4]->seq, 8);
	cd_outbox_events_free(evs, n);
	cd_outbox_free(ob);
	sqlite3_close_v2(db);
}

static void test_batches(void)
{
	fresh();
	sqlite3 *db = open_db();
	struct cd_outbox *ob = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_outbox_open(db, 64 << 20, 100000, &ob), 0);
	for (int i = 0; i < 1200; i++)
		CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION, NULL), 0);
	Corral__ReportBatch *b = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_outbox_batch(ob, 0, CD_OUTBOX_BATCH_BYTES, &b), 0);
	CU_ASSERT_EQUAL(b->n_events, CD_OUTBOX_BATCH_EVENTS);
	CU_ASSERT_EQUAL(b->events[0]->seq, 1);
	CU_ASSERT_EQUAL(b->after_seq, 0);
	CU_ASSERT(corral__report_batch__get_packed_size(b) <= CD_OUTBOX_BATCH_BYTES);
	cd_outbox_batch_free(b);
	/* byte cap: small cap still yields at least one event */
	CU_ASSERT_EQUAL_FATAL(cd_outbox_batch(ob, 0, 10, &b), 0);
	CU_ASSERT_EQUAL(b->n_events, 1);
	cd_outbox_batch_free(b);
	CU_ASSERT_EQUAL_FATAL(cd_outbox_batch(ob, 0, 1000, &b), 0);
	CU_ASSERT(b->n_events > 1 && b->n_events < 20);
	CU_ASSERT(corral__report_batch__get_packed_size(b) <= 1000);
	cd_outbox_batch_free(b);
	CU_ASSERT_EQUAL(cd_outbox_ack(ob, 1000), 1000);
	CU_ASSERT_EQUAL_FATAL(cd_outbox_batch(ob, 0, CD_OUTBOX_BATCH_BYTES, &b), 0);
	CU_ASSERT_EQUAL(b->n_events, 200);
	CU_ASSERT_EQUAL(b->events[0]->seq, 1001);
	CU_ASSERT_EQUAL(b->after_seq, 1000);
	cd_outbox_batch_free(b);
	CU_ASSERT_EQUAL(cd_outbox_ack(ob, 1200), 200);
	CU_ASSERT_EQUAL_FATAL(cd_outbox_batch(ob, 0, CD_OUTBOX_BATCH_BYTES, &b), 0);
	CU_ASSERT_EQUAL(b->n_events, 0);
	cd_outbox_batch_free(b);
	cd_outbox_free(ob);
	sqlite3_close_v2(db);
}

static unsigned placeholders;

static void count_kinds(Corral__ReportBatch *b, unsigned *hb, unsigned *sess, unsigned *viol,
                        unsigned *keep, Corral__Dropped **dropped)
{
	*hb = *sess = *viol = *keep = 0;
	*dropped = NULL;
	placeholders = 0;
	for (size_t i = 0; i < b->n_events; i++) {
		const Corral__Event *e = b->events[i];
		if (e->kind == CORRAL__EVENT_KIND__EVENT_KIND_DROPPED && e->dropped &&
		    !e->dropped->heartbeats && !e->dropped->sessions && !e->dropped->violations &&
		    !e->dropped->other) {
			placeholders++;
			continue;
		}
		switch (cd_outbox_class_of(b->events[i]->kind)) {
		case CD_OUTBOX_CLASS_HEARTBEAT:
			(*hb)++;
			break;
		case CD_OUTBOX_CLASS_SESSION:
			(*sess)++;
			break;
		case CD_OUTBOX_CLASS_VIOLATION:
			(*viol)++;
			break;
		default:
			(*keep)++;
		}
		if (b->events[i]->kind == CORRAL__EVENT_KIND__EVENT_KIND_DROPPED)
			*dropped = b->events[i]->dropped;
	}
}

static void test_drop_order(void)
{
	fresh();
	sqlite3 *db = open_db();
	struct cd_outbox *ob = NULL;
	/* room for exactly 10 events */
	CU_ASSERT_EQUAL_FATAL(cd_outbox_open(db, 1 << 20, 10, &ob), 0);
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT, NULL), 0);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, NULL),
		                0);
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_POLICY_APPLIED, NULL), 0);
	for (int i = 0; i < 2; i++)
		CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION, NULL), 0);
	/* Full. A heartbeat evicts the oldest heartbeat. */
	uint64_t seq = 0;
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT, &seq), 0);
	CU_ASSERT_EQUAL(seq, 11);
	/* Six violations: 4 heartbeats go, then 2 sessions. */
	for (int i = 0; i < 6; i++)
		CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION, NULL), 0);
	struct cd_outbox_stats s;
	cd_outbox_get_stats(ob, &s);
	CU_ASSERT_EQUAL(s.depth, 10);
	CU_ASSERT_EQUAL(s.drop_heartbeats, 5);
	CU_ASSERT_EQUAL(s.drop_sessions, 2);
	CU_ASSERT_EQUAL(s.drop_violations, 0);
	/* A session event now can only drop itself (nothing lower is left but sessions). */
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_EXIT, NULL), 0);
	cd_outbox_get_stats(ob, &s);
	CU_ASSERT_EQUAL(s.drop_sessions, 3); /* the older session start made room */
	/* A heartbeat when none are left and sessions rank higher: it is dropped itself. */
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT, NULL), -ENOSPC);
	cd_outbox_get_stats(ob, &s);
	CU_ASSERT_EQUAL(s.drop_heartbeats, 6);
	/* Violations evict the last session, then the oldest violations. */
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION, NULL), 0);
	cd_outbox_get_stats(ob, &s);
	CU_ASSERT_EQUAL(s.drop_sessions, 4);
	CU_ASSERT_EQUAL(s.drop_violations, 2);
	/* Policy events rank above violations: a new one evicts the oldest violation. */
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_POLICY_REJECTED, NULL), 0);
	cd_outbox_get_stats(ob, &s);
	CU_ASSERT_EQUAL(s.drop_violations, 3);
	CU_ASSERT_EQUAL(s.drop_other, 0);

	/* What is left: 2 policy + 8 violations, in sequence order with gaps. */
	Corral__ReportBatch *b = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_outbox_batch(ob, 0, CD_OUTBOX_BATCH_BYTES, &b), 0);
	unsigned hb, sess, viol, keep;
	Corral__Dropped *d;
	count_kinds(b, &hb, &sess, &viol, &keep, &d);
	CU_ASSERT_EQUAL(hb, 0);
	CU_ASSERT_EQUAL(sess, 0);
	CU_ASSERT_EQUAL(viol, 8);
	CU_ASSERT_EQUAL(keep, 2);
	CU_ASSERT_PTR_NULL(d);
	/* Every evicted sequence number is a placeholder: the batch is 1..last without holes. */
	/* 5 heartbeats (the 6th was dropped before it got a number), 4 sessions, 3 violations */
	CU_ASSERT_EQUAL(placeholders, 5 + 4 + 3);
	for (size_t i = 0; i < b->n_events; i++)
		CU_ASSERT_EQUAL(b->events[i]->seq, i + 1);
	uint64_t last = b->events[b->n_events - 1]->seq;
	cd_outbox_batch_free(b);

	/* Ack makes room: the dropped event is written with the counts, once. */
	CU_ASSERT_EQUAL(cd_outbox_ack(ob, last), 10);
	cd_outbox_get_stats(ob, &s);
	CU_ASSERT_EQUAL(s.depth, 1);
	CU_ASSERT_EQUAL(s.drop_heartbeats + s.drop_sessions + s.drop_violations + s.drop_other, 0);
	CU_ASSERT_EQUAL_FATAL(cd_outbox_batch(ob, 0, CD_OUTBOX_BATCH_BYTES, &b), 0);
	count_kinds(b, &hb, &sess, &viol, &keep, &d);
	CU_ASSERT_EQUAL_FATAL(b->n_events, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(d->heartbeats, 6);
	CU_ASSERT_EQUAL(d->sessions, 4);
	CU_ASSERT_EQUAL(d->violations, 3);
	CU_ASSERT_EQUAL(d->other, 0);
	CU_ASSERT_EQUAL(b->events[0]->seq, last + 1);
	CU_ASSERT_EQUAL(b->after_seq, last);
	cd_outbox_batch_free(b);
	cd_outbox_free(ob);
	sqlite3_close_v2(db);
}

static void test_placeholder_batching(void)
{
	fresh();
	sqlite3 *db = open_db();
	struct cd_outbox *ob = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_outbox_open(db, 1 << 20, 3, &ob), 0);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT, NULL), 0);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION, NULL), 0);
	/* A tight cap cuts inside the run of placeholders and resumes after it. */
	Corral__ReportBatch *b = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_outbox_batch(ob, 2, CD_OUTBOX_BATCH_BYTES, &b), 0);
	CU_ASSERT_EQUAL_FATAL(b->n_events, 2);
	CU_ASSERT_EQUAL(b->events[0]->seq, 1);
	CU_ASSERT_EQUAL(b->events[1]->seq, 2);
	CU_ASSERT_EQUAL(b->events[1]->kind, CORRAL__EVENT_KIND__EVENT_KIND_DROPPED);
	cd_outbox_batch_free(b);
	CU_ASSERT_EQUAL(cd_outbox_ack(ob, 2), 0); /* placeholders delete no rows */
	CU_ASSERT_EQUAL_FATAL(cd_outbox_batch(ob, 2, CD_OUTBOX_BATCH_BYTES, &b), 0);
	CU_ASSERT_EQUAL_FATAL(b->n_events, 2);
	CU_ASSERT_EQUAL(b->events[0]->seq, 3);
	CU_ASSERT_EQUAL(b->events[1]->seq, 4);
	CU_ASSERT_EQUAL(b->events[1]->kind, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION);
	cd_outbox_batch_free(b);
	/* Room again: the dropped report follows with the counts. */
	CU_ASSERT_EQUAL(cd_outbox_ack(ob, 4), 1);
	CU_ASSERT_EQUAL_FATAL(cd_outbox_batch(ob, 10, CD_OUTBOX_BATCH_BYTES, &b), 0);
	CU_ASSERT_EQUAL_FATAL(b->n_events, 3);
	CU_ASSERT_EQUAL(b->events[2]->seq, 7);
	CU_ASSERT_EQUAL(b->events[2]->kind, CORRAL__EVENT_KIND__EVENT_KIND_DROPPED);
	CU_ASSERT_EQUAL(b->events[2]->dropped->heartbeats, 3);
	cd_outbox_batch_free(b);
	cd_outbox_free(ob);
	sqlite3_close_v2(db);
}

static void test_full_of_keep_class(void)
{
	fresh();
	sqlite3 *db = open_db();
	struct cd_outbox *ob = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_outbox_open(db, 1 << 20, 4, &ob), 0);
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_AGENT_HEALTH, NULL),
		                0);
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_POLICY_APPLIED, NULL),
	                -ENOSPC);
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION, NULL), -ENOSPC);
	struct cd_outbox_stats s;
	cd_outbox_get_stats(ob, &s);
	CU_ASSERT_EQUAL(s.drop_other, 1);
	CU_ASSERT_EQUAL(s.drop_violations, 1);
	CU_ASSERT_EQUAL(s.next_seq, 5); /* dropped events never took a sequence number */
	/* One ack of a single event makes room for the dropped report. */
	CU_ASSERT_EQUAL(cd_outbox_ack(ob, 1), 1);
	cd_outbox_get_stats(ob, &s);
	CU_ASSERT_EQUAL(s.next_seq, 6);
	CU_ASSERT_EQUAL(s.drop_other + s.drop_violations, 0);
	cd_outbox_free(ob);
	sqlite3_close_v2(db);
}

static void test_byte_bound_and_oversize(void)
{
	fresh();
	sqlite3 *db = open_db();
	struct cd_outbox *ob = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_outbox_open(db, 1000, 1000, &ob), 0);
	int ok = 0;
	for (int i = 0; i < 50; i++)
		if (append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION, NULL) == 0)
			ok++;
	CU_ASSERT_EQUAL(ok, 50); /* violations evict violations */
	struct cd_outbox_stats s;
	cd_outbox_get_stats(ob, &s);
	CU_ASSERT(s.bytes <= 1000);
	CU_ASSERT(s.depth < 50);
	CU_ASSERT_EQUAL(s.drop_violations, 50 - s.depth);
	/* An event larger than the cap */
	Corral__Event ev = CORRAL__EVENT__INIT;
	Corral__AgentHealth h = CORRAL__AGENT_HEALTH__INIT;
	char *big = malloc(CD_OUTBOX_EVENT_MAX + 1);
	CU_ASSERT_FATAL(big != NULL);
	memset(big, 'x', CD_OUTBOX_EVENT_MAX);
	big[CD_OUTBOX_EVENT_MAX] = '\0';
	h.detail = big;
	ev.kind = CORRAL__EVENT_KIND__EVENT_KIND_AGENT_HEALTH;
	ev.detail_case = CORRAL__EVENT__DETAIL_AGENT_HEALTH;
	ev.agent_health = &h;
	CU_ASSERT_EQUAL(cd_outbox_append(ob, &ev, NULL), -EMSGSIZE);
	/* Larger than the whole outbox */
	h.detail = big + CD_OUTBOX_EVENT_MAX - 2000;
	CU_ASSERT_EQUAL(cd_outbox_append(ob, &ev, NULL), -EMSGSIZE);
	free(big);
	cd_outbox_free(ob);
	sqlite3_close_v2(db);
}

static void test_io_errors(void)
{
	fresh();
	sqlite3 *db = open_db();
	struct cd_outbox *ob = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_outbox_open(db, 1 << 20, 1000, &ob), 0);
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION, NULL), 0);
	/* A dropped table makes every statement fail: errors surface as -EIO, state unchanged. */
	CU_ASSERT_EQUAL(db_exec(db, "DROP TABLE recent", NULL, 0), 0);
	struct cd_outbox_stats before, after;
	cd_outbox_get_stats(ob, &before);
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION, NULL), -EIO);
	cd_outbox_get_stats(ob, &after);
	CU_ASSERT_EQUAL(after.next_seq, before.next_seq);
	Corral__Event **evs = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL(cd_outbox_recent(ob, 5, &evs, &n), -EIO);
	CU_ASSERT_EQUAL(db_exec(db, "DROP TABLE outbox", NULL, 0), 0);
	Corral__ReportBatch *b = NULL;
	CU_ASSERT_EQUAL(cd_outbox_batch(ob, 0, 1000, &b), -EIO);
	CU_ASSERT_EQUAL(cd_outbox_ack(ob, 1), -EIO);
	cd_outbox_free(ob);
	CU_ASSERT_EQUAL(db_exec(db, "DROP TABLE outbox_state", NULL, 0), 0);
	CU_ASSERT_EQUAL(cd_outbox_open(db, 1 << 20, 1000, &ob), -EIO);
	sqlite3_close_v2(db);
}

static int synchronous_level(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int level = -1;
	if (sqlite3_prepare_v2(db, "PRAGMA synchronous", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		level = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return level;
}

static void test_lazy_sync(void)
{
	fresh();
	sqlite3 *db = open_db();
	struct cd_outbox *ob = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_outbox_open(db, 1 << 20, 1000, &ob), 0);
	CU_ASSERT_TRUE(cd_outbox_lazy_class(CD_OUTBOX_CLASS_SESSION));
	CU_ASSERT_FALSE(cd_outbox_lazy_class(CD_OUTBOX_CLASS_VIOLATION));
	CU_ASSERT_FALSE(cd_outbox_lazy_class(CD_OUTBOX_CLASS_HEARTBEAT));
	CU_ASSERT_FALSE(cd_outbox_lazy_class(CD_OUTBOX_CLASS_KEEP));
	CU_ASSERT_EQUAL(synchronous_level(db), 2); /* FULL, from db_open */
	CU_ASSERT_FALSE(cd_outbox_unsynced(ob));
	CU_ASSERT_EQUAL(cd_outbox_sync(ob), 0); /* nothing to do */

	uint64_t seq = 0;
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, &seq), 0);
	CU_ASSERT_EQUAL(seq, 1);
	CU_ASSERT_TRUE(cd_outbox_unsynced(ob));
	/* the shared connection is FULL again for everybody else's commits */
	CU_ASSERT_EQUAL(synchronous_level(db), 2);
	/* committed: another connection (a restarted corrald after kill -9) sees it */
	{
		sqlite3 *db2 = open_db();
		struct cd_outbox *ob2 = NULL;
		CU_ASSERT_EQUAL_FATAL(cd_outbox_open(db2, 1 << 20, 1000, &ob2), 0);
		struct cd_outbox_stats st;
		cd_outbox_get_stats(ob2, &st);
		CU_ASSERT_EQUAL(st.next_seq, 2);
		CU_ASSERT_EQUAL(st.depth, 1);
		cd_outbox_free(ob2);
		sqlite3_close_v2(db2);
	}
	CU_ASSERT_EQUAL(cd_outbox_sync(ob), 0);
	CU_ASSERT_FALSE(cd_outbox_unsynced(ob));

	/* a FULL commit (violation) syncs earlier lazy frames too */
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_EXIT, NULL), 0);
	CU_ASSERT_TRUE(cd_outbox_unsynced(ob));
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION, NULL), 0);
	CU_ASSERT_FALSE(cd_outbox_unsynced(ob));

	/* nothing is batched for upload before it is on disk */
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, NULL), 0);
	CU_ASSERT_TRUE(cd_outbox_unsynced(ob));
	Corral__ReportBatch *b = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_outbox_batch(ob, 0, 1 << 20, &b), 0);
	CU_ASSERT_EQUAL(b->n_events, 4);
	CU_ASSERT_FALSE(cd_outbox_unsynced(ob));
	cd_outbox_batch_free(b);

	/* an ack commits FULL */
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_EXIT, NULL), 0);
	CU_ASSERT_TRUE(cd_outbox_unsynced(ob));
	CU_ASSERT_EQUAL(cd_outbox_ack(ob, 2), 2);
	CU_ASSERT_FALSE(cd_outbox_unsynced(ob));
	cd_outbox_free(ob);
	sqlite3_close_v2(db);
}

/* Denies `PRAGMA synchronous` (any argument, or only the one in deny_arg). */
static const char *deny_arg;
static int deny_synchronous(void *ud, int action, const char *a, const char *b, const char *c,
                            const char *d)
{
	(void)ud;
	(void)c;
	(void)d;
	if (action == SQLITE_PRAGMA && a && strcmp(a, "synchronous") == 0 && b &&
	    (!deny_arg || strcmp(b, deny_arg) == 0))
		return SQLITE_DENY;
	return SQLITE_OK;
}

static void test_lazy_errors(void)
{
	fresh();
	sqlite3 *db = open_db();
	struct cd_outbox *ob = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_outbox_open(db, 1 << 20, 1000, &ob), 0);
	struct cd_outbox_stats before, after;

	/* cannot switch to NORMAL: refused, nothing written */
	deny_arg = NULL;
	sqlite3_set_authorizer(db, deny_synchronous, NULL);
	cd_outbox_get_stats(ob, &before);
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, NULL), -EIO);
	cd_outbox_get_stats(ob, &after);
	CU_ASSERT_EQUAL(after.next_seq, before.next_seq);
	/* FULL classes do not touch the setting */
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION, NULL), 0);

	/* cannot switch back to FULL: reported as a failure */
	deny_arg = "FULL";
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, NULL), -EIO);
	sqlite3_set_authorizer(db, NULL, NULL);
	CU_ASSERT_EQUAL(db_exec(db, "PRAGMA synchronous = FULL", NULL, 0), 0);

	/* no WAL file handle to sync (rollback-journal mode): -EIO, batch refused too */
	CU_ASSERT_EQUAL(append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_EXIT, NULL), 0);
	CU_ASSERT_TRUE(cd_outbox_unsynced(ob));
	CU_ASSERT_EQUAL(db_exec(db, "PRAGMA journal_mode = DELETE", NULL, 0), 0);
	CU_ASSERT_EQUAL(cd_outbox_sync(ob), -EIO);
	CU_ASSERT_TRUE(cd_outbox_unsynced(ob));
	Corral__ReportBatch *b = NULL;
	CU_ASSERT_EQUAL(cd_outbox_batch(ob, 0, 1 << 20, &b), -EIO);
	cd_outbox_free(ob);
	sqlite3_close_v2(db);
}

static int64_t recent_rows(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;
	if (sqlite3_prepare_v2(db, "SELECT count(*), min(seq) FROM recent", -1, &st, NULL) ==
	            SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* The recent list is trimmed in steps: never fewer than CD_OUTBOX_RECENT rows once that many
 * were written, never more than CD_OUTBOX_RECENT + CD_OUTBOX_RECENT_STEP - 1. */
static void test_recent_bound(void)
{
	fresh();
	sqlite3 *db = open_db();
	struct cd_outbox *ob = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_outbox_open(db, 8 << 20, 10000, &ob), 0);
	uint64_t seq = 0;
	int64_t lo = INT64_MAX, hi = 0;
	for (unsigned i = 0; i < CD_OUTBOX_RECENT + 3 * CD_OUTBOX_RECENT_STEP; i++) {
		CU_ASSERT_EQUAL_FATAL(
		        append_kind(ob, CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT, &seq), 0);
		int64_t n = recent_rows(db);
		if (seq >= CD_OUTBOX_RECENT) {
			lo = n < lo ? n : lo;
			hi = n > hi ? n : hi;
		}
	}
	CU_ASSERT_EQUAL(lo, CD_OUTBOX_RECENT);
	CU_ASSERT_EQUAL(hi, CD_OUTBOX_RECENT + CD_OUTBOX_RECENT_STEP - 1);
	Corral__Event **evs = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL_FATAL(cd_outbox_recent(ob, 3, &evs, &n), 0);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(evs[0]->seq, seq);
	cd_outbox_events_free(evs, n);
	cd_outbox_free(ob);
	sqlite3_close_v2(db);
}

static const struct harness_test outbox_tests[] = {
        {"recent_bound", test_recent_bound},
        {"seq_and_reopen", test_seq_and_reopen},
        {"batches", test_batches},
        {"drop_order", test_drop_order},
        {"placeholder_batching", test_placeholder_batching},
        {"full_of_keep_class", test_full_of_keep_class},
        {"byte_bound_and_oversize", test_byte_bound_and_oversize},
        {"io_errors", test_io_errors},
        {"lazy_sync", test_lazy_sync},
        {"lazy_errors", test_lazy_errors},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"outbox", setup, teardown, outbox_tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
