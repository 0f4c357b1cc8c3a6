/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device's TLS identity: its P-256 key (generated on the device, stored 0600, never sent
 * anywhere but to the device's own network worker), the PKCS#10 request sent at enrollment and
 * renewal, and conversions of the certificates the server returns.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evp_pkey_st;

/* Loads the PEM private key at `path`: -ENOENT when there is none, -EPERM when others can read
 * it, -EBADMSG when it does not parse. */
int cd_identity_load_key(const char *path, struct evp_pkey_st **ret_key);

/* Is the DER certificate (exactly `len` bytes) one for `key`? */
bool cd_identity_cert_matches_key(const uint8_t *der, size_t len, struct evp_pkey_st *key);

/*
 * Loads the PEM private key at `path`, or generates a P-256 key and writes it there (0600,
 * atomically) when the file does not exist. Refuses (-EPERM) a key readable by others.
 * *ret_key is owned by the caller (EVP_PKEY_free).
 */
int cd_identity_load_or_create_key(const char *path, struct evp_pkey_st **ret_key);

/* Generates a fresh P-256 key (renewal rotates keys) without storing it. */
int cd_identity_generate_key(struct evp_pkey_st **ret_key);

/* Writes `key` as PEM to `path` (0600, atomically). */
int cd_identity_save_key(struct evp_pkey_st *key, const char *path);

/*
 * A DER PKCS#10 request for `key` with subject CN=`cn`, self-signed with SHA-256. *ret_der is
 * owned by the caller (free).
 */
int cd_identity_make_csr(struct evp_pkey_st *key, const char *cn, uint8_t **ret_der,
                         size_t *ret_len);

/* The private key as PEM text (for the worker's CURLOPT_SSLKEY_BLOB). Caller frees (and
 * should clear) *ret_pem. */
int cd_identity_key_pem(struct evp_pkey_st *key, char **ret_pem, size_t *ret_len);

/*
 * Converts DER certificates to concatenated PEM text. Returns -EBADMSG for a certificate that
 * does not parse. *ret_pem owned by the caller.
 */
int cd_identity_der_to_pem(const uint8_t *const *ders, const size_t *lens, size_t n, char **ret_pem,
                           size_t *ret_len);

/* notBefore / notAfter of a DER certificate, in Unix seconds. */
int cd_identity_cert_times(const uint8_t *der, size_t len, int64_t *ret_not_before,
                           int64_t *ret_not_after);
