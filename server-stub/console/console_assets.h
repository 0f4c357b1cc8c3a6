/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The web console's static files, compiled into the binary (corral_console_assets). The table
 * is generated at build time from server-stub/console/assets/ by embed_assets.cmake; callers
 * use console_asset_find() and never see the table.
 */
#pragma once

#include <stddef.h>

struct console_asset {
	const char *path;         /* "/app.js" */
	const char *content_type; /* from the extension */
	const unsigned char *data;
	size_t len;
};

/* The generated table, terminated by an entry with path NULL. */
extern const struct console_asset console_assets[];

/*
 * Looks up the asset served at `path` ("/" means "/index.html"). On success sets *ret_data,
 * *ret_len and *ret_content_type to static storage (not to be freed) and returns 0; returns
 * -ENOENT for an unknown path and -EINVAL for NULL arguments.
 */
int console_asset_find(const char *path, const unsigned char **ret_data, size_t *ret_len,
                       const char **ret_content_type);
