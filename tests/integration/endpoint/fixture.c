// SPDX-License-Identifier: Apache-2.0
/* Endpoint integration fixture (see fixture.h). */
#include "fixture.h"
#include "https.h"

#include "cleanup.h"
#include "harness.h"
#include "ipc.h"
#include "trust.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int fx_server_start(struct fx_server *s, const char *dir, unsigned port)
{
	return fx_server_start_cfg(s, dir, port,
	                           "{\"cert_lifetime\": \"1d\", \"report_rate\": 1000, "
	                           "\"report_burst\": 1000}");
}

int fx_server_start_cfg(struct fx_server *s, const char *dir, unsigned port, const char *json)
{
	char cfg[700], log[700], bin[700], data[700], listen[64];
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	snprintf(cfg, sizeof(cfg), "%s/server.json", dir);
	snprintf(log, sizeof(log), "%s/server.log", dir);
	snprintf(data, sizeof(data), "%s/srv", dir);
	snprintf(bin, sizeof(bin), "%s/bin/corral-server", harness_binary_dir());
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	if (util_write_file_atomic(cfg, json, strlen(json), 0644) < 0)
		return -1;
	int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (lfd < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(lfd, 2);
		execl(bin, bin, "--data-dir", data, "--listen", listen, "--config", cfg,
		      (char *)NULL);
		_exit(127);
	}
	close(lfd);
	if (pid < 0)
		return -1;
	s->pid = pid;
	for (int i = 0; i < 400; i++) {
		_cleanup_free_ char *text = NULL;
		size_t len;
		if (util_read_file(log, 1 << 20, &text, &len) == 0) {
			const char *p = strstr(text, "listening on https://127.0.0.1:");
			if (p) {
				s->port = (unsigned)strtoul(
				        p + strlen("listening on https://127.0.0.1:"), NULL, 10);
				char tp[800];
				snprintf(tp, sizeof(tp), "%s/admin.token", data);
				_cleanup_free_ char *tok = NULL;
				if (util_read_file(tp, 255, &tok, NULL) < 0)
					return -1;
				tok[strcspn(tok, "\n")] = '\0';
				snprintf(s->admin_token, sizeof(s->admin_token), "%s", tok);
				return 0;
			}
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			s->pid = -1;
			fprintf(stderr, "server exited: %s\n", text ? text : "");
			return -1;
		}
		usleep(25000);
	}
	return -1;
}

void fx_server_stop(struct fx_server *s, bool hard)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, hard ? SIGKILL : SIGTERM);
	int st;
	waitpid(s->pid, &st, 0);
	s->pid = -1;
}

/* One admin API call (under /api/v1/) with the server's admin token. -1 on transport failure. */
static long http(struct fx_server *s, const char *method, const char *path, const void *body,
                 size_t len, const char *ctype, struct th_response *out)
{
	char full[1024], ca[800];
	snprintf(full, sizeof(full), "/api/v1/%s", path);
	snprintf(ca, sizeof(ca), "%s/srv/ca.pem", s->dir);
	struct th_request rq = {.port = s->port,
	                        .ca_file = ca,
	                        .method = method,
	                        .path = full,
	                        .body = body,
	                        .len = len,
	                        .ctype = ctype,
	                        .bearer = s->admin_token};
	return th_https(&rq, out) == 0 ? out->status : -1;
}

long fx_admin(struct fx_server *s, const char *method, const char *path, const char *json,
              json_t **ret)
{
	struct th_response r;
	long st = http(s, method, path, json, json ? strlen(json) : 0,
	               json ? "application/json" : NULL, &r);
	if (ret)
		*ret = r.body ? json_loads(r.body, 0, NULL) : NULL;
	th_response_free(&r);
	return st;
}

