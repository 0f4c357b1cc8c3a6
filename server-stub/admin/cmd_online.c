// SPDX-License-Identifier: Apache-2.0
/*
 * corral-admin's online commands: they talk to corral-server's admin API (JSON over HTTPS,
 * bearer token) with libcurl. Connection settings come from --server URL --token-file FILE
 * --ca FILE, or from CORRAL_SERVER / CORRAL_TOKEN_FILE / CORRAL_CA. The token file must be
 * private (0600); the CA file is the server's DIR/ca.pem.
 */
#include "admin.h"

#include "cleanup.h"
#include "util.h"

#include <corral.pb-c.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESPONSE_MAX (64u * 1024u * 1024u)
#define TOKEN_MAX    1024u
#define UPLOAD_MAX   (4u * 1024u * 1024u + 1u)

/* ---- argument parsing ------------------------------------------------------------------------ */

struct args {
	const char *server, *token_file, *ca;
	const char *opt[16][2]; /* --name value */
	size_t n_opt;
	bool json;
	const char *pos[4];
	size_t n_pos;
};

/* Options that take a value; everything else starting with -- is a flag (only --json). */
static const char *const valued[] = {"--server", "--token-file", "--ca",     "--group",
                                     "--uses",   "--expires",    "--device", "--kind",
                                     "--since",  "--limit",      "--role",   "--name"};

static int parse_args(int argc, char **argv, struct args *a, const char *usage)
{
	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
			printf("usage: corral-admin %s %s\n", argv[0], usage);
			printf("  connection: --server URL --token-file FILE --ca FILE (or "
			       "CORRAL_SERVER, CORRAL_TOKEN_FILE, CORRAL_CA)\n");
			return 1;
		}
		if (strcmp(s, "--json") == 0) {
			a->json = true;
			continue;
		}
		bool known = false;
		for (size_t k = 0; k < ELEMENTSOF(valued); k++)
			if (strcmp(s, valued[k]) == 0)
				known = true;
		if (known) {
			if (i + 1 >= argc) {
				fprintf(stderr, "corral-admin: %s needs a value\n", s);
				return -EINVAL;
			}
			const char *v = argv[++i];
			if (strcmp(s, "--server") == 0)
				a->server = v;
			else if (strcmp(s, "--token-file") == 0)
				a->token_file = v;
			else if (strcmp(s, "--ca") == 0)
				a->ca = v;
			else if (a->n_opt < ELEMENTSOF(a->opt)) {
				a->opt[a->n_opt][0] = s + 2;
				a->opt[a->n_opt][1] = v;
				a->n_opt++;
			}
			continue;
		}
		if (util_startswith(s, "-")) {
			fprintf(stderr,
			        "corral-admin: unknown option %s\nusage: corral-admin %s %s\n", s,
			        argv[0], usage);
			return -EINVAL;
		}
		if (a->n_pos >= ELEMENTSOF(a->pos)) {
			fprintf(stderr, "corral-admin: too many arguments\n");
			return -EINVAL;
		}
		a->pos[a->n_pos++] = s;
	}
	if (!a->server)
		a->server = getenv("CORRAL_SERVER");
	if (!a->token_file)
		a->token_file = getenv("CORRAL_TOKEN_FILE");
	if (!a->ca)
		a->ca = getenv("CORRAL_CA");
	if (!a->server || !a->token_file) {
		fprintf(stderr, "corral-admin: --server and --token-file (or CORRAL_SERVER and "
		                "CORRAL_TOKEN_FILE) are required\n");
		return -EINVAL;
	}
	return 0;
}

static const char *opt(const struct args *a, const char *name)
{
	for (size_t i = 0; i < a->n_opt; i++)
		if (strcmp(a->opt[i][0], name) == 0)
			return a->opt[i][1];
	return NULL;
}

/* ---- HTTP ------------------------------------------------------------------------------- */

struct buf {
	char *data;
	size_t len;
	bool overflow;
};

static size_t on_data(char *p, size_t size, size_t n, void *userdata)
{
	struct buf *b = userdata;
	size_t add = size * n;
	if (add > RESPONSE_MAX - b->len) {
		b->overflow = true;
		return 0;
	}
	char *nd = realloc(b->data, b->len + add + 1);
	if (!nd)
		return 0;
	memcpy(nd + b->len, p, add);
	b->len += add;
	nd[b->len] = '\0';
	b->data = nd;
	return add;
}

