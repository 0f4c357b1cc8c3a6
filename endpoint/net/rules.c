// SPDX-License-Identifier: Apache-2.0
/*
 * Rule compiler of the egress layer: NetworkRules (CIDR text, port range, protocol) plus the
 * proxy and resolver addresses corrald adds become LPM prefixes whose values list every port
 * range that applies at that prefix. An LPM trie returns only the longest match, so each prefix
 * inherits the ranges of every shorter rule containing it; barriers (loopback, 0.0.0.0/8, ::,
 * cloud metadata) cut that inheritance so a broad rule like 0.0.0.0/0 never opens them. Also
 * address helpers shared by the proxy. Pure code: no BPF, tested in tests/unit/net.
 */
#include "egress_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

#define EGRESS_MAX_RULES 512

static unsigned addr_bytes(int family)
{
	return family == AF_INET ? 4 : 16;
}

int egress_parse_cidr(const char *text, int *ret_family, uint8_t ret_addr[16], unsigned *ret_prefix)
{
	char buf[INET6_ADDRSTRLEN + 8];
	uint8_t addr[16] = {0};
	int family;
	unsigned prefix;

	if (!text || strlen(text) >= sizeof(buf) || !*text)
		return -EINVAL;
	memcpy(buf, text, strlen(text) + 1);
	char *slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, buf, addr) == 1)
		family = AF_INET6;
	else
		return -EINVAL;
	prefix = addr_bytes(family) * 8;
	if (slash) {
		const char *p = slash + 1;
		unsigned v = 0;
		if (!*p || strlen(p) > 3)
			return -EINVAL;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			v = v * 10 + (unsigned)(*p - '0');
		}
		if (v > prefix)
			return -EINVAL;
		prefix = v;
	}
	/* Host bits must be zero: "10.0.0.1/8" is a typo, not a rule. */
	for (unsigned bit = prefix; bit < addr_bytes(family) * 8; bit++)
		if (addr[bit / 8] & (0x80u >> (bit % 8)))
			return -EINVAL;
	/* ::ffff:a.b.c.d/n with n >= 96 is an IPv4 rule (mapped destinations are checked
	 * against the IPv4 trie). */
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (family == AF_INET6 && prefix >= 96 && memcmp(addr, mapped, 12) == 0) {
		memmove(addr, addr + 12, 4);
		memset(addr + 4, 0, 12);
		family = AF_INET;
		prefix -= 96;
	}
	*ret_family = family;
	memcpy(ret_addr, addr, 16);
	*ret_prefix = prefix;
	return 0;
}

static bool prefix_contains(int fa, const uint8_t *a, unsigned pa, int fb, const uint8_t *b,
                            unsigned pb)
{
	/* does prefix A contain prefix (or address, pb = full) B? */
	if (fa != fb || pa > pb)
		return false;
	unsigned full = pa / 8, rem = pa % 8;
	if (memcmp(a, b, full) != 0)
		return false;
	if (rem) {
		uint8_t mask = (uint8_t)(0xffu << (8 - rem));
		if ((a[full] & mask) != (b[full] & mask))
			return false;
	}
	return true;
}

bool egress_cidr_contains(const struct egress_cidr *c, int family, const uint8_t *addr)
{
	return prefix_contains(c->family, c->addr, c->prefix, family, addr, addr_bytes(family) * 8);
}

struct source {
	int family;
	uint8_t addr[16];
	unsigned prefix;
	struct egress_range range;
	uint16_t flags;
};

struct barrier {
	const char *cidr;
};

/* Reached only through a rule inside them (metadata: only an exact /32 or /128 rule). */
static const char *const barriers[] = {
        "0.0.0.0/8", "127.0.0.0/8", "169.254.169.254/32", "::/128", "::1/128", "fd00:ec2::254/128",
};

struct builder {
	struct source *src;
	size_t n_src;
	struct source bar[ELEMENTSOF(barriers)];
};

