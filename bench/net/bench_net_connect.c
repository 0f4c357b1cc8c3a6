// SPDX-License-Identifier: Apache-2.0
/*
 * connect() latency with and without the cgroup BPF egress filter. Runs in a private network
 * namespace (loopback only): a listener on 127.0.0.1, N blocking connects timed around the
 * connect() call alone, first from outside any filtered cgroup, then from inside one whose
 * profile has 100 CIDR rules plus the allowing exact loopback rule. Prints median and p99 of
 * both and the difference. Needs root. Usage: bench_net_connect [N]
 */
#include "egress.h"

#include <bpf/bpf.h>

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"

#define CG_ROOT "/sys/fs/cgroup/unified"

static int listen_fd;

static void *acceptor(void *arg)
{
	for (;;) {
		int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0)
			close(c);
	}
	return NULL;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return x < y ? -1 : x > y;
}

static long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Times n connects; fills samples (ns). Returns 0 or -errno. */
static int measure(const struct sockaddr_in *to, long *samples, int n)
{
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		long t0 = now_ns();
		int r = connect(fd, (const struct sockaddr *)to, sizeof(*to));
		long t1 = now_ns();
		close(fd);
		if (r < 0)
			return -errno;
		samples[i] = t1 - t0;
	}
	return 0;
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, text, strlen(text));
	close(fd);
	return w == (ssize_t)strlen(text) ? 0 : -EIO;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20000;
	char why[256], cg[128];
	struct sockaddr_in addr = {.sin_family = AF_INET,
	                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	struct egress *eg = NULL;
	int r = 0;

	log_setup("bench_net_connect", LOG_LEVEL_INFO);
	if (n < 100 || n > 10000000) {
		log_err("N must be 100..10000000");
		return 2;
	}
	if (egress_available(why, sizeof(why)) != 1) {
		log_err("BPF egress unavailable: %s", why);
		return 77;
	}
	/* a private namespace: loopback only, up */
	if (unshare(CLONE_NEWNET) < 0) {
		log_err("unshare(CLONE_NEWNET): %m");
		return 1;
	}
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
	if (s < 0 || ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
		log_err("bringing lo up: %m");
		return 1;
	}
	close(s);
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(listen_fd, 4096) < 0 ||
	    getsockname(listen_fd, (struct sockaddr *)&addr, &len) < 0) {
		log_err("listener: %m");
		return 1;
	}
	pthread_t t;
	pthread_create(&t, NULL, acceptor, NULL);

	long *outside = calloc((size_t)n, sizeof(long)), *inside = calloc((size_t)n, sizeof(long));
	if (!outside || !inside)
		return 1;

	/* a profile cgroup with 100 rules + the loopback port */
	snprintf(cg, sizeof(cg), CG_ROOT "/corral-bench-%d", getpid());
	if (mkdir(cg, 0755) < 0) {
		log_err("mkdir %s: %m", cg);
		return 1;
	}
	Corral__NetworkRules rules = CORRAL__NETWORK_RULES__INIT;
	Corral__NetworkRule items[101], *ptrs[101];
	char cidrs[101][32];
	for (int i = 0; i < 101; i++) {
		corral__network_rule__init(&items[i]);
		if (i < 100)
			snprintf(cidrs[i], sizeof(cidrs[i]), "198.51.%d.0/24", i);
		else
			snprintf(cidrs[i], sizeof(cidrs[i]), "127.0.0.1/32");
		items[i].cidr = cidrs[i];
		items[i].port_min = i < 100 ? 443 : ntohs(addr.sin_port);
		items[i].port_max = items[i].port_min;
		ptrs[i] = &items[i];
	}
	rules.allow = ptrs;
	rules.n_allow = 101;
	int cgfd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char self[32], procs[160];
	snprintf(self, sizeof(self), "%d", getpid());
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	if (cgfd < 0 || (r = egress_open(&eg)) < 0 ||
	    (r = egress_set_rules(eg, &rules, NULL)) < 0 || (r = egress_attach(eg, cgfd)) < 0) {
		log_err("filtered cgroup setup: %s", strerror(r < 0 ? -r : errno));
		rmdir(cg);
		return 1;
	}
	/* the kernel's own accounting of program run time, for as long as this fd is open */
	int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	/*
	 * Alternate blocks outside and inside the filtered cgroup (moving this process between
	 * them), so that the load of a shared machine drifts into both sides equally.
	 */
	const int block = 500;
	r = 0;
	for (int done = 0; done < n && r == 0; done += block) {
		int k = n - done < block ? n - done : block;
		if ((r = write_text(CG_ROOT "/cgroup.procs", self)) < 0 ||
		    (r = measure(&addr, outside + done, k)) < 0)
			break;
		if ((r = write_text(procs, self)) < 0 || (r = measure(&addr, inside + done, k)) < 0)
			break;
	}
	/* back out of the cgroup before removing it */
	write_text(CG_ROOT "/cgroup.procs", self);
	static const struct {
		enum bpf_attach_type type;
		const char *name;
	} hooks[] = {{BPF_CGROUP_INET4_CONNECT, "connect4"},
	             {BPF_CGROUP_INET_EGRESS, "skb egress"}};
	for (size_t h = 0; stats_fd >= 0 && h < ELEMENTSOF(hooks); h++) {
		__u32 ids[4], count = 4;
		if (bpf_prog_query(cgfd, hooks[h].type, 0, NULL, ids, &count) < 0 || count == 0)
			continue;
		int pfd = bpf_prog_get_fd_by_id(ids[0]);
		struct bpf_prog_info info = {0};
		__u32 ilen = sizeof(info);
		if (pfd >= 0 && bpf_obj_get_info_by_fd(pfd, &info, &ilen) == 0 && info.run_cnt)
			printf("  BPF %s program: %.0f ns per run (kernel stats, %llu runs)\n",
			       hooks[h].name, (double)info.run_time_ns / (double)info.run_cnt,
			       (unsigned long long)info.run_cnt);
		if (pfd >= 0)
			close(pfd);
	}
	if (stats_fd >= 0)
		close(stats_fd);
	egress_free(eg);
	close(cgfd);
	rmdir(cg);
	if (r < 0) {
		log_err("connect: %s", strerror(-r));
		return 1;
	}
	qsort(outside, (size_t)n, sizeof(long), cmp_long);
	qsort(inside, (size_t)n, sizeof(long), cmp_long);
	printf("connect() over loopback, %d samples each (ns)\n", n);
	printf("  outside filter: median %ld  p99 %ld\n", outside[n / 2], outside[n * 99 / 100]);
	printf("  inside filter:  median %ld  p99 %ld  (101 rules)\n", inside[n / 2],
	       inside[n * 99 / 100]);
	printf("  added by the BPF filter: median %.2f us, p99 %.2f us\n",
	       (double)(inside[n / 2] - outside[n / 2]) / 1000.0,
	       (double)(inside[n * 99 / 100] - outside[n * 99 / 100]) / 1000.0);
	free(outside);
	free(inside);
	return 0;
}
