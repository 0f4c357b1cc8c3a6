// SPDX-License-Identifier: Apache-2.0
/*
 * Integration test of the web console: starts the real corral-server, fills it with a small
 * fleet through its admin and device APIs (fleet.c), then checks the console's API (numbers,
 * filters, pagination, exports, roles, change counter, /metrics) and its static assets and
 * security headers. The last test drives the real UI in headless Chromium (e2e.mjs, node +
 * playwright-core) and saves screenshots under <build>/tests/console-artifacts; it skips with
 * the reason when chromium, node or playwright-core is missing (tests/integration/console/
 * setup.sh installs them).
 */
#include "fleet.h"
#include "harness.h"

#include "cleanup.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define E2E_TIMEOUT_SEC 240

static struct fleet g_f;
static char *g_dir;

static int suite_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	g_dir = harness_mkdtemp("console-it");
	if (!g_dir || fleet_server_start(&g_f, g_dir) < 0)
		return -1;
	if (fleet_seed(&g_f) < 0) {
		fprintf(stderr, "seeding the fleet failed\n");
		return -1;
	}
	return 0;
}

static int suite_cleanup(void)
{
	fleet_server_stop(&g_f);
	if (getenv("CORRAL_KEEP_TMP") == NULL)
		harness_rm_rf(g_dir);
	free(g_dir);
	curl_global_cleanup();
	return 0;
}

