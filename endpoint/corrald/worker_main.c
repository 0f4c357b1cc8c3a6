// SPDX-License-Identifier: Apache-2.0
/*
 * corrald-worker: the network worker (see worker.h), a separate executable so that it starts
 * from a fresh address space (nothing of the root parent's memory, new ASLR layout) and the
 * parent does not even map libcurl and its TLS stack. corrald starts it as root with its end
 * of the socketpair as fd 3. Setup order, and why:
 *   1. close every inherited descriptor but the socketpair (nothing of the parent's leaks);
 *   2. curl_global_init while files are still readable (OpenSSL reads its configuration);
 *   3. drop groups, gid, uid (root can no longer be regained);
 *   4. no_new_privs (required for an unprivileged seccomp filter and Landlock);
 *   5. Landlock: read-only access to what name resolution needs, TCP connect to the server
 *      port only, no signals or abstract sockets outside the worker;
 *   6. seccomp allow-list last, right before the loop, so setup needs no syscalls beyond it.
 * The loop is a curl multi handle plus the socketpair: one poll, one report and one
 * enroll/renew transfer may run at the same time.
 */
#include "worker.h"

#include "cleanup.h"
#include "confine.h"
#include "ipc.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <termios.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <corral.pb-c.h>
#include <curl/curl.h>
#include <seccomp.h>

/* Responses larger than this are refused while they stream in. */
#define RESPONSE_MAX ((size_t)5 * 1024 * 1024)
#define HEADER_MAX   256u

enum xfer_kind { XFER_POLL, XFER_REPORT, XFER_ENROLL, XFER_RENEW, XFER_KINDS };

static const char *const xfer_names[XFER_KINDS] = {"poll", "report", "enroll", "renew"};

struct xfer {
	CURL *easy;
	struct curl_slist *headers;
	uint8_t *body; /* request body (owned) */
	uint8_t *resp;
	size_t resp_len, resp_cap;
	bool too_large;
	char reason[HEADER_MAX];
	unsigned retry_after;
};

struct worker {
	int sock;
	CURLM *multi;
	char *server_url;
	uint8_t *ca, *cert, *key;
	size_t ca_len, cert_len, key_len;
	int64_t poll_wait;
	struct xfer xfers[XFER_KINDS];
};

static void secure_free(uint8_t *p, size_t len)
{
	if (p) {
		explicit_bzero(p, len);
		free(p);
	}
}

static _Noreturn void die(const char *why)
{
	log_err("worker: %s", why);
	_exit(2);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct xfer *x = userdata;
	size_t n = size * nmemb;
	if (x->resp_len + n > RESPONSE_MAX) {
		x->too_large = true;
		return 0; /* aborts the transfer */
	}
	if (x->resp_len + n > x->resp_cap) {
		size_t cap = x->resp_cap ? x->resp_cap * 2 : 4096;
		while (cap < x->resp_len + n)
			cap *= 2;
		if (cap > RESPONSE_MAX)
			cap = RESPONSE_MAX;
		uint8_t *p = realloc(x->resp, cap);
		if (!p)
			return 0;
		x->resp = p;
		x->resp_cap = cap;
	}
	memcpy(x->resp + x->resp_len, ptr, n);
	x->resp_len += n;
	return n;
}

static void copy_header_value(const char *line, size_t n, const char *name, char *out,
                              size_t outlen)
{
	size_t nl = strlen(name);
	if (n <= nl || strncasecmp(line, name, nl) != 0)
		return;
	const char *v = line + nl;
	size_t vl = n - nl;
	while (vl && (*v == ' ' || *v == '\t'))
		v++, vl--;
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	if (vl >= outlen)
		vl = outlen - 1;
	memcpy(out, v, vl);
	out[vl] = '\0';
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct xfer *x = userdata;
	size_t n = size * nmemb;
	char ra[16] = "";
	copy_header_value(ptr, n, "X-Corral-Reason:", x->reason, sizeof(x->reason));
	copy_header_value(ptr, n, "Retry-After:", ra, sizeof(ra));
	if (*ra) {
		unsigned long v = strtoul(ra, NULL, 10);
		x->retry_after = v > 3600 ? 3600 : (unsigned)v;
	}
	return n;
}

