-- SPDX-License-Identifier: Apache-2.0
-- Trust state of the endpoint (lib/trust/store.c): trust root chain, last known good bundle,
-- highest version ever applied.
SELECT 1;
