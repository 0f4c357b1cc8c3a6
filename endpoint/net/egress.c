// SPDX-License-Identifier: Apache-2.0
/*
 * Loader of the cgroup BPF egress filter (egress.bpf.c): open → load → attach to profile
 * cgroups → set rules (two generations, one flip, RCU wait, then delete the old generation) →
 * consume the ring buffer into rate-limited struct egress_event callbacks → destroy.
 * Built without CORRAL_WITH_BPF, egress_available() says so and egress_open() fails, so a
 * profile that restricts the network refuses to run (fail closed).
 */
#include "egress_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "util.h"

#ifdef CORRAL_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "egress.skel.h"
#endif

#define EGRESS_MAX_LINKS      21
#define EGRESS_RATE_SLOTS     64
#define EGRESS_RATE_WINDOW_MS 1000

struct rate_slot {
	uint64_t cgroup_id;
	uint32_t pid;
	int family;
	uint8_t addr[16];
	uint16_t port;
	uint8_t protocol;
	uint64_t last_ms;
	uint32_t suppressed;
};

struct egress {
#ifdef CORRAL_HAVE_BPF
	struct egress_bpf *skel;
	struct bpf_link *links[EGRESS_MAX_LINKS];
#endif
	size_t n_links;
	uint32_t gen;
	struct rate_slot rate[EGRESS_RATE_SLOTS];
	unsigned rate_next;
	int (*cb)(const struct egress_event *ev, void *userdata);
	void *cb_userdata;
	int cb_error;
	int consumed;
};

#ifndef CORRAL_HAVE_BPF

int egress_available(char *why, size_t why_len)
{
	if (why && why_len)
		snprintf(why, why_len,
		         "corral was built without the BPF egress layer "
		         "(CORRAL_WITH_BPF=OFF)");
	return 0;
}

int egress_open(struct egress **ret)
{
	return -EOPNOTSUPP;
}

int egress_probe(struct egress **ret, char *why, size_t why_len)
{
	return egress_available(why, why_len);
}

int egress_attach(struct egress *e, int cgroup_dir_fd)
{
	return -EOPNOTSUPP;
}

int egress_set_rules(struct egress *e, const Corral__NetworkRules *rules,
                     const struct egress_extra *extra)
{
	return -EOPNOTSUPP;
}

int egress_events_fd(const struct egress *e)
{
	return -EOPNOTSUPP;
}

int egress_events_poll(struct egress *e, int (*cb)(const struct egress_event *ev, void *userdata),
                       void *userdata)
{
	return -EOPNOTSUPP;
}

int egress_events_lost(const struct egress *e, uint64_t *ret_lost)
{
	return -EOPNOTSUPP;
}

void egress_free(struct egress *e)
{
	free(e);
}

#else

static int libbpf_silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* library code does not log; errors come back as -errno */
	return 0;
}

int egress_probe(struct egress **ret, char *why, size_t why_len)
{
	struct statfs sfs;
	struct egress *e = NULL;
	char dummy[1];

	if (!why || !why_len) {
		why = dummy;
		why_len = sizeof(dummy);
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) < 0) {
		snprintf(why, why_len, "kernel has no BTF (/sys/kernel/btf/vmlinux): %s",
		         strerror(errno));
		return 0;
	}
	bool v2 = (statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == 0x63677270) ||
	          (statfs("/sys/fs/cgroup/unified", &sfs) == 0 && sfs.f_type == 0x63677270);
	if (!v2) {
		snprintf(why, why_len, "no cgroup v2 hierarchy mounted (needed for cgroup BPF)");
		return 0;
	}
	int r = egress_open(&e);
	if (r < 0) {
		snprintf(why, why_len, "cannot load the cgroup BPF programs: %s", strerror(-r));
		return 0;
	}
	snprintf(why, why_len, "cgroup BPF egress filter loads");
	*ret = e;
	return 1;
}

int egress_available(char *why, size_t why_len)
{
	struct egress *e = NULL;
	int r = egress_probe(&e, why, why_len);
	egress_free(e);
	return r;
}

static int on_event(void *ctx, void *data, size_t size);

int egress_open(struct egress **ret)
{
	_cleanup_free_ struct egress *e = NULL;
	uint32_t zero = 0;
	int r;

	libbpf_set_print(libbpf_silent);
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->skel = egress_bpf__open();
	if (!e->skel)
		return errno ? -errno : -EINVAL;
	r = egress_bpf__load(e->skel);
	if (r < 0)
		goto fail;
	/* generation 0 with an all-zero config: deny everything until rules are set */
	r = bpf_map_update_elem(bpf_map__fd(e->skel->maps.generation), &zero, &zero, BPF_ANY);
	if (r < 0) {
		r = -errno;
		goto fail;
	}
	*ret = TAKE_PTR(e);
	return 0;
fail:
	egress_bpf__destroy(e->skel);
	return r < 0 ? r : -EINVAL;
}

