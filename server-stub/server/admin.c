// SPDX-License-Identifier: Apache-2.0
/*
 * The admin API (JSON over the same HTTPS listener, bearer tokens): tokens, groups, enrollment
 * tokens, devices, policy publishing and promotion, rollout status, events, trust roots and the
 * audit log. Roles: `admin` may change things, `viewer` may only read. Every change is written
 * to the append-only audit log in the same transaction as the change itself.
 *
 * Publishing never signs anything: the uploaded SignedEnvelope{PolicyBundle} must verify against
 * the fleet's newest trust root (lib/trust), target the group, and be newer than what the group
 * has, or it is refused with the verifier's reason code.
 */
#include "srv_internal.h"

#include "cleanup.h"
#include "trust.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_LIMIT_DEFAULT  100
#define EVENTS_LIMIT_DEFAULT 100
#define EVENTS_LIMIT_MAX     10000

struct admin_ctx {
	struct srv *s;
	struct MHD_Connection *c;
	struct srv_req *req;
	const char *method;
	char actor[SRV_ID_MAX + 24];
	bool is_admin;
};

static bool valid_name(const char *n)
{
	size_t len = n ? strlen(n) : 0;
	if (len == 0 || len >= SRV_ID_MAX)
		return false;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

static int authenticate(struct srv *s, struct MHD_Connection *c, struct srv_req *req,
                        enum MHD_Result *ret)
{
	const char *h =
	        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	char id[17];
	uint8_t sha[SRV_SHA256_LEN];
	if (!h || !util_startswith(h, "Bearer ") || srv_token_parse(h + 7, id, sha) < 0) {
		*ret = srv_reply_json_error(c, 401, "unauthorized", "bearer token required");
		return -1;
	}
	struct srv_admin_token t;
	int r = s->store->ops->admin_token_get(s->store, id, &t);
	/* Compare the hashes in constant time; an unknown id compares against zeros so the
	 * answer takes the same path either way. */
	if (r < 0)
		memset(&t, 0, sizeof(t));
	bool ok = util_secure_equal(sha, sizeof(sha), t.secret_sha256, sizeof(t.secret_sha256));
	if (r < 0 || !ok || t.revoked) {
		*ret = srv_reply_json_error(c, 401, "unauthorized", "unknown or revoked token");
		return -1;
	}
	snprintf(req->actor, sizeof(req->actor), "%s (%s)", t.name, id);
	req->is_admin = strcmp(t.role, "admin") == 0;
	req->admin_authed = true;
	return 0;
}

int srv_admin_preauth(struct srv *s, struct MHD_Connection *c, struct srv_req *req,
                      enum MHD_Result *ret)
{
	if (req->admin_authed)
		return 0;
	pthread_mutex_lock(&s->store_lock);
	int r = authenticate(s, c, req, ret);
	pthread_mutex_unlock(&s->store_lock);
	return r;
}

static bool is_get(const struct admin_ctx *a)
{
	return strcmp(a->method, MHD_HTTP_METHOD_GET) == 0;
}

static bool is_post(const struct admin_ctx *a)
{
	return strcmp(a->method, MHD_HTTP_METHOD_POST) == 0;
}

static json_t *body_json(struct admin_ctx *a, enum MHD_Result *ret)
{
	if (a->req->len > SRV_ADMIN_JSON_MAX) {
		*ret = srv_reply_json_error(a->c, 413, "too-large", "JSON body over 64 KiB");
		return NULL;
	}
	json_error_t e;
	json_t *j = json_loadb((const char *)(a->req->body ? a->req->body : (uint8_t *)""),
	                       a->req->len, 0, &e);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		*ret = srv_reply_json_error(a->c, 400, "malformed", "body must be a JSON object");
		return NULL;
	}
	return j;
}

/* Runs a change and its audit record in one transaction. */
static int audited(struct admin_ctx *a, int change_result, const char *action, const char *target,
                   const char *detail)
{
	struct srv_store *st = a->s->store;
	if (change_result < 0) {
		st->ops->rollback(st);
		return change_result;
	}
	int r = st->ops->audit_add(st, a->actor, action, target, detail, util_now_ms());
	if (r >= 0)
		r = st->ops->commit(st);
	if (r < 0)
		st->ops->rollback(st);
	return r;
}

static enum MHD_Result forbidden(struct admin_ctx *a)
{
	return srv_reply_json_error(a->c, 403, "forbidden", "this action needs the admin role");
}

/* ---- tokens ---------------------------------------------------------------------------------- */

