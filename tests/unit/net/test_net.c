// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the pure parts of endpoint/net: CIDR parsing, the rule compiler (inheritance,
 * barriers, IPv4-mapped, DNS), hostname normalisation, host-rule matching, the TLS SNI parser
 * (against real OpenSSL ClientHellos and hand-broken ones), proxy environment, and the
 * fail-closed answers of the BPF loader when it cannot work.
 */
#include "egress_internal.h"
#include "harness.h"
#include "proxy.h"
#include "tls_hello.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"

struct ruleset {
	Corral__NetworkRules rules;
	Corral__NetworkRule items[16];
	Corral__NetworkRule *ptrs[16];
	Corral__HostRule hitems[16];
	Corral__HostRule *hptrs[16];
};

static void rs_init(struct ruleset *rs, Corral__DnsMode dns)
{
	memset(rs, 0, sizeof(*rs));
	corral__network_rules__init(&rs->rules);
	rs->rules.dns = dns;
	rs->rules.allow = rs->ptrs;
	rs->rules.hosts = rs->hptrs;
}

static void rs_add(struct ruleset *rs, const char *cidr, unsigned pmin, unsigned pmax,
                   Corral__Protocol proto)
{
	Corral__NetworkRule *r = &rs->items[rs->rules.n_allow];
	corral__network_rule__init(r);
	r->cidr = (char *)cidr;
	r->port_min = pmin;
	r->port_max = pmax;
	r->protocol = proto;
	rs->ptrs[rs->rules.n_allow++] = r;
}

static void rs_host(struct ruleset *rs, const char *host, unsigned port)
{
	Corral__HostRule *h = &rs->hitems[rs->rules.n_hosts];
	corral__host_rule__init(h);
	h->host = (char *)host;
	h->port = port;
	rs->hptrs[rs->rules.n_hosts++] = h;
}

static void test_parse_cidr(void)
{
	int family;
	uint8_t a[16];
	unsigned prefix;

	CU_ASSERT_EQUAL(egress_parse_cidr("192.0.2.0/24", &family, a, &prefix), 0);
	CU_ASSERT_EQUAL(family, AF_INET);
	CU_ASSERT_EQUAL(prefix, 24);
	CU_ASSERT_EQUAL(a[0], 192);
	CU_ASSERT_EQUAL(egress_parse_cidr("2001:db8::/32", &family, a, &prefix), 0);
	CU_ASSERT_EQUAL(family, AF_INET6);
	CU_ASSERT_EQUAL(prefix, 32);
	CU_ASSERT_EQUAL(egress_parse_cidr("198.51.100.7", &family, a, &prefix), 0);
	CU_ASSERT_EQUAL(prefix, 32);
	/* a mapped IPv6 rule is an IPv4 rule */
	CU_ASSERT_EQUAL(egress_parse_cidr("::ffff:192.0.2.0/120", &family, a, &prefix), 0);
	CU_ASSERT_EQUAL(family, AF_INET);
	CU_ASSERT_EQUAL(prefix, 24);
	CU_ASSERT_EQUAL(a[0], 192);
	CU_ASSERT_EQUAL(egress_parse_cidr("192.0.2.1/24", &family, a, &prefix), -EINVAL);
	CU_ASSERT_EQUAL(egress_parse_cidr("192.0.2.0/33", &family, a, &prefix), -EINVAL);
	CU_ASSERT_EQUAL(egress_parse_cidr("192.0.2.0/", &family, a, &prefix), -EINVAL);
	CU_ASSERT_EQUAL(egress_parse_cidr("192.0.2.0/2x", &family, a, &prefix), -EINVAL);
	CU_ASSERT_EQUAL(egress_parse_cidr("example.com/8", &family, a, &prefix), -EINVAL);
	CU_ASSERT_EQUAL(egress_parse_cidr("", &family, a, &prefix), -EINVAL);
	CU_ASSERT_EQUAL(egress_parse_cidr(NULL, &family, a, &prefix), -EINVAL);
}

static bool allows(const struct egress_compiled *c, const char *addr, uint16_t port, uint32_t proto)
{
	uint8_t a[16] = {0};
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	CU_ASSERT_EQUAL(inet_pton(family, addr, a), 1);
	return egress_compiled_allows(c, family, a, port, proto);
}

