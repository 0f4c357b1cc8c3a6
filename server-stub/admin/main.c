// SPDX-License-Identifier: Apache-2.0
/*
 * corral-admin entry point: finds the command named by the first one or two words and runs it.
 * `corral-admin --help` lists every command; `corral-admin CMD --help` is handled by CMD.
 */
#include "admin.h"
#include "corral_version.h"

#include <stdio.h>
#include <string.h>

static const struct admin_command *const *command_sets(void)
{
	static const struct admin_command *sets[4];
	size_t n = 0;
	if (admin_lint_commands)
		sets[n++] = admin_lint_commands;
	if (admin_trust_commands)
		sets[n++] = admin_trust_commands;
	if (admin_online_commands)
		sets[n++] = admin_online_commands;
	sets[n] = NULL;
	return sets;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: corral-admin COMMAND [ARGS...]\n\n"
	           "Administer a corral fleet: keys and trust roots, signed policies, and the\n"
	           "management server (online commands take --server URL --token-file FILE).\n\n"
	           "commands:\n");
	for (const struct admin_command *const *set = command_sets(); *set; set++)
		for (const struct admin_command *c = *set; c->name; c++)
			fprintf(f, "  %-22s %s\n", c->name, c->summary);
	fprintf(f, "\n`corral-admin COMMAND --help` shows a command's options.\n");
}

static const struct admin_command *find(const char *name)
{
	for (const struct admin_command *const *set = command_sets(); *set; set++)
		for (const struct admin_command *c = *set; c->name; c++)
			if (strcmp(c->name, name) == 0)
				return c;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("corral-admin %s\n", CORRAL_VERSION);
		return 0;
	}
	/* Two-word commands first ("policy sign"), then one word ("audit"). */
	if (argc >= 3) {
		char two[128];
		snprintf(two, sizeof(two), "%s %s", argv[1], argv[2]);
		const struct admin_command *c = find(two);
		if (c) {
			/* argv[0] of the command is its full name, so usage lines read right. */
			argv[2] = (char *)c->name;
			return c->run(argc - 2, argv + 2);
		}
	}
	const struct admin_command *c = find(argv[1]);
	if (c)
		return c->run(argc - 1, argv + 1);
	fprintf(stderr, "corral-admin: unknown command '%s'%s%s\n", argv[1], argc >= 3 ? " " : "",
	        argc >= 3 ? argv[2] : "");
	fprintf(stderr, "Run 'corral-admin --help' for the list of commands.\n");
	return 2;
}
