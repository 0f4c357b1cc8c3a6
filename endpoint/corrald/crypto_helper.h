/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corrald-crypto: the short-lived helper that holds every use of libcrypto on corrald's trusted
 * side, so that the resident root parent never maps libcrypto (≈ 3.5 MB of its idle RSS):
 *  - signature checks and the transactional apply of policy bundles and trust roots (through
 *    lib/trust's store, on the daemon's own SQLite file);
 *  - the device key, the PKCS#10 requests of enrollment and renewal, and the checks and PEM
 *    conversion of the certificates the server returns.
 *
 * The parent execs the helper (next to corrald, like corrald-worker) with one end of a
 * SOCK_SEQPACKET socketpair on fd 3, an empty environment and an empty signal mask; sends one
 * CryptoRequest; reads one CryptoReply; reaps it. The helper is not network-facing: its input
 * comes from the parent only (bundles and roots are still untrusted bytes the worker relayed,
 * which is why they are verified there). Both directions are size-capped and checked here, so
 * the same checks run in the helper, in the parent and in fuzz_corrald_crypto.
 */
#pragma once

#include "corral.pb-c.h"
#include "trust.h"

#include <stddef.h>
#include <stdint.h>

/* A request carries a bundle or trust roots (≤ TRUST_ENVELOPE_MAX, 4 MiB, in all); a reply the
 * bundle in force as its payload; 32 KiB for the other fields. Not more: the kernel builds one
 * SEQPACKET skb with a linear part of len - 68 KiB, and kmalloc stops at 4 MiB (ENOBUFS). */
#define CD_CRYPTO_FRAME_MAX  ((size_t)TRUST_ENVELOPE_MAX + 32 * 1024)
#define CD_CRYPTO_ROOTS_MAX  64u                 /* trust roots in one APPLY_ROOTS */
#define CD_CRYPTO_GROUPS_MAX 64u                 /* device groups (as stored by corrald) */
#define CD_CRYPTO_CA_MAX     16u                 /* certificates in an enrollment CA chain */
#define CD_CRYPTO_CERT_MAX   ((size_t)64 * 1024) /* one DER certificate */
#define CD_CRYPTO_TIMEOUT_MS 10000               /* the parent kills a helper that takes longer */

/*
 * Checks a decoded request: a known op, paths and strings of sane length (the fields each op
 * needs present), counts and sizes under the caps above. Returns 0 or -EBADMSG with a reason
 * in `why` (static text).
 */
int cd_crypto_request_check(const Corral__CryptoRequest *rq, const char **why);

/* Same for a reply to `op`: result an errno range, signer key ids ≤ TRUST_MAX_SIGNATURES of
 * hex length, a view bundle that decodes as a PolicyBundle. */
int cd_crypto_reply_check(Corral__CryptoOp op, const Corral__CryptoReply *rp, const char **why);

/*
 * Runs the helper at `path` for one request. Returns 0 with *ret (caller frees with
 * corral__crypto_reply__free_unpacked; its `result` is the operation's own outcome), or:
 * -EINVAL (a request that fails cd_crypto_request_check), -ENOENT/-EACCES/... (the helper
 * cannot be started), -ETIMEDOUT (no reply within timeout_ms: the helper is killed), -EPIPE (it
 * ended without a reply), -EMSGSIZE (reply over CD_CRYPTO_FRAME_MAX), -EBADMSG (a reply that
 * does not decode or fails cd_crypto_reply_check), -EPROTO (it replied but then exited with a
 * failure status).
 */
int cd_crypto_call(const char *path, const Corral__CryptoRequest *rq, int timeout_ms,
                   Corral__CryptoReply **ret);
