// SPDX-License-Identifier: Apache-2.0
/*
 * cgroup BPF egress filter, attached to a profile cgroup and inherited by its session cgroups.
 * connect4/connect6 see every TCP connect and UDP connect, sendmsg4/sendmsg6 every unconnected
 * UDP sendto/sendmsg; cgroup_skb/egress drops what those hooks never see (ICMP, raw IP). The
 * verdict reads the active generation once, then looks the destination up in that generation's
 * LPM trie (IPv4-mapped IPv6 goes to the IPv4 trie) and walks the prefix's port ranges.
 * Returning 0 makes the syscall fail with EPERM; denials are sent to the ring buffer.
 */
#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define EGRESS_BPF_PROG
#include "egress.h"

#define AF_INET    2
#define AF_INET6   10
#define ETH_P_IP   0x0800
#define ETH_P_IPV6 0x86DD

char LICENSE[] SEC("license") = "GPL";

/* Index 0: the active generation (0 or 1). Flipped by user space with one array update. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} generation SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct egress_config);
} configs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2 * EGRESS_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct egress_key4);
	__type(value, struct egress_prefix);
} prefixes4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2 * EGRESS_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct egress_key6);
	__type(value, struct egress_prefix);
} prefixes6 SEC(".maps");

/* Generation g uses [g * EGRESS_MAX_RANGES, (g + 1) * EGRESS_MAX_RANGES). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * EGRESS_MAX_RANGES);
	__type(key, __u32);
	__type(value, struct egress_range);
} ranges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Events lost because the ring buffer was full (index 0). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* The destination a redirected DNS socket asked for (dns: filtered), see redirect_dns(). */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct egress_dns_orig);
} dns_orig SEC(".maps");

/*
 * Never read by the programs: user space updates this map-in-map after flipping the
 * generation because the kernel waits for an RCU grace period on every map-in-map update
 * (maybe_wait_bpf_programs), i.e. until every program run that may have read the old
 * generation has finished.
 */
struct barrier_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} barrier_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct barrier_inner);
} barrier SEC(".maps") = {
        .values = {&barrier_slot},
};

static __always_inline void report(__u32 family, const __u8 *addr, __u32 addr_len, __u16 port,
                                   __u8 protocol, __u8 hook, __u8 audit, __u64 cgroup_id,
                                   int with_task)
{
	struct egress_raw_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->cgroup_id = cgroup_id;
	ev->time_ns = bpf_ktime_get_ns();
	if (with_task) {
		ev->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	}
	ev->family = family;
	if (addr_len == 4)
		__builtin_memcpy(ev->addr, addr, 4);
	else
		__builtin_memcpy(ev->addr, addr, 16);
	ev->port = port;
	ev->protocol = protocol;
	ev->hook = hook;
	ev->audit = audit;
	bpf_ringbuf_submit(ev, 0);
}

static __always_inline int ranges_match(const struct egress_prefix *p, __u32 gen, __u16 port,
                                        __u32 proto_bit)
{
	for (__u32 i = 0; i < EGRESS_RANGES_PER_PREFIX; i++) {
		if (i >= p->count)
			break;
		__u32 idx = p->first + i;
		if (idx < gen * EGRESS_MAX_RANGES || idx >= (gen + 1) * EGRESS_MAX_RANGES)
			return 0;
		const struct egress_range *r = bpf_map_lookup_elem(&ranges, &idx);
		if (!r)
			return 0;
		if (port >= r->port_min && port <= r->port_max && (r->proto_mask & proto_bit))
			return 1;
	}
	return 0;
}

/* 1 = allow. `p` is the longest matching prefix of the active generation, or NULL. */
static __always_inline int decide(const struct egress_config *cfg, const struct egress_prefix *p,
                                  __u32 gen, __u16 port, __u32 proto_bit)
{
	int dns_port = port == 53 || port == 853;

	if (dns_port && cfg->dns_block && !(p && (p->flags & EGRESS_PREFIX_DNS_OK)))
		return 0;
	if (p && ranges_match(p, gen, port, proto_bit))
		return 1;
	if (p && (p->flags & EGRESS_PREFIX_BARRIER))
		return 0;
	return cfg->default_allow ? 1 : 0;
}

static __always_inline __u32 proto_bit(__u32 protocol)
{
	if (protocol == IPPROTO_TCP)
		return EGRESS_PROTO_TCP;
	if (protocol == IPPROTO_UDP)
		return EGRESS_PROTO_UDP;
	return 0;
}

