/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corral-server's storage interface: one struct of function pointers that every backend fills
 * in. The SQLite backend (store_sqlite.c) is the only file with SQL; a PostgreSQL backend for
 * replicated servers implements the same table. Callers hold the server's store lock around
 * each call (or each begin..commit); backends need not be thread safe themselves.
 *
 * Listing calls return jansson objects in the shape the admin API sends (owned by the caller,
 * json_decref), so a backend decides how to query but not what the API looks like.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <corral.pb-c.h>
#include <jansson.h>

#define SRV_SHA256_LEN 32
#define SRV_ID_MAX     64

struct srv_store;
struct srv_console_store_ops;

/* Outcome of consuming an enrollment token (see srv_store_ops.enroll). */
enum srv_enroll_result {
	SRV_ENROLL_OK = 0,
	SRV_ENROLL_INVALID,   /* unknown id or wrong secret */
	SRV_ENROLL_EXPIRED,   /* past expires_at */
	SRV_ENROLL_EXHAUSTED, /* uses == max_uses */
};

struct srv_enroll_in {
	const char *token_id;
	const uint8_t *secret_sha256; /* SRV_SHA256_LEN bytes of the presented secret's hash */
	const char *device_id;
	const char *hostname;
	const char *agent_version;
	const char *cert_serial;
	int64_t cert_expires_at;
	int64_t now;
};

/* What the device endpoints need to know about an authenticated device. */
struct srv_device {
	int64_t rowid;
	char device_id[SRV_ID_MAX];
	char group[SRV_ID_MAX];
	bool revoked;
	uint64_t acked_seq;
};

struct srv_admin_token {
	char name[SRV_ID_MAX];
	char role[16]; /* "admin" or "viewer" */
	bool revoked;
	uint8_t secret_sha256[SRV_SHA256_LEN];
};

struct srv_event_filter {
	const char *device_id; /* NULL = any */
	int kind;              /* < 0 = any */
	int64_t since_ms;      /* event time >= this */
	unsigned limit;
};

/*
 * Called by a backend shared by several replicas when another process (or this one) changed
 * published state: `what` is a group name (a publication to it), NULL (a trust root), or ""
 * (notifications may have been missed: reload everything). Runs on the backend's own thread.
 */
typedef void (*srv_store_change_cb)(const char *what, void *userdata);

/* Called once per stored row by the load functions; a negative return stops and is returned. */
typedef int (*srv_store_blob_cb)(uint64_t version, const char *group, const uint8_t *blob,
                                 size_t len, void *userdata);

struct srv_store_ops {
	/* Closes the backend and frees `st`. Accepts NULL. */
	void (*close)(struct srv_store *st);

	/* Transactions around a change and its audit record. */
	int (*begin)(struct srv_store *st);
	int (*commit)(struct srv_store *st);
	void (*rollback)(struct srv_store *st);

	/* Appends to the admin audit log (append-only: no op updates or deletes it). */
	int (*audit_add)(struct srv_store *st, const char *actor, const char *action,
	                 const char *target, const char *detail, int64_t at_ms);
	int (*audit_list)(struct srv_store *st, unsigned limit, json_t **ret);

	/* Admin bearer tokens. get: -ENOENT when unknown. count: number of tokens. */
	int (*admin_token_add)(struct srv_store *st, const char *id, const char *name,
	                       const char *role, const uint8_t *secret_sha256, const char *by,
	                       int64_t now);
	int (*admin_token_get)(struct srv_store *st, const char *id, struct srv_admin_token *ret);
	int (*admin_token_count)(struct srv_store *st);

	/* Groups. create: -EEXIST when present. exists: 1 or 0. */
	int (*group_create)(struct srv_store *st, const char *name, const char *by, int64_t now);
	int (*group_exists)(struct srv_store *st, const char *name);
	int (*group_list)(struct srv_store *st, json_t **ret);

	/* Enrollment tokens (-ENOENT when the group does not exist). */
	int (*enroll_token_add)(struct srv_store *st, const char *id, const char *group,
	                        const uint8_t *secret_sha256, unsigned max_uses, int64_t expires_at,
	                        const char *by, int64_t now);
	/*
	 * Consumes one use of the token and creates the device, atomically (a token with one use
	 * left is consumed by exactly one caller). Returns 0 with *ret_result set (and *ret_group
	 * filled on SRV_ENROLL_OK), or -errno for storage failures.
	 */
	int (*enroll)(struct srv_store *st, const struct srv_enroll_in *in,
	              enum srv_enroll_result *ret_result, char ret_group[SRV_ID_MAX]);