static int add_source(struct builder *b, int family, const uint8_t *addr, unsigned prefix,
                      uint16_t pmin, uint16_t pmax, uint32_t mask, uint16_t flags)
{
	if (b->n_src >= EGRESS_MAX_RULES)
		return -E2BIG;
	struct source *s = &b->src[b->n_src++];
	memset(s, 0, sizeof(*s));
	s->family = family;
	memcpy(s->addr, addr, addr_bytes(family));
	s->prefix = prefix;
	s->range.port_min = pmin;
	s->range.port_max = pmax;
	s->range.proto_mask = mask;
	s->flags = flags;
	return 0;
}

static int add_sockaddr_source(struct builder *b, const struct sockaddr_storage *ss, uint32_t mask,
                               uint16_t flags)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		uint16_t port = ntohs(in->sin_port);
		if (!port)
			return -EINVAL;
		return add_source(b, AF_INET, (const uint8_t *)&in->sin_addr, 32, port, port, mask,
		                  flags);
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		uint16_t port = ntohs(in6->sin6_port);
		int family;
		uint8_t addr[16];
		unsigned prefix;
		char text[INET6_ADDRSTRLEN];
		if (!port)
			return -EINVAL;
		/* through the CIDR parser so a mapped address becomes IPv4 */
		inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
		int r = egress_parse_cidr(text, &family, addr, &prefix);
		if (r < 0)
			return r;
		return add_source(b, family, addr, prefix, port, port, mask, flags);
	}
	if (ss->ss_family == AF_UNSPEC)
		return 0;
	return -EINVAL;
}

static bool range_equal(const struct egress_range *a, const struct egress_range *b)
{
	return a->port_min == b->port_min && a->port_max == b->port_max &&
	       a->proto_mask == b->proto_mask;
}

void egress_compiled_free(struct egress_compiled *c)
{
	if (!c)
		return;
	free(c->prefixes);
	free(c->ranges);
	free(c);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct egress_compiled, egress_compiled_free)

/* A loopback IPv4 address:port (plain or IPv4-mapped IPv6), network order; false otherwise. */
static bool loopback_ip4(const struct sockaddr_storage *ss, uint32_t *ret_ip4, uint16_t *ret_port)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	uint32_t ip4;
	uint16_t port;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		ip4 = in->sin_addr.s_addr;
		port = in->sin_port;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		if (memcmp(in6->sin6_addr.s6_addr, mapped, 12) != 0)
			return false;
		memcpy(&ip4, in6->sin6_addr.s6_addr + 12, 4);
		port = in6->sin6_port;
	} else {
		return false;
	}
	if ((ntohl(ip4) >> 24) != 127 || port == 0)
		return false;
	*ret_ip4 = ip4;
	*ret_port = port;
	return true;
}

int egress_rules_compile(const Corral__NetworkRules *rules, const struct egress_extra *extra,
                         struct egress_compiled **ret)
{
	_cleanup_(egress_compiled_freep) struct egress_compiled *c = NULL;
	_cleanup_free_ struct source *src = NULL;
	struct builder b = {0};
	int r;

	src = calloc(EGRESS_MAX_RULES, sizeof(*src));
	c = calloc(1, sizeof(*c));
	if (!src || !c)
		return -ENOMEM;
	b.src = src;

	for (size_t i = 0; i < ELEMENTSOF(barriers); i++) {
		r = egress_parse_cidr(barriers[i], &b.bar[i].family, b.bar[i].addr,
		                      &b.bar[i].prefix);
		if (r < 0)
			return r;
	}

