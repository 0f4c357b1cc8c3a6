// SPDX-License-Identifier: Apache-2.0
/*
 * Lookup in the embedded console asset table. Exact matches only: no path normalisation,
 * no directory traversal to worry about, and nothing outside the table is ever served.
 */
#include "console_assets.h"

#include <errno.h>
#include <string.h>

int console_asset_find(const char *path, const unsigned char **ret_data, size_t *ret_len,
                       const char **ret_content_type)
{
	if (!path || !ret_data || !ret_len || !ret_content_type)
		return -EINVAL;
	if (strcmp(path, "/") == 0)
		path = "/index.html";
	for (const struct console_asset *a = console_assets; a->path; a++) {
		if (strcmp(a->path, path) == 0) {
			*ret_data = a->data;
			*ret_len = a->len;
			*ret_content_type = a->content_type;
			return 0;
		}
	}
	return -ENOENT;
}
