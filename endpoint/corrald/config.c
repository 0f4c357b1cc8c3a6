// SPDX-License-Identifier: Apache-2.0
/*
 * corrald configuration parser (see config.h). One table drives files, flags, --help and the
 * documented example, so a key cannot exist in one place and be missing in another. Values are
 * validated when set, which is what lets the daemon refuse to start with file:line and reason.
 */
#include "config.h"

#include "cleanup.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum key_type {
	KEY_URL,
	KEY_PATH,
	KEY_NAME,
	KEY_USER,
	KEY_GROUPS,
	KEY_BOOL,
	KEY_LOGLEVEL,
	KEY_DURATION,
	KEY_SIZE,
	KEY_COUNT,
	KEY_ADDR,     /* IPv4 address with an optional :port */
	KEY_CIDRS,    /* comma-separated IPv4/IPv6 CIDRs */
	KEY_AUTO_OFF, /* "auto" (true) or "off" (false) */
};

struct key_def {
	struct cd_config_key doc;
	enum key_type type;
	size_t offset;
	int64_t min, max; /* durations (seconds), sizes (bytes), counts */
};

#define OFF(f) offsetof(struct cd_config, f)

static const struct key_def key_defs[] = {
        {{"server_url", "URL", "corral-server base URL (https://host:port)"},
         KEY_URL,
         OFF(server_url)},
        {{"enroll_token_file", "FILE", "one-time enrollment token; emptied after enrolling"},
         KEY_PATH,
         OFF(enroll_token_file)},
        {{"trust_root_file", "FILE", "initial signed trust root installed with the package"},
         KEY_PATH,
         OFF(trust_root_file)},
        {{"server_ca_file", "FILE", "fleet CA certificate (PEM); the only CA the worker trusts"},
         KEY_PATH,
         OFF(server_ca_file)},
        {{"data_dir", "DIR", "state directory (database, device key)"}, KEY_PATH, OFF(data_dir)},
        {{"socket", "PATH", "local IPC socket for the corral CLI"}, KEY_PATH, OFF(socket)},
        {{"groups", "LIST", "offline mode: comma-separated device groups"},
         KEY_GROUPS,
         OFF(groups)},
        {{"offline", NULL, "run without a server (policy only via corral policy apply)"},
         KEY_BOOL,
         OFF(offline)},
        {{"device_id", "ID", "offline mode: device id used for policy targeting"},
         KEY_NAME,
         OFF(device_id)},
        {{"log_level", "LEVEL", "error, warn, info or debug"}, KEY_LOGLEVEL, OFF(log_level)},
        {{"heartbeat_interval", "DURATION", "time between heartbeat events (default 5m)"},
         KEY_DURATION,
         OFF(heartbeat_interval),
         5,
         86400},
        {{"poll_wait", "DURATION", "long-poll wait asked of the server (default 4m)"},
         KEY_DURATION,
         OFF(poll_wait),
         1,
         600},
        {{"backoff_max", "DURATION", "cap of the retry backoff after errors (default 5m)"},
         KEY_DURATION,
         OFF(backoff_max),
         1,
         86400},
        {{"outbox_max_bytes", "SIZE", "outbox bound in bytes (default 50M)"},
         KEY_SIZE,
         OFF(outbox_max_bytes),
         4096,
         (int64_t)1 << 36},
        {{"outbox_max_events", "N", "outbox bound in events (default 200000)"},
         KEY_COUNT,
         OFF(outbox_max_events),
         4,
         100000000},
        {{"worker_user", "USER", "account of the network worker (default: corral, else nobody)"},
         KEY_USER,
         OFF(worker_user)},
        {{"egress_resolver", "ADDR[:PORT]",
          "DNS server the egress proxy resolves allowed hostnames with (default: the system's)"},
         KEY_ADDR,
         OFF(egress_resolver)},
        {{"egress_allow_private", "CIDR,...",
          "non-public ranges (e.g. internal git hosts) the egress proxy may connect to"},
         KEY_CIDRS,
         OFF(egress_allow_private)},
        {{"landlock_audit", "auto|off",
          "report filesystem (Landlock) denials through kernel audit (default auto)"},
         KEY_AUTO_OFF,
         OFF(landlock_audit)},
        {{"test_hooks", NULL, "enable test-only IPC requests (never in production)"},
         KEY_BOOL,
         OFF(test_hooks)},
};

