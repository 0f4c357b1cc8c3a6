// SPDX-License-Identifier: Apache-2.0
/*
 * Privileged tests of the cgroup BPF egress filter in a two-namespace lab (netlab.h): allowed
 * CIDR/port works, other ports and addresses fail with EPERM and are reported with the session
 * cgroup, pid and comm; IPv6 and IPv4-mapped IPv6; UDP sendto; DNS to an outside resolver;
 * loopback and metadata barriers; ICMP via the skb hook; audit mode; and a policy swap under a
 * connect loop that must never show a gap.
 */
#include "egress.h"
#include "harness.h"
#include "netlab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

static struct netlab lab;
static struct egress *eg;
static char skip_reason[512];
static bool ready;

static int suite_init(void)
{
	char why[256];
	static const uint16_t ports[] = {80, 443, 8080};

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
	if (netlab_start_server(&lab, ports, 3) < 0 || egress_open(&eg) < 0 ||
	    egress_attach(eg, lab.profile_cg_fd) < 0) {
		netlab_teardown(&lab);
		return 1;
	}
	ready = true;
	return 0;
}

static int suite_cleanup(void)
{
	egress_free(eg);
	if (ready)
		netlab_teardown(&lab);
	return 0;
}

#define REQUIRE_LAB()                                    \
	do {                                             \
		if (!ready)                              \
			HARNESS_SKIP("%s", skip_reason); \
	} while (0)

/* A rule list built on the stack. */
struct ruleset {
	Corral__NetworkRules rules;
	Corral__NetworkRule items[16];
	Corral__NetworkRule *ptrs[16];
};

static void rs_init(struct ruleset *rs, Corral__DnsMode dns)
{
	memset(rs, 0, sizeof(*rs));
	corral__network_rules__init(&rs->rules);
	rs->rules.dns = dns;
	rs->rules.allow = rs->ptrs;
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

/* One probe run in the session: what it does and what it got. */
struct probe {
	const char *addr;
	uint16_t port;
	int kind; /* 0 tcp connect, 1 udp sendto, 2 udp connect, 3 raw icmp, 4 tcp fast open,
	           5 big udp6 */
	int family;
	int expect;
	int got;
};

static struct probe *shared_probes;
static size_t shared_n;

static int raw_icmp(const char *addr)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	static const uint8_t echo[8] = {8, 0, 0xf7, 0xff, 0, 0, 0, 0};
	inet_pton(AF_INET, addr, &a.sin_addr);
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (fd < 0)
		return errno;
	int r = sendto(fd, echo, sizeof(echo), 0, (struct sockaddr *)&a, sizeof(a)) < 0 ? errno : 0;
	close(fd);
	return r;
}

/* TCP Fast Open: sendto(MSG_FASTOPEN) connects without connect(). */
static int fastopen(const char *addr, uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, addr, &a.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	int r = sendto(fd, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&a, sizeof(a)) < 0 ? errno : 0;
	close(fd);
	return r;
}

/* A UDP datagram larger than the veth MTU (sent as IPv6 fragments). */
static int big_udp6(const char *addr, uint16_t port)
{
	static char payload[3000];
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	inet_pton(AF_INET6, addr, &a.sin6_addr);
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	int r = sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&a, sizeof(a)) < 0
	                ? errno
	                : 0;
	close(fd);
	return r;
}

static int run_probes(void *arg)
{
	prctl(PR_SET_NAME, "corral-probe");
	for (size_t i = 0; i < shared_n; i++) {
		struct probe *p = &shared_probes[i];
		switch (p->kind) {
		case 0:
			p->got = netlab_connect(p->addr, p->port, SOCK_STREAM);
			break;
		case 1:
			p->got = netlab_sendto(p->family, p->addr, p->port);
			break;
		case 2:
			p->got = netlab_connect(p->addr, p->port, SOCK_DGRAM);
			break;
		case 4:
			p->got = fastopen(p->addr, p->port);
			break;
		case 5:
			p->got = big_udp6(p->addr, p->port);
			break;
		default:
			p->got = raw_icmp(p->addr);
		}
	}
	return 0;
}

