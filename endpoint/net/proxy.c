// SPDX-License-Identifier: Apache-2.0
/*
 * The egress proxy: HTTP CONNECT tunnels and plain absolute-form HTTP forwarding on one epoll
 * fd, with requests parsed by http-parser (Debian's libhttp-parser; llhttp is not packaged).
 *
 * Life of a connection: REQUEST (request head parsed, host normalised and matched against the
 * host rules) → RESOLVING (resolver thread) → CONNECTING (every resolved address checked
 * against the private ranges first: an allowed name that resolves to 10.x is refused, DNS
 * rebinding) → for CONNECT: "200", then CLIENTHELLO (the first TLS record is held back until
 * its SNI names the CONNECT host) → RELAY (buffered both ways, half-close aware). Plain HTTP
 * keeps parsing the client stream so that every later request on the connection must name the
 * same host and port; only parsed bytes are forwarded.
 */
#include "proxy.h"

#include "egress_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "cleanup.h"
#include "util.h"

#define PROXY_BUF         16384
#define PROXY_URL_MAX     4096
#define PROXY_HOSTHDR_MAX 300

enum conn_state {
	CONN_REQUEST,
	CONN_RESOLVING,
	CONN_CONNECTING,
	CONN_CLIENTHELLO,
	CONN_RELAY,
};

struct conn;

/* epoll data: which side of which connection (or the listener, resolver, timer). */
struct endpoint {
	int kind; /* 0 listener, 1 resolver, 2 timer, 3 client, 4 upstream */
	struct conn *conn;
};

struct conn {
	struct egress_proxy *p;
	struct conn *prev, *next;
	uint64_t id;
	enum conn_state state;
	int cfd, ufd;
	uint32_t cmask, umask; /* what epoll currently waits for on each */
	struct endpoint cep, uep;
	bool is_connect;
	bool upgraded; /* parser done: the rest of the stream is opaque */
	bool head_ready;
	bool dead; /* freed at the end of this dispatch round (events may still name it) */
	http_parser parser;
	char url[PROXY_URL_MAX];
	size_t url_len;
	char field[16];
	size_t field_len;
	bool field_overflow, in_host;
	bool last_was_value;
	char hosthdr[PROXY_HOSTHDR_MAX];
	size_t hosthdr_len;
	unsigned host_headers;
	bool bad; /* a callback found something to refuse */
	const char *bad_reason;
	char host[256];
	char host_escaped[1100];
	int host_kind;
	uint16_t port;
	struct egress_resolve_result addrs;
	size_t next_addr;
	uint8_t c2u[PROXY_BUF];
	size_t c2u_len, parsed; /* bytes of c2u the parser has accepted */
	uint8_t u2c[PROXY_BUF];
	size_t u2c_len;
	bool c_eof, u_eof, u_shut, c_shut;
	uint64_t deadline_ms;
	char client[64];
};

struct egress_proxy {
	int epfd, lfd, tfd;
	bool timer_armed; /* the 1 s expiry tick runs only while a handshake deadline is pending */
	struct endpoint lep, rep, tep;
	struct egress_resolver *resolver;
	struct egress_host_rules *rules;
	struct egress_cidr *allowed_private;
	size_t n_allowed_private;
	egress_proxy_event_fn cb;
	void *userdata;
	struct conn *conns, *dead;
	unsigned n_conns, max_clients, timeout_sec;
	uint64_t next_id;
	struct sockaddr_storage addr;
	socklen_t addr_len;
};

/* Starts the expiry tick (an idle proxy must not wake its daemon every second). */
static void timer_arm(struct egress_proxy *p)
{
	if (p->timer_armed)
		return;
	struct itimerspec its = {.it_interval = {1, 0}, .it_value = {1, 0}};
	if (timerfd_settime(p->tfd, 0, &its, NULL) == 0)
		p->timer_armed = true;
}

