// SPDX-License-Identifier: Apache-2.0
/*
 * Name resolution for the egress proxy and the filtered resolver, off the event loop: a few
 * threads (started on demand, so an idle daemon has none) take names from a queue and resolve them
 * from a static host table (tests), from a DNS server the caller names (libresolv res_nquery with
 * that server as the only one, so the host's resolv.conf servers are never asked), or with the
 * system's getaddrinfo(). Finished lookups are queued back and signalled on an eventfd the loop
 * polls.
 */
#include "egress_internal.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cleanup.h"

#define RESOLVER_MAX_THREADS 16
#define RESOLVER_MAX_HOSTS   256
#define RESOLVER_MAX_QUEUE   4096

struct job {
	struct job *next;
	char name[256];
	uint64_t cookie;
	struct egress_resolve_result res;
};

struct host_entry {
	char name[256];
	int family;
	uint8_t addr[16];
};

struct egress_resolver {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *todo_head, *todo_tail, *done_head, *done_tail;
	size_t queued; /* jobs in either queue (capped) */
	size_t n_todo; /* jobs not yet taken by a thread */
	bool stop;
	int efd;
	pthread_t threads[RESOLVER_MAX_THREADS];
	unsigned n_threads, max_threads;
	unsigned n_waiting; /* threads blocked for work (a signalled one counts until it runs) */
	struct host_entry hosts[RESOLVER_MAX_HOSTS];
	size_t n_hosts;
	bool has_server;
	struct sockaddr_in server;
};

static void add_addr(struct egress_resolve_result *res, int family, const void *addr)
{
	if (res->count >= EGRESS_RESOLVE_MAX_ADDRS)
		return;
	res->addrs[res->count].family = family;
	memset(res->addrs[res->count].addr, 0, 16);
	memcpy(res->addrs[res->count].addr, addr, family == AF_INET ? 4 : 16);
	res->count++;
}

static void query_server(struct egress_resolver *r, const char *name,
                         struct egress_resolve_result *res)
{
	struct __res_state st;
	uint8_t answer[4096];
	static const int types[] = {ns_t_a, ns_t_aaaa};
	bool nx = false;

	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) < 0) {
		res->error = -EIO;
		return;
	}
	/* The caller's server is the only one asked. */
	st.nscount = 1;
	st.nsaddr_list[0] = r->server;
	st.retrans = 1;
	st.retry = 2;
	st.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
	for (size_t t = 0; t < ELEMENTSOF(types); t++) {
		int len = res_nquery(&st, name, ns_c_in, types[t], answer, sizeof(answer));
		ns_msg msg;
		if (len < 0) {
			nx |= st.res_h_errno == HOST_NOT_FOUND;
			continue;
		}
		if (ns_initparse(answer, len, &msg) < 0)
			continue;
		for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
			ns_rr rr;
			if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
				break;
			if (ns_rr_type(rr) == ns_t_a && ns_rr_rdlen(rr) == 4)
				add_addr(res, AF_INET, ns_rr_rdata(rr));
			else if (ns_rr_type(rr) == ns_t_aaaa && ns_rr_rdlen(rr) == 16)
				add_addr(res, AF_INET6, ns_rr_rdata(rr));
		}
	}
	res_nclose(&st);
	if (res->count == 0)
		res->error = nx ? -ENOENT : -EHOSTUNREACH;
}

static void query_system(const char *name, struct egress_resolve_result *res)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	int k = getaddrinfo(name, NULL, &hints, &ai);
	if (k != 0) {
		res->error = k == EAI_NONAME ? -ENOENT : -EHOSTUNREACH;
		return;
	}
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		if (a->ai_family == AF_INET)
			add_addr(res, AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr);
		else if (a->ai_family == AF_INET6)
			add_addr(res, AF_INET6, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr);
	}
	freeaddrinfo(ai);
	if (res->count == 0)
		res->error = -ENOENT;
}

static void resolve_one(struct egress_resolver *r, struct job *j)
{
	bool in_table = false;

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n_hosts; i++)
		if (strcmp(r->hosts[i].name, j->name) == 0) {
			add_addr(&j->res, r->hosts[i].family, r->hosts[i].addr);
			in_table = true;
		}
	pthread_mutex_unlock(&r->lock);
	if (in_table)
		return;
	if (r->has_server)
		query_server(r, j->name, &j->res);
	else if (r->n_hosts)
		j->res.error = -ENOENT; /* a static table without a server answers alone */
	else
		query_system(j->name, &j->res);
}

/* Moves a finished job to the done queue and wakes the event loop. Called with the lock held. */
static void finish_locked(struct egress_resolver *r, struct job *j)
{
	j->next = NULL;
	if (r->done_tail)
		r->done_tail->next = j;
	else
		r->done_head = j;
	r->done_tail = j;
	uint64_t one = 1;
	(void)!write(r->efd, &one, sizeof(one));
}