static void check_probes(const struct probe *probes, size_t n)
{
	shared_probes = mmap(NULL, n * sizeof(*probes), PROT_READ | PROT_WRITE,
	                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(shared_probes != MAP_FAILED);
	memcpy(shared_probes, probes, n * sizeof(*probes));
	shared_n = n;
	CU_ASSERT_EQUAL(netlab_run_session(&lab, run_probes, NULL), 0);
	for (size_t i = 0; i < n; i++) {
		const struct probe *p = &shared_probes[i];
		if (p->got != p->expect)
			printf("\n  probe %s port %u kind %d: got %s, want %s\n", p->addr, p->port,
			       p->kind, strerror(p->got), strerror(p->expect));
		CU_ASSERT_EQUAL(p->got, p->expect);
	}
	munmap(shared_probes, n * sizeof(*probes));
}

struct collected {
	struct egress_event ev[64];
	size_t n;
};

static int collect(const struct egress_event *ev, void *userdata)
{
	struct collected *c = userdata;
	if (c->n < 64)
		c->ev[c->n++] = *ev;
	return 0;
}

static void drain(struct collected *c)
{
	memset(c, 0, sizeof(*c));
	usleep(20 * 1000);
	CU_ASSERT(egress_events_poll(eg, collect, c) >= 0);
}

static const struct egress_event *find_event(const struct collected *c, const char *target)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->ev[i].target, target) == 0)
			return &c->ev[i];
	return NULL;
}

static void test_cidr_ports_v4_v6_mapped(void)
{
	struct ruleset rs;
	struct collected c;
	REQUIRE_LAB();
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	rs_add(&rs, "192.0.2.2/32", 80, 80, CORRAL__PROTOCOL__PROTOCOL_TCP);
	rs_add(&rs, "2001:db8::2/128", 8080, 8080, CORRAL__PROTOCOL__PROTOCOL_TCP);
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, &rs.rules, NULL), 0);
	drain(&c);
	const struct probe probes[] = {
	        {"192.0.2.2", 80, 0, 0, 0},
	        {"192.0.2.2", 443, 0, 0, EPERM},
	        {"192.0.2.2", 443, 4, 0, EPERM}, /* TCP Fast Open */
	        {"192.0.2.2", 80, 4, 0, 0},
	        {"192.0.2.53", 80, 0, 0, EPERM},
	        {"192.0.2.2", 80, 2, 0, EPERM}, /* UDP not in the rule */
	        {"2001:db8::2", 8080, 0, 0, 0},
	        {"2001:db8::2", 80, 0, 0, EPERM},
	        {"::ffff:192.0.2.2", 80, 0, 0, 0},
	        {"::ffff:192.0.2.2", 443, 0, 0, EPERM},
	        {"::ffff:192.0.2.53", 80, 0, 0, EPERM},
	};
	check_probes(probes, ELEMENTSOF(probes));
	drain(&c);
	const struct egress_event *ev = find_event(&c, "192.0.2.2:443");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(ev->cgroup_id, lab.session_cg_id);
	CU_ASSERT_STRING_EQUAL(ev->comm, "corral-probe");
	CU_ASSERT(ev->pid > 0);
	CU_ASSERT_EQUAL(ev->protocol, IPPROTO_TCP);
	CU_ASSERT_EQUAL(ev->hook, EGRESS_HOOK_CONNECT4);
	CU_ASSERT_FALSE(ev->audit_only);
	/* the mapped attempt is reported as IPv4 from the connect6 hook */
	ev = find_event(&c, "192.0.2.53:80");
	CU_ASSERT_PTR_NOT_NULL(ev);
	ev = find_event(&c, "[2001:db8::2]:80");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(ev->hook, EGRESS_HOOK_CONNECT6);
}

