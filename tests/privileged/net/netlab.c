// SPDX-License-Identifier: Apache-2.0
/*
 * Network-namespace and cgroup lab for the privileged egress tests (see netlab.h). Runs `ip`
 * through fork+exec (no shell). Nothing here routes outside the two namespaces it creates.
 */
#include "netlab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CG_ROOT "/sys/fs/cgroup/unified"

static int run_ip(const char *first, ...)
{
	const char *argv[32];
	size_t n = 0;
	va_list ap;

	argv[n++] = "ip";
	argv[n++] = first;
	va_start(ap, first);
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < 31)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execvp("ip", (char *const *)argv);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int r = n == (ssize_t)strlen(text) ? 0 : -errno;
	close(fd);
	return r;
}

int netlab_setup(struct netlab *lab, char *why, size_t why_len)
{
	char path[300], veth_c[16], veth_s[16];
	struct stat st;
	int r;

	memset(lab, 0, sizeof(*lab));
	lab->cli_ns_fd = lab->srv_ns_fd = lab->profile_cg_fd = -1;
	if (geteuid() != 0) {
		snprintf(why, why_len, "needs root");
		return -EPERM;
	}
	if (stat(CG_ROOT "/cgroup.procs", &st) < 0) {
		snprintf(why, why_len, "no cgroup v2 at " CG_ROOT);
		return -ENOENT;
	}
	snprintf(lab->cli_ns, sizeof(lab->cli_ns), "corral-test-cli-%d", getpid());
	snprintf(lab->srv_ns, sizeof(lab->srv_ns), "corral-test-srv-%d", getpid());
	snprintf(veth_c, sizeof(veth_c), "ctc%d", getpid() % 100000);
	snprintf(veth_s, sizeof(veth_s), "cts%d", getpid() % 100000);
	if ((r = run_ip("netns", "add", lab->cli_ns, NULL)) < 0 ||
	    (r = run_ip("netns", "add", lab->srv_ns, NULL)) < 0) {
		snprintf(why, why_len, "ip netns add failed (iproute2 missing?)");
		netlab_teardown(lab);
		return r;
	}
	r = run_ip("-n", lab->cli_ns, "link", "add", veth_c, "type", "veth", "peer", "name", veth_s,
	           "netns", lab->srv_ns, NULL);
	if (r == 0)
		r = run_ip("-n", lab->cli_ns, "addr", "add", "192.0.2.1/24", "dev", veth_c, NULL);
	if (r == 0)
		r = run_ip("-n", lab->cli_ns, "-6", "addr", "add", "2001:db8::1/64", "dev", veth_c,
		           "nodad", NULL);
	if (r == 0)
		r = run_ip("-n", lab->srv_ns, "addr", "add", "192.0.2.2/24", "dev", veth_s, NULL);
	if (r == 0)
		r = run_ip("-n", lab->srv_ns, "addr", "add", "192.0.2.53/24", "dev", veth_s, NULL);
	if (r == 0)
		r = run_ip("-n", lab->srv_ns, "-6", "addr", "add", "2001:db8::2/64", "dev", veth_s,
		           "nodad", NULL);
	if (r == 0)
		r = run_ip("-n", lab->cli_ns, "link", "set", veth_c, "up", NULL);
	if (r == 0)
		r = run_ip("-n", lab->srv_ns, "link", "set", veth_s, "up", NULL);
	if (r == 0)
		r = run_ip("-n", lab->cli_ns, "link", "set", "lo", "up", NULL);
	if (r == 0)
		r = run_ip("-n", lab->srv_ns, "link", "set", "lo", "up", NULL);
	if (r < 0) {
		snprintf(why, why_len, "veth setup failed");
		netlab_teardown(lab);
		return r;
	}
	snprintf(path, sizeof(path), "/run/netns/%s", lab->cli_ns);
	lab->cli_ns_fd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/run/netns/%s", lab->srv_ns);
	lab->srv_ns_fd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(lab->profile_cg, sizeof(lab->profile_cg), CG_ROOT "/corral-test-net-%d", getpid());
	snprintf(lab->session_cg, sizeof(lab->session_cg), "%s/session", lab->profile_cg);
	if (lab->cli_ns_fd < 0 || lab->srv_ns_fd < 0 || mkdir(lab->profile_cg, 0755) < 0 ||
	    mkdir(lab->session_cg, 0755) < 0) {
		r = -errno;
		snprintf(why, why_len, "cannot create namespaces fds or cgroups: %s", strerror(-r));
		netlab_teardown(lab);
		return r;
	}
	lab->profile_cg_fd = open(lab->profile_cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lab->profile_cg_fd < 0 || stat(lab->session_cg, &st) < 0) {
		r = -errno;
		netlab_teardown(lab);
		return r;
	}
	lab->session_cg_id = st.st_ino;
	/* Let the veth come up (IPv6 with nodad is immediate; IPv4 needs the link). */
	usleep(200 * 1000);
	return 0;
}

