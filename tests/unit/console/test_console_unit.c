// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the console's building blocks that need no server: the embedded asset table
 * (console_asset_find), the descriptor-driven event renderer (srv_console_event_json) and the
 * pieces both storage backends share (state classifier, device JSON, overview tallies).
 */
#include "harness.h"

#include "console_assets.h"
#include "store_console.h"

#include <corral.pb-c.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void test_asset_find(void)
{
	const unsigned char *data = NULL;
	size_t len = 0;
	const char *ctype = NULL;
	CU_ASSERT_EQUAL(console_asset_find("/", &data, &len, &ctype), 0);
	CU_ASSERT_STRING_EQUAL(ctype, "text/html; charset=utf-8");
	CU_ASSERT(len > 100 && memmem(data, len, "app.js", 6) != NULL);
	CU_ASSERT_EQUAL(console_asset_find("/app.js", &data, &len, &ctype), 0);
	CU_ASSERT_STRING_EQUAL(ctype, "text/javascript; charset=utf-8");
	CU_ASSERT_EQUAL(console_asset_find("/style.css", &data, &len, &ctype), 0);
	CU_ASSERT_STRING_EQUAL(ctype, "text/css; charset=utf-8");
	CU_ASSERT_EQUAL(console_asset_find("/favicon.svg", &data, &len, &ctype), 0);
	CU_ASSERT_STRING_EQUAL(ctype, "image/svg+xml");
	/* Exact matches only: no traversal, no normalisation, no case folding. */
	data = NULL;
	CU_ASSERT_EQUAL(console_asset_find("/../app.js", &data, &len, &ctype), -ENOENT);
	CU_ASSERT_EQUAL(console_asset_find("/APP.JS", &data, &len, &ctype), -ENOENT);
	CU_ASSERT_EQUAL(console_asset_find("/app.js/", &data, &len, &ctype), -ENOENT);
	CU_ASSERT_EQUAL(console_asset_find("", &data, &len, &ctype), -ENOENT);
	CU_ASSERT_PTR_NULL(data); /* ret_* untouched on failure */
	CU_ASSERT_EQUAL(console_asset_find(NULL, &data, &len, &ctype), -EINVAL);
	CU_ASSERT_EQUAL(console_asset_find("/", NULL, &len, &ctype), -EINVAL);
	CU_ASSERT_EQUAL(console_asset_find("/", &data, NULL, &ctype), -EINVAL);
	CU_ASSERT_EQUAL(console_asset_find("/", &data, &len, NULL), -EINVAL);
}

static void test_event_json(void)
{
	Corral__Violation v = CORRAL__VIOLATION__INIT;
	v.kind = CORRAL__VIOLATION_KIND__VIOLATION_KIND_NETWORK;
	v.target = (char *)"203.0.113.1:443";
	v.pid = 42;
	v.audit_only = true;
	Corral__Event e = CORRAL__EVENT__INIT;
	e.seq = 7;
	e.time_ms = 1700000000123LL;
	e.kind = CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION;
	e.user = (char *)"alice";
	e.detail_case = CORRAL__EVENT__DETAIL_VIOLATION;
	e.violation = &v;
	size_t len = corral__event__get_packed_size(&e);
	uint8_t *buf = malloc(len);
	CU_ASSERT_FATAL(buf != NULL);
	corral__event__pack(&e, buf);
	json_t *j = srv_console_event_json(buf, len);
	CU_ASSERT_FATAL(j != NULL);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "seq")), 7);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "time_ms")), 1700000000123LL);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "kind")),
	                       "EVENT_KIND_VIOLATION");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "user")), "alice");
	json_t *vj = json_object_get(j, "violation");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(vj, "kind")),
	                       "VIOLATION_KIND_NETWORK");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(vj, "target")), "203.0.113.1:443");
	CU_ASSERT(json_is_true(json_object_get(vj, "audit_only")));
	/* Only the member the oneof names is rendered. */
	CU_ASSERT_PTR_NULL(json_object_get(j, "heartbeat"));
	CU_ASSERT_PTR_NULL(json_object_get(j, "session_start"));
	json_decref(j);
	/* Undecodable bytes: NULL, not a crash. */
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	CU_ASSERT_PTR_NULL(srv_console_event_json(junk, sizeof(junk)));
	free(buf);
}

static void test_message_json_repeated(void)
{
	char *argv[3] = {(char *)"claude", (char *)"--chat", (char *)"x y"};
	Corral__SessionStart s = CORRAL__SESSION_START__INIT;
	s.n_argv = 3;
	s.argv = argv;
	json_t *j = srv_console_message_json(&s.base);
	CU_ASSERT_FATAL(j != NULL);
	json_t *a = json_object_get(j, "argv");
	CU_ASSERT_EQUAL(json_array_size(a), 3);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(a, 2)), "x y");
	CU_ASSERT(json_is_null(json_object_get(j, "requested")));
	json_decref(j);
	j = srv_console_message_json(NULL);
	CU_ASSERT(json_is_null(j));
	json_decref(j);
}

