-- SPDX-License-Identifier: Apache-2.0
-- Kernel features the policy requested but the device does not enforce, computed from each
-- heartbeat by srv_features_missing() (server-stub/server/compliance.c); '' = none. A device is
-- "degraded" exactly when this is not empty (a host offering more than requested is compliant).
ALTER TABLE devices ADD COLUMN features_missing TEXT NOT NULL DEFAULT '';
