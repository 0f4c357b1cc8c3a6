// SPDX-License-Identifier: Apache-2.0
/*
 * The console's API: aggregation and server-side pagination over the fleet (so the browser
 * never downloads 10,000 devices or a million events), CSV/JSON export, bundle details for
 * the policy diff, promotion of a group's newest bundle to another group, a cheap change
 * counter for auto-refresh, and the Prometheus /metrics endpoint.
 *
 * Same authentication and roles as the admin API (admin.c): a bearer token in the
 * Authorization header; `viewer` reads, only `admin` may promote; every change is audited in
 * the transaction that makes it. All storage calls go through srv_store_ops.console under the
 * store lock; each one first folds new events into the console read model (sync).
 */
#include "console_internal.h"

#include "cleanup.h"
#include "trust.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_DEFAULT         50u
#define EXPORT_MAX           20000u
#define NOT_SEEN_DAYS        7
#define DEVICE_EVENTS_RECENT 200u
#define STATS_WINDOW_MS      (7LL * 86400000LL)
#define SESSION_EVENTS_MAX   1000u

struct api_ctx {
	struct srv *s;
	struct MHD_Connection *c;
	struct srv_req *req;
	const char *method;
	char actor[SRV_ID_MAX + 24];
	bool is_admin;
};

/* ---- replies ------------------------------------------------------------------------------ */

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
	if (!j) {
		static const char oom[] = "{\"error\":\"internal\",\"detail\":\"out of memory\"}";
		return srv_console_reply(c, 500, "application/json", oom, sizeof(oom) - 1, NULL);
	}
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return MHD_NO;
	enum MHD_Result r =
	        srv_console_reply(c, status, "application/json", text, strlen(text), NULL);
	free(text);
	return r;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *reason,
                                   const char *detail)
{
	return reply_json(
	        c, status,
	        json_pack("{ss ss}", "error", reason, "detail", detail ? detail : reason));
}

static enum MHD_Result reply_store(struct MHD_Connection *c, int r, json_t *j)
{
	if (r == -ENOENT)
		return reply_error(c, 404, "not-found", "no such object");
	if (r < 0)
		return reply_error(c, 500, "internal", strerror(-r));
	return reply_json(c, 200, j);
}

/* ---- authentication (same contract as admin.c) ----------------------------------------- */

/* Fills the actor and role from a valid bearer token; 0 or -EACCES. Caller holds store_lock. */
static int authenticate(struct srv *s, struct MHD_Connection *c, char *actor, size_t actorlen,
                        bool *ret_admin)
{
	const char *h =
	        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	char id[17];
	uint8_t sha[SRV_SHA256_LEN];
	if (!h || !util_startswith(h, "Bearer ") || srv_token_parse(h + 7, id, sha) < 0)
		return -EACCES;
	struct srv_admin_token t;
	int r = s->store->ops->admin_token_get(s->store, id, &t);
	/* Unknown ids compare against zeros: the same path either way. */
	if (r < 0)
		memset(&t, 0, sizeof(t));
	bool ok = util_secure_equal(sha, sizeof(sha), t.secret_sha256, sizeof(t.secret_sha256));
	if (r < 0 || !ok || t.revoked)
		return -EACCES;
	snprintf(actor, actorlen, "%s (%s)", t.name, id);
	*ret_admin = strcmp(t.role, "admin") == 0;
	return 0;
}

/* ---- arguments --------------------------------------------------------------------------- */

static const char *arg(struct api_ctx *a, const char *name)
{
	const char *v = MHD_lookup_connection_value(a->c, MHD_GET_ARGUMENT_KIND, name);
	return v && v[0] ? v : NULL;
}

/* Unsigned argument in [0, max]; absent = dflt. -EINVAL when malformed or out of range. */
static int arg_u64(struct api_ctx *a, const char *name, uint64_t dflt, uint64_t max, uint64_t *ret)
{
	const char *v = arg(a, name);
	uint64_t n = dflt;
	if (v && (util_parse_u64(v, &n) < 0 || n > max))
		return -EINVAL;
	*ret = n;
	return 0;
}

static bool valid_state(const char *s)
{
	static const char *const states[] = {"compliant", "degraded", "out-of-date", "stale",
	                                     "failing",   "pending",  "not-seen",    "revoked"};
	for (size_t i = 0; i < ELEMENTSOF(states); i++)
		if (strcmp(s, states[i]) == 0)
			return true;
	return false;
}

