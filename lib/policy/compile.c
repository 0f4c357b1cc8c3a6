// SPDX-License-Identifier: Apache-2.0
/*
 * The policy compiler: JSON (schema/policy.schema.json) into the protobuf corral.Policy.
 *
 * Strict by design: an unknown field, a wrong type or an out-of-range value stops compilation
 * with the JSON pointer of the offending value and a plain reason, because a typo in a sandbox
 * policy ("netwrok") silently ignored is a hole nobody sees. The size cap is checked before
 * jansson sees a byte. Every sub-message of every profile is always present in the output, with
 * the language's defaults filled in, so consumers never have to guess what "absent" means.
 *
 * Memory: the Policy is built with malloc'd members so the caller frees it with
 * corral__policy__free_unpacked(p, NULL); repeated fields get their count set as soon as the
 * array is allocated (entries start NULL, which free_unpacked tolerates), so an error part way
 * through frees cleanly.
 */
#include "policy.h"
#include "policy-internal.h"

#include <errno.h>
#include <jansson.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "util.h"

/* Caps on list lengths and text fields; the 1 MiB source cap bounds the rest. */
#define LIST_MAX            1024
#define PROFILES_MAX        64
#define NAME_MAX_LEN        128
#define DESCRIPTION_MAX_LEN 1024
#define MEMORY_MIN          (UINT64_C(1) << 20)
#define PIDS_MAX            4194304
#define CPU_MAX_PERCENT     102400 /* 1024 CPUs */
#define LANDLOCK_ABI_MAX    7

struct compile_ctx {
	char ptr[1024]; /* JSON pointer of the value being compiled */
	size_t ptr_len;
	struct policy_error *err;
};

/* jansson ships the destructor (json_decrefp, behind json_auto_t); name it our way. */
#define _cleanup_json_ _cleanup_(json_decrefp)

/* Appends "/key" (RFC 6901 escaped) and returns the previous length for ctx_pop(). */
static size_t ctx_push(struct compile_ctx *c, const char *key)
{
	size_t saved = c->ptr_len;
	size_t o = c->ptr_len;
	size_t cap = sizeof(c->ptr) - 1;
	if (o < cap)
		c->ptr[o++] = '/';
	for (const char *k = key; *k && o < cap; k++) {
		if (*k == '~' || *k == '/') {
			if (o + 2 > cap)
				break;
			c->ptr[o++] = '~';
			c->ptr[o++] = *k == '~' ? '0' : '1';
		} else {
			c->ptr[o++] = *k;
		}
	}
	c->ptr[o] = '\0';
	c->ptr_len = o;
	return saved;
}

static size_t ctx_push_index(struct compile_ctx *c, size_t idx)
{
	char num[24];
	snprintf(num, sizeof(num), "%zu", idx);
	return ctx_push(c, num);
}

static void ctx_pop(struct compile_ctx *c, size_t saved)
{
	c->ptr_len = saved;
	c->ptr[saved] = '\0';
}

static void set_error(struct compile_ctx *c, const char *reason)
{
	if (!c->err)
		return;
	/* The pointer may hold raw key bytes: no control character is ever printed. */
	size_t n =
	        c->ptr_len < sizeof(c->err->pointer) - 1 ? c->ptr_len : sizeof(c->err->pointer) - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)c->ptr[i];
		c->err->pointer[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	c->err->pointer[n] = '\0';
	snprintf(c->err->reason, sizeof(c->err->reason), "%s", reason);
}

static int fail(struct compile_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct compile_ctx *c, const char *fmt, ...)
{
	char reason[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	set_error(c, reason);
	return -EINVAL;
}

static int oom(struct compile_ctx *c)
{
	set_error(c, "out of memory");
	return -ENOMEM;
}

static const char *json_type_name(const json_t *v)
{
	if (!v)
		return "missing";
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number with a fraction";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "unknown";
}

/* Refuses keys not in `allowed` (NULL-terminated), naming the first unknown one. */
static int check_fields(struct compile_ctx *c, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach (obj, key, v) {
		bool known = false;
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(key, *a) == 0)
				known = true;
		if (!known) {
			char list[200];
			size_t o = 0;
			list[0] = '\0';
			for (const char *const *a = allowed; *a && o < sizeof(list); a++)
				o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
				                      a == allowed ? "" : ", ", *a);
			ctx_push(c, key);
			return fail(c, "unknown field (expected one of: %s)", list);
		}
	}
	return 0;
}

/* Looks up `key` and checks its type; *ret = NULL when absent. */
static int get_typed(struct compile_ctx *c, json_t *obj, const char *key, json_type type,
                     const char *what, json_t **ret)
{
	json_t *v = json_object_get(obj, key);
	*ret = NULL;
	if (!v)
		return 0;
	bool ok = json_typeof(v) == type || (type == JSON_TRUE && json_is_boolean(v));
	if (!ok) {
		size_t saved = ctx_push(c, key);
		int r = fail(c, "must be %s, not %s", what, json_type_name(v));
		ctx_pop(c, saved);
		return r;
	}
	*ret = v;
	return 0;
}

