// SPDX-License-Identifier: Apache-2.0
/*
 * stderr logger for daemons and tools. When JOURNAL_STREAM is set (systemd connected stderr
 * to the journal) lines carry "<N>" priority prefixes; otherwise a timestamp and level word.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *log_ident = "corral";
static enum log_level log_max = LOG_LEVEL_INFO;
static int log_journal = -1;

void log_setup(const char *ident, enum log_level max)
{
	log_ident = ident;
	log_max = max;
}

int log_parse_level(const char *s, enum log_level *ret)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {{"error", LOG_LEVEL_ERR},
	             {"warn", LOG_LEVEL_WARN},
	             {"warning", LOG_LEVEL_WARN},
	             {"info", LOG_LEVEL_INFO},
	             {"debug", LOG_LEVEL_DEBUG}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0) {
			*ret = names[i].level;
			return 0;
		}
	return -EINVAL;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level > log_max)
		return;
	int saved = errno;
	if (log_journal < 0)
		log_journal = getenv("JOURNAL_STREAM") != NULL;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_journal) {
		fprintf(stderr, "<%d>%s\n", (int)level, line);
	} else {
		static const char *words[] = {[LOG_LEVEL_ERR] = "error",
		                              [LOG_LEVEL_WARN] = "warn",
		                              [LOG_LEVEL_INFO] = "info",
		                              [LOG_LEVEL_DEBUG] = "debug"};
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%s]: %s\n",
		        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		        tm.tm_sec, ts.tv_nsec / 1000000, log_ident, words[level], line);
	}
	errno = saved;
}
