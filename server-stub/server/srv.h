/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corral-server's core as a library (corral_server_core): main.c parses the command line,
 * calls srv_new() and srv_run(), and everything else (TLS listener, device and admin APIs,
 * long-polls, storage) lives behind this header. Library code does not log; srv_new() reports
 * failures in `err`, and srv_run() returns -errno.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

/* Limits (documented in docs/server.md). */
#define SRV_REPORT_BODY_MAX_DEFAULT (2u * 1024u * 1024u)
#define SRV_ENROLL_BODY_MAX         (64u * 1024u)
#define SRV_ADMIN_JSON_MAX          (64u * 1024u)
#define SRV_REPORT_EVENTS_MAX       10000u
#define SRV_POLL_WAIT_MAX           300u

struct srv_config {
	char data_dir[4096];
	char listen_host[256];
	uint16_t port;
	char hostname[256];
	int64_t cert_lifetime_sec; /* device certificates (default 30 days) */
	double report_rate;        /* report batches per second per device, sustained */
	double report_burst;       /* ... and at once */
	uint64_t report_body_max;  /* bytes; larger reports get 413 */
	unsigned threads;          /* libmicrohttpd polling threads (epoll each) */
	unsigned connection_limit; /* concurrent connections */
	enum log_level log_level;
	char database[1024];             /* storage URL (srv_store_open); "" = DATA_DIR/server.db */
	int64_t event_retention_sec;     /* events older than this are pruned; 0 = kept forever */
	uint64_t event_retention_events; /* at most this many events kept (SQLite); 0 = no cap */
	/* Receives libmicrohttpd's own diagnostics (TLS handshake failures, ...); NULL drops
	 * them. Set by main, so the library itself never writes to stderr. */
	void (*http_log)(void *cls, const char *fmt, va_list ap);
};

/* Zeroes `cfg` and fills the defaults (data_dir and listen are left empty). */
void srv_config_defaults(struct srv_config *cfg);

/*
 * Reads a JSON config file ({"cert_lifetime": "30d", "report_rate": 10, "report_burst": 60,
 * "report_body_max": "2M", "threads": 2, "connection_limit": 20000, "log_level": "info",
 * "database": "postgresql://...", "event_retention": "30d",
 * "event_retention_events": 5000000}).
 * Unknown keys are errors. -errno with a message in err.
 */
int srv_config_load(const char *path, struct srv_config *cfg, char *err, size_t errlen);

/* Parses "ADDR:PORT" ("127.0.0.1:8443", "[::1]:8443", "0.0.0.0:443"). */
int srv_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *ret_port);

struct srv;

/*
 * Opens the data directory (creating CA, server certificate, database and the first admin
 * token on first start) and starts the HTTPS listener. *ret_created_token is true when
 * DIR/admin.token was written now. On failure returns -errno with a message in err.
 */
int srv_new(const struct srv_config *cfg, struct srv **ret, bool *ret_created_token, char *err,
            size_t errlen);

/* The bound TCP port (useful with port 0). */
uint16_t srv_port(const struct srv *s);

/*
 * Graceful stop: stops accepting, answers suspended long-polls (503), lets in-flight requests
 * finish (up to `grace_ms`), then stops the listener. Safe to call once.
 */
void srv_shutdown(struct srv *s, unsigned grace_ms);

/* Frees everything (shuts down first if needed). Accepts NULL. */
void srv_free(struct srv *s);