static int require(struct compile_ctx *c, json_t *obj, const char *key)
{
	if (json_object_get(obj, key))
		return 0;
	return fail(c, "missing required field \"%s\"", key);
}

/* A string without NUL bytes (jansson refuses \u0000 by default; this keeps the invariant). */
static int string_value(struct compile_ctx *c, json_t *v, const char **ret, size_t *ret_len)
{
	const char *s = json_string_value(v);
	if (!s)
		return fail(c, "must be a string, not %s", json_type_name(v));
	size_t len = json_string_length(v);
	if (strlen(s) != len)
		return fail(c, "contains a NUL byte");
	*ret = s;
	*ret_len = len;
	return 0;
}

/* Copies free text (name, description): tabs and newlines allowed in descriptions only. */
static int get_text(struct compile_ctx *c, json_t *obj, const char *key, size_t max, bool multiline,
                    char **dst)
{
	json_t *v;
	int r = get_typed(c, obj, key, JSON_STRING, "a string", &v);
	if (r < 0 || !v)
		return r;
	size_t saved = ctx_push(c, key);
	const char *s = NULL;
	size_t len = 0;
	r = string_value(c, v, &s, &len);
	if (r < 0)
		return r;
	if (len > max)
		return fail(c, "is longer than %zu bytes", max);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch < 0x20 && !(multiline && (ch == '\n' || ch == '\t'))) || ch == 0x7f)
			return fail(c, "contains a control character");
	}
	char *copy = strdup(s);
	if (!copy)
		return oom(c);
	*dst = copy;
	ctx_pop(c, saved);
	return 0;
}

static int get_bool(struct compile_ctx *c, json_t *obj, const char *key, protobuf_c_boolean *dst)
{
	json_t *v;
	int r = get_typed(c, obj, key, JSON_TRUE, "true or false", &v);
	if (r < 0 || !v)
		return r;
	*dst = json_is_true(v);
	return 0;
}

/* Matches a string value against `names`; *dst = index (untouched when absent). */
static int get_enum(struct compile_ctx *c, json_t *obj, const char *key, const char *const *names,
                    size_t n_names, int *dst)
{
	json_t *v;
	int r = get_typed(c, obj, key, JSON_STRING, "a string", &v);
	if (r < 0 || !v)
		return r;
	const char *s = json_string_value(v);
	for (size_t i = 0; i < n_names; i++)
		if (strcmp(s, names[i]) == 0 && strlen(names[i]) == json_string_length(v)) {
			*dst = (int)i;
			return 0;
		}
	char list[128];
	size_t o = 0;
	list[0] = '\0';
	for (size_t i = 0; i < n_names && o < sizeof(list); i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s\"%s\"",
		                      i == 0 ? "" : (i + 1 == n_names ? " or " : ", "), names[i]);
	char q[64];
	ctx_push(c, key);
	return fail(c, "\"%s\" is not one of %s",
	            policy_quote(s, json_string_length(v), q, sizeof(q)), list);
}

/* An integer in [lo, hi]; `what` names the unit in the error ("a port (1-65535)"). */
static int int_in_range(struct compile_ctx *c, json_t *v, long long lo, long long hi,
                        const char *what, long long *ret)
{
	if (!json_is_integer(v))
		return fail(c, "must be an integer, not %s", json_type_name(v));
	long long n = json_integer_value(v);
	if (n < lo || n > hi)
		return fail(c, "%lld is not %s", n, what);
	*ret = n;
	return 0;
}

/* Gets an array field, checking type and length; *ret = NULL when absent. */
static int get_array(struct compile_ctx *c, json_t *obj, const char *key, size_t max, json_t **ret)
{
	int r = get_typed(c, obj, key, JSON_ARRAY, "an array", ret);
	if (r < 0 || !*ret)
		return r;
	if (json_array_size(*ret) > max) {
		size_t saved = ctx_push(c, key);
		r = fail(c, "has more than %zu entries", max);
		ctx_pop(c, saved);
		return r;
	}
	return 0;
}

static int get_object(struct compile_ctx *c, json_t *obj, const char *key, json_t **ret)
{
	return get_typed(c, obj, key, JSON_OBJECT, "an object", ret);
}

/* ---- filesystem ---------------------------------------------------------------------------- */