static const char resp_403[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: "
                               "close\r\n\r\n";
static const char resp_400[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: "
                               "close\r\n\r\n";
static const char resp_502[] = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: "
                               "close\r\n\r\n";
static const char resp_200[] = "HTTP/1.1 200 Connection established\r\n\r\n";

/* ---- connection bookkeeping ---------------------------------------------------------------- */

static void conn_free(struct conn *c)
{
	struct egress_proxy *p = c->p;
	if (c->dead)
		return;
	if (c->cfd >= 0) {
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->cfd, NULL);
		close(c->cfd);
	}
	if (c->ufd >= 0) {
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->ufd, NULL);
		close(c->ufd);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		p->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	p->n_conns--;
	c->cfd = c->ufd = -1;
	c->dead = true;
	c->prev = NULL;
	c->next = p->dead;
	p->dead = c;
}

static void reap(struct egress_proxy *p)
{
	while (p->dead) {
		struct conn *c = p->dead;
		p->dead = c->next;
		free(c);
	}
}

static void report(struct conn *c, const char *reason, const char *address)
{
	struct egress_proxy_event ev = {
	        .hostname = c->host_escaped[0] ? c->host_escaped : c->host,
	        .port = c->port,
	        .reason = reason,
	        .address = address ? address : "",
	};
	memcpy(ev.client, c->client, sizeof(ev.client));
	if (c->p->cb)
		c->p->cb(&ev, c->p->userdata);
}

/* Refuses with a short response (best effort: it is tiny and the socket is fresh). */
static void refuse(struct conn *c, const char *resp, const char *reason, const char *address)
{
	if (reason)
		report(c, reason, address);
	if (resp)
		(void)!send(c->cfd, resp, strlen(resp), MSG_NOSIGNAL | MSG_DONTWAIT);
	conn_free(c);
}

/* Recomputes what epoll should wait for on both sockets. */
static int conn_update(struct conn *c)
{
	struct egress_proxy *p = c->p;
	struct epoll_event ev = {0};

	ev.data.ptr = &c->cep;
	if (!c->c_eof && c->c2u_len < PROXY_BUF && c->state != CONN_RESOLVING &&
	    c->state != CONN_CONNECTING && !(c->state == CONN_REQUEST && c->head_ready))
		ev.events |= EPOLLIN;
	if (c->u2c_len)
		ev.events |= EPOLLOUT;
	/* only when the interest changes: two syscalls saved per relayed chunk */
	if (ev.events != c->cmask) {
		if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, c->cfd, &ev) < 0)
			return -errno;
		c->cmask = ev.events;
	}
	if (c->ufd >= 0) {
		size_t fwd = c->upgraded || c->state == CONN_RELAY ? c->parsed : 0;
		ev.events = 0;
		ev.data.ptr = &c->uep;
		if (c->state == CONN_CONNECTING)
			ev.events |= EPOLLOUT;
		if (c->state == CONN_RELAY && !c->u_eof && c->u2c_len < PROXY_BUF)
			ev.events |= EPOLLIN;
		if (c->state == CONN_RELAY && fwd)
			ev.events |= EPOLLOUT;
		if (ev.events != c->umask) {
			if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, c->ufd, &ev) < 0)
				return -errno;
			c->umask = ev.events;
		}
	}
	return 0;
}

/* ---- request parsing ----------------------------------------------------------------------- */

static int on_message_begin(http_parser *hp)
{
	struct conn *c = hp->data;
	c->url_len = 0;
	c->hosthdr_len = 0;
	c->host_headers = 0;
	c->field_len = 0;
	c->last_was_value = false;
	c->in_host = false;
	return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
	struct conn *c = hp->data;
	if (c->url_len + len >= sizeof(c->url)) {
		c->bad = true;
		c->bad_reason = "bad-request";
		return -1;
	}
	memcpy(c->url + c->url_len, at, len);
	c->url_len += len;
	return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
	struct conn *c = hp->data;
	if (c->last_was_value) {
		c->field_len = 0;
		c->field_overflow = false;
		c->last_was_value = false;
	}
	if (c->field_len + len >= sizeof(c->field))
		c->field_overflow = true;
	else {
		memcpy(c->field + c->field_len, at, len);
		c->field_len += len;
	}
	return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
	struct conn *c = hp->data;
	if (!c->last_was_value) {
		c->last_was_value = true;
		c->in_host = !c->field_overflow && c->field_len == 4 &&
		             strncasecmp(c->field, "host", 4) == 0;
		if (c->in_host && ++c->host_headers > 1) {
			c->bad = true;
			c->bad_reason = "host-mismatch"; /* two Host headers: which one wins? */
			return -1;
		}
	}
	if (!c->in_host)
		return 0;
	if (c->hosthdr_len + len >= sizeof(c->hosthdr)) {
		c->bad = true;
		c->bad_reason = "bad-hostname";
		return -1;
	}
	memcpy(c->hosthdr + c->hosthdr_len, at, len);
	c->hosthdr_len += len;
	return 0;
}

