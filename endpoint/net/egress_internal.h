/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals shared by the files of endpoint/net (not part of the API corrald uses): the rule
 * compiler that turns NetworkRules into LPM prefixes with their port ranges (pure, unit-tested
 * without BPF), address classification for the proxy's rebinding check, host-rule matching,
 * and the threaded name resolver used by the proxy and the filtered DNS server.
 */
#pragma once

#include "egress.h"
#include "proxy.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* One LPM entry, before it is written with a generation. */
struct egress_cprefix {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
	struct egress_prefix value; /* first is relative to the generation's range block */
};

/* A compiled rule set for one generation. */
struct egress_compiled {
	struct egress_cprefix *prefixes;
	size_t n_prefixes;
	struct egress_range *ranges;
	size_t n_ranges;
	struct egress_config config;
};

/*
 * Compiles rules + extra into LPM prefixes: every prefix carries the port ranges of every rule
 * containing it (so the longest match alone decides), except that prefixes inside a barrier
 * (loopback, 0.0.0.0/8, ::, cloud metadata) only inherit rules inside that barrier.
 * *ret owned by caller (egress_compiled_free). -EINVAL bad rule, -E2BIG over the map sizes.
 */
int egress_rules_compile(const Corral__NetworkRules *rules, const struct egress_extra *extra,
                         struct egress_compiled **ret);
/* Frees a compiled rule set. NULL is fine. */
void egress_compiled_free(struct egress_compiled *c);

/* Evaluates a compiled rule set the way the BPF program does (tests; the proxy's IP literals).
 * `addr` network order (4 bytes for AF_INET). Returns true when allowed. */
bool egress_compiled_allows(const struct egress_compiled *c, int family, const uint8_t *addr,
                            uint16_t port, uint32_t proto_mask);

/* true when `addr` is in 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16,
 * 172.16.0.0/12, 192.168.0.0/16, the documentation and benchmark ranges (192.0.2.0/24,
 * 198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15, 2001:db8::/32),
 * 224/4, 240/4, ::, ::1, fc00::/7, fe80::/10, ff00::/8, or a mapped form of those. */
bool egress_addr_is_private(int family, const uint8_t *addr);

/* CIDR list membership (for allowed_private): true when `addr` lies inside `c`. */
struct egress_cidr {
	int family;
	uint8_t addr[16];
	unsigned prefix;
};
bool egress_cidr_contains(const struct egress_cidr *c, int family, const uint8_t *addr);

/* Host rules compiled for matching. */
struct egress_host_rule {
	char *host; /* normalised; "*.example.com" keeps the "*." */
	uint16_t port;
};
struct egress_host_rules {
	struct egress_host_rule *items;
	size_t count;
	struct egress_compiled *cidrs; /* for IP literals */
};
/* Compiles the host rules (and CIDR rules, for IP literals) of `rules` (may be NULL).
 * *ret owned by caller. -EINVAL bad name or port, -E2BIG past 4096 host rules. */
int egress_host_rules_new(const Corral__NetworkRules *rules, struct egress_host_rules **ret);
/* Frees compiled host rules. NULL is fine. */
void egress_host_rules_free(struct egress_host_rules *r);
/* `host` normalised. Names only; true when a rule covers host:port (port 0 = any port). */
bool egress_host_rules_match(const struct egress_host_rules *r, const char *host, uint16_t port);

/* Formats a sockaddr or raw address as "a.b.c.d:port" / "[v6]:port". */
void egress_format_addr(int family, const uint8_t *addr, uint16_t port, char *buf, size_t len);
/* Parses "a.b.c.d:port", "[v6]:port", "a.b.c.d" (port = default_port). */
int egress_parse_sockaddr(const char *text, uint16_t default_port, struct sockaddr_storage *ret,
                          socklen_t *ret_len);

/* Printable escape of arbitrary bytes (\xNN), for reports. */
void egress_escape(const char *in, size_t len, char *out, size_t out_len);

/* ---- resolver: a few blocking threads, results signalled on an eventfd --------------------- */

#define EGRESS_RESOLVE_MAX_ADDRS 8

struct egress_resolver;

struct egress_resolve_result {
	int error; /* 0 or -errno (-ENOENT: no such name) */
	size_t count;
	struct {
		int family;
		uint8_t addr[16];
	} addrs[EGRESS_RESOLVE_MAX_ADDRS];
};

/* A resolver of up to `threads` (0 = 4, at most 16) threads, started as lookups queue up, asking
 * `server` ("a.b.c.d[:port]", NULL = getaddrinfo). *ret owned by caller (egress_resolver_free).
 * -EINVAL bad server. */
int egress_resolver_new(const char *server, unsigned threads, struct egress_resolver **ret);
/* Static table entry answered before any server. -EINVAL bad name/address, -E2BIG past 256. */
int egress_resolver_add_host(struct egress_resolver *r, const char *name, const char *address);
/* Queues a lookup of `name` (copied); `cookie` identifies it in egress_resolver_take. */
int egress_resolver_submit(struct egress_resolver *r, const char *name, uint64_t cookie);
/* The eventfd that becomes readable when results wait. */
int egress_resolver_fd(const struct egress_resolver *r);
/* Takes one finished lookup: 1 with *ret_cookie and *ret_res set, 0 when none waits. */
int egress_resolver_take(struct egress_resolver *r, uint64_t *ret_cookie,
                         struct egress_resolve_result *ret_res);
/* Stops and joins the threads (a running query finishes first), frees. NULL is fine. */
void egress_resolver_free(struct egress_resolver *r);
