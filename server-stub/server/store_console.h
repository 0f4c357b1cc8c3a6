/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The storage calls behind the web console's aggregation and pagination endpoints
 * (console_api.c): a second function table reached from srv_store_ops.console, so a backend
 * adds console support without touching the calls the device and admin APIs use. Same rules
 * as store.h: callers hold the store lock, results are jansson values owned by the caller.
 *
 * Device states (one per device, first match wins): revoked; not-seen (no report for
 * `not_seen_sec`); pending (enrolled, no heartbeat yet); failing (rejected a version newer than
 * the one it enforces); stale (its cached policy expired, enforcing last known good);
 * out-of-date (enforces an older version than its group's newest); degraded (a kernel feature
 * it requested is not enforced); compliant (everything else).
 */
#pragma once

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct srv_store;
struct sqlite3;

#define SRV_CONSOLE_PAGE_MAX 1000u

struct srv_console_device_filter {
	const char *search; /* substring of device id or hostname; NULL = any */
	const char *group;  /* NULL = any */
	const char *state;  /* one of the states above; NULL = any */
	int64_t now;        /* unix seconds */
	int64_t not_seen_sec;
	unsigned offset, limit;
};

struct srv_console_violation_filter {
	const char *device_id, *profile, *user, *session; /* NULL = any */
	int vkind;                                        /* ViolationKind; < 0 = any */
	int64_t since_ms, until_ms;                       /* until 0 = no bound */
	unsigned offset, limit;
};

struct srv_console_store_ops {
	/*
	 * Folds up to 20,000 newly stored events into the console's read model (a backlog takes
	 * several calls). Returns the number of queued events processed (0 = up to date).
	 */
	int (*sync)(struct srv_store *st);
	/*
	 * {"states": {state: n}, "groups": [{group, head_version, versions: [{version,
	 * devices}]}], "degraded": [device rows, at most 20], "degraded_total": n}.
	 */
	int (*overview)(struct srv_store *st, int64_t now, int64_t not_seen_sec, json_t **ret);
	/* {"total": n, "offset": o, "items": [device rows with "state"]}. */
	int (*devices)(struct srv_store *st, const struct srv_console_device_filter *f,
	               json_t **ret);
	/* Device row with "state", "reject", "violations"; -ENOENT when unknown. */
	int (*device)(struct srv_store *st, const char *device_id, int64_t now,
	              int64_t not_seen_sec, json_t **ret);
	/*
	 * The device's newest events (at most `limit`, newest first) as event JSON; with
	 * `session` only that session's events. -ENOENT when the device is unknown.
	 */
	int (*device_events)(struct srv_store *st, const char *device_id, const char *session,
	                     unsigned limit, json_t **ret);
	/* {"total": n, "offset": o, "items": [event JSON + device_id, hostname]}. */
	int (*violations)(struct srv_store *st, const struct srv_console_violation_filter *f,
	                  json_t **ret);
	/*
	 * Breakdown of violations in [since, until): {"series": [{t, n}] (one point per
	 * bucket_ms), "by_kind", "by_profile", "by_user": [{key, n}], "by_device" (all time,
	 * top 10): [{key, hostname, n}]}.
	 */
	int (*violation_stats)(struct srv_store *st, int64_t since_ms, int64_t until_ms,
	                       int64_t bucket_ms, json_t **ret);
	/* The stored envelope of bundle `version` (malloc'd into *ret_env); -ENOENT if none. */
	int (*bundle_get)(struct srv_store *st, uint64_t version, uint8_t **ret_env,
	                  size_t *ret_len);
	/* [{id, group, uses, max_uses, expires_at, created_at, created_by}] newest first. */
	int (*enroll_tokens)(struct srv_store *st, json_t **ret);
	/* {"events_total": n, "publish_to_applied_ms": {"buckets": [[le, cumulative]], "sum",
	 * "count"}} for /metrics (le in ms, last one +Inf as -1). */
	int (*metrics)(struct srv_store *st, json_t **ret);
	/* A counter that grows with every change stored (cheap; for /api/v1/changes). */
	int64_t (*change_counter)(struct srv_store *st);
};

