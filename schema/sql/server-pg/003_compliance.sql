-- SPDX-License-Identifier: Apache-2.0
-- PostgreSQL twin of schema/sql/server/003_compliance.sql: kernel features requested but not
-- enforced, computed from each heartbeat by srv_features_missing(); '' = none.
ALTER TABLE devices ADD COLUMN features_missing TEXT NOT NULL DEFAULT '';
