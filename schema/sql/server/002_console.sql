-- SPDX-License-Identifier: Apache-2.0
-- Web console read model (server-stub/server/store_sqlite_console.c). Derived data only: every
-- row here can be rebuilt from `events`. The device API's insert path is untouched except for
-- the trigger below, which queues new violations and policy rejections; the console decodes
-- the queue (and fills these tables) before each of its queries.

-- Events not yet folded into the read model (exact: no clock-based watermark).
CREATE TABLE console_pending (
	device INTEGER NOT NULL,
	seq    INTEGER NOT NULL,
	PRIMARY KEY (device, seq)
) STRICT, WITHOUT ROWID;
-- Kinds: 1 = EVENT_KIND_VIOLATION, 5 = EVENT_KIND_POLICY_REJECTED (proto/corral.proto).
CREATE TRIGGER console_queue AFTER INSERT ON events WHEN NEW.kind IN (1, 5)
BEGIN
	INSERT OR IGNORE INTO console_pending(device, seq) VALUES (NEW.device, NEW.seq);
END;
-- A database upgraded to this version folds in what it already holds.
INSERT INTO console_pending(device, seq) SELECT device, seq FROM events WHERE kind IN (1, 5);

-- One row per violation event, with the fields the console filters and groups by.
CREATE TABLE console_violations (
	device         INTEGER NOT NULL,
	seq            INTEGER NOT NULL,
	time_ms        INTEGER NOT NULL,
	vkind          INTEGER NOT NULL,
	profile        TEXT NOT NULL,
	user_name      TEXT NOT NULL,
	session        TEXT NOT NULL,
	policy_version INTEGER NOT NULL,
	PRIMARY KEY (device, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX console_violations_time ON console_violations(time_ms);
CREATE INDEX console_violations_kind ON console_violations(vkind, time_ms);
CREATE INDEX console_violations_profile ON console_violations(profile, time_ms);
CREATE INDEX console_violations_user ON console_violations(user_name, time_ms);
CREATE INDEX console_violations_device ON console_violations(device, time_ms);

-- Hourly rollup for charts and breakdowns: small whatever the number of events.
CREATE TABLE console_vhour (
	hour_ms   INTEGER NOT NULL,
	vkind     INTEGER NOT NULL,
	profile   TEXT NOT NULL,
	user_name TEXT NOT NULL,
	n         INTEGER NOT NULL,
	PRIMARY KEY (hour_ms, vkind, profile, user_name)
) STRICT, WITHOUT ROWID;

-- Per-device counters and the newest policy rejection (for the "failing apply" state).
CREATE TABLE console_devices (
	device            INTEGER PRIMARY KEY,
	violations        INTEGER NOT NULL DEFAULT 0,
	last_violation_ms INTEGER NOT NULL DEFAULT 0,
	reject_version    INTEGER NOT NULL DEFAULT 0,
	reject_reason     TEXT NOT NULL DEFAULT '',
	reject_ms         INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX console_devices_violations ON console_devices(violations);
