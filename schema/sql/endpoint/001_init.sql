-- SPDX-License-Identifier: Apache-2.0
-- corrald's database: identity, trust, policy cache, outbox. Applied by lib/db at open.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;
