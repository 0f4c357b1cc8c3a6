// SPDX-License-Identifier: Apache-2.0
/*
 * corrald-crypto, the helper that holds all of corrald's libcrypto work (crypto_helper.h):
 *  - the real helper binary on a real SQLite file: state of a fresh store, first root, a bundle
 *    applied and its view, refusals with their reason codes (rollback, unknown key, malformed
 *    roots), a stored bundle tampered with, the device key (created 0600, refused when others
 *    can read it), CSRs (fresh key on renewal) and certificate checks against the key;
 *  - a malformed request sent raw to the real helper;
 *  - every -errno of cd_crypto_call, with a stand-in helper (fake_crypto.c) that misbehaves.
 */
#include "cleanup.h"
#include "crypto_helper.h"
#include "db.h"
#include "deny.h"
#include "fixtures.h"
#include "harness.h"
#include "identity.h"
#include "ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sqlite3.h>

static const enum fx_key S12[] = {FX_SIGNER1, FX_SIGNER2};
static const enum fx_key OUT[] = {FX_OUTSIDER};
static char *g_dir;
static char g_db[512], g_helper[512];

static int setup(void)
{
	g_dir = harness_mkdtemp("crypto");
	if (!g_dir)
		return -1;
	snprintf(g_db, sizeof(g_db), "%s/corrald.db", g_dir);
	snprintf(g_helper, sizeof(g_helper), "%s/bin/corrald-crypto", harness_binary_dir());
	/* the daemon creates and migrates its database before the helper ever opens it */
	sqlite3 *db = NULL;
	char err[256];
	if (db_open(g_db, endpoint_migrations, 0, &db, err, sizeof(err)) < 0)
		return -1;
	sqlite3_close_v2(db);
	return 0;
}

static int teardown(void)
{
	fx_keys_free();
	harness_rm_rf(g_dir);
	free(g_dir);
	return 0;
}

static Corral__CryptoReply *call_ok(Corral__CryptoRequest *rq)
{
	Corral__CryptoReply *rp = NULL;
	int r = cd_crypto_call(g_helper, rq, CD_CRYPTO_TIMEOUT_MS, &rp);
	CU_ASSERT_EQUAL(r, 0);
	if (r < 0)
		fprintf(stderr, "cd_crypto_call: %s\n", strerror(-r));
	return rp;
}

static Corral__CryptoReply *store_call(Corral__CryptoOp op, struct fx_blob env)
{
	Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
	rq.op = op;
	rq.db_path = g_db;
	rq.now = FX_NOW;
	rq.envelope.data = env.data;
	rq.envelope.len = env.len;
	rq.device_id = (char *)"dev-1";
	char *groups[] = {(char *)"eng"};
	rq.groups = groups;
	rq.n_groups = 1;
	return call_ok(&rq);
}

