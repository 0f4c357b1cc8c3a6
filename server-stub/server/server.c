// SPDX-License-Identifier: Apache-2.0
/*
 * corral-server's core: the libmicrohttpd HTTPS listener (GnuTLS, epoll, suspend/resume), the
 * request lifecycle (capped body accumulation, routing), the long-poll registry with its
 * timeout timer, the per-device report rate limiter, and start-up/shutdown ordering.
 *
 * No thread per connection: MHD runs `threads` epoll loops; a long-poll that has nothing to
 * return is suspended (MHD_suspend_connection) and sits in a list until a publish or the timer
 * resumes it, so ten thousand idle devices cost a socket and a few hundred bytes each.
 */
#include "srv_internal.h"

#include "console_internal.h"

#include "cleanup.h"
#include "trust.h"
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define TIMER_TICK_MS 50
#define RATE_BUCKETS  4096
/* Event retention and storage upkeep (events_prune) from the timer thread. */
#define PRUNE_EVERY_MS   60000
#define PRUNE_BATCH_ROWS 5000u
#define PRUNE_MAX_ROUNDS 20

/* ---- small helpers ---------------------------------------------------------------------- */

int srv_random_hex(size_t bytes, char *out)
{
	uint8_t raw[64];
	if (bytes > sizeof(raw) || RAND_bytes(raw, (int)bytes) != 1)
		return -EIO;
	util_hex(raw, bytes, out);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

int srv_token_new(char id[17], char token[128], uint8_t sha[SRV_SHA256_LEN])
{
	char secret[65];
	int r = srv_random_hex(8, id);
	if (r < 0 || (r = srv_random_hex(32, secret)) < 0)
		return r;
	snprintf(token, 128, "%s.%s", id, secret);
	SHA256((const uint8_t *)secret, strlen(secret), sha);
	OPENSSL_cleanse(secret, sizeof(secret));
	return 0;
}

int srv_token_parse(const char *token, char id[17], uint8_t sha[SRV_SHA256_LEN])
{
	const char *dot = token ? strchr(token, '.') : NULL;
	if (!dot || dot - token != 16 || strlen(dot + 1) == 0 || strlen(dot + 1) > 128)
		return -EINVAL;
	for (const char *p = token; p < dot; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return -EINVAL;
	memcpy(id, token, 16);
	id[16] = '\0';
	SHA256((const uint8_t *)dot + 1, strlen(dot + 1), sha);
	return 0;
}

/* ---- replies ------------------------------------------------------------------------------- */

enum MHD_Result srv_reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                          const void *body, size_t len)
{
	struct MHD_Response *resp =
	        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	enum MHD_Result r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return r;
}

enum MHD_Result srv_reply_error(struct MHD_Connection *c, unsigned status, const char *reason,
                                const char *detail)
{
	char body[512];
	int n = snprintf(body, sizeof(body), "%s: %s\n", reason, detail ? detail : reason);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)sizeof(body) - 1;
	struct MHD_Response *resp =
	        MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
	MHD_add_response_header(resp, "X-Corral-Reason", reason);
	enum MHD_Result r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return r;
}

enum MHD_Result srv_reply_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
	if (!j)
		return srv_reply_json_error(c, 500, "internal", "out of memory");
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return MHD_NO;
	enum MHD_Result r = srv_reply(c, status, "application/json", text, strlen(text));
	free(text);
	return r;
}

enum MHD_Result srv_reply_json_error(struct MHD_Connection *c, unsigned status, const char *reason,
                                     const char *detail)
{
	json_t *j = json_pack("{ss ss}", "error", reason, "detail", detail ? detail : reason);
	if (!j)
		return MHD_NO;
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return MHD_NO;
	struct MHD_Response *resp =
	        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, "X-Corral-Reason", reason);
	enum MHD_Result r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return r;
}

/* ---- long-poll registry ---------------------------------------------------------------------- */

void srv_poll_add_locked(struct srv *s, struct srv_waiter *w)
{
	w->next = s->waiters.next;
	w->prev = &s->waiters;
	s->waiters.next->prev = w;
	s->waiters.next = w;
	w->listed = true;
	s->n_waiters++;
}

static void poll_unlink_locked(struct srv *s, struct srv_waiter *w)
{
	if (!w->listed)
		return;
	w->prev->next = w->next;
	w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->listed = false;
	s->n_waiters--;
}

