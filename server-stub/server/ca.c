// SPDX-License-Identifier: Apache-2.0
/*
 * Fleet CA and certificate issuance with OpenSSL 3 (see ca.h). Keys are P-256; certificates are
 * X.509 v3 with explicit key usages so that a server certificate can never pass as a device
 * certificate (purpose check on clientAuth) and a device certificate can never sign others.
 */
#include "ca.h"

#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CA_LIFETIME_SEC     (10 * 365 * 86400LL)
#define SERVER_LIFETIME_SEC (2 * 365 * 86400LL)
#define PEM_MAX             (64 * 1024)

struct srv_ca {
	EVP_PKEY *ca_key;
	X509 *ca_cert;
	X509_STORE *store;
	char *ca_pem;
	char *server_key_pem;
	char *server_cert_pem;
	uint8_t *ca_der;
	size_t ca_der_len;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_REQ, X509_REQ_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO, BIO_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE_CTX, X509_STORE_CTX_free)

void srv_ca_free(struct srv_ca *ca)
{
	if (!ca)
		return;
	EVP_PKEY_free(ca->ca_key);
	X509_free(ca->ca_cert);
	X509_STORE_free(ca->store);
	free(ca->ca_pem);
	if (ca->server_key_pem)
		OPENSSL_cleanse(ca->server_key_pem, strlen(ca->server_key_pem));
	free(ca->server_key_pem);
	free(ca->server_cert_pem);
	OPENSSL_free(ca->ca_der);
	free(ca);
}

static int write_key(const char *path, EVP_PKEY *key)
{
	_cleanup_(BIO_freep) BIO *b = BIO_new(BIO_s_mem());
	if (!b || PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1)
		return -EIO;
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	int r = util_write_file_atomic(path, data, (size_t)n, 0600);
	OPENSSL_cleanse(data, (size_t)n);
	return r;
}

static int write_cert(const char *path, X509 *cert)
{
	_cleanup_(BIO_freep) BIO *b = BIO_new(BIO_s_mem());
	if (!b || PEM_write_bio_X509(b, cert) != 1)
		return -EIO;
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	return util_write_file_atomic(path, data, (size_t)n, 0644);
}

static int load_key(const char *path, EVP_PKEY **ret)
{
	int r = util_check_secret_file(path);
	if (r < 0)
		return r;
	_cleanup_free_ char *pem = NULL;
	size_t len = 0;
	r = util_read_file(path, PEM_MAX, &pem, &len);
	if (r < 0)
		return r;
	_cleanup_(BIO_freep) BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	OPENSSL_cleanse(pem, len);
	if (!k)
		return -EBADMSG;
	*ret = k;
	return 0;
}

static int load_cert(const char *path, X509 **ret)
{
	_cleanup_free_ char *pem = NULL;
	size_t len = 0;
	int r = util_read_file(path, PEM_MAX, &pem, &len);
	if (r < 0)
		return r;
	_cleanup_(BIO_freep) BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *c = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	if (!c)
		return -EBADMSG;
	*ret = c;
	return 0;
}

static int random_serial(X509 *cert, char ret_hex[SRV_CA_SERIAL_HEX])
{
	uint8_t raw[16];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	raw[0] &= 0x7f; /* positive */
	raw[0] |= 0x01; /* and no leading zero byte */
	BIGNUM *bn = BN_bin2bn(raw, sizeof(raw), NULL);
	if (!bn)
		return -ENOMEM;
	ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	if (!ai)
		return -ENOMEM;
	int ok = X509_set_serialNumber(cert, ai);
	ASN1_INTEGER_free(ai);
	if (ret_hex)
		util_hex(raw, sizeof(raw), ret_hex);
	return ok == 1 ? 0 : -EIO;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -EINVAL;
	int ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -EIO;
}