static json_int_t jint(json_t *o, const char *path)
{
	/* "a.b" walks objects. */
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", path);
	json_t *cur = o;
	for (char *save = NULL, *t = strtok_r(buf, ".", &save); t && cur;
	     t = strtok_r(NULL, ".", &save))
		cur = json_object_get(cur, t);
	return json_integer_value(cur);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_assets_and_headers(void)
{
	struct th_response r;
	CU_ASSERT_FATAL(fleet_http(&g_f, "GET", "/", NULL, 0, NULL, NULL, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(util_startswith(r.ctype, "text/html"));
	CU_ASSERT(strstr(r.csp, "default-src 'self'") != NULL);
	CU_ASSERT(strstr(r.csp, "script-src 'self'") != NULL);
	CU_ASSERT(strstr(r.csp, "unsafe-inline") == NULL);
	CU_ASSERT(strstr(r.csp, "frame-ancestors 'none'") != NULL);
	/* No inline script or style in the page itself. */
	CU_ASSERT(r.body && strstr(r.body, "<script src=\"/app.js\"") != NULL);
	CU_ASSERT(r.body && strstr(r.body, "<script>") == NULL &&
	          strstr(r.body, "<style") == NULL && strstr(r.body, "style=") == NULL &&
	          strstr(r.body, "onclick") == NULL);
	th_response_free(&r);
	CU_ASSERT_FATAL(fleet_http(&g_f, "GET", "/app.js", NULL, 0, NULL, NULL, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(util_startswith(r.ctype, "text/javascript"));
	CU_ASSERT(r.body && strstr(r.body, "innerHTML") == NULL);
	th_response_free(&r);
	CU_ASSERT_FATAL(fleet_http(&g_f, "GET", "/chart.js", NULL, 0, NULL, NULL, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	th_response_free(&r);
	CU_ASSERT_FATAL(fleet_http(&g_f, "GET", "/../server.db", NULL, 0, NULL, NULL, NULL, &r) ==
	                0);
	CU_ASSERT_EQUAL(r.status, 404);
	th_response_free(&r);
	CU_ASSERT_FATAL(
	        fleet_http(&g_f, "POST", "/index.html", "x", 1, "text/plain", NULL, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 405);
	th_response_free(&r);
	/* API answers carry the same headers and are never cached. */
	CU_ASSERT_FATAL(fleet_http(&g_f, "GET", "/api/v1/console/overview", NULL, 0, NULL, NULL,
	                           g_f.viewer, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(strstr(r.csp, "default-src 'self'") != NULL);
	th_response_free(&r);
}

static void test_auth_required(void)
{
	static const char *const paths[] = {"console/overview", "console/devices",
	                                    "console/violations", "changes",
	                                    "console/enroll-tokens"};
	for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
		CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", paths[i], NULL, NULL, NULL), 401);
		CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", paths[i], NULL,
		                          "0123456789abcdef.not-the-secret", NULL),
		                401);
	}
	struct th_response r;
	CU_ASSERT_FATAL(fleet_http(&g_f, "GET", "/metrics", NULL, 0, NULL, NULL, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 401);
	th_response_free(&r);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/nosuch", NULL, g_f.viewer, NULL), 404);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "DELETE", "console/devices", NULL, g_f.admin, NULL), 405);
}

static void test_overview_numbers(void)
{
	json_t *j = NULL;
	CU_ASSERT_EQUAL_FATAL(fleet_api(&g_f, "GET", "console/overview", NULL, g_f.viewer, &j),
	                      200);
	CU_ASSERT_EQUAL(jint(j, "devices_total"), 12);
	CU_ASSERT_EQUAL(jint(j, "states.compliant"), 5);
	CU_ASSERT_EQUAL(jint(j, "states.degraded"), 2);
	CU_ASSERT_EQUAL(jint(j, "states.out-of-date"), 1);
	CU_ASSERT_EQUAL(jint(j, "states.failing"), 1);
	CU_ASSERT_EQUAL(jint(j, "states.stale"), 1);
	CU_ASSERT_EQUAL(jint(j, "states.pending"), 1);
	CU_ASSERT_EQUAL(jint(j, "states.revoked"), 1);
	CU_ASSERT_EQUAL(jint(j, "states.not-seen"), 0);
	CU_ASSERT_EQUAL(jint(j, "degraded_total"), 2);
	/* Version distribution: canary has v2 x2 and v1 x2, head 2; prod all v1 but the pending
	 * device (v0) and the revoked one (not counted). */
	json_t *groups = json_object_get(j, "groups");
	CU_ASSERT_EQUAL(json_array_size(groups), 3);
	json_t *canary = json_array_get(groups, 0);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(canary, "group")), "canary");
	CU_ASSERT_EQUAL(jint(canary, "head_version"), 2);
	CU_ASSERT_EQUAL(jint(canary, "devices"), 4);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(canary, "versions")), 2);
	json_t *prod = json_array_get(groups, 1);
	CU_ASSERT_EQUAL(jint(prod, "devices"), 7);
	/* The overview classifies in C, the device list in SQL: they must agree. */
	const char *state;
	json_t *n;
	json_object_foreach (json_object_get(j, "states"), state, n) {
		char path[96];
		json_t *page = NULL;
		snprintf(path, sizeof(path), "console/devices?state=%s", state);
		CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", path, NULL, g_f.viewer, &page), 200);
		CU_ASSERT_EQUAL(jint(page, "total"), json_integer_value(n));
		json_decref(page);
	}
	json_decref(j);
	/* "not seen for N days" with N = 0 days is refused as a parameter and falls back. */
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/overview?days=0", NULL, g_f.viewer, NULL),
	                200);
}

static void test_devices_filters(void)
{
	json_t *j = NULL;
	CU_ASSERT_EQUAL_FATAL(
	        fleet_api(&g_f, "GET", "console/devices?limit=5", NULL, g_f.viewer, &j), 200);
	CU_ASSERT_EQUAL(jint(j, "total"), 12);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "items")), 5);
	json_decref(j);
	CU_ASSERT_EQUAL(
	        fleet_api(&g_f, "GET", "console/devices?limit=5&offset=10", NULL, g_f.viewer, &j),
	        200);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "items")), 2);
	json_decref(j);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/devices?offset=100", NULL, g_f.viewer, &j),
	                200);
	CU_ASSERT_EQUAL(jint(j, "total"), 12);
	json_decref(j);
	CU_ASSERT_EQUAL(
	        fleet_api(&g_f, "GET", "console/devices?state=failing", NULL, g_f.viewer, &j), 200);
	CU_ASSERT_EQUAL(jint(j, "total"), 1);
	json_t *d = json_array_get(json_object_get(j, "items"), 0);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(d, "hostname")), "canary-4");
	CU_ASSERT_EQUAL(jint(d, "reject.version"), 2);
	json_decref(j);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/devices?q=prod-&group=prod&state=compliant",
	                          NULL, g_f.viewer, &j),
	                200);
	CU_ASSERT_EQUAL(jint(j, "total"), 4);
	json_decref(j);
	CU_ASSERT_EQUAL(
	        fleet_api(&g_f, "GET", "console/devices?state=bogus", NULL, g_f.viewer, NULL), 400);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/devices?limit=0", NULL, g_f.viewer, NULL),
	                400);
	CU_ASSERT_EQUAL(
	        fleet_api(&g_f, "GET", "console/devices?limit=5000", NULL, g_f.viewer, NULL), 400);
}