static int on_headers_complete(http_parser *hp)
{
	struct conn *c = hp->data;
	c->head_ready = true;
	/* Pausing here leaves the head's final LF unparsed until resumed; a CONNECT is not
	 * paused so that the parser returns right after the whole head (upgrade). */
	if (hp->method != HTTP_CONNECT)
		http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
        .on_message_begin = on_message_begin,
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
};

/* Splits "host[:port]" / "[v6][:port]" (raw bytes) and normalises the host. */
static int split_authority(const char *a, size_t len, uint16_t default_port, char *host,
                           int *ret_kind, uint16_t *ret_port, const char **reason)
{
	size_t host_len = len;
	unsigned long port = default_port;
	const char *colon = NULL;

	if (len && a[0] == '[') {
		const char *end = memchr(a, ']', len);
		if (!end) {
			*reason = "bad-hostname";
			return -EINVAL;
		}
		host_len = (size_t)(end - a) + 1;
		if (host_len < len) {
			if (a[host_len] != ':') {
				*reason = "bad-hostname";
				return -EINVAL;
			}
			colon = a + host_len;
		}
	} else {
		/* the last colon: a NUL or other junk before it stays in the host part */
		for (size_t i = len; i > 0; i--)
			if (a[i - 1] == ':') {
				colon = a + i - 1;
				break;
			}
		if (colon)
			host_len = (size_t)(colon - a);
	}
	if (colon) {
		const char *d = colon + 1;
		size_t dl = len - (size_t)(d - a);
		if (dl == 0 || dl > 5) {
			*reason = "bad-request";
			return -EINVAL;
		}
		port = 0;
		for (size_t i = 0; i < dl; i++) {
			if (d[i] < '0' || d[i] > '9') {
				*reason = "bad-request";
				return -EINVAL;
			}
			port = port * 10 + (unsigned long)(d[i] - '0');
		}
		if (port == 0 || port > 65535) {
			*reason = "bad-request";
			return -EINVAL;
		}
	}
	int k = egress_host_normalise(a, host_len, host, 256, reason);
	if (k < 0)
		return k;
	*ret_kind = k;
	*ret_port = (uint16_t)port;
	return 0;
}

static bool private_refused(struct egress_proxy *p, int family, const uint8_t *addr)
{
	if (!egress_addr_is_private(family, addr))
		return false;
	for (size_t i = 0; i < p->n_allowed_private; i++)
		if (egress_cidr_contains(&p->allowed_private[i], family, addr))
			return false;
	return true;
}

/* true when the current rules allow c->host:c->port (IP literals through the CIDR rules). */
static bool conn_allowed(struct egress_proxy *p, const struct conn *c)
{
	if (c->host_kind == EGRESS_HOST_NAME)
		return egress_host_rules_match(p->rules, c->host, c->port);
	uint8_t addr[16] = {0};
	int family = c->host_kind == EGRESS_HOST_IPV4 ? AF_INET : AF_INET6;
	if (inet_pton(family, c->host, addr) != 1)
		return false;
	return egress_compiled_allows(p->rules->cidrs, family, addr, c->port, EGRESS_PROTO_TCP);
}

static void start_connect(struct conn *c);
static bool check_clienthello(struct conn *c);