/* A certificate skeleton: version 3, serial, validity, subject CN, issuer, public key. */
static int cert_new(const char *cn, X509 *issuer, EVP_PKEY *pub, int64_t lifetime, X509 **ret,
                    char serial[SRV_CA_SERIAL_HEX], int64_t *ret_expires)
{
	_cleanup_(X509_freep) X509 *c = X509_new();
	if (!c || X509_set_version(c, 2) != 1)
		return -ENOMEM;
	int r = random_serial(c, serial);
	if (r < 0)
		return r;
	int64_t now = util_now_sec();
	/* Backdate a little for devices whose clocks run slightly behind. */
	if (!ASN1_TIME_set(X509_getm_notBefore(c), (time_t)(now - 300)) ||
	    !ASN1_TIME_set(X509_getm_notAfter(c), (time_t)(now + lifetime)))
		return -EIO;
	X509_NAME *name = X509_get_subject_name(c);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
	                               0) != 1)
		return -EINVAL;
	if (X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
	    X509_set_pubkey(c, pub) != 1)
		return -EIO;
	if (ret_expires)
		*ret_expires = now + lifetime;
	*ret = TAKE_PTR(c);
	return 0;
}

static int create_ca(const char *dir, EVP_PKEY **ret_key, X509 **ret_cert)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_EC_gen("P-256");
	if (!key)
		return -EIO;
	uint8_t rnd[4];
	char hex[9], cn[64];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	util_hex(rnd, sizeof(rnd), hex);
	snprintf(cn, sizeof(cn), "corral fleet CA %s", hex);
	_cleanup_(X509_freep) X509 *cert = NULL;
	int r = cert_new(cn, NULL, key, CA_LIFETIME_SEC, &cert, NULL, NULL);
	if (r < 0)
		return r;
	if ((r = add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0")) < 0 ||
	    (r = add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign")) < 0 ||
	    (r = add_ext(cert, cert, NID_subject_key_identifier, "hash")) < 0)
		return r;
	if (X509_sign(cert, key, EVP_sha256()) <= 0)
		return -EIO;
	_cleanup_free_ char *kp = NULL, *cp = NULL;
	if (asprintf(&kp, "%s/ca.key", dir) < 0 || asprintf(&cp, "%s/ca.pem", dir) < 0)
		return -ENOMEM;
	/* Key first: a certificate without its key would be useless, the reverse is recreated. */
	if ((r = write_key(kp, key)) < 0 || (r = write_cert(cp, cert)) < 0)
		return r;
	*ret_key = TAKE_PTR(key);
	*ret_cert = TAKE_PTR(cert);
	return 0;
}

static bool is_ip(const char *s)
{
	uint8_t buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int create_server(struct srv_ca *ca, const char *dir, const char *hostname,
                         const char *listen_host)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_EC_gen("P-256");
	if (!key)
		return -EIO;
	const char *cn = hostname && *hostname ? hostname : "localhost";
	_cleanup_(X509_freep) X509 *cert = NULL;
	int r = cert_new(cn, ca->ca_cert, key, SERVER_LIFETIME_SEC, &cert, NULL, NULL);
	if (r < 0)
		return r;
	char san[512];
	size_t off = (size_t)snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1");
	const char *names[] = {hostname, listen_host};
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		const char *n = names[i];
		if (!n || !*n || strcmp(n, "localhost") == 0 || strcmp(n, "127.0.0.1") == 0 ||
		    strcmp(n, "::1") == 0 || strcmp(n, "0.0.0.0") == 0 || strcmp(n, "::") == 0)
			continue;
		if (strpbrk(n, ",\n") || off >= sizeof(san))
			return -EINVAL;
		off += (size_t)snprintf(san + off, sizeof(san) - off, ",%s:%s",
		                        is_ip(n) ? "IP" : "DNS", n);
	}
	if (off >= sizeof(san))
		return -EINVAL;
	if ((r = add_ext(cert, ca->ca_cert, NID_basic_constraints, "critical,CA:FALSE")) < 0 ||
	    (r = add_ext(cert, ca->ca_cert, NID_key_usage, "critical,digitalSignature")) < 0 ||
	    (r = add_ext(cert, ca->ca_cert, NID_ext_key_usage, "serverAuth")) < 0 ||
	    (r = add_ext(cert, ca->ca_cert, NID_subject_alt_name, san)) < 0)
		return r;
	if (X509_sign(cert, ca->ca_key, EVP_sha256()) <= 0)
		return -EIO;
	_cleanup_free_ char *kp = NULL, *cp = NULL;
	if (asprintf(&kp, "%s/server.key", dir) < 0 || asprintf(&cp, "%s/server.pem", dir) < 0)
		return -ENOMEM;
	if ((r = write_key(kp, key)) < 0 || (r = write_cert(cp, cert)) < 0)
		return r;
	return 0;
}

