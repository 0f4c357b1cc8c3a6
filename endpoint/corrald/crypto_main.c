// SPDX-License-Identifier: Apache-2.0
/*
 * corrald-crypto: one request from corrald on fd 3, one reply, exit (see crypto_helper.h). All
 * of corrald's libcrypto work happens here: the trust store's verify-and-apply transactions
 * on the daemon's SQLite file, and the device key / CSR / certificate handling of identity.c.
 * Exit status 0 once a reply was sent (the reply carries the operation's own outcome), 1 when
 * no request could be read or no reply sent, 2 for a command-line error.
 */
#include "cleanup.h"
#include "confine.h"
#include "corral.pb-c.h"
#include "corral_version.h"
#include "crypto_helper.h"
#include "db.h"
#include "identity.h"
#include "ipc.h"
#include "log.h"
#include "store.h"
#include "trust.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sqlite3.h>

/* What a reply points into; released after it is sent. */
struct reply_bufs {
	struct trust_bundle_info applied, current;
	char *applied_ids[TRUST_MAX_SIGNATURES], *current_ids[TRUST_MAX_SIGNATURES];
	struct trust_result res;
	char detail[512];
	uint8_t *bundle, *csr;
	char *pem, *ca_pem;
	size_t pem_len;
	Corral__TrustView view;
};

static void bufs_free(struct reply_bufs *b)
{
	free(b->bundle);
	free(b->csr);
	if (b->pem) {
		OPENSSL_cleanse(b->pem, b->pem_len); /* KEY_PEM: the device key */
		free(b->pem);
	}
	free(b->ca_pem);
}

static void set_ids(char **ptrs, const struct trust_bundle_info *info, char ***ret, size_t *n)
{
	for (size_t i = 0; i < info->n_signers; i++)
		ptrs[i] = (char *)info->signer_key_ids[i];
	*ret = ptrs;
	*n = info->n_signers;
}

/* The view of what is in force after the operation: the chain's head, the rollback floor and
 * the bundle, re-verified from its stored bytes like every read of the store. */
static int fill_view(struct trust_store *st, struct reply_bufs *b, Corral__CryptoReply *rp)
{
	Corral__TrustView *v = &b->view;
	corral__trust_view__init(v);
	uint64_t rv = 0;
	int64_t rexp = 0;
	if (trust_store_root_info(st, &rv, &rexp) == 0) {
		v->root_present = true;
		v->root_version = rv;
		v->root_expires_at = rexp;
	}
	if (trust_store_highest_version(st, &v->highest_version) < 0)
		return -EIO;
	Corral__PolicyBundle *pb = NULL;
	int r = trust_store_current(st, NULL, NULL, &pb, &b->current);
	if (r == 0) {
		size_t len = corral__policy_bundle__get_packed_size(pb);
		b->bundle = malloc(len ? len : 1);
		if (!b->bundle) {
			corral__policy_bundle__free_unpacked(pb, NULL);
			return -ENOMEM;
		}
		corral__policy_bundle__pack(pb, b->bundle);
		corral__policy_bundle__free_unpacked(pb, NULL);
		v->bundle.data = b->bundle;
		v->bundle.len = len;
		v->bundle_version = b->current.version;
		v->bundle_expires_at = b->current.expires_at;
		set_ids(b->current_ids, &b->current, &v->signer_key_ids, &v->n_signer_key_ids);
	} else if (r != -ENOENT) {
		v->bundle_error = r; /* stored bytes that no longer verify: nothing in force */
	}
	rp->view = v;
	return 0;
}

static void set_outcome(Corral__CryptoReply *rp, struct reply_bufs *b, int r)
{
	rp->result = r;
	if (r < 0 && b->res.reason != TRUST_OK)
		rp->reason = (char *)trust_reason_code(b->res.reason);
	rp->detail = b->res.detail;
}

