/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helpers for talking to a real corral-server over HTTPS, shared by the integration tests
 * (server, console, PostgreSQL replicas): one request function with optional client
 * certificate and bearer token, one response struct capturing the headers tests check, and a
 * device-side P-256 CSR. Test-only code: errors go to stderr.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

struct th_request {
	unsigned port;       /* corral-server on 127.0.0.1:port */
	const char *ca_file; /* the fleet CA (DATA_DIR/ca.pem) */
	const char *method;  /* "GET", "POST", "DELETE", ... */
	const char *path;    /* "/v1/enroll", "/api/v1/groups", ... */
	const void *body;
	size_t len;
	const char *ctype;  /* Content-Type, NULL = none */
	const char *bearer; /* admin token, NULL = none */
	const char *cert;   /* client certificate and key files (mTLS), NULL = none */
	const char *key;
	/* Streaming body (POST with Transfer-Encoding: chunked) instead of body/len, when set. */
	size_t (*read)(char *buf, size_t size, size_t n, void *data);
	void *read_data;
};

struct th_response {
	long status;
	char *body; /* NUL-terminated, NULL when empty; free with th_response_free */
	size_t len;
	char reason[128]; /* X-Corral-Reason */
	char retry_after[32];
	char ctype[128];
	char csp[512];
	char disposition[256];
};

/*
 * Sends one request; bodies over 60 kB announce themselves with Expect: 100-continue (as a
 * device's libcurl does, so an early 413 is read before the upload). Returns 0 with *out
 * filled (any status), -EIO on a transport failure or -ENOMEM (then *out is zeroed).
 */
int th_https(const struct th_request *rq, struct th_response *out);

void th_response_free(struct th_response *r);

/* A fresh P-256 key and a signed DER CSR with subject CN `cn`. Caller frees both. */
int th_make_csr(const char *cn, EVP_PKEY **ret_key, uint8_t **ret_der, size_t *ret_len);