	if (rules) {
		for (size_t i = 0; i < rules->n_allow; i++) {
			const Corral__NetworkRule *nr = rules->allow[i];
			int family;
			uint8_t addr[16];
			unsigned prefix;
			uint32_t mask;
			if (!nr || egress_parse_cidr(nr->cidr, &family, addr, &prefix) < 0)
				return -EINVAL;
			uint32_t pmin = nr->port_min, pmax = nr->port_max;
			if (pmin == 0 && pmax == 0)
				pmax = 65535; /* no port given: any port */
			if (pmax == 0)
				pmax = pmin;
			if (pmin > 65535 || pmax > 65535 || pmin > pmax)
				return -EINVAL;
			switch (nr->protocol) {
			case CORRAL__PROTOCOL__PROTOCOL_TCP:
				mask = EGRESS_PROTO_TCP;
				break;
			case CORRAL__PROTOCOL__PROTOCOL_UDP:
				mask = EGRESS_PROTO_UDP;
				break;
			case CORRAL__PROTOCOL__PROTOCOL_ANY:
				mask = EGRESS_PROTO_TCP | EGRESS_PROTO_UDP;
				break;
			default:
				return -EINVAL;
			}
			r = add_source(&b, family, addr, prefix, (uint16_t)pmin, (uint16_t)pmax,
			               mask, 0);
			if (r < 0)
				return r;
		}
		c->config.default_allow = rules->default_allow ? 1 : 0;
		c->config.dns_block = rules->dns != CORRAL__DNS_MODE__DNS_OPEN;
		if (rules->dns == CORRAL__DNS_MODE__DNS_OPEN) {
			/* DNS to any resolver: ports 53 and 853 on every non-barrier prefix. */
			static const uint8_t zero[16] = {0};
			static const uint16_t ports[] = {53, 853};
			for (size_t f = 0; f < 2; f++)
				for (size_t p = 0; p < ELEMENTSOF(ports); p++) {
					r = add_source(&b, f ? AF_INET6 : AF_INET, zero, 0,
					               ports[p], ports[p],
					               EGRESS_PROTO_TCP | EGRESS_PROTO_UDP, 0);
					if (r < 0)
						return r;
				}
		}
	} else {
		c->config.dns_block = 1;
	}
	c->config.skb_block = c->config.default_allow ? 0 : 1;
	if (extra) {
		c->config.audit = extra->audit ? 1 : 0;
		r = add_sockaddr_source(&b, &extra->proxy, EGRESS_PROTO_TCP, 0);
		if (r < 0)
			return r;
		r = add_sockaddr_source(&b, &extra->dns, EGRESS_PROTO_TCP | EGRESS_PROTO_UDP,
		                        EGRESS_PREFIX_DNS_OK);
		if (r < 0)
			return r;
		/*
		 * dns: filtered sends every session's IPv4 DNS (whatever resolv.conf names) to the
		 * filtered resolver in the kernel; only a loopback IPv4 resolver can be a target
		 * (the rewrite happens in connect4/sendmsg4, the session shares corrald's
		 * loopback).
		 */
		uint32_t ip4;
		uint16_t port;
		if (rules && rules->dns == CORRAL__DNS_MODE__DNS_FILTERED &&
		    loopback_ip4(&extra->dns, &ip4, &port)) {
			c->config.dns_redirect_ip4 = ip4;
			c->config.dns_redirect_port = port;
		}
	}

	/* Distinct prefixes: rule prefixes and barriers. */
	size_t max_prefixes = b.n_src + ELEMENTSOF(barriers);
	c->prefixes = calloc(max_prefixes, sizeof(*c->prefixes));
	c->ranges = calloc(EGRESS_MAX_RANGES, sizeof(*c->ranges));
	if (!c->prefixes || !c->ranges)
		return -ENOMEM;
	for (size_t i = 0; i < b.n_src + ELEMENTSOF(barriers); i++) {
		const struct source *s = i < b.n_src ? &b.src[i] : &b.bar[i - b.n_src];
		bool dup = false;
		for (size_t j = 0; j < c->n_prefixes && !dup; j++)
			dup = c->prefixes[j].family == s->family &&
			      c->prefixes[j].prefix == s->prefix &&
			      memcmp(c->prefixes[j].addr, s->addr, 16) == 0;
		if (dup)
			continue;
		struct egress_cprefix *p = &c->prefixes[c->n_prefixes++];
		p->family = s->family;
		memcpy(p->addr, s->addr, 16);
		p->prefix = s->prefix;
	}

