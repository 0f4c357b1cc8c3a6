/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corral-admin: the administrators' CLI. Offline commands (keys, trust roots, signing, lint)
 * never talk to a server; online commands talk to corral-server's admin API.
 *
 * Each concern lives in its own cmd_*.c and exports one table of commands; main.c dispatches
 * on the first one or two words ("policy sign", "audit").
 */
#pragma once

struct admin_command {
	const char *name;    /* "policy lint", "key generate", "audit" */
	const char *usage;   /* one line of arguments */
	const char *summary; /* one line of what it does */
	/* argv[0] is the command name; returns the process exit code. */
	int (*run)(int argc, char **argv);
};

/* Tables, each terminated by {NULL}. Weak so main links whatever parts are built. */
extern const struct admin_command admin_lint_commands[] __attribute__((weak));
extern const struct admin_command admin_trust_commands[] __attribute__((weak));
extern const struct admin_command admin_online_commands[] __attribute__((weak));
