/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel layer of network egress control: cgroup BPF programs (connect4/6, sendmsg4/6 and a
 * cgroup_skb/egress catch-all for non-TCP/UDP packets) attached once per profile cgroup, so
 * every session cgroup below it inherits them. Rules live in BPF maps: LPM tries for CIDRs
 * (IPv4-mapped IPv6 destinations are checked against the IPv4 rules), port ranges and protocol
 * per prefix; default deny; loopback and cloud metadata addresses denied unless a rule names
 * them. Denials go to a ring buffer that the loader turns into struct egress_event callbacks,
 * rate-limited in user space.
 *
 * The first section of this file is shared with egress.bpf.c (plain __u32 types, no libc);
 * the user-space API follows under !EGRESS_BPF_PROG.
 *
 * Atomic policy change: the maps hold two generations of rules; egress_set_rules() writes the
 * inactive one, flips one u32 and waits for an RCU grace period before it deletes the old
 * generation, so no connect() ever sees a half-written rule set and none sees the old one once
 * the call has returned.
 */
#pragma once

/* ---- shared with the BPF program --------------------------------------------------------- */

#ifndef EGRESS_BPF_PROG
#include <linux/types.h>
#endif

#define EGRESS_MAX_PREFIXES      1024 /* LPM entries per family per generation */
#define EGRESS_MAX_RANGES        1024 /* port ranges per generation */
#define EGRESS_RANGES_PER_PREFIX 32   /* port ranges one prefix may carry (incl. inherited ones) */

/* Protocol mask bits of a port range. */
#define EGRESS_PROTO_TCP 1u
#define EGRESS_PROTO_UDP 2u

/* Flags of an LPM value. */
#define EGRESS_PREFIX_DNS_OK  1u /* this exact address is corrald's resolver: port 53 allowed */
#define EGRESS_PREFIX_BARRIER 2u /* loopback/metadata barrier: default_allow does not apply */

/* Which hook produced an event. */
#define EGRESS_HOOK_CONNECT4 1
#define EGRESS_HOOK_CONNECT6 2
#define EGRESS_HOOK_SENDMSG4 3
#define EGRESS_HOOK_SENDMSG6 4
#define EGRESS_HOOK_SKB      5

#define EGRESS_DNS_PORT      53

/* LPM trie keys: prefixlen counts the generation word too (32 + CIDR length). */
struct egress_key4 {
	__u32 prefixlen;
	__u32 gen;
	__u8 addr[4];
};

struct egress_key6 {
	__u32 prefixlen;
	__u32 gen;
	__u8 addr[16];
};

/* LPM value: ranges [first, first + count) of the ranges array. */
struct egress_prefix {
	__u32 first;
	__u16 count;
	__u16 flags;
};

struct egress_range {
	__u16 port_min; /* host order */
	__u16 port_max;
	__u32 proto_mask; /* EGRESS_PROTO_* */
};

/* Per-generation switches (array map indexed by generation). */
struct egress_config {
	__u32 default_allow; /* allow anything not behind a barrier (linted: never sane) */
	__u32 dns_block;     /* deny 53/853 unless EGRESS_PREFIX_DNS_OK */
	__u32 audit;         /* report but allow */
	__u32 skb_block;     /* drop non-TCP/UDP IP packets (ICMP, raw) */
	/* dns: filtered — IPv4 TCP/UDP to port 53 anywhere is rewritten to this loopback
	 * address:port (corrald's filtered resolver). Network order; 0 = no redirect. */
	__u32 dns_redirect_ip4;
	__u16 dns_redirect_port;
	__u16 pad;
};

/* Per-socket record of a redirected DNS destination (sk_storage), read by recvmsg4 and
 * getpeername4 to show the program the address it asked for. Network order. */
struct egress_dns_orig {
	__u32 orig_ip4;
	__u32 redirect_ip4;
	__u16 orig_port;
	__u16 redirect_port;
};

/* Ring buffer record. */
struct egress_raw_event {
	__u64 cgroup_id;
	__u64 time_ns; /* CLOCK_MONOTONIC */
	__u32 pid;
	__u32 family; /* 2 = AF_INET, 10 = AF_INET6 */
	__u8 addr[16];
	__u16 port; /* host order */
	__u8 protocol;
	__u8 hook;
	__u8 audit;
	__u8 pad[7];
	char comm[16];
};

#ifndef EGRESS_BPF_PROG

/* ---- user-space API ---------------------------------------------------------------------- */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <corral.pb-c.h>

struct egress;

/* Addresses corrald adds to a profile's rules besides the policy's own CIDR rules. */
struct egress_extra {
	/* The egress proxy (hostname rules): TCP to exactly this address:port is allowed.
	 * ss_family AF_UNSPEC (all zero) = no proxy. */
	struct sockaddr_storage proxy;
	/* corrald's filtered resolver (dns: filtered): UDP/TCP to exactly this address:port is
	 * allowed even though DNS ports are otherwise blocked. AF_UNSPEC = none. */
	struct sockaddr_storage dns;
	/* Profile in audit mode: report what would be denied, deny nothing. */
	bool audit;
};