static enum MHD_Result token_create(struct admin_ctx *a)
{
	enum MHD_Result ret;
	json_t *j = body_json(a, &ret);
	if (!j)
		return ret;
	const char *role = json_string_value(json_object_get(j, "role"));
	const char *name = json_string_value(json_object_get(j, "name"));
	if (!role || (strcmp(role, "admin") != 0 && strcmp(role, "viewer") != 0) ||
	    !valid_name(name)) {
		json_decref(j);
		return srv_reply_json_error(a->c, 400, "malformed",
		                            "need role admin|viewer and a name [A-Za-z0-9._-]");
	}
	char id[17], token[128], detail[128];
	uint8_t sha[SRV_SHA256_LEN];
	struct srv_store *st = a->s->store;
	int r = srv_token_new(id, token, sha);
	if (r >= 0)
		r = st->ops->begin(st);
	if (r >= 0) {
		snprintf(detail, sizeof(detail), "role=%s name=%s", role, name);
		r = audited(
		        a,
		        st->ops->admin_token_add(st, id, name, role, sha, a->actor, util_now_sec()),
		        "token.create", id, detail);
	}
	if (r < 0) {
		json_decref(j);
		return srv_reply_json_error(a->c, 500, "internal", strerror(-r));
	}
	ret = srv_reply_json(
	        a->c, 201,
	        json_pack("{ss ss ss ss}", "id", id, "token", token, "role", role, "name", name));
	json_decref(j);
	return ret;
}

/* ---- groups --------------------------------------------------------------------------------- */

static enum MHD_Result group_create(struct admin_ctx *a)
{
	enum MHD_Result ret;
	json_t *j = body_json(a, &ret);
	if (!j)
		return ret;
	const char *name = json_string_value(json_object_get(j, "name"));
	if (!valid_name(name)) {
		json_decref(j);
		return srv_reply_json_error(a->c, 400, "malformed",
		                            "group name [A-Za-z0-9._-]{1,63}");
	}
	struct srv_store *st = a->s->store;
	int r = st->ops->begin(st);
	if (r >= 0)
		r = audited(a, st->ops->group_create(st, name, a->actor, util_now_sec()),
		            "group.create", name, "");
	if (r == -EEXIST)
		ret = srv_reply_json_error(a->c, 409, "exists", "group already exists");
	else if (r < 0)
		ret = srv_reply_json_error(a->c, 500, "internal", strerror(-r));
	else
		ret = srv_reply_json(a->c, 201, json_pack("{ss}", "name", name));
	json_decref(j);
	return ret;
}

/* ---- enrollment tokens ------------------------------------------------------------------ */

static enum MHD_Result enroll_token_create(struct admin_ctx *a)
{
	enum MHD_Result ret;
	json_t *j = body_json(a, &ret);
	if (!j)
		return ret;
	const char *group = json_string_value(json_object_get(j, "group"));
	json_int_t uses = json_integer_value(json_object_get(j, "uses"));
	json_int_t expires = json_integer_value(json_object_get(j, "expires_at"));
	if (!valid_name(group) || uses < 1 || uses > 1000000 || expires <= 0) {
		json_decref(j);
		return srv_reply_json_error(
		        a->c, 400, "malformed",
		        "need group, uses (1..1000000), expires_at (unix seconds)");
	}
	char id[17], token[128], detail[128];
	uint8_t sha[SRV_SHA256_LEN];
	struct srv_store *st = a->s->store;
	int r = srv_token_new(id, token, sha);
	if (r >= 0)
		r = st->ops->begin(st);
	if (r >= 0) {
		snprintf(detail, sizeof(detail), "group=%s uses=%lld expires_at=%lld", group,
		         (long long)uses, (long long)expires);
		r = audited(a,
		            st->ops->enroll_token_add(st, id, group, sha, (unsigned)uses, expires,
		                                      a->actor, util_now_sec()),
		            "enroll-token.create", id, detail);
	}
	if (r == -ENOENT)
		ret = srv_reply_json_error(a->c, 404, "unknown-group", group);
	else if (r < 0)
		ret = srv_reply_json_error(a->c, 500, "internal", strerror(-r));
	else
		ret = srv_reply_json(a->c, 201,
		                     json_pack("{ss ss ss sI sI}", "id", id, "token", token,
		                               "group", group, "uses", uses, "expires_at",
		                               expires));
	json_decref(j);
	return ret;
}

/* ---- devices -------------------------------------------------------------------------------- */