/*
 * One request to the admin API. `path` is below /api/v1/. On success returns the HTTP status
 * and *ret_body (caller frees, NUL-terminated, may be empty).
 */
static int request(const struct args *a, const char *method, const char *path, const char *ctype,
                   const void *body, size_t len, char **ret_body)
{
	int r = util_check_secret_file(a->token_file);
	if (r < 0) {
		fprintf(stderr, "corral-admin: %s: %s (the token file must be 0600)\n",
		        a->token_file, strerror(-r));
		return r;
	}
	_cleanup_free_ char *token = NULL;
	size_t tlen = 0;
	r = util_read_file(a->token_file, TOKEN_MAX, &token, &tlen);
	if (r < 0) {
		fprintf(stderr, "corral-admin: %s: %s\n", a->token_file, strerror(-r));
		return r;
	}
	while (tlen && isspace((unsigned char)token[tlen - 1]))
		token[--tlen] = '\0';
	_cleanup_free_ char *url = NULL, *auth = NULL;
	const char *base = a->server;
	size_t bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		bl--;
	if (asprintf(&url, "%.*s/api/v1/%s", (int)bl, base, path) < 0 ||
	    asprintf(&auth, "Authorization: Bearer %s", token) < 0)
		return -ENOMEM;
	CURL *c = curl_easy_init();
	if (!c)
		return -ENOMEM;
	struct curl_slist *h = curl_slist_append(NULL, auth);
	char ct[128];
	if (ctype) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
		h = curl_slist_append(h, ct);
	}
	h = curl_slist_append(h, "Expect:");
	struct buf out = {0};
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	if (a->ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, a->ca);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	CURLcode cr = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	memset(auth, 0, strlen(auth));
	if (cr != CURLE_OK) {
		fprintf(stderr, "corral-admin: %s: %s\n", url,
		        out.overflow ? "response too large" : curl_easy_strerror(cr));
		free(out.data);
		return -EIO;
	}
	*ret_body = out.data ? out.data : strdup("");
	return (int)status;
}

/* Sends a request and parses a JSON reply; prints the server's error and returns -1 on error
 * statuses. */
static int call_json(const struct args *a, const char *method, const char *path, json_t *body,
                     json_t **ret)
{
	_cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	_cleanup_free_ char *resp = NULL;
	int status = request(a, method, path, body ? "application/json" : NULL, text,
	                     text ? strlen(text) : 0, &resp);
	if (status < 0)
		return status;
	json_t *j = json_loads(resp, 0, NULL);
	if (status < 200 || status >= 300) {
		const char *e = json_string_value(json_object_get(j, "error"));
		const char *d = json_string_value(json_object_get(j, "detail"));
		fprintf(stderr, "corral-admin: server said %d: %s: %s\n", status, e ? e : "error",
		        d ? d : resp);
		json_decref(j);
		return -EPROTO;
	}
	if (!j) {
		fprintf(stderr, "corral-admin: server reply is not JSON\n");
		return -EBADMSG;
	}
	*ret = j;
	return 0;
}

