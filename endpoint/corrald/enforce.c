// SPDX-License-Identifier: Apache-2.0
/*
 * Per-policy-version enforcement (see enforce.h): compiled-profile cache, per-profile cgroup
 * with the BPF egress programs attached once, the egress proxy and filtered resolver of a
 * profile, and the network violation sources (ring buffers, proxy refusals).
 *
 * Two kinds of objects: a `profile_net` per profile *name* lives as long as corrald (the
 * cgroup, the attached programs and the proxy stay; a new policy version only swaps their
 * rules, atomically for BPF), and a `cd_enforce_profile` per (version, name) holds the
 * compiled profile, reference-counted by the sessions that run it.
 */
#include "enforce.h"

#include "cleanup.h"
#include "egress.h"
#include "proxy.h"
#include "sbx.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#define CG_NAME_MAX   64
#define TCP_PORTS_MAX 256u /* Landlock fallback: ports expanded from allow rules, capped */

enum watch_kind { WATCH_EGRESS = 1, WATCH_PROXY, WATCH_DNS };

struct watch {
	enum watch_kind kind;
	struct profile_net *net;
};

struct profile_net {
	char name[256];
	char cg_parent[CG_NAME_MAX + 80]; /* "/corral/p-<name>" */
	int cg_fd;
	struct egress *egress;
	struct egress_proxy *proxy;
	struct egress_dns *dns;
	struct egress_extra extra;
	char **proxy_env;
	struct watch w_egress, w_proxy, w_dns;
	struct cd_enforce *owner;
	struct profile_net *next;
};

struct cd_enforce_profile {
	uint64_t version;
	char *name;
	struct sbx_compiled *compiled;
	struct profile_net *net;
	const char *net_layer;
	uint16_t *tcp_ports;
	size_t n_tcp_ports;
	unsigned refs;
	struct cd_enforce_profile *next;
};

struct cd_enforce {
	struct sbx_features features;
	bool test_hooks;
	int epfd;
	int egress_ok; /* 1 available, 0 not, -1 not probed yet */
	char egress_why[256];
	struct egress *egress_spare; /* loaded by the probe, taken by the first profile */
	char cg_root_name[CG_NAME_MAX];
	cd_enforce_emit_fn emit;
	void *userdata;
	uint64_t current_version;
	char *proxy_resolver;                            /* NULL = system resolver */
	char *proxy_private[CD_ENFORCE_PRIVATE_MAX + 1]; /* NULL-terminated CIDRs */
	struct profile_net *nets;
	struct cd_enforce_profile *profiles;
	struct cd_enforce_session *sessions;
};

/* ---- helpers ---------------------------------------------------------------------------- */

