// SPDX-License-Identifier: Apache-2.0
/*
 * Both layers together in the two-namespace lab: the session (client namespace, cgroup with
 * the BPF filter) may reach only the proxy on the client namespace's loopback; the proxy
 * resolves names through a DNS server in the server namespace (corral's own filtered resolver
 * playing "the upstream", answering from a static table) and reaches origins at 192.0.2.2 /
 * 2001:db8::2, allowed by the test-only allowed_private list. Checks: direct connects refused
 * with EPERM, CONNECT allowed.test works over IPv4 and IPv6 origins, evil.test refused, SNI
 * mismatch refused, DNS rebinding to a private address refused, plain HTTP Host mismatch
 * refused, and DNS through corrald's filtered resolver (127.0.0.53, the only DNS destination
 * BPF allows) answered for a covered name and REFUSED (reported) for another.
 * Transparent redirect (dns: filtered): the session's own DNS to the server namespace
 * (192.0.2.53:53, what its resolv.conf names) is rewritten in connect4/sendmsg4 to the filtered
 * resolver, replies carry the original source again (recvmsg4), getpeername shows the original
 * (getpeername4); glibc's getaddrinfo with a private resolv.conf resolves a covered name and
 * fails on another (reported); DoT and IPv6 DNS stay refused; nothing redirected is reported
 * as a violation. With dns: deny the same attempts fail with EPERM and are reported; in audit
 * mode nothing is redirected (the attempts are reported as would-be denials).
 */
#include "egress.h"
#include "harness.h"
#include "netlab.h"
#include "proxy.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <resolv.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <netdb.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"

static struct netlab lab;
static struct egress *eg;
static struct egress_proxy *proxy;
static pthread_t proxy_thread;
static atomic_int stop, proxy_ready;
static pid_t upstream_pid;
static char skip_reason[512];
static bool ready;
static struct egress_extra lab_extra;   /* proxy 127.0.0.1:3128, resolver 127.0.0.53:53 */
static Corral__NetworkRules *lab_rules; /* no CIDR rules, dns: filtered */

struct refusal {
	char hostname[128];
	char reason[32];
	char address[64];
};
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct refusal refusals[64];
static size_t n_refusals;

static void on_refusal(const struct egress_proxy_event *ev, void *userdata)
{
	pthread_mutex_lock(&lock);
	if (n_refusals < ELEMENTSOF(refusals)) {
		struct refusal *r = &refusals[n_refusals++];
		snprintf(r->hostname, sizeof(r->hostname), "%s", ev->hostname);
		snprintf(r->reason, sizeof(r->reason), "%s", ev->reason);
		snprintf(r->address, sizeof(r->address), "%s", ev->address);
	}
	pthread_mutex_unlock(&lock);
}

static bool refused_with(const char *host, const char *reason)
{
	for (int i = 0; i < 200; i++) {
		pthread_mutex_lock(&lock);
		for (size_t k = 0; k < n_refusals; k++)
			if (strcmp(refusals[k].hostname, host) == 0 &&
			    strcmp(refusals[k].reason, reason) == 0) {
				pthread_mutex_unlock(&lock);
				return true;
			}
		pthread_mutex_unlock(&lock);
		usleep(10 * 1000);
	}
	return false;
}

/* ---- the server namespace: echo origins on 80/443 and the upstream DNS on 192.0.2.53 ---- */

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[16384];
	ssize_t n;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
			break;
	close(fd);
	return NULL;
}

static void *echo_listener(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		pthread_t t;
		if (c >= 0 && pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)c) == 0)
			pthread_detach(t);
	}
	return NULL;
}

