// SPDX-License-Identifier: Apache-2.0
/*
 * Durability of corrald's reporting against the real corral-server: 100 times, corrald is
 * killed with SIGKILL at a random moment while a client makes it generate synthetic events
 * (test hook) and it uploads them; then 30 times the server is killed with SIGKILL and
 * restarted while the device keeps generating and uploading. After a clean run the server
 * must hold every event the device ever sequenced exactly once: the count equals the highest
 * sequence number, with no gap and no duplicate, and it matches the device's own counter.
 */
#include "cleanup.h"
#include "fixture.h"
#include "harness.h"
#include "trust.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEVICE_KILLS 100
#define SERVER_KILLS 100 /* "the same" as the device kills (issue 5) */

static char *g_dir;
static struct fx_server g_srv;
static struct fx_daemon g_d;
static char g_devdir[700];
static const char *g_args[32];

static int suite_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	g_dir = harness_mkdtemp("endpoint-durability");
	return g_dir ? 0 : -1;
}

static int suite_cleanup(void)
{
	if (g_d.pid > 0)
		fx_daemon_stop(&g_d, SIGKILL);
	fx_server_stop(&g_srv, false);
	if (!getenv("CORRAL_KEEP_TMP"))
		harness_rm_rf(g_dir);
	free(g_dir);
	curl_global_cleanup();
	return 0;
}

/* A child that keeps asking the daemon for synthetic events until the daemon dies. */
static pid_t start_generator(void)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	for (;;) {
		Corral__TestGenerateRequest tg = CORRAL__TEST_GENERATE_REQUEST__INIT;
		tg.count = 1 + (uint32_t)(random() % 20);
		Corral__IpcRequest rq = CORRAL__IPC_REQUEST__INIT;
		rq.body_case = CORRAL__IPC_REQUEST__BODY_TEST_GENERATE;
		rq.test_generate = &tg;
		Corral__IpcResponse *resp = fx_ipc(&g_d, &rq);
		if (!resp)
			_exit(0);
		corral__ipc_response__free_unpacked(resp, NULL);
	}
}

