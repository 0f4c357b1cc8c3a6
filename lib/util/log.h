/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging for the top level of each binary (daemons log to stderr, systemd style, with <N>
 * priority prefixes when stderr is the journal). Library modules do not log: they return
 * -errno and let the caller decide.
 */
#pragma once

#include <stdarg.h>

enum log_level { LOG_LEVEL_ERR = 3, LOG_LEVEL_WARN = 4, LOG_LEVEL_INFO = 6, LOG_LEVEL_DEBUG = 7 };

/* Sets the program name and the most verbose level printed. */
void log_setup(const char *ident, enum log_level max);

/* Parses "error", "warn", "info", "debug". Returns -EINVAL otherwise. */
int log_parse_level(const char *s, enum log_level *ret);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
