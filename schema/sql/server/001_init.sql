-- SPDX-License-Identifier: Apache-2.0
-- corral-server's database (SQLite backend). Applied by lib/db at open. Only the SQLite backend
-- (server-stub/server/store_sqlite.c) runs SQL against it.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;

-- Admin API bearer tokens: "<id>.<secret>"; only SHA-256(secret) is stored.
CREATE TABLE admin_tokens (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
	secret_sha256 BLOB NOT NULL,
	created_at    INTEGER NOT NULL,
	created_by    TEXT NOT NULL,
	revoked       INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE groups (
	name       TEXT PRIMARY KEY,
	created_at INTEGER NOT NULL,
	created_by TEXT NOT NULL
) STRICT;

-- Enrollment tokens: "<id>.<secret>", bound to one group, hashed, with expiry and use count.
CREATE TABLE enroll_tokens (
	id            TEXT PRIMARY KEY,
	group_name    TEXT NOT NULL REFERENCES groups(name),
	secret_sha256 BLOB NOT NULL,
	max_uses      INTEGER NOT NULL CHECK (max_uses > 0),
	uses          INTEGER NOT NULL DEFAULT 0,
	expires_at    INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	created_by    TEXT NOT NULL
) STRICT;

CREATE TABLE devices (
	id                 INTEGER PRIMARY KEY,
	device_id          TEXT NOT NULL UNIQUE,
	group_name         TEXT NOT NULL REFERENCES groups(name),
	hostname           TEXT NOT NULL DEFAULT '',
	agent_version      TEXT NOT NULL DEFAULT '',
	enroll_token_id    TEXT NOT NULL,
	enrolled_at        INTEGER NOT NULL,
	cert_serial        TEXT NOT NULL,
	cert_expires_at    INTEGER NOT NULL,
	revoked_at         INTEGER,
	acked_seq          INTEGER NOT NULL DEFAULT 0,
	last_seen          INTEGER NOT NULL DEFAULT 0,
	heartbeat_at       INTEGER NOT NULL DEFAULT 0,
	policy_version     INTEGER NOT NULL DEFAULT 0,
	trust_root_version INTEGER NOT NULL DEFAULT 0,
	freshness          INTEGER NOT NULL DEFAULT 0,
	kernel_release     TEXT NOT NULL DEFAULT '',
	features_requested TEXT NOT NULL DEFAULT '',
	features_enforced  TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX devices_group ON devices(group_name);

-- Device events, deduplicated on (device, seq). `event` is the serialized Event as received.
CREATE TABLE events (
	device         INTEGER NOT NULL REFERENCES devices(id),
	seq            INTEGER NOT NULL,
	time_ms        INTEGER NOT NULL,
	kind           INTEGER NOT NULL,
	policy_version INTEGER NOT NULL,
	received_ms    INTEGER NOT NULL,
	event          BLOB NOT NULL,
	PRIMARY KEY (device, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX events_time ON events(time_ms);

-- Every signed bundle ever accepted (history), by its version (monotonic per fleet).
CREATE TABLE bundles (
	version      INTEGER PRIMARY KEY,
	envelope     BLOB NOT NULL,
	sha256       TEXT NOT NULL,
	issued_at    INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	first_published_at INTEGER NOT NULL
) STRICT;

-- Which bundle versions were published (or promoted) to which group, and when.
CREATE TABLE publications (
	group_name   TEXT NOT NULL REFERENCES groups(name),
	version      INTEGER NOT NULL REFERENCES bundles(version),
	published_ms INTEGER NOT NULL,
	published_by TEXT NOT NULL,
	PRIMARY KEY (group_name, version)
) STRICT;

CREATE TABLE trust_roots (
	version      INTEGER PRIMARY KEY,
	envelope     BLOB NOT NULL,
	expires_at   INTEGER NOT NULL,
	published_at INTEGER NOT NULL,
	published_by TEXT NOT NULL
) STRICT;

-- Append-only admin audit log: who did what, when.
CREATE TABLE audit (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	at_ms  INTEGER NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL,
	detail TEXT NOT NULL
) STRICT;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit log is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit log is append-only');
END;