static int store_op(const Corral__CryptoRequest *rq, Corral__CryptoReply *rp, struct reply_bufs *b)
{
	sqlite3 *db = NULL;
	char err[256] = "";
	int r = db_open(rq->db_path, endpoint_migrations, 0, &db, err, sizeof(err));
	if (r < 0) {
		snprintf(b->detail, sizeof(b->detail), "database: %s", err);
		rp->result = r;
		rp->detail = b->detail;
		return 0;
	}
	struct trust_store *st = NULL;
	r = trust_store_open(db, &st);
	if (r < 0) {
		snprintf(b->detail, sizeof(b->detail), "trust store: %s", strerror(-r));
		rp->result = r;
		rp->detail = b->detail;
		sqlite3_close_v2(db);
		return 0;
	}
	switch (rq->op) {
	case CORRAL__CRYPTO_OP__CRYPTO_OP_STATE:
		r = 0;
		break;
	case CORRAL__CRYPTO_OP__CRYPTO_OP_INSTALL_ROOT:
		r = trust_store_install_root(st, rq->envelope.data, rq->envelope.len, rq->now,
		                             &b->res);
		break;
	case CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_ROOTS: {
		const uint8_t *envs[CD_CRYPTO_ROOTS_MAX];
		size_t lens[CD_CRYPTO_ROOTS_MAX];
		for (size_t i = 0; i < rq->n_envelopes; i++) {
			envs[i] = rq->envelopes[i].data;
			lens[i] = rq->envelopes[i].len;
		}
		r = trust_store_apply_roots(st, envs, lens, rq->n_envelopes, rq->now, &b->res);
		break;
	}
	case CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_BUNDLE:
		r = trust_store_apply_bundle(st, rq->envelope.data, rq->envelope.len,
		                             *rq->device_id ? rq->device_id : NULL,
		                             (const char *const *)rq->groups, rq->n_groups, rq->now,
		                             &b->applied, &b->res);
		if (r == 0) {
			rp->version = b->applied.version;
			rp->expires_at = b->applied.expires_at;
			set_ids(b->applied_ids, &b->applied, &rp->signer_key_ids,
			        &rp->n_signer_key_ids);
		}
		break;
	default:
		r = -EINVAL;
		break;
	}
	set_outcome(rp, b, r);
	int vr = fill_view(st, b, rp);
	trust_store_free(st);
	sqlite3_close_v2(db);
	if (vr < 0 && r >= 0)
		rp->result = vr;
	return 0;
}

static int key_op(const Corral__CryptoRequest *rq, Corral__CryptoReply *rp, struct reply_bufs *b)
{
	EVP_PKEY *pk = NULL;
	int r;
	if (rq->op == CORRAL__CRYPTO_OP__CRYPTO_OP_CSR && rq->new_key) {
		/* Renewal: a fresh key, on disk (0600) before the request leaves, so the answer
		 * can be checked against it by a later helper. */
		r = cd_identity_generate_key(&pk);
		if (r == 0)
			r = cd_identity_save_key(pk, rq->key_path);
	} else {
		r = cd_identity_load_or_create_key(rq->key_path, &pk);
	}
	if (r == 0 && rq->op == CORRAL__CRYPTO_OP__CRYPTO_OP_KEY_PEM) {
		r = cd_identity_key_pem(pk, &b->pem, &b->pem_len);
		if (r == 0) {
			rp->pem.data = (uint8_t *)b->pem;
			rp->pem.len = b->pem_len;
		}
	} else if (r == 0) {
		size_t len = 0;
		r = cd_identity_make_csr(pk, rq->cn, &b->csr, &len);
		if (r == 0) {
			rp->csr_der.data = b->csr;
			rp->csr_der.len = len;
		}
	}
	EVP_PKEY_free(pk);
	if (r < 0)
		snprintf(b->detail, sizeof(b->detail), "device key %s: %s", rq->key_path,
		         strerror(-r));
	rp->detail = b->detail;
	rp->result = r;
	return 0;
}

static int cert_op(const Corral__CryptoRequest *rq, Corral__CryptoReply *rp, struct reply_bufs *b)
{
	const uint8_t *der = rq->certificate_der.data;
	size_t der_len = rq->certificate_der.len;
	int r = cd_identity_der_to_pem(&der, &der_len, 1, &b->pem, &b->pem_len);
	if (r == 0)
		r = cd_identity_cert_times(der, der_len, &rp->not_before, &rp->not_after);
	if (r == 0 && rq->n_ca_chain_der > 0) {
		const uint8_t *ders[CD_CRYPTO_CA_MAX];
		size_t lens[CD_CRYPTO_CA_MAX], ca_len = 0;
		for (size_t i = 0; i < rq->n_ca_chain_der; i++) {
			ders[i] = rq->ca_chain_der[i].data;
			lens[i] = rq->ca_chain_der[i].len;
		}
		r = cd_identity_der_to_pem(ders, lens, rq->n_ca_chain_der, &b->ca_pem, &ca_len);
		if (r == 0) {
			rp->ca_pem.data = (uint8_t *)b->ca_pem;
			rp->ca_pem.len = ca_len;
		}
	}
	if (r == 0) {
		rp->pem.data = (uint8_t *)b->pem;
		rp->pem.len = b->pem_len;
		if (*rq->key_path) {
			/* A missing or unreadable key is simply not a match. */
			EVP_PKEY *pk = NULL;
			if (cd_identity_load_key(rq->key_path, &pk) == 0)
				rp->key_matches = cd_identity_cert_matches_key(der, der_len, pk);
			EVP_PKEY_free(pk);
		}
	} else {
		snprintf(b->detail, sizeof(b->detail), "certificate: %s", strerror(-r));
		rp->detail = b->detail;
	}
	rp->result = r;
	return 0;
}