static int parse_vkind(const char *s, int *ret)
{
	if (!s) {
		*ret = -1;
		return 0;
	}
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(
	        &corral__violation_kind__descriptor, s);
	if (v) {
		*ret = v->value;
		return 0;
	}
	uint64_t n;
	if (util_parse_u64(s, &n) < 0 || n > 1000)
		return -EINVAL;
	*ret = (int)n;
	return 0;
}

/* ---- CSV export -------------------------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 4096;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/*
 * One CSV field (RFC 4180 quoting). A text that a spreadsheet would run as a formula
 * (= + - @ tab CR first) gets a leading apostrophe: exported device data is attacker-controlled.
 */
static void csv_field(struct buf *b, json_t *v)
{
	char tmp[64];
	const char *s = "";
	char *owned = NULL;
	if (json_is_string(v))
		s = json_string_value(v);
	else if (json_is_integer(v)) {
		snprintf(tmp, sizeof(tmp), "%lld", (long long)json_integer_value(v));
		s = tmp;
	} else if (json_is_true(v))
		s = "true";
	else if (json_is_false(v))
		s = "false";
	else if (json_is_real(v)) {
		snprintf(tmp, sizeof(tmp), "%g", json_real_value(v));
		s = tmp;
	} else if (v && !json_is_null(v))
		s = owned = json_dumps(v, JSON_COMPACT);
	if (!s)
		s = "";
	bool formula = json_is_string(v) && strchr("=+-@\t\r", s[0]) && s[0];
	buf_add(b, "\"", 1);
	if (formula)
		buf_add(b, "'", 1);
	for (const char *p = s; *p; p++) {
		if (*p == '"')
			buf_add(b, "\"\"", 2);
		else
			buf_add(b, p, 1);
	}
	buf_add(b, "\"", 1);
	free(owned);
}

/* Flattens {a: {b: 1}} into a.b columns, in the order keys first appear. */
static void flatten(json_t *row, const char *prefix, json_t *out)
{
	const char *k;
	json_t *v;
	json_object_foreach (row, k, v) {
		char key[256];
		snprintf(key, sizeof(key), "%s%s%s", prefix, prefix[0] ? "." : "", k);
		if (json_is_object(v))
			flatten(v, key, out);
		else
			json_object_set(out, key, v);
	}
}

static enum MHD_Result reply_csv(struct MHD_Connection *c, json_t *items, const char *filename)
{
	json_t *cols = json_object(); /* ordered by first appearance (jansson keeps order) */
	json_t *flat = json_array();
	size_t i;
	json_t *row;
	json_array_foreach (items, i, row) {
		json_t *f = json_object();
		flatten(row, "", f);
		const char *k;
		json_t *v;
		json_object_foreach (f, k, v) {
			if (!json_object_get(cols, k))
				json_object_set_new(cols, k, json_true());
		}
		json_array_append_new(flat, f);
	}
	struct buf b = {0};
	const char *k;
	json_t *v;
	bool first = true;
	json_object_foreach (cols, k, v) {
		if (!first)
			buf_add(&b, ",", 1);
		json_t *name = json_string(k);
		csv_field(&b, name);
		json_decref(name);
		first = false;
	}
	buf_add(&b, "\r\n", 2);
	json_array_foreach (flat, i, row) {
		first = true;
		json_object_foreach (cols, k, v) {
			if (!first)
				buf_add(&b, ",", 1);
			csv_field(&b, json_object_get(row, k));
			first = false;
		}
		buf_add(&b, "\r\n", 2);
	}
	json_decref(cols);
	json_decref(flat);
	if (b.oom) {
		free(b.p);
		return reply_error(c, 500, "internal", "out of memory");
	}
	char disp[128];
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", filename);
	enum MHD_Result r =
	        srv_console_reply(c, 200, "text/csv; charset=utf-8", b.p ? b.p : "", b.len, disp);
	free(b.p);
	return r;
}