static void xfer_reset(struct worker *w, enum xfer_kind k)
{
	struct xfer *x = &w->xfers[k];
	if (x->easy) {
		curl_multi_remove_handle(w->multi, x->easy);
		curl_easy_cleanup(x->easy);
	}
	curl_slist_free_all(x->headers);
	free(x->body);
	free(x->resp);
	memset(x, 0, sizeof(*x));
}

static void send_msg(struct worker *w, Corral__WorkerMsg *m)
{
	int r = cd_ipc_send(w->sock, &m->base, CD_WORKER_FRAME_MAX, NULL, 0);
	if (r < 0)
		die("cannot write to the parent");
}

static void send_error(struct worker *w, enum xfer_kind k, const char *kind, const char *detail,
                       unsigned status, unsigned retry_after)
{
	Corral__WorkerError e = CORRAL__WORKER_ERROR__INIT;
	e.kind = (char *)kind;
	e.detail = (char *)(detail ? detail : "");
	e.http_status = status;
	e.retry_after = retry_after;
	e.request = (char *)xfer_names[k];
	Corral__WorkerMsg m = CORRAL__WORKER_MSG__INIT;
	m.body_case = CORRAL__WORKER_MSG__BODY_ERROR;
	m.error = &e;
	send_msg(w, &m);
}

/* Starts a transfer of kind k: POST with `body` (taken) or GET when body is NULL. */
static void start(struct worker *w, enum xfer_kind k, const char *path, uint8_t *body, size_t len,
                  long timeout_s)
{
	xfer_reset(w, k);
	struct xfer *x = &w->xfers[k];
	char url[2048];
	if (!w->server_url ||
	    (size_t)snprintf(url, sizeof(url), "%s%s", w->server_url, path) >= sizeof(url)) {
		free(body);
		send_error(w, k, "transport", "no server URL", 0, 0);
		return;
	}
	x->easy = curl_easy_init();
	if (!x->easy) {
		free(body);
		send_error(w, k, "transport", "out of memory", 0, 0);
		return;
	}
	x->body = body;
	CURL *e = x->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, timeout_s);
	/* Only the fleet CA: no system bundle, no CA directory. */
	curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
	curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	struct curl_blob ca = {.data = w->ca, .len = w->ca_len, .flags = CURL_BLOB_NOCOPY};
	curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (k != XFER_ENROLL && w->cert && w->key) {
		struct curl_blob cert = {
		        .data = w->cert, .len = w->cert_len, .flags = CURL_BLOB_NOCOPY};
		struct curl_blob key = {
		        .data = w->key, .len = w->key_len, .flags = CURL_BLOB_NOCOPY};
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	if (body) {
		x->headers = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
		xfer_reset(w, k);
		send_error(w, k, "transport", "cannot start transfer", 0, 0);
	}
}

static uint8_t *pack_msg(const ProtobufCMessage *m, size_t *ret_len)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		die("out of memory");
	protobuf_c_message_pack(m, buf);
	*ret_len = len;
	return buf;
}

static void replace_blob(uint8_t **dst, size_t *dst_len, const ProtobufCBinaryData *src)
{
	secure_free(*dst, *dst_len);
	*dst = NULL;
	*dst_len = 0;
	if (src->len == 0)
		return;
	*dst = malloc(src->len + 1);
	if (!*dst)
		die("out of memory");
	memcpy(*dst, src->data, src->len);
	(*dst)[src->len] = '\0';
	*dst_len = src->len;
}

