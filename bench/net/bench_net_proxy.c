// SPDX-License-Identifier: Apache-2.0
/*
 * Egress proxy throughput and added latency on loopback: an echo origin, the proxy (its own
 * thread, static host table), and C concurrent CONNECT tunnels (default 100), each a client
 * thread that sends a real-shaped TLS first record (the proxy checks its SNI) and then
 * ping-pongs 16 KiB blocks for S seconds. Then one client measures the round-trip time of
 * 64-byte messages directly to the origin and through a tunnel.
 * Usage: bench_net_proxy [CLIENTS] [SECONDS]
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"

#define BLOCK 16384

static uint16_t origin_port, proxy_port;
static struct egress_proxy *proxy;
static atomic_int stop_proxy, stop_clients;
static atomic_long bytes_total;
static int seconds = 3;

/* A minimal ClientHello record naming "allowed.test" (built field by field). */
static size_t hello(uint8_t *b)
{
	static const char name[] = "allowed.test";
	size_t nl = strlen(name);
	size_t ext_len = 2 + 2 + 2 + 1 + 2 + nl; /* one server_name extension */
	size_t body = 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2 + ext_len;
	size_t i = 0;
	b[i++] = 0x16, b[i++] = 3, b[i++] = 1;
	b[i++] = (uint8_t)((body + 4) >> 8), b[i++] = (uint8_t)(body + 4);
	b[i++] = 1, b[i++] = 0, b[i++] = (uint8_t)(body >> 8), b[i++] = (uint8_t)body;
	b[i++] = 3, b[i++] = 3;
	memset(b + i, 0x42, 32), i += 32;
	b[i++] = 0;                                           /* session id */
	b[i++] = 0, b[i++] = 2, b[i++] = 0x13, b[i++] = 0x01; /* one suite */
	b[i++] = 1, b[i++] = 0;                               /* null compression */
	b[i++] = (uint8_t)(ext_len >> 8), b[i++] = (uint8_t)ext_len;
	b[i++] = 0, b[i++] = 0; /* server_name */
	b[i++] = (uint8_t)((ext_len - 4) >> 8), b[i++] = (uint8_t)(ext_len - 4);
	b[i++] = (uint8_t)((nl + 3) >> 8), b[i++] = (uint8_t)(nl + 3);
	b[i++] = 0, b[i++] = (uint8_t)(nl >> 8), b[i++] = (uint8_t)nl;
	memcpy(b + i, name, nl), i += nl;
	return i;
}

static long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[BLOCK];
	ssize_t n;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
			break;
	close(fd);
	return NULL;
}

static void *origin_main(void *arg)
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

static void *proxy_main(void *arg)
{
	while (!atomic_load(&stop_proxy))
		egress_proxy_dispatch(proxy, 50);
	return NULL;
}

static int dial(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = recv(fd, (char *)buf + got, n - got, 0);
		if (k <= 0)
			return false;
		got += (size_t)k;
	}
	return true;
}

