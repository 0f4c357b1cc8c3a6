// SPDX-License-Identifier: Apache-2.0
/*
 * corral-server entry point: parses the command line, raises the fd limit (one socket per
 * connected device), starts the core (corral_server_core) and waits for SIGTERM/SIGINT to shut
 * down gracefully. Signals are blocked before any thread starts so that only sigwait() here
 * ever sees them.
 */
#include "srv.h"

#include "corral_version.h"
#include "log.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: corral-server --data-dir DIR --listen ADDR:PORT [--hostname NAME] "
	        "[--config FILE] [--database URL]\n\n"
	        "The corral management server: fleet CA, enrollment, signed-policy distribution\n"
	        "(long-poll), event ingestion and the admin API, over HTTPS on one listener.\n\n"
	        "  --data-dir DIR     CA, TLS certificate, database and admin.token live here\n"
	        "  --listen ADDR:PORT address to listen on (127.0.0.1:8443, [::1]:8443)\n"
	        "  --hostname NAME    extra DNS name in the server certificate (first start)\n"
	        "  --config FILE      JSON settings (see docs/server.md)\n"
	        "  --database URL     postgresql://... to share one database between replicas\n"
	        "                     (docs/scaling.md); default SQLite in DIR/server.db\n"
	        "  --help, --version\n");
}

/* libmicrohttpd's diagnostics (a client's failed TLS handshake, ...) at debug level: they are
 * about clients, and a misbehaving client must not be able to flood the log. */
__attribute__((format(printf, 2, 0))) static void http_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("http: %s", buf);
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"data-dir", required_argument, NULL, 'd'},
	        {"listen", required_argument, NULL, 'l'},
	        {"hostname", required_argument, NULL, 'n'},
	        {"config", required_argument, NULL, 'c'},
	        {"database", required_argument, NULL, 'D'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	struct srv_config cfg = {0};
	srv_config_defaults(&cfg);
	const char *listen = NULL, *config = NULL, *database = NULL;
	log_setup("corral-server", LOG_LEVEL_INFO);
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'd':
			if (strlen(optarg) >= sizeof(cfg.data_dir)) {
				log_err("--data-dir is too long");
				return 2;
			}
			snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", optarg);
			break;
		case 'l':
			listen = optarg;
			break;
		case 'n':
			snprintf(cfg.hostname, sizeof(cfg.hostname), "%s", optarg);
			break;
		case 'c':
			config = optarg;
			break;
		case 'D':
			database = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("corral-server %s\n", CORRAL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !cfg.data_dir[0] || !listen) {
		usage(stderr);
		return 2;
	}
	if (srv_parse_listen(listen, cfg.listen_host, sizeof(cfg.listen_host), &cfg.port) < 0) {
		log_err("--listen %s: expected ADDR:PORT", listen);
		return 2;
	}
	char err[512] = "";
	if (config && srv_config_load(config, &cfg, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return 2;
	}
	/* The command line wins over the config file. */
	if (database) {
		if (strlen(database) >= sizeof(cfg.database)) {
			log_err("--database is too long");
			return 2;
		}
		snprintf(cfg.database, sizeof(cfg.database), "%s", database);
	}
	log_setup("corral-server", cfg.log_level);
	cfg.http_log = http_log;
	raise_nofile();

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	struct srv *s = NULL;
	bool created = false;
	int r = srv_new(&cfg, &s, &created, err, sizeof(err));
	if (r < 0) {
		log_err("%s", err);
		return 1;
	}
	if (created)
		log_info("first start: wrote the initial admin token to %s/admin.token",
		         cfg.data_dir);
	log_info("listening on https://%s:%u (data in %s)", cfg.listen_host, srv_port(s),
	         cfg.data_dir);
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0 || sig == SIGTERM || sig == SIGINT) {
			log_info("signal %d: shutting down", sig);
			break;
		}
	}
	srv_shutdown(s, 5000);
	srv_free(s);
	log_info("stopped");
	return 0;
}
