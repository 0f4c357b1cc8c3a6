-- SPDX-License-Identifier: Apache-2.0
-- Intentionally empty: schema/sql/server-pg/004_console_pg.sql starts filling the PostgreSQL
-- console read model, which SQLite has had since 002_console.sql (its trigger queues new
-- violations). The two migration sets keep the same numbering (test_store_pg checks it).
SELECT 1;
