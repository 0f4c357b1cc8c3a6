/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared fixture of the endpoint integration tests: runs the real corrald, corral,
 * corral-server binaries, signs trust roots and bundles with lib/trust, and talks to the
 * server's admin API over loopback TLS.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <corral.pb-c.h>
#include <jansson.h>

struct trust_key;

struct fx_server {
	char dir[512];
	unsigned port;
	pid_t pid;
	char admin_token[256];
};

struct fx_daemon {
	char dir[512]; /* data dir, socket, log live here */
	char sock[600];
	char log[600];
	pid_t pid;
};

/* Starts corral-server in `dir`/srv on 127.0.0.1:port (0 = pick). Returns 0 or -1. */
int fx_server_start(struct fx_server *s, const char *dir, unsigned port);
/* Same with the server's JSON configuration text. */
int fx_server_start_cfg(struct fx_server *s, const char *dir, unsigned port, const char *json);
/* SIGTERM (or SIGKILL when hard) and reap. */
void fx_server_stop(struct fx_server *s, bool hard);

/* Admin JSON call; returns the HTTP status; *ret (may be NULL) the parsed body. */
long fx_admin(struct fx_server *s, const char *method, const char *path, const char *json,
              json_t **ret);
/* Admin upload of binary (trust roots, bundles). */
long fx_admin_upload(struct fx_server *s, const char *path, const uint8_t *buf, size_t len);
/* Creates a one-use enrollment token for `group`; caller frees. */
char *fx_enroll_token(struct fx_server *s, const char *group);

/*
 * Starts corrald with `args` (NULL-terminated extra flags) plus --data-dir/--socket in d->dir,
 * stderr to d->log; waits until the socket answers. Returns 0 or -1.
 */
int fx_daemon_start(struct fx_daemon *d, const char *dir, const char *const *args);
/* Same with another corrald executable (a copy with a test worker next to it). */
int fx_daemon_start_bin(struct fx_daemon *d, const char *dir, const char *bin,
                        const char *const *args);
/* Sends `sig`, waits for exit; returns the exit status (or 128+signal), -1 on timeout. */
int fx_daemon_stop(struct fx_daemon *d, int sig);

/* Runs `corral --socket SOCK args...`; returns the exit code with stdout in *ret_out. */
int fx_cli(const struct fx_daemon *d, char **ret_out, const char *const *args);
/* `corral status --json` parsed; NULL when it fails. */
json_t *fx_status(const struct fx_daemon *d);
/* Polls status until `key` (integer or string field) equals the expected value; returns the
 * elapsed ms or -1 after timeout_ms. */
long fx_wait_status_int(const struct fx_daemon *d, const char *key, long long want,
                        unsigned timeout_ms);
long fx_wait_status_str(const struct fx_daemon *d, const char *key, const char *want,
                        unsigned timeout_ms);

long fx_wait_status_true(const struct fx_daemon *d, const char *key, unsigned timeout_ms);

/* Raw IPC request to the daemon; returns the unpacked response or NULL. */
Corral__IpcResponse *fx_ipc(const struct fx_daemon *d, Corral__IpcRequest *rq);

/* Signed material. */
int fx_make_root(uint64_t version, struct trust_key *const *roots, size_t n_roots,
                 struct trust_key *const *signers, size_t n_signers,
                 struct trust_key *const *sign_with, size_t n_sign, uint8_t **ret, size_t *ret_len);
int fx_make_bundle(uint64_t version, const char *group, int64_t expires_in,
                   struct trust_key *const *keys, size_t n_keys, uint8_t **ret, size_t *ret_len);
int fx_write(const char *dir, const char *name, const void *buf, size_t len, char *ret_path,
             size_t path_len);
