/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decoders for the device request bodies (protobuf from the network): size cap first, then
 * protobuf-c unpack, then the semantic checks the handlers rely on. Kept apart from the HTTP
 * code so the libFuzzer targets (tests/fuzz/fuzz_server_*.c) exercise exactly what a device's
 * bytes reach. On failure *ret_detail is a static human-readable reason.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <corral.pb-c.h>

/*
 * EnrollRequest: token and CSR present, hostname <= 255 and agent_version <= 64 bytes.
 * Returns 0 with *ret (corral__enroll_request__free_unpacked), -EMSGSIZE over `max`,
 * -EBADMSG otherwise.
 */
int srv_decode_enroll(const uint8_t *buf, size_t len, size_t max, Corral__EnrollRequest **ret,
                      const char **ret_detail);

/* RenewRequest with a CSR. Same contract. */
int srv_decode_renew(const uint8_t *buf, size_t len, size_t max, Corral__RenewRequest **ret,
                     const char **ret_detail);

/*
 * ReportBatch: at most `max_events` events, each with 1 <= seq <= INT64_MAX. Returns 0 with
 * *ret (corral__report_batch__free_unpacked), -EMSGSIZE over `max`, -EBADMSG otherwise.
 */
int srv_decode_report(const uint8_t *buf, size_t len, size_t max, size_t max_events,
                      Corral__ReportBatch **ret, const char **ret_detail);
