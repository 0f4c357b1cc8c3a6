/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The durable event outbox of corrald. Every event is written here, with its per-device
 * sequence number, in its own SQLite transaction before anything else happens with it; the
 * uploader reads batches in sequence order and deletes only what the server acknowledged.
 *
 * The outbox is bounded (bytes and events). When an event does not fit, older events are
 * evicted in this order: heartbeats, then session events, then (only to make room for another
 * violation or a policy/health event) the oldest violations. Policy, trust, health and
 * `dropped` events are never evicted; when only those remain, a new event is itself dropped.
 * Evictions are counted and reported by one EVENT_KIND_DROPPED event as soon as there is room for
 * it. Evicted sequence numbers are uploaded as
 * placeholder DROPPED events with zero counts, so the server holds 1..N without holes and its
 * contiguous acknowledgement advances (ReportBatch.after_seq says the same to servers that
 * read it).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <corral.pb-c.h>

struct sqlite3;
struct cd_outbox; /* opaque */

/* Batch caps of one ReportBatch (the server refuses larger ones). */
#define CD_OUTBOX_BATCH_EVENTS 500u
#define CD_OUTBOX_BATCH_BYTES  ((size_t)1024 * 1024)
/* One serialized event may not exceed this (violations carry paths, not files). */
#define CD_OUTBOX_EVENT_MAX ((size_t)64 * 1024)
/* Rows kept for `corral events` after they were acknowledged: at least CD_OUTBOX_RECENT, at
 * most CD_OUTBOX_RECENT + CD_OUTBOX_RECENT_STEP - 1 (trimmed in steps). */
#define CD_OUTBOX_RECENT      200u
#define CD_OUTBOX_RECENT_STEP 32u

/* Drop classes, lowest dropped first. */
enum cd_outbox_class {
	CD_OUTBOX_CLASS_HEARTBEAT = 0,
	CD_OUTBOX_CLASS_SESSION = 1,
	CD_OUTBOX_CLASS_VIOLATION = 2,
	CD_OUTBOX_CLASS_KEEP = 3,
};

struct cd_outbox_stats {
	uint64_t depth;     /* events waiting for acknowledgement */
	uint64_t bytes;     /* accounted bytes of those */
	uint64_t next_seq;  /* sequence number the next event gets */
	uint64_t acked_seq; /* highest sequence acknowledged by the server */
	uint64_t drop_heartbeats, drop_sessions, drop_violations, drop_other; /* not yet reported */
};

/*
 * Opens the outbox on a database already migrated by db_open (borrowed; must outlive the
 * outbox). Returns 0 or -EIO/-ENOMEM.
 */
int cd_outbox_open(struct sqlite3 *db, uint64_t max_bytes, uint64_t max_events,
                   struct cd_outbox **ret_outbox);
void cd_outbox_free(struct cd_outbox *ob);

/* The drop class of an event kind. */
enum cd_outbox_class cd_outbox_class_of(Corral__EventKind kind);

/*
 * Whether events of this class are committed lazily: synchronous=NORMAL instead of FULL, i.e.
 * in the WAL (safe from a kill -9 of corrald at once) but fdatasync'ed later, by
 * cd_outbox_sync, the next FULL commit, or before any upload. True for session start/exit
 * only (docs/endpoint.md, "Durable reporting").
 */
bool cd_outbox_lazy_class(enum cd_outbox_class cls);

/* Whether a lazy commit is not yet on disk (the daemon then schedules cd_outbox_sync). */
bool cd_outbox_unsynced(const struct cd_outbox *ob);

/*
 * Makes every committed event durable against an OS crash or power loss: fdatasyncs the WAL
 * through SQLite's own file handle, as a FULL commit does. No-op when nothing is unsynced.
 * Returns 0 or -EIO.
 */
int cd_outbox_sync(struct cd_outbox *ob);

/*
 * Writes `ev` (one transaction), durably before returning except for lazy classes
 * (cd_outbox_lazy_class), which are durable against a crash of the process at once and
 * against an OS crash after cd_outbox_sync. Assigns ev->seq and, when 0, ev->time_ms. Evicts
 * older events per the drop order when needed. Returns 0 with *ret_seq (may be NULL) set, -ENOSPC
 * when the event itself had to be dropped (counted, reported later), -EMSGSIZE when it is
 * larger than CD_OUTBOX_EVENT_MAX, or -EIO.
 */
int cd_outbox_append(struct cd_outbox *ob, Corral__Event *ev, uint64_t *ret_seq);

/*
 * Builds the next ReportBatch (after cd_outbox_sync: only durable events leave the device;
 * -EIO when that fails): the oldest unacknowledged events in sequence order, at most
 * `max_events` and about `max_bytes` (at least one event), evicted sequence numbers filled
 * with placeholders. Sets after_seq. *ret_batch is owned
 * by the caller (cd_outbox_batch_free); n_events is 0 when there is nothing to send.
 */
int cd_outbox_batch(struct cd_outbox *ob, size_t max_events, size_t max_bytes,
                    Corral__ReportBatch **ret_batch);
void cd_outbox_batch_free(Corral__ReportBatch *batch);

/*
 * Records the server's acknowledgement: deletes every event with seq <= acked_seq (they stay
 * visible in the recent list), then writes the pending `dropped` event if there is room.
 * An ack beyond what was ever assigned is refused with -ERANGE. Returns the number deleted.
 */
int cd_outbox_ack(struct cd_outbox *ob, uint64_t acked_seq);

/* Current counters. */
void cd_outbox_get_stats(const struct cd_outbox *ob, struct cd_outbox_stats *ret);

/*
 * The `limit` most recent events (pending and acknowledged), newest first. *ret_events is an
 * array of unpacked events owned by the caller (cd_outbox_events_free).
 */
int cd_outbox_recent(struct cd_outbox *ob, size_t limit, Corral__Event ***ret_events,
                     size_t *ret_n);
void cd_outbox_events_free(Corral__Event **events, size_t n);
