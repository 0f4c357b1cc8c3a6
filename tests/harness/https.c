// SPDX-License-Identifier: Apache-2.0
/* HTTPS helpers for the integration tests (see https.h). */
#include "https.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/x509.h>

void th_response_free(struct th_response *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct th_response *r = ud;
	char *nb = realloc(r->body, r->len + sz * n + 1);
	if (!nb)
		return 0;
	memcpy(nb + r->len, p, sz * n);
	r->len += sz * n;
	nb[r->len] = '\0';
	r->body = nb;
	return sz * n;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);
	if (len <= nl || strncasecmp(line, name, nl) != 0)
		return;
	const char *v = line + nl;
	size_t vl = len - nl;
	while (vl && *v == ' ')
		v++, vl--;
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
		vl--;
	snprintf(out, outlen, "%.*s", (int)vl, v);
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct th_response *r = ud;
	size_t len = sz * n;
	header_value(p, len, "X-Corral-Reason:", r->reason, sizeof(r->reason));
	header_value(p, len, "Retry-After:", r->retry_after, sizeof(r->retry_after));
	header_value(p, len, "Content-Type:", r->ctype, sizeof(r->ctype));
	header_value(p, len, "Content-Security-Policy:", r->csp, sizeof(r->csp));
	header_value(p, len, "Content-Disposition:", r->disposition, sizeof(r->disposition));
	return len;
}

int th_https(const struct th_request *rq, struct th_response *out)
{
	memset(out, 0, sizeof(*out));
	char url[1024], auth[400], ct[160];
	snprintf(url, sizeof(url), "https://127.0.0.1:%u%s", rq->port, rq->path);
	CURL *c = curl_easy_init();
	if (!c)
		return -ENOMEM;
	struct curl_slist *h =
	        curl_slist_append(NULL, rq->len > 60000 ? "Expect: 100-continue" : "Expect:");
	if (rq->read)
		h = curl_slist_append(h, "Transfer-Encoding: chunked");
	if (rq->bearer) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", rq->bearer);
		h = curl_slist_append(h, auth);
	}
	if (rq->ctype) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", rq->ctype);
		h = curl_slist_append(h, ct);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, rq->ca_file);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
	if (rq->cert) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, rq->cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, rq->key);
	}
	if (rq->read) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, rq->read);
		curl_easy_setopt(c, CURLOPT_READDATA, rq->read_data);
	} else if (strcmp(rq->method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->len);
	} else if (strcmp(rq->method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
	}
	CURLcode cr = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (cr != CURLE_OK) {
		fprintf(stderr, "curl %s: %s\n", rq->path, curl_easy_strerror(cr));
		th_response_free(out); /* on failure nothing is left for the caller to free */
		return -EIO;
	}
	return 0;
}

int th_make_csr(const char *cn, EVP_PKEY **ret_key, uint8_t **ret_der, size_t *ret_len)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	uint8_t *der = NULL;
	int n = -1;
	if (k && req && X509_REQ_set_version(req, 0) == 1 &&
	    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
	                               (const unsigned char *)cn, -1, -1, 0) == 1 &&
	    X509_REQ_set_pubkey(req, k) == 1 && X509_REQ_sign(req, k, EVP_sha256()) > 0)
		n = i2d_X509_REQ(req, &der);
	X509_REQ_free(req);
	if (n <= 0) {
		EVP_PKEY_free(k);
		return -EIO;
	}
	uint8_t *copy = malloc((size_t)n);
	if (!copy) {
		OPENSSL_free(der);
		EVP_PKEY_free(k);
		return -ENOMEM;
	}
	memcpy(copy, der, (size_t)n);
	OPENSSL_free(der);
	*ret_der = copy;
	*ret_len = (size_t)n;
	*ret_key = k;
	return 0;
}