static void test_compile_inheritance_and_barriers(void)
{
	struct ruleset rs;
	struct egress_compiled *c = NULL;
	const uint32_t TCP = EGRESS_PROTO_TCP, UDP = EGRESS_PROTO_UDP;

	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	rs_add(&rs, "0.0.0.0/0", 443, 443, CORRAL__PROTOCOL__PROTOCOL_TCP);
	rs_add(&rs, "192.0.2.0/24", 80, 80, CORRAL__PROTOCOL__PROTOCOL_TCP);
	rs_add(&rs, "192.0.2.7/32", 9000, 9010, CORRAL__PROTOCOL__PROTOCOL_UDP);
	rs_add(&rs, "2001:db8::/32", 0, 0, CORRAL__PROTOCOL__PROTOCOL_ANY);
	CU_ASSERT_EQUAL_FATAL(egress_rules_compile(&rs.rules, NULL, &c), 0);
	/* the /32 inherits the /24's port 80 and the /0's 443 */
	CU_ASSERT_TRUE(allows(c, "192.0.2.7", 80, TCP));
	CU_ASSERT_TRUE(allows(c, "192.0.2.7", 443, TCP));
	CU_ASSERT_TRUE(allows(c, "192.0.2.7", 9005, UDP));
	CU_ASSERT_FALSE(allows(c, "192.0.2.7", 9005, TCP));
	CU_ASSERT_FALSE(allows(c, "192.0.2.8", 9005, UDP));
	CU_ASSERT_TRUE(allows(c, "198.51.100.1", 443, TCP));
	CU_ASSERT_FALSE(allows(c, "198.51.100.1", 80, TCP));
	/* barriers: the /0 does not open loopback, 0/8 or metadata */
	CU_ASSERT_FALSE(allows(c, "127.0.0.1", 443, TCP));
	CU_ASSERT_FALSE(allows(c, "0.0.0.0", 443, TCP));
	CU_ASSERT_FALSE(allows(c, "169.254.169.254", 443, TCP));
	CU_ASSERT_TRUE(allows(c, "169.254.169.253", 443, TCP)); /* only the exact address */
	/* mapped IPv6 follows the IPv4 rules */
	CU_ASSERT_TRUE(allows(c, "::ffff:192.0.2.9", 80, TCP));
	CU_ASSERT_FALSE(allows(c, "::ffff:127.0.0.1", 443, TCP));
	CU_ASSERT_TRUE(allows(c, "2001:db8::5", 22, TCP));
	CU_ASSERT_FALSE(allows(c, "2001:db9::5", 22, TCP));
	CU_ASSERT_FALSE(allows(c, "::1", 22, TCP));
	/* DNS blocked even where a range covers port 53 */
	CU_ASSERT_FALSE(allows(c, "2001:db8::53", 53, UDP));
	CU_ASSERT_FALSE(allows(c, "2001:db8::53", 853, TCP));
	egress_compiled_free(c);

	/* exact metadata rule and a loopback rule open those */
	rs_init(&rs, CORRAL__DNS_MODE__DNS_OPEN);
	rs_add(&rs, "169.254.169.254/32", 80, 80, CORRAL__PROTOCOL__PROTOCOL_TCP);
	rs_add(&rs, "127.0.0.1", 8080, 0, CORRAL__PROTOCOL__PROTOCOL_TCP);
	rs_add(&rs, "fd00:ec2::254/128", 80, 80, CORRAL__PROTOCOL__PROTOCOL_TCP);
	CU_ASSERT_EQUAL_FATAL(egress_rules_compile(&rs.rules, NULL, &c), 0);
	CU_ASSERT_TRUE(allows(c, "169.254.169.254", 80, TCP));
	CU_ASSERT_TRUE(allows(c, "fd00:ec2::254", 80, TCP));
	CU_ASSERT_TRUE(allows(c, "127.0.0.1", 8080, TCP));
	CU_ASSERT_FALSE(allows(c, "127.0.0.1", 8081, TCP));
	/* dns: open = 53/853 anywhere but behind barriers */
	CU_ASSERT_TRUE(allows(c, "198.51.100.53", 53, UDP));
	CU_ASSERT_TRUE(allows(c, "2001:db8::53", 853, TCP));
	CU_ASSERT_FALSE(allows(c, "198.51.100.53", 54, UDP));
	egress_compiled_free(c);

	/* extra: proxy and filtered resolver */
	struct egress_extra extra = {0};
	CU_ASSERT_EQUAL(egress_parse_sockaddr("127.0.0.1:3128", 0, &extra.proxy, &(socklen_t){0}),
	                0);
	CU_ASSERT_EQUAL(
	        egress_parse_sockaddr("[::ffff:127.0.0.53]:53", 0, &extra.dns, &(socklen_t){0}), 0);
	rs_init(&rs, CORRAL__DNS_MODE__DNS_FILTERED);
	CU_ASSERT_EQUAL_FATAL(egress_rules_compile(&rs.rules, &extra, &c), 0);
	CU_ASSERT_TRUE(allows(c, "127.0.0.1", 3128, TCP));
	CU_ASSERT_FALSE(allows(c, "127.0.0.1", 3128, UDP));
	CU_ASSERT_FALSE(allows(c, "127.0.0.1", 3129, TCP));
	CU_ASSERT_TRUE(allows(c, "127.0.0.53", 53, UDP));
	CU_ASSERT_FALSE(allows(c, "127.0.0.1", 53, UDP));
	CU_ASSERT_FALSE(allows(c, "192.0.2.1", 53, UDP));
	/* dns: filtered with a loopback IPv4 resolver: the kernel redirects port 53 there */
	CU_ASSERT_EQUAL(c->config.dns_redirect_ip4, htonl(0x7f000035));
	CU_ASSERT_EQUAL(c->config.dns_redirect_port, htons(53));
	egress_compiled_free(c);

	/* no redirect: other DNS modes, a non-loopback or IPv6 resolver, no resolver */
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	CU_ASSERT_EQUAL_FATAL(egress_rules_compile(&rs.rules, &extra, &c), 0);
	CU_ASSERT_EQUAL(c->config.dns_redirect_ip4, 0);
	egress_compiled_free(c);
	static const char *const no_redirect[] = {"192.0.2.53:53", "[::1]:53",
	                                          "[::ffff:192.0.2.53]:53"};
	for (size_t i = 0; i < ELEMENTSOF(no_redirect); i++) {
		memset(&extra.dns, 0, sizeof(extra.dns));
		CU_ASSERT_EQUAL(
		        egress_parse_sockaddr(no_redirect[i], 0, &extra.dns, &(socklen_t){0}), 0);
		rs_init(&rs, CORRAL__DNS_MODE__DNS_FILTERED);
		CU_ASSERT_EQUAL_FATAL(egress_rules_compile(&rs.rules, &extra, &c), 0);
		CU_ASSERT_EQUAL(c->config.dns_redirect_ip4, 0);
		egress_compiled_free(c);
	}
	memset(&extra.dns, 0, sizeof(extra.dns));
	rs_init(&rs, CORRAL__DNS_MODE__DNS_FILTERED);
	CU_ASSERT_EQUAL_FATAL(egress_rules_compile(&rs.rules, &extra, &c), 0);
	CU_ASSERT_EQUAL(c->config.dns_redirect_ip4, 0);
	egress_compiled_free(c);
	CU_ASSERT_EQUAL(egress_parse_sockaddr("127.0.0.1:5353", 0, &extra.dns, &(socklen_t){0}), 0);
	CU_ASSERT_EQUAL_FATAL(egress_rules_compile(&rs.rules, &extra, &c), 0);
	CU_ASSERT_EQUAL(c->config.dns_redirect_ip4, htonl(INADDR_LOOPBACK));
	CU_ASSERT_EQUAL(c->config.dns_redirect_port, htons(5353));
	egress_compiled_free(c);

	/* default_allow still keeps barriers and DNS */
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	rs.rules.default_allow = true;
	CU_ASSERT_EQUAL_FATAL(egress_rules_compile(&rs.rules, NULL, &c), 0);
	CU_ASSERT_TRUE(allows(c, "198.51.100.1", 22, TCP));
	CU_ASSERT_FALSE(allows(c, "127.0.0.1", 22, TCP));
	CU_ASSERT_FALSE(allows(c, "198.51.100.1", 53, UDP));
	CU_ASSERT_EQUAL(c->config.skb_block, 0);
	egress_compiled_free(c);
}