	size_t n4 = 0, n6 = 0;
	for (size_t i = 0; i < c->n_prefixes; i++) {
		struct egress_cprefix *p = &c->prefixes[i];
		const struct source *inner = NULL; /* most specific barrier containing p */

		if (p->family == AF_INET ? ++n4 > EGRESS_MAX_PREFIXES : ++n6 > EGRESS_MAX_PREFIXES)
			return -E2BIG;
		for (size_t j = 0; j < ELEMENTSOF(barriers); j++) {
			const struct source *bar = &b.bar[j];
			if (prefix_contains(bar->family, bar->addr, bar->prefix, p->family, p->addr,
			                    p->prefix) &&
			    (!inner || bar->prefix > inner->prefix))
				inner = bar;
		}
		if (inner)
			p->value.flags |= EGRESS_PREFIX_BARRIER;
		p->value.first = (uint32_t)c->n_ranges;
		for (size_t j = 0; j < b.n_src; j++) {
			const struct source *s = &b.src[j];
			if (!prefix_contains(s->family, s->addr, s->prefix, p->family, p->addr,
			                     p->prefix))
				continue;
			if (inner && !prefix_contains(inner->family, inner->addr, inner->prefix,
			                              s->family, s->addr, s->prefix))
				continue;
			if (s->flags & EGRESS_PREFIX_DNS_OK && s->prefix == p->prefix)
				p->value.flags |= EGRESS_PREFIX_DNS_OK;
			bool dup = false;
			for (size_t k = p->value.first; k < c->n_ranges && !dup; k++)
				dup = range_equal(&c->ranges[k], &s->range);
			if (dup)
				continue;
			if (p->value.count >= EGRESS_RANGES_PER_PREFIX ||
			    c->n_ranges >= EGRESS_MAX_RANGES)
				return -E2BIG;
			c->ranges[c->n_ranges++] = s->range;
			p->value.count++;
		}
	}
	*ret = TAKE_PTR(c);
	return 0;
}

bool egress_compiled_allows(const struct egress_compiled *c, int family, const uint8_t *addr,
                            uint16_t port, uint32_t proto_mask)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const struct egress_cprefix *best = NULL;

	if (family == AF_INET6 && memcmp(addr, mapped, 12) == 0) {
		family = AF_INET;
		addr += 12;
	}
	for (size_t i = 0; i < c->n_prefixes; i++) {
		const struct egress_cprefix *p = &c->prefixes[i];
		if (prefix_contains(p->family, p->addr, p->prefix, family, addr,
		                    addr_bytes(family) * 8) &&
		    (!best || p->prefix > best->prefix))
			best = p;
	}
	bool dns_port = port == 53 || port == 853;
	if (dns_port && c->config.dns_block && !(best && best->value.flags & EGRESS_PREFIX_DNS_OK))
		return false;
	if (best)
		for (unsigned i = 0; i < best->value.count; i++) {
			const struct egress_range *r = &c->ranges[best->value.first + i];
			if (port >= r->port_min && port <= r->port_max &&
			    (r->proto_mask & proto_mask))
				return true;
		}
	if (best && best->value.flags & EGRESS_PREFIX_BARRIER)
		return false;
	return c->config.default_allow;
}

bool egress_addr_is_private(int family, const uint8_t *a)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (family == AF_INET6 && memcmp(a, mapped, 12) == 0)
		return egress_addr_is_private(AF_INET, a + 12);
	if (family == AF_INET) {
		return a[0] == 0 || a[0] == 10 || a[0] == 127 ||
		       (a[0] == 100 && (a[1] & 0xc0) == 64) || (a[0] == 169 && a[1] == 254) ||
		       (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
		       /* documentation and benchmark ranges: never a real destination */
		       (a[0] == 192 && a[1] == 0 && a[2] == 2) ||
		       (a[0] == 198 && a[1] == 51 && a[2] == 100) ||
		       (a[0] == 203 && a[1] == 0 && a[2] == 113) ||
		       (a[0] == 198 && (a[1] & 0xfe) == 18) || a[0] >= 224;
	}
	static const uint8_t zero[15] = {0};
	if (memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1))
		return true; /* :: and ::1 */
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
		return true;                              /* 2001:db8::/32 documentation */
	return (a[0] & 0xfe) == 0xfc ||                   /* fc00::/7 ULA (incl. fd00:ec2::254) */
	       (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || /* fe80::/10 */
	       a[0] == 0xff ||                            /* multicast */
	       (memcmp(a, zero, 12) == 0);                /* IPv4-compatible ::a.b.c.d */
}

