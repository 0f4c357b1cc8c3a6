-- SPDX-License-Identifier: Apache-2.0
-- corrald: identity, enrollment, outbox, sessions (endpoint/corrald).
SELECT 1;