static void test_violations_filters(void)
{
	json_t *j = NULL;
	unsigned total = g_f.violations_total;
	CU_ASSERT_EQUAL(total, 66);
	CU_ASSERT_EQUAL_FATAL(
	        fleet_api(&g_f, "GET", "console/violations?limit=20", NULL, g_f.viewer, &j), 200);
	CU_ASSERT_EQUAL(jint(j, "total"), total);
	json_t *items = json_object_get(j, "items");
	CU_ASSERT_EQUAL(json_array_size(items), 20);
	/* Every field of the event, plus where it came from; newest first. */
	json_t *first = json_array_get(items, 0), *second = json_array_get(items, 1);
	CU_ASSERT(json_object_get(first, "violation") != NULL);
	CU_ASSERT(json_object_get(json_object_get(first, "violation"), "hostname") != NULL);
	CU_ASSERT(json_object_get(first, "session_id") != NULL);
	CU_ASSERT(json_object_get(first, "device_id") != NULL);
	CU_ASSERT(jint(first, "time_ms") >= jint(second, "time_ms"));
	json_decref(j);
	/* Pages do not overlap. */
	json_t *p1 = NULL, *p2 = NULL;
	fleet_api(&g_f, "GET", "console/violations?limit=10", NULL, g_f.viewer, &p1);
	fleet_api(&g_f, "GET", "console/violations?limit=10&offset=10", NULL, g_f.viewer, &p2);
	json_t *a = json_array_get(json_object_get(p1, "items"), 9);
	json_t *b = json_array_get(json_object_get(p2, "items"), 0);
	CU_ASSERT(a && b &&
	          !(jint(a, "seq") == jint(b, "seq") &&
	            strcmp(json_string_value(json_object_get(a, "device_id")),
	                   json_string_value(json_object_get(b, "device_id"))) == 0));
	json_decref(p1);
	json_decref(p2);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/violations?kind=VIOLATION_KIND_NETWORK",
	                          NULL, g_f.viewer, &j),
	                200);
	CU_ASSERT_EQUAL(jint(j, "total"), total / 3);
	json_decref(j);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/violations?user=bob&profile=build", NULL,
	                          g_f.viewer, &j),
	                200);
	CU_ASSERT_EQUAL(jint(j, "total"), total / 2);
	json_decref(j);
	char path[256];
	snprintf(path, sizeof(path), "console/violations?device=%s&kind=2", g_f.dev[0].id);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", path, NULL, g_f.viewer, &j), 200);
	CU_ASSERT_EQUAL(jint(j, "total"), 2);
	json_decref(j);
	snprintf(path, sizeof(path), "console/violations?session=s-%s-1", g_f.dev[0].name);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", path, NULL, g_f.viewer, &j), 200);
	CU_ASSERT_EQUAL(jint(j, "total"), 3);
	json_decref(j);
	snprintf(path, sizeof(path), "console/violations?since=%lld",
	         (long long)util_now_ms() + 60000);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", path, NULL, g_f.viewer, &j), 200);
	CU_ASSERT_EQUAL(jint(j, "total"), 0);
	json_decref(j);
	CU_ASSERT_EQUAL(
	        fleet_api(&g_f, "GET", "console/violations?device=d-unknown", NULL, g_f.viewer, &j),
	        200);
	CU_ASSERT_EQUAL(jint(j, "total"), 0);
	json_decref(j);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/violations?kind=x", NULL, g_f.viewer, NULL),
	                400);
	CU_ASSERT_EQUAL(
	        fleet_api(&g_f, "GET", "console/violations?since=-1", NULL, g_f.viewer, NULL), 400);
}

