-- SPDX-License-Identifier: Apache-2.0
-- The PostgreSQL console read model goes live (store_pg.c, "console"): the tables of
-- 002_console.sql are now filled. New violations and policy rejections are queued in
-- console_pending by the report path's own INSERT statement (a data-modifying CTE next to the
-- events insert) rather than by a per-row trigger, so ingest pays one extra set insert per
-- chunk; sync() then decodes the queue with DELETE ... FOR UPDATE SKIP LOCKED, so replicas
-- folding at the same time take disjoint rows.

-- A database upgraded to this version folds in what it already holds.
-- Kinds: 1 = EVENT_KIND_VIOLATION, 5 = EVENT_KIND_POLICY_REJECTED (proto/corral.proto).
INSERT INTO console_pending(device, seq, time_ms)
	SELECT device, seq, time_ms FROM events WHERE kind IN (1, 5) ON CONFLICT DO NOTHING;

-- The console's device list filters by state and pages in device_id order (byte order, as on
-- SQLite): an index in the "C" collation lets ORDER BY ... LIMIT stop early.
CREATE INDEX devices_device_id_c ON devices(device_id COLLATE "C");

-- /api/v1/changes: a counter every replica sees move as soon as a change is stored. (The
-- statistics views are flushed lazily, up to a second later.) Every write statement on the
-- server's tables bumps a sequence: sequences are shared, need no row lock and never roll back.
-- A statement inside a longer transaction bumps it before its commit, so store_pg.c bumps it
-- once more after each COMMIT: a console that re-read too early sees a second change.
-- Tables added by later migrations need their own trigger (corral_change_trigger below).
CREATE SEQUENCE corral_change_seq;
CREATE FUNCTION corral_change_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM nextval('corral_change_seq');
	RETURN NULL;
END $$;
CREATE FUNCTION corral_change_trigger(tbl TEXT) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('CREATE TRIGGER corral_change AFTER INSERT OR UPDATE OR DELETE ON %I '
	               'FOR EACH STATEMENT EXECUTE FUNCTION corral_change_bump()', tbl);
END $$;
SELECT corral_change_trigger(t) FROM unnest(ARRAY['admin_tokens', 'groups', 'enroll_tokens',
	'devices', 'events', 'bundles', 'publications', 'trust_roots', 'audit',
	'console_violations', 'console_vhour', 'console_devices']) AS t;