/* Profile names become cgroup directory names: keep [A-Za-z0-9_.-], map the rest to '_'. */
static void cg_safe_name(const char *in, char *out, size_t len)
{
	size_t i = 0;
	for (; in[i] && i + 1 < len; i++) {
		char c = in[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '_' || c == '-' || (c == '.' && i > 0);
		out[i] = ok ? c : '_';
	}
	out[i] = '\0';
}

static int mkdir_parents(char *path)
{
	for (char *s = path + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		int r = mkdir(path, 0755) < 0 && errno != EEXIST ? -errno : 0;
		*s = '/';
		if (r < 0)
			return r;
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Removes `rel` (absolute within each hierarchy) from the v2 and v1 trees; best effort. */
static void cg_rmdir(const struct cd_enforce *e, const char *rel)
{
	const char *roots[] = {e->features.cgroup_v2_root, e->features.cgroup_v1_memory,
	                       e->features.cgroup_v1_pids, e->features.cgroup_v1_cpu};
	for (size_t i = 0; i < ELEMENTSOF(roots); i++) {
		char dir[SBX_PATH_MAX];
		if (roots[i][0] &&
		    (size_t)snprintf(dir, sizeof(dir), "%s%s", roots[i], rel) < sizeof(dir))
			(void)rmdir(dir);
	}
}

static struct cd_enforce_session *session_by_cgroup(struct cd_enforce *e, uint64_t id)
{
	for (struct cd_enforce_session *s = e->sessions; s; s = s->next)
		if (id && s->cgroup_id == id)
			return s;
	return NULL;
}

/*
 * The cgroup of the socket behind a proxy client: a sock_diag lookup of the TCP socket whose
 * local end is `client` ("127.0.0.1:PORT") and remote end the proxy. The kernel records the
 * creating task's cgroup in every socket (INET_DIAG_CGROUP_ID), which is the session's cgroup.
 * Returns the cgroup id or 0 when unknown (IPv6 client, socket already gone).
 */
static uint64_t client_cgroup(const char *client, const struct sockaddr_storage *proxy)
{
	char host[64];
	const char *colon = strrchr(client, ':');
	uint64_t port = 0;
	if (!colon || proxy->ss_family != AF_INET || (size_t)(colon - client) >= sizeof(host))
		return 0;
	memcpy(host, client, (size_t)(colon - client));
	host[colon - client] = '\0';
	struct in_addr caddr;
	if (inet_pton(AF_INET, host, &caddr) != 1 || util_parse_u64(colon + 1, &port) < 0 ||
	    port == 0 || port > 65535)
		return 0;
	const struct sockaddr_in *pa = (const struct sockaddr_in *)proxy;
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
	        .nlh = {.nlmsg_len = sizeof(req),
	                .nlmsg_type = SOCK_DIAG_BY_FAMILY,
	                .nlmsg_flags = NLM_F_REQUEST},
	        .r = {.sdiag_family = AF_INET,
	              .sdiag_protocol = IPPROTO_TCP,
	              .idiag_states = ~0u,
	              .id = {.idiag_sport = htons((uint16_t)port),
	                     .idiag_dport = pa->sin_port,
	                     .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}}},
	};
	req.r.id.idiag_src[0] = caddr.s_addr;
	req.r.id.idiag_dst[0] = pa->sin_addr.s_addr;
	_cleanup_close_ int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0 || send(fd, &req, sizeof(req), 0) != (ssize_t)sizeof(req))
		return 0;
	union {
		struct nlmsghdr h;
		char buf[8192];
	} u;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	if (poll(&pfd, 1, 100) != 1) /* the kernel answers at once; never hang the loop */
		return 0;
	ssize_t n = recv(fd, u.buf, sizeof(u.buf), MSG_DONTWAIT);
	if (n < 0 || !NLMSG_OK(&u.h, (size_t)n) || u.h.nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    u.h.nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		return 0;
	struct inet_diag_msg *m = NLMSG_DATA(&u.h);
	int alen = (int)(u.h.nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
		if (a->rta_type == INET_DIAG_CGROUP_ID && RTA_PAYLOAD(a) >= sizeof(uint64_t)) {
			uint64_t id;
			memcpy(&id, RTA_DATA(a), sizeof(id));
			return id;
		}
	return 0;
}

/* A proxy connection names no session: find it by the client socket's cgroup; failing that,
 * attribute the refusal to the session when exactly one session of the profile runs, else to
 * the profile only. */
static struct cd_enforce_session *session_by_net(struct cd_enforce *e, struct profile_net *pn,
                                                 const char *client)
{
	struct cd_enforce_session *by_cg =
	        session_by_cgroup(e, client_cgroup(client, &pn->extra.proxy));
	if (by_cg)
		return by_cg;
	struct cd_enforce_session *found = NULL;
	for (struct cd_enforce_session *s = e->sessions; s; s = s->next) {
		if (!s->profile || s->profile->net != pn)
			continue;
		if (found)
			return NULL;
		found = s;
	}
	return found;
}

static void emit_network(struct cd_enforce *e, struct cd_enforce_session *s, const char *profile,
                         Corral__Violation *v)
{
	Corral__Event ev = CORRAL__EVENT__INIT;
	ev.kind = CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION;
	ev.time_ms = util_now_ms();
	ev.detail_case = CORRAL__EVENT__DETAIL_VIOLATION;
	ev.violation = v;
	v->kind = CORRAL__VIOLATION_KIND__VIOLATION_KIND_NETWORK;
	if (s) {
		ev.session_id = (char *)s->session_id;
		ev.uid = s->uid;
		ev.user = (char *)s->user;
		ev.profile = (char *)s->profile_name;
		ev.policy_version = s->policy_version;
	} else {
		ev.profile = (char *)profile;
		ev.policy_version = e->current_version;
	}
	if (e->emit)
		(void)e->emit(e->userdata, &ev);
}

static const char *proto_name(uint8_t p)
{
	return p == IPPROTO_TCP    ? "tcp"
	       : p == IPPROTO_UDP  ? "udp"
	       : p == IPPROTO_ICMP ? "icmp"
	                           : "ip";
}

static const char *hook_name(int hook)
{
	switch (hook) {
	case EGRESS_HOOK_CONNECT4:
		return "connect4";
	case EGRESS_HOOK_CONNECT6:
		return "connect6";
	case EGRESS_HOOK_SENDMSG4:
		return "sendmsg4";
	case EGRESS_HOOK_SENDMSG6:
		return "sendmsg6";
	default:
		return "skb";
	}
}

static int on_egress_event(const struct egress_event *ev, void *userdata)
{
	struct profile_net *pn = userdata;
	struct cd_enforce *e = pn->owner;
	struct cd_enforce_session *s = session_by_cgroup(e, ev->cgroup_id);
	char detail[128];
	if (ev->protocol == IPPROTO_TCP || ev->protocol == IPPROTO_UDP)
		snprintf(detail, sizeof(detail), "protocol=%s hook=%s", proto_name(ev->protocol),
		         hook_name(ev->hook));
	else
		snprintf(detail, sizeof(detail), "protocol=%u hook=%s", (unsigned)ev->protocol,
		         hook_name(ev->hook));
	char comm[17];
	memcpy(comm, ev->comm, 16);
	comm[16] = '\0';
	Corral__Violation v = CORRAL__VIOLATION__INIT;
	v.pid = ev->pid;
	v.comm = comm;
	v.target = (char *)ev->target;
	v.detail = detail;
	v.audit_only = ev->audit_only;
	v.suppressed = ev->suppressed;
	emit_network(e, s, pn->name, &v);
	return 0;
}

static void on_proxy_event(const struct egress_proxy_event *pe, void *userdata)
{
	struct profile_net *pn = userdata;
	struct cd_enforce *e = pn->owner;
	char target[300], detail[400];
	snprintf(target, sizeof(target), "%s:%u", pe->hostname, (unsigned)pe->port);
	snprintf(detail, sizeof(detail), "reason=%s%s%s client=%s", pe->reason,
	         pe->address && *pe->address ? " address=" : "",
	         pe->address && *pe->address ? pe->address : "", pe->client);
	Corral__Violation v = CORRAL__VIOLATION__INIT;
	v.target = target;
	v.detail = detail;
	v.hostname = (char *)pe->hostname;
	emit_network(e, session_by_net(e, pn, pe->client), pn->name, &v);
}

static int watch_add(struct cd_enforce *e, int fd, struct watch *w)
{
	struct epoll_event ee = {.events = EPOLLIN, .data.ptr = w};
	return epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ee) < 0 ? -errno : 0;
}

static void net_free(struct cd_enforce *e, struct profile_net *pn)
{
	if (!pn)
		return;
	if (pn->egress) {
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, egress_events_fd(pn->egress), NULL);
		egress_free(pn->egress);
	}
	if (pn->proxy) {
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, egress_proxy_fd(pn->proxy), NULL);
		egress_proxy_free(pn->proxy);
	}
	if (pn->dns) {
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, egress_dns_fd(pn->dns), NULL);
		egress_dns_free(pn->dns);
	}
	egress_strv_free(pn->proxy_env);
	if (pn->cg_fd >= 0)
		close(pn->cg_fd);
	/* the profile cgroups go once the programs are detached; sessions are gone by now */
	cg_rmdir(e, pn->cg_parent);
	free(pn);
}