void srv_poll_remove(struct srv *s, struct srv_waiter *w)
{
	pthread_mutex_lock(&s->poll_lock);
	poll_unlink_locked(s, w);
	pthread_mutex_unlock(&s->poll_lock);
}

/* Resumes every waiter matching `group` (NULL = all). Caller holds poll_lock. Unlinking before
 * resuming means a waiter is resumed exactly once. */
static void wake_locked(struct srv *s, const char *group)
{
	size_t n = 0;
	struct srv_waiter *w = s->waiters.next;
	while (w != &s->waiters) {
		struct srv_waiter *next = w->next;
		if (!group || strcmp(w->group, group) == 0) {
			poll_unlink_locked(s, w);
			w->woken = true;
			n++;
			MHD_resume_connection(w->conn);
		}
		w = next;
	}
	if (n && s->fanout_pending == 0) {
		s->fanout_start_ms = util_monotonic_ms();
		s->fanout_last_n = 0;
	}
	s->fanout_pending += n;
	s->fanout_last_n += n;
}

void srv_poll_answered_locked(struct srv *s, struct srv_waiter *w)
{
	if (w->woken && s->fanout_pending > 0) {
		w->woken = false;
		if (--s->fanout_pending == 0)
			s->fanout_last_ms = util_monotonic_ms() - s->fanout_start_ms;
	}
}

int srv_poll_publish(struct srv *s, const char *group, uint64_t version, const uint8_t *env,
                     size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, env, len);
	pthread_mutex_lock(&s->poll_lock);
	struct srv_group_head *h = s->heads;
	while (h && strcmp(h->group, group) != 0)
		h = h->next;
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h) {
			pthread_mutex_unlock(&s->poll_lock);
			free(copy);
			return -ENOMEM;
		}
		snprintf(h->group, sizeof(h->group), "%s", group);
		h->next = s->heads;
		s->heads = h;
	}
	if (version > h->version) {
		free(h->envelope);
		h->envelope = TAKE_PTR(copy);
		h->len = len;
		h->version = version;
	}
	wake_locked(s, group);
	pthread_mutex_unlock(&s->poll_lock);
	free(copy);
	return 0;
}

void srv_poll_revoke(struct srv *s, const char *device_id)
{
	pthread_mutex_lock(&s->poll_lock);
	struct srv_waiter *w = s->waiters.next;
	while (w != &s->waiters) {
		struct srv_waiter *next = w->next;
		if (strcmp(w->device_id, device_id) == 0) {
			w->revoked = true;
			poll_unlink_locked(s, w);
			MHD_resume_connection(w->conn);
		}
		w = next;
	}
	pthread_mutex_unlock(&s->poll_lock);
}

int srv_poll_trust_root(struct srv *s, uint64_t version, const uint8_t *env, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, env, len);
	pthread_mutex_lock(&s->poll_lock);
	struct srv_blob *n = realloc(s->roots, (s->n_roots + 1) * sizeof(*n));
	if (!n) {
		pthread_mutex_unlock(&s->poll_lock);
		free(copy);
		return -ENOMEM;
	}
	s->roots = n;
	s->roots[s->n_roots++] = (struct srv_blob){version, copy, len};
	wake_locked(s, NULL);
	pthread_mutex_unlock(&s->poll_lock);
	return 0;
}

/*
 * Retention and upkeep: a few bounded batches per round, taking the store lock per batch so
 * requests interleave. Called without poll_lock (store_lock comes first in the lock order).
 */
static void prune_events(struct srv *s)
{
	if (!s->store->ops->events_prune)
		return;
	int64_t cutoff = s->cfg.event_retention_sec > 0
	                         ? util_now_ms() - s->cfg.event_retention_sec * 1000
	                         : 0;
	for (int i = 0; i < PRUNE_MAX_ROUNDS; i++) {
		pthread_mutex_lock(&s->store_lock);
		int r = s->store->ops->events_prune(s->store, cutoff, PRUNE_BATCH_ROWS);
		pthread_mutex_unlock(&s->store_lock);
		if (r <= 0)
			break;
	}
	/* Size bound after the age bound: the oldest events go first either way. */
	if (!s->cfg.event_retention_events || !s->store->ops->events_prune_excess)
		return;
	for (int i = 0; i < PRUNE_MAX_ROUNDS; i++) {
		pthread_mutex_lock(&s->store_lock);
		int r = s->store->ops->events_prune_excess(s->store, s->cfg.event_retention_events,
		                                           PRUNE_BATCH_ROWS);
		pthread_mutex_unlock(&s->store_lock);
		if (r <= 0)
			break;
	}
}