static void test_udp_sendto_and_dns(void)
{
	struct ruleset rs;
	REQUIRE_LAB();
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	rs_add(&rs, "192.0.2.0/24", 0, 0, CORRAL__PROTOCOL__PROTOCOL_ANY);
	rs_add(&rs, "2001:db8::/32", 9999, 9999, CORRAL__PROTOCOL__PROTOCOL_UDP);
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, &rs.rules, NULL), 0);
	const struct probe probes[] = {
	        {"192.0.2.2", 9999, 1, AF_INET, 0},
	        {"2001:db8::2", 9999, 1, AF_INET6, 0},
	        {"2001:db8::2", 9998, 1, AF_INET6, EPERM},
	        {"2001:db8::2", 9999, 5, AF_INET6, 0}, /* fragmented: not dropped by the skb hook */
	        {"::ffff:192.0.2.2", 9998, 1, AF_INET6, 0}, /* mapped: the IPv4 /24 allows it */
	        /* DNS to a resolver inside an allowed range is still refused */
	        {"192.0.2.53", 53, 1, AF_INET, EPERM},
	        {"::ffff:192.0.2.53", 53, 1, AF_INET6, EPERM},
	        {"192.0.2.53", 53, 0, 0, EPERM},
	        {"192.0.2.53", 853, 0, 0, EPERM},
	        {"192.0.2.2", 80, 0, 0, 0},
	};
	check_probes(probes, ELEMENTSOF(probes));

	/* dns: filtered — only corrald's resolver address */
	struct egress_extra extra = {0};
	struct sockaddr_in *dns = (struct sockaddr_in *)&extra.dns;
	dns->sin_family = AF_INET;
	dns->sin_port = htons(53);
	inet_pton(AF_INET, "192.0.2.53", &dns->sin_addr);
	rs_init(&rs, CORRAL__DNS_MODE__DNS_FILTERED);
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, &rs.rules, &extra), 0);
	const struct probe probes2[] = {
	        {"192.0.2.53", 53, 1, AF_INET, 0},
	        {"192.0.2.2", 53, 1, AF_INET, EPERM},
	        {"192.0.2.53", 54, 1, AF_INET, EPERM},
	};
	check_probes(probes2, ELEMENTSOF(probes2));
}

static void test_barriers_and_icmp(void)
{
	struct ruleset rs;
	REQUIRE_LAB();
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	rs_add(&rs, "0.0.0.0/0", 0, 0, CORRAL__PROTOCOL__PROTOCOL_ANY);
	rs_add(&rs, "::/0", 0, 0, CORRAL__PROTOCOL__PROTOCOL_ANY);
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, &rs.rules, NULL), 0);
	const struct probe probes[] = {
	        {"192.0.2.2", 80, 0, 0, 0},
	        {"127.0.0.1", 80, 0, 0, EPERM},
	        {"::1", 80, 0, 0, EPERM},
	        {"::ffff:127.0.0.1", 80, 0, 0, EPERM},
	        {"0.0.0.0", 80, 0, 0, EPERM},
	        {"169.254.169.254", 80, 0, 0, EPERM},
	        {"fd00:ec2::254", 80, 0, 0, EPERM},
	        {"192.0.2.2", 0, 3, 0, EPERM},  /* ICMP echo from a raw socket: skb hook */
	        {"127.0.0.1", 80, 4, 0, EPERM}, /* TCP Fast Open goes through connect4 too */
	};
	check_probes(probes, ELEMENTSOF(probes));

	/* an exact rule opens metadata; a loopback rule opens loopback */
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	rs_add(&rs, "169.254.169.254/32", 80, 80, CORRAL__PROTOCOL__PROTOCOL_TCP);
	rs_add(&rs, "127.0.0.0/8", 9, 9, CORRAL__PROTOCOL__PROTOCOL_TCP);
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, &rs.rules, NULL), 0);
	const struct probe probes2[] = {
	        {"169.254.169.254", 80, 0, 0, ENETUNREACH}, /* allowed, but no route in the lab */
	        {"127.0.0.1", 9, 0, 0, ECONNREFUSED},       /* allowed, nobody listens */
	        {"127.0.0.1", 10, 0, 0, EPERM},
	};
	check_probes(probes2, ELEMENTSOF(probes2));
}

