// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of corrald's configuration parser: defaults, every value type, file:line errors,
 * drop-in ordering, the size cap and the validation of key combinations.
 */
#include "config.h"
#include "harness.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "we");
	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
}

static int parse(struct cd_config *cfg, const char *text, char *err, size_t errlen)
{
	return cd_config_parse(cfg, "test.conf", text, strlen(text), err, errlen);
}

static void test_defaults(void)
{
	struct cd_config cfg;
	CU_ASSERT_EQUAL_FATAL(cd_config_init(&cfg), 0);
	CU_ASSERT_STRING_EQUAL(cfg.data_dir, "/var/lib/corral");
	CU_ASSERT_STRING_EQUAL(cfg.socket, "/run/corral/corrald.sock");
	CU_ASSERT_EQUAL(cfg.heartbeat_interval, 300);
	CU_ASSERT_EQUAL(cfg.outbox_max_bytes, 50ull << 20);
	CU_ASSERT_EQUAL(cfg.outbox_max_events, 200000);
	CU_ASSERT_FALSE(cfg.offline);
	CU_ASSERT_TRUE(cfg.landlock_audit); /* auto */
	CU_ASSERT_PTR_NULL(cfg.server_url);
	cd_config_free(&cfg);
	cd_config_free(&cfg); /* idempotent on a zeroed struct */
}

