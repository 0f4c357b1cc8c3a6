-- SPDX-License-Identifier: Apache-2.0
-- corral-server's database (SQLite backend). Applied by lib/db at open.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;