int egress_attach(struct egress *e, int cgroup_dir_fd)
{
	struct bpf_program *progs[] = {
	        e->skel->progs.egress_connect4,     e->skel->progs.egress_connect6,
	        e->skel->progs.egress_sendmsg4,     e->skel->progs.egress_sendmsg6,
	        e->skel->progs.egress_skb,          e->skel->progs.egress_recvmsg4,
	        e->skel->progs.egress_getpeername4,
	};
	size_t start = e->n_links;

	if (cgroup_dir_fd < 0)
		return -EBADF;
	if (e->n_links + ELEMENTSOF(progs) > EGRESS_MAX_LINKS)
		return -E2BIG;
	for (size_t i = 0; i < ELEMENTSOF(progs); i++) {
		struct bpf_link *l = bpf_program__attach_cgroup(progs[i], cgroup_dir_fd);
		if (!l) {
			int r = errno ? -errno : -EINVAL;
			/* all or nothing for this cgroup */
			while (e->n_links > start)
				bpf_link__destroy(e->links[--e->n_links]);
			return r;
		}
		e->links[e->n_links++] = l;
	}
	return 0;
}

/* Deletes every LPM key of generation `gen`. */
static int clear_generation(int fd, size_t key_size, uint32_t gen)
{
	uint8_t key[sizeof(struct egress_key6)], next[sizeof(struct egress_key6)];
	_cleanup_free_ uint8_t *doomed = NULL;
	size_t n = 0, cap = 2 * EGRESS_MAX_PREFIXES;
	void *prev = NULL;

	doomed = calloc(cap, key_size);
	if (!doomed)
		return -ENOMEM;
	/* Collect first, delete after: deleting during get_next_key iteration restarts it. */
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		uint32_t g;
		memcpy(&g, next + 4, 4);
		if (g == gen && n < cap)
			memcpy(doomed + n++ * key_size, next, key_size);
		memcpy(key, next, key_size);
		prev = key;
	}
	for (size_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, doomed + i * key_size) < 0 && errno != ENOENT)
			return -errno;
	return 0;
}

static int write_generation(struct egress *e, const struct egress_compiled *c, uint32_t gen)
{
	int fd4 = bpf_map__fd(e->skel->maps.prefixes4), fd6 = bpf_map__fd(e->skel->maps.prefixes6);
	int fdr = bpf_map__fd(e->skel->maps.ranges), fdc = bpf_map__fd(e->skel->maps.configs);
	uint32_t base = gen * EGRESS_MAX_RANGES;
	int r;

	/* leftovers of an earlier failed update of this generation */
	r = clear_generation(fd4, sizeof(struct egress_key4), gen);
	if (r < 0)
		return r;
	r = clear_generation(fd6, sizeof(struct egress_key6), gen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < c->n_ranges; i++) {
		uint32_t idx = base + (uint32_t)i;
		if (bpf_map_update_elem(fdr, &idx, &c->ranges[i], BPF_ANY) < 0)
			return -errno;
	}
	for (size_t i = 0; i < c->n_prefixes; i++) {
		const struct egress_cprefix *p = &c->prefixes[i];
		struct egress_prefix v = p->value;
		v.first += base;
		if (p->family == AF_INET) {
			struct egress_key4 k = {.prefixlen = 32 + p->prefix, .gen = gen};
			memcpy(k.addr, p->addr, 4);
			r = bpf_map_update_elem(fd4, &k, &v, BPF_ANY);
		} else {
			struct egress_key6 k = {.prefixlen = 32 + p->prefix, .gen = gen};
			memcpy(k.addr, p->addr, 16);
			r = bpf_map_update_elem(fd6, &k, &v, BPF_ANY);
		}
		if (r < 0)
			return -errno;
	}
	if (bpf_map_update_elem(fdc, &gen, &c->config, BPF_ANY) < 0)
		return -errno;
	return 0;
}

int egress_set_rules(struct egress *e, const Corral__NetworkRules *rules,
                     const struct egress_extra *extra)
{
	struct egress_compiled *c = NULL;
	uint32_t zero = 0, next = e->gen ^ 1;
	int r;

	r = egress_rules_compile(rules, extra, &c);
	if (r < 0)
		return r;
	r = write_generation(e, c, next);
	egress_compiled_free(c);
	if (r < 0)
		return r;
	/* The flip: one u32 in an array map, so every later program run sees all of `next`. */
	if (bpf_map_update_elem(bpf_map__fd(e->skel->maps.generation), &zero, &next, BPF_ANY) < 0)
		return -errno;
	e->gen = next;
	/*
	 * Runs that read the old generation before the flip may still be in flight. Any update
	 * of a map-in-map makes the kernel wait for an RCU grace period, after which none is:
	 * only then is the old generation deleted, and only then does this call return (so a
	 * removed destination is refused from the moment the caller regains control).
	 */
	int inner = bpf_map__fd(e->skel->maps.barrier_slot);
	if (bpf_map_update_elem(bpf_map__fd(e->skel->maps.barrier), &zero, &inner, BPF_ANY) < 0)
		return -errno;
	r = clear_generation(bpf_map__fd(e->skel->maps.prefixes4), sizeof(struct egress_key4),
	                     next ^ 1);
	if (r < 0)
		return r;
	return clear_generation(bpf_map__fd(e->skel->maps.prefixes6), sizeof(struct egress_key6),
	                        next ^ 1);
}