/* Resumes long-polls whose wait has run out; they answer 304 when called again. */
static void *timer_main(void *arg)
{
	struct srv *s = arg;
	uint64_t next_prune = util_monotonic_ms() + PRUNE_EVERY_MS;
	pthread_mutex_lock(&s->poll_lock);
	while (!s->stopped) {
		if (util_monotonic_ms() >= next_prune) {
			pthread_mutex_unlock(&s->poll_lock);
			prune_events(s);
			next_prune = util_monotonic_ms() + PRUNE_EVERY_MS;
			pthread_mutex_lock(&s->poll_lock);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += TIMER_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->timer_cond, &s->poll_lock, &ts);
		uint64_t now = util_monotonic_ms();
		struct srv_waiter *w = s->waiters.next;
		while (w != &s->waiters) {
			struct srv_waiter *next = w->next;
			if (w->deadline_ms <= now) {
				poll_unlink_locked(s, w);
				MHD_resume_connection(w->conn);
			}
			w = next;
		}
	}
	pthread_mutex_unlock(&s->poll_lock);
	return NULL;
}

/* ---- rate limit ---------------------------------------------------------------------------- */

struct rate_entry {
	struct rate_entry *next;
	int64_t rowid;
	double tokens;
	uint64_t last_ms;
};

struct srv_rate {
	pthread_mutex_t lock;
	struct rate_entry *buckets[RATE_BUCKETS];
};

bool srv_rate_allow(struct srv *s, int64_t rowid, unsigned *ret_retry_after)
{
	struct srv_rate *rt = s->rate;
	uint64_t now = util_monotonic_ms();
	double rate = s->cfg.report_rate, burst = s->cfg.report_burst;
	bool ok;
	pthread_mutex_lock(&rt->lock);
	struct rate_entry **slot = &rt->buckets[(uint64_t)rowid % RATE_BUCKETS];
	struct rate_entry *e = *slot;
	while (e && e->rowid != rowid)
		e = e->next;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			pthread_mutex_unlock(&rt->lock);
			*ret_retry_after = 1;
			return false;
		}
		e->rowid = rowid;
		e->tokens = burst;
		e->last_ms = now;
		e->next = *slot;
		*slot = e;
	}
	e->tokens += (double)(now - e->last_ms) * rate / 1000.0;
	if (e->tokens > burst)
		e->tokens = burst;
	e->last_ms = now;
	ok = e->tokens >= 1.0;
	if (ok)
		e->tokens -= 1.0;
	else {
		double wait = rate > 0 ? (1.0 - e->tokens) / rate : 60;
		*ret_retry_after = (unsigned)wait + 1;
	}
	pthread_mutex_unlock(&rt->lock);
	return ok;
}

static void rate_free(struct srv_rate *rt)
{
	if (!rt)
		return;
	for (size_t i = 0; i < RATE_BUCKETS; i++)
		for (struct rate_entry *e = rt->buckets[i], *n; e; e = n) {
			n = e->next;
			free(e);
		}
	pthread_mutex_destroy(&rt->lock);
	free(rt);
}

/* ---- request lifecycle ------------------------------------------------------------------- */