static void handle_parent(struct worker *w)
{
	uint8_t *buf = NULL;
	ssize_t n = cd_ipc_recv(w->sock, CD_WORKER_FRAME_MAX, &buf, NULL, 0, NULL);
	if (n == -EAGAIN || n == -EINTR)
		return;
	if (n == 0 || n == -ECONNRESET)
		_exit(0); /* the parent went away */
	if (n < 0)
		die("malformed frame from the parent");
	Corral__WorkerMsg *m = corral__worker_msg__unpack(NULL, (size_t)n, buf);
	free(buf);
	if (!m)
		die("undecodable message from the parent");
	size_t len = 0;
	uint8_t *body;
	char path[128];
	switch (m->body_case) {
	case CORRAL__WORKER_MSG__BODY_INIT:
		free(w->server_url);
		w->server_url = strdup(m->init->server_url ? m->init->server_url : "");
		replace_blob(&w->ca, &w->ca_len, &m->init->ca_pem);
		replace_blob(&w->cert, &w->cert_len, &m->init->cert_pem);
		replace_blob(&w->key, &w->key_len, &m->init->key_pem);
		if (m->init->key_pem.len)
			explicit_bzero(m->init->key_pem.data, m->init->key_pem.len);
		break;
	case CORRAL__WORKER_MSG__BODY_POLL:
		snprintf(path, sizeof(path), "/v1/policy?have=%llu&root=%llu&wait=%u",
		         (unsigned long long)m->poll->have_version,
		         (unsigned long long)m->poll->root_version, m->poll->wait_seconds);
		start(w, XFER_POLL, path, NULL, 0, (long)m->poll->wait_seconds + 30);
		break;
	case CORRAL__WORKER_MSG__BODY_REPORT:
		body = pack_msg(&m->report->base, &len);
		start(w, XFER_REPORT, "/v1/report", body, len, 60);
		break;
	case CORRAL__WORKER_MSG__BODY_ENROLL:
		body = pack_msg(&m->enroll->base, &len);
		explicit_bzero(m->enroll->token, strlen(m->enroll->token));
		start(w, XFER_ENROLL, "/v1/enroll", body, len, 60);
		break;
	case CORRAL__WORKER_MSG__BODY_RENEW:
		body = pack_msg(&m->renew->base, &len);
		start(w, XFER_RENEW, "/v1/renew", body, len, 60);
		break;
	default:
		die("unexpected message from the parent");
	}
	corral__worker_msg__free_unpacked(m, NULL);
}

/* A finished transfer: parse the server's bytes here, hand typed messages to the parent. */
static void finish(struct worker *w, enum xfer_kind k, CURLcode res)
{
	struct xfer *x = &w->xfers[k];
	long status = 0;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (res != CURLE_OK) {
		send_error(w, k, x->too_large ? "too-large" : "transport",
		           x->too_large ? "response over the cap" : curl_easy_strerror(res), 0, 0);
		return;
	}
	Corral__WorkerMsg out = CORRAL__WORKER_MSG__INIT;
	if (k == XFER_POLL && status == 304) {
		Corral__PolicyUpdate empty = CORRAL__POLICY_UPDATE__INIT;
		out.body_case = CORRAL__WORKER_MSG__BODY_UPDATE;
		out.update = &empty;
		send_msg(w, &out);
		return;
	}
	if (status != 200) {
		char kind[32];
		snprintf(kind, sizeof(kind), "http-%ld", status);
		send_error(w, k, kind, x->reason, (unsigned)status, x->retry_after);
		return;
	}
	const uint8_t *p = x->resp ? x->resp : (const uint8_t *)"";
	ProtobufCMessage *msg = NULL;
	switch (k) {
	case XFER_POLL:
		msg = (ProtobufCMessage *)corral__policy_update__unpack(NULL, x->resp_len, p);
		out.body_case = CORRAL__WORKER_MSG__BODY_UPDATE;
		out.update = (Corral__PolicyUpdate *)msg;
		break;
	case XFER_REPORT:
		msg = (ProtobufCMessage *)corral__report_ack__unpack(NULL, x->resp_len, p);
		out.body_case = CORRAL__WORKER_MSG__BODY_ACK;
		out.ack = (Corral__ReportAck *)msg;
		break;
	case XFER_ENROLL:
		msg = (ProtobufCMessage *)corral__enroll_response__unpack(NULL, x->resp_len, p);
		out.body_case = CORRAL__WORKER_MSG__BODY_ENROLLED;
		out.enrolled = (Corral__EnrollResponse *)msg;
		break;
	case XFER_RENEW:
		msg = (ProtobufCMessage *)corral__renew_response__unpack(NULL, x->resp_len, p);
		out.body_case = CORRAL__WORKER_MSG__BODY_RENEWED;
		out.renewed = (Corral__RenewResponse *)msg;
		break;
	default:
		break;
	}
	if (!msg) {
		send_error(w, k, "malformed", "server answer does not decode", (unsigned)status, 0);
		return;
	}
	if (protobuf_c_message_get_packed_size(&out.base) > CD_WORKER_FRAME_MAX)
		send_error(w, k, "too-large", "server answer over the frame cap", 200, 0);
	else
		send_msg(w, &out);
	protobuf_c_message_free_unpacked(msg, NULL);
}