static void test_store_ops(void)
{
	/* a fresh store: no root, nothing applied */
	Corral__CryptoReply *rp =
	        store_call(CORRAL__CRYPTO_OP__CRYPTO_OP_STATE, (struct fx_blob){0});
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_EQUAL(rp->result, 0);
	CU_ASSERT_FATAL(rp->view != NULL);
	CU_ASSERT_FALSE(rp->view->root_present);
	CU_ASSERT_EQUAL(rp->view->bundle.len, 0);
	corral__crypto_reply__free_unpacked(rp, NULL);

	/* a bundle before any root: refused, and the reason says why */
	struct fx_blob b3 = fx_bundle(3, FX_NOW - 60, FX_NOW + FX_DAY, S12, 2);
	rp = store_call(CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_BUNDLE, b3);
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_EQUAL(rp->result, -ENOKEY);
	CU_ASSERT_STRING_EQUAL(rp->reason, "unknown-key");
	corral__crypto_reply__free_unpacked(rp, NULL);

	struct fx_blob root = fx_root_v1();
	rp = store_call(CORRAL__CRYPTO_OP__CRYPTO_OP_INSTALL_ROOT, root);
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_EQUAL(rp->result, 1);
	CU_ASSERT_TRUE(rp->view->root_present);
	CU_ASSERT_EQUAL(rp->view->root_version, 1);
	corral__crypto_reply__free_unpacked(rp, NULL);

	rp = store_call(CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_BUNDLE, b3);
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_EQUAL(rp->result, 0);
	CU_ASSERT_EQUAL(rp->version, 3);
	CU_ASSERT_EQUAL(rp->expires_at, FX_NOW + FX_DAY);
	CU_ASSERT_EQUAL(rp->n_signer_key_ids, 2);
	CU_ASSERT_EQUAL(rp->view->highest_version, 3);
	CU_ASSERT_EQUAL(rp->view->bundle_version, 3);
	CU_ASSERT_EQUAL(rp->view->n_signer_key_ids, 2);
	Corral__PolicyBundle *pb =
	        corral__policy_bundle__unpack(NULL, rp->view->bundle.len, rp->view->bundle.data);
	CU_ASSERT_FATAL(pb != NULL);
	CU_ASSERT_EQUAL(pb->version, 3);
	corral__policy_bundle__free_unpacked(pb, NULL);
	corral__crypto_reply__free_unpacked(rp, NULL);

	/* the same bundle again: rollback; what is in force stays */
	rp = store_call(CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_BUNDLE, b3);
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_TRUE(rp->result < 0);
	CU_ASSERT_STRING_EQUAL(rp->reason, "rollback");
	CU_ASSERT_EQUAL(rp->view->bundle_version, 3);
	corral__crypto_reply__free_unpacked(rp, NULL);

	/* signed by a key the root does not list */
	struct fx_blob b4 = fx_bundle(4, FX_NOW - 60, FX_NOW + FX_DAY, OUT, 1);
	rp = store_call(CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_BUNDLE, b4);
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_TRUE(rp->result < 0);
	CU_ASSERT_TRUE(strcmp(rp->reason, "unknown-key") == 0 ||
	               strcmp(rp->reason, "threshold") == 0);
	CU_ASSERT_EQUAL(rp->view->bundle_version, 3);
	corral__crypto_reply__free_unpacked(rp, NULL);

	/* roots that do not decode: all refused */
	Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
	rq.op = CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_ROOTS;
	rq.db_path = g_db;
	rq.now = FX_NOW;
	uint8_t junk[] = {0xff, 0xff, 0xff};
	ProtobufCBinaryData roots[] = {{.data = junk, .len = sizeof(junk)}};
	rq.envelopes = roots;
	rq.n_envelopes = 1;
	rp = call_ok(&rq);
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_TRUE(rp->result < 0);
	CU_ASSERT_STRING_EQUAL(rp->reason, "malformed");
	CU_ASSERT_EQUAL(rp->view->root_version, 1);
	corral__crypto_reply__free_unpacked(rp, NULL);

	/* the stored bundle tampered with: the view says so and holds none */
	sqlite3 *db = NULL;
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(g_db, &db), SQLITE_OK);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "UPDATE trust_state SET bundle = x'0a0100' WHERE id = 1",
	                             NULL, NULL, NULL),
	                SQLITE_OK);
	sqlite3_close_v2(db);
	rp = store_call(CORRAL__CRYPTO_OP__CRYPTO_OP_STATE, (struct fx_blob){0});
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_EQUAL(rp->result, 0);
	CU_ASSERT_EQUAL(rp->view->bundle.len, 0);
	CU_ASSERT_EQUAL(rp->view->bundle_error, -EBADMSG);
	corral__crypto_reply__free_unpacked(rp, NULL);

	/* a database that is not one: the operation fails, there is no view */
	char notdb[600];
	snprintf(notdb, sizeof(notdb), "%s/not-a-db", g_dir);
	int fd = open(notdb, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CU_ASSERT_TRUE(fd >= 0 && write(fd, "not sqlite at all, not at all....", 33) == 33);
	close(fd);
	Corral__CryptoRequest st = CORRAL__CRYPTO_REQUEST__INIT;
	st.op = CORRAL__CRYPTO_OP__CRYPTO_OP_STATE;
	st.db_path = notdb;
	rp = call_ok(&st);
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_TRUE(rp->result < 0);
	CU_ASSERT_PTR_NULL(rp->view);
	corral__crypto_reply__free_unpacked(rp, NULL);
	fx_blob_free(&b3);
	fx_blob_free(&b4);
	fx_blob_free(&root);
}

static uint8_t *self_signed(EVP_PKEY *k, size_t *len)
{
	X509 *x = X509_new();
	CU_ASSERT_FATAL(x != NULL);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	CU_ASSERT_FATAL(X509_sign(x, k, EVP_sha256()) > 0);
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	X509_free(x);
	CU_ASSERT_FATAL(n > 0);
	uint8_t *copy = malloc((size_t)n);
	memcpy(copy, der, (size_t)n);
	OPENSSL_free(der);
	*len = (size_t)n;
	return copy;
}

