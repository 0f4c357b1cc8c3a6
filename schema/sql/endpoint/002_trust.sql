-- SPDX-License-Identifier: Apache-2.0
-- Trust state of the endpoint (lib/trust/store.c): trust root chain, last known good bundle,
-- highest version ever applied.
--
-- Every root of the chain is kept as the raw signed envelope, so the chain can be re-verified
-- from the bytes alone at every start. trust_state has exactly one row; the last known good
-- bundle and the highest version applied are updated in the same transaction, so a crash
-- leaves the old pair or the new pair, never a mix.
CREATE TABLE trust_root (
	version      INTEGER PRIMARY KEY CHECK (version >= 1),
	envelope     BLOB NOT NULL,
	expires_at   INTEGER NOT NULL,
	installed_at INTEGER NOT NULL
) STRICT;

CREATE TABLE trust_state (
	id                  INTEGER PRIMARY KEY CHECK (id = 1),
	highest_version     INTEGER NOT NULL DEFAULT 0 CHECK (highest_version >= 0),
	bundle              BLOB,
	bundle_version      INTEGER,
	bundle_expires_at   INTEGER,
	bundle_root_version INTEGER,
	applied_at          INTEGER,
	CHECK ((bundle IS NULL) = (bundle_version IS NULL)),
	CHECK (bundle_version IS NULL OR bundle_version <= highest_version)
) STRICT;

INSERT INTO trust_state (id, highest_version) VALUES (1, 0);
