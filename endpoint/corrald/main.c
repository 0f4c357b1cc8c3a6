// SPDX-License-Identifier: Apache-2.0
/*
 * corrald: the corral endpoint daemon. Runs in the foreground and logs to stderr (systemd or
 * any supervisor captures it). Reads /etc/corral/corrald.conf and the drop-ins in
 * /etc/corral/corrald.conf.d/, then flags, which win; refuses to start on any configuration
 * error with file:line and the reason.
 */
#include "config.h"
#include "daemon.h"
#include "log.h"

#include "corral_version.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <linux/capability.h>

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: corrald [OPTIONS]\n\n"
	        "The corral endpoint daemon: enrolls the device, pulls and verifies signed "
	        "policy,\nreports events, and serves the local `corral` CLI.\n\n"
	        "  --config FILE        main configuration file (default %s)\n"
	        "  --config-dir DIR     drop-in directory, *.conf in lexical order (default "
	        "%s)\n"
	        "  --trust FILE         same as --trust-root-file\n"
	        "  --group NAME         add an offline-mode group (repeatable)\n"
	        "  --help, --version\n\n"
	        "Every configuration key is also a flag (flags win over files):\n",
	        CD_CONFIG_DEFAULT_FILE, CD_CONFIG_DEFAULT_DIR);
	for (const struct cd_config_key *k = cd_config_keys(); k->name; k++) {
		char flag[64];
		snprintf(flag, sizeof(flag), "--%s", k->name);
		for (char *p = flag + 2; *p; p++)
			if (*p == '_')
				*p = '-';
		char left[96];
		snprintf(left, sizeof(left), "%s%s%s", flag, k->arg ? " " : "",
		         k->arg ? k->arg : "");
		fprintf(out, "  %-34s %s\n", left, k->help);
	}
}

/* Does flag spelling `key` name configuration key `name`? */
static bool same_key(const char *name, const char *key)
{
	size_t i = 0;
	for (; name[i] && key[i]; i++)
		if (!(name[i] == key[i] || (name[i] == '_' && key[i] == '-')))
			return false;
	return !name[i] && !key[i];
}

static const struct cd_config_key *find_flag(const char *key)
{
	for (const struct cd_config_key *k = cd_config_keys(); k->name; k++)
		if (same_key(k->name, key))
			return k;
	return NULL;
}

/* Is `key` (flag spelling) a boolean key? */
static bool is_bool_key(const char *key)
{
	const struct cd_config_key *k = find_flag(key);
	return k && k->arg == NULL;
}

/*
 * Narrows corrald's capability bounding set to what its own exec needs: the network worker is
 * exec'd as root and switches to its account itself (CAP_SETUID, CAP_SETGID). The bounding
 * set only limits what an execve can grant, so corrald keeps the capabilities it holds; what
 * it starts can never gain the others, and every session child inherits the narrow set, so
 * its own bounding-set drop (sandbox caps.c, one credentials commit per capability still
 * there) costs two commits instead of forty-one. Returns how many were dropped, or -errno.
 */
static int narrow_bounding_set(void)
{
	int n = 0;
	for (int c = 0; prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0; c++) {
		if (c == CAP_SETUID || c == CAP_SETGID || prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 0)
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			return -errno;
		n++;
	}
	return n;
}