static void test_audit_mode(void)
{
	struct ruleset rs;
	struct collected c;
	struct egress_extra extra = {.audit = true};
	REQUIRE_LAB();
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, &rs.rules, &extra), 0);
	drain(&c);
	const struct probe probes[] = {{"192.0.2.2", 443, 0, 0, 0}};
	check_probes(probes, ELEMENTSOF(probes));
	drain(&c);
	const struct egress_event *ev = find_event(&c, "192.0.2.2:443");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_TRUE(ev->audit_only);
}

static int repeat_denied(void *arg)
{
	prctl(PR_SET_NAME, "corral-repeat");
	for (int i = 0; i < 20; i++)
		if (netlab_connect("192.0.2.2", 443, SOCK_STREAM) != EPERM)
			return 1;
	/* after the window the next one is reported and carries the suppressed count */
	usleep(1100 * 1000);
	return netlab_connect("192.0.2.2", 443, SOCK_STREAM) == EPERM ? 0 : 1;
}

static void test_rate_limit(void)
{
	struct ruleset rs;
	struct collected c;
	REQUIRE_LAB();
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, &rs.rules, NULL), 0);
	drain(&c);
	CU_ASSERT_EQUAL(netlab_run_session(&lab, repeat_denied, NULL), 0);
	drain(&c);
	CU_ASSERT_EQUAL_FATAL(c.n, 2);
	CU_ASSERT_EQUAL(c.ev[0].suppressed, 0);
	CU_ASSERT_EQUAL(c.ev[1].suppressed, 19);
	CU_ASSERT_STRING_EQUAL(c.ev[1].comm, "corral-repeat");
}

/* ---- swap under load -------------------------------------------------------------------- */

struct swap_shared {
	atomic_int stop;
	atomic_long both_denied; /* connects to the destination in both sets refused */
	atomic_long both_ok;
	atomic_long removed_ok;      /* successes to the removed destination ... */
	atomic_long removed_ok_late; /* ... that started after the narrowing returned */
	atomic_long narrowed_at_ns;  /* 0 until the last narrowing returned */
};

static struct swap_shared *sw;

static long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static int swap_loop(void *arg)
{
	while (!atomic_load(&sw->stop)) {
		int r = netlab_connect("192.0.2.2", 80, SOCK_STREAM);
		if (r == EPERM)
			atomic_fetch_add(&sw->both_denied, 1);
		else if (r == 0)
			atomic_fetch_add(&sw->both_ok, 1);
		long start = now_ns();
		long narrowed = atomic_load(&sw->narrowed_at_ns);
		r = netlab_connect("192.0.2.2", 443, SOCK_STREAM);
		if (r == 0) {
			atomic_fetch_add(&sw->removed_ok, 1);
			if (narrowed && start > narrowed)
				atomic_fetch_add(&sw->removed_ok_late, 1);
		}
	}
	return 0;
}