static int compile_path_list(struct compile_ctx *c, json_t *obj, const char *key, size_t *n_dst,
                             char ***dst)
{
	json_t *arr;
	int r = get_array(c, obj, key, LIST_MAX, &arr);
	if (r < 0 || !arr)
		return r;
	size_t saved = ctx_push(c, key);
	size_t n = json_array_size(arr);
	if (n > 0) {
		*dst = calloc(n, sizeof(char *));
		if (!*dst)
			return oom(c);
		*n_dst = n;
	}
	size_t i;
	json_t *v;
	json_array_foreach (arr, i, v) {
		size_t s2 = ctx_push_index(c, i);
		if (!json_is_string(v))
			return fail(c, "must be a path string, not %s", json_type_name(v));
		const char *s = NULL;
		size_t len = 0;
		r = string_value(c, v, &s, &len);
		if (r < 0)
			return r;
		char why[200];
		r = policy_path_normalize(s, len, &(*dst)[i], why, sizeof(why));
		if (r == -ENOMEM)
			return oom(c);
		if (r < 0)
			return fail(c, "%s", why);
		ctx_pop(c, s2);
	}
	ctx_pop(c, saved);
	return 0;
}

/* Checks one element of a string list; returns 0 or fail()'s -EINVAL with the reason. */
typedef int (*str_check_fn)(struct compile_ctx *c, const char *s, size_t len, const void *data);

/*
 * A list of at most `max` strings at obj.key: each element must be a string (`what` names it
 * in the type error, e.g. "a system call name"), pass `check`, and with `unique` appear once.
 * Copies go to *dst / *n_dst (left as they are for a missing or empty list).
 */
static int compile_string_list(struct compile_ctx *c, json_t *obj, const char *key, size_t max,
                               const char *what, bool unique, str_check_fn check, const void *data,
                               size_t *n_dst, char ***dst)
{
	json_t *arr;
	int r = get_array(c, obj, key, max, &arr);
	if (r < 0 || !arr || json_array_size(arr) == 0)
		return r;
	size_t saved = ctx_push(c, key);
	size_t n = json_array_size(arr);
	*dst = calloc(n, sizeof(char *));
	if (!*dst)
		return oom(c);
	*n_dst = n;
	size_t i;
	json_t *v;
	json_array_foreach (arr, i, v) {
		size_t s2 = ctx_push_index(c, i);
		if (!json_is_string(v))
			return fail(c, "must be %s, not %s", what, json_type_name(v));
		const char *s = NULL;
		size_t len = 0;
		if ((r = string_value(c, v, &s, &len)) < 0 || (r = check(c, s, len, data)) < 0)
			return r;
		if (unique)
			for (size_t k = 0; k < i; k++)
				if (strcmp((*dst)[k], s) == 0)
					return fail(c, "\"%s\" is listed twice", s);
		(*dst)[i] = strdup(s);
		if (!(*dst)[i])
			return oom(c);
		ctx_pop(c, s2);
	}
	ctx_pop(c, saved);
	return 0;
}

static int compile_filesystem(struct compile_ctx *c, json_t *obj, Corral__FilesystemRules *fs)
{
	static const char *const fields[] = {"read", "write", "execute", "deny", NULL};
	int r = check_fields(c, obj, fields);
	if (r < 0)
		return r;
	if ((r = compile_path_list(c, obj, "read", &fs->n_read, &fs->read)) < 0 ||
	    (r = compile_path_list(c, obj, "write", &fs->n_write, &fs->write)) < 0 ||
	    (r = compile_path_list(c, obj, "execute", &fs->n_execute, &fs->execute)) < 0 ||
	    (r = compile_path_list(c, obj, "deny", &fs->n_deny, &fs->deny)) < 0)
		return r;
	return 0;
}

/* ---- network ------------------------------------------------------------------------------- */

static int parse_port_range(struct compile_ctx *c, json_t *v, uint32_t *lo, uint32_t *hi)
{
	if (!json_is_string(v))
		return fail(c, "must be a string \"LOW-HIGH\", not %s", json_type_name(v));
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	char q[64];
	unsigned long a = 0, b = 0;
	size_t i = 0, da = 0, db = 0;
	while (i < len && s[i] >= '0' && s[i] <= '9' && da < 6) {
		a = a * 10 + (unsigned long)(s[i++] - '0');
		da++;
	}
	bool ok = da > 0 && da <= 5 && i < len && s[i] == '-';
	if (ok) {
		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9' && db < 6) {
			b = b * 10 + (unsigned long)(s[i++] - '0');
			db++;
		}
		ok = db > 0 && db <= 5 && i == len;
	}
	if (!ok)
		return fail(c, "\"%s\" is not a port range (LOW-HIGH)",
		            policy_quote(s, len, q, sizeof(q)));
	if (a < 1 || a > 65535)
		return fail(c, "%lu is not a port (1-65535)", a);
	if (b < 1 || b > 65535)
		return fail(c, "%lu is not a port (1-65535)", b);
	if (a > b)
		return fail(c, "range %lu-%lu is reversed (LOW must not exceed HIGH)", a, b);
	*lo = (uint32_t)a;
	*hi = (uint32_t)b;
	return 0;
}