static void test_violation_stats(void)
{
	json_t *j = NULL;
	char path[128];
	snprintf(path, sizeof(path), "console/violations/stats?since=%lld&bucket=3600000",
	         (long long)util_now_ms() - 86400000);
	CU_ASSERT_EQUAL_FATAL(fleet_api(&g_f, "GET", path, NULL, g_f.viewer, &j), 200);
	CU_ASSERT_EQUAL(jint(j, "total"), g_f.violations_total);
	json_int_t sum = 0;
	size_t i;
	json_t *v;
	json_array_foreach (json_object_get(j, "series"), i, v)
		sum += jint(v, "n");
	CU_ASSERT_EQUAL(sum, g_f.violations_total);
	CU_ASSERT(json_array_size(json_object_get(j, "series")) >= 3);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "by_kind")), 3);
	CU_ASSERT_EQUAL(jint(json_array_get(json_object_get(j, "by_kind"), 0), "n"),
	                g_f.violations_total / 3);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "by_user")), 2);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "by_profile")), 2);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "by_device")), 10);
	json_decref(j);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/violations/stats?bucket=abc", NULL,
	                          g_f.viewer, NULL),
	                400);
}

static void test_exports(void)
{
	struct th_response r;
	CU_ASSERT_FATAL(fleet_http(&g_f, "GET", "/api/v1/console/violations?format=csv", NULL, 0,
	                           NULL, NULL, g_f.viewer, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(util_startswith(r.ctype, "text/csv"));
	CU_ASSERT(strstr(r.disposition, "violations.csv") != NULL);
	/* Header plus one line per violation, all of them (exports are not paged at 50). */
	unsigned lines = 0;
	for (const char *p = r.body; p && (p = strstr(p, "\r\n")); p += 2)
		lines++;
	CU_ASSERT_EQUAL(lines, g_f.violations_total + 1);
	CU_ASSERT(r.body && strstr(r.body, "\"violation.target\"") != NULL);
	/* A formula-looking value is defused. */
	CU_ASSERT(r.body && strstr(r.body, "\"'=HYPERLINK(\"\"http://x\"\")\"") != NULL);
	th_response_free(&r);
	CU_ASSERT_FATAL(fleet_http(&g_f, "GET", "/api/v1/console/devices?format=json", NULL, 0,
	                           NULL, NULL, g_f.viewer, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
	CU_ASSERT(json_is_array(j) && json_array_size(j) == 12);
	json_decref(j);
	th_response_free(&r);
}

static void test_device_and_session(void)
{
	json_t *j = NULL;
	char path[256];
	snprintf(path, sizeof(path), "console/devices/%s", g_f.dev[1].id);
	CU_ASSERT_EQUAL_FATAL(fleet_api(&g_f, "GET", path, NULL, g_f.viewer, &j), 200);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "state")), "degraded");
	CU_ASSERT_EQUAL(jint(j, "features_requested.landlock_abi"), 4);
	CU_ASSERT_EQUAL(jint(j, "features_enforced.landlock_abi"), 0);
	CU_ASSERT_EQUAL(jint(j, "violations"), 6);
	CU_ASSERT(jint(j, "cert_expires_at") > util_now_sec());
	CU_ASSERT(json_array_size(json_object_get(j, "events")) >= 12);
	json_decref(j);
	snprintf(path, sizeof(path), "console/devices/%s/sessions/s-%s-0", g_f.dev[1].id,
	         g_f.dev[1].name);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", path, NULL, g_f.viewer, &j), 200);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "events")), 5); /* start, 3, exit */
	json_decref(j);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/devices/d-nosuch", NULL, g_f.viewer, NULL),
	                404);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/devices/d-nosuch/sessions/x", NULL,
	                          g_f.viewer, NULL),
	                404);
}