static void test_swap_without_gap(void)
{
	struct ruleset wide, narrow;
	REQUIRE_LAB();
	rs_init(&wide, CORRAL__DNS_MODE__DNS_DENY);
	rs_add(&wide, "192.0.2.2/32", 80, 80, CORRAL__PROTOCOL__PROTOCOL_TCP);
	rs_add(&wide, "192.0.2.0/24", 443, 443, CORRAL__PROTOCOL__PROTOCOL_TCP);
	rs_add(&wide, "2001:db8::/32", 0, 0, CORRAL__PROTOCOL__PROTOCOL_ANY);
	rs_init(&narrow, CORRAL__DNS_MODE__DNS_DENY);
	rs_add(&narrow, "192.0.2.0/24", 80, 80, CORRAL__PROTOCOL__PROTOCOL_TCP);
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, &wide.rules, NULL), 0);

	sw = mmap(NULL, sizeof(*sw), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(sw != MAP_FAILED);
	memset(sw, 0, sizeof(*sw));
	pid_t pid[2];
	for (int i = 0; i < 2; i++)
		pid[i] = netlab_spawn_session(&lab, swap_loop, NULL);
	/* many flips between rule sets that both allow 192.0.2.2:80 */
	for (int i = 0; i < 200; i++) {
		CU_ASSERT_EQUAL(egress_set_rules(eg, (i & 1) ? &wide.rules : &narrow.rules, NULL),
		                0);
		usleep(2000);
	}
	/* the final narrowing: nothing to :443 may succeed from here on */
	CU_ASSERT_EQUAL(egress_set_rules(eg, &narrow.rules, NULL), 0);
	atomic_store(&sw->narrowed_at_ns, now_ns());
	usleep(300 * 1000);
	atomic_store(&sw->stop, 1);
	for (int i = 0; i < 2; i++)
		if (pid[i] > 0)
			waitpid(pid[i], NULL, 0);
	printf("\n  swap: %ld ok / %ld refused to the kept destination, %ld ok to the removed one, "
	       "%ld of them after the narrowing\n",
	       atomic_load(&sw->both_ok), atomic_load(&sw->both_denied),
	       atomic_load(&sw->removed_ok), atomic_load(&sw->removed_ok_late));
	CU_ASSERT(atomic_load(&sw->both_ok) > 100);
	CU_ASSERT_EQUAL(atomic_load(&sw->both_denied), 0);
	CU_ASSERT(atomic_load(&sw->removed_ok) > 0); /* the wide set was really in force */
	CU_ASSERT_EQUAL(atomic_load(&sw->removed_ok_late), 0);
	munmap(sw, sizeof(*sw));
	struct collected c;
	drain(&c);
}

static void test_bad_rules_keep_old(void)
{
	struct ruleset rs;
	REQUIRE_LAB();
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	rs_add(&rs, "192.0.2.2/32", 80, 80, CORRAL__PROTOCOL__PROTOCOL_TCP);
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, &rs.rules, NULL), 0);
	rs_add(&rs, "192.0.2.1/24", 80, 80, CORRAL__PROTOCOL__PROTOCOL_TCP); /* host bits */
	CU_ASSERT_EQUAL(egress_set_rules(eg, &rs.rules, NULL), -EINVAL);
	const struct probe probes[] = {{"192.0.2.2", 80, 0, 0, 0}, {"192.0.2.2", 443, 0, 0, EPERM}};
	check_probes(probes, ELEMENTSOF(probes));
	CU_ASSERT_EQUAL(egress_attach(eg, -1), -EBADF);
	CU_ASSERT_EQUAL(egress_events_poll(eg, NULL, NULL), -EINVAL);
}

static int flood(void *arg)
{
	/* more denials than the 256 KiB ring buffer holds while nobody reads it */
	for (int i = 0; i < 6000; i++)
		if (netlab_connect("192.0.2.2", 443, SOCK_STREAM) != EPERM)
			return 1;
	return 0;
}

static void test_ring_buffer_overflow_counted(void)
{
	struct ruleset rs;
	struct collected c;
	uint64_t before = 0, after = 0;
	REQUIRE_LAB();
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, &rs.rules, NULL), 0);
	drain(&c);
	CU_ASSERT_EQUAL(egress_events_lost(eg, &before), 0);
	CU_ASSERT_EQUAL(netlab_run_session(&lab, flood, NULL), 0);
	CU_ASSERT_EQUAL(egress_events_lost(eg, &after), 0);
	CU_ASSERT(after > before);
	/* what was queued is still delivered, rate-limited to one report */
	drain(&c);
	CU_ASSERT_EQUAL(c.n, 1);
}

static int refuse_cb(const struct egress_event *ev, void *userdata)
{
	return -ECANCELED;
}