const struct cd_config_key *cd_config_keys(void)
{
	static struct cd_config_key keys[ELEMENTSOF(key_defs) + 1];
	for (size_t i = 0; i < ELEMENTSOF(key_defs); i++)
		keys[i] = key_defs[i].doc;
	keys[ELEMENTSOF(key_defs)] = (struct cd_config_key){NULL, NULL, NULL};
	return keys;
}

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void free_groups(struct cd_config *cfg)
{
	for (size_t i = 0; i < cfg->n_groups; i++)
		free(cfg->groups[i]);
	free(cfg->groups);
	cfg->groups = NULL;
	cfg->n_groups = 0;
}

void cd_config_free(struct cd_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < ELEMENTSOF(key_defs); i++) {
		enum key_type t = key_defs[i].type;
		if (t == KEY_URL || t == KEY_PATH || t == KEY_NAME || t == KEY_USER ||
		    t == KEY_ADDR || t == KEY_CIDRS) {
			char **p = (char **)((char *)cfg + key_defs[i].offset);
			free(*p);
			*p = NULL;
		}
	}
	free_groups(cfg);
	memset(cfg, 0, sizeof(*cfg));
}

int cd_config_init(struct cd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->data_dir = strdup("/var/lib/corral");
	cfg->socket = strdup("/run/corral/corrald.sock");
	if (!cfg->data_dir || !cfg->socket) {
		cd_config_free(cfg);
		return -ENOMEM;
	}
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->heartbeat_interval = 300;
	cfg->poll_wait = 240;
	cfg->backoff_max = 300;
	cfg->outbox_max_bytes = 50ull << 20;
	cfg->outbox_max_events = 200000;
	cfg->landlock_audit = true;
	return 0;
}

static bool valid_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

static int check_name(const char *v, size_t max, char *err, size_t errlen)
{
	size_t n = strlen(v);
	if (n == 0 || n > max) {
		set_err(err, errlen, "'%s' must be 1-%zu characters", v, max);
		return -EINVAL;
	}
	for (const char *p = v; *p; p++)
		if (!valid_name_char(*p)) {
			set_err(err, errlen, "'%s' may contain only letters, digits, '.', '_', '-'",
			        v);
			return -EINVAL;
		}
	return 0;
}

static int check_printable(const char *v, char *err, size_t errlen)
{
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x21 || *p == 0x7f) {
			set_err(err, errlen, "control characters and spaces are not allowed");
			return -EINVAL;
		}
	return 0;
}

static int set_groups(struct cd_config *cfg, const char *value, char *err, size_t errlen)
{
	_cleanup_free_ char *copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	char **list = calloc(CD_CONFIG_GROUPS_MAX + 1, sizeof(char *));
	if (!list)
		return -ENOMEM;
	size_t n = 0;
	int r = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*tok))
			tok++;
		size_t tl = strlen(tok);
		while (tl > 0 && isspace((unsigned char)tok[tl - 1]))
			tok[--tl] = '\0';
		if (n >= CD_CONFIG_GROUPS_MAX) {
			set_err(err, errlen, "more than %u groups", CD_CONFIG_GROUPS_MAX);
			r = -EINVAL;
			break;
		}
		r = check_name(tok, 64, err, errlen);
		if (r < 0)
			break;
		list[n] = strdup(tok);
		if (!list[n]) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	if (r == 0 && n == 0) {
		set_err(err, errlen, "empty group list");
		r = -EINVAL;
	}
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(list[i]);
		free(list);
		return r;
	}
	free_groups(cfg);
	cfg->groups = list;
	cfg->n_groups = n;
	return 0;
}

