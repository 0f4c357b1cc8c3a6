// SPDX-License-Identifier: Apache-2.0
/*
 * Ed25519 keys through OpenSSL EVP: generation, PEM load and save (PKCS#8 private,
 * SubjectPublicKeyInfo public), key ids and raw signing. Private key files are written 0600
 * with O_EXCL and loaded only after util_check_secret_file() has refused group/world access.
 */
#include "internal.h"
#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

/* A PEM Ed25519 key is ~120 bytes; anything this large is not one of ours. */
#define TRUST_KEY_FILE_MAX (16u * 1024u)

struct trust_key {
	EVP_PKEY *pkey;
	bool is_private;
	uint8_t raw[TRUST_ED25519_PUB_LEN];
	char id[TRUST_KEY_ID_LEN + 1];
};

static void evp_pkey_freep(EVP_PKEY **p)
{
	EVP_PKEY_free(*p);
}

static void bio_freep(BIO **p)
{
	BIO_free(*p);
}

void trust_sha256_hex(const uint8_t *in, size_t len, char out[TRUST_KEY_ID_LEN + 1])
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256(in, len, md);
	util_hex(md, sizeof(md), out);
}

/* Takes ownership of pkey on success. */
static int key_wrap(EVP_PKEY *pkey, bool is_private, struct trust_key **ret_key)
{
	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519)
		return -EPROTONOSUPPORT;
	struct trust_key *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	size_t rlen = sizeof(k->raw);
	if (EVP_PKEY_get_raw_public_key(pkey, k->raw, &rlen) != 1 || rlen != sizeof(k->raw)) {
		free(k);
		return -EINVAL;
	}
	trust_sha256_hex(k->raw, sizeof(k->raw), k->id);
	k->pkey = pkey;
	k->is_private = is_private;
	*ret_key = k;
	return 0;
}

int trust_key_generate(struct trust_key **ret_key)
{
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	if (!ctx)
		return -ENOMEM;
	int ok = EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &pkey) == 1;
	EVP_PKEY_CTX_free(ctx);
	if (!ok)
		return -EIO;
	int r = key_wrap(pkey, true, ret_key);
	if (r < 0)
		EVP_PKEY_free(pkey);
	return r;
}

int trust_key_from_seed(const uint8_t seed[32], struct trust_key **ret_key)
{
	EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	if (!pkey)
		return -EINVAL;
	int r = key_wrap(pkey, true, ret_key);
	if (r < 0)
		EVP_PKEY_free(pkey);
	return r;
}

int trust_key_from_raw(const uint8_t *raw, size_t len, struct trust_key **ret_key)
{
	if (!raw || len != TRUST_ED25519_PUB_LEN)
		return -EINVAL;
	EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, len);
	if (!pkey)
		return -EINVAL;
	int r = key_wrap(pkey, false, ret_key);
	if (r < 0)
		EVP_PKEY_free(pkey);
	return r;
}

/* Reads a key file into a memory BIO (capped). */
static int read_pem(const char *path, BIO **ret_bio, bool *ret_has_private)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = util_read_file(path, TRUST_KEY_FILE_MAX, &buf, &len);
	if (r < 0)
		return r;
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return -ENOMEM;
	if (BIO_write(bio, buf, (int)len) != (int)len) {
		BIO_free(bio);
		return -ENOMEM;
	}
	*ret_has_private = strstr(buf, "PRIVATE KEY-----") != NULL;
	OPENSSL_cleanse(buf, len);
	*ret_bio = bio;
	return 0;
}

int trust_key_load_private(const char *path, struct trust_key **ret_key)
{
	/* Permissions first: a leaked-readable key is refused before its bytes are touched. */
	int r = util_check_secret_file(path);
	if (r < 0)
		return r;
	_cleanup_(bio_freep) BIO *bio = NULL;
	bool has_private = false;
	r = read_pem(path, &bio, &has_private);
	if (r < 0)
		return r;
	_cleanup_(evp_pkey_freep) EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	if (!pkey)
		return -EBADMSG;
	r = key_wrap(pkey, true, ret_key);
	if (r < 0)
		return r;
	pkey = NULL;
	return 0;
}