/* The directory of `path` into dir (a path without a slash: the current one). */
static void dir_of(const char *path, char *dir, size_t size)
{
	snprintf(dir, size, "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, size, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
}

/*
 * Before any untrusted byte (a bundle, a root, a certificate) is parsed: no capabilities (uid 0
 * still owns the database and the key), no_new_privs, and Landlock to the one directory the
 * operation works in (the database's, or the key's: the files there, their WAL and journal
 * files, the temporary file of an atomic key write) plus /dev/urandom for SQLite. A kernel
 * without Landlock leaves the first two.
 */
static int confine(const Corral__CryptoRequest *rq)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	int r = cd_confine_drop_caps();
	if (r < 0)
		return r;
	char dir[4096];
	struct cd_confine_path paths[3] = {{"/dev/urandom", false}};
	size_t n = 1;
#ifdef CORRAL_SANITIZED
	/* LeakSanitizer reads /proc/self/task and maps at exit (see STYLE.md) */
	paths[n++] = (struct cd_confine_path){"/proc/self", false};
#endif
	if (*rq->db_path) {
		dir_of(rq->db_path, dir, sizeof(dir));
		paths[n++] = (struct cd_confine_path){dir, true};
	} else if (*rq->key_path) {
		dir_of(rq->key_path, dir, sizeof(dir));
		/* CERT only reads the key; KEY_PEM and CSR may create it */
		paths[n++] =
		        (struct cd_confine_path){dir, rq->op != CORRAL__CRYPTO_OP__CRYPTO_OP_CERT};
	}
	r = cd_confine_landlock(paths, n, 0);
	return r == -EOPNOTSUPP ? 0 : r;
}

static void usage(FILE *f)
{
	fputs("usage: corrald-crypto\n"
	      "corrald's crypto helper: started by corrald with a socket on fd 3, it answers one\n"
	      "request (policy and trust-root verification and apply, device key, CSR,\n"
	      "certificate checks) and exits. Not meant to be run by hand.\n",
	      f);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[1], "--version") == 0) {
			printf("corrald-crypto %s\n", CORRAL_VERSION);
			return 0;
		}
		usage(stderr);
		return 2;
	}
	log_setup("corrald-crypto", LOG_LEVEL_WARN);
	struct stat sb;
	if (fstat(3, &sb) < 0 || !S_ISSOCK(sb.st_mode)) {
		log_err("fd 3 is not corrald's socket (this helper is started by corrald only)");
		return 2;
	}
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, NULL);
	_cleanup_free_ uint8_t *buf = NULL;
	ssize_t n = cd_ipc_recv(3, CD_CRYPTO_FRAME_MAX, &buf, NULL, 0, NULL);
	if (n <= 0) {
		if (n < 0)
			log_err("reading the request: %s", strerror((int)-n));
		return 1;
	}
	Corral__CryptoReply rp = CORRAL__CRYPTO_REPLY__INIT;
	struct reply_bufs b;
	memset(&b, 0, sizeof(b));
	rp.detail = b.detail;
	Corral__CryptoRequest *rq = corral__crypto_request__unpack(NULL, (size_t)n, buf);
	const char *why = "request does not decode";
	int cr = 0;
	if (!rq || cd_crypto_request_check(rq, &why) < 0) {
		snprintf(b.detail, sizeof(b.detail), "malformed request: %s", why);
		rp.result = -EBADMSG;
	} else if ((cr = confine(rq)) < 0) {
		snprintf(b.detail, sizeof(b.detail), "cannot confine the crypto helper: %s",
		         strerror(-cr));
		rp.result = cr;
	} else if (rq->op == CORRAL__CRYPTO_OP__CRYPTO_OP_KEY_PEM ||
	           rq->op == CORRAL__CRYPTO_OP__CRYPTO_OP_CSR) {
		key_op(rq, &rp, &b);
	} else if (rq->op == CORRAL__CRYPTO_OP__CRYPTO_OP_CERT) {
		cert_op(rq, &rp, &b);
	} else {
		store_op(rq, &rp, &b);
	}
	int r = cd_ipc_send(3, &rp.base, CD_CRYPTO_FRAME_MAX, NULL, 0);
	if (r < 0)
		log_err("sending the reply: %s", strerror(-r));
	bufs_free(&b);
	if (rq)
		corral__crypto_request__free_unpacked(rq, NULL);
	return r < 0 ? 1 : 0;
}