static struct profile_net *net_find_or_new(struct cd_enforce *e, const char *name)
{
	for (struct profile_net *pn = e->nets; pn; pn = pn->next)
		if (strcmp(pn->name, name) == 0)
			return pn;
	struct profile_net *pn = calloc(1, sizeof(*pn));
	if (!pn)
		return NULL;
	snprintf(pn->name, sizeof(pn->name), "%s", name);
	char safe[CG_NAME_MAX];
	cg_safe_name(name, safe, sizeof(safe));
	snprintf(pn->cg_parent, sizeof(pn->cg_parent), "/%s/p-%s", e->cg_root_name, safe);
	pn->cg_fd = -1;
	pn->owner = e;
	pn->w_egress = (struct watch){WATCH_EGRESS, pn};
	pn->w_proxy = (struct watch){WATCH_PROXY, pn};
	pn->w_dns = (struct watch){WATCH_DNS, pn};
	pn->next = e->nets;
	e->nets = pn;
	return pn;
}

static bool has_hosts(const Corral__NetworkRules *n)
{
	return n && n->n_hosts > 0;
}

/* Starts (once) or updates the proxy and filtered resolver of a profile. */
static int net_setup_proxy(struct cd_enforce *e, struct profile_net *pn,
                           const Corral__NetworkRules *rules, char *err, size_t errlen)
{
	int r;
	if (has_hosts(rules)) {
		if (!pn->proxy) {
			struct egress_proxy_config cfg = {
			        .listen = "127.0.0.1:0",
			        .resolver = e->proxy_resolver,
			        .allowed_private = (const char *const *)e->proxy_private};
			r = egress_proxy_new(&cfg, rules, on_proxy_event, pn, &pn->proxy);
			if (r < 0) {
				snprintf(err, errlen, "egress proxy: %s", strerror(-r));
				return r;
			}
			socklen_t len = sizeof(pn->extra.proxy);
			if ((r = egress_proxy_address(pn->proxy, &pn->extra.proxy, &len)) < 0 ||
			    (r = egress_proxy_env((struct sockaddr *)&pn->extra.proxy, len,
			                          &pn->proxy_env)) < 0 ||
			    (r = watch_add(e, egress_proxy_fd(pn->proxy), &pn->w_proxy)) < 0) {
				snprintf(err, errlen, "egress proxy: %s", strerror(-r));
				return r;
			}
		} else if ((r = egress_proxy_set_rules(pn->proxy, rules)) < 0) {
			snprintf(err, errlen, "egress proxy rules: %s", strerror(-r));
			return r;
		}
	} else if (pn->proxy) {
		/* the new version has no hostname rules: close every tunnel of the old one */
		static const Corral__NetworkRules none = CORRAL__NETWORK_RULES__INIT;
		(void)egress_proxy_set_rules(pn->proxy, &none);
	}
	if (rules && rules->dns == CORRAL__DNS_MODE__DNS_FILTERED) {
		if (!pn->dns) {
			/*
			 * IPv4 loopback on purpose: the BPF layer redirects every session's IPv4
			 * port-53 traffic here (egress_extra.dns), and asks the same upstream as
			 * the proxy so both see the same answers.
			 */
			struct egress_dns_config cfg = {.listen = "127.0.0.1:0",
			                                .resolver = e->proxy_resolver};
			r = egress_dns_new(&cfg, rules, on_proxy_event, pn, &pn->dns);
			socklen_t len = sizeof(pn->extra.dns);
			if (r < 0 || (r = egress_dns_address(pn->dns, &pn->extra.dns, &len)) < 0 ||
			    (r = watch_add(e, egress_dns_fd(pn->dns), &pn->w_dns)) < 0) {
				snprintf(err, errlen, "filtered resolver: %s", strerror(-r));
				return r;
			}
		} else if ((r = egress_dns_set_rules(pn->dns, rules)) < 0) {
			snprintf(err, errlen, "filtered resolver rules: %s", strerror(-r));
			return r;
		}
	}
	return 0;
}