/* Replies with a page ({total, offset, items}) as JSON, or its items as CSV/JSON download. */
static enum MHD_Result reply_page(struct api_ctx *a, int r, json_t *page, const char *name)
{
	if (r < 0)
		return reply_store(a->c, r, page);
	const char *format = arg(a, "format");
	if (format && strcmp(format, "csv") == 0) {
		char fn[64];
		snprintf(fn, sizeof(fn), "%s.csv", name);
		enum MHD_Result ret = reply_csv(a->c, json_object_get(page, "items"), fn);
		json_decref(page);
		return ret;
	}
	if (format && strcmp(format, "json") == 0) {
		char disp[128];
		snprintf(disp, sizeof(disp), "attachment; filename=\"%s.json\"", name);
		char *text = json_dumps(json_object_get(page, "items"), JSON_INDENT(1));
		json_decref(page);
		if (!text)
			return reply_error(a->c, 500, "internal", "out of memory");
		enum MHD_Result ret =
		        srv_console_reply(a->c, 200, "application/json", text, strlen(text), disp);
		free(text);
		return ret;
	}
	return reply_json(a->c, 200, page);
}

/* Paging arguments; exports may ask for up to EXPORT_MAX rows at once. */
static int page_args(struct api_ctx *a, unsigned *ret_offset, unsigned *ret_limit)
{
	uint64_t off, lim;
	bool export = arg(a, "format") != NULL;
	if (arg_u64(a, "offset", 0, 100000000, &off) < 0 ||
	    arg_u64(a, "limit", export ? EXPORT_MAX : PAGE_DEFAULT,
	            export ? EXPORT_MAX : SRV_CONSOLE_PAGE_MAX, &lim) < 0 ||
	    lim == 0)
		return -EINVAL;
	*ret_offset = (unsigned)off;
	*ret_limit = (unsigned)lim;
	return 0;
}

/* ---- endpoints --------------------------------------------------------------------------- */

static int64_t not_seen_sec(struct api_ctx *a)
{
	uint64_t days = NOT_SEEN_DAYS;
	if (arg_u64(a, "days", NOT_SEEN_DAYS, 3650, &days) < 0 || days == 0)
		days = NOT_SEEN_DAYS;
	return (int64_t)days * 86400;
}

static enum MHD_Result ep_devices(struct api_ctx *a)
{
	const struct srv_console_store_ops *ops = a->s->store->ops->console;
	struct srv_console_device_filter f = {
	        .search = arg(a, "q"),
	        .group = arg(a, "group"),
	        .state = arg(a, "state"),
	        .now = util_now_sec(),
	        .not_seen_sec = not_seen_sec(a),
	};
	if (page_args(a, &f.offset, &f.limit) < 0)
		return reply_error(a->c, 400, "malformed", "offset/limit");
	if (f.state && !valid_state(f.state))
		return reply_error(a->c, 400, "malformed", "unknown state");
	if (f.search && strlen(f.search) > 128)
		return reply_error(a->c, 400, "malformed", "search too long");
	json_t *j = NULL;
	int r = ops->devices(a->s->store, &f, &j);
	return reply_page(a, r, j, "devices");
}

static enum MHD_Result ep_device(struct api_ctx *a, const char *device_id)
{
	const struct srv_console_store_ops *ops = a->s->store->ops->console;
	json_t *dev = NULL, *events = NULL;
	int r = ops->device(a->s->store, device_id, util_now_sec(), not_seen_sec(a), &dev);
	if (r >= 0)
		r = ops->device_events(a->s->store, device_id, NULL, DEVICE_EVENTS_RECENT, &events);
	if (r < 0) {
		json_decref(dev);
		return reply_store(a->c, r, NULL);
	}
	json_object_set_new(dev, "events", events);
	return reply_json(a->c, 200, dev);
}

static enum MHD_Result ep_session(struct api_ctx *a, const char *device_id, const char *session)
{
	json_t *events = NULL;
	int r = a->s->store->ops->console->device_events(a->s->store, device_id, session,
	                                                 SESSION_EVENTS_MAX, &events);
	if (r < 0)
		return reply_store(a->c, r, NULL);
	return reply_json(a->c, 200,
	                  json_pack("{ss ss so}", "device_id", device_id, "session_id", session,
	                            "events", events));
}