/* Read-only: resolver configuration and the libraries NSS may load. Nothing writable. */
static int landlock_confine(uint16_t port)
{
	static const struct cd_confine_path ro[] = {
	        {"/etc/hosts", false},         {"/etc/resolv.conf", false},
	        {"/etc/nsswitch.conf", false}, {"/etc/host.conf", false},
	        {"/etc/gai.conf", false},      {"/etc/ssl/openssl.cnf", false},
	        {"/usr/lib", false},           {"/lib", false},
	};
	return cd_confine_landlock(ro, sizeof(ro) / sizeof(ro[0]), port);
}

static int seccomp_confine(void)
{
#ifdef CORRAL_SANITIZED
	/* Sanitizer runtimes need syscalls outside any allow-list (see STYLE.md). */
	return 0;
#else
	static const char *const allowed[] = {
	        "read",
	        "write",
	        "readv",
	        "writev",
	        "pread64",
	        "close",
	        "fstat",
	        "newfstatat",
	        "statx",
	        "lseek",
	        "mmap",
	        "munmap",
	        "mprotect",
	        "brk",
	        "mremap",
	        "madvise",
	        "rt_sigaction",
	        "rt_sigprocmask",
	        "rt_sigreturn",
	        "sigaltstack",
	        "poll",
	        "ppoll",
	        "epoll_create1",
	        "epoll_ctl",
	        "epoll_wait",
	        "epoll_pwait",
	        "eventfd2",
	        "pipe2",
	        "socket",
	        "connect",
	        "getsockopt",
	        "setsockopt",
	        "getsockname",
	        "getpeername",
	        "sendto",
	        "recvfrom",
	        "sendmsg",
	        "recvmsg",
	        "sendmmsg",
	        "shutdown",
	        "bind",
	        "fcntl",
	        "openat",
	        "getrandom",
	        "clock_gettime",
	        "clock_nanosleep",
	        "nanosleep",
	        "futex",
	        "set_robust_list",
	        "rseq",
	        "gettid",
	        "getpid",
	        "exit",
	        "exit_group",
	        "sched_yield",
	        "sched_getaffinity",
	        "prlimit64",
	        "uname",
	        "getuid",
	        "geteuid",
	        "getgid",
	        "getegid",
	        "access",
	        "faccessat",
	        "faccessat2",
	        "getdents64",
	        "tgkill",
	        "restart_syscall",
	        "sysinfo",
	        "fstatfs",
	        "mincore",
	        "membarrier",
	        "clock_getres",
	        "gettimeofday",
	        "time",
	        "getcwd",
	        "readlink",
	        "socketpair",
	};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return -ENOMEM;
	int r = 0;
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]) && r == 0; i++) {
		int nr = seccomp_syscall_resolve_name(allowed[i]);
		if (nr != __NR_SCMP_ERROR)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	}
	/* Threads for the resolver only: clone must carry CLONE_THREAD; clone3 hides its flags
	 * in memory, so it fails with ENOSYS and glibc falls back to clone. */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
		                     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* ioctl only to ask how much is readable or whether an fd is a terminal: stderr may be
	 * the admin's terminal, and TIOCSTI/TIOCLINUX there would type into it. Exact 64-bit
	 * compares, so high bits cannot smuggle another request past the filter. */
	static const unsigned long ioctls[] = {FIONREAD, FIONBIO, TCGETS};
	for (size_t i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]) && r == 0; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		                     SCMP_A1(SCMP_CMP_EQ, ioctls[i]));
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
#endif
}