/* BPF layer: profile cgroup, programs attached once, rules swapped atomically per version. */
static int net_setup_bpf(struct cd_enforce *e, struct profile_net *pn, const Corral__Profile *p,
                         char *err, size_t errlen)
{
	static const Corral__NetworkRules deny_all = CORRAL__NETWORK_RULES__INIT;
	const Corral__NetworkRules *rules = p->network ? p->network : &deny_all;
	int r;
	if (!pn->egress) {
		char dir[SBX_PATH_MAX];
		if ((size_t)snprintf(dir, sizeof(dir), "%s%s", e->features.cgroup_v2_root,
		                     pn->cg_parent) >= sizeof(dir))
			return -ENAMETOOLONG;
		if ((r = mkdir_parents(dir)) < 0) {
			snprintf(err, errlen, "profile cgroup %s: %s", dir, strerror(-r));
			return r;
		}
		pn->cg_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pn->cg_fd < 0) {
			r = -errno;
			snprintf(err, errlen, "profile cgroup %s: %s", dir, strerror(-r));
			return r;
		}
		if (e->egress_spare)
			pn->egress = TAKE_PTR(e->egress_spare);
		else if ((r = egress_open(&pn->egress)) < 0) {
			snprintf(err, errlen, "BPF egress: %s", strerror(-r));
			return r;
		}
	}
	pn->extra.audit = p->mode == CORRAL__MODE__MODE_AUDIT;
	/* rules before attach: attached programs with empty maps deny everything */
	r = egress_set_rules(pn->egress, rules, &pn->extra);
	if (r < 0) {
		snprintf(err, errlen, "BPF egress rules: %s", strerror(-r));
		return r;
	}
	if (pn->cg_fd >= 0) {
		r = egress_attach(pn->egress, pn->cg_fd);
		if (r < 0) {
			snprintf(err, errlen, "BPF egress attach: %s", strerror(-r));
			return r;
		}
		close(pn->cg_fd);
		pn->cg_fd = -1;
		if ((r = watch_add(e, egress_events_fd(pn->egress), &pn->w_egress)) < 0)
			return r;
	}
	return 0;
}

