// SPDX-License-Identifier: Apache-2.0
/*
 * Storage backend selection: the only code that maps a --database URL to a backend, so the
 * rest of corral-server never knows whether it talks to SQLite or PostgreSQL.
 */
#include "store.h"

#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool srv_store_url_is_shared(const char *url)
{
	return url &&
	       (util_startswith(url, "postgresql://") || util_startswith(url, "postgres://"));
}

int srv_store_open(const char *url, const char *data_dir, struct srv_store **ret, char *err,
                   size_t errlen)
{
	if (!url || !url[0] || strcmp(url, "sqlite") == 0) {
		_cleanup_free_ char *path = NULL;
		if (asprintf(&path, "%s/server.db", data_dir) < 0)
			return -ENOMEM;
		return srv_store_sqlite_open(path, ret, err, errlen);
	}
	if (util_startswith(url, "sqlite:") && url[strlen("sqlite:")])
		return srv_store_sqlite_open(url + strlen("sqlite:"), ret, err, errlen);
	if (srv_store_url_is_shared(url)) {
#ifdef CORRAL_WITH_POSTGRES
		return srv_store_pg_open(url, ret, err, errlen);
#else
		snprintf(err, errlen, "this corral-server was built without PostgreSQL support");
		return -EPROTONOSUPPORT;
#endif
	}
	snprintf(err, errlen, "unknown database URL (expected sqlite:PATH or postgresql://...)");
	return -EINVAL;
}