/* "192.0.2.53" or "192.0.2.53:5353". */
static int check_addr(const char *v)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strchr(v, ':');
	size_t hl = colon ? (size_t)(colon - v) : strlen(v);
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, v, hl);
	host[hl] = '\0';
	struct in_addr a;
	if (inet_pton(AF_INET, host, &a) != 1)
		return -EINVAL;
	if (colon) {
		uint64_t port;
		if (util_parse_u64(colon + 1, &port) < 0 || port == 0 || port > 65535)
			return -EINVAL;
	}
	return 0;
}

/* "10.0.0.0/8,2001:db8::/32": each an address with a prefix no longer than its family's. */
static int check_cidrs(const char *v, char *why, size_t whylen)
{
	if (strlen(v) > 4096) {
		snprintf(why, whylen, "list longer than 4096 bytes");
		return -EINVAL;
	}
	const char *p = v;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char item[INET6_ADDRSTRLEN + 8];
		if (n == 0 || n >= sizeof(item)) {
			snprintf(why, whylen, "empty or overlong CIDR in the list");
			return -EINVAL;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		char *slash = strchr(item, '/');
		uint64_t prefix = 0;
		if (!slash || util_parse_u64(slash + 1, &prefix) < 0) {
			snprintf(why, whylen, "'%.64s' is not a CIDR (address/prefix)", item);
			return -EINVAL;
		}
		*slash = '\0';
		unsigned char buf[16];
		int bits = inet_pton(AF_INET, item, buf) == 1    ? 32
		           : inet_pton(AF_INET6, item, buf) == 1 ? 128
		                                                 : -1;
		if (bits < 0 || prefix > (uint64_t)bits) {
			*slash = '/';
			snprintf(why, whylen, "'%.64s' is not a CIDR (address/prefix)", item);
			return -EINVAL;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

static const struct key_def *find_key(const char *key)
{
	char norm[64];
	size_t n = strlen(key);
	if (n >= sizeof(norm))
		return NULL;
	for (size_t i = 0; i <= n; i++)
		norm[i] = key[i] == '-' ? '_' : key[i];
	for (size_t i = 0; i < ELEMENTSOF(key_defs); i++)
		if (strcmp(norm, key_defs[i].doc.name) == 0)
			return &key_defs[i];
	return NULL;
}

static int parse_bool(const char *v, bool *ret)
{
	static const char *const yes[] = {"1", "yes", "true", "on"};
	static const char *const no[] = {"0", "no", "false", "off"};
	for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

int cd_config_set(struct cd_config *cfg, const char *key, const char *value, char *err,
                  size_t errlen)
{
	const struct key_def *d = find_key(key);
	if (!d) {
		set_err(err, errlen, "unknown key '%.64s'", key);
		return -ENOENT;
	}
	const char *name = d->doc.name;
	void *field = (char *)cfg + d->offset;
	int r;
	if (*value == '\0') {
		set_err(err, errlen, "%s: empty value", name);
		return -EINVAL;
	}
	switch (d->type) {
	case KEY_URL:
		if (strlen(value) > 1024 || check_printable(value, NULL, 0) < 0 ||
		    !util_startswith(value, "https://") || value[8] == '\0') {
			set_err(err, errlen, "%s: '%.64s' is not an https:// URL", name, value);
			return -EINVAL;
		}
		break;
	case KEY_PATH:
		if (value[0] != '/' || strlen(value) >= PATH_MAX - 32 ||
		    check_printable(value, NULL, 0) < 0) {
			set_err(err, errlen, "%s: '%.64s' is not an absolute path", name, value);
			return -EINVAL;
		}
		break;
	case KEY_NAME:
		r = check_name(value, 128, err, errlen);
		if (r < 0)
			return r;
		break;
	case KEY_USER:
		if (strlen(value) > 32 || !(islower((unsigned char)value[0]) || value[0] == '_')) {
			set_err(err, errlen, "%s: '%.64s' is not a user name", name, value);
			return -EINVAL;
		}
		for (const char *p = value; *p; p++)
			if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) &&
			    *p != '_' && *p != '-') {
				set_err(err, errlen, "%s: '%.64s' is not a user name", name, value);
				return -EINVAL;
			}
		break;
	case KEY_ADDR:
		if (check_addr(value) < 0) {
			set_err(err, errlen, "%s: '%.64s' is not an IPv4 address[:port]", name,
			        value);
			return -EINVAL;
		}
		break;
	case KEY_CIDRS: {
		char why[128] = "";
		if (check_cidrs(value, why, sizeof(why)) < 0) {
			set_err(err, errlen, "%s: %s", name, why);
			return -EINVAL;
		}
		break;
	}
	case KEY_GROUPS: {
		char why[128] = "";
		r = set_groups(cfg, value, why, sizeof(why));
		if (r == -EINVAL)
			set_err(err, errlen, "%s: %s", name, why);
		return r;
	}
	case KEY_BOOL:
		if (parse_bool(value, (bool *)field) < 0) {
			set_err(err, errlen, "%s: '%.64s' is not a boolean (yes/no/true/false/1/0)",
			        name, value);
			return -EINVAL;
		}
		return 0;
	case KEY_AUTO_OFF:
		if (strcmp(value, "auto") != 0 && strcmp(value, "off") != 0) {
			set_err(err, errlen, "%s: '%.64s' is not auto or off", name, value);
			return -EINVAL;
		}
		*(bool *)field = strcmp(value, "auto") == 0;
		return 0;
	case KEY_LOGLEVEL: {
		enum log_level lv;
		if (log_parse_level(value, &lv) < 0) {
			set_err(err, errlen, "%s: '%.64s' is not one of error, warn, info, debug",
			        name, value);
			return -EINVAL;
		}
		*(int *)field = (int)lv;
		return 0;
	}
	case KEY_DURATION: {
		int64_t s;
		if (util_parse_duration(value, &s) < 0 || s < d->min || s > d->max) {
			set_err(err, errlen,
			        "%s: '%.64s' is not a duration between %llds and %llds (e.g. 90s, "
			        "5m)",
			        name, value, (long long)d->min, (long long)d->max);
			return -EINVAL;
		}
		*(int64_t *)field = s;
		return 0;
	}
	case KEY_SIZE:
	case KEY_COUNT: {
		uint64_t v;
		r = d->type == KEY_SIZE ? util_parse_size(value, &v) : util_parse_u64(value, &v);
		if (r < 0 || v < (uint64_t)d->min || v > (uint64_t)d->max) {
			set_err(err, errlen, "%s: '%.64s' is not a %s between %lld and %lld", name,
			        value, d->type == KEY_SIZE ? "size" : "number", (long long)d->min,
			        (long long)d->max);
			return -EINVAL;
		}
		*(uint64_t *)field = v;
		return 0;
	}
	}
	/* String-valued keys, already validated above. */
	char *copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	char **p = field;
	free(*p);
	*p = copy;
	return 0;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

int cd_config_parse(struct cd_config *cfg, const char *name, const char *buf, size_t len, char *err,
                    size_t errlen)
{
	if (len > CD_CONFIG_FILE_MAX) {
		set_err(err, errlen, "%s: larger than %zu bytes", name, CD_CONFIG_FILE_MAX);
		return -EFBIG;
	}
	char line[CD_CONFIG_LINE_MAX + 1];
	size_t pos = 0;
	unsigned lineno = 0;
	while (pos < len) {
		lineno++;
		const char *start = buf + pos;
		const char *nl = memchr(start, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - start) : len - pos;
		pos += n + (nl ? 1 : 0);
		if (n > CD_CONFIG_LINE_MAX) {
			set_err(err, errlen, "%s:%u: line longer than %u bytes", name, lineno,
			        CD_CONFIG_LINE_MAX);
			return -EINVAL;
		}
		if (memchr(start, '\0', n)) {
			set_err(err, errlen, "%s:%u: NUL byte in line", name, lineno);
			return -EINVAL;
		}
		memcpy(line, start, n);
		line[n] = '\0';
		char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			set_err(err, errlen, "%s:%u: expected 'key = value'", name, lineno);
			return -EINVAL;
		}
		*eq = '\0';
		char *key = trim(s), *value = trim(eq + 1);
		if (*key == '\0') {
			set_err(err, errlen, "%s:%u: missing key before '='", name, lineno);
			return -EINVAL;
		}
		char why[256] = "";
		int r = cd_config_set(cfg, key, value, why, sizeof(why));
		if (r < 0) {
			set_err(err, errlen, "%s:%u: %s", name, lineno, why);
			return r == -ENOENT ? -EINVAL : r;
		}
	}
	return 0;
}

static int load_file(struct cd_config *cfg, const char *path, bool required, char *err,
                     size_t errlen)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = util_read_file(path, CD_CONFIG_FILE_MAX, &buf, &len);
	if (r == -ENOENT && !required)
		return 0;
	if (r == -EFBIG) {
		set_err(err, errlen, "%s: larger than %zu bytes", path, CD_CONFIG_FILE_MAX);
		return r;
	}
	if (r < 0) {
		set_err(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	return cd_config_parse(cfg, path, buf, len, err, errlen);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_dropin(const char *name)
{
	size_t n = strlen(name);
	return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".conf") == 0;
}

int cd_config_load(struct cd_config *cfg, const char *file, bool file_required, const char *dir,
                   bool dir_required, char *err, size_t errlen)
{
	int r = 0;
	if (file) {
		r = load_file(cfg, file, file_required, err, errlen);
		if (r < 0)
			return r;
	}
	if (!dir)
		return 0;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		if (r == -ENOENT && !dir_required)
			return 0;
		set_err(err, errlen, "%s: %s", dir, strerror(-r));
		return r;
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		r = -errno;
		close(dfd);
		set_err(err, errlen, "%s: %s", dir, strerror(-r));
		return r;
	}
	char *names[CD_CONFIG_DROPINS_MAX];
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!is_dropin(de->d_name))
			continue;
		if (n >= CD_CONFIG_DROPINS_MAX) {
			set_err(err, errlen, "%s: more than %u drop-in files", dir,
			        CD_CONFIG_DROPINS_MAX);
			r = -E2BIG;
			break;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	/* Lexical order: an MDM names its file 50-mdm.conf to sit between vendor defaults and
	 * local overrides, and the later file wins key by key. */
	qsort(names, n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < n && r == 0; i++) {
		char path[PATH_MAX];
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= sizeof(path)) {
			set_err(err, errlen, "%s/%s: path too long", dir, names[i]);
			r = -ENAMETOOLONG;
			break;
		}
		r = load_file(cfg, path, true, err, errlen);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	return r;
}

int cd_config_validate(const struct cd_config *cfg, char *err, size_t errlen)
{
	if (!cfg->data_dir || !cfg->socket) {
		set_err(err, errlen, "data_dir and socket must be set");
		return -EINVAL;
	}
	if (cfg->offline) {
		if (!cfg->trust_root_file) {
			set_err(err, errlen, "offline mode needs trust_root_file (--trust FILE)");
			return -EINVAL;
		}
		return 0;
	}
	if (!cfg->server_url) {
		set_err(err, errlen, "server_url is not set (or use --offline)");
		return -EINVAL;
	}
	return 0;
}