void egress_format_addr(int family, const uint8_t *addr, uint16_t port, char *buf, size_t len)
{
	char text[INET6_ADDRSTRLEN] = "?";
	inet_ntop(family, addr, text, sizeof(text));
	if (family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", text, port);
	else
		snprintf(buf, len, "%s:%u", text, port);
}

int egress_parse_sockaddr(const char *text, uint16_t default_port, struct sockaddr_storage *ret,
                          socklen_t *ret_len)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_text = NULL;
	struct sockaddr_storage ss = {0};

	if (!text)
		return -EINVAL;
	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (!end || (size_t)(end - text - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, text + 1, (size_t)(end - text - 1));
		host[end - text - 1] = '\0';
		if (end[1] == ':')
			port_text = end + 2;
		else if (end[1])
			return -EINVAL;
	} else {
		const char *colon = strchr(text, ':');
		size_t n = colon ? (size_t)(colon - text) : strlen(text);
		if (n >= sizeof(host))
			return -EINVAL;
		memcpy(host, text, n);
		host[n] = '\0';
		if (colon)
			port_text = colon + 1;
	}
	unsigned long port = default_port;
	if (port_text) {
		char *end;
		if (!*port_text || *port_text < '0' || *port_text > '9')
			return -EINVAL;
		errno = 0;
		port = strtoul(port_text, &end, 10);
		if (errno || *end || port > 65535)
			return -EINVAL;
	}
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*ret_len = sizeof(*in);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*ret_len = sizeof(*in6);
	} else {
		return -EINVAL;
	}
	*ret = ss;
	return 0;
}

void egress_escape(const char *in, size_t len, char *out, size_t out_len)
{
	size_t o = 0;
	if (!out_len)
		return;
	for (size_t i = 0; i < len && o + 5 < out_len; i++) {
		unsigned char ch = (unsigned char)in[i];
		if (ch >= 0x21 && ch < 0x7f && ch != '\\')
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, out_len - o, "\\x%02x", ch);
	}
	out[o] = '\0';
}

void egress_strv_free(char **strv)
{
	if (!strv)
		return;
	for (char **s = strv; *s; s++)
		free(*s);
	free(strv);
}

int egress_proxy_env(const struct sockaddr *proxy, socklen_t len, char ***ret_env)
{
	static const char *const names[] = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
	                                    "http_proxy", "https_proxy", "all_proxy"};
	char addr[80];
	char **env;
	size_t n = 0;

	if (!proxy || !ret_env)
		return -EINVAL;
	if (proxy->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)proxy;
		egress_format_addr(AF_INET, (const uint8_t *)&in->sin_addr, ntohs(in->sin_port),
		                   addr, sizeof(addr));
	} else if (proxy->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)proxy;
		egress_format_addr(AF_INET6, (const uint8_t *)&in6->sin6_addr,
		                   ntohs(in6->sin6_port), addr, sizeof(addr));
	} else {
		return -EINVAL;
	}
	env = calloc(ELEMENTSOF(names) + 3, sizeof(*env));
	if (!env)
		return -ENOMEM;
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (asprintf(&env[n++], "%s=http://%s", names[i], addr) < 0)
			goto oom;
	if (asprintf(&env[n++], "NO_PROXY=") < 0 || asprintf(&env[n++], "no_proxy=") < 0)
		goto oom;
	*ret_env = env;
	return (int)n;
oom:
	env[n - 1] = NULL;
	egress_strv_free(env);
	return -ENOMEM;
}
