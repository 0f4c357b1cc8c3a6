/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corrald configuration: `key = value` files (/etc/corral/corrald.conf, then the drop-in
 * directory /etc/corral/corrald.conf.d/NAME.conf in lexical order, later wins) and command-line
 * flags, which win over every file. Every key is also a flag (`--server-url` for server_url).
 *
 * The parser is strict: an unknown key or a bad value is an error naming file:line and the
 * reason, so a daemon never starts on a configuration it misread. Files are capped at
 * CD_CONFIG_FILE_MAX bytes before they are read.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CD_CONFIG_FILE_MAX     ((size_t)64 * 1024)
#define CD_CONFIG_LINE_MAX     4096u
#define CD_CONFIG_GROUPS_MAX   64u
#define CD_CONFIG_DROPINS_MAX  256u
#define CD_CONFIG_DEFAULT_FILE "/etc/corral/corrald.conf"
#define CD_CONFIG_DEFAULT_DIR  "/etc/corral/corrald.conf.d"

/* The daemon's settings. Strings are heap-owned by the struct (cd_config_free). */
struct cd_config {
	char *server_url;        /* https://host:port of corral-server; NULL in offline mode */
	char *enroll_token_file; /* one-time enrollment token, deleted after success */
	char *trust_root_file;   /* initial SignedEnvelope{TrustRoot} installed by package/MDM */
	char *server_ca_file;    /* fleet CA (PEM) the server's TLS certificate chains to */
	char *data_dir;          /* SQLite database, device key */
	char *socket;            /* local IPC socket path */
	char *device_id;         /* offline mode: the device id used for targeting */
	char *worker_user;       /* unprivileged account of the network worker */
	char *egress_resolver; /* DNS server the egress proxy asks ("IPv4[:port]"); NULL = system */
	char *egress_allow_private; /* CIDRs (comma list) the proxy may reach though non-public */
	char **groups;              /* offline mode: device groups (NULL-terminated) */
	size_t n_groups;
	bool offline;               /* no server: policy only from `corral policy apply` */
	int log_level;              /* enum log_level */
	int64_t heartbeat_interval; /* seconds */
	int64_t poll_wait;          /* long-poll wait the server is asked for, seconds */
	int64_t backoff_max;        /* cap of the retry backoff, seconds */
	uint64_t outbox_max_bytes;
	uint64_t outbox_max_events;
	bool landlock_audit; /* `auto`: read Landlock denials from kernel audit (fsaudit.h) */
	bool test_hooks;     /* enables the test-only IPC (synthetic events); never in production */
};

/* Fills `cfg` with the built-in defaults. Returns 0 or -ENOMEM. */
int cd_config_init(struct cd_config *cfg);

/* Frees everything `cfg` owns; leaves it zeroed. Accepts a zeroed struct. */
void cd_config_free(struct cd_config *cfg);

/*
 * Sets one key from its text value (the same path for files and flags). Keys may be written
 * with '_' or '-'. Returns 0, -ENOENT for an unknown key, -EINVAL for a bad value, or -ENOMEM;
 * `err` (may be NULL) receives the reason without a location.
 */
int cd_config_set(struct cd_config *cfg, const char *key, const char *value, char *err,
                  size_t errlen);

/*
 * Parses `len` bytes of configuration text named `name` (for messages) into `cfg`. Lines are
 * `key = value`, blank, or comments starting with '#'. Returns 0 or a negative errno with
 * "name:line: reason" in `err`.
 */
int cd_config_parse(struct cd_config *cfg, const char *name, const char *buf, size_t len, char *err,
                    size_t errlen);

/*
 * Loads the main file then the drop-in directory. A missing main file or directory is fine
 * unless `required` says it was named explicitly (--config / --config-dir). Returns 0 or
 * -errno with the reason (file:line when it is a syntax error) in `err`.
 */
int cd_config_load(struct cd_config *cfg, const char *file, bool file_required, const char *dir,
                   bool dir_required, char *err, size_t errlen);

/*
 * Checks the combination of settings (offline needs a trust root, online needs server_url
 * ...). Returns 0 or -EINVAL with the reason in `err`.
 */
int cd_config_validate(const struct cd_config *cfg, char *err, size_t errlen);

/* One documented key, for --help and the example file. */
struct cd_config_key {
	const char *name;
	const char *arg;  /* metavariable for --help, NULL for a boolean flag */
	const char *help; /* one line */
};

/* The table of keys (terminated by a NULL name). Static storage. */
const struct cd_config_key *cd_config_keys(void);