/*
 * The ring buffer map's own fd: the kernel reports it readable (level-triggered) while records
 * wait, so it needs no mapping to be watched. The mapping itself (the consumer page plus the
 * data area mapped twice, ≈ 2 × 256 KiB of resident pages) only exists inside
 * egress_events_poll(), so an idle daemon does not carry it.
 */
int egress_events_fd(const struct egress *e)
{
	return bpf_map__fd(e->skel->maps.events);
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct egress *e = ctx;
	const struct egress_raw_event *raw = data;
	struct egress_event ev = {0};
	/* the kernel's time of the attempt, not of this read: a burst read late is still a burst */
	uint64_t now;
	struct rate_slot *slot = NULL;

	e->consumed++;
	if (size < sizeof(*raw) || e->cb_error)
		return 0;
	now = raw->time_ns / 1000000 + 1; /* 0 marks an unused slot */
	ev.cgroup_id = raw->cgroup_id;
	ev.pid = raw->pid;
	memcpy(ev.comm, raw->comm, sizeof(ev.comm));
	ev.comm[sizeof(ev.comm) - 1] = '\0';
	ev.family = raw->family == 10 ? AF_INET6 : AF_INET;
	memcpy(ev.addr, raw->addr, 16);
	ev.port = raw->port;
	ev.protocol = raw->protocol;
	ev.hook = raw->hook;
	ev.audit_only = raw->audit != 0;

	for (size_t i = 0; i < EGRESS_RATE_SLOTS; i++) {
		struct rate_slot *s = &e->rate[i];
		if (s->last_ms && s->cgroup_id == ev.cgroup_id && s->pid == ev.pid &&
		    s->family == ev.family && s->port == ev.port && s->protocol == ev.protocol &&
		    memcmp(s->addr, ev.addr, 16) == 0) {
			slot = s;
			break;
		}
	}
	if (slot && now - slot->last_ms < EGRESS_RATE_WINDOW_MS) {
		slot->suppressed++;
		return 0;
	}
	if (!slot) {
		slot = &e->rate[e->rate_next++ % EGRESS_RATE_SLOTS];
		memset(slot, 0, sizeof(*slot));
		slot->cgroup_id = ev.cgroup_id;
		slot->pid = ev.pid;
		slot->family = ev.family;
		memcpy(slot->addr, ev.addr, 16);
		slot->port = ev.port;
		slot->protocol = ev.protocol;
	}
	ev.suppressed = slot->suppressed;
	slot->suppressed = 0;
	slot->last_ms = now;
	egress_format_addr(ev.family, ev.addr, ev.port, ev.target, sizeof(ev.target));
	int r = e->cb(&ev, e->cb_userdata);
	if (r < 0)
		e->cb_error = r;
	return 0;
}

int egress_events_poll(struct egress *e, int (*cb)(const struct egress_event *ev, void *userdata),
                       void *userdata)
{
	if (!cb)
		return -EINVAL;
	e->cb = cb;
	e->cb_userdata = userdata;
	e->cb_error = 0;
	e->consumed = 0;
	/* mapped for this drain only (see egress_events_fd): events are rare and each drain
	 * empties the ring, so the cost is a few syscalls per burst, not per event */
	struct ring_buffer *rb =
	        ring_buffer__new(bpf_map__fd(e->skel->maps.events), on_event, e, NULL);
	if (!rb)
		return errno ? -errno : -ENOMEM;
	int r = ring_buffer__consume(rb);
	ring_buffer__free(rb);
	if (e->cb_error)
		return e->cb_error;
	if (r < 0)
		return r;
	return e->consumed;
}

int egress_events_lost(const struct egress *e, uint64_t *ret_lost)
{
	uint32_t zero = 0;
	uint64_t n;
	if (bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.lost), &zero, &n) < 0)
		return -errno;
	*ret_lost = n;
	return 0;
}

void egress_free(struct egress *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n_links; i++)
		bpf_link__destroy(e->links[i]);
	egress_bpf__destroy(e->skel);
	free(e);
}

#endif
