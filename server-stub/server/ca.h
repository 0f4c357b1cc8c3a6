/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fleet CA (OpenSSL, P-256): created on first start in the data directory, it signs the
 * server's TLS certificate and every device certificate, and is the only anchor device
 * certificates are verified against. The server checks client certificates itself
 * (libmicrohttpd's GnuTLS only requests them): srv_ca_verify_peer().
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SRV_CA_SERIAL_HEX 33 /* 16 bytes hex + NUL */
#define SRV_CA_CN_MAX     64

struct srv_ca;

/*
 * Loads DIR/ca.{key,pem} and DIR/server.{key,pem}, creating any that are missing (keys 0600).
 * The server certificate's SANs are `hostname` (may be NULL), `listen_host`, localhost and
 * 127.0.0.1. On failure returns -errno with a message in err. *ret is owned by the caller.
 */
int srv_ca_open(const char *dir, const char *hostname, const char *listen_host, struct srv_ca **ret,
                char *err, size_t errlen);
void srv_ca_free(struct srv_ca *ca);

/* PEM texts for the TLS listener (owned by ca). */
const char *srv_ca_server_key_pem(const struct srv_ca *ca);
const char *srv_ca_server_cert_pem(const struct srv_ca *ca);
const char *srv_ca_cert_pem(const struct srv_ca *ca);
/* DER of the fleet CA certificate (owned by ca). */
const uint8_t *srv_ca_cert_der(const struct srv_ca *ca, size_t *ret_len);

/*
 * Issues a client certificate with subject CN = `cn` for the public key of the PKCS#10 CSR in
 * `csr_der` (whose self-signature must verify; EC, Ed25519 or RSA >= 2048 keys). The CSR's own
 * subject is ignored. Returns 0 with *ret_der (caller frees), its serial in hex and expiry;
 * -EBADMSG for a bad CSR; -ENOMEM/-EIO otherwise.
 */
int srv_ca_issue(struct srv_ca *ca, const uint8_t *csr_der, size_t csr_len, const char *cn,
                 int64_t lifetime_sec, uint8_t **ret_der, size_t *ret_len,
                 char ret_serial[SRV_CA_SERIAL_HEX], int64_t *ret_expires_at);

/*
 * Verifies a peer certificate chain (DER, leaf first) against the fleet CA for client use at
 * the current time and returns the leaf's subject CN. -ENOKEY when n == 0, -EACCES when the
 * chain does not verify or the CN is missing/too long.
 */
int srv_ca_verify_peer(struct srv_ca *ca, const uint8_t *const *ders, const size_t *lens, size_t n,
                       char ret_cn[SRV_CA_CN_MAX]);
