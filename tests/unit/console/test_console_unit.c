// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the console's building blocks that need no server: the embedded asset table
 * (console_asset_find) and the descriptor-driven event renderer (srv_console_event_json).
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

static const struct harness_test tests[] = {
        {"asset_find", test_asset_find},
        {"event_json", test_event_json},
        {"message_json_repeated", test_message_json_repeated},
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