static void upstream_main(void)
{
	static Corral__HostRule h = CORRAL__HOST_RULE__INIT;
	static Corral__HostRule *hosts[] = {&h};
	static Corral__NetworkRules rules = CORRAL__NETWORK_RULES__INIT;
	struct egress_dns_config cfg = {.listen = "192.0.2.53:53"};
	struct egress_dns *dns;
	static const uint16_t ports[] = {80, 443};

	if (netlab_enter(&lab, true) < 0)
		_exit(1);
	for (size_t i = 0; i < ELEMENTSOF(ports); i++) {
		struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(ports[i])};
		int one = 1, zero = 0;
		int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		pthread_t t;
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    listen(fd, 256) < 0 ||
		    pthread_create(&t, NULL, echo_listener, (void *)(intptr_t)fd) != 0)
			_exit(2);
	}
	h.host = (char *)"*.test";
	rules.hosts = hosts;
	rules.n_hosts = 1;
	if (egress_dns_new(&cfg, &rules, NULL, NULL, &dns) < 0)
		_exit(3);
	egress_dns_add_host(dns, "allowed.test", "192.0.2.2");
	egress_dns_add_host(dns, "allowed6.test", "2001:db8::2");
	egress_dns_add_host(dns, "evil.test", "192.0.2.2");
	egress_dns_add_host(dns, "rebind.test", "10.0.0.1");
	for (;;)
		egress_dns_dispatch(dns, -1);
}

/* ---- the proxy: a thread living in the client namespace --------------------------------- */

static struct ruleset {
	Corral__NetworkRules rules;
	Corral__HostRule h[4];
	Corral__HostRule *hp[4];
} prs;

static void *proxy_main(void *arg)
{
	static const char *const allowed_private[] = {"192.0.2.0/24", "2001:db8::/32", NULL};
	struct egress_proxy_config cfg = {
	        .listen = "127.0.0.1:3128",
	        .resolver = "192.0.2.53",
	        .allowed_private = allowed_private,
	        .handshake_timeout_sec = 5,
	};
	static const char *const names[] = {"allowed.test", "allowed6.test", "rebind.test"};

	/* this thread (and the resolver threads it starts) live in the client namespace */
	if (netlab_enter(&lab, false) < 0) {
		atomic_store(&proxy_ready, -1);
		return NULL;
	}
	corral__network_rules__init(&prs.rules);
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		corral__host_rule__init(&prs.h[i]);
		prs.h[i].host = (char *)names[i];
		prs.h[i].port = i == 2 ? 443 : 0;
		prs.hp[i] = &prs.h[i];
	}
	prs.rules.hosts = prs.hp;
	prs.rules.n_hosts = ELEMENTSOF(names);
	if (egress_proxy_new(&cfg, &prs.rules, on_refusal, NULL, &proxy) < 0) {
		atomic_store(&proxy_ready, -1);
		return NULL;
	}
	/* corrald's filtered resolver for the session, asking the same upstream */
	struct egress_dns *dns = NULL;
	struct egress_dns_config dcfg = {.listen = "127.0.0.53:53", .resolver = "192.0.2.53"};
	if (egress_dns_new(&dcfg, &prs.rules, on_refusal, NULL, &dns) < 0) {
		egress_proxy_free(proxy);
		atomic_store(&proxy_ready, -1);
		return NULL;
	}
	atomic_store(&proxy_ready, 1);
	while (!atomic_load(&stop)) {
		egress_proxy_dispatch(proxy, 10);
		egress_dns_dispatch(dns, 0);
	}
	egress_dns_free(dns);
	egress_proxy_free(proxy);
	return NULL;
}