static void test_compile_errors(void)
{
	struct ruleset rs;
	struct egress_compiled *c = NULL;

	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	rs_add(&rs, "192.0.2.0/24", 90, 80, CORRAL__PROTOCOL__PROTOCOL_TCP);
	CU_ASSERT_EQUAL(egress_rules_compile(&rs.rules, NULL, &c), -EINVAL);
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	rs_add(&rs, "192.0.2.0/24", 80, 70000, CORRAL__PROTOCOL__PROTOCOL_TCP);
	CU_ASSERT_EQUAL(egress_rules_compile(&rs.rules, NULL, &c), -EINVAL);
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	rs_add(&rs, "192.0.2.0/24", 80, 80, (Corral__Protocol)7);
	CU_ASSERT_EQUAL(egress_rules_compile(&rs.rules, NULL, &c), -EINVAL);
	/* more distinct port ranges on one prefix than the BPF program walks */
	static char cidrs[40][32];
	struct ruleset big;
	rs_init(&big, CORRAL__DNS_MODE__DNS_DENY);
	Corral__NetworkRule items[40];
	Corral__NetworkRule *ptrs[40];
	for (int i = 0; i < 40; i++) {
		corral__network_rule__init(&items[i]);
		snprintf(cidrs[i], sizeof(cidrs[i]), "192.0.2.7/32");
		items[i].cidr = cidrs[i];
		items[i].port_min = items[i].port_max = (uint32_t)(1000 + i);
		ptrs[i] = &items[i];
	}
	big.rules.allow = ptrs;
	big.rules.n_allow = 40;
	CU_ASSERT_EQUAL(egress_rules_compile(&big.rules, NULL, &c), -E2BIG);
	/* an extra with port 0 is a mistake */
	struct egress_extra extra = {0};
	extra.proxy.ss_family = AF_INET;
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	CU_ASSERT_EQUAL(egress_rules_compile(&rs.rules, &extra, &c), -EINVAL);
	/* NULL rules: deny all */
	CU_ASSERT_EQUAL_FATAL(egress_rules_compile(NULL, NULL, &c), 0);
	CU_ASSERT_FALSE(allows(c, "192.0.2.1", 443, EGRESS_PROTO_TCP));
	egress_compiled_free(c);
}