static enum MHD_Result ep_violations(struct api_ctx *a)
{
	struct srv_console_violation_filter f = {
	        .device_id = arg(a, "device"),
	        .profile = arg(a, "profile"),
	        .user = arg(a, "user"),
	        .session = arg(a, "session"),
	};
	uint64_t since, until;
	if (page_args(a, &f.offset, &f.limit) < 0 || parse_vkind(arg(a, "kind"), &f.vkind) < 0 ||
	    arg_u64(a, "since", 0, INT64_MAX, &since) < 0 ||
	    arg_u64(a, "until", 0, INT64_MAX, &until) < 0)
		return reply_error(a->c, 400, "malformed",
		                   "offset, limit, kind, since and until (unix ms)");
	f.since_ms = (int64_t)since;
	f.until_ms = (int64_t)until;
	json_t *j = NULL;
	int r = a->s->store->ops->console->violations(a->s->store, &f, &j);
	return reply_page(a, r, j, "violations");
}

static enum MHD_Result ep_violation_stats(struct api_ctx *a)
{
	uint64_t since, until, bucket;
	int64_t now = util_now_ms();
	if (arg_u64(a, "since", (uint64_t)(now - STATS_WINDOW_MS), INT64_MAX, &since) < 0 ||
	    arg_u64(a, "until", 0, INT64_MAX, &until) < 0 ||
	    arg_u64(a, "bucket", 3600000, 86400000LL * 366, &bucket) < 0)
		return reply_error(a->c, 400, "malformed", "since, until, bucket (ms)");
	json_t *j = NULL;
	int r = a->s->store->ops->console->violation_stats(a->s->store, (int64_t)since,
	                                                   (int64_t)until, (int64_t)bucket, &j);
	return reply_store(a->c, r, j);
}

/* Signer key ids of a stored envelope (empty when it does not decode). */
static json_t *signers_json(const uint8_t *env, size_t len)
{
	json_t *arr = json_array();
	Corral__SignedEnvelope *e = NULL;
	struct trust_result res;
	if (trust_envelope_decode(env, len, CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE, &e,
	                          &res) < 0)
		return arr;
	for (size_t i = 0; i < e->n_signatures; i++)
		json_array_append_new(arr, json_string(e->signatures[i]->key_id));
	corral__signed_envelope__free_unpacked(e, NULL);
	return arr;
}

static enum MHD_Result ep_policy(struct api_ctx *a, const char *group)
{
	struct srv_store *st = a->s->store;
	int r = st->ops->group_exists(st, group);
	if (r == 0)
		return reply_error(a->c, 404, "unknown-group", group);
	json_t *hist = NULL, *rollout = NULL;
	if (r >= 0)
		r = st->ops->policy_history(st, group, &hist);
	if (r >= 0)
		r = st->ops->rollout_status(st, group, &rollout);
	if (r < 0) {
		json_decref(hist);
		return reply_store(a->c, r, NULL);
	}
	size_t i;
	json_t *row;
	json_array_foreach (hist, i, row) {
		_cleanup_free_ uint8_t *env = NULL;
		size_t len = 0;
		uint64_t v = (uint64_t)json_integer_value(json_object_get(row, "version"));
		if (st->ops->console->bundle_get(st, v, &env, &len) >= 0)
			json_object_set_new(row, "signers", signers_json(env, len));
	}
	return reply_json(
	        a->c, 200,
	        json_pack("{ss so so}", "group", group, "history", hist, "rollout", rollout));
}

static enum MHD_Result ep_bundle(struct api_ctx *a, const char *version_s)
{
	uint64_t version;
	if (util_parse_u64(version_s, &version) < 0)
		return reply_error(a->c, 400, "malformed", "version is a number");
	_cleanup_free_ uint8_t *env = NULL;
	size_t len = 0;
	int r = a->s->store->ops->console->bundle_get(a->s->store, version, &env, &len);
	if (r < 0)
		return reply_store(a->c, r, NULL);
	Corral__SignedEnvelope *e = NULL;
	struct trust_result res;
	if (trust_envelope_decode(env, len, CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE, &e,
	                          &res) < 0)
		return reply_error(a->c, 500, "internal", "stored bundle does not decode");
	/* The payload was verified when it was published; decode it for display only. */
	Corral__PolicyBundle *b =
	        corral__policy_bundle__unpack(NULL, e->payload.len, e->payload.data);
	json_t *signers = json_array();
	for (size_t i = 0; i < e->n_signatures; i++)
		json_array_append_new(signers, json_string(e->signatures[i]->key_id));
	corral__signed_envelope__free_unpacked(e, NULL);
	if (!b) {
		json_decref(signers);
		return reply_error(a->c, 500, "internal", "stored bundle payload does not decode");
	}
	json_t *targets = json_array();
	for (size_t i = 0; i < b->n_targets; i++)
		json_array_append_new(targets,
		                      json_string(b->targets[i]->group ? b->targets[i]->group
		                                                       : b->targets[i]->device_id));
	json_t *source = NULL;
	if (b->source_json && b->source_json[0])
		source = json_loads(b->source_json, 0, NULL);
	json_t *out = json_pack("{sI sI sI so so so so}", "version", (json_int_t)b->version,
	                        "issued_at", (json_int_t)b->issued_at, "expires_at",
	                        (json_int_t)b->expires_at, "targets", targets, "signers", signers,
	                        "policy", srv_console_message_json(&b->policy->base), "source",
	                        source ? source : json_null());
	corral__policy_bundle__free_unpacked(b, NULL);
	return reply_json(a->c, 200, out);
}