static int compile_network_rule(struct compile_ctx *c, json_t *obj, Corral__NetworkRule *rule)
{
	static const char *const fields[] = {"cidr", "port", "ports", "protocol", NULL};
	static const char *const protocols[] = {"tcp", "udp", "any"};
	if (!json_is_object(obj))
		return fail(c, "must be an object, not %s", json_type_name(obj));
	int r = check_fields(c, obj, fields);
	if (r < 0)
		return r;
	if ((r = require(c, obj, "cidr")) < 0)
		return r;
	json_t *cidr;
	if ((r = get_typed(c, obj, "cidr", JSON_STRING, "a string", &cidr)) < 0)
		return r;
	size_t saved = ctx_push(c, "cidr");
	const char *s = NULL;
	size_t len = 0;
	if ((r = string_value(c, cidr, &s, &len)) < 0)
		return r;
	char why[200];
	r = policy_cidr_canonical(s, len, &rule->cidr, why, sizeof(why));
	if (r == -ENOMEM)
		return oom(c);
	if (r < 0)
		return fail(c, "%s", why);
	ctx_pop(c, saved);

	json_t *port = json_object_get(obj, "port");
	json_t *ports = json_object_get(obj, "ports");
	if (port && ports)
		return fail(c, "give either \"port\" or \"ports\", not both");
	if (!port && !ports)
		return fail(c, "missing required field \"port\" (or \"ports\": \"LOW-HIGH\")");
	if (port) {
		saved = ctx_push(c, "port");
		long long p = 0;
		if ((r = int_in_range(c, port, 1, 65535, "a port (1-65535)", &p)) < 0)
			return r;
		rule->port_min = rule->port_max = (uint32_t)p;
	} else {
		saved = ctx_push(c, "ports");
		if ((r = parse_port_range(c, ports, &rule->port_min, &rule->port_max)) < 0)
			return r;
	}
	ctx_pop(c, saved);
	int proto = CORRAL__PROTOCOL__PROTOCOL_TCP;
	if ((r = get_enum(c, obj, "protocol", protocols, ELEMENTSOF(protocols), &proto)) < 0)
		return r;
	rule->protocol = (Corral__Protocol)proto;
	return 0;
}

static int compile_network(struct compile_ctx *c, json_t *obj, Corral__NetworkRules *net)
{
	static const char *const fields[] = {"default", "allow", "hosts", "dns", NULL};
	static const char *const defaults[] = {"deny", "allow"};
	static const char *const dns[] = {"deny", "filtered", "open"};
	int r = check_fields(c, obj, fields);
	if (r < 0)
		return r;
	int def = 0;
	if ((r = get_enum(c, obj, "default", defaults, ELEMENTSOF(defaults), &def)) < 0)
		return r;
	net->default_allow = def == 1;

	json_t *arr;
	if ((r = get_array(c, obj, "allow", LIST_MAX, &arr)) < 0)
		return r;
	if (arr && json_array_size(arr) > 0) {
		size_t saved = ctx_push(c, "allow");
		size_t n = json_array_size(arr);
		net->allow = calloc(n, sizeof(Corral__NetworkRule *));
		if (!net->allow)
			return oom(c);
		net->n_allow = n;
		size_t i;
		json_t *v;
		json_array_foreach (arr, i, v) {
			size_t s2 = ctx_push_index(c, i);
			net->allow[i] = malloc(sizeof(Corral__NetworkRule));
			if (!net->allow[i])
				return oom(c);
			corral__network_rule__init(net->allow[i]);
			if ((r = compile_network_rule(c, v, net->allow[i])) < 0)
				return r;
			ctx_pop(c, s2);
		}
		ctx_pop(c, saved);
	}

	if ((r = get_array(c, obj, "hosts", LIST_MAX, &arr)) < 0)
		return r;
	if (arr && json_array_size(arr) > 0) {
		size_t saved = ctx_push(c, "hosts");
		size_t n = json_array_size(arr);
		net->hosts = calloc(n, sizeof(Corral__HostRule *));
		if (!net->hosts)
			return oom(c);
		net->n_hosts = n;
		size_t i;
		json_t *v;
		json_array_foreach (arr, i, v) {
			size_t s2 = ctx_push_index(c, i);
			if (!json_is_string(v))
				return fail(c, "must be a string \"HOST:PORT\", not %s",
				            json_type_name(v));
			Corral__HostRule *h = malloc(sizeof(*h));
			if (!h)
				return oom(c);
			corral__host_rule__init(h);
			net->hosts[i] = h;
			const char *s = NULL;
			size_t len = 0;
			if ((r = string_value(c, v, &s, &len)) < 0)
				return r;
			char why[200];
			r = policy_host_normalize(s, len, &h->host, &h->port, why, sizeof(why));
			if (r == -ENOMEM)
				return oom(c);
			if (r < 0)
				return fail(c, "%s", why);
			ctx_pop(c, s2);
		}
		ctx_pop(c, saved);
	}

	int d = CORRAL__DNS_MODE__DNS_DENY;
	if ((r = get_enum(c, obj, "dns", dns, ELEMENTSOF(dns), &d)) < 0)
		return r;
	net->dns = (Corral__DnsMode)d;
	return 0;
}