static Corral__CryptoReply *key_call(Corral__CryptoOp op, const char *path, bool new_key)
{
	Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
	rq.op = op;
	rq.key_path = (char *)path;
	rq.cn = (char *)"host-1";
	rq.new_key = new_key;
	return call_ok(&rq);
}

static Corral__CryptoReply *cert_call(const uint8_t *der, size_t len, const char *key_path)
{
	Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
	rq.op = CORRAL__CRYPTO_OP__CRYPTO_OP_CERT;
	rq.certificate_der.data = (uint8_t *)der;
	rq.certificate_der.len = len;
	ProtobufCBinaryData chain[] = {{.data = (uint8_t *)der, .len = len}};
	rq.ca_chain_der = chain;
	rq.n_ca_chain_der = 1;
	rq.key_path = (char *)key_path;
	return call_ok(&rq);
}

static void test_identity_ops(void)
{
	char key[600], other[600];
	snprintf(key, sizeof(key), "%s/device.key", g_dir);
	snprintf(other, sizeof(other), "%s/device.key.new", g_dir);
	/* KEY_PEM makes the key when there is none, 0600 */
	Corral__CryptoReply *rp = key_call(CORRAL__CRYPTO_OP__CRYPTO_OP_KEY_PEM, key, false);
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_EQUAL(rp->result, 0);
	CU_ASSERT_TRUE(rp->pem.len > 0 &&
	               memcmp(rp->pem.data, "-----BEGIN PRIVATE KEY-----", 27) == 0);
	corral__crypto_reply__free_unpacked(rp, NULL);
	struct stat st;
	CU_ASSERT_EQUAL_FATAL(stat(key, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);

	/* a CSR for that key */
	rp = key_call(CORRAL__CRYPTO_OP__CRYPTO_OP_CSR, key, false);
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_EQUAL(rp->result, 0);
	const unsigned char *p = rp->csr_der.data;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)rp->csr_der.len);
	CU_ASSERT_PTR_NOT_NULL(req);
	EVP_PKEY *pk = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_identity_load_key(key, &pk), 0);
	CU_ASSERT_TRUE(req && X509_REQ_verify(req, pk) == 1);
	X509_REQ_free(req);
	corral__crypto_reply__free_unpacked(rp, NULL);

	/* renewal: a fresh key written where asked, and the CSR is for that one */
	rp = key_call(CORRAL__CRYPTO_OP__CRYPTO_OP_CSR, other, true);
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_EQUAL(rp->result, 0);
	corral__crypto_reply__free_unpacked(rp, NULL);
	CU_ASSERT_EQUAL_FATAL(stat(other, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);

	/* a certificate for the device key matches it, not the other one */
	size_t len = 0;
	uint8_t *der = self_signed(pk, &len);
	rp = cert_call(der, len, key);
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_EQUAL(rp->result, 0);
	CU_ASSERT_TRUE(rp->key_matches);
	CU_ASSERT_TRUE(rp->not_after - rp->not_before == 3600);
	CU_ASSERT_TRUE(rp->pem.len > 0 &&
	               memcmp(rp->pem.data, "-----BEGIN CERTIFICATE-----", 27) == 0);
	CU_ASSERT_EQUAL(rp->ca_pem.len, rp->pem.len);
	corral__crypto_reply__free_unpacked(rp, NULL);
	rp = cert_call(der, len, other);
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_EQUAL(rp->result, 0);
	CU_ASSERT_FALSE(rp->key_matches);
	corral__crypto_reply__free_unpacked(rp, NULL);
	/* a key that is not there is no match either */
	char none[600];
	snprintf(none, sizeof(none), "%s/absent.key", g_dir);
	rp = cert_call(der, len, none);
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_FALSE(rp->key_matches);
	corral__crypto_reply__free_unpacked(rp, NULL);
	/* bytes that are not a certificate */
	der[0] ^= 0xff;
	rp = cert_call(der, len, key);
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_EQUAL(rp->result, -EBADMSG);
	corral__crypto_reply__free_unpacked(rp, NULL);
	free(der);
	EVP_PKEY_free(pk);

	/* a device key others can read is refused */
	CU_ASSERT_EQUAL(chmod(key, 0644), 0);
	rp = key_call(CORRAL__CRYPTO_OP__CRYPTO_OP_KEY_PEM, key, false);
	CU_ASSERT_FATAL(rp != NULL);
	CU_ASSERT_EQUAL(rp->result, -EPERM);
	CU_ASSERT_EQUAL(rp->pem.len, 0);
	corral__crypto_reply__free_unpacked(rp, NULL);
}