static int suite_init(void)
{
	char why[256];

	if (geteuid() != 0) {
		snprintf(skip_reason, sizeof(skip_reason), "needs root");
		return 0;
	}
	if (egress_available(why, sizeof(why)) != 1) {
		snprintf(skip_reason, sizeof(skip_reason), "BPF egress unavailable: %s", why);
		return 0;
	}
	if (netlab_setup(&lab, why, sizeof(why)) < 0) {
		snprintf(skip_reason, sizeof(skip_reason), "lab: %s", why);
		return 0;
	}
	upstream_pid = fork();
	if (upstream_pid == 0)
		upstream_main();
	if (upstream_pid < 0 || pthread_create(&proxy_thread, NULL, proxy_main, NULL) != 0)
		return 1;
	while (atomic_load(&proxy_ready) == 0)
		usleep(10 * 1000);
	if (atomic_load(&proxy_ready) < 0)
		return 1;
	usleep(100 * 1000); /* the upstream's sockets */

	/* the session may reach the proxy and nothing else */
	struct egress_extra extra = {0};
	static Corral__NetworkRules none = CORRAL__NETWORK_RULES__INIT;
	struct sockaddr_in *pa = (struct sockaddr_in *)&extra.proxy;
	pa->sin_family = AF_INET;
	pa->sin_port = htons(3128);
	pa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct sockaddr_in *da = (struct sockaddr_in *)&extra.dns;
	da->sin_family = AF_INET;
	da->sin_port = htons(53);
	inet_pton(AF_INET, "127.0.0.53", &da->sin_addr);
	none.dns = CORRAL__DNS_MODE__DNS_FILTERED;
	lab_extra = extra;
	lab_rules = &none;
	if (egress_open(&eg) < 0 || egress_set_rules(eg, &none, &extra) < 0 ||
	    egress_attach(eg, lab.profile_cg_fd) < 0)
		return 1;
	ready = true;
	return 0;
}

static int suite_cleanup(void)
{
	if (!ready && !upstream_pid)
		return 0;
	atomic_store(&stop, 1);
	if (atomic_load(&proxy_ready) != 0)
		pthread_join(proxy_thread, NULL);
	if (upstream_pid > 0) {
		kill(upstream_pid, SIGKILL);
		waitpid(upstream_pid, NULL, 0);
	}
	egress_free(eg);
	netlab_teardown(&lab);
	return 0;
}

#define REQUIRE_LAB()                                    \
	do {                                             \
		if (!ready)                              \
			HARNESS_SKIP("%s", skip_reason); \
	} while (0)

/* ---- what the session does (forked child: no OpenSSL here, hellos are made before) ------- */

struct outcome {
	int direct_v4, direct_v6, dns_direct;
	int allowed_status, allowed_echo;
	int allowed6_status, allowed6_echo;
	int evil_status, rebind_status, sni_status, sni_echo;
	int plain_status;
	int nul_status, dotcase_evil_status, dotcase_allowed_status, literal_status;
	int dns_allowed_rcode, dns_evil_rcode;
	char dns_allowed_addr[64];
	uint8_t hello_ok[1024], hello_evil[1024];
	size_t hello_ok_len, hello_evil_len;
};
static struct outcome *out;