/* One denied (or, in audit mode, would-be-denied) attempt. */
struct egress_event {
	uint64_t cgroup_id; /* the session cgroup (inode number of its directory) */
	uint32_t pid;
	char comm[16];
	int family;          /* AF_INET or AF_INET6; IPv4-mapped IPv6 reported as AF_INET */
	uint8_t addr[16];    /* network order; first 4 bytes for AF_INET */
	uint16_t port;       /* host order */
	uint8_t protocol;    /* IPPROTO_TCP, IPPROTO_UDP or another IP protocol (skb hook) */
	int hook;            /* EGRESS_HOOK_* */
	bool audit_only;     /* audit mode: the attempt was allowed */
	uint32_t suppressed; /* identical events dropped by the rate limit since the last report */
	char target[64];     /* "192.0.2.1:443" or "[2001:db8::1]:443", for Violation.target */
};

/*
 * Whether the BPF egress layer can be used here: built with CORRAL_WITH_BPF, the programs load
 * (CO-RE against this kernel), cgroup v2 is present. Returns 1 when available, 0 when not (with
 * a plain reason in `why`, which may be NULL), never fails otherwise. A profile that restricts
 * the network must refuse to run when this returns 0, unless its policy allows degrading to
 * Landlock TCP port rules (Degradation.network_to_landlock_ports, sandbox side).
 */
int egress_available(char *why, size_t why_len);

/*
 * egress_available() that keeps what it loaded: returns 1 with *ret set (a fresh egress as
 * from egress_open, owned by the caller) when available, 0 with the reason in `why` (may be
 * NULL) and *ret untouched when not. A caller that probes and then opens loads the programs
 * once instead of twice (≈ 0.1 s of CO-RE work, and the heap churn it leaves behind).
 */
int egress_probe(struct egress **ret, char *why, size_t why_len);

/*
 * Loads the BPF programs and maps for one profile (rules empty = deny everything once
 * attached). On success *ret is owned by the caller (egress_free). -EOPNOTSUPP when built
 * without BPF, -EPERM without CAP_BPF/CAP_NET_ADMIN, other -errno from libbpf.
 */
int egress_open(struct egress **ret);

/*
 * Attaches the programs to the cgroup directory `cgroup_dir_fd` (the profile's cgroup; session
 * cgroups below it inherit). The fd is not taken over. Set the rules before attaching, or the
 * cgroup is deny-all until they are set. May be called for up to 3 cgroups (7 links each); links
 * are released by egress_free (which detaches). -E2BIG for a 4th, -errno from the kernel.
 */
int egress_attach(struct egress *e, int cgroup_dir_fd);

/*
 * Replaces the rule set atomically (see the header comment). `rules` is borrowed; `extra` may
 * be NULL. -EINVAL for a malformed CIDR or port range (the old rules stay in force), -E2BIG
 * past the map sizes, -errno from the kernel (then the old rules stay in force unless the flip
 * itself failed, which the kernel does not do for an array update).
 */
int egress_set_rules(struct egress *e, const Corral__NetworkRules *rules,
                     const struct egress_extra *extra);

/*
 * The ring buffer's epoll-able fd (readable, level-triggered, while events wait). Owned by `e`.
 * The buffer is mapped into the process only while egress_events_poll() drains it.
 */
int egress_events_fd(const struct egress *e);

/*
 * Consumes waiting events without blocking and calls `cb` for each reported one (identical
 * events — same cgroup, pid, destination, port, protocol — within one second are counted in
 * the next report's `suppressed` instead). Returns the number of events consumed or -errno;
 * a negative return of `cb` stops and is returned.
 */
int egress_events_poll(struct egress *e, int (*cb)(const struct egress_event *ev, void *userdata),
                       void *userdata);

/*
 * Events the kernel could not queue because the ring buffer was full (since egress_open), for
 * a "dropped" report. Returns 0 with *ret_lost set, or -errno.
 */
int egress_events_lost(const struct egress *e, uint64_t *ret_lost);

/* Detaches from every cgroup and frees everything. NULL is fine. */
void egress_free(struct egress *e);

/*
 * Parses CIDR text ("192.0.2.0/24", "2001:db8::/32", a bare address = /32 or /128) into
 * family, network-order address bytes and prefix length. Host bits must be zero (-EINVAL).
 */
int egress_parse_cidr(const char *text, int *ret_family, uint8_t ret_addr[16],
                      unsigned *ret_prefix);

/*
 * Environment for a session whose profile has hostname rules: HTTP_PROXY, HTTPS_PROXY,
 * ALL_PROXY (and lower-case forms) pointing at the proxy address, NO_PROXY empty (so an
 * inherited NO_PROXY cannot route around the proxy). On success *ret_env is a NULL-terminated
 * array of "NAME=value" strings owned by the caller (egress_strv_free); returns the count.
 */
int egress_proxy_env(const struct sockaddr *proxy, socklen_t len, char ***ret_env);

/* Frees a NULL-terminated string array. NULL is fine. */
void egress_strv_free(char **strv);

#endif /* !EGRESS_BPF_PROG */
