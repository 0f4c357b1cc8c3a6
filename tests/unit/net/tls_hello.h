/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Real TLS ClientHellos for the net tests, produced by OpenSSL on a memory BIO (so the SNI
 * parser is tested against what a TLS library actually sends, not only hand-made bytes).
 */
#pragma once

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

/* Writes a ClientHello with server_name `sni` (NULL = none) into buf; returns its length. */
static inline size_t tls_hello(const char *sni, uint8_t *buf, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	SSL_set_bio(ssl, rb, wb);
	if (sni)
		SSL_set_tlsext_host_name(ssl, sni);
	(void)SSL_connect(ssl); /* wants to read the ServerHello: the hello is in wb */
	int n = BIO_read(wb, buf, (int)cap);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return n > 0 ? (size_t)n : 0;
}