static size_t body_max_for(const struct srv *s, const char *url)
{
	if (strcmp(url, "/v1/report") == 0)
		return s->cfg.report_body_max;
	if (util_startswith(url, "/v1/"))
		return SRV_ENROLL_BODY_MAX;
	/* Admin uploads of signed envelopes may be as large as the trust layer accepts; the
	 * admin handler applies the JSON cap to everything else. */
	return TRUST_ENVELOPE_MAX;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
	struct srv *s = cls;
	struct srv_req *req = *con_cls;
	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*con_cls = req;
		req->max = body_max_for(s, url);
		/* Refuse an announced oversize body before a single byte of it is read. */
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
		uint64_t announced = 0;
		if (cl && (util_parse_u64(cl, &announced) < 0 || announced > req->max)) {
			req->too_large = true;
			req->handled_once = true;
			return srv_reply_error(c, 413, "too-large", "request body over the limit");
		}
		/* Authenticate from the headers before a single body byte is buffered. */
		enum MHD_Result ret = MHD_YES;
		int r = 0;
		if (util_startswith(url, "/v1/"))
			r = srv_device_preauth(s, c, req, url, &ret);
		else if (util_startswith(url, "/api/v1/"))
			r = srv_admin_preauth(s, c, req, &ret);
		if (r < 0) {
			req->handled_once = true;
			return ret;
		}
		return MHD_YES;
	}
	if (req->handled_once) {
		/* Already answered (refused early): drop whatever body still arrives. */
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!req->too_large) {
			size_t n = *upload_size;
			if (n > req->max - req->len) {
				req->too_large = true;
				free(req->body);
				req->body = NULL;
				req->len = req->cap = 0;
			} else {
				if (req->len + n > req->cap) {
					size_t ncap = req->cap ? req->cap : 4096;
					while (ncap < req->len + n)
						ncap *= 2;
					if (ncap > req->max)
						ncap = req->max;
					uint8_t *nb = realloc(req->body, ncap);
					if (!nb)
						return MHD_NO;
					req->body = nb;
					req->cap = ncap;
				}
				memcpy(req->body + req->len, upload_data, n);
				req->len += n;
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (req->too_large) {
		req->handled_once = true;
		return srv_reply_error(c, 413, "too-large", "request body over the limit");
	}
	/* Web console (console.c): its assets, /api/v1/console/, /api/v1/changes, /metrics. */
	if (srv_console_owns(url))
		return srv_console_dispatch(s, c, req, method, url);
	if (util_startswith(url, "/v1/"))
		return srv_device_handle(s, c, req, method, url);
	if (util_startswith(url, "/api/v1/"))
		return srv_admin_handle(s, c, req, method, url);
	return srv_reply_error(c, 404, "not-found", url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct srv *s = cls;
	struct srv_req *req = *con_cls;
	if (!req)
		return;
	/* A waiter is listed only while its connection is suspended, and a suspended connection
	 * does not complete (shutdown resumes every one first); the check keeps poll_lock out of
	 * libmicrohttpd's completion path. */
	if (req->waiter.listed)
		srv_poll_remove(s, &req->waiter);
	free(req->body);
	free(req);
	*con_cls = NULL;
}

/* ---- start and stop ---------------------------------------------------------------------- */

static int load_head(uint64_t version, const char *group, const uint8_t *blob, size_t len,
                     void *userdata)
{
	return srv_poll_publish(userdata, group, version, blob, len);
}

static int load_root(uint64_t version, const char *group, const uint8_t *blob, size_t len,
                     void *userdata)
{
	return srv_poll_trust_root(userdata, version, blob, len);
}

/* A head read back after another replica's publish: installed (and waking) only when newer, so
 * a notification of our own publish does not resume long-polls for nothing. */
struct refresh_ctx {
	struct srv *s;
	const char *group; /* NULL = every group */
};

static int refresh_head(uint64_t version, const char *group, const uint8_t *blob, size_t len,
                        void *userdata)
{
	struct refresh_ctx *f = userdata;
	if (f->group && strcmp(f->group, group) != 0)
		return 0;
	pthread_mutex_lock(&f->s->poll_lock);
	const struct srv_group_head *h = f->s->heads;
	while (h && strcmp(h->group, group) != 0)
		h = h->next;
	bool newer = !h || version > h->version;
	pthread_mutex_unlock(&f->s->poll_lock);
	return newer ? srv_poll_publish(f->s, group, version, blob, len) : 0;
}

static int refresh_root(uint64_t version, const char *group, const uint8_t *blob, size_t len,
                        void *userdata)
{
	struct srv *s = userdata;
	pthread_mutex_lock(&s->poll_lock);
	bool newer = s->n_roots == 0 || version > s->roots[s->n_roots - 1].version;
	pthread_mutex_unlock(&s->poll_lock);
	return newer ? srv_poll_trust_root(s, version, blob, len) : 0;
}

/*
 * Another replica (sharing the database) published: what = group, NULL = trust root, "" =
 * anything. Runs on the backend's notification thread; errors leave the in-memory state as it
 * was until the next notification (devices still get 304 on timeout and poll again).
 */
static void on_store_change(const char *what, void *userdata)
{
	struct srv *s = userdata;
	struct refresh_ctx f = {s, what && what[0] ? what : NULL};
	pthread_mutex_lock(&s->store_lock);
	if (!what || !what[0])
		(void)s->store->ops->trust_roots_load(s->store, refresh_root, s);
	if (what)
		(void)s->store->ops->group_heads(s->store, refresh_head, &f);
	pthread_mutex_unlock(&s->store_lock);
}

/* Creates the first admin token on an empty database and writes it to DIR/admin.token. */
static int first_admin_token(struct srv *s, bool *ret_created, char *err, size_t errlen)
{
	int n = s->store->ops->admin_token_count(s->store);
	if (n < 0) {
		snprintf(err, errlen, "reading admin tokens: %s", strerror(-n));
		return n;
	}
	*ret_created = false;
	if (n > 0)
		return 0;
	char id[17], token[128];
	uint8_t sha[SRV_SHA256_LEN];
	int r = srv_token_new(id, token, sha);
	if (r < 0)
		return r;
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s/admin.token", s->cfg.data_dir) < 0)
		return -ENOMEM;
	/* File first, then the row: a crash in between leaves no usable-but-unknown token, and
	 * the next start simply creates a new one. */
	size_t tlen = strlen(token);
	token[tlen] = '\n';
	r = util_write_file_atomic(path, token, tlen + 1, 0600);
	OPENSSL_cleanse(token, sizeof(token));
	if (r < 0) {
		snprintf(err, errlen, "writing %s: %s", path, strerror(-r));
		return r;
	}
	struct srv_store *st = s->store;
	int64_t now = util_now_sec();
	if ((r = st->ops->begin(st)) < 0)
		return r;
	if ((r = st->ops->admin_token_add(st, id, "initial-admin", "admin", sha, "setup", now)) <
	            0 ||
	    (r = st->ops->audit_add(st, "setup", "token.create", id,
	                            "role=admin name=initial-admin", util_now_ms())) < 0 ||
	    (r = st->ops->commit(st)) < 0) {
		st->ops->rollback(st);
		snprintf(err, errlen, "storing the first admin token: %s", strerror(-r));
		return r;
	}
	*ret_created = true;
	return 0;
}

uint16_t srv_port(const struct srv *s)
{
	return s->port;
}

int srv_new(const struct srv_config *cfg, struct srv **ret, bool *ret_created_token, char *err,
            size_t errlen)
{
	struct srv *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	s->waiters.next = s->waiters.prev = &s->waiters;
	pthread_mutex_init(&s->store_lock, NULL);
	pthread_mutex_init(&s->poll_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->timer_cond, &ca);
	pthread_condattr_destroy(&ca);
	int r = -ENOMEM;
	s->rate = calloc(1, sizeof(*s->rate));
	if (!s->rate)
		goto fail;
	pthread_mutex_init(&s->rate->lock, NULL);

	if (mkdir(cfg->data_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "creating %s: %s", cfg->data_dir, strerror(errno));
		goto fail;
	}
	r = srv_ca_open(cfg->data_dir, cfg->hostname[0] ? cfg->hostname : NULL, cfg->listen_host,
	                &s->ca, err, errlen);
	if (r < 0)
		goto fail;
	r = srv_store_open(cfg->database, cfg->data_dir, &s->store, err, errlen);
	if (r < 0)
		goto fail;
	r = first_admin_token(s, ret_created_token, err, errlen);
	if (r < 0)
		goto fail;
	/* Listen for other replicas before loading the heads, so a publish in between is not
	 * missed (a notification for something already loaded changes nothing). */
	if (s->store->ops->watch && (r = s->store->ops->watch(s->store, on_store_change, s)) < 0) {
		snprintf(err, errlen, "watching the database for changes: %s", strerror(-r));
		goto fail;
	}
	if ((r = s->store->ops->trust_roots_load(s->store, load_root, s)) < 0 ||
	    (r = s->store->ops->group_heads(s->store, load_head, s)) < 0) {
		snprintf(err, errlen, "loading published state: %s", strerror(-r));
		goto fail;
	}

	struct sockaddr_storage ss = {0};
	socklen_t sl;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TLS |
	                 MHD_ALLOW_SUSPEND_RESUME | (cfg->http_log ? MHD_USE_ERROR_LOG : 0);
	if (inet_pton(AF_INET, cfg->listen_host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(cfg->port);
		sl = sizeof(*sin);
	} else if (inet_pton(AF_INET6, cfg->listen_host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(cfg->port);
		sl = sizeof(*sin6);
		flags |= MHD_USE_IPv6;
	} else {
		r = -EINVAL;
		snprintf(err, errlen, "listen address '%s' is not an IP address", cfg->listen_host);
		goto fail;
	}
	(void)sl;
	/* Requesting (not requiring) client certificates: GnuTLS asks every client for one;
	 * device endpoints then verify the chain themselves and enrollment works without. */
	struct MHD_OptionItem opts[16];
	size_t n_opts = 0;
	/* The logger first: libmicrohttpd uses its own for anything before it. */
	if (cfg->http_log)
		opts[n_opts++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER,
		                                         (intptr_t)cfg->http_log, NULL};
	opts[n_opts++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
	opts[n_opts++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0,
	                                         (void *)srv_ca_server_key_pem(s->ca)};
	opts[n_opts++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0,
	                                         (void *)srv_ca_server_cert_pem(s->ca)};
	opts[n_opts++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0,
	                                         (void *)srv_ca_cert_pem(s->ca)};
	opts[n_opts++] =
	        (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s};
	opts[n_opts++] =
	        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, cfg->connection_limit, NULL};
	opts[n_opts++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 120, NULL};
	/* Requests are small (bodies are copied out as they arrive), so an 8 KiB pool per
	 * connection is plenty and keeps ten thousand idle long-polls cheap. */
	opts[n_opts++] =
	        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, 8 * 1024, NULL};
	opts[n_opts++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096, NULL};
	/* Only with more than one thread: a pool of one is refused with a warning. */
	if (cfg->threads > 1)
		opts[n_opts++] =
		        (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, cfg->threads, NULL};
	opts[n_opts] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	s->mhd = MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, s, MHD_OPTION_ARRAY,
	                          opts, MHD_OPTION_END);
	if (!s->mhd) {
		r = -EADDRNOTAVAIL;
		snprintf(err, errlen, "cannot listen on %s:%u (in use, or TLS setup failed)",
		         cfg->listen_host, cfg->port);
		goto fail;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di ? di->port : cfg->port;
	if (pthread_create(&s->timer, NULL, timer_main, s) != 0) {
		r = -EAGAIN;
		snprintf(err, errlen, "cannot start the long-poll timer");
		goto fail;
	}
	s->timer_running = true;
	*ret = s;
	return 0;
fail:
	srv_free(s);
	return r;
}

void srv_shutdown(struct srv *s, unsigned grace_ms)
{
	if (!s || !s->mhd)
		return;
	/* 1. Stop accepting: new connections are refused by the kernel from here on. */
	MHD_socket lfd = MHD_quiesce_daemon(s->mhd);
	/* 2. Answer every suspended long-poll (503) so no connection waits on us. */
	pthread_mutex_lock(&s->poll_lock);
	s->shutting_down = true;
	wake_locked(s, NULL);
	pthread_mutex_unlock(&s->poll_lock);
	/* 3. Let in-flight requests finish; idle keep-alive connections are simply closed. */
	uint64_t until = util_monotonic_ms() + grace_ms;
	while (util_monotonic_ms() < until) {
		const union MHD_DaemonInfo *di =
		        MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		if (!di || di->num_connections == 0)
			break;
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	/* 4. Stop the loop. Each request handler commits before it queues its response, so a
	 * response lost here was never an acknowledgement the device could rely on. */
	MHD_stop_daemon(s->mhd);
	s->mhd = NULL;
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
}

void srv_free(struct srv *s)
{
	if (!s)
		return;
	srv_shutdown(s, 0);
	if (s->timer_running) {
		pthread_mutex_lock(&s->poll_lock);
		s->stopped = true;
		pthread_cond_signal(&s->timer_cond);
		pthread_mutex_unlock(&s->poll_lock);
		pthread_join(s->timer, NULL);
	}
	if (s->store)
		s->store->ops->close(s->store);
	srv_ca_free(s->ca);
	for (struct srv_group_head *h = s->heads, *n; h; h = n) {
		n = h->next;
		free(h->envelope);
		free(h);
	}
	for (size_t i = 0; i < s->n_roots; i++)
		free(s->roots[i].data);
	free(s->roots);
	rate_free(s->rate);
	pthread_cond_destroy(&s->timer_cond);
	pthread_mutex_destroy(&s->poll_lock);
	pthread_mutex_destroy(&s->store_lock);
	free(s);
}