static void print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2));
	if (s)
		printf("%s\n", s);
	free(s);
}

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static long long jint(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static char *fmt_time(long long t, char *buf, size_t len)
{
	if (t <= 0)
		return snprintf(buf, len, "-"), buf;
	return util_format_rfc3339(t, buf, len);
}

/* URL-encodes a query value (names are restricted, but stay correct). */
static char *esc(const char *s)
{
	CURL *c = curl_easy_init();
	char *e = c ? curl_easy_escape(c, s, 0) : NULL;
	char *r = e ? strdup(e) : NULL;
	curl_free(e);
	if (c)
		curl_easy_cleanup(c);
	return r;
}

/* ---- commands ------------------------------------------------------------------------------ */

static int cmd_enroll_token_create(int argc, char **argv)
{
	struct args a;
	int r = parse_args(argc, argv, &a, "--group G --uses N --expires D");
	if (r)
		return r > 0 ? 0 : 2;
	const char *group = opt(&a, "group"), *uses = opt(&a, "uses"), *exp = opt(&a, "expires");
	uint64_t n = 0;
	int64_t expires = 0;
	if (!group || !uses || !exp || util_parse_u64(uses, &n) < 0 || n == 0 ||
	    util_parse_expiry(exp, util_now_sec(), &expires) < 0) {
		fprintf(stderr, "usage: corral-admin enroll-token create --group G --uses N "
		                "--expires D (30m, 7d or RFC 3339)\n");
		return 2;
	}
	json_t *j = NULL;
	json_t *body = json_pack("{ss sI sI}", "group", group, "uses", (json_int_t)n, "expires_at",
	                         (json_int_t)expires);
	r = call_json(&a, "POST", "enroll-tokens", body, &j);
	json_decref(body);
	if (r < 0)
		return 1;
	if (a.json)
		print_json(j);
	else {
		char t[32];
		/* The token is shown once and never again: only its hash is stored. */
		printf("%s\n", jstr(j, "token"));
		fprintf(stderr, "enrollment token for group %s, %lld use(s), expires %s\n", group,
		        jint(j, "uses"), fmt_time(jint(j, "expires_at"), t, sizeof(t)));
	}
	json_decref(j);
	return 0;
}

static int cmd_group_create(int argc, char **argv)
{
	struct args a;
	int r = parse_args(argc, argv, &a, "NAME");
	if (r)
		return r > 0 ? 0 : 2;
	if (a.n_pos != 1) {
		fprintf(stderr, "usage: corral-admin group create NAME\n");
		return 2;
	}
	json_t *j = NULL, *body = json_pack("{ss}", "name", a.pos[0]);
	r = call_json(&a, "POST", "groups", body, &j);
	json_decref(body);
	if (r < 0)
		return 1;
	printf("created group %s\n", jstr(j, "name"));
	json_decref(j);
	return 0;
}

static int cmd_group_list(int argc, char **argv)
{
	struct args a;
	int r = parse_args(argc, argv, &a, "[--json]");
	if (r)
		return r > 0 ? 0 : 2;
	json_t *j = NULL;
	if (call_json(&a, "GET", "groups", NULL, &j) < 0)
		return 1;
	if (a.json)
		print_json(j);
	else {
		printf("%-24s %8s %8s  %s\n", "GROUP", "DEVICES", "POLICY", "CREATED BY");
		size_t i;
		json_t *g;
		json_array_foreach (j, i, g)
			printf("%-24s %8lld %8lld  %s\n", jstr(g, "name"), jint(g, "devices"),
			       jint(g, "policy_version"), jstr(g, "created_by"));
	}
	json_decref(j);
	return 0;
}

static void print_device(const json_t *d)
{
	char t1[32], t2[32];
	printf("%-28s %-12s %-20s %7lld %-9s %-20s %s\n", jstr(d, "device_id"), jstr(d, "group"),
	       jstr(d, "hostname"), jint(d, "policy_version"), jstr(d, "freshness"),
	       fmt_time(jint(d, "last_seen"), t1, sizeof(t1)),
	       json_is_true(json_object_get(d, "revoked"))
	               ? "REVOKED"
	               : fmt_time(jint(d, "cert_expires_at"), t2, sizeof(t2)));
}

static int cmd_device_list(int argc, char **argv)
{
	struct args a;
	int r = parse_args(argc, argv, &a, "[--group G] [--json]");
	if (r)
		return r > 0 ? 0 : 2;
	_cleanup_free_ char *path = NULL, *g = opt(&a, "group") ? esc(opt(&a, "group")) : NULL;
	if (asprintf(&path, "devices%s%s", g ? "?group=" : "", g ? g : "") < 0)
		return 1;
	json_t *j = NULL;
	if (call_json(&a, "GET", path, NULL, &j) < 0)
		return 1;
	if (a.json)
		print_json(j);
	else {
		printf("%-28s %-12s %-20s %7s %-9s %-20s %s\n", "DEVICE", "GROUP", "HOSTNAME",
		       "POLICY", "FRESH", "LAST SEEN", "CERT EXPIRES");
		size_t i;
		json_t *d;
		json_array_foreach (j, i, d)
			print_device(d);
	}
	json_decref(j);
	return 0;
}

/* `device show|revoke ID`: parses, then `method` devices/ID`suffix`. Returns -1 with *ret and
 * the parsed args, or the command's exit status. */
static int device_call(int argc, char **argv, const char *cmd, const char *method,
                       const char *suffix, const char *usage, struct args *a, json_t **ret)
{
	int r = parse_args(argc, argv, a, usage);
	if (r)
		return r > 0 ? 0 : 2;
	if (a->n_pos != 1) {
		fprintf(stderr, "usage: corral-admin device %s %s\n", cmd, usage);
		return 2;
	}
	_cleanup_free_ char *path = NULL, *id = esc(a->pos[0]);
	if (!id || asprintf(&path, "devices/%s%s", id, suffix) < 0)
		return 1;
	if (call_json(a, method, path, NULL, ret) < 0)
		return 1;
	return -1;
}

static int cmd_device_show(int argc, char **argv)
{
	struct args a;
	json_t *j = NULL;
	int r = device_call(argc, argv, "show", "GET", "", "ID [--json]", &a, &j);
	if (r >= 0)
		return r;
	if (a.json)
		print_json(j);
	else {
		const char *k;
		json_t *v;
		json_object_foreach (j, k, v) {
			char *s = json_is_string(v) ? strdup(json_string_value(v))
			                            : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			printf("%-20s %s\n", k, s ? s : "");
			free(s);
		}
	}
	json_decref(j);
	return 0;
}

static int cmd_device_revoke(int argc, char **argv)
{
	struct args a;
	json_t *j = NULL;
	int r = device_call(argc, argv, "revoke", "POST", "/revoke", "ID", &a, &j);
	if (r >= 0)
		return r;
	printf("revoked %s\n", a.pos[0]);
	json_decref(j);
	return 0;
}

/* Uploads a signed envelope file; prints "published: version N" or "rejected: CODE: detail". */
static int upload_envelope(const struct args *a, const char *file, const char *path,
                           const char *what)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = util_read_file(file, UPLOAD_MAX, &data, &len);
	if (r == -EFBIG) {
		printf("rejected: too-large: %s is over the envelope size limit\n", file);
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "corral-admin: %s: %s\n", file, strerror(-r));
		return 1;
	}
	_cleanup_free_ char *resp = NULL;
	int status = request(a, "POST", path, "application/octet-stream", data, len, &resp);
	if (status < 0)
		return 1;
	json_t *j = json_loads(resp, 0, NULL);
	int rc = 0;
	if (status == 200)
		printf("%s: version %lld\n", what, jint(j, "version"));
	else {
		printf("rejected: %s: %s\n", j ? jstr(j, "error") : "error",
		       j ? jstr(j, "detail") : resp);
		rc = 1;
	}
	json_decref(j);
	return rc;
}

