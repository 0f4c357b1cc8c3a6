// SPDX-License-Identifier: Apache-2.0
/*
 * Serves the web console's static files (embedded at build time, corral_console_assets) over
 * corral-server's HTTPS listener, and routes the console's API paths to console_api.c.
 *
 * Every response carries a strict Content-Security-Policy (only same-origin scripts, styles
 * and connections; no inline script or style, no framing, no plugins), nosniff, no referrer
 * and no caching of API data. The console authenticates with the admin bearer token in the
 * Authorization header and never with cookies, so a cross-site request carries no credential
 * (CSRF-safe by construction).
 */
#include "console_internal.h"

#include "console_assets.h"
#include "util.h"

#include <string.h>

#define CONSOLE_CSP                                                                       \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "    \
	"frame-ancestors 'none'"

enum MHD_Result srv_console_reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                                  const void *body, size_t len, const char *disposition)
{
	struct MHD_Response *resp =
	        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(resp, "Content-Security-Policy", CONSOLE_CSP);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
	MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (disposition)
		MHD_add_response_header(resp, "Content-Disposition", disposition);
	enum MHD_Result r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return r;
}

bool srv_console_owns(const char *url)
{
	if (util_startswith(url, "/api/v1/console/") || strcmp(url, "/api/v1/changes") == 0 ||
	    strcmp(url, "/metrics") == 0)
		return true;
	/* Everything outside the two APIs is the console's (assets, or its 404). */
	return !util_startswith(url, "/v1/") && !util_startswith(url, "/api/");
}

static enum MHD_Result serve_asset(struct MHD_Connection *c, const char *method, const char *url)
{
	bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && !head) {
		static const char msg[] = "method not allowed\n";
		return srv_console_reply(c, 405, "text/plain; charset=utf-8", msg, sizeof(msg) - 1,
		                         NULL);
	}
	const unsigned char *data;
	size_t len;
	const char *ctype;
	if (console_asset_find(url, &data, &len, &ctype) < 0) {
		static const char msg[] = "not found\n";
		return srv_console_reply(c, 404, "text/plain; charset=utf-8", msg, sizeof(msg) - 1,
		                         NULL);
	}
	/* MHD sends the headers (with the right Content-Length) and no body for HEAD. */
	return srv_console_reply(c, 200, ctype, data, len, NULL);
}

enum MHD_Result srv_console_dispatch(struct srv *s, struct MHD_Connection *c, struct srv_req *req,
                                     const char *method, const char *url)
{
	if (strcmp(url, "/metrics") == 0)
		return srv_console_metrics(s, c, method);
	if (util_startswith(url, "/api/v1/"))
		return srv_console_api_handle(s, c, req, method, url);
	return serve_asset(c, method, url);
}
