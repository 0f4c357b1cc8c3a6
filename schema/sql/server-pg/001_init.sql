-- SPDX-License-Identifier: Apache-2.0
-- corral-server's database, PostgreSQL backend: the same schema as schema/sql/server/001_init.sql
-- expressed for PostgreSQL (numbers match). Applied by the runner in
-- server-stub/server/store_pg.c, which records versions in schema_version; only that file runs
-- SQL against it.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE admin_tokens (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
	secret_sha256 BYTEA NOT NULL,
	created_at    BIGINT NOT NULL,
	created_by    TEXT NOT NULL,
	revoked       INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE groups (
	name       TEXT PRIMARY KEY,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL
);

CREATE TABLE enroll_tokens (
	id            TEXT PRIMARY KEY,
	group_name    TEXT NOT NULL REFERENCES groups(name),
	secret_sha256 BYTEA NOT NULL,
	max_uses      BIGINT NOT NULL CHECK (max_uses > 0),
	uses          BIGINT NOT NULL DEFAULT 0,
	expires_at    BIGINT NOT NULL,
	created_at    BIGINT NOT NULL,
	created_by    TEXT NOT NULL
);

CREATE TABLE devices (
	id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	device_id          TEXT NOT NULL UNIQUE,
	group_name         TEXT NOT NULL REFERENCES groups(name),
	hostname           TEXT NOT NULL DEFAULT '',
	agent_version      TEXT NOT NULL DEFAULT '',
	enroll_token_id    TEXT NOT NULL,
	enrolled_at        BIGINT NOT NULL,
	cert_serial        TEXT NOT NULL,
	cert_expires_at    BIGINT NOT NULL,
	revoked_at         BIGINT,
	acked_seq          BIGINT NOT NULL DEFAULT 0,
	last_seen          BIGINT NOT NULL DEFAULT 0,
	heartbeat_at       BIGINT NOT NULL DEFAULT 0,
	policy_version     BIGINT NOT NULL DEFAULT 0,
	trust_root_version BIGINT NOT NULL DEFAULT 0,
	freshness          INTEGER NOT NULL DEFAULT 0,
	kernel_release     TEXT NOT NULL DEFAULT '',
	features_requested TEXT NOT NULL DEFAULT '',
	features_enforced  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX devices_group ON devices(group_name);

-- Idempotent ingest: the unique (device, seq) key of every stored event. `events` cannot hold
-- it (a unique key on a partitioned table must contain the partition key, time_ms, and a device
-- may resend a seq with another time), so the report path inserts here first (ON CONFLICT DO
-- NOTHING) and stores only the events whose key was new. Retention deletes keys with their
-- events; the contiguous-ack watermark is computed from this table.
CREATE TABLE event_keys (
	device  BIGINT NOT NULL,
	seq     BIGINT NOT NULL,
	time_ms BIGINT NOT NULL,
	PRIMARY KEY (device, seq)
);
CREATE INDEX event_keys_time ON event_keys(time_ms);

-- Device events, partitioned by day on the device's event time (time_ms); rows outside every
-- daily partition (a device clock far off) land in events_default, which retention prunes with
-- batched DELETEs.
CREATE TABLE events (
	device         BIGINT NOT NULL,
	seq            BIGINT NOT NULL,
	time_ms        BIGINT NOT NULL,
	kind           INTEGER NOT NULL,
	policy_version BIGINT NOT NULL,
	received_ms    BIGINT NOT NULL,
	event          BYTEA NOT NULL,
	PRIMARY KEY (device, seq, time_ms)
) PARTITION BY RANGE (time_ms);
CREATE INDEX events_time ON events(time_ms);
CREATE TABLE events_default PARTITION OF events DEFAULT;

-- The daily partitions that exist: day = floor(time_ms / 86400000).
CREATE TABLE event_partitions (
	day  BIGINT PRIMARY KEY,
	name TEXT NOT NULL
);

-- Creates the daily partition of `day` unless present. Rows of that day already sitting in
-- events_default move into it first (ATTACH refuses a range the default partition holds).
-- Replicas call this concurrently: an advisory lock serialises them.
CREATE FUNCTION corral_event_partition(day BIGINT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
DECLARE
	pname TEXT := 'events_d' || to_char(to_timestamp(day * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD');
	lo BIGINT := day * 86400000;
	hi BIGINT := (day + 1) * 86400000;
BEGIN
	PERFORM pg_advisory_xact_lock(7401);
	IF EXISTS (SELECT 1 FROM event_partitions p WHERE p.day = corral_event_partition.day) THEN
		RETURN FALSE;
	END IF;
	EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', pname);
	EXECUTE format('INSERT INTO %I SELECT * FROM events_default WHERE time_ms >= %s AND time_ms < %s',
	               pname, lo, hi);
	DELETE FROM events_default WHERE time_ms >= lo AND time_ms < hi;
	EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
	               pname, lo, hi);
	INSERT INTO event_partitions(day, name) VALUES (corral_event_partition.day, pname);
	RETURN TRUE;
END $$;

-- Drops every daily partition entirely older than cutoff_ms. Returns how many were dropped.
CREATE FUNCTION corral_event_drop_before(cutoff_ms BIGINT) RETURNS INTEGER
LANGUAGE plpgsql AS $$
DECLARE
	p RECORD;
	n INTEGER := 0;
BEGIN
	PERFORM pg_advisory_xact_lock(7401);
	FOR p IN SELECT day, name FROM event_partitions WHERE (day + 1) * 86400000 <= cutoff_ms LOOP
		EXECUTE format('DROP TABLE %I', p.name);
		DELETE FROM event_partitions WHERE day = p.day;
		n := n + 1;
	END LOOP;
	RETURN n;
END $$;

CREATE TABLE bundles (
	version            BIGINT PRIMARY KEY,
	envelope           BYTEA NOT NULL,
	sha256             TEXT NOT NULL,
	issued_at          BIGINT NOT NULL,
	expires_at         BIGINT NOT NULL,
	first_published_at BIGINT NOT NULL
);

CREATE TABLE publications (
	group_name   TEXT NOT NULL REFERENCES groups(name),
	version      BIGINT NOT NULL REFERENCES bundles(version),
	published_ms BIGINT NOT NULL,
	published_by TEXT NOT NULL,
	PRIMARY KEY (group_name, version)
);

CREATE TABLE trust_roots (
	version      BIGINT PRIMARY KEY,
	envelope     BYTEA NOT NULL,
	expires_at   BIGINT NOT NULL,
	published_at BIGINT NOT NULL,
	published_by TEXT NOT NULL
);

-- Append-only admin audit log.
CREATE TABLE audit (
	id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at_ms  BIGINT NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL,
	detail TEXT NOT NULL
);
CREATE FUNCTION corral_audit_append_only() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit log is append-only';
END $$;
CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit
	FOR EACH ROW EXECUTE FUNCTION corral_audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
	FOR EACH STATEMENT EXECUTE FUNCTION corral_audit_append_only();