static __always_inline const struct egress_config *active(__u32 *ret_gen)
{
	__u32 zero = 0;
	const __u32 *g = bpf_map_lookup_elem(&generation, &zero);
	if (!g)
		return 0;
	/* One read: every lookup below uses this generation even if user space flips now. */
	__u32 gen = *g & 1;
	*ret_gen = gen;
	return bpf_map_lookup_elem(&configs, &gen);
}

/*
 * dns: filtered. Rewrites an IPv4 TCP/UDP destination on port 53 to corrald's resolver and
 * remembers the original per socket so recvmsg4/getpeername4 can show it back: glibc's stub
 * resolver drops a reply whose source is not the nameserver it asked. Returns 1 when the
 * destination was rewritten (allowed, not a violation), 0 when this is not a redirect case.
 * Not in audit mode: there nothing is changed, DNS elsewhere is only reported.
 */
static __always_inline int redirect_dns(struct bpf_sock_addr *ctx, const struct egress_config *cfg,
                                        __u16 port)
{
	if (!ctx || port != EGRESS_DNS_PORT || !cfg->dns_redirect_ip4 || cfg->audit)
		return 0;
	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return 0;
	__u32 ip4 = ctx->user_ip4;
	__u16 user_port = (__u16)ctx->user_port;
	/* already the resolver: the DNS_OK prefix lets it through unchanged */
	if (ip4 == cfg->dns_redirect_ip4 && user_port == cfg->dns_redirect_port)
		return 0;
	struct bpf_sock *sk = ctx->sk;
	/*
	 * AF_INET sockets only: sendto(::ffff:a.b.c.d) on an AF_INET6 UDP socket reaches this
	 * hook too, but its replies pass recvmsg6 with a mapped source, which is not rewritten
	 * back, so such DNS stays refused (glibc uses AF_INET sockets for IPv4 nameservers).
	 */
	if (!sk || sk->family != AF_INET)
		return 0;
	struct egress_dns_orig *o =
	        bpf_sk_storage_get(&dns_orig, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	/* without the record the reply would be dropped anyway: refuse rather than half-work */
	if (!o)
		return 0;
	o->orig_ip4 = ip4;
	o->orig_port = user_port;
	o->redirect_ip4 = cfg->dns_redirect_ip4;
	o->redirect_port = cfg->dns_redirect_port;
	ctx->user_ip4 = cfg->dns_redirect_ip4;
	ctx->user_port = cfg->dns_redirect_port;
	return 1;
}

static __always_inline int check4(struct bpf_sock_addr *ctx, __u32 ip4, __u32 user_port,
                                  __u32 protocol, __u8 hook)
{
	__u32 gen;
	const struct egress_config *cfg = active(&gen);
	__u16 port = bpf_ntohs((__u16)user_port);
	struct egress_key4 key = {.prefixlen = 64, .gen = gen};

	__builtin_memcpy(key.addr, &ip4, 4);
	if (!cfg)
		return 0;
	if (redirect_dns(ctx, cfg, port))
		return 1;
	const struct egress_prefix *p = bpf_map_lookup_elem(&prefixes4, &key);
	if (decide(cfg, p, gen, port, proto_bit(protocol)))
		return 1;
	report(AF_INET, key.addr, 4, port, protocol, hook, cfg->audit, bpf_get_current_cgroup_id(),
	       1);
	return cfg->audit ? 1 : 0;
}

static __always_inline int check6(const struct bpf_sock_addr *ctx, __u8 hook)
{
	__u32 a0 = ctx->user_ip6[0], a1 = ctx->user_ip6[1], a2 = ctx->user_ip6[2],
	      a3 = ctx->user_ip6[3];

	/* ::ffff:a.b.c.d reaches an IPv4 address: IPv4 rules decide. */
	if (a0 == 0 && a1 == 0 && a2 == bpf_htonl(0xffff))
		return check4(0, a3, ctx->user_port, ctx->protocol, hook); /* no redirect */

	__u32 gen;
	const struct egress_config *cfg = active(&gen);
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	struct egress_key6 key = {.prefixlen = 32 + 128, .gen = gen};

	__builtin_memcpy(&key.addr[0], &a0, 4);
	__builtin_memcpy(&key.addr[4], &a1, 4);
	__builtin_memcpy(&key.addr[8], &a2, 4);
	__builtin_memcpy(&key.addr[12], &a3, 4);
	if (!cfg)
		return 0;
	const struct egress_prefix *p = bpf_map_lookup_elem(&prefixes6, &key);
	if (decide(cfg, p, gen, port, proto_bit(ctx->protocol)))
		return 1;
	report(AF_INET6, key.addr, 16, port, ctx->protocol, hook, cfg->audit,
	       bpf_get_current_cgroup_id(), 1);
	return cfg->audit ? 1 : 0;
}

SEC("cgroup/connect4")
int egress_connect4(struct bpf_sock_addr *ctx)
{
	return check4(ctx, ctx->user_ip4, ctx->user_port, ctx->protocol, EGRESS_HOOK_CONNECT4);
}

SEC("cgroup/connect6")
int egress_connect6(struct bpf_sock_addr *ctx)
{
	return check6(ctx, EGRESS_HOOK_CONNECT6);
}

SEC("cgroup/sendmsg4")
int egress_sendmsg4(struct bpf_sock_addr *ctx)
{
	return check4(ctx, ctx->user_ip4, ctx->user_port, ctx->protocol, EGRESS_HOOK_SENDMSG4);
}

/*
 * Replies to a redirected DNS socket: the source is corrald's resolver; show the address the
 * program sent to. Only a socket redirect_dns() marked, only a source equal to the resolver
 * it was redirected to (the record, not the current generation, decides: the resolver's
 * address does not change under a socket with a rule swap). Always 1: recvmsg cannot deny.
 */
static __always_inline void unredirect(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	if (!sk)
		return;
	struct egress_dns_orig *o = bpf_sk_storage_get(&dns_orig, sk, 0, 0);
	if (!o || !o->redirect_ip4)
		return;
	if (ctx->user_ip4 != o->redirect_ip4 || (__u16)ctx->user_port != o->redirect_port)
		return;
	ctx->user_ip4 = o->orig_ip4;
	ctx->user_port = o->orig_port;
}

SEC("cgroup/recvmsg4")
int egress_recvmsg4(struct bpf_sock_addr *ctx)
{
	unredirect(ctx);
	return 1;
}

/* Keeps getpeername() of a redirected connected socket (UDP or TCP) consistent. */
SEC("cgroup/getpeername4")
int egress_getpeername4(struct bpf_sock_addr *ctx)
{
	unredirect(ctx);
	return 1;
}

SEC("cgroup/sendmsg6")
int egress_sendmsg6(struct bpf_sock_addr *ctx)
{
	return check6(ctx, EGRESS_HOOK_SENDMSG6);
}

/*
 * What the socket hooks never see: ICMP/ICMPv6 echo from ping sockets and raw IP. TCP and UDP
 * packets pass here because their destinations were checked at connect/sendmsg; loopback
 * destinations pass because nothing leaves the host that way.
 */
SEC("cgroup_skb/egress")
int egress_skb(struct __sk_buff *skb)
{
	__u32 gen;
	const struct egress_config *cfg = active(&gen);
	__u8 proto = 0;
	__u8 addr[16] = {};

	if (!cfg)
		return 0;
	if (!cfg->skb_block)
		return 1;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, 9, &proto, 1) < 0 ||
		    bpf_skb_load_bytes(skb, 16, addr, 4) < 0)
			return 0;
		if (proto == IPPROTO_TCP || proto == IPPROTO_UDP || addr[0] == 127)
			return 1;
		report(AF_INET, addr, 4, 0, proto, EGRESS_HOOK_SKB, cfg->audit,
		       bpf_skb_cgroup_id(skb), 0);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, 6, &proto, 1) < 0 ||
		    bpf_skb_load_bytes(skb, 24, addr, 16) < 0)
			return 0;
		/* a fragmented UDP datagram: the protocol is in the fragment header */
		if (proto == 44 && bpf_skb_load_bytes(skb, 40, &proto, 1) < 0)
			return 0;
		if (proto == IPPROTO_TCP || proto == IPPROTO_UDP)
			return 1;
		/* ::1 */
		__u64 hi, lo;
		__builtin_memcpy(&hi, addr, 8);
		__builtin_memcpy(&lo, addr + 8, 8);
		if (hi == 0 && lo == bpf_cpu_to_be64(1))
			return 1;
		report(AF_INET6, addr, 16, 0, proto, EGRESS_HOOK_SKB, cfg->audit,
		       bpf_skb_cgroup_id(skb), 0);
	} else {
		return 1;
	}
	return cfg->audit ? 1 : 0;
}