static void norm_ok(const char *in, const char *want, int kind)
{
	char out[256];
	const char *reason = NULL;
	int k = egress_host_normalise(in, strlen(in), out, sizeof(out), &reason);
	if (k != kind)
		printf("\n  normalise(%s) = %d (%s)\n", in, k, reason ? reason : "");
	CU_ASSERT_EQUAL(k, kind);
	if (k > 0)
		CU_ASSERT_STRING_EQUAL(out, want);
}

static void norm_bad(const char *in, size_t len, const char *want_reason)
{
	char out[256];
	const char *reason = NULL;
	CU_ASSERT_EQUAL(egress_host_normalise(in, len, out, sizeof(out), &reason), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(reason);
	if (strcmp(reason, want_reason) != 0)
		printf("\n  normalise(%.*s): %s, want %s\n", (int)len, in, reason, want_reason);
	CU_ASSERT_STRING_EQUAL(reason, want_reason);
}

static void test_hostname_normalise(void)
{
	norm_ok("Allowed.TEST.", "allowed.test", EGRESS_HOST_NAME);
	norm_ok("xn--bcher-kva.example", "xn--bcher-kva.example", EGRESS_HOST_NAME);
	norm_ok("a-b.c1.example", "a-b.c1.example", EGRESS_HOST_NAME);
	norm_ok("192.0.2.1", "192.0.2.1", EGRESS_HOST_IPV4);
	norm_ok("[2001:DB8::1]", "2001:db8::1", EGRESS_HOST_IPV6);
	norm_ok("2001:db8::1", "2001:db8::1", EGRESS_HOST_IPV6);
	norm_bad("allowed.test\0.evil.test", 23, "nul-byte");
	norm_bad("allowed.test%00.evil", 20, "percent-escape");
	norm_bad("evil\x01.test", 10, "control-byte");
	norm_bad("b\xc3\xbc"
	         "cher.example",
	         14, "non-ascii");
	norm_bad("allowed.test..", 14, "bad-label");
	norm_bad(".", 1, "empty");
	norm_bad("", 0, "empty");
	norm_bad("-a.test", 7, "bad-label");
	norm_bad("a-.test", 7, "bad-label");
	norm_bad("a_b.test", 8, "bad-label");
	norm_bad("*.test", 6, "bad-label");
	norm_bad("0x7f000001", 10, "ip-literal");
	norm_bad("127.1", 5, "ip-literal");
	norm_bad("1.2.3.4.5", 9, "ip-literal");
	norm_bad("[::1%lo]", 8, "percent-escape");
	norm_bad("[192.0.2.1]", 11, "bad-label");
	char longname[300];
	memset(longname, 'a', sizeof(longname));
	norm_bad(longname, 64, "bad-label"); /* one 64-byte label */
	norm_bad(longname, 300, "too-long");
}

static void test_host_rules(void)
{
	struct ruleset rs;
	struct egress_host_rules *r = NULL;

	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	rs_host(&rs, "allowed.test", 443);
	rs_host(&rs, "*.pypi.test", 443);
	rs_host(&rs, "Any.Port.Test.", 0);
	CU_ASSERT_EQUAL_FATAL(egress_host_rules_new(&rs.rules, &r), 0);
	CU_ASSERT_TRUE(egress_host_rules_match(r, "allowed.test", 443));
	CU_ASSERT_FALSE(egress_host_rules_match(r, "allowed.test", 80));
	CU_ASSERT_FALSE(egress_host_rules_match(r, "evil.test", 443));
	CU_ASSERT_FALSE(egress_host_rules_match(r, "xallowed.test", 443));
	CU_ASSERT_TRUE(egress_host_rules_match(r, "files.pypi.test", 443));
	CU_ASSERT_TRUE(egress_host_rules_match(r, "a.b.pypi.test", 443));
	CU_ASSERT_FALSE(egress_host_rules_match(r, "pypi.test", 443));
	CU_ASSERT_FALSE(egress_host_rules_match(r, "evilpypi.test", 443));
	CU_ASSERT_TRUE(egress_host_rules_match(r, "any.port.test", 8443));
	/* port 0 in a query (DNS) = any rule port */
	CU_ASSERT_TRUE(egress_host_rules_match(r, "allowed.test", 0));
	egress_host_rules_free(r);

	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	rs_host(&rs, "bad_name.test", 443);
	CU_ASSERT_EQUAL(egress_host_rules_new(&rs.rules, &r), -EINVAL);
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	rs_host(&rs, "ok.test", 70000);
	CU_ASSERT_EQUAL(egress_host_rules_new(&rs.rules, &r), -EINVAL);
}

static void test_sni(void)
{
	uint8_t hello[4096];
	char sni[256];
	size_t n = tls_hello("allowed.test", hello, sizeof(hello));
	CU_ASSERT_FATAL(n > 100);
	CU_ASSERT_EQUAL(egress_tls_sni(hello, n, sni, sizeof(sni)), 12);
	CU_ASSERT_STRING_EQUAL(sni, "allowed.test");
	/* every strict prefix needs more bytes */
	for (size_t i = 0; i < n; i += 7)
		CU_ASSERT_EQUAL(egress_tls_sni(hello, i, sni, sizeof(sni)), -EAGAIN);
	/* trailing bytes after the record are the next record: fine */
	CU_ASSERT_EQUAL(egress_tls_sni(hello, n, sni, sizeof(sni)), 12);

	n = tls_hello(NULL, hello, sizeof(hello));
	CU_ASSERT_FATAL(n > 100);
	CU_ASSERT_EQUAL(egress_tls_sni(hello, n, sni, sizeof(sni)), 0);

	/* corruptions */
	n = tls_hello("allowed.test", hello, sizeof(hello));
	uint8_t bad[4096];
	memcpy(bad, hello, n);
	bad[0] = 0x17;
	CU_ASSERT_EQUAL(egress_tls_sni(bad, n, sni, sizeof(sni)), -EINVAL);
	memcpy(bad, hello, n);
	bad[5] = 2; /* not a ClientHello */
	CU_ASSERT_EQUAL(egress_tls_sni(bad, n, sni, sizeof(sni)), -EINVAL);
	memcpy(bad, hello, n);
	bad[3] = 0x50; /* record longer than 16 KiB */
	CU_ASSERT_EQUAL(egress_tls_sni(bad, n, sni, sizeof(sni)), -EINVAL);
	memcpy(bad, hello, n);
	bad[7] = (uint8_t)(bad[7] + 1); /* handshake longer than the record */
	CU_ASSERT_EQUAL(egress_tls_sni(bad, n, sni, sizeof(sni)), -EINVAL);
	/* a too-small output buffer */
	CU_ASSERT_EQUAL(egress_tls_sni(hello, n, sni, 5), -ENAMETOOLONG);
	/* a name with a NUL inside is returned with its length; the normaliser refuses it */
	n = tls_hello("allowed.test", hello, sizeof(hello));
	uint8_t *p = memmem(hello, n, "allowed.test", 12);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	p[7] = '\0';
	CU_ASSERT_EQUAL(egress_tls_sni(hello, n, sni, sizeof(sni)), 12);
	char out[256];
	const char *reason;
	CU_ASSERT_EQUAL(egress_host_normalise(sni, 12, out, sizeof(out), &reason), -EINVAL);
}

static void test_proxy_env(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char **env = NULL;

	CU_ASSERT_EQUAL_FATAL(egress_parse_sockaddr("127.0.0.1:3128", 0, &ss, &len), 0);
	int n = egress_proxy_env((struct sockaddr *)&ss, len, &env);
	CU_ASSERT_EQUAL_FATAL(n, 8);
	CU_ASSERT_STRING_EQUAL(env[0], "HTTP_PROXY=http://127.0.0.1:3128");
	CU_ASSERT_STRING_EQUAL(env[2], "ALL_PROXY=http://127.0.0.1:3128");
	CU_ASSERT_STRING_EQUAL(env[6], "NO_PROXY=");
	CU_ASSERT_PTR_NULL(env[8]);
	egress_strv_free(env);
	CU_ASSERT_EQUAL_FATAL(egress_parse_sockaddr("[::1]:8080", 0, &ss, &len), 0);
	CU_ASSERT_EQUAL_FATAL(egress_proxy_env((struct sockaddr *)&ss, len, &env), 8);
	CU_ASSERT_STRING_EQUAL(env[1], "HTTPS_PROXY=http://[::1]:8080");
	egress_strv_free(env);
	ss.ss_family = AF_UNIX;
	CU_ASSERT_EQUAL(egress_proxy_env((struct sockaddr *)&ss, len, &env), -EINVAL);
	CU_ASSERT_EQUAL(egress_parse_sockaddr("127.0.0.1:99999", 0, &ss, &len), -EINVAL);
	CU_ASSERT_EQUAL(egress_parse_sockaddr("[::1", 0, &ss, &len), -EINVAL);
	CU_ASSERT_EQUAL(egress_parse_sockaddr("host:80", 0, &ss, &len), -EINVAL);
}

static void test_private_ranges(void)
{
	static const char *const priv[] = {
	        "10.1.2.3",        "172.16.0.1", "172.31.255.255",  "192.168.1.1", "127.0.0.1",
	        "169.254.169.254", "0.0.0.0",    "100.64.0.1",      "::1",         "fc00::1",
	        "fd00:ec2::254",   "fe80::1",    "::ffff:10.0.0.1", "::",          "192.0.2.1",
	        "198.51.100.1",    "2001:db8::1"};
	static const char *const pub[] = {"172.32.0.1", "8.8.8.8", "2600::1", "::ffff:1.1.1.1"};
	for (size_t i = 0; i < ELEMENTSOF(priv); i++) {
		uint8_t a[16] = {0};
		int f = strchr(priv[i], ':') ? AF_INET6 : AF_INET;
		inet_pton(f, priv[i], a);
		CU_ASSERT_TRUE(egress_addr_is_private(f, a));
	}
	for (size_t i = 0; i < ELEMENTSOF(pub); i++) {
		uint8_t a[16] = {0};
		int f = strchr(pub[i], ':') ? AF_INET6 : AF_INET;
		inet_pton(f, pub[i], a);
		CU_ASSERT_FALSE(egress_addr_is_private(f, a));
	}
}

static void test_available_reports_reason(void)
{
	char why[256] = "";
	int r = egress_available(why, sizeof(why));
	CU_ASSERT(r == 0 || r == 1);
	CU_ASSERT(why[0] != '\0');
	/* the probe that keeps its programs agrees, and hands them over only when it says 1 */
	struct egress *e = NULL;
	char why2[256] = "";
	int r2 = egress_probe(&e, why2, sizeof(why2));
	CU_ASSERT_EQUAL(r2, r);
	CU_ASSERT_STRING_EQUAL(why2, why);
	CU_ASSERT_EQUAL(e != NULL, r2 == 1);
	egress_free(e);
	e = NULL;
#ifndef CORRAL_TEST_HAVE_BPF
	CU_ASSERT_EQUAL(r, 0);
	CU_ASSERT_EQUAL(egress_open(&e), -EOPNOTSUPP);
	/* without BPF every entry point fails closed */
	uint64_t lost;
	CU_ASSERT_EQUAL(egress_attach(NULL, 0), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(egress_set_rules(NULL, NULL, NULL), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(egress_events_fd(NULL), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(egress_events_poll(NULL, NULL, NULL), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(egress_events_lost(NULL, &lost), -EOPNOTSUPP);
	egress_free(NULL);
#endif
}

static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *de; (de = readdir(d));)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Waits for one finished lookup (the eventfd) and takes it; 1 when taken. */
static int take_one(struct egress_resolver *r, uint64_t *cookie, struct egress_resolve_result *res)
{
	for (int tries = 0; tries < 50; tries++) {
		struct pollfd pfd = {.fd = egress_resolver_fd(r), .events = POLLIN};
		if (poll(&pfd, 1, 100) < 0)
			return -1;
		int k = egress_resolver_take(r, cookie, res);
		if (k != 0)
			return k;
	}
	return 0;
}

/* An idle resolver has no thread; lookups start them, at most the configured count. */
static void test_resolver_threads_on_demand(void)
{
	struct egress_resolver *r = NULL;
	int before = count_threads();
	CU_ASSERT_EQUAL_FATAL(egress_resolver_new(NULL, 2, &r), 0);
	CU_ASSERT_EQUAL(count_threads(), before);
	CU_ASSERT_EQUAL(egress_resolver_add_host(r, "a.test", "192.0.2.1"), 0);
	for (uint64_t i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(egress_resolver_submit(r, "a.test", i), 0);
	int during = count_threads();
	CU_ASSERT(during > before && during <= before + 2);
	unsigned seen = 0;
	for (int i = 0; i < 5; i++) {
		uint64_t cookie = 99;
		struct egress_resolve_result res;
		CU_ASSERT_EQUAL_FATAL(take_one(r, &cookie, &res), 1);
		CU_ASSERT(cookie < 5);
		seen |= 1u << cookie;
		CU_ASSERT_EQUAL(res.error, 0);
		CU_ASSERT_EQUAL(res.count, 1);
	}
	CU_ASSERT_EQUAL(seen, 0x1fu);
	egress_resolver_free(r);
	CU_ASSERT_EQUAL(count_threads(), before);
}

/* In a child that may not create threads (RLIMIT_NPROC 0, as nobody when root), a lookup
 * completes at once as failed instead of waiting forever. */
static void test_resolver_no_thread_fails_lookup(void)
{
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = {0, 0};
		if ((geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0)) ||
		    setrlimit(RLIMIT_NPROC, &rl) < 0)
			_exit(2);
		struct egress_resolver *r = NULL;
		uint64_t cookie = 0;
		struct egress_resolve_result res;
		if (egress_resolver_new(NULL, 1, &r) < 0 ||
		    egress_resolver_add_host(r, "a.test", "192.0.2.1") < 0 ||
		    egress_resolver_submit(r, "a.test", 7) < 0 || take_one(r, &cookie, &res) != 1)
			_exit(3);
		egress_resolver_free(r);
		_exit(cookie == 7 && res.error == -EAGAIN && res.count == 0 ? 0 : 4);
	}
	int status = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT(WIFEXITED(status));
	CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
}

static const struct harness_test tests[] = {
        {"parse_cidr", test_parse_cidr},
        {"compile_inheritance_and_barriers", test_compile_inheritance_and_barriers},
        {"compile_errors", test_compile_errors},
        {"hostname_normalise", test_hostname_normalise},
        {"host_rules", test_host_rules},
        {"sni", test_sni},
        {"proxy_env", test_proxy_env},
        {"private_ranges", test_private_ranges},
        {"available_reports_reason", test_available_reports_reason},
        {"resolver_threads_on_demand", test_resolver_threads_on_demand},
        {"resolver_no_thread_fails_lookup", test_resolver_no_thread_fails_lookup},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"net", NULL, NULL, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