static void test_policy_and_bundles(void)
{
	json_t *j = NULL;
	CU_ASSERT_EQUAL_FATAL(fleet_api(&g_f, "GET", "console/policy/canary", NULL, g_f.viewer, &j),
	                      200);
	json_t *hist = json_object_get(j, "history");
	CU_ASSERT_EQUAL(json_array_size(hist), 2);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(json_array_get(hist, 1), "signers")), 2);
	CU_ASSERT_EQUAL(jint(j, "rollout.head_version"), 2);
	CU_ASSERT_EQUAL(jint(j, "rollout.devices_on_head"), 2);
	json_decref(j);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/policy/nosuch", NULL, g_f.viewer, NULL),
	                404);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/bundles/2", NULL, g_f.viewer, &j), 200);
	CU_ASSERT_EQUAL(jint(j, "version"), 2);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "targets")), 3);
	json_t *profiles = json_object_get(json_object_get(j, "source"), "profiles");
	CU_ASSERT_EQUAL(json_array_size(profiles), 2);
	CU_ASSERT(json_object_get(j, "policy") != NULL);
	json_decref(j);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/bundles/99", NULL, g_f.viewer, NULL), 404);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/bundles/x", NULL, g_f.viewer, NULL), 400);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/enroll-tokens", NULL, g_f.viewer, &j), 200);
	CU_ASSERT_EQUAL(json_array_size(j), 2);
	json_decref(j);
}

static void test_promote_roles(void)
{
	const char *body = "{\"from\":\"canary\",\"to\":\"staging\"}";
	json_t *j = NULL;
	CU_ASSERT_EQUAL(fleet_api(&g_f, "POST", "console/promote", body, g_f.viewer, NULL), 403);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "POST", "console/promote", "{}", g_f.admin, NULL), 400);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "POST", "console/promote", "not json", g_f.admin, NULL),
	                400);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "POST", "console/promote",
	                          "{\"from\":\"canary\",\"to\":\"nosuch\"}", g_f.admin, NULL),
	                404);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "POST", "console/promote",
	                          "{\"from\":\"canary\",\"to\":\"canary\"}", g_f.admin, NULL),
	                400);
	CU_ASSERT_EQUAL_FATAL(fleet_api(&g_f, "POST", "console/promote", body, g_f.admin, &j), 200);
	CU_ASSERT_EQUAL(jint(j, "version"), 2);
	json_decref(j);
	/* Promoting again: staging already has v2, the verifier refuses it as a rollback. */
	CU_ASSERT_EQUAL(fleet_api(&g_f, "POST", "console/promote", body, g_f.admin, &j), 422);
	json_decref(j);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "console/policy/staging", NULL, g_f.viewer, &j),
	                200);
	CU_ASSERT_EQUAL(jint(j, "rollout.head_version"), 2);
	json_decref(j);
	/* Audited as the admin who did it. */
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", "audit?limit=1", NULL, g_f.viewer, &j), 200);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(j, 0), "action")),
	                       "policy.promote");
	json_decref(j);
}

static void test_changes_counter(void)
{
	json_t *j = NULL;
	CU_ASSERT_EQUAL_FATAL(fleet_api(&g_f, "GET", "changes", NULL, g_f.viewer, &j), 200);
	json_int_t c1 = jint(j, "counter");
	json_decref(j);
	char path[64];
	snprintf(path, sizeof(path), "changes?since=%lld", (long long)c1);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", path, NULL, g_f.viewer, &j), 200);
	CU_ASSERT(json_is_false(json_object_get(j, "changed")));
	json_decref(j);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "POST", "groups", "{\"name\":\"extra\"}", g_f.admin, NULL),
	                201);
	CU_ASSERT_EQUAL(fleet_api(&g_f, "GET", path, NULL, g_f.viewer, &j), 200);
	CU_ASSERT(json_is_true(json_object_get(j, "changed")));
	CU_ASSERT(jint(j, "counter") > c1);
	json_decref(j);
}