/* The newest trust root (verified when stored), decoded; NULL when none. */
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

/*
 * Promotes the newest bundle of group `from` (the canary) to group `to`: the same signed
 * bytes, verified again exactly as a publish to `to` would be (target, expiry, newer than what
 * `to` has), recorded and audited, then `to`'s long-polls are woken.
 */
static enum MHD_Result ep_promote(struct api_ctx *a)
{
	if (!a->is_admin)
		return reply_error(a->c, 403, "forbidden", "this action needs the admin role");
	if (a->req->len > SRV_ADMIN_JSON_MAX)
		return reply_error(a->c, 413, "too-large", "JSON body over 64 KiB");
	json_error_t je;
	json_t *body = json_loadb((const char *)(a->req->body ? a->req->body : (uint8_t *)""),
	                          a->req->len, 0, &je);
	const char *from = json_string_value(json_object_get(body, "from"));
	const char *to = json_string_value(json_object_get(body, "to"));
	char from_g[SRV_ID_MAX], to_g[SRV_ID_MAX];
	if (!from || !to || strlen(from) >= SRV_ID_MAX || strlen(to) >= SRV_ID_MAX ||
	    strcmp(from, to) == 0) {
		json_decref(body);
		return reply_error(a->c, 400, "malformed", "need {\"from\": G, \"to\": G2}");
	}
	snprintf(from_g, sizeof(from_g), "%s", from);
	snprintf(to_g, sizeof(to_g), "%s", to);
	json_decref(body);
	struct srv *s = a->s;
	struct srv_store *st = s->store;
	if (st->ops->group_exists(st, from_g) <= 0)
		return reply_error(a->c, 404, "unknown-group", from_g);
	if (st->ops->group_exists(st, to_g) <= 0)
		return reply_error(a->c, 404, "unknown-group", to_g);
	uint64_t version = 0, head_to = 0;
	int r = st->ops->group_head_version(st, from_g, &version);
	if (r >= 0)
		r = st->ops->group_head_version(st, to_g, &head_to);
	if (r < 0)
		return reply_error(a->c, 500, "internal", strerror(-r));
	if (version == 0)
		return reply_error(a->c, 409, "nothing-to-promote", from_g);
	_cleanup_free_ uint8_t *env = NULL;
	size_t len = 0;
	if ((r = st->ops->console->bundle_get(st, version, &env, &len)) < 0)
		return reply_error(a->c, 500, "internal", strerror(-r));
	Corral__TrustRoot *root = current_root(s);
	if (!root)
		return reply_error(a->c, 409, "no-trust-root", "publish a trust root first");
	const char *groups[1] = {to_g};
	struct trust_bundle_ctx ctx = {
	        .now = util_now_sec(),
	        .min_version_exclusive = head_to,
	        .groups = groups,
	        .n_groups = 1,
	};
	struct trust_bundle_info info;
	struct trust_result res = {0};
	r = trust_bundle_verify(root, env, len, &ctx, NULL, &info, &res);
	corral__trust_root__free_unpacked(root, NULL);
	if (r < 0)
		return reply_error(a->c, 422, trust_reason_code(res.reason), res.detail);
	char detail[192];
	snprintf(detail, sizeof(detail), "version=%llu from=%s signers=%zu",
	         (unsigned long long)info.version, from_g, info.n_signers);
	r = st->ops->begin(st);
	if (r >= 0) {
		r = st->ops->publish(st, to_g, info.version, env, len, info.issued_at,
		                     info.expires_at, a->actor, util_now_ms());
		if (r >= 0)
			r = st->ops->audit_add(st, a->actor, "policy.promote", to_g, detail,
			                       util_now_ms());
		if (r >= 0)
			r = st->ops->commit(st);
		if (r < 0)
			st->ops->rollback(st);
	}
	if (r == -EALREADY)
		return reply_error(a->c, 409, "already-published", detail);
	if (r < 0)
		return reply_error(a->c, 500, "internal", strerror(-r));
	/* Committed: now wake the target group's long-polls. */
	r = srv_poll_publish(s, to_g, info.version, env, len);
	if (r < 0)
		return reply_error(a->c, 500, "internal", strerror(-r));
	return reply_json(a->c, 200,
	                  json_pack("{sI ss ss}", "version", (json_int_t)info.version, "from",
	                            from_g, "to", to_g));
}