static int pem_of_file(const char *dir, const char *name, char **ret)
{
	_cleanup_free_ char *p = NULL;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	size_t len;
	return util_read_file(p, PEM_MAX, ret, &len);
}

int srv_ca_open(const char *dir, const char *hostname, const char *listen_host, struct srv_ca **ret,
                char *err, size_t errlen)
{
	struct srv_ca *ca = calloc(1, sizeof(*ca));
	if (!ca)
		return -ENOMEM;
	_cleanup_free_ char *kp = NULL, *cp = NULL, *skp = NULL, *scp = NULL;
	int r = -ENOMEM;
	if (asprintf(&kp, "%s/ca.key", dir) < 0 || asprintf(&cp, "%s/ca.pem", dir) < 0 ||
	    asprintf(&skp, "%s/server.key", dir) < 0 || asprintf(&scp, "%s/server.pem", dir) < 0)
		goto fail;
	if (access(kp, F_OK) < 0) {
		r = create_ca(dir, &ca->ca_key, &ca->ca_cert);
		if (r < 0) {
			snprintf(err, errlen, "creating the fleet CA in %s: %s", dir, strerror(-r));
			goto fail;
		}
	} else {
		r = load_key(kp, &ca->ca_key);
		if (r >= 0)
			r = load_cert(cp, &ca->ca_cert);
		if (r < 0) {
			snprintf(err, errlen, "loading the fleet CA from %s: %s", dir,
			         strerror(-r));
			goto fail;
		}
	}
	if (access(skp, F_OK) < 0 || access(scp, F_OK) < 0) {
		r = create_server(ca, dir, hostname, listen_host);
		if (r < 0) {
			snprintf(err, errlen, "creating the server certificate: %s", strerror(-r));
			goto fail;
		}
	} else if ((r = util_check_secret_file(skp)) < 0) {
		snprintf(err, errlen, "%s: %s", skp, strerror(-r));
		goto fail;
	}
	if ((r = pem_of_file(dir, "ca.pem", &ca->ca_pem)) < 0 ||
	    (r = pem_of_file(dir, "server.key", &ca->server_key_pem)) < 0 ||
	    (r = pem_of_file(dir, "server.pem", &ca->server_cert_pem)) < 0) {
		snprintf(err, errlen, "reading TLS material in %s: %s", dir, strerror(-r));
		goto fail;
	}
	int n = i2d_X509(ca->ca_cert, &ca->ca_der);
	ca->store = X509_STORE_new();
	if (n <= 0 || !ca->store || X509_STORE_add_cert(ca->store, ca->ca_cert) != 1) {
		r = -EIO;
		snprintf(err, errlen, "building the fleet CA store");
		goto fail;
	}
	ca->ca_der_len = (size_t)n;
	*ret = ca;
	return 0;
fail:
	srv_ca_free(ca);
	return r;
}

const char *srv_ca_server_key_pem(const struct srv_ca *ca)
{
	return ca->server_key_pem;
}

const char *srv_ca_server_cert_pem(const struct srv_ca *ca)
{
	return ca->server_cert_pem;
}

const char *srv_ca_cert_pem(const struct srv_ca *ca)
{
	return ca->ca_pem;
}

const uint8_t *srv_ca_cert_der(const struct srv_ca *ca, size_t *ret_len)
{
	*ret_len = ca->ca_der_len;
	return ca->ca_der;
}