static void test_metrics(void)
{
	struct th_response r;
	CU_ASSERT_FATAL(fleet_http(&g_f, "GET", "/metrics", NULL, 0, NULL, NULL, g_f.viewer, &r) ==
	                0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(util_startswith(r.ctype, "text/plain; version=0.0.4"));
	CU_ASSERT(r.body && strstr(r.body, "corral_devices{state=\"compliant\"} 5\n") != NULL);
	CU_ASSERT(r.body && strstr(r.body, "corral_devices{state=\"revoked\"} 1\n") != NULL);
	CU_ASSERT(r.body && strstr(r.body, "corral_longpolls_open 0\n") != NULL);
	CU_ASSERT(r.body &&
	          strstr(r.body, "# TYPE corral_publish_to_applied_seconds histogram") != NULL);
	/* Eleven devices applied a version published to their group: all in the histogram. */
	CU_ASSERT(r.body && strstr(r.body, "corral_publish_to_applied_seconds_count 11\n") != NULL);
	CU_ASSERT(r.body && strstr(r.body, "corral_events_ingested_total ") != NULL);
	th_response_free(&r);
}

/* ---- the browser ----------------------------------------------------------------------------- */

static void test_browser_e2e(void)
{
	char modules[700], script[700], artifacts[700], cfgpath[700];
	const char *src = harness_source_dir();
	snprintf(script, sizeof(script), "%s/tests/integration/console/e2e.mjs", src);
	snprintf(modules, sizeof(modules),
	         "%s/tests/integration/console/node_modules/playwright-core", src);
	/* The PostgreSQL run (tests/integration/pg) checks the API; the UI is the same code. */
	if (getenv("CORRAL_TEST_DATABASE"))
		HARNESS_SKIP("browser test runs on the SQLite backend only");
	if (access("/usr/bin/chromium", X_OK) != 0)
		HARNESS_SKIP("/usr/bin/chromium missing: run tests/integration/console/setup.sh");
	if (access("/usr/bin/node", X_OK) != 0)
		HARNESS_SKIP("/usr/bin/node missing: run tests/integration/console/setup.sh");
	if (access(modules, R_OK) != 0)
		HARNESS_SKIP(
		        "playwright-core not installed: run tests/integration/console/setup.sh");
	snprintf(artifacts, sizeof(artifacts), "%s/tests/console-artifacts", harness_binary_dir());
	mkdir(artifacts, 0755);
	snprintf(cfgpath, sizeof(cfgpath), "%s/e2e.json", g_dir);
	char url[64];
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/", g_f.port);
	json_t *devs = json_array();
	for (size_t i = 0; i < FLEET_DEVICES; i++)
		json_array_append_new(devs, json_pack("{ss ss ss}", "name", g_f.dev[i].name, "id",
		                                      g_f.dev[i].id, "group", g_f.dev[i].group));
	json_t *cfg = json_pack("{ss ss ss ss ss so si}", "url", url, "admin", g_f.admin, "viewer",
	                        g_f.viewer, "artifacts", artifacts, "profile_dir", g_dir, "devices",
	                        devs, "violations", (int)g_f.violations_total);
	CU_ASSERT_FATAL(cfg && json_dump_file(cfg, cfgpath, 0) == 0);
	json_decref(cfg);
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		execl("/usr/bin/node", "node", script, cfgpath, (char *)NULL);
		_exit(127);
	}
	int st = 0;
	bool done = false;
	for (int i = 0; i < E2E_TIMEOUT_SEC * 10 && !done; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			done = true;
		else
			usleep(100000);
	}
	if (!done) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		fprintf(stderr, "e2e.mjs timed out after %d s\n", E2E_TIMEOUT_SEC);
	}
	CU_ASSERT(done && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	printf("console screenshots: %s\n", artifacts);
}

/* Stops the server: a clean exit 0 (also no sanitizer report in an ASan build). */
static void test_server_clean_exit(void)
{
	CU_ASSERT_EQUAL(fleet_server_stop(&g_f), 0);
}

static const struct harness_test tests[] = {
        {"assets_and_headers", test_assets_and_headers},
        {"auth_required", test_auth_required},
        {"overview_numbers", test_overview_numbers},
        {"devices_filters", test_devices_filters},
        {"violations_filters", test_violations_filters},
        {"violation_stats", test_violation_stats},
        {"exports", test_exports},
        {"device_and_session", test_device_and_session},
        {"policy_and_bundles", test_policy_and_bundles},
        {"promote_roles", test_promote_roles},
        {"changes_counter", test_changes_counter},
        {"metrics", test_metrics},
        /* Last: it revokes a device and promotes canary to prod. */
        {"browser_e2e", test_browser_e2e},
        {"server_clean_exit", test_server_clean_exit},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"console", suite_init, suite_cleanup, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
