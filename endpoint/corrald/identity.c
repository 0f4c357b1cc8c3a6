// SPDX-License-Identifier: Apache-2.0
/* Device key, CSR and certificate helpers on OpenSSL 3 (see identity.h). */
#include "identity.h"

#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define KEY_PEM_MAX ((size_t)16 * 1024)

int cd_identity_generate_key(EVP_PKEY **ret_key)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!k)
		return -EIO;
	*ret_key = k;
	return 0;
}

int cd_identity_key_pem(EVP_PKEY *key, char **ret_pem, size_t *ret_len)
{
	BIO *b = BIO_new(BIO_s_mem());
	if (!b)
		return -ENOMEM;
	int r = -EIO;
	if (PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1) {
		char *data = NULL;
		long n = BIO_get_mem_data(b, &data);
		char *out = n > 0 ? malloc((size_t)n + 1) : NULL;
		if (out) {
			memcpy(out, data, (size_t)n);
			out[n] = '\0';
			*ret_pem = out;
			if (ret_len)
				*ret_len = (size_t)n;
			r = 0;
		} else {
			r = -ENOMEM;
		}
	}
	BIO_free(b); /* a mem BIO clears nothing; the key text lived only in this process */
	return r;
}

int cd_identity_save_key(EVP_PKEY *key, const char *path)
{
	char *pem = NULL;
	size_t len = 0;
	int r = cd_identity_key_pem(key, &pem, &len);
	if (r < 0)
		return r;
	r = util_write_file_atomic(path, pem, len, 0600);
	OPENSSL_cleanse(pem, len);
	free(pem);
	return r;
}

int cd_identity_load_key(const char *path, EVP_PKEY **ret_key)
{
	_cleanup_free_ char *pem = NULL;
	size_t len = 0;
	int r = util_read_file(path, KEY_PEM_MAX, &pem, &len);
	if (r < 0)
		return r;
	r = util_check_secret_file(path);
	if (r < 0) {
		OPENSSL_cleanse(pem, len);
		return r;
	}
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	OPENSSL_cleanse(pem, len);
	if (!k)
		return -EBADMSG;
	*ret_key = k;
	return 0;
}

int cd_identity_load_or_create_key(const char *path, EVP_PKEY **ret_key)
{
	int r = cd_identity_load_key(path, ret_key);
	if (r != -ENOENT)
		return r;
	EVP_PKEY *k = NULL;
	r = cd_identity_generate_key(&k);
	if (r < 0)
		return r;
	r = cd_identity_save_key(k, path);
	if (r < 0) {
		EVP_PKEY_free(k);
		return r;
	}
	*ret_key = k;
	return 0;
}

bool cd_identity_cert_matches_key(const uint8_t *der, size_t len, EVP_PKEY *key)
{
	const unsigned char *p = der;
	X509 *x = key && len <= LONG_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;
	bool match = x && p == der + len && X509_check_private_key(x, key) == 1;
	X509_free(x);
	return match;
}

int cd_identity_make_csr(EVP_PKEY *key, const char *cn, uint8_t **ret_der, size_t *ret_len)
{
	X509_REQ *req = X509_REQ_new();
	if (!req)
		return -ENOMEM;
	int r = -EIO;
	X509_NAME *name = X509_REQ_get_subject_name(req);
	if (X509_REQ_set_version(req, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
	                               0) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0)
		goto out;
	unsigned char *der = NULL;
	int n = i2d_X509_REQ(req, &der);
	if (n <= 0)
		goto out;
	uint8_t *copy = malloc((size_t)n);
	if (!copy) {
		OPENSSL_free(der);
		r = -ENOMEM;
		goto out;
	}
	memcpy(copy, der, (size_t)n);
	OPENSSL_free(der);
	*ret_der = copy;
	*ret_len = (size_t)n;
	r = 0;
out:
	X509_REQ_free(req);
	return r;
}

int cd_identity_der_to_pem(const uint8_t *const *ders, const size_t *lens, size_t n, char **ret_pem,
                           size_t *ret_len)
{
	BIO *b = BIO_new(BIO_s_mem());
	if (!b)
		return -ENOMEM;
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		const unsigned char *p = ders[i];
		X509 *x = d2i_X509(NULL, &p, (long)lens[i]);
		if (!x || p != ders[i] + lens[i]) {
			r = -EBADMSG;
		} else if (PEM_write_bio_X509(b, x) != 1) {
			r = -EIO;
		}
		X509_free(x);
	}
	if (r == 0) {
		char *data = NULL;
		long len = BIO_get_mem_data(b, &data);
		char *out = malloc((size_t)(len > 0 ? len : 0) + 1);
		if (!out) {
			r = -ENOMEM;
		} else {
			if (len > 0)
				memcpy(out, data, (size_t)len);
			out[len > 0 ? len : 0] = '\0';
			*ret_pem = out;
			*ret_len = (size_t)(len > 0 ? len : 0);
		}
	}
	BIO_free(b);
	return r;
}

static int asn1_to_unix(const ASN1_TIME *t, int64_t *ret)
{
	struct tm tm;
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return -EBADMSG;
	*ret = (int64_t)timegm(&tm);
	return 0;
}

int cd_identity_cert_times(const uint8_t *der, size_t len, int64_t *ret_not_before,
                           int64_t *ret_not_after)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	if (!x)
		return -EBADMSG;
	int64_t nb = 0, na = 0;
	int r = asn1_to_unix(X509_get0_notBefore(x), &nb);
	if (r == 0)
		r = asn1_to_unix(X509_get0_notAfter(x), &na);
	X509_free(x);
	if (r < 0)
		return r;
	if (ret_not_before)
		*ret_not_before = nb;
	if (ret_not_after)
		*ret_not_after = na;
	return 0;
}