/* The first request head is complete: decide, then resolve. */
static void first_head(struct conn *c)
{
	struct egress_proxy *p = c->p;
	const char *reason = "bad-request";
	int k;

	c->is_connect = c->parser.method == HTTP_CONNECT;
	egress_escape(c->url, c->url_len, c->host_escaped, sizeof(c->host_escaped));
	if (c->is_connect) {
		k = split_authority(c->url, c->url_len, 443, c->host, &c->host_kind, &c->port,
		                    &reason);
		if (k < 0 || !memchr(c->url, ':', c->url_len)) {
			refuse(c, resp_400, k < 0 ? reason : "bad-request", NULL);
			return;
		}
		c->host_escaped[0] = '\0'; /* reports name the normalised host from here on */
	} else {
		struct http_parser_url u;
		http_parser_url_init(&u);
		if (http_parser_parse_url(c->url, c->url_len, 0, &u) != 0 ||
		    !(u.field_set & (1 << UF_SCHEMA)) || !(u.field_set & (1 << UF_HOST)) ||
		    u.field_data[UF_SCHEMA].len != 4 ||
		    strncasecmp(c->url + u.field_data[UF_SCHEMA].off, "http", 4) != 0 ||
		    (u.field_set & (1 << UF_USERINFO))) {
			/* origin-form or another scheme: this is a proxy, not a server */
			refuse(c, resp_400, "bad-request", NULL);
			return;
		}
		const char *h = c->url + u.field_data[UF_HOST].off;
		size_t hl = u.field_data[UF_HOST].len;
		/* http_parser gives "[v6]" without brackets; put them back for the normaliser */
		char hb[300];
		if (memchr(h, ':', hl) && hl + 2 < sizeof(hb)) {
			hb[0] = '[';
			memcpy(hb + 1, h, hl);
			hb[hl + 1] = ']';
			h = hb;
			hl += 2;
		}
		egress_escape(h, hl, c->host_escaped, sizeof(c->host_escaped));
		k = egress_host_normalise(h, hl, c->host, sizeof(c->host), &reason);
		if (k < 0) {
			refuse(c, resp_403, reason, NULL);
			return;
		}
		c->host_kind = k;
		c->host_escaped[0] = '\0';
		c->port = (u.field_set & (1 << UF_PORT)) ? u.port : 80;
		/* the Host header must name the same host and port as the request line */
		char hh[256];
		int hk;
		uint16_t hport;
		if (c->host_headers != 1 ||
		    split_authority(c->hosthdr, c->hosthdr_len, 80, hh, &hk, &hport, &reason) < 0 ||
		    strcmp(hh, c->host) != 0 || hport != c->port) {
			refuse(c, resp_403, "host-mismatch", NULL);
			return;
		}
	}
	if (c->host_kind != EGRESS_HOST_NAME) {
		if (!conn_allowed(p, c)) {
			refuse(c, resp_403, "ip-literal", NULL);
			return;
		}
		c->addrs.count = 1;
		c->addrs.addrs[0].family = c->host_kind == EGRESS_HOST_IPV4 ? AF_INET : AF_INET6;
		inet_pton(c->addrs.addrs[0].family, c->host, c->addrs.addrs[0].addr);
		start_connect(c);
		return;
	}
	if (!conn_allowed(p, c)) {
		refuse(c, resp_403, "not-allowed", NULL);
		return;
	}
	c->state = CONN_RESOLVING;
	if (egress_resolver_submit(p->resolver, c->host, c->id) < 0) {
		refuse(c, resp_502, "resolve-failed", NULL);
		return;
	}
	if (conn_update(c) < 0)
		conn_free(c);
}

