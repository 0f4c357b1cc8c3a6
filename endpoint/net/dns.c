// SPDX-License-Identifier: Apache-2.0
/*
 * The filtered resolver for profiles with `dns: "filtered"`: a loopback UDP DNS server that
 * answers A/AAAA only for names the profile's host rules cover (looked up through the same
 * resolver threads as the proxy: upstream server, static table or system) and answers REFUSED
 * for every other name, reporting it, so DNS cannot carry data to an attacker's zone.
 * Queries are parsed with libresolv (ns_initparse/ns_parserr); the only bytes built here are
 * the response header and A/AAAA records pointing back at the question name.
 */
#include "egress_internal.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "util.h"

#define DNS_MAX_PENDING 256
#define DNS_MSG_MAX     512
#define DNS_TTL         30

struct pending {
	bool used;
	uint64_t cookie;
	int qtype;
	struct sockaddr_storage from;
	socklen_t from_len;
	uint8_t query[DNS_MSG_MAX];
	size_t question_end; /* header + question */
};

struct egress_dns {
	int epfd, fd;
	struct egress_resolver *resolver;
	struct egress_host_rules *rules;
	egress_proxy_event_fn cb;
	void *userdata;
	struct pending pending[DNS_MAX_PENDING];
	uint64_t next_cookie;
	struct sockaddr_storage addr;
	socklen_t addr_len;
};

/* Sends the header + question of `q` back with `rcode` and the given answers. */
static void respond(struct egress_dns *d, const uint8_t *q, size_t question_end,
                    const struct sockaddr_storage *to, socklen_t to_len, int rcode,
                    const struct egress_resolve_result *res, int qtype)
{
	uint8_t out[DNS_MSG_MAX];
	size_t n = question_end;
	uint16_t answers = 0;

	memcpy(out, q, question_end);
	if (res)
		for (size_t i = 0; i < res->count; i++) {
			int family = res->addrs[i].family;
			size_t rdlen = family == AF_INET ? 4 : 16;
			if ((qtype == ns_t_a) != (family == AF_INET) ||
			    n + 12 + rdlen > sizeof(out))
				continue;
			uint8_t *r = out + n;
			r[0] = 0xc0; /* name: pointer to the question name at offset 12 */
			r[1] = 12;
			r[2] = 0;
			r[3] = (uint8_t)qtype;
			r[4] = 0;
			r[5] = ns_c_in;
			r[6] = r[7] = r[8] = 0;
			r[9] = DNS_TTL;
			r[10] = 0;
			r[11] = (uint8_t)rdlen;
			memcpy(r + 12, res->addrs[i].addr, rdlen);
			n += 12 + rdlen;
			answers++;
		}
	/* QR=1, opcode and RD kept, RA=1, AA=0 */
	out[2] = (uint8_t)(0x80 | (q[2] & 0x79));
	out[3] = (uint8_t)(0x80 | (rcode & 0xf));
	out[4] = 0;
	out[5] = question_end > 12 ? 1 : 0; /* FORMERR echoes no question */
	out[6] = (uint8_t)(answers >> 8);
	out[7] = (uint8_t)answers;
	memset(out + 8, 0, 4);
	(void)!sendto(d->fd, out, n, MSG_DONTWAIT, (const struct sockaddr *)to, to_len);
}

static void report_refusal(struct egress_dns *d, const char *name,
                           const struct sockaddr_storage *from)
{
	struct egress_proxy_event ev = {.hostname = name, .reason = "dns-refused", .address = ""};
	if (from->ss_family == AF_INET)
		egress_format_addr(AF_INET,
		                   (const uint8_t *)&((struct sockaddr_in *)from)->sin_addr,
		                   ntohs(((struct sockaddr_in *)from)->sin_port), ev.client,
		                   sizeof(ev.client));
	else
		egress_format_addr(AF_INET6,
		                   (const uint8_t *)&((struct sockaddr_in6 *)from)->sin6_addr,
		                   ntohs(((struct sockaddr_in6 *)from)->sin6_port), ev.client,
		                   sizeof(ev.client));
	if (d->cb)
		d->cb(&ev, d->userdata);
}