static int proxy_dial(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(3128),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

static int status_of(int fd)
{
	char buf[512];
	size_t got = 0;
	while (got < sizeof(buf) - 1) {
		ssize_t n = recv(fd, buf + got, 1, 0);
		if (n <= 0)
			return -1;
		got++;
		if (got >= 4 && memcmp(buf + got - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	buf[got] = '\0';
	int code = -1;
	sscanf(buf, "HTTP/1.1 %d", &code);
	return code;
}

/* CONNECT host:443, then (if 200 and hello) send the hello and expect its echo. */
static int tunnel(const char *host, const uint8_t *hello, size_t len, int *ret_echo)
{
	char req[256];
	int fd = proxy_dial();
	if (fd < 0)
		return fd;
	int n = snprintf(req, sizeof(req), "CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n", host,
	                 host);
	send(fd, req, (size_t)n, MSG_NOSIGNAL);
	int status = status_of(fd);
	if (status == 200 && hello && ret_echo) {
		uint8_t back[1024];
		size_t got = 0;
		send(fd, hello, len, MSG_NOSIGNAL);
		while (got < len) {
			ssize_t k = recv(fd, back + got, len - got, 0);
			if (k <= 0)
				break;
			got += (size_t)k;
		}
		*ret_echo = got == len && memcmp(back, hello, len) == 0;
	}
	close(fd);
	return status;
}

/*
 * Asks `server`:53 for an A record over an unconnected UDP socket; returns the rcode (or
 * -errno), the first address and the source address of the reply ("a.b.c.d:port").
 */
static int ask_at(const char *server, const char *name, char *first, size_t first_len,
                  char *from_text, size_t from_len)
{
	uint8_t q[512], a[512];
	int qlen = res_mkquery(ns_o_query, name, ns_c_in, ns_t_a, NULL, 0, NULL, q, sizeof(q));
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(53)};
	struct sockaddr_in from = {0};
	socklen_t fl = sizeof(from);
	inet_pton(AF_INET, server, &to.sin_addr);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (qlen < 0 || sendto(fd, q, (size_t)qlen, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	ssize_t n = recvfrom(fd, a, sizeof(a), 0, (struct sockaddr *)&from, &fl);
	close(fd);
	ns_msg msg;
	ns_rr rr;
	if (n < 12 || ns_initparse(a, (int)n, &msg) < 0)
		return -1;
	if (from_text) {
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &from.sin_addr, ip, sizeof(ip));
		snprintf(from_text, from_len, "%s:%u", ip, ntohs(from.sin_port));
	}
	if (first && ns_msg_count(msg, ns_s_an) > 0 && ns_parserr(&msg, ns_s_an, 0, &rr) == 0)
		inet_ntop(AF_INET, ns_rr_rdata(rr), first, (socklen_t)first_len);
	return ns_msg_getflag(msg, ns_f_rcode);
}

/* Asks corrald's filtered resolver (127.0.0.53) directly. */
static int ask(const char *name, char *first, size_t first_len)
{
	return ask_at("127.0.0.53", name, first, first_len, NULL, 0);
}

static int session(void *arg)
{
	out->dns_allowed_rcode =
	        ask("allowed.test", out->dns_allowed_addr, sizeof(out->dns_allowed_addr));
	out->dns_evil_rcode = ask("secret.evil.test", NULL, 0);
	out->direct_v4 = netlab_connect("192.0.2.2", 443, SOCK_STREAM);
	out->direct_v6 = netlab_connect("2001:db8::2", 443, SOCK_STREAM);
	out->dns_direct = netlab_sendto(AF_INET, "192.0.2.53", 53);
	out->allowed_status =
	        tunnel("allowed.test", out->hello_ok, out->hello_ok_len, &out->allowed_echo);
	out->allowed6_status = tunnel("allowed6.test", out->hello_ok, 0, NULL); /* status only */
	out->evil_status = tunnel("evil.test", NULL, 0, NULL);
	out->rebind_status = tunnel("rebind.test", NULL, 0, NULL);
	out->sni_status =
	        tunnel("allowed.test", out->hello_evil, out->hello_evil_len, &out->sni_echo);
	out->dotcase_evil_status = tunnel("EVIL.Test.", NULL, 0, NULL);
	out->dotcase_allowed_status = tunnel("ALLOWED.test.", NULL, 0, NULL);
	out->literal_status = tunnel("192.0.2.2", NULL, 0, NULL);
	int fd = proxy_dial();
	if (fd >= 0) {
		static const char req[] = "CONNECT allowed.test\0.evil.test:443 HTTP/1.1\r\n\r\n";
		send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
		out->nul_status = status_of(fd);
		close(fd);
	}
	fd = proxy_dial();
	if (fd >= 0) {
		static const char req[] =
		        "GET http://allowed.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n";
		send(fd, req, strlen(req), MSG_NOSIGNAL);
		out->plain_status = status_of(fd);
		close(fd);
	}
	return 0;
}

static size_t make_hello(const char *sni, uint8_t *buf, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	SSL_set_bio(ssl, rb, wb);
	SSL_set_tlsext_host_name(ssl, sni);
	(void)SSL_connect(ssl);
	int n = BIO_read(wb, buf, (int)cap);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return n > 0 ? (size_t)n : 0;
}

static void test_session_through_proxy(void)
{
	REQUIRE_LAB();
	out = mmap(NULL, sizeof(*out), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(out != MAP_FAILED);
	memset(out, 0, sizeof(*out));
	out->hello_ok_len = make_hello("allowed.test", out->hello_ok, sizeof(out->hello_ok));
	out->hello_evil_len = make_hello("evil.test", out->hello_evil, sizeof(out->hello_evil));
	CU_ASSERT_FATAL(out->hello_ok_len > 0 && out->hello_evil_len > 0);
	CU_ASSERT_EQUAL(netlab_run_session(&lab, session, NULL), 0);

	CU_ASSERT_EQUAL(out->direct_v4, EPERM);
	CU_ASSERT_EQUAL(out->direct_v6, EPERM);
	CU_ASSERT_EQUAL(out->dns_direct, 0); /* redirected to the filtered resolver */
	CU_ASSERT_EQUAL(out->allowed_status, 200);
	CU_ASSERT_TRUE(out->allowed_echo);
	CU_ASSERT_EQUAL(out->allowed6_status, 200);
	CU_ASSERT_EQUAL(out->evil_status, 403);
	CU_ASSERT_TRUE(refused_with("evil.test", "not-allowed"));
	CU_ASSERT_EQUAL(out->rebind_status, 403);
	CU_ASSERT_TRUE(refused_with("rebind.test", "private-address"));
	CU_ASSERT_EQUAL(out->sni_status, 200);
	CU_ASSERT_FALSE(out->sni_echo);
	CU_ASSERT_TRUE(refused_with("allowed.test", "sni-mismatch"));
	CU_ASSERT_EQUAL(out->dns_allowed_rcode, ns_r_noerror);
	CU_ASSERT_STRING_EQUAL(out->dns_allowed_addr, "192.0.2.2");
	CU_ASSERT_EQUAL(out->dns_evil_rcode, ns_r_refused);
	CU_ASSERT_TRUE(refused_with("secret.evil.test", "dns-refused"));
	CU_ASSERT_EQUAL(out->nul_status, 400);
	CU_ASSERT_EQUAL(out->dotcase_evil_status, 403);
	CU_ASSERT_EQUAL(out->dotcase_allowed_status, 200);
	CU_ASSERT_EQUAL(out->literal_status, 403);
	CU_ASSERT_TRUE(refused_with("192.0.2.2", "ip-literal"));
	CU_ASSERT_EQUAL(out->plain_status, 403);
	CU_ASSERT_TRUE(refused_with("allowed.test", "host-mismatch"));
	munmap(out, sizeof(*out));
}

/* ---- transparent redirect of the session's DNS (dns: filtered) --------------------------- */

struct dns_outcome {
	int mnt;                   /* 0 or errno of the private resolv.conf setup */
	int gai_allowed, gai_evil; /* getaddrinfo results */
	char gai_allowed_addr[64];
	int raw_rcode;                   /* hand-made query to 192.0.2.53 */
	char raw_addr[64], raw_from[64]; /* answer and reply source seen by recvfrom */
	int udp_send, udp_connect;       /* sendto / connect to 192.0.2.53:53 */
	int tcp_connect;                 /* TCP 192.0.2.53:53 */
	int dot, dns6, dns_mapped;       /* 853, [2001:db8::2]:53, ::ffff:192.0.2.2:53 */
	int peer_rc;
	char peer[64]; /* getpeername of a connected UDP socket */
};
static struct dns_outcome *dout;

/* The child's own /etc/resolv.conf naming the server namespace's DNS (private mount ns). */
static int private_resolv_conf(void)
{
	static const char conf[] = "nameserver 192.0.2.53\noptions timeout:2 attempts:1\n";
	char path[] = "/tmp/corral-resolv-XXXXXX";
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return errno;
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return errno;
	int r = write(fd, conf, sizeof(conf) - 1) == (ssize_t)(sizeof(conf) - 1) ? 0 : EIO;
	close(fd);
	if (r == 0 && mount(path, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0)
		r = errno;
	unlink(path);
	return r;
}

static int gai(const char *name, char *first, size_t first_len)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
	int r = getaddrinfo(name, "443", &hints, &res);
	if (r == 0 && first && res)
		inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, first,
		          (socklen_t)first_len);
	if (res)
		freeaddrinfo(res);
	return r;
}

static int peer_of_connected_udp(const char *addr, char *text, size_t len)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(53)}, peer = {0};
	socklen_t pl = sizeof(peer);
	char ip[INET_ADDRSTRLEN];
	inet_pton(AF_INET, addr, &to.sin_addr);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	int r = 0;
	if (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0 ||
	    getpeername(fd, (struct sockaddr *)&peer, &pl) < 0)
		r = errno;
	close(fd);
	if (r == 0) {
		inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
		snprintf(text, len, "%s:%u", ip, ntohs(peer.sin_port));
	}
	return r;
}

static int dns_session(void *arg)
{
	dout->mnt = private_resolv_conf();
	if (dout->mnt)
		return 1;
	dout->gai_allowed =
	        gai("allowed.test", dout->gai_allowed_addr, sizeof(dout->gai_allowed_addr));
	dout->gai_evil = gai("evil.test", NULL, 0);
	dout->raw_rcode = ask_at("192.0.2.53", "allowed.test", dout->raw_addr,
	                         sizeof(dout->raw_addr), dout->raw_from, sizeof(dout->raw_from));
	dout->udp_send = netlab_sendto(AF_INET, "192.0.2.53", 53);
	dout->udp_connect = netlab_connect("192.0.2.53", 53, SOCK_DGRAM);
	dout->tcp_connect = netlab_connect("192.0.2.53", 53, SOCK_STREAM);
	dout->dot = netlab_connect("192.0.2.53", 853, SOCK_STREAM);
	dout->dns6 = netlab_sendto(AF_INET6, "2001:db8::2", 53);
	dout->dns_mapped = netlab_sendto(AF_INET6, "::ffff:192.0.2.2", 53);
	dout->peer_rc = peer_of_connected_udp("192.0.2.53", dout->peer, sizeof(dout->peer));
	return 0;
}

struct events53 {
	size_t dns53; /* reported attempts at 192.0.2.53:53 */
	size_t dns53_audit;
	size_t other_dns;
};

static int count_events(const struct egress_event *ev, void *userdata)
{
	struct events53 *c = userdata;
	if (strcmp(ev->target, "192.0.2.53:53") == 0) {
		c->dns53++;
		c->dns53_audit += ev->audit_only;
	} else if (ev->port == 53 || ev->port == 853)
		c->other_dns++;
	return 0;
}

static void drain_events(struct events53 *c)
{
	memset(c, 0, sizeof(*c));
	usleep(20 * 1000);
	CU_ASSERT(egress_events_poll(eg, count_events, c) >= 0);
}

static void run_dns_session(void)
{
	dout = mmap(NULL, sizeof(*dout), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(dout != MAP_FAILED);
	memset(dout, 0, sizeof(*dout));
	int st = netlab_run_session(&lab, dns_session, NULL);
	if (dout->mnt)
		printf("\n  private resolv.conf: %s\n", strerror(dout->mnt));
	CU_ASSERT_EQUAL(st, 0);
}

static void test_filtered_dns_redirect(void)
{
	struct events53 ev;
	REQUIRE_LAB();
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, lab_rules, &lab_extra), 0);
	drain_events(&ev);
	run_dns_session();

	/* glibc asked 192.0.2.53 (which would answer evil.test too); the kernel sent it to the
	 * filtered resolver, which answered the covered name and refused the other */
	CU_ASSERT_EQUAL(dout->gai_allowed, 0);
	CU_ASSERT_STRING_EQUAL(dout->gai_allowed_addr, "192.0.2.2");
	CU_ASSERT_NOT_EQUAL(dout->gai_evil, 0);
	CU_ASSERT_TRUE(refused_with("evil.test", "dns-refused"));
	/* recvmsg4: the reply looks as if it came from where the query went */
	CU_ASSERT_EQUAL(dout->raw_rcode, ns_r_noerror);
	CU_ASSERT_STRING_EQUAL(dout->raw_addr, "192.0.2.2");
	CU_ASSERT_STRING_EQUAL(dout->raw_from, "192.0.2.53:53");
	CU_ASSERT_EQUAL(dout->udp_send, 0);
	CU_ASSERT_EQUAL(dout->udp_connect, 0);
	/* TCP is redirected as well; the filtered resolver serves UDP only, so: refused by
	 * the loopback, not by BPF */
	CU_ASSERT_EQUAL(dout->tcp_connect, ECONNREFUSED);
	CU_ASSERT_EQUAL(dout->peer_rc, 0);
	CU_ASSERT_STRING_EQUAL(dout->peer, "192.0.2.53:53");
	/* not redirected: DoT, IPv6 DNS (the resolver is IPv4 only), IPv4-mapped IPv6 */
	CU_ASSERT_EQUAL(dout->dot, EPERM);
	CU_ASSERT_EQUAL(dout->dns6, EPERM);
	CU_ASSERT_EQUAL(dout->dns_mapped, EPERM);
	munmap(dout, sizeof(*dout));

	/* a redirected query is no violation; the refused DoT/IPv6 attempts are */
	drain_events(&ev);
	CU_ASSERT_EQUAL(ev.dns53, 0);
	CU_ASSERT(ev.other_dns >= 3);
}

static void test_deny_dns_unchanged(void)
{
	struct events53 ev;
	Corral__NetworkRules deny = CORRAL__NETWORK_RULES__INIT;
	REQUIRE_LAB();
	deny.dns = CORRAL__DNS_MODE__DNS_DENY;
	/* same extra (the resolver is still running): only the DNS mode differs */
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, &deny, &lab_extra), 0);
	drain_events(&ev);
	run_dns_session();
	CU_ASSERT_NOT_EQUAL(dout->gai_allowed, 0);
	CU_ASSERT_NOT_EQUAL(dout->gai_evil, 0);
	CU_ASSERT_EQUAL(dout->raw_rcode, -EPERM);
	CU_ASSERT_EQUAL(dout->udp_send, EPERM);
	CU_ASSERT_EQUAL(dout->udp_connect, EPERM);
	CU_ASSERT_EQUAL(dout->tcp_connect, EPERM);
	CU_ASSERT_EQUAL(dout->peer_rc, EPERM);
	CU_ASSERT_EQUAL(dout->dot, EPERM);
	CU_ASSERT_EQUAL(dout->dns6, EPERM);
	munmap(dout, sizeof(*dout));
	drain_events(&ev);
	CU_ASSERT(ev.dns53 >= 1);

	/* and back: the redirect target travels with the generation */
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, lab_rules, &lab_extra), 0);
	char addr[64] = "";
	dout = mmap(NULL, sizeof(*dout), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(dout != MAP_FAILED);
	memset(dout, 0, sizeof(*dout));
	CU_ASSERT_EQUAL(netlab_run_session(&lab, dns_session, NULL), 0);
	CU_ASSERT_EQUAL(dout->gai_allowed, 0);
	snprintf(addr, sizeof(addr), "%s", dout->gai_allowed_addr);
	CU_ASSERT_STRING_EQUAL(addr, "192.0.2.2");
	munmap(dout, sizeof(*dout));
}