static enum MHD_Result device_revoke(struct admin_ctx *a, const char *device_id)
{
	struct srv_store *st = a->s->store;
	int r = st->ops->begin(st);
	if (r >= 0)
		r = audited(a, st->ops->device_revoke(st, device_id, util_now_sec()),
		            "device.revoke", device_id, "");
	if (r == -ENOENT)
		return srv_reply_json_error(a->c, 404, "unknown-device", device_id);
	if (r == -EALREADY)
		return srv_reply_json_error(a->c, 409, "already-revoked", device_id);
	if (r < 0)
		return srv_reply_json_error(a->c, 500, "internal", strerror(-r));
	/* Committed: a long-poll this device holds right now is refused at once too. */
	srv_poll_revoke(a->s, device_id);
	return srv_reply_json(a->c, 200,
	                      json_pack("{ss sb}", "device_id", device_id, "revoked", 1));
}

/* ---- trust roots and policy ------------------------------------------------------------ */

/* The newest trust root (already verified when stored), decoded. NULL when none. */
static Corral__TrustRoot *current_root(struct srv *s)
{
	Corral__TrustRoot *root = NULL;
	struct trust_result res;
	pthread_mutex_lock(&s->poll_lock);
	if (s->n_roots > 0) {
		const struct srv_blob *b = &s->roots[s->n_roots - 1];
		if (trust_root_peek(b->data, b->len, &root, &res) < 0)
			root = NULL;
	}
	pthread_mutex_unlock(&s->poll_lock);
	return root;
}

static enum MHD_Result trust_publish(struct admin_ctx *a)
{
	struct srv *s = a->s;
	const uint8_t *env = a->req->body ? a->req->body : (const uint8_t *)"";
	size_t len = a->req->len;
	struct trust_result res = {0};
	Corral__TrustRoot *prev = current_root(s);
	Corral__TrustRoot *root = NULL;
	int r = prev ? trust_root_verify_next(prev, env, len, util_now_sec(), &root, &res)
	             : trust_root_verify_initial(env, len, util_now_sec(), &root, &res);
	if (prev)
		corral__trust_root__free_unpacked(prev, NULL);
	if (r < 0)
		return srv_reply_json_error(a->c, 422, trust_reason_code(res.reason), res.detail);
	uint64_t version = root->version;
	int64_t expires = root->expires_at;
	corral__trust_root__free_unpacked(root, NULL);
	char target[32];
	snprintf(target, sizeof(target), "%llu", (unsigned long long)version);
	struct srv_store *st = s->store;
	r = st->ops->begin(st);
	if (r >= 0)
		r = audited(a,
		            st->ops->trust_root_add(st, version, env, len, expires, a->actor,
		                                    util_now_sec()),
		            "trust.publish", target, "");
	if (r == -EEXIST)
		return srv_reply_json_error(a->c, 409, "exists", "this trust-root version exists");
	if (r < 0)
		return srv_reply_json_error(a->c, 500, "internal", strerror(-r));
	r = srv_poll_trust_root(s, version, env, len);
	if (r < 0)
		return srv_reply_json_error(a->c, 500, "internal", strerror(-r));
	return srv_reply_json(a->c, 200, json_pack("{sI}", "version", (json_int_t)version));
}

static enum MHD_Result policy_publish(struct admin_ctx *a, const char *group)
{
	struct srv *s = a->s;
	struct srv_store *st = s->store;
	int r = st->ops->group_exists(st, group);
	if (r <= 0)
		return srv_reply_json_error(a->c, r < 0 ? 500 : 404, "unknown-group", group);
	Corral__TrustRoot *root = current_root(s);
	if (!root)
		return srv_reply_json_error(
		        a->c, 409, "no-trust-root",
		        "publish a trust root (corral-admin trust publish) first");
	uint64_t head = 0;
	r = st->ops->group_head_version(st, group, &head);
	if (r < 0) {
		corral__trust_root__free_unpacked(root, NULL);
		return srv_reply_json_error(a->c, 500, "internal", strerror(-r));
	}
	const char *groups[1] = {group};
	struct trust_bundle_ctx ctx = {
	        .now = util_now_sec(),
	        .min_version_exclusive = head,
	        .groups = groups,
	        .n_groups = 1,
	};
	struct trust_bundle_info info;
	struct trust_result res = {0};
	const uint8_t *env = a->req->body ? a->req->body : (const uint8_t *)"";
	size_t len = a->req->len;
	r = trust_bundle_verify(root, env, len, &ctx, NULL, &info, &res);
	corral__trust_root__free_unpacked(root, NULL);
	if (r < 0)
		return srv_reply_json_error(a->c, 422, trust_reason_code(res.reason), res.detail);
	char detail[128];
	snprintf(detail, sizeof(detail), "version=%llu signers=%zu",
	         (unsigned long long)info.version, info.n_signers);
	r = st->ops->begin(st);
	if (r >= 0)
		r = audited(a,
		            st->ops->publish(st, group, info.version, env, len, info.issued_at,
		                             info.expires_at, a->actor, util_now_ms()),
		            "policy.publish", group, detail);
	if (r == -EEXIST)
		return srv_reply_json_error(
		        a->c, 422, "rollback",
		        "this version was already published with other content");
	if (r == -EALREADY)
		return srv_reply_json_error(a->c, 409, "already-published", detail);
	if (r < 0)
		return srv_reply_json_error(a->c, 500, "internal", strerror(-r));
	/* Committed: now wake this group's long-polls. */
	r = srv_poll_publish(s, group, info.version, env, len);
	if (r < 0)
		return srv_reply_json_error(a->c, 500, "internal", strerror(-r));
	return srv_reply_json(
	        a->c, 200,
	        json_pack("{sI ss}", "version", (json_int_t)info.version, "group", group));
}