/* ---- syscalls ------------------------------------------------------------------------------ */

static int check_syscall_name(struct compile_ctx *c, const char *s, size_t len, const void *data)
{
	char q[64];
	(void)data;
	/* Resolve only plain names: libseccomp also accepts numbers and pseudo-syscall
	 * spellings that would mean something else. */
	if (len == 0 || len > 64 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != len ||
	    (s[0] >= '0' && s[0] <= '9') ||
	    seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, s) < 0)
		return fail(c, "\"%s\" is not an x86_64 system call",
		            policy_quote(s, len, q, sizeof(q)));
	return 0;
}

static int compile_syscalls(struct compile_ctx *c, json_t *obj, Corral__SyscallRules *sc)
{
	static const char *const fields[] = {"baseline", "deny", "action", NULL};
	static const char *const actions[] = {"errno", "kill", "log"};
	int r = check_fields(c, obj, fields);
	if (r < 0)
		return r;
	protobuf_c_boolean baseline = 1;
	if ((r = get_bool(c, obj, "baseline", &baseline)) < 0)
		return r;
	sc->baseline_disabled = !baseline;

	if ((r = compile_string_list(c, obj, "deny", 512, "a system call name", true,
	                             check_syscall_name, NULL, &sc->n_deny, &sc->deny)) < 0)
		return r;
	int action = CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_ERRNO;
	if ((r = get_enum(c, obj, "action", actions, ELEMENTSOF(actions), &action)) < 0)
		return r;
	sc->action = (Corral__SyscallAction)action;
	return 0;
}

/* ---- resources ----------------------------------------------------------------------------- */

static int compile_resources(struct compile_ctx *c, json_t *obj, Corral__Resources *res)
{
	static const char *const fields[] = {"memory_max", "pids_max", "cpu_max", NULL};
	int r = check_fields(c, obj, fields);
	if (r < 0)
		return r;
	char q[64];
	json_t *v = json_object_get(obj, "memory_max");
	if (v) {
		size_t saved = ctx_push(c, "memory_max");
		uint64_t bytes;
		if (json_is_integer(v)) {
			if (json_integer_value(v) < 0)
				return fail(c, "%lld is not a size", json_integer_value(v));
			bytes = (uint64_t)json_integer_value(v);
		} else if (json_is_string(v)) {
			const char *s = NULL;
			size_t len = 0;
			if ((r = string_value(c, v, &s, &len)) < 0)
				return r;
			if (util_parse_size(s, &bytes) < 0)
				return fail(c,
				            "\"%s\" is not a size (e.g. \"512M\", \"2G\" or bytes)",
				            policy_quote(s, len, q, sizeof(q)));
		} else {
			return fail(c, "must be a size string or integer bytes, not %s",
			            json_type_name(v));
		}
		if (bytes < MEMORY_MIN)
			return fail(c, "%llu bytes is below the minimum of 1M",
			            (unsigned long long)bytes);
		res->memory_max_bytes = bytes;
		ctx_pop(c, saved);
	}
	v = json_object_get(obj, "pids_max");
	if (v) {
		size_t saved = ctx_push(c, "pids_max");
		long long n = 0;
		if ((r = int_in_range(c, v, 1, PIDS_MAX, "a process count (1-4194304)", &n)) < 0)
			return r;
		res->pids_max = (uint32_t)n;
		ctx_pop(c, saved);
	}
	v = json_object_get(obj, "cpu_max");
	if (v) {
		size_t saved = ctx_push(c, "cpu_max");
		long long pct = 0;
		if (json_is_string(v)) {
			const char *s = NULL;
			size_t len = 0;
			if ((r = string_value(c, v, &s, &len)) < 0)
				return r;
			uint64_t u;
			char num[16];
			if (len < 2 || len > 8 || s[len - 1] != '%')
				return fail(c, "\"%s\" is not a percentage (e.g. \"150%%\")",
				            policy_quote(s, len, q, sizeof(q)));
			memcpy(num, s, len - 1);
			num[len - 1] = '\0';
			if (util_parse_u64(num, &u) < 0)
				return fail(c, "\"%s\" is not a percentage (e.g. \"150%%\")",
				            policy_quote(s, len, q, sizeof(q)));
			if (u < 1 || u > CPU_MAX_PERCENT)
				return fail(c, "%llu%% is not a CPU quota (1%%-102400%%)",
				            (unsigned long long)u);
			pct = (long long)u;
		} else if (json_is_integer(v)) {
			if ((r = int_in_range(c, v, 1, CPU_MAX_PERCENT,
			                      "a CPU quota in percent (1-102400)", &pct)) < 0)
				return r;
		} else {
			return fail(c, "must be a percentage string or integer, not %s",
			            json_type_name(v));
		}
		res->cpu_max_percent = (uint32_t)pct;
		ctx_pop(c, saved);
	}
	return 0;
}