/* Feeds unparsed client bytes to the parser. Returns false when `c` was freed. */
static bool feed_parser(struct conn *c)
{
	while (!c->upgraded && c->parsed < c->c2u_len && !c->head_ready) {
		size_t n = http_parser_execute(&c->parser, &parser_settings,
		                               (const char *)c->c2u + c->parsed,
		                               c->c2u_len - c->parsed);
		c->parsed += n;
		enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
		if (c->bad || (err != HPE_OK && err != HPE_PAUSED)) {
			refuse(c, resp_400, c->bad ? c->bad_reason : "bad-request", NULL);
			return false;
		}
		if (c->parser.upgrade && !c->head_ready)
			c->upgraded = true;
		if (!c->head_ready)
			continue;
		if (c->state == CONN_REQUEST) {
			if (c->parser.upgrade)
				c->upgraded = true;
			first_head(c);
			return false; /* continues on resolver / connect events (or was freed) */
		}
		/* a later request on a plain HTTP connection: same host and port, or nothing */
		char hh[256];
		int hk = 0;
		uint16_t hport = 0;
		const char *reason;
		struct http_parser_url u;
		http_parser_url_init(&u);
		bool same = c->host_headers == 1 &&
		            split_authority(c->hosthdr, c->hosthdr_len, 80, hh, &hk, &hport,
		                            &reason) == 0 &&
		            strcmp(hh, c->host) == 0 && hport == c->port &&
		            http_parser_parse_url(c->url, c->url_len, 0, &u) == 0 &&
		            (u.field_set & (1 << UF_HOST)) &&
		            u.field_data[UF_HOST].len == strlen(hh) &&
		            strncasecmp(c->url + u.field_data[UF_HOST].off, hh, strlen(hh)) == 0 &&
		            ((u.field_set & (1 << UF_PORT)) ? u.port : 80) == c->port;
		if (!same) {
			egress_escape(c->hosthdr, c->hosthdr_len, c->host_escaped,
			              sizeof(c->host_escaped));
			report(c, "host-mismatch", NULL);
			conn_free(c);
			return false;
		}
		c->head_ready = false;
		if (c->parser.upgrade)
			c->upgraded = true;
		http_parser_pause(&c->parser, 0);
	}
	if (c->upgraded)
		c->parsed = c->c2u_len;
	return true;
}

/* ---- upstream ------------------------------------------------------------------------------ */

static void start_connect(struct conn *c)
{
	struct egress_proxy *p = c->p;
	char text[80];

	/* Every address is checked before any is tried: a name with one private answer is a
	 * rebinding attempt, not a name with a spare address. */
	for (size_t i = 0; i < c->addrs.count; i++) {
		if (c->host_kind == EGRESS_HOST_NAME &&
		    private_refused(p, c->addrs.addrs[i].family, c->addrs.addrs[i].addr)) {
			egress_format_addr(c->addrs.addrs[i].family, c->addrs.addrs[i].addr,
			                   c->port, text, sizeof(text));
			refuse(c, resp_403, "private-address", text);
			return;
		}
	}
	while (c->next_addr < c->addrs.count) {
		const uint8_t *a = c->addrs.addrs[c->next_addr].addr;
		int family = c->addrs.addrs[c->next_addr].family;
		struct sockaddr_storage ss = {0};
		socklen_t len;
		c->next_addr++;
		if (family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;
			in->sin_family = AF_INET;
			in->sin_port = htons(c->port);
			memcpy(&in->sin_addr, a, 4);
			len = sizeof(*in);
		} else {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons(c->port);
			memcpy(&in6->sin6_addr, a, 16);
			len = sizeof(*in6);
		}
		if (c->ufd >= 0) {
			epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->ufd, NULL);
			close(c->ufd);
		}
		c->ufd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->ufd < 0)
			continue;
		if (connect(c->ufd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)
			continue;
		struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = &c->uep};
		if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, c->ufd, &ev) < 0)
			continue;
		c->umask = EPOLLOUT;
		c->state = CONN_CONNECTING;
		if (conn_update(c) < 0)
			conn_free(c);
		return;
	}
	refuse(c, resp_502, NULL, NULL);
}

static void upstream_connected(struct conn *c)
{
	int err = 0;
	socklen_t el = sizeof(err);
	if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
		start_connect(c); /* next address */
		return;
	}
	if (c->is_connect) {
		/* the CONNECT head is not for the server; what follows it is the tunnel */
		memmove(c->c2u, c->c2u + c->parsed, c->c2u_len - c->parsed);
		c->c2u_len -= c->parsed;
		c->parsed = 0;
		c->upgraded = true;
		if (send(c->cfd, resp_200, strlen(resp_200), MSG_NOSIGNAL | MSG_DONTWAIT) !=
		    (ssize_t)strlen(resp_200)) {
			conn_free(c);
			return;
		}
		c->state = CONN_CLIENTHELLO;
		c->deadline_ms = util_monotonic_ms() + c->p->timeout_sec * 1000ull;
		timer_arm(c->p);
		/* a client that sent its ClientHello right behind the CONNECT will not send
		 * more until it hears back: check what is already here */
		if (c->c2u_len && !check_clienthello(c))
			return;
	} else {
		c->state = CONN_RELAY;
		c->head_ready = false;
		http_parser_pause(&c->parser, 0);
		if (!feed_parser(c))
			return;
	}
	if (conn_update(c) < 0)
		conn_free(c);
}