static void handle_query(struct egress_dns *d, const uint8_t *q, size_t len,
                         const struct sockaddr_storage *from, socklen_t from_len)
{
	ns_msg msg;
	ns_rr rr;
	char norm[256], esc[1100];
	const char *reason;

	if (len < 12 || (q[2] & 0x80))
		return; /* not a query: no answer at all */
	if (ns_initparse(q, (int)len, &msg) < 0 || ns_msg_count(msg, ns_s_qd) != 1 ||
	    ((q[2] >> 3) & 0xf) != 0 || ns_parserr(&msg, ns_s_qd, 0, &rr) < 0) {
		if (len >= 12) {
			uint8_t hdr[12];
			memcpy(hdr, q, 12);
			hdr[4] = hdr[5] = 0; /* no question echoed */
			respond(d, hdr, 12, from, from_len, ns_r_formerr, NULL, 0);
		}
		return;
	}
	/* header + question: the question name as sent (no compression in a lone question) */
	size_t end = 12;
	while (end < len && q[end] != 0) {
		if (q[end] & 0xc0)
			return;
		end += 1u + q[end];
	}
	end += 1 + 4;
	if (end > len || end > DNS_MSG_MAX)
		return;
	const char *name = ns_rr_name(rr);
	int qtype = ns_rr_type(rr);
	egress_escape(name, strlen(name), esc, sizeof(esc));
	if (ns_rr_class(rr) != ns_c_in ||
	    egress_host_normalise(name, strlen(name), norm, sizeof(norm), &reason) !=
	            EGRESS_HOST_NAME ||
	    !egress_host_rules_match(d->rules, norm, 0)) {
		respond(d, q, end, from, from_len, ns_r_refused, NULL, 0);
		report_refusal(d, esc, from);
		return;
	}
	if (qtype != ns_t_a && qtype != ns_t_aaaa) {
		respond(d, q, end, from, from_len, ns_r_noerror, NULL, 0); /* no such data */
		return;
	}
	struct pending *p = NULL;
	for (size_t i = 0; i < DNS_MAX_PENDING && !p; i++)
		if (!d->pending[i].used)
			p = &d->pending[i];
	if (!p) {
		respond(d, q, end, from, from_len, ns_r_servfail, NULL, 0);
		return;
	}
	p->cookie = ++d->next_cookie;
	if (egress_resolver_submit(d->resolver, norm, p->cookie) < 0) {
		respond(d, q, end, from, from_len, ns_r_servfail, NULL, 0);
		return;
	}
	p->used = true;
	p->qtype = qtype;
	p->from = *from;
	p->from_len = from_len;
	memcpy(p->query, q, end);
	p->question_end = end;
}

int egress_dns_dispatch(struct egress_dns *d, int timeout_ms)
{
	struct epoll_event evs[8];
	int n = epoll_wait(d->epfd, evs, 8, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u32 == 0) {
			for (int k = 0; k < 64; k++) {
				uint8_t buf[DNS_MSG_MAX + 1];
				struct sockaddr_storage from;
				socklen_t from_len = sizeof(from);
				ssize_t len = recvfrom(d->fd, buf, sizeof(buf), MSG_DONTWAIT,
				                       (struct sockaddr *)&from, &from_len);
				if (len < 0)
					break;
				if ((size_t)len <= DNS_MSG_MAX)
					handle_query(d, buf, (size_t)len, &from, from_len);
			}
		} else {
			uint64_t cookie;
			struct egress_resolve_result res;
			while (egress_resolver_take(d->resolver, &cookie, &res) == 1)
				for (size_t k = 0; k < DNS_MAX_PENDING; k++) {
					struct pending *p = &d->pending[k];
					if (!p->used || p->cookie != cookie)
						continue;
					respond(d, p->query, p->question_end, &p->from, p->from_len,
					        res.error == -ENOENT ? ns_r_nxdomain
					        : res.error          ? ns_r_servfail
					                             : ns_r_noerror,
					        &res, p->qtype);
					p->used = false;
				}
		}
	}
	return n;
}

int egress_dns_new(const struct egress_dns_config *cfg, const Corral__NetworkRules *rules,
                   egress_proxy_event_fn cb, void *userdata, struct egress_dns **ret)
{
	struct egress_dns *d;
	struct sockaddr_storage ss;
	socklen_t len;
	int k;

	if (!cfg || !cfg->listen || egress_parse_sockaddr(cfg->listen, 0, &ss, &len) < 0)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->epfd = d->fd = -1;
	d->cb = cb;
	d->userdata = userdata;
	k = egress_host_rules_new(rules, &d->rules);
	if (k < 0)
		goto fail;
	k = egress_resolver_new(cfg->resolver, cfg->resolver_threads ? cfg->resolver_threads : 2,
	                        &d->resolver);
	if (k < 0)
		goto fail;
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->epfd < 0 || d->fd < 0 || bind(d->fd, (struct sockaddr *)&ss, len) < 0)
		goto fail_errno;
	d->addr_len = sizeof(d->addr);
	if (getsockname(d->fd, (struct sockaddr *)&d->addr, &d->addr_len) < 0)
		goto fail_errno;
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->fd, &ev) < 0)
		goto fail_errno;
	ev.data.u32 = 1;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, egress_resolver_fd(d->resolver), &ev) < 0)
		goto fail_errno;
	*ret = d;
	return 0;
fail_errno:
	k = -errno;
fail:
	egress_dns_free(d);
	return k;
}

int egress_dns_add_host(struct egress_dns *d, const char *name, const char *address)
{
	return egress_resolver_add_host(d->resolver, name, address);
}

int egress_dns_fd(const struct egress_dns *d)
{
	return d->epfd;
}

int egress_dns_set_rules(struct egress_dns *d, const Corral__NetworkRules *rules)
{
	struct egress_host_rules *r;
	int k = egress_host_rules_new(rules, &r);
	if (k < 0)
		return k;
	egress_host_rules_free(d->rules);
	d->rules = r;
	return 0;
}

int egress_dns_address(const struct egress_dns *d, struct sockaddr_storage *ret_addr,
                       socklen_t *ret_len)
{
	*ret_addr = d->addr;
	*ret_len = d->addr_len;
	return 0;
}

void egress_dns_free(struct egress_dns *d)
{
	if (!d)
		return;
	egress_resolver_free(d->resolver);
	egress_host_rules_free(d->rules);
	if (d->fd >= 0)
		close(d->fd);
	if (d->epfd >= 0)
		close(d->epfd);
	free(d);
}
