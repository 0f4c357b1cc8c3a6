// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the durable outbox: sequence numbers survive reopen, batches respect their
 * caps, acks delete only what was acknowledged, and a full outbox drops heartbeats, then
 * sessions, then violations, never policy events, and reports the drop with one `dropped`
 * event once there is room.
 */
#include "db.h"
#include "harness.h"
#include "outbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

static void count_kinds(Corral__ReportBatch *b, unsigned *hb, unsigned *sess, unsigned *viol,
                        unsigned *keep, Corral__Dropped **dropped)
{
	*hb = *sess = *viol = *keep = 0;
	*dropped = NULL;
	for (size_t i = 0; i < b->n_events; i++) {
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
	for (size_t i = 1; i < b->n_events; i++)
		CU_ASSERT(b->events[i]->seq > b->events[i - 1]->seq);
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

static const struct harness_test outbox_tests[] = {
        {"seq_and_reopen", test_seq_and_reopen},
        {"batches", test_batches},
        {"drop_order", test_drop_order},
        {"full_of_keep_class", test_full_of_keep_class},
        {"byte_bound_and_oversize", test_byte_bound_and_oversize},
        {"io_errors", test_io_errors},
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