int netlab_enter(struct netlab *lab, bool srv)
{
	return setns(srv ? lab->srv_ns_fd : lab->cli_ns_fd, CLONE_NEWNET) < 0 ? -errno : 0;
}

int netlab_start_server(struct netlab *lab, const uint16_t *ports, size_t n)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		lab->server_pid = pid;
		usleep(100 * 1000);
		return 0;
	}
	struct pollfd pfd[16];
	if (n > 16 || netlab_enter(lab, true) < 0)
		_exit(1);
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(ports[i])};
		int one = 1, zero = 0;
		int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 512) < 0)
			_exit(2);
		pfd[i].fd = fd;
		pfd[i].events = POLLIN;
	}
	for (;;) {
		if (poll(pfd, n, -1) < 0)
			continue;
		for (size_t i = 0; i < n; i++)
			if (pfd[i].revents & POLLIN) {
				int c = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
				if (c >= 0)
					close(c);
			}
	}
}

pid_t netlab_spawn_session(struct netlab *lab, int (*fn)(void *arg), void *arg)
{
	char path[300];
	pid_t pid = fork();
	if (pid != 0)
		return pid < 0 ? -errno : pid;
	/* Into the session cgroup first, then the namespace: every socket the child makes is
	 * both filtered and confined to the lab. */
	snprintf(path, sizeof(path), "%s/cgroup.procs", lab->session_cg);
	if (write_text(path, "0") < 0)
		_exit(201);
	if (netlab_enter(lab, false) < 0)
		_exit(202);
	_exit(fn(arg) & 0xff);
}

int netlab_run_session(struct netlab *lab, int (*fn)(void *arg), void *arg)
{
	int st;
	pid_t pid = netlab_spawn_session(lab, fn, arg);
	if (pid < 0)
		return pid;
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

void netlab_teardown(struct netlab *lab)
{
	if (lab->server_pid > 0) {
		kill(lab->server_pid, SIGKILL);
		waitpid(lab->server_pid, NULL, 0);
		lab->server_pid = 0;
	}
	if (lab->cli_ns_fd >= 0)
		close(lab->cli_ns_fd);
	if (lab->srv_ns_fd >= 0)
		close(lab->srv_ns_fd);
	if (lab->profile_cg_fd >= 0)
		close(lab->profile_cg_fd);
	lab->cli_ns_fd = lab->srv_ns_fd = lab->profile_cg_fd = -1;
	/* Deleting a namespace removes the veth pair with it. */
	if (lab->cli_ns[0])
		run_ip("netns", "del", lab->cli_ns, NULL);
	if (lab->srv_ns[0])
		run_ip("netns", "del", lab->srv_ns, NULL);
	if (lab->session_cg[0]) {
		for (int i = 0; i < 50 && rmdir(lab->session_cg) < 0 && errno == EBUSY; i++)
			usleep(20 * 1000);
		rmdir(lab->profile_cg);
	}
}

static int fill_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *ss,
                         socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*len = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

int netlab_connect(const char *addr, uint16_t port, int type)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (fill_sockaddr(addr, port, &ss, &len) < 0)
		return EINVAL;
	int fd = socket(ss.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return errno;
	int r = connect(fd, (struct sockaddr *)&ss, len) < 0 ? errno : 0;
	if (r == EINPROGRESS) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int err = 0;
		socklen_t el = sizeof(err);
		if (poll(&p, 1, 2000) <= 0)
			r = ETIMEDOUT;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			r = errno;
		else
			r = err;
	}
	close(fd);
	return r;
}

int netlab_sendto(int family, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (fill_sockaddr(addr, port, &ss, &len) < 0)
		return EINVAL;
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	int r = sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, len) < 0 ? errno : 0;
	close(fd);
	return r;
}