static void *worker(void *arg)
{
	struct egress_resolver *r = arg;
	for (;;) {
		pthread_mutex_lock(&r->lock);
		while (!r->stop && !r->todo_head) {
			r->n_waiting++;
			pthread_cond_wait(&r->cond, &r->lock);
			r->n_waiting--;
		}
		if (r->stop) {
			pthread_mutex_unlock(&r->lock);
			return NULL;
		}
		struct job *j = r->todo_head;
		r->todo_head = j->next;
		if (!r->todo_head)
			r->todo_tail = NULL;
		r->n_todo--;
		pthread_mutex_unlock(&r->lock);

		resolve_one(r, j);

		pthread_mutex_lock(&r->lock);
		finish_locked(r, j);
		pthread_mutex_unlock(&r->lock);
	}
}

int egress_resolver_new(const char *server, unsigned threads, struct egress_resolver **ret)
{
	struct egress_resolver *r;
	int k;

	if (threads == 0)
		threads = 4;
	if (threads > RESOLVER_MAX_THREADS)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->efd = -1;
	if (server) {
		struct sockaddr_storage ss;
		socklen_t len;
		if (egress_parse_sockaddr(server, 53, &ss, &len) < 0 || ss.ss_family != AF_INET) {
			egress_resolver_free(r);
			return -EINVAL;
		}
		memcpy(&r->server, &ss, sizeof(r->server));
		r->has_server = true;
	}
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0) {
		k = -errno;
		egress_resolver_free(r);
		return k;
	}
	/* no thread yet: egress_resolver_submit() starts them as lookups queue up */
	r->max_threads = threads;
	*ret = r;
	return 0;
}

int egress_resolver_add_host(struct egress_resolver *r, const char *name, const char *address)
{
	char norm[256];
	struct host_entry h = {0};
	uint8_t addr[16];

	if (!name || !address ||
	    egress_host_normalise(name, strlen(name), norm, sizeof(norm), NULL) != EGRESS_HOST_NAME)
		return -EINVAL;
	if (inet_pton(AF_INET, address, addr) == 1)
		h.family = AF_INET;
	else if (inet_pton(AF_INET6, address, addr) == 1)
		h.family = AF_INET6;
	else
		return -EINVAL;
	memcpy(h.name, norm, strlen(norm) + 1);
	memcpy(h.addr, addr, 16);
	pthread_mutex_lock(&r->lock);
	int k = 0;
	if (r->n_hosts >= RESOLVER_MAX_HOSTS)
		k = -E2BIG;
	else
		r->hosts[r->n_hosts++] = h;
	pthread_mutex_unlock(&r->lock);
	return k;
}

int egress_resolver_submit(struct egress_resolver *r, const char *name, uint64_t cookie)
{
	struct job *j;
	size_t len = strlen(name);

	if (len >= sizeof(j->name))
		return -EINVAL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	memcpy(j->name, name, len + 1);
	j->cookie = cookie;
	pthread_mutex_lock(&r->lock);
	if (r->queued >= RESOLVER_MAX_QUEUE) {
		pthread_mutex_unlock(&r->lock);
		free(j);
		return -EAGAIN;
	}
	r->queued++;
	/*
	 * One more thread when the queued lookups outnumber the threads waiting for work, up to
	 * the configured count. Without any thread (creation refused), the lookup completes at
	 * once as failed rather than waiting forever.
	 */
	if (r->n_todo + 1 > r->n_waiting && r->n_threads < r->max_threads) {
		int k = pthread_create(&r->threads[r->n_threads], NULL, worker, r);
		if (k == 0) {
			r->n_threads++;
		} else if (r->n_threads == 0) {
			j->res.error = -k;
			finish_locked(r, j);
			pthread_mutex_unlock(&r->lock);
			return 0;
		}
	}
	r->n_todo++;
	if (r->todo_tail)
		r->todo_tail->next = j;
	else
		r->todo_head = j;
	r->todo_tail = j;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

int egress_resolver_fd(const struct egress_resolver *r)
{
	return r->efd;
}

int egress_resolver_take(struct egress_resolver *r, uint64_t *ret_cookie,
                         struct egress_resolve_result *ret_res)
{
	uint64_t counter;
	(void)!read(r->efd, &counter, sizeof(counter));
	pthread_mutex_lock(&r->lock);
	struct job *j = r->done_head;
	if (j) {
		r->done_head = j->next;
		if (!r->done_head)
			r->done_tail = NULL;
		r->queued--;
	}
	pthread_mutex_unlock(&r->lock);
	if (!j)
		return 0;
	*ret_cookie = j->cookie;
	*ret_res = j->res;
	free(j);
	return 1;
}

void egress_resolver_free(struct egress_resolver *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	/* A thread inside res_nquery finishes its query (bounded by retrans/retry) first. */
	for (unsigned i = 0; i < r->n_threads; i++)
		pthread_join(r->threads[i], NULL);
	for (struct job *j = r->todo_head, *next; j; j = next) {
		next = j->next;
		free(j);
	}
	for (struct job *j = r->done_head, *next; j; j = next) {
		next = j->next;
		free(j);
	}
	if (r->efd >= 0)
		close(r->efd);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}