/* ---- reads ---------------------------------------------------------------------------------- */

static enum MHD_Result reply_list(struct admin_ctx *a, int r, json_t *j)
{
	if (r == -ENOENT)
		return srv_reply_json_error(a->c, 404, "not-found", "no such object");
	if (r < 0)
		return srv_reply_json_error(a->c, 500, "internal", strerror(-r));
	return srv_reply_json(a->c, 200, j);
}

static const char *arg(struct admin_ctx *a, const char *name)
{
	return MHD_lookup_connection_value(a->c, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result events_query(struct admin_ctx *a)
{
	struct srv_event_filter f = {.kind = -1, .limit = EVENTS_LIMIT_DEFAULT};
	uint64_t v;
	f.device_id = arg(a, "device");
	const char *kind = arg(a, "kind"), *since = arg(a, "since"), *limit = arg(a, "limit");
	if (kind) {
		if (util_parse_u64(kind, &v) < 0 || v > 1000)
			return srv_reply_json_error(a->c, 400, "malformed", "kind is a number");
		f.kind = (int)v;
	}
	if (since) {
		if (util_parse_u64(since, &v) < 0 || v > INT64_MAX)
			return srv_reply_json_error(a->c, 400, "malformed", "since is unix ms");
		f.since_ms = (int64_t)v;
	}
	if (limit) {
		if (util_parse_u64(limit, &v) < 0 || v == 0 || v > EVENTS_LIMIT_MAX)
			return srv_reply_json_error(a->c, 400, "malformed", "limit 1..10000");
		f.limit = (unsigned)v;
	}
	json_t *j = NULL;
	int r = a->s->store->ops->events_query(a->s->store, &f, &j);
	return reply_list(a, r, j);
}

static enum MHD_Result trust_list(struct admin_ctx *a)
{
	json_t *arr = json_array();
	pthread_mutex_lock(&a->s->poll_lock);
	for (size_t i = 0; i < a->s->n_roots; i++)
		json_array_append_new(arr, json_pack("{sI sI}", "version",
		                                     (json_int_t)a->s->roots[i].version, "bytes",
		                                     (json_int_t)a->s->roots[i].len));
	pthread_mutex_unlock(&a->s->poll_lock);
	return srv_reply_json(a->c, 200, arr);
}

/* Live counters for operators and the load generator. */
static enum MHD_Result stats(struct admin_ctx *a)
{
	size_t waiters, roots, heads = 0, fan_n;
	uint64_t fan_ms;
	pthread_mutex_lock(&a->s->poll_lock);
	waiters = a->s->n_waiters;
	fan_ms = a->s->fanout_last_ms;
	fan_n = a->s->fanout_last_n;
	roots = a->s->n_roots;
	for (const struct srv_group_head *h = a->s->heads; h; h = h->next)
		heads++;
	pthread_mutex_unlock(&a->s->poll_lock);
	const union MHD_DaemonInfo *di =
	        MHD_get_daemon_info(a->s->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return srv_reply_json(a->c, 200,
	                      json_pack("{sI sI sI sI sI sI}", "last_fanout_ms", (json_int_t)fan_ms,
	                                "last_fanout_devices", (json_int_t)fan_n, "long_polls",
	                                (json_int_t)waiters, "connections",
	                                (json_int_t)(di ? di->num_connections : 0), "trust_roots",
	                                (json_int_t)roots, "published_groups", (json_int_t)heads));
}

/* ---- routing -------------------------------------------------------------------------------- */

static enum MHD_Result route(struct admin_ctx *a, const char *path)
{
	struct srv_store *st = a->s->store;
	json_t *j = NULL;
	int r;
	/* Split "a/b/c/d" into at most four segments. */
	char buf[512];
	char *seg[5] = {0};
	size_t n = 0;
	if (strlen(path) >= sizeof(buf))
		return srv_reply_json_error(a->c, 404, "not-found", "path too long");
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *save = NULL, *t = strtok_r(buf, "/", &save); t && n < ELEMENTSOF(seg);
	     t = strtok_r(NULL, "/", &save))
		seg[n++] = t;
	if (n == 0)
		return srv_reply_json_error(a->c, 404, "not-found", path);
	bool get = is_get(a), post = is_post(a);
	if (post && !a->is_admin)
		return forbidden(a);

	if (n == 1 && strcmp(seg[0], "whoami") == 0 && get)
		return srv_reply_json(a->c, 200,
		                      json_pack("{ss ss}", "actor", a->actor, "role",
		                                a->is_admin ? "admin" : "viewer"));
	if (n == 1 && strcmp(seg[0], "stats") == 0 && get)
		return stats(a);
	if (n == 1 && strcmp(seg[0], "tokens") == 0 && post)
		return token_create(a);
	if (n == 1 && strcmp(seg[0], "groups") == 0) {
		if (post)
			return group_create(a);
		if (get) {
			r = st->ops->group_list(st, &j);
			return reply_list(a, r, j);
		}
	}
	if (n == 3 && strcmp(seg[0], "groups") == 0 && strcmp(seg[2], "policy") == 0) {
		if (post)
			return policy_publish(a, seg[1]);
		if (get) {
			r = st->ops->group_exists(st, seg[1]);
			if (r == 0)
				return srv_reply_json_error(a->c, 404, "unknown-group", seg[1]);
			r = st->ops->policy_history(st, seg[1], &j);
			return reply_list(a, r, j);
		}
	}
	if (n == 3 && strcmp(seg[0], "groups") == 0 && strcmp(seg[2], "rollout") == 0 && get) {
		r = st->ops->group_exists(st, seg[1]);
		if (r == 0)
			return srv_reply_json_error(a->c, 404, "unknown-group", seg[1]);
		r = st->ops->rollout_status(st, seg[1], &j);
		return reply_list(a, r, j);
	}
	if (n == 1 && strcmp(seg[0], "enroll-tokens") == 0 && post)
		return enroll_token_create(a);
	if (n == 1 && strcmp(seg[0], "devices") == 0 && get) {
		const char *g = arg(a, "group");
		r = st->ops->device_list(st, g, &j);
		return reply_list(a, r, j);
	}
	if (n == 2 && strcmp(seg[0], "devices") == 0 && get) {
		r = st->ops->device_show(st, seg[1], &j);
		return reply_list(a, r, j);
	}
	if (n == 3 && strcmp(seg[0], "devices") == 0 && strcmp(seg[2], "revoke") == 0 && post)
		return device_revoke(a, seg[1]);
	if (n == 1 && strcmp(seg[0], "events") == 0 && get)
		return events_query(a);
	if (n == 1 && strcmp(seg[0], "trust") == 0) {
		if (post)
			return trust_publish(a);
		if (get)
			return trust_list(a);
	}
	if (n == 1 && strcmp(seg[0], "audit") == 0 && get) {
		uint64_t limit = AUDIT_LIMIT_DEFAULT;
		const char *l = arg(a, "limit");
		if (l && (util_parse_u64(l, &limit) < 0 || limit == 0 || limit > 100000))
			return srv_reply_json_error(a->c, 400, "malformed", "limit 1..100000");
		r = st->ops->audit_list(st, (unsigned)limit, &j);
		return reply_list(a, r, j);
	}
	return srv_reply_json_error(a->c, 404, "not-found", path);
}

enum MHD_Result srv_admin_handle(struct srv *s, struct MHD_Connection *c, struct srv_req *req,
                                 const char *method, const char *url)
{
	enum MHD_Result ret;
	if (srv_admin_preauth(s, c, req, &ret) < 0)
		return ret;
	struct admin_ctx a = {
	        .s = s, .c = c, .req = req, .method = method, .is_admin = req->is_admin};
	snprintf(a.actor, sizeof(a.actor), "%s", req->actor);
	/* Admin requests are rare: one lock for the whole request keeps check-then-change
	 * sequences (head version, then publish) atomic. */
	pthread_mutex_lock(&s->store_lock);
	ret = route(&a, url + strlen("/api/v1/"));
	pthread_mutex_unlock(&s->store_lock);
	return ret;
}