/* Opens a tunnel through the proxy (CONNECT, 200, hello echoed). -1 on failure. */
static int tunnel(void)
{
	char req[128], resp[64];
	uint8_t h[128], back[128];
	int fd = dial(proxy_port);
	if (fd < 0)
		return -1;
	int n = snprintf(req, sizeof(req), "CONNECT allowed.test:%u HTTP/1.1\r\n\r\n", origin_port);
	const char expect[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	size_t hl = hello(h);
	if (send(fd, req, (size_t)n, 0) != n || !read_full(fd, resp, strlen(expect)) ||
	    memcmp(resp, expect, strlen(expect)) != 0 || send(fd, h, hl, 0) != (ssize_t)hl ||
	    !read_full(fd, back, hl)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *client(void *arg)
{
	static char block[BLOCK];
	char back[BLOCK];
	int fd = tunnel();
	if (fd < 0) {
		log_err("tunnel failed");
		return NULL;
	}
	while (!atomic_load(&stop_clients)) {
		if (send(fd, block, BLOCK, 0) != BLOCK || !read_full(fd, back, BLOCK))
			break;
		atomic_fetch_add(&bytes_total, 2 * BLOCK);
	}
	close(fd);
	return NULL;
}

static double rtt_us(int fd, int rounds)
{
	char msg[64] = {0}, back[64];
	long t0 = now_ns();
	for (int i = 0; i < rounds; i++)
		if (send(fd, msg, sizeof(msg), 0) != (ssize_t)sizeof(msg) ||
		    !read_full(fd, back, sizeof(back)))
			return -1;
	return (double)(now_ns() - t0) / rounds / 1000.0;
}

int main(int argc, char **argv)
{
	int clients = argc > 1 ? atoi(argv[1]) : 100;
	seconds = argc > 2 ? atoi(argv[2]) : 3;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	static const char *const allowed_private[] = {"127.0.0.0/8", NULL};

	log_setup("bench_net_proxy", LOG_LEVEL_INFO);
	if (clients < 1 || clients > 1000 || seconds < 1 || seconds > 600) {
		log_err("usage: bench_net_proxy [CLIENTS 1-1000] [SECONDS 1-600]");
		return 2;
	}
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1024) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &len) < 0) {
		log_err("origin: %m");
		return 1;
	}
	origin_port = ntohs(a.sin_port);
	pthread_t ot, pt;
	pthread_create(&ot, NULL, origin_main, (void *)(intptr_t)lfd);

	Corral__NetworkRules rules = CORRAL__NETWORK_RULES__INIT;
	Corral__HostRule h = CORRAL__HOST_RULE__INIT, *hp = &h;
	h.host = (char *)"allowed.test";
	h.port = origin_port;
	rules.hosts = &hp;
	rules.n_hosts = 1;
	struct egress_proxy_config cfg = {.listen = "127.0.0.1:0",
	                                  .allowed_private = allowed_private};
	int r = egress_proxy_new(&cfg, &rules, NULL, NULL, &proxy);
	if (r < 0 || egress_proxy_add_host(proxy, "allowed.test", "127.0.0.1") < 0) {
		log_err("proxy: %s", strerror(-r));
		return 1;
	}
	struct sockaddr_storage ss;
	egress_proxy_address(proxy, &ss, &len);
	proxy_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	pthread_create(&pt, NULL, proxy_main, NULL);

	/* latency first, on an idle proxy */
	int direct = dial(origin_port), tun = tunnel();
	if (direct < 0 || tun < 0) {
		log_err("latency setup failed");
		return 1;
	}
	rtt_us(direct, 1000);
	rtt_us(tun, 1000);
	double d = rtt_us(direct, 20000), t = rtt_us(tun, 20000);
	close(direct);
	close(tun);

	/* open all tunnels, then measure */
	pthread_t *th = calloc((size_t)clients, sizeof(*th));
	long t0 = now_ns();
	for (int i = 0; i < clients; i++)
		pthread_create(&th[i], NULL, client, NULL);
	sleep((unsigned)seconds);
	atomic_store(&stop_clients, 1);
	for (int i = 0; i < clients; i++)
		pthread_join(th[i], NULL);
	double secs = (double)(now_ns() - t0) / 1e9;
	atomic_store(&stop_proxy, 1);
	pthread_join(pt, NULL);
	printf("proxy on loopback, %d concurrent CONNECT tunnels, 16 KiB ping-pong, %.1f s\n",
	       clients, secs);
	printf("  throughput through the proxy: %.1f MiB/s (both directions)\n",
	       (double)atomic_load(&bytes_total) / secs / (1024.0 * 1024.0));
	printf("  64-byte round trip: direct %.1f us, through a tunnel %.1f us (added %.1f us)\n",
	       d, t, t - d);
	egress_proxy_free(proxy);
	free(th);
	return 0;
}