/* ---- process ------------------------------------------------------------------------------- */

static bool account_name_ok(const char *s, size_t len)
{
	if (len < 1 || len > 32)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

static bool env_pattern_ok(const char *s, size_t len)
{
	if (len < 1 || len > 128)
		return false;
	if (s[len - 1] == '*')
		len--; /* "PREFIX_*": the prefix must itself be a name (no bare "*") */
	if (len < 1 ||
	    !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static int check_env_pattern(struct compile_ctx *c, const char *s, size_t len, const void *data)
{
	char q[64];
	(void)data;
	if (!env_pattern_ok(s, len))
		return fail(c, "\"%s\" is not a variable name or \"PREFIX_*\" pattern",
		            policy_quote(s, len, q, sizeof(q)));
	return 0;
}

static int compile_process(struct compile_ctx *c, json_t *obj, Corral__ProcessRules *pr)
{
	static const char *const fields[] = {"run_as", "isolation", "env_allow", "allow_root",
	                                     NULL};
	static const char *const isolations[] = {"process", "namespace"};
	int r = check_fields(c, obj, fields);
	if (r < 0)
		return r;
	char q[64];
	json_t *v;
	if ((r = get_typed(c, obj, "run_as", JSON_STRING, "a string", &v)) < 0)
		return r;
	if (v) {
		size_t saved = ctx_push(c, "run_as");
		const char *s = NULL;
		size_t len = 0;
		if ((r = string_value(c, v, &s, &len)) < 0)
			return r;
		if (strcmp(s, "invoker") != 0) {
			if (!account_name_ok(s, len))
				return fail(
				        c, "\"%s\" is neither \"invoker\" nor a local account name",
				        policy_quote(s, len, q, sizeof(q)));
			pr->run_as = strdup(s);
			if (!pr->run_as)
				return oom(c);
		}
		ctx_pop(c, saved);
	}
	int iso = CORRAL__ISOLATION__ISOLATION_PROCESS;
	if ((r = get_enum(c, obj, "isolation", isolations, ELEMENTSOF(isolations), &iso)) < 0)
		return r;
	pr->isolation = (Corral__Isolation)iso;

	if ((r = compile_string_list(c, obj, "env_allow", 256, "a variable name", false,
	                             check_env_pattern, NULL, &pr->n_env_allow, &pr->env_allow)) <
	    0)
		return r;
	return get_bool(c, obj, "allow_root", &pr->allow_root);
}

/* ---- requires, degrade --------------------------------------------------------------------- */

static int check_controller(struct compile_ctx *c, const char *s, size_t len, const void *data)
{
	(void)len;
	(void)data;
	if (strcmp(s, "memory") != 0 && strcmp(s, "pids") != 0 && strcmp(s, "cpu") != 0)
		return fail(c, "must be \"memory\", \"pids\" or \"cpu\"");
	return 0;
}

static int compile_requires(struct compile_ctx *c, json_t *obj, Corral__Requirements *req)
{
	static const char *const fields[] = {"landlock_abi",       "seccomp",
	                                     "cgroup_controllers", "bpf_network",
	                                     "user_namespaces",    NULL};
	static const char *const controllers[] = {"memory", "pids", "cpu"};
	int r = check_fields(c, obj, fields);
	if (r < 0)
		return r;
	json_t *v = json_object_get(obj, "landlock_abi");
	if (v) {
		size_t saved = ctx_push(c, "landlock_abi");
		long long abi = 0;
		if ((r = int_in_range(c, v, 0, LANDLOCK_ABI_MAX, "a Landlock ABI version (0-7)",
		                      &abi)) < 0)
			return r;
		req->landlock_abi = (uint32_t)abi;
		ctx_pop(c, saved);
	}
	if ((r = get_bool(c, obj, "seccomp", &req->seccomp)) < 0)
		return r;
	if ((r = compile_string_list(c, obj, "cgroup_controllers", ELEMENTSOF(controllers),
	                             "\"memory\", \"pids\" or \"cpu\"", true, check_controller,
	                             NULL, &req->n_cgroup_controllers, &req->cgroup_controllers)) <
	    0)
		return r;
	if ((r = get_bool(c, obj, "bpf_network", &req->bpf_network)) < 0)
		return r;
	return get_bool(c, obj, "user_namespaces", &req->user_namespaces);
}

static int compile_degrade(struct compile_ctx *c, json_t *obj, Corral__Degradation *dg)
{
	static const char *const fields[] = {"network_to_landlock_ports", "resources",
	                                     "landlock_partial", NULL};
	int r = check_fields(c, obj, fields);
	if (r < 0)
		return r;
	if ((r = get_bool(c, obj, "network_to_landlock_ports", &dg->network_to_landlock_ports)) <
	            0 ||
	    (r = get_bool(c, obj, "resources", &dg->resources)) < 0)
		return r;
	return get_bool(c, obj, "landlock_partial", &dg->landlock_partial);
}

/* ---- profiles ------------------------------------------------------------------------------ */

static bool profile_name_ok(const char *s)
{
	size_t len = strlen(s);
	if (len < 1 || len > 63)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool alnum = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');
		if (!alnum && !(i > 0 && s[i] == '-'))
			return false;
	}
	return true;
}

/* Allocates every sub-message up front: the output always has all of them. */
static int profile_alloc(Corral__Profile *p)
{
	p->filesystem = malloc(sizeof(*p->filesystem));
	p->network = malloc(sizeof(*p->network));
	p->syscalls = malloc(sizeof(*p->syscalls));
	p->resources = malloc(sizeof(*p->resources));
	p->process = malloc(sizeof(*p->process));
	p->requires = malloc(sizeof(*p->requires));
	p->degrade = malloc(sizeof(*p->degrade));
	if (p->filesystem)
		corral__filesystem_rules__init(p->filesystem);
	if (p->network)
		corral__network_rules__init(p->network);
	if (p->syscalls)
		corral__syscall_rules__init(p->syscalls);
	if (p->resources)
		corral__resources__init(p->resources);
	if (p->process)
		corral__process_rules__init(p->process);
	if (p->requires)
		corral__requirements__init(p->requires);
	if (p->degrade)
		corral__degradation__init(p->degrade);
	if (!p->filesystem || !p->network || !p->syscalls || !p->resources || !p->process ||
	    !p->requires || !p->degrade)
		return -ENOMEM;
	return 0;
}

/* Compiles the optional sub-object `key` with `fn`, under its pointer. */
#define SECTION(c, obj, key, fn, dst)                     \
	({                                                \
		json_t *_sec;                             \
		int _r = get_object(c, obj, key, &_sec);  \
		if (_r >= 0 && _sec) {                    \
			size_t _saved = ctx_push(c, key); \
			_r = fn(c, _sec, dst);            \
			if (_r >= 0)                      \
				ctx_pop(c, _saved);       \
		}                                         \
		_r;                                       \
	})

static int compile_profile(struct compile_ctx *c, const char *name, json_t *obj, Corral__Profile *p)
{
	static const char *const fields[] = {"description", "mode",     "production", "filesystem",
	                                     "network",     "syscalls", "resources",  "process",
	                                     "requires",    "degrade",  NULL};
	static const char *const modes[] = {"enforce", "audit"};
	if (!json_is_object(obj))
		return fail(c, "a profile must be an object, not %s", json_type_name(obj));
	int r = check_fields(c, obj, fields);
	if (r < 0)
		return r;
	p->name = strdup(name);
	if (!p->name || profile_alloc(p) < 0)
		return oom(c);
	if ((r = get_text(c, obj, "description", DESCRIPTION_MAX_LEN, true, &p->description)) < 0)
		return r;
	int mode = CORRAL__MODE__MODE_ENFORCE;
	if ((r = get_enum(c, obj, "mode", modes, ELEMENTSOF(modes), &mode)) < 0)
		return r;
	p->mode = (Corral__Mode)mode;
	if ((r = get_bool(c, obj, "production", &p->production)) < 0)
		return r;
	if ((r = SECTION(c, obj, "filesystem", compile_filesystem, p->filesystem)) < 0 ||
	    (r = SECTION(c, obj, "network", compile_network, p->network)) < 0 ||
	    (r = SECTION(c, obj, "syscalls", compile_syscalls, p->syscalls)) < 0 ||
	    (r = SECTION(c, obj, "resources", compile_resources, p->resources)) < 0 ||
	    (r = SECTION(c, obj, "process", compile_process, p->process)) < 0 ||
	    (r = SECTION(c, obj, "requires", compile_requires, p->requires)) < 0 ||
	    (r = SECTION(c, obj, "degrade", compile_degrade, p->degrade)) < 0)
		return r;
	return 0;
}

static int compile_profiles(struct compile_ctx *c, json_t *obj, Corral__Policy *pol)
{
	size_t n = json_object_size(obj);
	if (n == 0)
		return fail(c, "at least one profile is needed");
	if (n > PROFILES_MAX)
		return fail(c, "more than %d profiles", PROFILES_MAX);
	pol->profiles = calloc(n, sizeof(Corral__Profile *));
	if (!pol->profiles)
		return oom(c);
	pol->n_profiles = n;
	size_t i = 0;
	const char *name;
	json_t *v;
	/* jansson iterates objects in insertion order: profiles keep the document's order. */
	json_object_foreach (obj, name, v) {
		size_t saved = ctx_push(c, name);
		if (!profile_name_ok(name))
			return fail(c, "profile name must match ^[a-z0-9][a-z0-9-]{0,62}$");
		Corral__Profile *p = malloc(sizeof(*p));
		if (!p)
			return oom(c);
		corral__profile__init(p);
		pol->profiles[i++] = p;
		int r = compile_profile(c, name, v, p);
		if (r < 0)
			return r;
		ctx_pop(c, saved);
	}
	return 0;
}

static int check_profile_name(struct compile_ctx *c, const char *s, size_t len, const void *data)
{
	char q[64];
	if (!policy_find_profile(data, s))
		return fail(c, "\"%s\" is not a profile of this policy",
		            policy_quote(s, len, q, sizeof(q)));
	return 0;
}

static int compile_root(struct compile_ctx *c, json_t *root, Corral__Policy *pol)
{
	static const char *const fields[] = {
	        "$schema",         "name",     "description", "default_profile",
	        "user_selectable", "profiles", NULL};
	if (!json_is_object(root))
		return fail(c, "a policy must be a JSON object, not %s", json_type_name(root));
	int r = check_fields(c, root, fields);
	if (r < 0)
		return r;
	json_t *v;
	if ((r = get_typed(c, root, "$schema", JSON_STRING, "a string", &v)) < 0)
		return r;
	if ((r = require(c, root, "name")) < 0 || (r = require(c, root, "default_profile")) < 0 ||
	    (r = require(c, root, "profiles")) < 0)
		return r;
	if ((r = get_text(c, root, "name", NAME_MAX_LEN, false, &pol->name)) < 0)
		return r;
	if (!*pol->name) {
		ctx_push(c, "name");
		return fail(c, "must not be empty");
	}
	if ((r = get_text(c, root, "description", DESCRIPTION_MAX_LEN, true, &pol->description)) <
	    0)
		return r;
	if ((r = get_object(c, root, "profiles", &v)) < 0)
		return r;
	size_t saved = ctx_push(c, "profiles");
	if ((r = compile_profiles(c, v, pol)) < 0)
		return r;
	ctx_pop(c, saved);

	/* References are checked after the profiles exist, so the error names the reference. */
	if ((r = get_typed(c, root, "default_profile", JSON_STRING, "a string", &v)) < 0)
		return r;
	saved = ctx_push(c, "default_profile");
	char q[64];
	if (!policy_find_profile(pol, json_string_value(v)) ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return fail(
		        c, "\"%s\" is not a profile of this policy",
		        policy_quote(json_string_value(v), json_string_length(v), q, sizeof(q)));
	pol->default_profile = strdup(json_string_value(v));
	if (!pol->default_profile)
		return oom(c);
	ctx_pop(c, saved);

	if ((r = compile_string_list(c, root, "user_selectable", PROFILES_MAX, "a profile name",
	                             true, check_profile_name, pol, &pol->n_user_selectable,
	                             &pol->user_selectable)) < 0)
		return r;
	return 0;
}

static void policy_freep(Corral__Policy **p)
{
	if (*p)
		corral__policy__free_unpacked(*p, NULL);
}

/* Parses with the size cap and duplicate-key refusal shared by compile and compact. */
static int load_json(const char *json, size_t len, json_t **ret, struct policy_error *err)
{
	if (err) {
		err->pointer[0] = '\0';
		err->reason[0] = '\0';
	}
	if (len > POLICY_SOURCE_MAX) {
		if (err)
			snprintf(err->reason, sizeof(err->reason),
			         "policy is %zu bytes, more than the %u byte limit", len,
			         POLICY_SOURCE_MAX);
		return -EMSGSIZE;
	}
	if (!json && len > 0)
		return -EINVAL;
	json_error_t jerr;
	json_t *root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* jansson 2.14 reports most allocation failures with an empty message (and an
		 * "unknown" or "invalid syntax" code); a real syntax error always has text. */
		if (json_error_code(&jerr) == json_error_out_of_memory || jerr.text[0] == '\0') {
			if (err)
				snprintf(err->reason, sizeof(err->reason), "out of memory");
			return -ENOMEM;
		}
		if (err) {
			char q[160];
			policy_quote(jerr.text, strnlen(jerr.text, sizeof(jerr.text)), q,
			             sizeof(q));
			snprintf(err->reason, sizeof(err->reason), "line %d column %d: %s",
			         jerr.line, jerr.column, q);
		}
		return -EINVAL;
	}
	*ret = root;
	return 0;
}

int policy_compile(const char *json, size_t len, Corral__Policy **ret_policy,
                   struct policy_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	int r = load_json(json, len, &root, err);
	if (r < 0)
		return r;
	struct compile_ctx c = {.err = err};
	_cleanup_(policy_freep) Corral__Policy *pol = malloc(sizeof(*pol));
	if (!pol)
		return oom(&c);
	corral__policy__init(pol);
	r = compile_root(&c, root, pol);
	if (r < 0)
		return r;
	*ret_policy = TAKE_PTR(pol);
	return 0;
}

int policy_source_compact(const char *json, size_t len, char **ret)
{
	_cleanup_json_ json_t *root = NULL;
	int r = load_json(json, len, &root, NULL);
	if (r < 0)
		return r;
	char *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!out)
		return -ENOMEM;
	*ret = out;
	return 0;
}