int main(int argc, char **argv)
{
	log_setup("corrald", LOG_LEVEL_INFO);
	/* An idle daemon should give freed memory back: small trim and mmap thresholds keep the
	 * resident set near what is in use (bursts of uploads or policy parsing are short). One
	 * arena: the few helper threads (TMP pool, egress name resolution) are I/O-bound, and a
	 * per-thread arena keeps ≈ 30 kB resident each long after its burst. */
	mallopt(M_TRIM_THRESHOLD, 128 * 1024);
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	mallopt(M_ARENA_MAX, 1);
	const char *config_file = CD_CONFIG_DEFAULT_FILE, *config_dir = CD_CONFIG_DEFAULT_DIR;
	bool file_explicit = false, dir_explicit = false;
	/* First pass: where the files are, --help and --version. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("corrald %s\n", CORRAL_VERSION);
			return 0;
		}
		if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--config-dir") == 0)) {
			if (i + 1 >= argc) {
				fprintf(stderr, "corrald: %s needs an argument\n", argv[i]);
				return 2;
			}
			if (strcmp(argv[i], "--config") == 0) {
				config_file = argv[++i];
				file_explicit = true;
			} else {
				config_dir = argv[++i];
				dir_explicit = true;
			}
		}
	}
	struct cd_config cfg;
	if (cd_config_init(&cfg) < 0)
		return 1;
	char err[1024] = "";
	int r = cd_config_load(&cfg, config_file, file_explicit, config_dir, dir_explicit, err,
	                       sizeof(err));
	if (r < 0) {
		fprintf(stderr, "corrald: configuration error: %s\n", err);
		cd_config_free(&cfg);
		return 2;
	}
	/* Second pass: flags win over files. --group accumulates. */
	char groups[4096] = "";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--config") == 0 || strcmp(a, "--config-dir") == 0) {
			i++;
			continue;
		}
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "corrald: unexpected argument '%s' (see --help)\n", a);
			cd_config_free(&cfg);
			return 2;
		}
		char key[64];
		const char *value = NULL;
		const char *eq = strchr(a + 2, '=');
		size_t kl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		if (kl >= sizeof(key)) {
			fprintf(stderr, "corrald: unknown option '%s'\n", a);
			cd_config_free(&cfg);
			return 2;
		}
		memcpy(key, a + 2, kl);
		key[kl] = '\0';
		if (strcmp(key, "trust") == 0)
			snprintf(key, sizeof(key), "trust-root-file");
		if (strcmp(key, "group") != 0 && !find_flag(key)) {
			fprintf(stderr, "corrald: unknown option '%s' (see --help)\n", a);
			cd_config_free(&cfg);
			return 2;
		}
		if (eq) {
			value = eq + 1;
		} else if (is_bool_key(key)) {
			value = "yes";
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			fprintf(stderr, "corrald: %s needs an argument\n", a);
			cd_config_free(&cfg);
			return 2;
		}
		if (strcmp(key, "group") == 0) {
			size_t gl = strlen(groups);
			snprintf(groups + gl, sizeof(groups) - gl, "%s%s", gl ? "," : "", value);
			continue;
		}
		char why[512] = "";
		r = cd_config_set(&cfg, key, value, why, sizeof(why));
		if (r < 0) {
			if (r == -ENOENT)
				fprintf(stderr, "corrald: unknown option '--%s' (see --help)\n",
				        key);
			else
				fprintf(stderr, "corrald: --%s: %s\n", key, why);
			cd_config_free(&cfg);
			return 2;
		}
	}
	if (*groups) {
		char why[512] = "";
		if (cd_config_set(&cfg, "groups", groups, why, sizeof(why)) < 0) {
			fprintf(stderr, "corrald: --group: %s\n", why);
			cd_config_free(&cfg);
			return 2;
		}
	}
	if (cd_config_validate(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "corrald: configuration error: %s\n", err);
		cd_config_free(&cfg);
		return 2;
	}
	log_setup("corrald", (enum log_level)cfg.log_level);
	if (geteuid() == 0) {
		r = narrow_bounding_set();
		if (r < 0)
			log_warn("cannot narrow the capability bounding set: %s", strerror(-r));
		else
			log_debug("capability bounding set narrowed (%d dropped)", r);
	}
	struct cd_daemon *d = NULL;
	r = cd_daemon_new(&cfg, &d);
	if (r < 0) {
		cd_config_free(&cfg);
		return 1;
	}
	log_info("corrald %s started (%s, socket %s)", CORRAL_VERSION,
	         cfg.offline ? "offline" : cfg.server_url, cfg.socket);
	r = cd_daemon_run(d);
	cd_daemon_free(d);
	cd_config_free(&cfg);
	log_info("stopped");
	return r < 0 ? 1 : 0;
}
