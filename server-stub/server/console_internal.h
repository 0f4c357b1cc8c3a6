/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The web console inside corral-server: console.c serves the embedded static assets with
 * strict security headers and routes console requests; console_api.c answers the console's
 * aggregation and pagination endpoints (/api/v1/console/..., /api/v1/changes) and /metrics.
 * server.c calls srv_console_owns()/srv_console_dispatch() before its own routing.
 */
#pragma once

#include "srv_internal.h"
#include "store_console.h"

/* True when `url` belongs to the console: its assets, its API paths, /metrics. */
bool srv_console_owns(const char *url);

/* Handles a request srv_console_owns() claimed. */
enum MHD_Result srv_console_dispatch(struct srv *s, struct MHD_Connection *c, struct srv_req *req,
                                     const char *method, const char *url);

/* Console API (console_api.c): url starts with "/api/v1/". */
enum MHD_Result srv_console_api_handle(struct srv *s, struct MHD_Connection *c, struct srv_req *req,
                                       const char *method, const char *url);

/* Prometheus text exposition at /metrics (console_api.c). */
enum MHD_Result srv_console_metrics(struct srv *s, struct MHD_Connection *c, const char *method);

/*
 * Queues a response with the console's headers (no caching, nosniff, CSP, no referrer,
 * no framing). `body` is copied. Optional `disposition` sets Content-Disposition.
 */
enum MHD_Result srv_console_reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                                  const void *body, size_t len, const char *disposition);
