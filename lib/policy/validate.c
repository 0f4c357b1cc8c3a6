// SPDX-License-Identifier: Apache-2.0
/*
 * Validators for the string values of the policy language: filesystem paths, hostname rules and
 * CIDR networks. They turn what an administrator typed into one canonical spelling, so that the
 * sandbox, the egress proxy and the linter compare like with like (a trailing dot, upper case or
 * an IPv4-mapped address must never make two spellings of one destination differ). Anything
 * ambiguous is refused rather than guessed.
 */
#include "policy-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "util.h"

const char *policy_quote(const char *in, size_t len, char *out, size_t out_len)
{
	size_t max = out_len - 4;
	size_t o = 0;
	for (size_t i = 0; i < len && o < max; i++) {
		unsigned char ch = (unsigned char)in[i];
		out[o++] = (ch >= 0x20 && ch < 0x7f) || ch >= 0x80 ? (char)ch : '?';
	}
	if (len > max) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

static bool has_control(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			return true;
	}
	return false;
}

/* ---- paths ------------------------------------------------------------------------------- */

static const char *const path_vars[] = {"${HOME}", "${WORKDIR}", "${TMP}"};

int policy_path_normalize(const char *in, size_t len, char **ret, char *why, size_t why_len)
{
	char q[64];
	if (len == 0) {
		snprintf(why, why_len, "empty path");
		return -EINVAL;
	}
	if (len > POLICY_PATH_MAX) {
		snprintf(why, why_len, "path is longer than %d bytes", POLICY_PATH_MAX);
		return -EINVAL;
	}
	if (memchr(in, '\0', len) || has_control(in, len)) {
		snprintf(why, why_len, "path contains a control character");
		return -EINVAL;
	}

	/* The prefix: "/" or exactly one known variable followed by the end or "/". */
	const char *prefix = "";
	size_t skip = 0;
	if (in[0] == '$') {
		for (size_t i = 0; i < ELEMENTSOF(path_vars); i++) {
			size_t vl = strlen(path_vars[i]);
			if (len >= vl && memcmp(in, path_vars[i], vl) == 0 &&
			    (len == vl || in[vl] == '/')) {
				prefix = path_vars[i];
				skip = vl;
				break;
			}
		}
		if (!*prefix) {
			const char *close = memchr(in, '}', len);
			size_t show = close ? (size_t)(close - in) + 1 : len;
			snprintf(
			        why, why_len,
			        "unknown variable %s (use ${HOME}, ${WORKDIR} or ${TMP}, then '/')",
			        policy_quote(in, show, q, sizeof(q)));
			return -EINVAL;
		}
	} else if (in[0] == '~') {
		snprintf(why, why_len, "'~' is not expanded; write ${HOME} instead");
		return -EINVAL;
	} else if (in[0] != '/') {
		snprintf(why, why_len,
		         "%s is not absolute (start with '/', ${HOME}, ${WORKDIR} or ${TMP})",
		         policy_quote(in, len, q, sizeof(q)));
		return -EINVAL;
	}

	/* Rebuild from components: drops empty ones (repeated and trailing slashes). */
	_cleanup_free_ char *out = malloc(len + 2);
	if (!out)
		return -ENOMEM;
	size_t o = strlen(prefix);
	memcpy(out, prefix, o);
	size_t i = skip;
	while (i < len) {
		while (i < len && in[i] == '/')
			i++;
		if (i >= len)
			break;
		size_t start = i;
		while (i < len && in[i] != '/')
			i++;
		size_t cl = i - start;
		const char *comp = in + start;
		if ((cl == 1 && comp[0] == '.') || (cl == 2 && comp[0] == '.' && comp[1] == '.')) {
			snprintf(why, why_len, "'%.*s' components are not allowed in paths",
			         (int)cl, comp);
			return -EINVAL;
		}
		if (cl >= 2 && comp[0] == '$' && comp[1] == '{') {
			snprintf(why, why_len, "variables are allowed only at the start of a path");
			return -EINVAL;
		}
		out[o++] = '/';
		memcpy(out + o, comp, cl);
		o += cl;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	*ret = TAKE_PTR(out);
	return 0;
}

/* ---- hostnames --------------------------------------------------------------------------- */

static bool label_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

int policy_host_normalize(const char *in, size_t len, char **ret_host, uint32_t *ret_port,
                          char *why, size_t why_len)
{
	char q[64];
	if (memchr(in, '\0', len) || has_control(in, len) || memchr(in, ' ', len)) {
		snprintf(why, why_len, "host rule contains a space or control character");
		return -EINVAL;
	}
	if (len > 0 && in[0] == '[') {
		snprintf(why, why_len, "%s is an IP literal; put addresses in network.allow",
		         policy_quote(in, len, q, sizeof(q)));
		return -EINVAL;
	}
	const char *colon = NULL;
	for (size_t i = len; i > 0; i--)
		if (in[i - 1] == ':') {
			colon = in + i - 1;
			break;
		}
	if (!colon) {
		snprintf(why, why_len, "%s has no port (write HOST:PORT, e.g. api.github.com:443)",
		         policy_quote(in, len, q, sizeof(q)));
		return -EINVAL;
	}
	size_t hl = (size_t)(colon - in);
	if (memchr(in, ':', hl)) {
		snprintf(why, why_len, "%s is an IP literal; put addresses in network.allow",
		         policy_quote(in, len, q, sizeof(q)));
		return -EINVAL;
	}

	/* Port: 1-5 digits, 1..65535, no sign or junk. */
	const char *ps = colon + 1;
	size_t pl = len - hl - 1;
	uint32_t port = 0;
	bool port_ok = pl >= 1 && pl <= 5;
	for (size_t i = 0; port_ok && i < pl; i++) {
		if (ps[i] < '0' || ps[i] > '9')
			port_ok = false;
		else
			port = port * 10 + (uint32_t)(ps[i] - '0');
	}
	if (!port_ok || port < 1 || port > 65535) {
		snprintf(why, why_len, "%s is not a port (1-65535)",
		         policy_quote(ps, pl, q, sizeof(q)));
		return -EINVAL;
	}

	/* Lower-case copy without one trailing dot. */
	if (hl > 0 && in[hl - 1] == '.')
		hl--;
	if (hl == 0) {
		snprintf(why, why_len, "empty host name");
		return -EINVAL;
	}
	if (hl > 253) {
		snprintf(why, why_len, "host name is longer than 253 bytes");
		return -EINVAL;
	}
	_cleanup_free_ char *host = malloc(hl + 1);
	if (!host)
		return -ENOMEM;
	for (size_t i = 0; i < hl; i++) {
		char ch = in[i];
		host[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
	}
	host[hl] = '\0';

	/* Labels: "*" only as the whole first label, LDH (plus '_'), 1..63 bytes. */
	size_t nlabels = 0;
	const char *last_label = host;
	size_t last_len = 0;
	for (size_t i = 0; i <= hl;) {
		size_t start = i;
		while (i < hl && host[i] != '.')
			i++;
		size_t ll = i - start;
		const char *label = host + start;
		if (ll == 0) {
			snprintf(why, why_len, "%s has an empty label",
			         policy_quote(host, hl, q, sizeof(q)));
			return -EINVAL;
		}
		if (ll > 63) {
			snprintf(why, why_len, "a label of %s is longer than 63 bytes",
			         policy_quote(host, hl, q, sizeof(q)));
			return -EINVAL;
		}
		if (ll == 1 && label[0] == '*') {
			if (nlabels != 0) {
				snprintf(why, why_len, "'*.' is allowed only as the first label");
				return -EINVAL;
			}
		} else {
			for (size_t k = 0; k < ll; k++)
				if (!label_char_ok(label[k])) {
					snprintf(
					        why, why_len,
					        "%s contains a character not allowed in host names",
					        policy_quote(host, hl, q, sizeof(q)));
					return -EINVAL;
				}
			if (label[0] == '-' || label[ll - 1] == '-') {
				snprintf(why, why_len, "a label of %s starts or ends with '-'",
				         policy_quote(host, hl, q, sizeof(q)));
				return -EINVAL;
			}
		}
		nlabels++;
		last_label = label;
		last_len = ll;
		i++; /* past the dot (or the end) */
	}
	if (host[0] == '*' && nlabels < 3) {
		snprintf(why, why_len, "%s is too broad; a wildcard needs a domain of two labels",
		         policy_quote(host, hl, q, sizeof(q)));
		return -EINVAL;
	}
	/* A numeric last label is an IP literal in some spelling ("10.1", "127.0.0.1"). */
	bool numeric = true;
	for (size_t k = 0; k < last_len; k++)
		if (last_label[k] < '0' || last_label[k] > '9')
			numeric = false;
	struct in_addr a4;
	if (numeric || inet_aton(host, &a4)) {
		snprintf(why, why_len, "%s is an IP literal; put addresses in network.allow",
		         policy_quote(host, hl, q, sizeof(q)));
		return -EINVAL;
	}
	*ret_host = TAKE_PTR(host);
	*ret_port = port;
	return 0;
}

/* ---- CIDR -------------------------------------------------------------------------------- */

int policy_cidr_canonical(const char *in, size_t len, char **ret, char *why, size_t why_len)
{
	char q[64];
	char buf[INET6_ADDRSTRLEN + 8];
	if (len == 0 || len >= sizeof(buf) || memchr(in, '\0', len)) {
		snprintf(why, why_len,
		         "%s is not a CIDR network (e.g. 192.0.2.0/24, 2001:db8::/32)",
		         policy_quote(in, len, q, sizeof(q)));
		return -EINVAL;
	}
	memcpy(buf, in, len);
	buf[len] = '\0';
	char *slash = strchr(buf, '/');
	long prefix = -1;
	if (slash) {
		*slash = '\0';
		const char *p = slash + 1;
		size_t pl = strlen(p);
		if (pl < 1 || pl > 3 || strspn(p, "0123456789") != pl) {
			snprintf(why, why_len, "%s has a bad prefix length",
			         policy_quote(in, len, q, sizeof(q)));
			return -EINVAL;
		}
		prefix = strtol(p, NULL, 10);
	}
	unsigned char addr[16];
	int family;
	int bits;
	if (inet_pton(AF_INET, buf, addr) == 1) {
		family = AF_INET;
		bits = 32;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		family = AF_INET6;
		bits = 128;
	} else {
		snprintf(why, why_len,
		         "%s is not a CIDR network (e.g. 192.0.2.0/24, 2001:db8::/32)",
		         policy_quote(in, len, q, sizeof(q)));
		return -EINVAL;
	}
	if (prefix < 0)
		prefix = bits;
	if (prefix > bits) {
		snprintf(why, why_len, "prefix /%ld is longer than %d bits", prefix, bits);
		return -EINVAL;
	}
	for (int b = (int)prefix; b < bits; b++)
		if (addr[b / 8] & (0x80 >> (b % 8))) {
			snprintf(why, why_len,
			         "%s has host bits set (the address must be the network's first)",
			         policy_quote(in, len, q, sizeof(q)));
			return -EINVAL;
		}
	/* IPv4-mapped IPv6 (::ffff:a.b.c.d/96+) is the IPv4 network: one spelling per network. */
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (family == AF_INET6 && prefix >= 96 && memcmp(addr, mapped, 12) == 0) {
		memmove(addr, addr + 12, 4);
		family = AF_INET;
		prefix -= 96;
	}
	char text[INET6_ADDRSTRLEN];
	if (!inet_ntop(family, addr, text, sizeof(text)))
		return -EINVAL;
	char out[INET6_ADDRSTRLEN + 8];
	snprintf(out, sizeof(out), "%s/%ld", text, prefix);
	char *r = strdup(out);
	if (!r)
		return -ENOMEM;
	*ret = r;
	return 0;
}
