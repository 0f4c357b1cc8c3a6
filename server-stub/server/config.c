// SPDX-License-Identifier: Apache-2.0
/*
 * corral-server configuration: defaults, the optional JSON config file (--config) and the
 * --listen parser. Unknown keys are refused so a typo never silently keeps a default.
 */
#include "srv.h"

#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_MAX (64 * 1024)

void srv_config_defaults(struct srv_config *cfg)
{
	/* Every field starts defined: callers declare the struct on the stack, and an
	 * uninitialised hostname once went into the server certificate's SAN. */
	memset(cfg, 0, sizeof(*cfg));
	cfg->cert_lifetime_sec = 30 * 86400;
	cfg->report_rate = 10;
	cfg->report_burst = 60;
	cfg->report_body_max = SRV_REPORT_BODY_MAX_DEFAULT;
	/* One epoll loop per CPU (at most 4): TLS work spreads, storage is serialised anyway. */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cfg->threads = ncpu > 4 ? 4 : ncpu < 1 ? 1 : (unsigned)ncpu;
	cfg->connection_limit = 20000;
	cfg->log_level = LOG_LEVEL_INFO;
	/* database "" = SQLite in the data directory; event_retention_sec 0 = keep events. */
}

int srv_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *ret_port)
{
	const char *colon;
	const char *h = s;
	size_t hl;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		h = s + 1;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - s);
	}
	uint64_t port;
	if (hl == 0 || hl >= hostlen || util_parse_u64(colon + 1, &port) < 0 || port > 65535)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*ret_port = (uint16_t)port;
	return 0;
}

int srv_config_load(const char *path, struct srv_config *cfg, char *err, size_t errlen)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = util_read_file(path, CONFIG_MAX, &text, &len);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	json_error_t je;
	json_t *j = json_loadb(text, len, 0, &je);
	if (!j || !json_is_object(j)) {
		snprintf(err, errlen, "%s:%d: %s", path, je.line, j ? "not an object" : je.text);
		json_decref(j);
		return -EINVAL;
	}
	const char *key;
	json_t *v;
	r = 0;
	json_object_foreach (j, key, v) {
		uint64_t u;
		if (strcmp(key, "cert_lifetime") == 0 && json_is_string(v)) {
			if (util_parse_duration(json_string_value(v), &cfg->cert_lifetime_sec) <
			            0 ||
			    cfg->cert_lifetime_sec < 60)
				r = -EINVAL;
		} else if (strcmp(key, "report_rate") == 0 && json_is_number(v)) {
			cfg->report_rate = json_number_value(v);
			if (cfg->report_rate <= 0)
				r = -EINVAL;
		} else if (strcmp(key, "report_burst") == 0 && json_is_number(v)) {
			cfg->report_burst = json_number_value(v);
			if (cfg->report_burst < 1)
				r = -EINVAL;
		} else if (strcmp(key, "report_body_max") == 0 && json_is_string(v)) {
			if (util_parse_size(json_string_value(v), &u) < 0 || u < 1024 ||
			    u > 64u * 1024 * 1024)
				r = -EINVAL;
			else
				cfg->report_body_max = u;
		} else if (strcmp(key, "threads") == 0 && json_is_integer(v)) {
			json_int_t t = json_integer_value(v);
			if (t < 1 || t > 64)
				r = -EINVAL;
			else
				cfg->threads = (unsigned)t;
		} else if (strcmp(key, "connection_limit") == 0 && json_is_integer(v)) {
			json_int_t t = json_integer_value(v);
			if (t < 16 || t > 1000000)
				r = -EINVAL;
			else
				cfg->connection_limit = (unsigned)t;
		} else if (strcmp(key, "database") == 0 && json_is_string(v)) {
			if (strlen(json_string_value(v)) >= sizeof(cfg->database))
				r = -EINVAL;
			else
				snprintf(cfg->database, sizeof(cfg->database), "%s",
				         json_string_value(v));
		} else if (strcmp(key, "event_retention") == 0 && json_is_string(v)) {
			if (util_parse_duration(json_string_value(v), &cfg->event_retention_sec) <
			            0 ||
			    cfg->event_retention_sec < 0)
				r = -EINVAL;
		} else if (strcmp(key, "event_retention_events") == 0 && json_is_integer(v)) {
			json_int_t t = json_integer_value(v);
			if (t < 1000)
				r = -EINVAL;
			else
				cfg->event_retention_events = (uint64_t)t;
		} else if (strcmp(key, "log_level") == 0 && json_is_string(v)) {
			if (log_parse_level(json_string_value(v), &cfg->log_level) < 0)
				r = -EINVAL;
		} else
			r = -EINVAL;
		if (r < 0) {
			snprintf(err, errlen, "%s: bad or unknown setting '%s'", path, key);
			break;
		}
	}
	json_decref(j);
	return r;
}