static void test_classify_order(void)
{
	/* First match wins, in the documented order; every later test is masked. */
	CU_ASSERT_EQUAL(srv_console_classify(true, true, true, true, true, true, true),
	                SRV_CONSOLE_REVOKED);
	CU_ASSERT_EQUAL(srv_console_classify(false, true, true, true, true, true, true),
	                SRV_CONSOLE_NOT_SEEN);
	CU_ASSERT_EQUAL(srv_console_classify(false, false, true, true, true, true, true),
	                SRV_CONSOLE_PENDING);
	CU_ASSERT_EQUAL(srv_console_classify(false, false, false, true, true, true, true),
	                SRV_CONSOLE_FAILING);
	CU_ASSERT_EQUAL(srv_console_classify(false, false, false, false, true, true, true),
	                SRV_CONSOLE_STALE);
	CU_ASSERT_EQUAL(srv_console_classify(false, false, false, false, false, true, true),
	                SRV_CONSOLE_OUT_OF_DATE);
	CU_ASSERT_EQUAL(srv_console_classify(false, false, false, false, false, false, true),
	                SRV_CONSOLE_DEGRADED);
	CU_ASSERT_EQUAL(srv_console_classify(false, false, false, false, false, false, false),
	                SRV_CONSOLE_COMPLIANT);
	CU_ASSERT_STRING_EQUAL(srv_console_state_name(SRV_CONSOLE_OUT_OF_DATE), "out-of-date");
	CU_ASSERT_STRING_EQUAL(srv_console_state_name(SRV_CONSOLE_NOT_SEEN), "not-seen");
	CU_ASSERT_STRING_EQUAL(srv_console_state_name(SRV_CONSOLE_STATES), "compliant");
}

static void test_device_json(void)
{
	struct srv_console_device_row row = {.device_id = "d1",
	                                     .features_requested = "{\"seccomp\":true}",
	                                     .features_enforced = "not json",
	                                     .state = "failing",
	                                     .revoked = true,
	                                     .revoked_at = 7,
	                                     .freshness = 9,
	                                     .reject_version = 3,
	                                     .reject_reason = "rollback",
	                                     .reject_ms = 5};
	json_t *j = srv_console_device_json(&row);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "hostname")), "");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "freshness")), "unknown");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "revoked_at")), 7);
	CU_ASSERT(
	        json_is_true(json_object_get(json_object_get(j, "features_requested"), "seccomp")));
	CU_ASSERT(json_is_null(json_object_get(j, "features_enforced")));
	CU_ASSERT_EQUAL(
	        json_integer_value(json_object_get(json_object_get(j, "reject"), "version")), 3);
	json_decref(j);
	/* No rejection, not revoked: neither key. */
	struct srv_console_device_row plain = {.device_id = "d2", .freshness = 1};
	j = srv_console_device_json(&plain);
	CU_ASSERT_PTR_NULL(json_object_get(j, "reject"));
	CU_ASSERT_PTR_NULL(json_object_get(j, "revoked_at"));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "freshness")), "fresh");
	json_decref(j);
}

static void test_overview_tallies(void)
{
	struct srv_console_overview *ov = NULL;
	CU_ASSERT_EQUAL_FATAL(srv_console_overview_new(&ov), 0);
	CU_ASSERT_EQUAL(srv_console_overview_group(ov, "g", 3), 0);
	CU_ASSERT_EQUAL(srv_console_overview_group(ov, "empty", 0), 0);
	/* Out-of-date is decided from the group's head: 2 < 3. */
	CU_ASSERT_EQUAL(
	        srv_console_overview_device(ov, "g", 2, false, false, false, false, false, false),
	        0);
	CU_ASSERT_EQUAL(
	        srv_console_overview_device(ov, "g", 3, false, false, false, false, false, true),
	        0);
	/* Revoked: counted as a state, not in the version distribution. */
	CU_ASSERT_EQUAL(
	        srv_console_overview_device(ov, "g", 1, true, false, false, false, false, true), 0);
	/* A group seen only through a device (no publications). */
	CU_ASSERT_EQUAL(srv_console_overview_device(ov, "late", 0, false, false, false, false,
	                                            false, false),
	                0);
	json_t *j = srv_console_overview_json(ov);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	json_t *st = json_object_get(j, "states");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "out-of-date")), 1);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "degraded")), 1);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "revoked")), 1);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "compliant")), 1);
	CU_ASSERT_EQUAL(json_object_size(st), 8);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "devices_total")), 4);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "degraded_total")), 1);
	json_t *groups = json_object_get(j, "groups");
	CU_ASSERT_EQUAL_FATAL(json_array_size(groups), 3);
	json_t *g = json_array_get(groups, 0);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(g, "group")), "g");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(g, "devices")), 2);
	json_t *vers = json_object_get(g, "versions");
	CU_ASSERT_EQUAL(json_array_size(vers), 2);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_array_get(vers, 0), "version")), 2);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_array_get(groups, 1), "devices")),
	                0);
	CU_ASSERT_STRING_EQUAL(
	        json_string_value(json_object_get(json_array_get(groups, 2), "group")), "late");
	json_decref(j);
	srv_console_overview_free(ov);
	CU_ASSERT_STRING_EQUAL(srv_console_vkind_name(2), "VIOLATION_KIND_SYSCALL");
	CU_ASSERT_STRING_EQUAL(srv_console_vkind_name(999), "VIOLATION_KIND_UNKNOWN");
}

static const struct harness_test tests[] = {
        {"asset_find", test_asset_find},
        {"event_json", test_event_json},
        {"message_json_repeated", test_message_json_repeated},
        {"classify_order", test_classify_order},
        {"device_json", test_device_json},
        {"overview_tallies", test_overview_tallies},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"console_unit", NULL, NULL, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
