/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared internals of corral_server_core: the server object, the per-request context, reply
 * helpers and the long-poll registry. Not used outside server-stub/server/.
 *
 * Locking: `store_lock` serialises every storage call; `poll_lock` guards the long-poll
 * registry and the in-memory heads (newest bundle per group, trust roots). When both are
 * needed, store_lock is taken first.
 */
#pragma once

#include "ca.h"
#include "srv.h"
#include "store.h"

#include <microhttpd.h>
#include <pthread.h>

struct srv_group_head {
	struct srv_group_head *next;
	char group[SRV_ID_MAX];
	uint64_t version;
	uint8_t *envelope;
	size_t len;
};

struct srv_blob {
	uint64_t version;
	uint8_t *data;
	size_t len;
};

/* A suspended long-poll (embedded in its request). */
struct srv_waiter {
	struct srv_waiter *prev, *next;
	struct MHD_Connection *conn;
	char group[SRV_ID_MAX];
	char device_id[SRV_ID_MAX];
	uint64_t deadline_ms; /* monotonic */
	bool listed;
	bool revoked; /* set (under poll_lock) when an admin revoked the device meanwhile */
	bool woken;   /* resumed by a publish or trust root (counted in the fan-out figure) */
};

struct srv_rate;

struct srv {
	struct srv_config cfg;
	struct srv_ca *ca;
	struct srv_store *store;
	struct MHD_Daemon *mhd;
	uint16_t port;

	pthread_mutex_t store_lock;

	pthread_mutex_t poll_lock;
	struct srv_waiter waiters; /* list head (sentinel) */
	size_t n_waiters;
	struct srv_group_head *heads;
	struct srv_blob *roots;
	size_t n_roots;
	bool shutting_down;
	bool stopped;
	/* Fan-out of the last publish: from the wake-up to the last woken long-poll answered. */
	uint64_t fanout_start_ms;
	size_t fanout_pending;
	uint64_t fanout_last_ms;
	size_t fanout_last_n;

	pthread_t timer;
	bool timer_running;
	pthread_cond_t timer_cond;

	struct srv_rate *rate;
};

/* Per-request state (MHD's con_cls). */
struct srv_req {
	uint8_t *body;
	size_t len, cap, max;
	bool too_large;
	bool handled_once;
	/* admin endpoints: authenticated from the headers, before any body is read */
	bool admin_authed;
	bool is_admin;
	char actor[SRV_ID_MAX + 24];
	/* device endpoints */
	bool authed;
	struct srv_device dev;
	/* long-poll */
	bool poll_started;
	uint64_t have, root;
	struct srv_waiter waiter;
};

/* Replies (all return MHD_YES/MHD_NO from MHD_queue_response). */
enum MHD_Result srv_reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                          const void *body, size_t len);
/* Text error "REASON: detail" plus X-Corral-Reason. */
enum MHD_Result srv_reply_error(struct MHD_Connection *c, unsigned status, const char *reason,
                                const char *detail);
/* JSON (takes the reference of `j`). */
enum MHD_Result srv_reply_json(struct MHD_Connection *c, unsigned status, json_t *j);
/* JSON error {"error": reason, "detail": detail}. */
enum MHD_Result srv_reply_json_error(struct MHD_Connection *c, unsigned status, const char *reason,
                                     const char *detail);

/*
 * Authentication from the headers alone, on the first call for a request, so that nobody
 * unauthenticated can make the server buffer a body. Return 0 to go on, or -1 after queueing
 * the refusal into *ret.
 */
int srv_device_preauth(struct srv *s, struct MHD_Connection *c, struct srv_req *req,
                       const char *url, enum MHD_Result *ret);
int srv_admin_preauth(struct srv *s, struct MHD_Connection *c, struct srv_req *req,
                      enum MHD_Result *ret);

/* Device API (device.c). url starts with "/v1/". */
enum MHD_Result srv_device_handle(struct srv *s, struct MHD_Connection *c, struct srv_req *req,
                                  const char *method, const char *url);
/* Admin API (admin.c). url starts with "/api/v1/". */
enum MHD_Result srv_admin_handle(struct srv *s, struct MHD_Connection *c, struct srv_req *req,
                                 const char *method, const char *url);

/* Long-poll registry (server.c). Caller holds poll_lock for add; remove takes it. */
void srv_poll_add_locked(struct srv *s, struct srv_waiter *w);
void srv_poll_remove(struct srv *s, struct srv_waiter *w);
/* Installs a new head for `group` (copying the envelope) and wakes its waiters. */
int srv_poll_publish(struct srv *s, const char *group, uint64_t version, const uint8_t *env,
                     size_t len);
/* A long-poll woken by a publish has been dealt with (fan-out accounting). Holds poll_lock. */
void srv_poll_answered_locked(struct srv *s, struct srv_waiter *w);
/* Marks and wakes the long-polls of a device that was just revoked (answered 403). */
void srv_poll_revoke(struct srv *s, const char *device_id);
/* Appends a trust root (copying) and wakes every waiter. */
int srv_poll_trust_root(struct srv *s, uint64_t version, const uint8_t *env, size_t len);

/* Report rate limit: true when allowed; otherwise *ret_retry_after seconds. */
bool srv_rate_allow(struct srv *s, int64_t device_rowid, unsigned *ret_retry_after);

/* Random hex id of `bytes` bytes into out (2*bytes+1). -EIO on RNG failure. */
int srv_random_hex(size_t bytes, char *out);

/* Creates an "<id>.<secret>" token: writes the string and the secret's SHA-256. */
int srv_token_new(char id[17], char token[128], uint8_t sha[SRV_SHA256_LEN]);
/* Splits "<id>.<secret>" and hashes the secret. -EINVAL when malformed. */
int srv_token_parse(const char *token, char id[17], uint8_t sha[SRV_SHA256_LEN]);