int trust_key_load_public(const char *path, struct trust_key **ret_key)
{
	_cleanup_(bio_freep) BIO *bio = NULL;
	bool has_private = false;
	int r = read_pem(path, &bio, &has_private);
	if (r < 0)
		return r;
	if (has_private) {
		/* The public half of a private key file: same permission rule as loading it. */
		struct trust_key *k = NULL;
		r = trust_key_load_private(path, &k);
		if (r < 0)
			return r;
		struct trust_key *pub = NULL;
		r = trust_key_from_raw(k->raw, sizeof(k->raw), &pub);
		trust_key_free(k);
		if (r < 0)
			return r;
		*ret_key = pub;
		return 0;
	}
	_cleanup_(evp_pkey_freep) EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (!pkey)
		return -EBADMSG;
	r = key_wrap(pkey, false, ret_key);
	if (r < 0)
		return r;
	pkey = NULL;
	return 0;
}

/* Creates `path` exclusively with `mode` and writes the BIO's bytes. */
static int write_new_file(const char *path, BIO *bio, unsigned mode)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	if (n <= 0 || !data)
		return -EIO;
	_cleanup_close_ int fd =
	        open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	/* The umask may have narrowed or (for the .pub) not: set the exact mode. */
	if (fchmod(fd, mode) < 0)
		goto fail;
	size_t left = (size_t)n;
	while (left > 0) {
		ssize_t w = write(fd, data, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		data += w;
		left -= (size_t)w;
	}
	if (fsync(fd) < 0)
		goto fail;
	return 0;
fail:;
	int r = -errno;
	unlink(path);
	return r;
}

static bool name_ok(const char *name)
{
	return name && name[0] && name[0] != '.' && !strchr(name, '/') && strlen(name) < 128;
}

int trust_key_save(const struct trust_key *key, const char *dir, const char *name)
{
	if (!key || !dir || !key->is_private || !name_ok(name))
		return -EINVAL;
	char kpath[PATH_MAX], ppath[PATH_MAX];
	if ((size_t)snprintf(kpath, sizeof(kpath), "%s/%s.key", dir, name) >= sizeof(kpath) ||
	    (size_t)snprintf(ppath, sizeof(ppath), "%s/%s.pub", dir, name) >= sizeof(ppath))
		return -ENAMETOOLONG;
	/* Check both before writing either, so a half pair is never left behind on -EEXIST. */
	struct stat st;
	if (lstat(kpath, &st) == 0 || lstat(ppath, &st) == 0)
		return -EEXIST;
	_cleanup_(bio_freep) BIO *kb = BIO_new(BIO_s_mem());
	_cleanup_(bio_freep) BIO *pb = BIO_new(BIO_s_mem());
	if (!kb || !pb)
		return -ENOMEM;
	if (PEM_write_bio_PrivateKey(kb, key->pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_PUBKEY(pb, key->pkey) != 1)
		return -EIO;
	int r = write_new_file(kpath, kb, 0600);
	if (r < 0)
		return r;
	r = write_new_file(ppath, pb, 0644);
	if (r < 0) {
		unlink(kpath);
		return r;
	}
	return 0;
}

const char *trust_key_id(const struct trust_key *key)
{
	return key->id;
}

const uint8_t *trust_key_raw_public(const struct trust_key *key)
{
	return key->raw;
}

bool trust_key_is_private(const struct trust_key *key)
{
	return key && key->is_private;
}

void trust_key_free(struct trust_key *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	free(key);
}

int trust_key_sign(const struct trust_key *key, const uint8_t *msg, size_t len,
                   uint8_t sig[TRUST_ED25519_SIG_LEN])
{
	if (!trust_key_is_private(key))
		return -EINVAL;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	size_t slen = TRUST_ED25519_SIG_LEN;
	/* Ed25519 is a one-shot scheme: no digest, EVP_DigestSign over the whole message. */
	int ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
	         EVP_DigestSign(ctx, sig, &slen, msg, len) == 1 && slen == TRUST_ED25519_SIG_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

bool trust_ed25519_verify(const uint8_t *pub, size_t pub_len, const uint8_t *msg, size_t len,
                          const uint8_t *sig, size_t sig_len)
{
	if (pub_len != TRUST_ED25519_PUB_LEN || sig_len != TRUST_ED25519_SIG_LEN)
		return false;
	EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, pub_len);
	if (!pkey)
		return false;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
	          EVP_DigestVerify(ctx, sig, sig_len, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return ok;
}

void trust_key_to_proto(const struct trust_key *key, const char *name, Corral__PublicKey *out)
{
	corral__public_key__init(out);
	out->key_id = (char *)key->id;
	out->algorithm = CORRAL__ALGORITHM__ALGORITHM_ED25519;
	out->public_key.data = (uint8_t *)key->raw;
	out->public_key.len = sizeof(key->raw);
	out->name = (char *)(name ? name : "");
}