static _Noreturn void worker_main(int sock, const struct cd_worker_opts *o)
{
	/* 1. nothing inherited but the socketpair (fd 3) and stdio for logging. */
	if (syscall(SYS_close_range, sock + 1, ~0U, 0) < 0)
		die("close_range");
	struct sigaction sa = {.sa_handler = SIG_DFL};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_IGN);
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		die("parent already gone");
	log_setup("corrald-worker", (enum log_level)o->log_level);
	/* 2. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		die("curl_global_init");
	/* 3. */
	if (getuid() == 0 || geteuid() == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(o->gid, o->gid, o->gid) < 0 ||
		    setresuid(o->uid, o->uid, o->uid) < 0)
			die("cannot drop privileges");
		if (o->uid == 0 || setuid(0) == 0)
			die("still root after dropping privileges");
	}
	/* 4. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("no_new_privs");
	/* 5. */
	/* the time zone is loaded now: Landlock below does not grant /usr/share/zoneinfo, and a
	 * later first localtime() (curl, OpenSSL) would be denied and logged on every try */
	tzset();
	int r = landlock_confine(o->server_port);
	if (r < 0 && r != -EOPNOTSUPP)
		die("landlock");
	struct worker w = {.sock = sock, .poll_wait = o->poll_wait};
	w.multi = curl_multi_init();
	if (!w.multi)
		die("curl_multi_init");
	/* 6. */
	if (seccomp_confine() < 0)
		die("seccomp");
	int flags = fcntl(sock, F_GETFL);
	fcntl(sock, F_SETFL, flags | O_NONBLOCK);
	for (;;) {
		/* No timer of our own: curl shortens the wait to its transfers' timeouts, and
		 * the parent's messages wake us. An idle worker sleeps in the long-poll. */
		struct curl_waitfd extra = {.fd = sock, .events = CURL_WAIT_POLLIN};
		int numfds = 0;
		if (curl_multi_poll(w.multi, &extra, 1, 3600 * 1000, &numfds) != CURLM_OK)
			die("curl_multi_poll");
		if (extra.revents & (CURL_WAIT_POLLIN))
			handle_parent(&w);
		int running = 0;
		curl_multi_perform(w.multi, &running);
		CURLMsg *msg;
		int left = 0;
		while ((msg = curl_multi_info_read(w.multi, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct xfer *x = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			enum xfer_kind k = (enum xfer_kind)(x - w.xfers);
			CURLcode res = msg->data.result;
			finish(&w, k, res);
			xfer_reset(&w, k);
		}
	}
}

static int parse_num(const char *s, uint64_t max, uint64_t *ret)
{
	return util_parse_u64(s, ret) == 0 && *ret <= max ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
	log_setup("corrald-worker", LOG_LEVEL_INFO);
	struct cd_worker_opts o = {.uid = getuid(), .gid = getgid(), .log_level = LOG_LEVEL_INFO};
	for (int i = 1; i + 1 < argc; i += 2) {
		uint64_t v = 0;
		int r = -EINVAL;
		if (strcmp(argv[i], "--uid") == 0 &&
		    (r = parse_num(argv[i + 1], UINT32_MAX, &v)) == 0)
			o.uid = (uid_t)v;
		else if (strcmp(argv[i], "--gid") == 0 &&
		         (r = parse_num(argv[i + 1], UINT32_MAX, &v)) == 0)
			o.gid = (gid_t)v;
		else if (strcmp(argv[i], "--port") == 0 &&
		         (r = parse_num(argv[i + 1], 65535, &v)) == 0)
			o.server_port = (uint16_t)v;
		else if (strcmp(argv[i], "--log-level") == 0 &&
		         (r = parse_num(argv[i + 1], LOG_LEVEL_DEBUG, &v)) == 0)
			o.log_level = (int)v;
		if (r < 0) {
			fprintf(stderr,
			        "corrald-worker: started by corrald only (bad argument %s)\n",
			        argv[i]);
			return 2;
		}
	}
	/* fd 3 must be our SOCK_SEQPACKET socketpair end; anything else is a misuse. */
	int type = 0;
	socklen_t tl = sizeof(type);
	if (getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET) {
		fprintf(stderr, "corrald-worker: started by corrald only (no socket on fd 3)\n");
		return 2;
	}
	worker_main(3, &o);
}