/* CONNECT: the first client bytes must be a ClientHello naming the CONNECT host. */
static bool check_clienthello(struct conn *c)
{
	char sni[256], norm[256];
	const char *reason = NULL;

	if (c->c2u_len == 0)
		return true;
	if (c->c2u[0] != 0x16) {
		/* not TLS: nothing can be fronted; the bytes go to the allowed address only */
		c->state = CONN_RELAY;
		c->parsed = c->c2u_len;
		return true;
	}
	int k = egress_tls_sni(c->c2u, c->c2u_len, sni, sizeof(sni));
	if (k == -EAGAIN) {
		if (c->c2u_len >= PROXY_BUF) {
			report(c, "bad-clienthello", NULL);
			conn_free(c);
			return false;
		}
		return true;
	}
	if (k < 0) {
		report(c, "bad-clienthello", NULL);
		conn_free(c);
		return false;
	}
	if (k == 0) {
		/* no SNI is normal only for a tunnel to an IP literal */
		if (c->host_kind == EGRESS_HOST_NAME) {
			report(c, "no-sni", NULL);
			conn_free(c);
			return false;
		}
	} else if (egress_host_normalise(sni, (size_t)k, norm, sizeof(norm), &reason) < 0 ||
	           strcmp(norm, c->host) != 0) {
		char esc[1100];
		egress_escape(sni, (size_t)k, esc, sizeof(esc));
		report(c, "sni-mismatch", esc);
		conn_free(c);
		return false;
	}
	c->state = CONN_RELAY;
	c->parsed = c->c2u_len;
	return true;
}

/* ---- relay --------------------------------------------------------------------------------- */

static bool client_readable(struct conn *c)
{
	ssize_t n = recv(c->cfd, c->c2u + c->c2u_len, PROXY_BUF - c->c2u_len, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return true;
		conn_free(c);
		return false;
	}
	if (n == 0) {
		c->c_eof = true;
		if (c->state != CONN_RELAY) {
			conn_free(c);
			return false;
		}
		return true;
	}
	c->c2u_len += (size_t)n;
	if (c->state == CONN_REQUEST || (c->state == CONN_RELAY && !c->upgraded))
		return feed_parser(c);
	if (c->state == CONN_CLIENTHELLO)
		return check_clienthello(c);
	if (c->state == CONN_RELAY)
		c->parsed = c->c2u_len;
	return true;
}

static bool flush_to_upstream(struct conn *c)
{
	if (c->state != CONN_RELAY || c->parsed == 0)
		goto shut;
	ssize_t n = send(c->ufd, c->c2u, c->parsed, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return true;
		conn_free(c);
		return false;
	}
	memmove(c->c2u, c->c2u + n, c->c2u_len - (size_t)n);
	c->c2u_len -= (size_t)n;
	c->parsed -= (size_t)n;
	/* room again: parse what waited behind a full buffer */
	if (!c->upgraded && !feed_parser(c))
		return false;
shut:
	if (c->c_eof && c->c2u_len == 0 && !c->u_shut && c->ufd >= 0) {
		shutdown(c->ufd, SHUT_WR);
		c->u_shut = true;
	}
	return true;
}

static bool upstream_readable(struct conn *c)
{
	ssize_t n = recv(c->ufd, c->u2c + c->u2c_len, PROXY_BUF - c->u2c_len, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return true;
		conn_free(c);
		return false;
	}
	if (n == 0)
		c->u_eof = true;
	c->u2c_len += (size_t)n;
	return true;
}

static bool flush_to_client(struct conn *c)
{
	if (c->u2c_len) {
		ssize_t n = send(c->cfd, c->u2c, c->u2c_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			conn_free(c);
			return false;
		}
		memmove(c->u2c, c->u2c + n, c->u2c_len - (size_t)n);
		c->u2c_len -= (size_t)n;
	}
	if (c->u_eof && c->u2c_len == 0 && !c->c_shut) {
		shutdown(c->cfd, SHUT_WR);
		c->c_shut = true;
	}
	return true;
}