static void test_callback_error_and_link_cap(void)
{
	struct ruleset rs;
	struct collected c;
	REQUIRE_LAB();
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, &rs.rules, NULL), 0);
	drain(&c);
	const struct probe probes[] = {{"192.0.2.2", 80, 0, 0, EPERM}};
	check_probes(probes, ELEMENTSOF(probes));
	usleep(20 * 1000);
	CU_ASSERT_EQUAL(egress_events_poll(eg, refuse_cb, NULL), -ECANCELED);

	/* at most 16 links per egress: 5 programs per cgroup, so the 4th cgroup is refused */
	struct egress *e2 = NULL;
	char path[300];
	int fds[4];
	CU_ASSERT_EQUAL_FATAL(egress_open(&e2), 0);
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/cap%d", lab.profile_cg, i);
		CU_ASSERT_EQUAL_FATAL(mkdir(path, 0755), 0);
		fds[i] = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		CU_ASSERT_FATAL(fds[i] >= 0);
		CU_ASSERT_EQUAL(egress_attach(e2, fds[i]), i < 3 ? 0 : -E2BIG);
	}
	egress_free(e2);
	for (int i = 0; i < 4; i++) {
		close(fds[i]);
		snprintf(path, sizeof(path), "%s/cap%d", lab.profile_cg, i);
		CU_ASSERT_EQUAL(rmdir(path), 0);
	}
}

static bool events_readable(void)
{
	struct pollfd pfd = {.fd = egress_events_fd(eg), .events = POLLIN};
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

/*
 * The events fd is the ring buffer map's own fd: readable while records wait, not once they are
 * drained. The ring is mapped only while draining: a drain that cannot map it (address-space
 * limit in a child) fails with -ENOMEM and leaves the records for the next one.
 */
static void test_events_fd_and_map_failure(void)
{
	struct ruleset rs;
	struct collected c;
	REQUIRE_LAB();
	rs_init(&rs, CORRAL__DNS_MODE__DNS_DENY);
	CU_ASSERT_EQUAL_FATAL(egress_set_rules(eg, &rs.rules, NULL), 0);
	drain(&c);
	CU_ASSERT_FALSE(events_readable());
	const struct probe probes[] = {{"192.0.2.2", 8080, 0, 0, EPERM}};
	check_probes(probes, ELEMENTSOF(probes));
	usleep(20 * 1000);
	CU_ASSERT_TRUE(events_readable());

	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		/* room for small allocations, not for the 2 × 256 KiB data mapping */
		long pages = 0;
		FILE *f = fopen("/proc/self/statm", "re");
		if (!f || fscanf(f, "%ld", &pages) != 1)
			_exit(2);
		fclose(f);
		struct rlimit rl = {(rlim_t)pages * 4096 + 128 * 1024,
		                    (rlim_t)pages * 4096 + 128 * 1024};
		if (setrlimit(RLIMIT_AS, &rl) < 0)
			_exit(3);
		struct collected cc = {.n = 0};
		_exit(egress_events_poll(eg, collect, &cc) == -ENOMEM && cc.n == 0 ? 0 : 4);
	}
	int status = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	CU_ASSERT_TRUE(events_readable());
	drain(&c);
	CU_ASSERT_PTR_NOT_NULL(find_event(&c, "192.0.2.2:8080"));
	CU_ASSERT_FALSE(events_readable());
}

static const struct harness_test tests[] = {
        {"cidr_ports_v4_v6_mapped", test_cidr_ports_v4_v6_mapped},
        {"udp_sendto_and_dns", test_udp_sendto_and_dns},
        {"barriers_and_icmp", test_barriers_and_icmp},
        {"audit_mode", test_audit_mode},
        {"rate_limit", test_rate_limit},
        {"swap_without_gap", test_swap_without_gap},
        {"bad_rules_keep_old", test_bad_rules_keep_old},
        {"callback_error_and_link_cap", test_callback_error_and_link_cap},
        {"ring_buffer_overflow_counted", test_ring_buffer_overflow_counted},
        {"events_fd_and_map_failure", test_events_fd_and_map_failure},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"egress_bpf", suite_init, suite_cleanup, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
