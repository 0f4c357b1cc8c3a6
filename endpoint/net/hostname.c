// SPDX-License-Identifier: Apache-2.0
/*
 * Hostname normalisation and host-rule matching for the egress proxy and the filtered
 * resolver. Requested names are untrusted bytes: the normaliser accepts only what a rule could
 * name (LDH ASCII labels, `xn--` punycode, IP literals in canonical form) and refuses NUL,
 * control bytes, percent-escapes, non-ASCII and numeric forms that inet_aton() would read as an
 * address ("0x7f000001", "127.1"), because a name that means two things to two parsers is how
 * proxy filters are bypassed.
 */
#include "egress_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

int egress_host_normalise(const char *in, size_t len, char *out, size_t out_len,
                          const char **ret_reason)
{
	const char *reason = "bad-label";
	char buf[256];
	size_t n = 0;

	if (!in || len == 0) {
		reason = "empty";
		goto bad;
	}
	if (out_len < 256) {
		reason = "too-long";
		goto bad;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];
		if (ch == 0) {
			reason = "nul-byte";
			goto bad;
		}
		if (ch == '%') {
			reason = "percent-escape";
			goto bad;
		}
		if (ch < 0x20 || ch == 0x7f) {
			reason = "control-byte";
			goto bad;
		}
		if (ch >= 0x80) {
			reason = "non-ascii";
			goto bad;
		}
	}
	if (len >= sizeof(buf)) {
		reason = "too-long";
		goto bad;
	}
	if (in[0] == '[') {
		struct in6_addr a6;
		if (len < 3 || in[len - 1] != ']')
			goto bad;
		memcpy(buf, in + 1, len - 2);
		buf[len - 2] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) != 1)
			goto bad;
		inet_ntop(AF_INET6, &a6, out, (socklen_t)out_len);
		return EGRESS_HOST_IPV6;
	}
	for (size_t i = 0; i < len; i++) {
		char ch = in[i];
		buf[n++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
	}
	if (n && buf[n - 1] == '.')
		n--; /* one trailing dot: "example.com." is "example.com" */
	buf[n] = '\0';
	if (n == 0) {
		reason = "empty";
		goto bad;
	}
	if (n > 253) {
		reason = "too-long";
		goto bad;
	}
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		inet_ntop(AF_INET, &a4, out, (socklen_t)out_len);
		return EGRESS_HOST_IPV4;
	}
	if (inet_pton(AF_INET6, buf, &a6) == 1) {
		inet_ntop(AF_INET6, &a6, out, (socklen_t)out_len);
		return EGRESS_HOST_IPV6;
	}
	if (inet_aton(buf, &a4) != 0) {
		reason = "ip-literal";
		goto bad;
	}
	/* LDH labels of 1..63 bytes, no leading or trailing hyphen. */
	size_t label = 0;
	bool label_has_alpha = false;
	for (size_t i = 0; i <= n; i++) {
		char ch = buf[i];
		if (ch == '.' || ch == '\0') {
			if (label == 0 || label > 63 || buf[i - 1] == '-')
				goto bad;
			label = 0;
			if (ch == '\0')
				break;
			label_has_alpha = false;
			continue;
		}
		bool alpha = ch >= 'a' && ch <= 'z';
		if (!alpha && !(ch >= '0' && ch <= '9') && ch != '-')
			goto bad;
		if (ch == '-' && label == 0)
			goto bad;
		label_has_alpha |= alpha;
		label++;
	}
	/* a top-level label is never all digits; such a name is an address in disguise */
	if (!label_has_alpha) {
		reason = "ip-literal";
		goto bad;
	}
	memcpy(out, buf, n + 1);
	return EGRESS_HOST_NAME;
bad:
	if (ret_reason)
		*ret_reason = reason;
	return -EINVAL;
}

void egress_host_rules_free(struct egress_host_rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->count; i++)
		free(r->items[i].host);
	free(r->items);
	egress_compiled_free(r->cidrs);
	free(r);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct egress_host_rules, egress_host_rules_free)

int egress_host_rules_new(const Corral__NetworkRules *rules, struct egress_host_rules **ret)
{
	_cleanup_(egress_host_rules_freep) struct egress_host_rules *r = calloc(1, sizeof(*r));
	int k;

	if (!r)
		return -ENOMEM;
	k = egress_rules_compile(rules, NULL, &r->cidrs);
	if (k < 0)
		return k;
	if (!rules || rules->n_hosts == 0)
		goto done;
	if (rules->n_hosts > 4096)
		return -E2BIG;
	r->items = calloc(rules->n_hosts, sizeof(*r->items));
	if (!r->items)
		return -ENOMEM;
	for (size_t i = 0; i < rules->n_hosts; i++) {
		const Corral__HostRule *h = rules->hosts[i];
		char norm[256], full[260];
		bool wildcard;
		if (!h || !h->host || h->port > 65535)
			return -EINVAL;
		wildcard = strncmp(h->host, "*.", 2) == 0;
		const char *name = h->host + (wildcard ? 2 : 0);
		if (egress_host_normalise(name, strlen(name), norm, sizeof(norm), NULL) !=
		    EGRESS_HOST_NAME)
			return -EINVAL;
		snprintf(full, sizeof(full), "%s%s", wildcard ? "*." : "", norm);
		r->items[i].host = strdup(full);
		if (!r->items[i].host)
			return -ENOMEM;
		r->items[i].port = (uint16_t)h->port;
		r->count++;
	}
done:
	*ret = TAKE_PTR(r);
	return 0;
}

bool egress_host_rules_match(const struct egress_host_rules *r, const char *host, uint16_t port)
{
	size_t hl = strlen(host);
	for (size_t i = 0; i < r->count; i++) {
		const struct egress_host_rule *rule = &r->items[i];
		if (port && rule->port && rule->port != port)
			continue;
		if (rule->host[0] == '*') {
			/* "*.example.com" covers "a.example.com", not "example.com" */
			const char *suffix = rule->host + 1; /* ".example.com" */
			size_t sl = strlen(suffix);
			if (hl > sl && strcmp(host + hl - sl, suffix) == 0)
				return true;
		} else if (strcmp(rule->host, host) == 0) {
			return true;
		}
	}
	return false;
}