/* The SQLite backend's table (store_sqlite_console.c). */
extern const struct srv_console_store_ops srv_store_sqlite_console_ops;

/* The SQLite backend's connection (store_sqlite.c), for store_sqlite_console.c only. */
struct sqlite3 *srv_store_sqlite_db(struct srv_store *st);

/*
 * Renders a stored serialized Event with every field it has (protobuf field names; enums as
 * names, bytes as hex). NULL when it does not decode. Owned by the caller.
 */
json_t *srv_console_event_json(const uint8_t *buf, size_t len);

/* Any protobuf message as JSON, the same way (json_null() for NULL). Owned by the caller. */
json_t *srv_console_message_json(const ProtobufCMessage *m);

/* ---- shared by the backends (store_console_common.c) ------------------------------------- */

/* Device states, in the order they are tested (first match wins; see the top of this file). */
enum srv_console_state {
	SRV_CONSOLE_REVOKED,
	SRV_CONSOLE_NOT_SEEN,
	SRV_CONSOLE_PENDING,
	SRV_CONSOLE_FAILING,
	SRV_CONSOLE_STALE,
	SRV_CONSOLE_OUT_OF_DATE,
	SRV_CONSOLE_DEGRADED,
	SRV_CONSOLE_COMPLIANT,
	SRV_CONSOLE_STATES,
};

/* The state's name as the API spells it ("out-of-date"); never NULL. */
const char *srv_console_state_name(enum srv_console_state state);

/*
 * The state from the tests' outcomes, in the fixed order. Each backend's SQL CASE (used for
 * filtering and sorting) states the same order; keep them in step with this function.
 */
enum srv_console_state srv_console_classify(bool revoked, bool not_seen, bool pending, bool failing,
                                            bool stale, bool out_of_date, bool degraded);

/* One device as both backends read it; strings are borrowed, NULL reads as "". */
struct srv_console_device_row {
	const char *device_id, *group, *hostname, *agent_version, *kernel_release, *cert_serial;
	const char *features_requested, *features_enforced,
	        *features_missing; /* JSON, JSON, text */
	const char *state, *reject_reason;
	bool revoked;
	int freshness;
	int64_t enrolled_at, cert_expires_at, revoked_at, acked_seq, last_seen, heartbeat_at;
	int64_t policy_version, trust_root_version, head_version, violations;
	int64_t reject_version, reject_ms; /* reject_version 0 = no rejection */
};

/* The console's device JSON for a row. NULL on allocation failure; owned by the caller. */
json_t *srv_console_device_json(const struct srv_console_device_row *row);

/*
 * The overview's tallies: groups with their head version and devices per enforced version,
 * and counts per state. Backends feed it groups and devices and add the "degraded" list.
 */
struct srv_console_overview;

/* A new, empty tally (*ret owned by the caller, freed with srv_console_overview_free). */
int srv_console_overview_new(struct srv_console_overview **ret);
void srv_console_overview_free(struct srv_console_overview *ov);

/* Declares a group and its newest published version (0 = none). -ENOMEM on failure. */
int srv_console_overview_group(struct srv_console_overview *ov, const char *group, int64_t head);

/*
 * Counts one device. The flags are the classifier's tests except out-of-date, which is
 * decided here from the group's head. -ENOMEM on failure.
 */
int srv_console_overview_device(struct srv_console_overview *ov, const char *group,
                                int64_t policy_version, bool revoked, bool not_seen, bool pending,
                                bool failing, bool stale, bool degraded);

/*
 * {"states", "groups", "degraded": [] (for the backend to fill), "degraded_total",
 * "devices_total"}. NULL on allocation failure; owned by the caller.
 */
json_t *srv_console_overview_json(const struct srv_console_overview *ov);

/* Name of a ViolationKind value ("VIOLATION_KIND_UNKNOWN" for unknown values). */
const char *srv_console_vkind_name(int kind);