static enum MHD_Result ep_changes(struct api_ctx *a)
{
	int64_t counter = a->s->store->ops->console->change_counter(a->s->store);
	uint64_t since = 0;
	(void)arg_u64(a, "since", 0, INT64_MAX, &since);
	return reply_json(a->c, 200,
	                  json_pack("{sI sb}", "counter", (json_int_t)counter, "changed",
	                            (uint64_t)counter != since));
}

/* ---- routing ----------------------------------------------------------------------------------
 */

static enum MHD_Result route(struct api_ctx *a, const char *path)
{
	struct srv_store *st = a->s->store;
	const struct srv_console_store_ops *ops = st->ops->console;
	bool get = strcmp(a->method, MHD_HTTP_METHOD_GET) == 0;
	bool post = strcmp(a->method, MHD_HTTP_METHOD_POST) == 0;
	if (strcmp(path, "changes") == 0 && get)
		return ep_changes(a);
	if (!util_startswith(path, "console/"))
		return reply_error(a->c, 404, "not-found", path);
	path += strlen("console/");
	char buf[512];
	char *seg[6] = {0};
	size_t n = 0;
	if (strlen(path) >= sizeof(buf))
		return reply_error(a->c, 404, "not-found", "path too long");
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *save = NULL, *t = strtok_r(buf, "/", &save); t && n < ELEMENTSOF(seg);
	     t = strtok_r(NULL, "/", &save))
		seg[n++] = t;
	if (n == 0)
		return reply_error(a->c, 404, "not-found", path);
	if (post && n == 1 && strcmp(seg[0], "promote") == 0)
		return ep_promote(a);
	if (!get)
		return reply_error(a->c, 405, "method-not-allowed", a->method);
	/* Fold new events into the read model before any read. */
	int r = ops->sync(st);
	if (r < 0)
		return reply_error(a->c, 500, "internal", strerror(-r));
	json_t *j = NULL;
	if (n == 1 && strcmp(seg[0], "overview") == 0) {
		r = ops->overview(st, util_now_sec(), not_seen_sec(a), &j);
		if (r >= 0)
			json_object_set_new(j, "not_seen_days",
			                    json_integer(not_seen_sec(a) / 86400));
		return reply_store(a->c, r, j);
	}
	if (n == 1 && strcmp(seg[0], "devices") == 0)
		return ep_devices(a);
	if (n == 2 && strcmp(seg[0], "devices") == 0)
		return ep_device(a, seg[1]);
	if (n == 4 && strcmp(seg[0], "devices") == 0 && strcmp(seg[2], "sessions") == 0)
		return ep_session(a, seg[1], seg[3]);
	if (n == 1 && strcmp(seg[0], "violations") == 0)
		return ep_violations(a);
	if (n == 2 && strcmp(seg[0], "violations") == 0 && strcmp(seg[1], "stats") == 0)
		return ep_violation_stats(a);
	if (n == 2 && strcmp(seg[0], "policy") == 0)
		return ep_policy(a, seg[1]);
	if (n == 2 && strcmp(seg[0], "bundles") == 0)
		return ep_bundle(a, seg[1]);
	if (n == 1 && strcmp(seg[0], "enroll-tokens") == 0) {
		r = ops->enroll_tokens(st, &j);
		return reply_store(a->c, r, j);
	}
	return reply_error(a->c, 404, "not-found", path);
}