static void conn_event(struct conn *c, bool upstream, uint32_t events)
{
	if (upstream && c->state == CONN_CONNECTING) {
		upstream_connected(c);
		return;
	}
	if (!upstream) {
		if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !client_readable(c))
			return;
		if ((events & EPOLLOUT) && !flush_to_client(c))
			return;
	} else {
		if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->state == CONN_RELAY &&
		    !upstream_readable(c))
			return;
		if (!flush_to_client(c))
			return;
	}
	if (c->state == CONN_RELAY && c->ufd >= 0 && !flush_to_upstream(c))
		return;
	if (c->c_shut && c->u_shut) {
		conn_free(c);
		return;
	}
	if ((events & (EPOLLERR)) || conn_update(c) < 0)
		conn_free(c);
}

static void accept_clients(struct egress_proxy *p)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd =
		        accept4(p->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (p->n_conns >= p->max_clients) {
			close(fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->p = p;
		c->id = ++p->next_id;
		c->cfd = fd;
		c->ufd = -1;
		c->cep.kind = 3;
		c->cep.conn = c;
		c->uep.kind = 4;
		c->uep.conn = c;
		c->deadline_ms = util_monotonic_ms() + p->timeout_sec * 1000ull;
		timer_arm(p);
		http_parser_init(&c->parser, HTTP_REQUEST);
		c->parser.data = c;
		if (ss.ss_family == AF_INET)
			egress_format_addr(AF_INET,
			                   (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr,
			                   ntohs(((struct sockaddr_in *)&ss)->sin_port), c->client,
			                   sizeof(c->client));
		else if (ss.ss_family == AF_INET6)
			egress_format_addr(
			        AF_INET6, (const uint8_t *)&((struct sockaddr_in6 *)&ss)->sin6_addr,
			        ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), c->client,
			        sizeof(c->client));
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->cep};
		c->cmask = EPOLLIN;
		if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = p->conns;
		if (p->conns)
			p->conns->prev = c;
		p->conns = c;
		p->n_conns++;
	}
}

static void resolver_done(struct egress_proxy *p)
{
	uint64_t id;
	struct egress_resolve_result res;
	while (egress_resolver_take(p->resolver, &id, &res) == 1) {
		struct conn *c = p->conns;
		while (c && c->id != id)
			c = c->next;
		if (!c || c->state != CONN_RESOLVING)
			continue; /* the client left meanwhile */
		if (res.error || res.count == 0) {
			refuse(c, resp_502, "resolve-failed", NULL);
			continue;
		}
		c->addrs = res;
		c->next_addr = 0;
		start_connect(c);
	}
}

static void expire(struct egress_proxy *p)
{
	uint64_t now = util_monotonic_ms();
	uint64_t t;
	(void)!read(p->tfd, &t, sizeof(t));
	for (struct conn *c = p->conns, *next; c; c = next) {
		next = c->next;
		if (c->state != CONN_RELAY && c->deadline_ms && now > c->deadline_ms) {
			if (c->state == CONN_CLIENTHELLO)
				report(c, "no-sni", NULL);
			conn_free(c);
		}
	}
	for (struct conn *c = p->conns; c; c = c->next)
		if (c->state != CONN_RELAY && c->deadline_ms)
			return;
	struct itimerspec off = {{0, 0}, {0, 0}};
	if (timerfd_settime(p->tfd, 0, &off, NULL) == 0)
		p->timer_armed = false;
}

int egress_proxy_dispatch(struct egress_proxy *p, int timeout_ms)
{
	struct epoll_event evs[64];
	int n = epoll_wait(p->epfd, evs, 64, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct endpoint *ep = evs[i].data.ptr;
		switch (ep->kind) {
		case 0:
			accept_clients(p);
			break;
		case 1:
			resolver_done(p);
			break;
		case 2:
			expire(p);
			break;
		default:
			if (!ep->conn->dead)
				conn_event(ep->conn, ep->kind == 4, evs[i].events);
		}
	}
	reap(p);
	return n;
}

/* ---- public API ---------------------------------------------------------------------------- */