static void stop_generator(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int device_counters(uint64_t *next_seq, uint64_t *acked)
{
	char path[800];
	snprintf(path, sizeof(path), "%s/data/corrald.db", g_devdir);
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	sqlite3_stmt *st = NULL;
	int r = -1;
	if (sqlite3_prepare_v2(db, "SELECT next_seq, acked_seq FROM outbox_state", -1, &st, NULL) ==
	            SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*next_seq = (uint64_t)sqlite3_column_int64(st, 0);
		*acked = (uint64_t)sqlite3_column_int64(st, 1);
		r = 0;
	}
	sqlite3_finalize(st);
	sqlite3_close_v2(db);
	return r;
}

static int server_counts(const char *device_id, uint64_t *count, uint64_t *distinct, uint64_t *max)
{
	char path[800];
	snprintf(path, sizeof(path), "%s/srv/server.db", g_dir);
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	sqlite3_stmt *st = NULL;
	int r = -1;
	if (sqlite3_prepare_v2(db,
	                       "SELECT count(*), count(DISTINCT seq), coalesce(max(seq), 0) "
	                       "FROM events WHERE device = "
	                       "(SELECT id FROM devices WHERE device_id = ?)",
	                       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, device_id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			*count = (uint64_t)sqlite3_column_int64(st, 0);
			*distinct = (uint64_t)sqlite3_column_int64(st, 1);
			*max = (uint64_t)sqlite3_column_int64(st, 2);
			r = 0;
		}
	}
	sqlite3_finalize(st);
	sqlite3_close_v2(db);
	return r;
}

static void test_kill9_exactly_once(void)
{
	if (fx_server_start(&g_srv, g_dir, 0) < 0)
		HARNESS_SKIP("corral-server did not start");
	srandom((unsigned)util_now_ms());
	CU_ASSERT_FATAL(fx_admin(&g_srv, "POST", "groups", "{\"name\":\"eng\"}", NULL) == 201);
	struct trust_key *root = NULL, *signer = NULL;
	CU_ASSERT_FATAL(trust_key_generate(&root) == 0 && trust_key_generate(&signer) == 0);
	_cleanup_free_ uint8_t *env = NULL;
	size_t len = 0;
	CU_ASSERT_FATAL(fx_make_root(1, &root, 1, &signer, 1, &root, 1, &env, &len) == 0);
	trust_key_free(root);
	trust_key_free(signer);
	CU_ASSERT_FATAL(fx_admin_upload(&g_srv, "trust", env, len) == 200);
	snprintf(g_devdir, sizeof(g_devdir), "%s/dev", g_dir);
	CU_ASSERT_FATAL(mkdir(g_devdir, 0700) == 0);
	char rootp[800], tokp[800], url[128], ca[800];
	CU_ASSERT_FATAL(fx_write(g_devdir, "root.tr", env, len, rootp, sizeof(rootp)) == 0);
	_cleanup_free_ char *token = fx_enroll_token(&g_srv, "eng");
	CU_ASSERT_FATAL(token != NULL);
	CU_ASSERT_FATAL(fx_write(g_devdir, "token", token, strlen(token), tokp, sizeof(tokp)) == 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%u", g_srv.port);
	snprintf(ca, sizeof(ca), "%s/srv/ca.pem", g_dir);
	/* killed -9 on purpose and its data directory removed: it must not enable kernel audit
	 * (fsaudit's undo lives in that directory) */
	const char *args[] = {"--landlock-audit",
	                      "off",
	                      "--server-url",
	                      url,
	                      "--server-ca-file",
	                      ca,
	                      "--enroll-token-file",
	                      tokp,
	                      "--trust",
	                      rootp,
	                      "--poll-wait",
	                      "20",
	                      "--backoff-max",
	                      "1s",
	                      "--test-hooks",
	                      "--log-level",
	                      "warn",
	                      NULL};
	memcpy(g_args, args, sizeof(args));
	CU_ASSERT_FATAL(fx_daemon_start(&g_d, g_devdir, g_args) == 0);
	CU_ASSERT_FATAL(fx_wait_status_true(&g_d, "enrolled", 10000) >= 0);
	json_t *st = fx_status(&g_d);
	char device_id[128];
	snprintf(device_id, sizeof(device_id), "%s",
	         json_string_value(json_object_get(st, "device_id")));
	json_decref(st);

	/* Phase 1: the daemon dies at random points of generating and uploading. */
	unsigned restarts = 0;
	for (int i = 0; i < DEVICE_KILLS; i++) {
		if (g_d.pid <= 0) {
			CU_ASSERT_FATAL(fx_daemon_start(&g_d, g_devdir, g_args) == 0);
			restarts++;
		}
		pid_t gen = start_generator();
		usleep((useconds_t)(random() % 120000));
		fx_daemon_stop(&g_d, SIGKILL);
		stop_generator(gen);
	}
	CU_ASSERT_EQUAL(restarts, DEVICE_KILLS - 1);

	/* Phase 2: the server dies instead, while the device generates and uploads. */
	unsigned port = g_srv.port;
	CU_ASSERT_FATAL(fx_daemon_start(&g_d, g_devdir, g_args) == 0);
	for (int i = 0; i < SERVER_KILLS; i++) {
		pid_t gen = start_generator();
		usleep((useconds_t)(random() % 150000));
		fx_server_stop(&g_srv, true);
		stop_generator(gen);
		CU_ASSERT_FATAL(fx_server_start(&g_srv, g_dir, port) == 0);
	}

	/* Clean run: everything drains; then compare both sides. */
	long ms = fx_wait_status_int(&g_d, "outbox_depth", 0, 30000);
	CU_ASSERT(ms >= 0);
	CU_ASSERT_EQUAL(fx_daemon_stop(&g_d, SIGKILL), 128 + SIGKILL); /* no stop event after */
	uint64_t next_seq = 0, acked = 0, count = 0, distinct = 0, max = 0;
	CU_ASSERT_FATAL(device_counters(&next_seq, &acked) == 0);
	CU_ASSERT_FATAL(server_counts(device_id, &count, &distinct, &max) == 0);
	printf("\n  device sequenced %llu events, acked %llu; server holds %llu (distinct %llu, "
	       "max seq %llu)\n",
	       (unsigned long long)(next_seq - 1), (unsigned long long)acked,
	       (unsigned long long)count, (unsigned long long)distinct, (unsigned long long)max);
	CU_ASSERT(next_seq > 1000); /* the run really generated events */
	CU_ASSERT_EQUAL(acked, next_seq - 1);
	CU_ASSERT_EQUAL(max, next_seq - 1);
	CU_ASSERT_EQUAL(count, max);      /* no gap: 1..max all there */
	CU_ASSERT_EQUAL(distinct, count); /* no duplicate */
}

static const struct harness_test tests[] = {
        {"kill9_exactly_once", test_kill9_exactly_once},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"endpoint_durability", suite_init, suite_cleanup, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