/* Landlock fallback: TCP connect ports from the allow rules (and the proxy's port). */
static int tcp_ports(const Corral__Profile *p, const struct profile_net *pn, uint16_t **ret,
                     size_t *ret_n, char *err, size_t errlen)
{
	_cleanup_free_ uint16_t *v = calloc(TCP_PORTS_MAX, sizeof(uint16_t));
	size_t n = 0;
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; p->network && i < p->network->n_allow; i++) {
		const Corral__NetworkRule *nr = p->network->allow[i];
		if (nr->protocol == CORRAL__PROTOCOL__PROTOCOL_UDP)
			continue;
		uint32_t lo = nr->port_min, hi = nr->port_max ? nr->port_max : nr->port_min;
		if (lo == 0 || hi > 65535 || hi < lo || hi - lo + 1 > TCP_PORTS_MAX - n) {
			snprintf(err, errlen,
			         "rule %s: port range cannot be expressed as Landlock TCP ports "
			         "(at most %u ports)",
			         nr->cidr, TCP_PORTS_MAX);
			return -ENOTSUP;
		}
		for (uint32_t port = lo; port <= hi; port++)
			v[n++] = (uint16_t)port;
	}
	if (pn->extra.proxy.ss_family == AF_INET && n < TCP_PORTS_MAX)
		v[n++] = ntohs(((const struct sockaddr_in *)&pn->extra.proxy)->sin_port);
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* Whether BPF egress can be used, probed once (it loads the programs to find out, and keeps
 * them for the first profile that needs them). */
static bool egress_usable(struct cd_enforce *e)
{
	if (e->egress_ok < 0) {
		/* the probe's programs serve the first profile: loaded once, not twice */
		e->egress_ok =
		        egress_probe(&e->egress_spare, e->egress_why, sizeof(e->egress_why)) == 1;
		if (e->egress_ok && !e->features.cgroup_v2) {
			egress_free(TAKE_PTR(e->egress_spare));
			e->egress_ok = 0;
			snprintf(e->egress_why, sizeof(e->egress_why), "no cgroup v2 hierarchy");
		}
	}
	return e->egress_ok == 1;
}

/* Decides and sets up the network layer of `pr`. */
static int net_setup(struct cd_enforce *e, struct cd_enforce_profile *pr, const Corral__Profile *p,
                     char *err, size_t errlen)
{
	bool restricted = !p->network || !p->network->default_allow;
	bool needs_bpf = p->requires && p->requires->bpf_network;
	int r;

	pr->net = net_find_or_new(e, p->name);
	if (!pr->net)
		return -ENOMEM;
	if ((r = net_setup_proxy(e, pr->net, p->network, err, errlen)) < 0)
		return r;
	if (egress_usable(e)) {
		if ((r = net_setup_bpf(e, pr->net, p, err, errlen)) < 0)
			return r;
		pr->net_layer = "net:bpf";
		return 0;
	}
	if (needs_bpf) {
		snprintf(err, errlen, "the profile requires BPF egress filtering: %s",
		         e->egress_why);
		return -ENOTSUP;
	}
	if (!restricted) {
		pr->net_layer = "net:open";
		return 0;
	}
	if (!(p->degrade && p->degrade->network_to_landlock_ports)) {
		snprintf(
		        err, errlen,
		        "the profile restricts the network and BPF egress filtering is unavailable "
		        "(%s); the policy does not allow degrading to Landlock port rules",
		        e->egress_why);
		return -ENOTSUP;
	}
	if (e->features.landlock_abi < 4) {
		snprintf(err, errlen,
		         "BPF egress filtering is unavailable (%s) and Landlock ABI %d has no TCP "
		         "rules",
		         e->egress_why, e->features.landlock_abi);
		return -ENOTSUP;
	}
	if ((r = tcp_ports(p, pr->net, &pr->tcp_ports, &pr->n_tcp_ports, err, errlen)) < 0)
		return r;
	pr->net_layer = "net:landlock-ports";
	return 0;
}