long fx_admin_upload(struct fx_server *s, const char *path, const uint8_t *buf, size_t len)
{
	struct th_response r;
	long st = http(s, "POST", path, buf, len, "application/octet-stream", &r);
	if (st != 200 && st != 201)
		fprintf(stderr, "upload %s: %ld %s\n", path, st, r.body ? r.body : "");
	th_response_free(&r);
	return st;
}

char *fx_enroll_token(struct fx_server *s, const char *group)
{
	char body[256];
	snprintf(body, sizeof(body), "{\"group\":\"%s\",\"uses\":1,\"expires_at\":%lld}", group,
	         (long long)util_now_sec() + 3600);
	json_t *j = NULL;
	long st = fx_admin(s, "POST", "enroll-tokens", body, &j);
	char *t = st == 201 ? strdup(json_string_value(json_object_get(j, "token"))) : NULL;
	json_decref(j);
	return t;
}

int fx_daemon_start(struct fx_daemon *d, const char *dir, const char *const *args)
{
	char bin[700];
	snprintf(bin, sizeof(bin), "%s/bin/corrald", harness_binary_dir());
	return fx_daemon_start_bin(d, dir, bin, args);
}

int fx_daemon_start_bin(struct fx_daemon *d, const char *dir, const char *bin,
                        const char *const *args)
{
	char data[700];
	snprintf(d->dir, sizeof(d->dir), "%s", dir);
	snprintf(d->sock, sizeof(d->sock), "%s/corrald.sock", dir);
	snprintf(d->log, sizeof(d->log), "%s/corrald.log", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	const char *argv[64];
	size_t n = 0;
	argv[n++] = bin;
	argv[n++] = "--config";
	argv[n++] = "/dev/null";
	argv[n++] = "--config-dir";
	argv[n++] = dir; /* no *.conf files there */
	argv[n++] = "--data-dir";
	argv[n++] = data;
	argv[n++] = "--socket";
	argv[n++] = d->sock;
	for (size_t i = 0; args && args[i] && n < 62; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	int lfd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (lfd < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(lfd, 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(lfd);
	if (pid < 0)
		return -1;
	d->pid = pid;
	for (int i = 0; i < 400; i++) {
		int fd = cd_ipc_connect(d->sock);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			d->pid = -1;
			return -1;
		}
		usleep(10000);
	}
	return -1;
}

int fx_daemon_stop(struct fx_daemon *d, int sig)
{
	if (d->pid <= 0)
		return -1;
	kill(d->pid, sig);
	int st = 0;
	for (int i = 0; i < 1000; i++) {
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = -1;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(10000);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	d->pid = -1;
	return -1;
}

int fx_cli(const struct fx_daemon *d, char **ret_out, const char *const *args)
{
	char bin[700];
	snprintf(bin, sizeof(bin), "%s/bin/corral", harness_binary_dir());
	const char *argv[32];
	size_t n = 0;
	argv[n++] = bin;
	argv[n++] = "--socket";
	argv[n++] = d->sock;
	for (size_t i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	char *out = NULL;
	size_t len = 0;
	(void)util_read_fd(p[0], 1 << 20, &out, &len);
	close(p[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	if (ret_out)
		*ret_out = out;
	else
		free(out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

json_t *fx_status(const struct fx_daemon *d)
{
	const char *args[] = {"status", "--json", NULL};
	char *out = NULL;
	int rc = fx_cli(d, &out, args);
	json_t *j = rc == 0 && out ? json_loads(out, 0, NULL) : NULL;
	free(out);
	return j;
}

long fx_wait_status_int(const struct fx_daemon *d, const char *key, long long want,
                        unsigned timeout_ms)
{
	uint64_t start = util_monotonic_ms();
	for (;;) {
		json_t *j = fx_status(d);
		long long v = j ? json_integer_value(json_object_get(j, key)) : -1;
		json_decref(j);
		uint64_t el = util_monotonic_ms() - start;
		if (v == want)
			return (long)el;
		if (el > timeout_ms)
			return -1;
		usleep(10000);
	}
}

long fx_wait_status_str(const struct fx_daemon *d, const char *key, const char *want,
                        unsigned timeout_ms)
{
	uint64_t start = util_monotonic_ms();
	for (;;) {
		json_t *j = fx_status(d);
		const char *v = j ? json_string_value(json_object_get(j, key)) : NULL;
		bool eq = v && strcmp(v, want) == 0;
		json_decref(j);
		uint64_t el = util_monotonic_ms() - start;
		if (eq)
			return (long)el;
		if (el > timeout_ms)
			return -1;
		usleep(20000);
	}
}

long fx_wait_status_true(const struct fx_daemon *d, const char *key, unsigned timeout_ms)
{
	uint64_t start = util_monotonic_ms();
	for (;;) {
		json_t *j = fx_status(d);
		bool v = j && json_is_true(json_object_get(j, key));
		json_decref(j);
		uint64_t el = util_monotonic_ms() - start;
		if (v)
			return (long)el;
		if (el > timeout_ms)
			return -1;
		usleep(20000);
	}
}

Corral__IpcResponse *fx_ipc(const struct fx_daemon *d, Corral__IpcRequest *rq)
{
	int s = cd_ipc_connect(d->sock);
	if (s < 0)
		return NULL;
	Corral__IpcResponse *resp = NULL;
	if (cd_ipc_send(s, &rq->base, CD_IPC_FRAME_MAX, NULL, 0) == 0) {
		_cleanup_free_ uint8_t *buf = NULL;
		ssize_t n = cd_ipc_recv(s, CD_IPC_FRAME_MAX, &buf, NULL, 0, NULL);
		if (n > 0)
			resp = corral__ipc_response__unpack(NULL, (size_t)n, buf);
	}
	close(s);
	return resp;
}

int fx_make_root(uint64_t version, struct trust_key *const *roots, size_t n_roots,
                 struct trust_key *const *signers, size_t n_signers,
                 struct trust_key *const *sign_with, size_t n_sign, uint8_t **ret, size_t *ret_len)
{
	struct trust_root_spec spec = {
	        .version = version,
	        .issued_at = util_now_sec() - 10,
	        .expires_at = util_now_sec() + 86400 * 30,
	        .root_keys = roots,
	        .n_root_keys = n_roots,
	        .root_threshold = 1,
	        .signer_keys = signers,
	        .n_signer_keys = n_signers,
	        .signer_threshold = 1,
	};
	return trust_root_sign(&spec, sign_with, n_sign, ret, ret_len);
}

int fx_make_bundle(uint64_t version, const char *group, int64_t expires_in,
                   struct trust_key *const *keys, size_t n_keys, uint8_t **ret, size_t *ret_len)
{
	Corral__Profile prof = CORRAL__PROFILE__INIT;
	prof.name = (char *)"default";
	Corral__Profile *profs[1] = {&prof};
	Corral__Policy pol = CORRAL__POLICY__INIT;
	pol.name = (char *)"it-policy";
	pol.default_profile = (char *)"default";
	pol.n_profiles = 1;
	pol.profiles = profs;
	Corral__Target tg = CORRAL__TARGET__INIT;
	tg.kind_case = CORRAL__TARGET__KIND_GROUP;
	tg.group = (char *)group;
	Corral__Target *tgp[1] = {&tg};
	Corral__PolicyBundle b = CORRAL__POLICY_BUNDLE__INIT;
	b.version = version;
	b.issued_at = util_now_sec() - 10;
	b.expires_at = util_now_sec() + expires_in;
	b.n_targets = 1;
	b.targets = tgp;
	b.policy = &pol;
	return trust_bundle_sign(&b, keys, n_keys, ret, ret_len);
}

int fx_write(const char *dir, const char *name, const void *buf, size_t len, char *ret_path,
             size_t path_len)
{
	snprintf(ret_path, path_len, "%s/%s", dir, name);
	return util_write_file_atomic(ret_path, buf, len, 0600);
}
