-- SPDX-License-Identifier: Apache-2.0
-- Web console read model, PostgreSQL backend (same tables as schema/sql/server/002_console.sql).
-- Derived data only: every row here can be rebuilt from `events`.

-- The SQLite backend queues new violations with a trigger on `events` (console_pending); the
-- PostgreSQL backend does not implement the console's read model yet (store_pg.c answers the
-- console's aggregation calls with EOPNOTSUPP), so it adds no per-row trigger to the ingest
-- path. The tables exist so that the schema versions match.
CREATE TABLE console_pending (
	device  BIGINT NOT NULL,
	seq     BIGINT NOT NULL,
	time_ms BIGINT NOT NULL,
	PRIMARY KEY (device, seq)
);

CREATE TABLE console_violations (
	device         BIGINT NOT NULL,
	seq            BIGINT NOT NULL,
	time_ms        BIGINT NOT NULL,
	vkind          INTEGER NOT NULL,
	profile        TEXT NOT NULL,
	user_name      TEXT NOT NULL,
	session        TEXT NOT NULL,
	policy_version BIGINT NOT NULL,
	PRIMARY KEY (device, seq)
);
CREATE INDEX console_violations_time ON console_violations(time_ms);
CREATE INDEX console_violations_kind ON console_violations(vkind, time_ms);
CREATE INDEX console_violations_profile ON console_violations(profile, time_ms);
CREATE INDEX console_violations_user ON console_violations(user_name, time_ms);
CREATE INDEX console_violations_device ON console_violations(device, time_ms);

CREATE TABLE console_vhour (
	hour_ms   BIGINT NOT NULL,
	vkind     INTEGER NOT NULL,
	profile   TEXT NOT NULL,
	user_name TEXT NOT NULL,
	n         BIGINT NOT NULL,
	PRIMARY KEY (hour_ms, vkind, profile, user_name)
);

CREATE TABLE console_devices (
	device            BIGINT PRIMARY KEY,
	violations        BIGINT NOT NULL DEFAULT 0,
	last_violation_ms BIGINT NOT NULL DEFAULT 0,
	reject_version    BIGINT NOT NULL DEFAULT 0,
	reject_reason     TEXT NOT NULL DEFAULT '',
	reject_ms         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX console_devices_violations ON console_devices(violations);