static int cmd_policy_publish(int argc, char **argv)
{
	struct args a;
	int r = parse_args(argc, argv, &a, "BUNDLE --group G");
	if (r)
		return r > 0 ? 0 : 2;
	const char *group = opt(&a, "group");
	if (a.n_pos != 1 || !group) {
		fprintf(stderr, "usage: corral-admin policy publish BUNDLE --group G\n");
		return 2;
	}
	_cleanup_free_ char *path = NULL, *g = esc(group);
	if (!g || asprintf(&path, "groups/%s/policy", g) < 0)
		return 1;
	return upload_envelope(&a, a.pos[0], path, "published");
}

static int cmd_trust_publish(int argc, char **argv)
{
	struct args a;
	int r = parse_args(argc, argv, &a, "ROOT");
	if (r)
		return r > 0 ? 0 : 2;
	if (a.n_pos != 1) {
		fprintf(stderr, "usage: corral-admin trust publish ROOT\n");
		return 2;
	}
	return upload_envelope(&a, a.pos[0], "trust", "published trust root");
}

/*
 * The front of the per-group read commands: `--group G [--json]`, then GET groups/G/SUB.
 * Returns -1 with *ret (the parsed body) and *ret_group set, else the exit code to return.
 */
static int group_get(int argc, char **argv, const char *cmd, const char *sub, struct args *a,
                     const char **ret_group, json_t **ret)
{
	int r = parse_args(argc, argv, a, "--group G [--json]");
	if (r)
		return r > 0 ? 0 : 2;
	const char *group = opt(a, "group");
	if (!group) {
		fprintf(stderr, "usage: corral-admin %s --group G [--json]\n", cmd);
		return 2;
	}
	_cleanup_free_ char *path = NULL, *g = esc(group);
	if (!g || asprintf(&path, "groups/%s/%s", g, sub) < 0)
		return 1;
	if (call_json(a, "GET", path, NULL, ret) < 0)
		return 1;
	*ret_group = group;
	return -1;
}