enum MHD_Result srv_console_api_handle(struct srv *s, struct MHD_Connection *c, struct srv_req *req,
                                       const char *method, const char *url)
{
	struct api_ctx a = {.s = s, .c = c, .req = req, .method = method};
	enum MHD_Result ret;
	pthread_mutex_lock(&s->store_lock);
	if (authenticate(s, c, a.actor, sizeof(a.actor), &a.is_admin) < 0)
		ret = reply_error(c, 401, "unauthorized", "bearer token required");
	else
		ret = route(&a, url + strlen("/api/v1/"));
	pthread_mutex_unlock(&s->store_lock);
	return ret;
}

/* ---- /metrics -------------------------------------------------------------------------------- */

enum MHD_Result srv_console_metrics(struct srv *s, struct MHD_Connection *c, const char *method)
{
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return reply_error(c, 405, "method-not-allowed", method);
	char actor[SRV_ID_MAX + 24];
	bool is_admin;
	struct srv_store *st = s->store;
	json_t *ov = NULL, *m = NULL;
	pthread_mutex_lock(&s->store_lock);
	int r = authenticate(s, c, actor, sizeof(actor), &is_admin);
	if (r < 0) {
		pthread_mutex_unlock(&s->store_lock);
		return reply_error(c, 401, "unauthorized",
		                   "bearer token required (admin or viewer)");
	}
	r = st->ops->console->sync(st);
	if (r >= 0)
		r = st->ops->console->overview(st, util_now_sec(), NOT_SEEN_DAYS * 86400, &ov);
	if (r >= 0)
		r = st->ops->console->metrics(st, &m);
	pthread_mutex_unlock(&s->store_lock);
	pthread_mutex_lock(&s->poll_lock);
	size_t polls = s->n_waiters;
	pthread_mutex_unlock(&s->poll_lock);
	if (r < 0) {
		json_decref(ov);
		return reply_error(c, 500, "internal", strerror(-r));
	}
	struct buf b = {0};
	char line[256];
	int len;
#define EMIT(...)                                                                             \
	do {                                                                                  \
		len = snprintf(line, sizeof(line), __VA_ARGS__);                              \
		if (len > 0)                                                                  \
			buf_add(&b, line,                                                     \
			        (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1); \
	} while (0)
	EMIT("# HELP corral_devices Enrolled devices by compliance state.\n");
	EMIT("# TYPE corral_devices gauge\n");
	const char *k;
	json_t *v;
	json_object_foreach (json_object_get(ov, "states"), k, v)
		EMIT("corral_devices{state=\"%s\"} %lld\n", k, (long long)json_integer_value(v));
	EMIT("# HELP corral_events_ingested_total Device events stored (deduplicated).\n");
	EMIT("# TYPE corral_events_ingested_total counter\n");
	EMIT("corral_events_ingested_total %lld\n",
	     (long long)json_integer_value(json_object_get(m, "events_total")));
	EMIT("# HELP corral_longpolls_open Policy long-polls currently suspended.\n");
	EMIT("# TYPE corral_longpolls_open gauge\n");
	EMIT("corral_longpolls_open %zu\n", polls);
	EMIT("# HELP corral_publish_to_applied_seconds Time from a bundle's publication to a "
	     "device's first application of it.\n");
	EMIT("# TYPE corral_publish_to_applied_seconds histogram\n");
	json_t *h = json_object_get(m, "publish_to_applied_ms");
	size_t i;
	json_t *bk;
	json_array_foreach (json_object_get(h, "buckets"), i, bk) {
		long long le = (long long)json_integer_value(json_array_get(bk, 0));
		long long n = (long long)json_integer_value(json_array_get(bk, 1));
		if (le < 0)
			EMIT("corral_publish_to_applied_seconds_bucket{le=\"+Inf\"} %lld\n", n);
		else
			EMIT("corral_publish_to_applied_seconds_bucket{le=\"%g\"} %lld\n",
			     (double)le / 1000.0, n);
	}
	EMIT("corral_publish_to_applied_seconds_sum %.3f\n",
	     (double)json_integer_value(json_object_get(h, "sum")) / 1000.0);
	EMIT("corral_publish_to_applied_seconds_count %lld\n",
	     (long long)json_integer_value(json_object_get(h, "count")));
#undef EMIT
	json_decref(ov);
	json_decref(m);
	if (b.oom) {
		free(b.p);
		return reply_error(c, 500, "internal", "out of memory");
	}
	enum MHD_Result ret = srv_console_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8",
	                                        b.p ? b.p : "", b.len, NULL);
	free(b.p);
	return ret;
}