static void profile_free(struct cd_enforce_profile *pr)
{
	if (!pr)
		return;
	sbx_compiled_free(pr->compiled);
	free(pr->tcp_ports);
	free(pr->name);
	free(pr);
}

/* Frees cached profiles of older versions that no session uses. */
static void gc_profiles(struct cd_enforce *e)
{
	for (struct cd_enforce_profile **pp = &e->profiles; *pp;) {
		struct cd_enforce_profile *pr = *pp;
		if (pr->version != e->current_version && pr->refs == 0) {
			*pp = pr->next;
			profile_free(pr);
		} else {
			pp = &pr->next;
		}
	}
}

/* ---- public API ------------------------------------------------------------------------- */

int cd_enforce_new(bool test_hooks, cd_enforce_emit_fn emit, void *userdata,
                   struct cd_enforce **ret)
{
	struct cd_enforce *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->test_hooks = test_hooks;
	e->emit = emit;
	e->userdata = userdata;
	snprintf(e->cg_root_name, sizeof(e->cg_root_name), "corral");
	int r = sbx_features_probe(&e->features);
	if (r < 0) {
		free(e);
		return r;
	}
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0) {
		r = -errno;
		free(e);
		return r;
	}
	e->egress_ok = -1; /* decided on first use: loading the BPF object takes ~0.2 s */
	if (test_hooks) {
		const char *v = getenv(CD_ENFORCE_ENV_NO_EGRESS);
		if (v && strcmp(v, "1") == 0) {
			e->egress_ok = 0;
			snprintf(e->egress_why, sizeof(e->egress_why), "disabled by %s (test hook)",
			         CD_ENFORCE_ENV_NO_EGRESS);
		}
		const char *cg = getenv(CD_ENFORCE_ENV_CG_PARENT);
		if (cg && *cg)
			cg_safe_name(cg, e->cg_root_name, sizeof(e->cg_root_name));
	}
	*ret = e;
	return 0;
}

static void proxy_settings_clear(struct cd_enforce *e)
{
	free(e->proxy_resolver);
	e->proxy_resolver = NULL;
	for (size_t i = 0; e->proxy_private[i]; i++) {
		free(e->proxy_private[i]);
		e->proxy_private[i] = NULL;
	}
}