static int cmd_policy_history(int argc, char **argv)
{
	struct args a;
	const char *group;
	json_t *j = NULL;
	int r = group_get(argc, argv, "policy history", "policy", &a, &group, &j);
	if (r >= 0)
		return r;
	if (a.json)
		print_json(j);
	else {
		printf("%8s  %-20s %-20s %-16s %s\n", "VERSION", "PUBLISHED", "EXPIRES", "SHA256",
		       "BY");
		size_t i;
		json_t *h;
		json_array_foreach (j, i, h) {
			char t1[32], t2[32];
			printf("%8lld  %-20s %-20s %.16s %s\n", jint(h, "version"),
			       fmt_time(jint(h, "published_ms") / 1000, t1, sizeof(t1)),
			       fmt_time(jint(h, "expires_at"), t2, sizeof(t2)), jstr(h, "sha256"),
			       jstr(h, "published_by"));
		}
	}
	json_decref(j);
	return 0;
}

static int cmd_rollout_status(int argc, char **argv)
{
	struct args a;
	const char *group;
	json_t *j = NULL;
	int r = group_get(argc, argv, "rollout status", "rollout", &a, &group, &j);
	if (r >= 0)
		return r;
	if (a.json)
		print_json(j);
	else {
		printf("group %s: published version %lld, %lld of %lld devices on it\n", group,
		       jint(j, "head_version"), jint(j, "devices_on_head"), jint(j, "devices"));
		size_t i;
		json_t *v;
		json_array_foreach (json_object_get(j, "by_version"), i, v)
			printf("  version %-8lld %lld device(s)\n", jint(v, "version"),
			       jint(v, "devices"));
		json_t *l = json_object_get(j, "apply_latency_ms");
		printf("publish -> applied (%lld devices reported): p50 %lld ms, p95 %lld ms, p99 "
		       "%lld ms\n",
		       jint(l, "n"), jint(l, "p50"), jint(l, "p95"), jint(l, "p99"));
	}
	json_decref(j);
	return 0;
}

/* "violation", "policy-applied", "EVENT_KIND_HEARTBEAT" or a number -> kind number. */
static int parse_kind(const char *s)
{
	uint64_t n;
	if (util_parse_u64(s, &n) == 0)
		return n < 1000 ? (int)n : -1;
	char name[64] = "EVENT_KIND_";
	const char *src = util_startswith(s, "EVENT_KIND_") ? s + 11 : s;
	size_t off = strlen(name);
	for (; *src && off < sizeof(name) - 1; src++)
		name[off++] = *src == '-' ? '_' : (char)toupper((unsigned char)*src);
	name[off] = '\0';
	const ProtobufCEnumValue *v =
	        protobuf_c_enum_descriptor_get_value_by_name(&corral__event_kind__descriptor, name);
	return v ? v->value : -1;
}

static int cmd_events_query(int argc, char **argv)
{
	struct args a;
	int r = parse_args(argc, argv, &a,
	                   "[--device D] [--kind K] [--since T] [--limit N] [--json]");
	if (r)
		return r > 0 ? 0 : 2;
	char q[512] = "events?x=1";
	size_t off = strlen(q);
	const char *dev = opt(&a, "device"), *kind = opt(&a, "kind"), *since = opt(&a, "since"),
	           *limit = opt(&a, "limit");
	if (dev) {
		_cleanup_free_ char *e = esc(dev);
		off += (size_t)snprintf(q + off, sizeof(q) - off, "&device=%s", e ? e : "");
	}
	if (kind) {
		int k = parse_kind(kind);
		if (k < 0) {
			fprintf(stderr, "corral-admin: unknown event kind '%s'\n", kind);
			return 2;
		}
		off += (size_t)snprintf(q + off, sizeof(q) - off, "&kind=%d", k);
	}
	if (since) {
		int64_t t, d;
		if (util_parse_duration(since, &d) == 0)
			t = util_now_sec() - d;
		else if (util_parse_rfc3339(since, &t) < 0) {
			fprintf(stderr,
			        "corral-admin: --since takes a duration (1h) or RFC 3339\n");
			return 2;
		}
		off += (size_t)snprintf(q + off, sizeof(q) - off, "&since=%lld",
		                        (long long)(t < 0 ? 0 : t) * 1000);
	}
	if (limit) {
		uint64_t n;
		if (util_parse_u64(limit, &n) < 0) {
			fprintf(stderr, "corral-admin: --limit takes a number\n");
			return 2;
		}
		off += (size_t)snprintf(q + off, sizeof(q) - off, "&limit=%llu",
		                        (unsigned long long)n);
	}
	if (off >= sizeof(q))
		return 2;
	json_t *j = NULL;
	if (call_json(&a, "GET", q, NULL, &j) < 0)
		return 1;
	if (a.json)
		print_json(j);
	else {
		printf("%-24s %-28s %8s %-28s %s\n", "TIME", "DEVICE", "SEQ", "KIND", "DETAIL");
		size_t i;
		json_t *e;
		json_array_foreach (j, i, e) {
			char t[32];
			long long ms = jint(e, "time_ms");
			_cleanup_free_ char *d = json_dumps(json_object_get(e, "detail"),
			                                    JSON_COMPACT | JSON_ENCODE_ANY);
			printf("%-20s.%03lld %-28s %8lld %-28s %s\n",
			       fmt_time(ms / 1000, t, sizeof(t)), ms % 1000, jstr(e, "device_id"),
			       jint(e, "seq"), jstr(e, "kind"), d ? d : "");
		}
	}
	json_decref(j);
	return 0;
}

