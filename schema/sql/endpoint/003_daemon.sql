-- SPDX-License-Identifier: Apache-2.0
-- corrald: identity, enrollment, outbox (endpoint/corrald).

-- Device identity and enrollment state; one row per key. Keys: device_id, server_url,
-- certificate_pem, ca_chain_pem, certificate_expires_at, groups (newline separated),
-- enrolled_at, last_sync_ms.
CREATE TABLE device (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
) STRICT;

-- Durable event outbox. `seq` is the per-device sequence number, assigned once when the event
-- is written and never reused (AUTOINCREMENT would also work; the counter in outbox_state is
-- kept explicitly so that it survives the table becoming empty and rows being dropped).
-- `class` orders what is dropped first when the outbox is full: 0 heartbeat/routine,
-- 1 session, 2 violation, 3 other (policy, health, dropped: never dropped).
CREATE TABLE outbox (
	seq     INTEGER PRIMARY KEY,
	kind    INTEGER NOT NULL,
	class   INTEGER NOT NULL,
	time_ms INTEGER NOT NULL,
	body    BLOB NOT NULL
) STRICT;
CREATE INDEX outbox_class ON outbox (class, seq);

CREATE TABLE outbox_state (
	id            INTEGER PRIMARY KEY CHECK (id = 1),
	next_seq      INTEGER NOT NULL,
	acked_seq     INTEGER NOT NULL,
	bytes         INTEGER NOT NULL,
	count         INTEGER NOT NULL,
	drop_heartbeats INTEGER NOT NULL,
	drop_sessions   INTEGER NOT NULL,
	drop_violations INTEGER NOT NULL,
	drop_other      INTEGER NOT NULL
) STRICT;
INSERT INTO outbox_state VALUES (1, 1, 0, 0, 0, 0, 0, 0, 0);

-- The last few events (acknowledged or not) for `corral events`; trimmed on every append.
CREATE TABLE recent (
	seq  INTEGER PRIMARY KEY,
	body BLOB NOT NULL
) STRICT;
