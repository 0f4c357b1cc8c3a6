/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hostname layer of network egress control: an HTTP forward proxy (CONNECT tunnels and plain
 * absolute-form HTTP) that corrald runs on a loopback address, plus the filtered DNS resolver
 * (egress_dns_*) for profiles with `dns: "filtered"`. The BPF layer lets sessions of a profile
 * with hostname rules reach only this proxy's address:port (plus their CIDR rules).
 *
 * The proxy matches `host:port` and `*.domain:port` rules after normalising the requested name
 * (lower case, one trailing dot stripped, only LDH ASCII labels and `xn--` punycode, no NUL,
 * control bytes or percent-escapes; IP literals only when a CIDR rule allows them), refuses a
 * CONNECT whose TLS ClientHello SNI differs from the CONNECT host, resolves names itself with
 * a resolver the caller chooses (a DNS server address, a static host table, or the system's),
 * and refuses addresses the BPF layer would refuse — private, loopback, link-local, metadata,
 * ULA — even when an allowed name resolves there (DNS rebinding), except for ranges listed in
 * `allowed_private` (tests use the 192.0.2.0/24 and 2001:db8::/32 documentation ranges).
 *
 * Everything is event-driven on one epoll fd; name resolution runs in a few resolver threads.
 * All calls on one proxy (or resolver) must come from one thread, the one that dispatches.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <corral.pb-c.h>

struct egress_proxy;
struct egress_dns;

/* A refused request, reported with the hostname. All strings are valid during the callback. */
struct egress_proxy_event {
	const char *hostname; /* requested name, printable-escaped ("\x00" for a NUL byte) */
	uint16_t port;
	/* Stable reason: "not-allowed", "bad-hostname", "ip-literal", "sni-mismatch",
	 * "no-sni", "private-address", "host-mismatch", "resolve-failed", "bad-request",
	 * "dns-refused" */
	const char *reason;
	const char *address; /* resolved address that was refused, or "" */
	char client[64];     /* client address:port */
};

/* Called for every refusal; the return value is ignored. */
typedef void (*egress_proxy_event_fn)(const struct egress_proxy_event *ev, void *userdata);

struct egress_proxy_config {
	/* Listen address "127.0.0.1:3128" or "[::1]:0" (port 0 = pick one; see
	 * egress_proxy_address). Required. */
	const char *listen;
	/* DNS server to ask, "192.0.2.53" or "192.0.2.53:5353" (IPv4). NULL = the system's
	 * getaddrinfo(). Names added with egress_proxy_add_host() are answered first. */
	const char *resolver;
	/* CIDRs exempt from the private-address refusal, NULL-terminated (may be NULL). */
	const char *const *allowed_private;
	/* Resolver threads (0 = 4) and concurrent client connections (0 = 1024). */
	unsigned resolver_threads;
	unsigned max_clients;
	/* Seconds a client may take to send its request head or ClientHello (0 = 10). */
	unsigned handshake_timeout_sec;
};

/*
 * Creates a proxy listening on cfg->listen with the host rules (and CIDR rules, for IP
 * literals) of `rules` (copied; may be NULL = refuse everything). `cb` may be NULL. On success
 * *ret is owned by the caller (egress_proxy_free). -EINVAL for a bad config or rule, -errno
 * from socket/bind/epoll/pthread.
 */
int egress_proxy_new(const struct egress_proxy_config *cfg, const Corral__NetworkRules *rules,
                     egress_proxy_event_fn cb, void *userdata, struct egress_proxy **ret);

/*
 * Adds a static host-table entry (name → IPv4 or IPv6 address text) consulted before the DNS
 * resolver; used by tests so they never touch the host's resolv.conf. Several entries per name
 * are allowed (up to 8). -EINVAL for a bad name or address.
 */
int egress_proxy_add_host(struct egress_proxy *p, const char *name, const char *address);

/* The epoll fd to wait on (readable when egress_proxy_dispatch has work). Owned by `p`. */
int egress_proxy_fd(const struct egress_proxy *p);

/*
 * Handles everything that is ready, waiting up to timeout_ms (0 = do not wait, -1 = forever).
 * Returns >= 0 or -errno for a failure of the proxy itself (a client's trouble only closes that
 * client).
 */
int egress_proxy_dispatch(struct egress_proxy *p, int timeout_ms);

/*
 * Replaces the rules (copied). Takes effect for every later request; open tunnels and
 * connections whose host:port the new rules no longer allow are closed before this returns.
 * -EINVAL for a bad rule (the old rules stay).
 */
int egress_proxy_set_rules(struct egress_proxy *p, const Corral__NetworkRules *rules);

/* The bound listen address (to give sessions and the BPF layer). */
int egress_proxy_address(const struct egress_proxy *p, struct sockaddr_storage *ret_addr,
                         socklen_t *ret_len);

/* Number of open client connections (tunnels and pending requests). */
unsigned egress_proxy_clients(const struct egress_proxy *p);

/* Closes every connection, stops the resolver threads, frees. NULL is fine. */
void egress_proxy_free(struct egress_proxy *p);

/* ---- filtered DNS resolver (dns: "filtered") ----------------------------------------------- */

struct egress_dns_config {
	/* UDP listen address "127.0.0.1:5353" or "[::1]:0". Required. */
	const char *listen;
	/* Upstream DNS server ("192.0.2.53[:port]") or NULL for the system's getaddrinfo(). */
	const char *resolver;
	unsigned resolver_threads; /* 0 = 2 */
};

/*
 * Creates the filtered resolver: it answers A/AAAA questions for names covered by the host
 * rules of `rules` (resolved upstream or from the static table), answers REFUSED for anything
 * else and reports each refusal through `cb` (reason "dns-refused"). Same ownership and errors
 * as egress_proxy_new.
 */
int egress_dns_new(const struct egress_dns_config *cfg, const Corral__NetworkRules *rules,
                   egress_proxy_event_fn cb, void *userdata, struct egress_dns **ret);
/* Static host-table entry, as egress_proxy_add_host. */
int egress_dns_add_host(struct egress_dns *d, const char *name, const char *address);
/* The epoll fd to wait on. Owned by `d`. */
int egress_dns_fd(const struct egress_dns *d);
/* Answers what is ready, waiting up to timeout_ms. >= 0 or -errno of epoll. */
int egress_dns_dispatch(struct egress_dns *d, int timeout_ms);
/* Replaces the rules (copied) for later queries. -EINVAL for a bad rule (old rules stay). */
int egress_dns_set_rules(struct egress_dns *d, const Corral__NetworkRules *rules);
/* The bound UDP address (for egress_extra.dns and the session's resolv.conf). */
int egress_dns_address(const struct egress_dns *d, struct sockaddr_storage *ret_addr,
                       socklen_t *ret_len);
/* Stops the resolver threads and frees. NULL is fine. */
void egress_dns_free(struct egress_dns *d);

/* ---- pure helpers (exported for the fuzz targets and tests) -------------------------------- */

/* Result kinds of egress_host_normalise. */
#define EGRESS_HOST_NAME 1
#define EGRESS_HOST_IPV4 2
#define EGRESS_HOST_IPV6 3

/*
 * Normalises a requested host (`len` bytes, not NUL-terminated, may contain anything) into
 * `out` (at least 256 bytes): lower case, one trailing dot removed, "[v6]" brackets removed.
 * Returns EGRESS_HOST_* or -EINVAL with *ret_reason set to a static reason ("nul-byte",
 * "control-byte", "percent-escape", "non-ascii", "bad-label", "too-long", "empty").
 */
int egress_host_normalise(const char *in, size_t len, char *out, size_t out_len,
                          const char **ret_reason);

/*
 * Extracts the server_name of a TLS ClientHello from the first bytes a client sent. Returns
 * the name length (> 0, copied NUL-terminated into `out`, at most 255 chars), 0 when the
 * record is a complete ClientHello without SNI, -EAGAIN when more bytes are needed, -EINVAL
 * when it is not a well-formed ClientHello (or spans more than one record), -ENAMETOOLONG.
 */
int egress_tls_sni(const uint8_t *buf, size_t len, char *out, size_t out_len);