static int cmd_audit(int argc, char **argv)
{
	struct args a;
	int r = parse_args(argc, argv, &a, "[--limit N] [--json]");
	if (r)
		return r > 0 ? 0 : 2;
	char path[64] = "audit";
	const char *limit = opt(&a, "limit");
	uint64_t n = 0;
	if (limit) {
		if (util_parse_u64(limit, &n) < 0) {
			fprintf(stderr, "corral-admin: --limit takes a number\n");
			return 2;
		}
		snprintf(path, sizeof(path), "audit?limit=%llu", (unsigned long long)n);
	}
	json_t *j = NULL;
	if (call_json(&a, "GET", path, NULL, &j) < 0)
		return 1;
	if (a.json)
		print_json(j);
	else {
		size_t i;
		json_t *e;
		json_array_foreach (j, i, e) {
			char t[32];
			printf("%s  %-36s %-20s %-20s %s\n",
			       fmt_time(jint(e, "at_ms") / 1000, t, sizeof(t)), jstr(e, "actor"),
			       jstr(e, "action"), jstr(e, "target"), jstr(e, "detail"));
		}
	}
	json_decref(j);
	return 0;
}

static int cmd_token_create(int argc, char **argv)
{
	struct args a;
	int r = parse_args(argc, argv, &a, "--role admin|viewer --name N");
	if (r)
		return r > 0 ? 0 : 2;
	const char *role = opt(&a, "role"), *name = opt(&a, "name");
	if (!role || !name) {
		fprintf(stderr, "usage: corral-admin token create --role admin|viewer --name N\n");
		return 2;
	}
	json_t *j = NULL, *body = json_pack("{ss ss}", "role", role, "name", name);
	r = call_json(&a, "POST", "tokens", body, &j);
	json_decref(body);
	if (r < 0)
		return 1;
	if (a.json)
		print_json(j);
	else {
		printf("%s\n", jstr(j, "token"));
		fprintf(stderr, "%s token '%s' created; it is shown only this once\n", role, name);
	}
	json_decref(j);
	return 0;
}

const struct admin_command admin_online_commands[] = {
        {"enroll-token create", "--group G --uses N --expires D",
         "create an enrollment token (printed once)", cmd_enroll_token_create},
        {"group create", "NAME", "create a device group", cmd_group_create},
        {"group list", "[--json]", "list device groups", cmd_group_list},
        {"device list", "[--group G] [--json]", "list devices and their compliance",
         cmd_device_list},
        {"device show", "ID [--json]", "show one device", cmd_device_show},
        {"device revoke", "ID", "revoke a device (refused at once)", cmd_device_revoke},
        {"policy publish", "BUNDLE --group G", "publish (or promote) a signed bundle to a group",
         cmd_policy_publish},
        {"policy history", "--group G [--json]", "versions published to a group",
         cmd_policy_history},
        {"rollout status", "--group G [--json]", "devices per version, publish->applied latency",
         cmd_rollout_status},
        {"events query", "[--device D] [--kind K] [--since T] [--limit N] [--json]",
         "query device events", cmd_events_query},
        {"trust publish", "ROOT", "publish a signed trust root", cmd_trust_publish},
        {"audit", "[--limit N] [--json]", "show the admin audit log", cmd_audit},
        {"token create", "--role admin|viewer --name N", "create an admin API token (printed once)",
         cmd_token_create},
        {NULL, NULL, NULL, NULL},
};