static int parse_allowed_private(struct egress_proxy *p, const char *const *list)
{
	size_t n = 0;
	while (list && list[n])
		n++;
	if (n > 64)
		return -E2BIG;
	p->allowed_private = calloc(n ? n : 1, sizeof(*p->allowed_private));
	if (!p->allowed_private)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct egress_cidr *c = &p->allowed_private[i];
		if (egress_parse_cidr(list[i], &c->family, c->addr, &c->prefix) < 0)
			return -EINVAL;
	}
	p->n_allowed_private = n;
	return 0;
}

int egress_proxy_new(const struct egress_proxy_config *cfg, const Corral__NetworkRules *rules,
                     egress_proxy_event_fn cb, void *userdata, struct egress_proxy **ret)
{
	struct egress_proxy *p;
	struct sockaddr_storage ss;
	socklen_t len;
	int k, one = 1;

	if (!cfg || !cfg->listen || egress_parse_sockaddr(cfg->listen, 0, &ss, &len) < 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->epfd = p->lfd = p->tfd = -1;
	p->cb = cb;
	p->userdata = userdata;
	p->max_clients = cfg->max_clients ? cfg->max_clients : 1024;
	p->timeout_sec = cfg->handshake_timeout_sec ? cfg->handshake_timeout_sec : 10;
	k = parse_allowed_private(p, cfg->allowed_private);
	if (k < 0)
		goto fail;
	k = egress_host_rules_new(rules, &p->rules);
	if (k < 0)
		goto fail;
	k = egress_resolver_new(cfg->resolver, cfg->resolver_threads, &p->resolver);
	if (k < 0)
		goto fail;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (p->epfd < 0 || p->lfd < 0 || p->tfd < 0)
		goto fail_errno;
	setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(p->lfd, (struct sockaddr *)&ss, len) < 0 || listen(p->lfd, 1024) < 0)
		goto fail_errno;
	p->addr_len = sizeof(p->addr);
	if (getsockname(p->lfd, (struct sockaddr *)&p->addr, &p->addr_len) < 0)
		goto fail_errno;
	/* the expiry timer starts disarmed: timer_arm() when a connection gets a deadline */
	p->lep.kind = 0;
	p->rep.kind = 1;
	p->tep.kind = 2;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &p->lep};
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->lfd, &ev) < 0)
		goto fail_errno;
	ev.data.ptr = &p->rep;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, egress_resolver_fd(p->resolver), &ev) < 0)
		goto fail_errno;
	ev.data.ptr = &p->tep;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->tfd, &ev) < 0)
		goto fail_errno;
	*ret = p;
	return 0;
fail_errno:
	k = -errno;
fail:
	egress_proxy_free(p);
	return k;
}

int egress_proxy_add_host(struct egress_proxy *p, const char *name, const char *address)
{
	return egress_resolver_add_host(p->resolver, name, address);
}

int egress_proxy_fd(const struct egress_proxy *p)
{
	return p->epfd;
}

int egress_proxy_set_rules(struct egress_proxy *p, const Corral__NetworkRules *rules)
{
	struct egress_host_rules *r;
	int k = egress_host_rules_new(rules, &r);
	if (k < 0)
		return k;
	egress_host_rules_free(p->rules);
	p->rules = r;
	/* narrowing applies to what is already open too */
	for (struct conn *c = p->conns, *next; c; c = next) {
		next = c->next;
		if (c->host[0] && c->state != CONN_REQUEST && !conn_allowed(p, c)) {
			report(c, "not-allowed", NULL);
			conn_free(c);
		}
	}
	reap(p);
	return 0;
}

int egress_proxy_address(const struct egress_proxy *p, struct sockaddr_storage *ret_addr,
                         socklen_t *ret_len)
{
	*ret_addr = p->addr;
	*ret_len = p->addr_len;
	return 0;
}

unsigned egress_proxy_clients(const struct egress_proxy *p)
{
	return p->n_conns;
}

void egress_proxy_free(struct egress_proxy *p)
{
	if (!p)
		return;
	while (p->conns)
		conn_free(p->conns);
	reap(p);
	egress_resolver_free(p->resolver);
	egress_host_rules_free(p->rules);
	free(p->allowed_private);
	if (p->lfd >= 0)
		close(p->lfd);
	if (p->tfd >= 0)
		close(p->tfd);
	if (p->epfd >= 0)
		close(p->epfd);
	free(p);
}