static void test_parse_all_types(void)
{
	struct cd_config cfg;
	char err[256] = "";
	CU_ASSERT_EQUAL_FATAL(cd_config_init(&cfg), 0);
	const char *text = "# comment\n"
	                   "\n"
	                   "server_url = https://127.0.0.1:8443\n"
	                   "  data_dir=/tmp/x  \r\n"
	                   "socket = /tmp/x/s.sock\n"
	                   "groups = eng, ops ,qa\n"
	                   "offline = yes\n"
	                   "device_id = dev-1.a_b\n"
	                   "log_level = debug\n"
	                   "heartbeat_interval = 2m\n"
	                   "poll_wait = 30\n"
	                   "backoff_max = 1h\n"
	                   "outbox_max_bytes = 1M\n"
	                   "outbox_max_events = 1000\n"
	                   "worker_user = corral\n"
	                   "egress_resolver = 192.0.2.53:5353\n"
	                   "egress_allow_private = 10.0.0.0/8,2001:db8::/32\n"
	                   "landlock_audit = off\n"
	                   "trust_root_file = /etc/corral/root.json\n"
	                   "enroll_token_file = /etc/corral/token"; /* no final newline */
	int r = parse(&cfg, text, err, sizeof(err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_STRING_EQUAL(cfg.server_url, "https://127.0.0.1:8443");
	CU_ASSERT_STRING_EQUAL(cfg.data_dir, "/tmp/x");
	CU_ASSERT_EQUAL_FATAL(cfg.n_groups, 3);
	CU_ASSERT_STRING_EQUAL(cfg.groups[0], "eng");
	CU_ASSERT_STRING_EQUAL(cfg.groups[1], "ops");
	CU_ASSERT_STRING_EQUAL(cfg.groups[2], "qa");
	CU_ASSERT_TRUE(cfg.offline);
	CU_ASSERT_STRING_EQUAL(cfg.device_id, "dev-1.a_b");
	CU_ASSERT_EQUAL(cfg.log_level, LOG_LEVEL_DEBUG);
	CU_ASSERT_EQUAL(cfg.heartbeat_interval, 120);
	CU_ASSERT_EQUAL(cfg.poll_wait, 30);
	CU_ASSERT_EQUAL(cfg.backoff_max, 3600);
	CU_ASSERT_EQUAL(cfg.outbox_max_bytes, 1u << 20);
	CU_ASSERT_EQUAL(cfg.outbox_max_events, 1000);
	CU_ASSERT_STRING_EQUAL(cfg.worker_user, "corral");
	CU_ASSERT_STRING_EQUAL(cfg.egress_resolver, "192.0.2.53:5353");
	CU_ASSERT_STRING_EQUAL(cfg.egress_allow_private, "10.0.0.0/8,2001:db8::/32");
	CU_ASSERT_FALSE(cfg.landlock_audit);
	CU_ASSERT_EQUAL(cd_config_set(&cfg, "landlock-audit", "auto", err, sizeof(err)), 0);
	CU_ASSERT_TRUE(cfg.landlock_audit);
	/* bad values for the egress keys name the key and why */
	static const struct {
		const char *key, *value, *expect;
	} bad[] = {
	        {"egress_resolver", "dns.example", "not an IPv4 address"},
	        {"egress_resolver", "192.0.2.53:0", "not an IPv4 address"},
	        {"egress_resolver", "192.0.2.53:70000", "not an IPv4 address"},
	        {"egress_resolver", "2001:db8::1", "not an IPv4 address"},
	        {"egress_allow_private", "10.0.0.0", "not a CIDR"},
	        {"egress_allow_private", "10.0.0.0/33", "not a CIDR"},
	        {"egress_allow_private", "10.0.0.0/8,,", "empty or overlong"},
	        {"egress_allow_private", "bogus/8", "not a CIDR"},
	        {"landlock_audit", "yes", "is not auto or off"},
	        {"landlock_audit", "AUTO", "is not auto or off"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CU_ASSERT_EQUAL(cd_config_set(&cfg, bad[i].key, bad[i].value, err, sizeof(err)),
		                -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].expect));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].key));
	}
	CU_ASSERT_STRING_EQUAL(cfg.enroll_token_file, "/etc/corral/token");
	/* later assignment wins and replaces the group list */
	CU_ASSERT_EQUAL(cd_config_set(&cfg, "groups", "x", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.n_groups, 1);
	/* dashes as in flags */
	CU_ASSERT_EQUAL(cd_config_set(&cfg, "server-url", "https://h", err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.server_url, "https://h");
	cd_config_free(&cfg);
}

struct bad_case {
	const char *text;
	const char *expect; /* substring of the error */
};

static void test_errors_name_file_and_line(void)
{
	static const struct bad_case cases[] = {
	        {"\n\nbogus = 1\n", "test.conf:3: unknown key 'bogus'"},
	        {"offline\n", "test.conf:1: expected 'key = value'"},
	        {" = 3\n", "test.conf:1: missing key"},
	        {"offline = maybe\n", "test.conf:1: offline: 'maybe' is not a boolean"},
	        {"server_url = http://x\n", "is not an https:// URL"},
	        {"server_url = https://\n", "is not an https:// URL"},
	        {"server_url = https://a b\n", "is not an https:// URL"},
	        {"data_dir = relative\n", "data_dir: 'relative' is not an absolute path"},
	        {"data_dir =\n", "data_dir: empty value"},
	        {"groups = a, ,b\n", "groups:"},
	        {"groups = a/b\n", "may contain only"},
	        {"groups = ,\n", "empty group list"},
	        {"device_id = a b\n", "may contain only"},
	        {"log_level = loud\n", "not one of error"},
	        {"heartbeat_interval = 1s\n", "not a duration between 5s"},
	        {"heartbeat_interval = soon\n", "not a duration"},
	        {"poll_wait = 601\n", "not a duration"},
	        {"outbox_max_bytes = 1\n", "not a size"},
	        {"outbox_max_bytes = lots\n", "not a size"},
	        {"outbox_max_events = -5\n", "not a number"},
	        {"outbox_max_events = 1\n", "not a number"},
	        {"worker_user = Root\n", "not a user name"},
	        {"worker_user = a$b\n", "not a user name"},
	        {"worker_user = abcdefghijklmnopqrstuvwxyz0123456789\n", "not a user name"},
	        {"device_id = "
	         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	         "a"
	         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	         "must be 1-128"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cd_config cfg;
		char err[256] = "";
		CU_ASSERT_EQUAL_FATAL(cd_config_init(&cfg), 0);
		int r = parse(&cfg, cases[i].text, err, sizeof(err));
		CU_ASSERT(r == -EINVAL);
		if (!strstr(err, cases[i].expect)) {
			printf("\ncase %zu: got '%s', want '%s'\n", i, err, cases[i].expect);
			CU_FAIL("error message");
		}
		cd_config_free(&cfg);
	}
}

static void test_line_limits(void)
{
	struct cd_config cfg;
	char err[256] = "";
	CU_ASSERT_EQUAL_FATAL(cd_config_init(&cfg), 0);
	size_t n = CD_CONFIG_LINE_MAX + 10;
	char *big = malloc(n + 1);
	CU_ASSERT_FATAL(big != NULL);
	memset(big, '#', n);
	big[n] = '\0';
	CU_ASSERT_EQUAL(parse(&cfg, big, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "line longer than"));
	free(big);
	const char nul[] = "offline = yes\n# a\0b\n";
	CU_ASSERT_EQUAL(cd_config_parse(&cfg, "n.conf", nul, sizeof(nul) - 1, err, sizeof(err)),
	                -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "n.conf:2: NUL byte"));
	CU_ASSERT_EQUAL(
	        cd_config_parse(&cfg, "n.conf", "", CD_CONFIG_FILE_MAX + 1, err, sizeof(err)),
	        -EFBIG);
	/* unknown key through the set path */
	CU_ASSERT_EQUAL(cd_config_set(&cfg, "nope", "1", err, sizeof(err)), -ENOENT);
	char longkey[100];
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	CU_ASSERT_EQUAL(cd_config_set(&cfg, longkey, "1", err, sizeof(err)), -ENOENT);
	cd_config_free(&cfg);
}

static void test_load_dropins(void)
{
	char *dir = harness_mkdtemp("cfg");
	CU_ASSERT_FATAL(dir != NULL);
	char main_path[4096], dropdir[4096];
	snprintf(main_path, sizeof(main_path), "%s/corrald.conf", dir);
	snprintf(dropdir, sizeof(dropdir), "%s/corrald.conf.d", dir);
	write_file(dir, "corrald.conf",
	           "server_url = https://main\nlog_level = warn\nheartbeat_interval = 60\n");
	CU_ASSERT_EQUAL_FATAL(mkdir(dropdir, 0755), 0);
	write_file(dropdir, "20-b.conf", "server_url = https://twenty\n");
	write_file(dropdir, "10-a.conf", "server_url = https://ten\nlog_level = debug\n");
	write_file(dropdir, "99-ignored.txt", "garbage\n");
	write_file(dropdir, ".hidden.conf", "garbage\n");

	struct cd_config cfg;
	char err[512] = "";
	CU_ASSERT_EQUAL_FATAL(cd_config_init(&cfg), 0);
	CU_ASSERT_EQUAL(cd_config_load(&cfg, main_path, true, dropdir, true, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.server_url, "https://twenty"); /* lexical order, later wins */
	CU_ASSERT_EQUAL(cfg.log_level, LOG_LEVEL_DEBUG);
	CU_ASSERT_EQUAL(cfg.heartbeat_interval, 60);
	cd_config_free(&cfg);

	/* A bad drop-in names its own file and line. */
	write_file(dropdir, "30-c.conf", "\noffline = perhaps\n");
	CU_ASSERT_EQUAL_FATAL(cd_config_init(&cfg), 0);
	CU_ASSERT_EQUAL(cd_config_load(&cfg, main_path, true, dropdir, true, err, sizeof(err)),
	                -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "30-c.conf:2: offline"));
	cd_config_free(&cfg);

	/* Missing files: fine unless named explicitly. */
	char missing[4096];
	snprintf(missing, sizeof(missing), "%s/none.conf", dir);
	CU_ASSERT_EQUAL_FATAL(cd_config_init(&cfg), 0);
	CU_ASSERT_EQUAL(cd_config_load(&cfg, missing, false, missing, false, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cd_config_load(&cfg, missing, true, NULL, false, err, sizeof(err)),
	                -ENOENT);
	CU_ASSERT_EQUAL(cd_config_load(&cfg, NULL, false, missing, true, err, sizeof(err)),
	                -ENOENT);
	/* A directory given as the main file. */
	CU_ASSERT_EQUAL(cd_config_load(&cfg, dir, true, NULL, false, err, sizeof(err)), -EISDIR);
	/* A file given as the drop-in directory. */
	CU_ASSERT_EQUAL(cd_config_load(&cfg, NULL, false, main_path, true, err, sizeof(err)),
	                -ENOTDIR);
	cd_config_free(&cfg);

	/* Size cap on files. */
	char big_path[4096];
	snprintf(big_path, sizeof(big_path), "%s/big.conf", dir);
	int fd = open(big_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(ftruncate(fd, CD_CONFIG_FILE_MAX + 1), 0);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(cd_config_init(&cfg), 0);
	CU_ASSERT_EQUAL(cd_config_load(&cfg, big_path, true, NULL, false, err, sizeof(err)),
	                -EFBIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "larger than"));
	cd_config_free(&cfg);

	/* Too many drop-ins. */
	char many[4096];
	snprintf(many, sizeof(many), "%s/many", dir);
	CU_ASSERT_EQUAL_FATAL(mkdir(many, 0755), 0);
	for (unsigned i = 0; i <= CD_CONFIG_DROPINS_MAX; i++) {
		char name[32];
		snprintf(name, sizeof(name), "%04u.conf", i);
		write_file(many, name, "\n");
	}
	CU_ASSERT_EQUAL_FATAL(cd_config_init(&cfg), 0);
	CU_ASSERT_EQUAL(cd_config_load(&cfg, NULL, false, many, true, err, sizeof(err)), -E2BIG);
	cd_config_free(&cfg);
	harness_rm_rf(dir);
	free(dir);
}

static void test_validate(void)
{
	struct cd_config cfg;
	char err[256] = "";
	CU_ASSERT_EQUAL_FATAL(cd_config_init(&cfg), 0);
	CU_ASSERT_EQUAL(cd_config_validate(&cfg, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "server_url"));
	cfg.offline = true;
	CU_ASSERT_EQUAL(cd_config_validate(&cfg, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "trust_root_file"));
	CU_ASSERT_EQUAL(cd_config_set(&cfg, "trust_root_file", "/r", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cd_config_validate(&cfg, err, sizeof(err)), 0);
	cfg.offline = false;
	CU_ASSERT_EQUAL(cd_config_set(&cfg, "server_url", "https://s", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cd_config_validate(&cfg, err, sizeof(err)), 0);
	free(cfg.socket);
	cfg.socket = NULL;
	CU_ASSERT_EQUAL(cd_config_validate(&cfg, err, sizeof(err)), -EINVAL);
	cd_config_free(&cfg);
	/* the key table documents every key */
	size_t n = 0;
	for (const struct cd_config_key *k = cd_config_keys(); k->name; k++, n++)
		CU_ASSERT_PTR_NOT_NULL(k->help);
	CU_ASSERT(n >= 13);
}

static const struct harness_test config_tests[] = {
        {"defaults", test_defaults},
        {"parse_all_types", test_parse_all_types},
        {"errors_name_file_and_line", test_errors_name_file_and_line},
        {"line_limits", test_line_limits},
        {"load_dropins", test_load_dropins},
        {"validate", test_validate},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"config", NULL, NULL, config_tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