static bool key_acceptable(EVP_PKEY *k)
{
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_EC:
		return EVP_PKEY_get_bits(k) >= 256;
	case EVP_PKEY_ED25519:
		return true;
	case EVP_PKEY_RSA:
		return EVP_PKEY_get_bits(k) >= 2048;
	default:
		return false;
	}
}

int srv_ca_issue(struct srv_ca *ca, const uint8_t *csr_der, size_t csr_len, const char *cn,
                 int64_t lifetime_sec, uint8_t **ret_der, size_t *ret_len,
                 char ret_serial[SRV_CA_SERIAL_HEX], int64_t *ret_expires_at)
{
	if (!csr_der || csr_len == 0 || csr_len > 16384)
		return -EBADMSG;
	const unsigned char *p = csr_der;
	_cleanup_(X509_REQ_freep) X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)csr_len);
	if (!req || p != csr_der + csr_len)
		return -EBADMSG;
	EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
	if (!pub || !key_acceptable(pub) || X509_REQ_verify(req, pub) != 1)
		return -EBADMSG;
	_cleanup_(X509_freep) X509 *cert = NULL;
	char serial[SRV_CA_SERIAL_HEX];
	int64_t expires = 0;
	int r = cert_new(cn, ca->ca_cert, pub, lifetime_sec, &cert, serial, &expires);
	if (r < 0)
		return r;
	if ((r = add_ext(cert, ca->ca_cert, NID_basic_constraints, "critical,CA:FALSE")) < 0 ||
	    (r = add_ext(cert, ca->ca_cert, NID_key_usage, "critical,digitalSignature")) < 0 ||
	    (r = add_ext(cert, ca->ca_cert, NID_ext_key_usage, "clientAuth")) < 0 ||
	    (r = add_ext(cert, ca->ca_cert, NID_authority_key_identifier, "keyid:always")) < 0)
		return r;
	if (X509_sign(cert, ca->ca_key, EVP_sha256()) <= 0)
		return -EIO;
	uint8_t *der = NULL;
	int n = i2d_X509(cert, &der);
	if (n <= 0)
		return -EIO;
	/* Hand out a malloc'd copy so callers free() it like everything else. */
	uint8_t *out = malloc((size_t)n);
	if (!out) {
		OPENSSL_free(der);
		return -ENOMEM;
	}
	memcpy(out, der, (size_t)n);
	OPENSSL_free(der);
	*ret_der = out;
	*ret_len = (size_t)n;
	memcpy(ret_serial, serial, SRV_CA_SERIAL_HEX);
	*ret_expires_at = expires;
	return 0;
}

int srv_ca_verify_peer(struct srv_ca *ca, const uint8_t *const *ders, const size_t *lens, size_t n,
                       char ret_cn[SRV_CA_CN_MAX])
{
	if (n == 0)
		return -ENOKEY;
	const unsigned char *p = ders[0];
	_cleanup_(X509_freep) X509 *leaf = d2i_X509(NULL, &p, (long)lens[0]);
	if (!leaf)
		return -EACCES;
	STACK_OF(X509) *chain = sk_X509_new_null();
	if (!chain)
		return -ENOMEM;
	for (size_t i = 1; i < n && i < 8; i++) {
		p = ders[i];
		X509 *c = d2i_X509(NULL, &p, (long)lens[i]);
		if (c && !sk_X509_push(chain, c))
			X509_free(c);
	}
	_cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok = ctx && X509_STORE_CTX_init(ctx, ca->store, leaf, chain) == 1 &&
	         X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) == 1 &&
	         X509_verify_cert(ctx) == 1;
	sk_X509_pop_free(chain, X509_free);
	if (!ok)
		return -EACCES;
	char cn[SRV_CA_CN_MAX];
	int len = X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn,
	                                    sizeof(cn));
	if (len <= 0 || (size_t)len >= sizeof(cn) - 1)
		return -EACCES;
	memcpy(ret_cn, cn, sizeof(cn));
	return 0;
}
