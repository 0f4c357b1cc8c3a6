// SPDX-License-Identifier: Apache-2.0
/* libFuzzer target: the egress proxy's request handling end to end (http-parser callbacks,
 * CONNECT authority and absolute-form URI splitting, Host header checks, later requests on a
 * kept-alive connection, the ClientHello hold-back). One proxy on loopback for the whole run;
 * each input is sent by a fresh client, then the proxy is dispatched until it closes the
 * client. "allowed.test" resolves (static table) to 127.0.0.1:1, where nothing listens. */
#include "proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct egress_proxy *proxy;
static uint16_t port;

static void setup(void)
{
	static Corral__HostRule h1 = CORRAL__HOST_RULE__INIT, h2 = CORRAL__HOST_RULE__INIT;
	static Corral__HostRule *hosts[2] = {&h1, &h2};
	static Corral__NetworkRules rules = CORRAL__NETWORK_RULES__INIT;
	static const char *const allowed_private[] = {"127.0.0.0/8", NULL};
	struct egress_proxy_config cfg = {
	        .listen = "127.0.0.1:0", .allowed_private = allowed_private, .resolver_threads = 1};
	struct sockaddr_storage ss;
	socklen_t len;

	h1.host = (char *)"allowed.test";
	h1.port = 1;
	h2.host = (char *)"*.wild.test";
	rules.hosts = hosts;
	rules.n_hosts = 2;
	if (egress_proxy_new(&cfg, &rules, NULL, NULL, &proxy) < 0)
		abort();
	egress_proxy_add_host(proxy, "allowed.test", "127.0.0.1");
	egress_proxy_add_host(proxy, "a.wild.test", "127.0.0.1");
	egress_proxy_address(proxy, &ss, &len);
	port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!proxy)
		setup();
	if (size > 32768)
		return 0;
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return 0;
	(void)!connect(fd, (struct sockaddr *)&a, sizeof(a));
	for (int i = 0; i < 4 && egress_proxy_clients(proxy) == 0; i++)
		egress_proxy_dispatch(proxy, 5);
	size_t off = 0;
	for (int round = 0; round < 50; round++) {
		if (off < size) {
			ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
			if (n > 0)
				off += (size_t)n;
			if (off == size)
				shutdown(fd, SHUT_WR);
		}
		egress_proxy_dispatch(proxy, 2);
		char sink[4096];
		while (recv(fd, sink, sizeof(sink), 0) > 0)
			;
		if (egress_proxy_clients(proxy) == 0)
			break;
	}
	close(fd);
	/* let the proxy see the close so connections do not pile up across inputs */
	for (int i = 0; i < 20 && egress_proxy_clients(proxy) > 0; i++)
		egress_proxy_dispatch(proxy, 2);
	return 0;
}