/* The helper's own check of what it receives: raw bytes, not through cd_crypto_call. */
static void test_malformed_request(void)
{
	const uint8_t *frames[] = {(const uint8_t *)"\xff\xff\xff", (const uint8_t *)"\x08\x63"};
	const size_t lens[] = {3, 2}; /* undecodable; op 99 */
	for (size_t i = 0; i < 2; i++) {
		int sv[2];
		CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
		char *argv[] = {(char *)"corrald-crypto", NULL}, *envp[] = {NULL};
		pid_t pid;
		CU_ASSERT_EQUAL_FATAL(posix_spawn(&pid, g_helper, &fa, NULL, argv, envp), 0);
		posix_spawn_file_actions_destroy(&fa);
		close(sv[1]);
		CU_ASSERT_EQUAL(send(sv[0], frames[i], lens[i], 0), (ssize_t)lens[i]);
		uint8_t *buf = NULL;
		ssize_t n = cd_ipc_recv(sv[0], CD_CRYPTO_FRAME_MAX, &buf, NULL, 0, NULL);
		CU_ASSERT_TRUE_FATAL(n > 0);
		Corral__CryptoReply *rp = corral__crypto_reply__unpack(NULL, (size_t)n, buf);
		CU_ASSERT_FATAL(rp != NULL);
		CU_ASSERT_EQUAL(rp->result, -EBADMSG);
		CU_ASSERT_TRUE(strncmp(rp->detail, "malformed request", 17) == 0);
		corral__crypto_reply__free_unpacked(rp, NULL);
		free(buf);
		close(sv[0]);
		int status = 0;
		CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
		CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

static int fake_call(const char *mode, int timeout_ms)
{
	Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
	rq.op = CORRAL__CRYPTO_OP__CRYPTO_OP_CSR;
	rq.key_path = (char *)"/nonexistent/key";
	rq.cn = (char *)mode;
	Corral__CryptoReply *rp = NULL;
	int r = cd_crypto_call(FAKE_CRYPTO_PATH, &rq, timeout_ms, &rp);
	if (r == 0)
		corral__crypto_reply__free_unpacked(rp, NULL);
	return r;
}

static void test_call_errors(void)
{
	CU_ASSERT_EQUAL(fake_call("ok", 5000), 0);
	/* a request that fails its own check never reaches a helper */
	Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
	Corral__CryptoReply *rp = NULL;
	CU_ASSERT_EQUAL(cd_crypto_call(FAKE_CRYPTO_PATH, &rq, 1000, &rp), -EINVAL);
	/* no helper, or one that cannot be executed */
	rq.op = CORRAL__CRYPTO_OP__CRYPTO_OP_KEY_PEM;
	rq.key_path = (char *)"/nonexistent/key";
	CU_ASSERT_EQUAL(cd_crypto_call("/nonexistent/corrald-crypto", &rq, 1000, &rp), -ENOENT);
	char noexec[600];
	snprintf(noexec, sizeof(noexec), "%s/noexec", g_dir);
	int fd = open(noexec, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CU_ASSERT_TRUE(fd >= 0);
	close(fd);
	CU_ASSERT_EQUAL(cd_crypto_call(noexec, &rq, 1000, &rp), -EACCES);
	CU_ASSERT_EQUAL(fake_call("hang", 200), -ETIMEDOUT);
	CU_ASSERT_EQUAL(fake_call("silent", 5000), -EPIPE);
	CU_ASSERT_EQUAL(fake_call("garbage", 5000), -EBADMSG);
	CU_ASSERT_EQUAL(fake_call("out-of-range", 5000), -EBADMSG);
	CU_ASSERT_EQUAL(fake_call("fail-after", 5000), -EPROTO);
	/* a frame over the cap: the socket buffers only take it with SO_SNDBUFFORCE (root) */
	if (harness_is_root()) {
		CU_ASSERT_EQUAL(fake_call("big", 5000), -EMSGSIZE);
	} else {
		harness_skip("oversized reply: needs root for SO_SNDBUFFORCE");
	}
}

/* The helper confines itself before it parses anything; when that fails it does not go on. */
static int child_confine_fails(void)
{
	const struct deny d = {SCMP_SYS(landlock_restrict_self), EPERM, 0, {}};
	if (install_denials(&d, 1) < 0)
		return 1;
	char key[600];
	snprintf(key, sizeof(key), "%s/unconfined.key", g_dir);
	Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
	rq.op = CORRAL__CRYPTO_OP__CRYPTO_OP_KEY_PEM;
	rq.key_path = key;
	Corral__CryptoReply *rp = NULL;
	if (cd_crypto_call(g_helper, &rq, CD_CRYPTO_TIMEOUT_MS, &rp) < 0)
		return 2;
	int bad = rp->result != -EPERM                             ? 3
	          : strncmp(rp->detail, "cannot confine", 14) != 0 ? 4
	          : rp->pem.len != 0                               ? 5
	          : access(key, F_OK) == 0                         ? 6 /* no key was made */
	                                                           : 0;
	corral__crypto_reply__free_unpacked(rp, NULL);
	return bad;
}

static void test_confine_fails(void)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(child_confine_fails());
	int st = 0;
	CU_ASSERT_EQUAL_FATAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT_TRUE(WIFEXITED(st));
	CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
}

/* The checks both sides run, on hand-made messages. */
static void test_checks(void)
{
	const char *why = NULL;
	Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
	CU_ASSERT_EQUAL(cd_crypto_request_check(&rq, &why), -EBADMSG);
	CU_ASSERT_STRING_EQUAL(why, "unknown operation");
	rq.op = CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_BUNDLE;
	rq.db_path = (char *)"/db";
	CU_ASSERT_EQUAL(cd_crypto_request_check(&rq, &why), -EBADMSG);
	CU_ASSERT_STRING_EQUAL(why, "envelope missing");
	char *groups[CD_CRYPTO_GROUPS_MAX + 1];
	for (size_t i = 0; i <= CD_CRYPTO_GROUPS_MAX; i++)
		groups[i] = (char *)"g";
	rq.groups = groups;
	rq.n_groups = CD_CRYPTO_GROUPS_MAX + 1;
	uint8_t one = 1;
	rq.envelope.data = &one;
	rq.envelope.len = 1;
	CU_ASSERT_EQUAL(cd_crypto_request_check(&rq, &why), -EBADMSG);
	rq.n_groups = 1;
	CU_ASSERT_EQUAL(cd_crypto_request_check(&rq, &why), 0);

	Corral__CryptoReply rp = CORRAL__CRYPTO_REPLY__INIT;
	CU_ASSERT_EQUAL(cd_crypto_reply_check(CORRAL__CRYPTO_OP__CRYPTO_OP_STATE, &rp, &why),
	                -EBADMSG);
	CU_ASSERT_STRING_EQUAL(why, "view missing");
	Corral__TrustView v = CORRAL__TRUST_VIEW__INIT;
	rp.view = &v;
	CU_ASSERT_EQUAL(cd_crypto_reply_check(CORRAL__CRYPTO_OP__CRYPTO_OP_STATE, &rp, &why), 0);
	char *ids[] = {(char *)"NOT-HEX"};
	v.signer_key_ids = ids;
	v.n_signer_key_ids = 1;
	CU_ASSERT_EQUAL(cd_crypto_reply_check(CORRAL__CRYPTO_OP__CRYPTO_OP_STATE, &rp, &why),
	                -EBADMSG);
	v.n_signer_key_ids = 0;
	uint8_t junk[] = {0xff};
	v.bundle.data = junk;
	v.bundle.len = 1;
	CU_ASSERT_EQUAL(cd_crypto_reply_check(CORRAL__CRYPTO_OP__CRYPTO_OP_STATE, &rp, &why),
	                -EBADMSG);
	rp.view = NULL;
	CU_ASSERT_EQUAL(cd_crypto_reply_check(CORRAL__CRYPTO_OP__CRYPTO_OP_KEY_PEM, &rp, &why),
	                -EBADMSG);
	CU_ASSERT_STRING_EQUAL(why, "key PEM missing");
}

int main(int argc, char **argv)
{
	static const struct harness_test tests[] = {
	        {"checks", test_checks},
	        {"call_errors", test_call_errors},
	        {"malformed_request", test_malformed_request},
	        {"store_ops", test_store_ops},
	        {"identity_ops", test_identity_ops},
	        {"confine_fails", test_confine_fails},
	        {NULL, NULL},
	};
	static const struct harness_suite suites[] = {
	        {"crypto", setup, teardown, tests},
	        {NULL, NULL, NULL, NULL},
	};
	return harness_main(argc, argv, suites);
}