	/* Devices. get: -ENOENT when unknown. */
	int (*device_get)(struct srv_store *st, const char *device_id, struct srv_device *ret);
	int (*device_set_cert)(struct srv_store *st, const char *device_id, const char *serial,
	                       int64_t expires_at);
	/* -ENOENT unknown, -EALREADY already revoked. */
	int (*device_revoke)(struct srv_store *st, const char *device_id, int64_t now);
	int (*device_list)(struct srv_store *st, const char *group, json_t **ret);
	int (*device_show)(struct srv_store *st, const char *device_id, json_t **ret);

	/*
	 * Stores a batch idempotently on (device, seq), applies heartbeats to the device's
	 * compliance state, updates last_seen and returns the highest contiguous stored seq.
	 */
	int (*report_store)(struct srv_store *st, const struct srv_device *dev,
	                    const Corral__ReportBatch *batch, int64_t now_ms, uint64_t *ret_acked);

	/*
	 * Records a publication of bundle `version` to `group`. Stores the envelope when the
	 * version is new; -EEXIST when the version exists with different bytes; -EALREADY when it
	 * is already published to this group.
	 */
	int (*publish)(struct srv_store *st, const char *group, uint64_t version,
	               const uint8_t *env, size_t len, int64_t issued_at, int64_t expires_at,
	               const char *by, int64_t now_ms);
	/* Highest version published to `group` (0 when none). */
	int (*group_head_version)(struct srv_store *st, const char *group, uint64_t *ret);
	/* Calls cb(version, group, envelope) for the newest publication of every group. */
	int (*group_heads)(struct srv_store *st, srv_store_blob_cb cb, void *userdata);
	int (*policy_history)(struct srv_store *st, const char *group, json_t **ret);
	int (*rollout_status)(struct srv_store *st, const char *group, json_t **ret);

	int (*events_query)(struct srv_store *st, const struct srv_event_filter *f, json_t **ret);

	/* Trust roots, stored after verification; load calls cb oldest first (group NULL). */
	int (*trust_root_add)(struct srv_store *st, uint64_t version, const uint8_t *env,
	                      size_t len, int64_t expires_at, const char *by, int64_t now);
	int (*trust_roots_load)(struct srv_store *st, srv_store_blob_cb cb, void *userdata);

	/*
	 * Retention and upkeep, called from the server's periodic timer: removes events whose
	 * time_ms < older_than_ms (0 = remove nothing, upkeep only), deleting at most max_rows rows
	 * per call (a backend may drop whole time partitions at once). Returns 1 when rows may
	 * remain (call again), 0 when done, -errno.
	 */
	int (*events_prune)(struct srv_store *st, int64_t older_than_ms, unsigned max_rows);

	/*
	 * Optional size-based retention (SQLite: one file on the server's own disk): removes the
	 * oldest events (by time) beyond the newest `keep` rows, at most max_rows per call.
	 * Returns 1 when rows may remain (call again), 0 when done, -errno. NULL on backends that
	 * bound storage by time partitions instead (PostgreSQL).
	 */
	int (*events_prune_excess)(struct srv_store *st, uint64_t keep, unsigned max_rows);

	/*
	 * Optional (NULL when a single server owns the database): starts delivering change
	 * notifications from other replicas to cb until close. -errno when it cannot start.
	 */
	int (*watch)(struct srv_store *st, srv_store_change_cb cb, void *userdata);

	/* The web console's aggregation and pagination calls (store_console.h). */
	const struct srv_console_store_ops *console;
};

/* Every backend's handle starts with this. */
struct srv_store {
	const struct srv_store_ops *ops;
};

/*
 * Opens the storage named by `url` — the one place that knows which backends exist:
 * NULL, "" or "sqlite" -> SQLite at DATA_DIR/server.db; "sqlite:PATH" -> SQLite at PATH;
 * "postgresql://..." or "postgres://..." -> PostgreSQL (libpq connection URI), when built with
 * CORRAL_WITH_POSTGRES (-EPROTONOSUPPORT otherwise). Creates or migrates the schema. On
 * failure returns -errno and writes a message to err; on success *ret is owned by the caller.
 */
int srv_store_open(const char *url, const char *data_dir, struct srv_store **ret, char *err,
                   size_t errlen);

/* True when `url` names a backend shared by several replicas (PostgreSQL). */
bool srv_store_url_is_shared(const char *url);

/*
 * Opens (creating, migrating) the PostgreSQL backend at the libpq URI `url`. Same contract as
 * srv_store_sqlite_open. Only built with CORRAL_WITH_POSTGRES.
 */
int srv_store_pg_open(const char *url, struct srv_store **ret, char *err, size_t errlen);

/*
 * Opens (creating, migrating) the SQLite backend at `path`. On failure returns -errno and
 * writes a message to err. On success *ret is owned by the caller (ret->ops->close).
 */
int srv_store_sqlite_open(const char *path, struct srv_store **ret, char *err, size_t errlen);

/* Renders one stored serialized Event as the admin API's JSON (NULL when it does not decode). */
json_t *srv_event_json(const uint8_t *buf, size_t len);