/* Audit mode denies nothing, so nothing is redirected either: DNS reaches the server the
 * session asked (which answers evil.test) and is reported as a would-be denial. */
static void test_audit_dns_not_redirected(void)
{
	struct events53 ev;
	struct egress_extra audit = lab_extra;
	REQUIRE_LAB();
	audit.audit = true;
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, lab_rules, &audit), 0);
	drain_events(&ev);
	run_dns_session();
	CU_ASSERT_EQUAL(dout->gai_allowed, 0);
	CU_ASSERT_EQUAL(dout->gai_evil, 0);
	CU_ASSERT_EQUAL(dout->raw_rcode, ns_r_noerror);
	CU_ASSERT_STRING_EQUAL(dout->raw_from, "192.0.2.53:53");
	CU_ASSERT_EQUAL(dout->peer_rc, 0);
	munmap(dout, sizeof(*dout));
	drain_events(&ev);
	CU_ASSERT(ev.dns53 >= 1);
	CU_ASSERT_EQUAL(ev.dns53_audit, ev.dns53);
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, lab_rules, &lab_extra), 0);
}

static const struct harness_test tests[] = {
        {"session_through_proxy", test_session_through_proxy},
        {"filtered_dns_redirect", test_filtered_dns_redirect},
        {"deny_dns_unchanged", test_deny_dns_unchanged},
        {"audit_dns_not_redirected", test_audit_dns_not_redirected},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"egress_proxy_lab", suite_init, suite_cleanup, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