int cd_enforce_set_proxy(struct cd_enforce *e, const char *resolver, const char *allow_private)
{
	proxy_settings_clear(e);
	if (resolver && !(e->proxy_resolver = strdup(resolver)))
		return -ENOMEM;
	size_t n = 0;
	for (const char *p = allow_private; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (n == CD_ENFORCE_PRIVATE_MAX) {
			proxy_settings_clear(e);
			return -E2BIG;
		}
		if (len > 0 && !(e->proxy_private[n++] = strndup(p, len))) {
			proxy_settings_clear(e);
			return -ENOMEM;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

void cd_enforce_free(struct cd_enforce *e)
{
	if (!e)
		return;
	proxy_settings_clear(e);
	egress_free(e->egress_spare);
	while (e->profiles) {
		struct cd_enforce_profile *pr = e->profiles;
		e->profiles = pr->next;
		profile_free(pr);
	}
	while (e->nets) {
		struct profile_net *pn = e->nets;
		e->nets = pn->next;
		net_free(e, pn);
	}
	char root[CG_NAME_MAX + 2];
	snprintf(root, sizeof(root), "/%s", e->cg_root_name);
	cg_rmdir(e, root);
	if (e->epfd >= 0)
		close(e->epfd);
	free(e);
}

const struct sbx_features *cd_enforce_features(const struct cd_enforce *e)
{
	return &e->features;
}

int cd_enforce_fd(const struct cd_enforce *e)
{
	return e->epfd;
}

void cd_enforce_process(struct cd_enforce *e)
{
	struct epoll_event evs[8];
	int n = epoll_wait(e->epfd, evs, 8, 0);
	for (int i = 0; i < n; i++) {
		struct watch *w = evs[i].data.ptr;
		switch (w->kind) {
		case WATCH_EGRESS:
			(void)egress_events_poll(w->net->egress, on_egress_event, w->net);
			break;
		case WATCH_PROXY:
			(void)egress_proxy_dispatch(w->net->proxy, 0);
			break;
		case WATCH_DNS:
			(void)egress_dns_dispatch(w->net->dns, 0);
			break;
		}
	}
}

int cd_enforce_profile_get(struct cd_enforce *e, uint64_t version, const Corral__Profile *p,
                           struct cd_enforce_profile **ret, const char **ret_step, char *err,
                           size_t errlen)
{
	if (!p || !p->name) {
		*ret_step = "profile";
		snprintf(err, errlen, "malformed profile");
		return -EINVAL;
	}
	if (version != e->current_version) {
		e->current_version = version;
		gc_profiles(e);
	}
	for (struct cd_enforce_profile *pr = e->profiles; pr; pr = pr->next)
		if (pr->version == version && strcmp(pr->name, p->name) == 0) {
			pr->refs++;
			*ret = pr;
			return 0;
		}
	struct cd_enforce_profile *pr = calloc(1, sizeof(*pr));
	if (!pr || !(pr->name = strdup(p->name))) {
		free(pr);
		return -ENOMEM;
	}
	pr->version = version;
	int r = sbx_compile_profile(p, &e->features, &pr->compiled, err, errlen);
	if (r < 0) {
		*ret_step = "profile";
		profile_free(pr);
		return r;
	}
	r = net_setup(e, pr, p, err, errlen);
	if (r < 0) {
		*ret_step = "network";
		profile_free(pr);
		return r;
	}
	pr->next = e->profiles;
	e->profiles = pr;
	pr->refs = 1;
	*ret = pr;
	return 0;
}

void cd_enforce_prepare(struct cd_enforce *e, const Corral__PolicyBundle *bundle)
{
	if (!bundle || !bundle->policy)
		return;
	for (size_t i = 0; i < bundle->policy->n_profiles; i++) {
		struct cd_enforce_profile *pr = NULL;
		const char *step = NULL;
		char err[256];
		if (cd_enforce_profile_get(e, bundle->version, bundle->policy->profiles[i], &pr,
		                           &step, err, sizeof(err)) == 0)
			cd_enforce_profile_put(e, pr);
	}
}

void cd_enforce_profile_put(struct cd_enforce *e, struct cd_enforce_profile *pr)
{
	if (!pr)
		return;
	if (pr->refs > 0)
		pr->refs--;
	gc_profiles(e);
}

const struct sbx_compiled *cd_enforce_profile_compiled(const struct cd_enforce_profile *pr)
{
	return pr->compiled;
}

const char *cd_enforce_profile_cgroup(const struct cd_enforce_profile *pr)
{
	return pr->net->cg_parent;
}

const char *cd_enforce_profile_net_layer(const struct cd_enforce_profile *pr)
{
	return pr->net_layer;
}

const uint16_t *cd_enforce_profile_tcp_ports(const struct cd_enforce_profile *pr, size_t *ret_n)
{
	*ret_n = pr->n_tcp_ports;
	return pr->tcp_ports;
}

const char *const *cd_enforce_profile_proxy_env(const struct cd_enforce_profile *pr)
{
	return (const char *const *)pr->net->proxy_env;
}

void cd_enforce_session_add(struct cd_enforce *e, struct cd_enforce_session *s)
{
	s->next = e->sessions;
	e->sessions = s;
}

void cd_enforce_session_remove(struct cd_enforce *e, struct cd_enforce_session *s)
{
	/* denials still queued in the ring buffer belong to this session: report them first */
	if (s->profile && s->profile->net && s->profile->net->egress)
		(void)egress_events_poll(s->profile->net->egress, on_egress_event, s->profile->net);
	for (struct cd_enforce_session **pp = &e->sessions; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	s->next = NULL;
}
