// SPDX-License-Identifier: Apache-2.0
/* corrald's side of corrald-crypto (see crypto_helper.h), and the frame checks both sides
 * share. Free of libcrypto by design: this file is linked into the root parent. */
#include "crypto_helper.h"

#include "cleanup.h"
#include "ipc.h"
#include "trust.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PATH_MAX_LEN 4095u
#define TEXT_MAX     255u /* device id, CN, a group name */
#define DETAIL_MAX   1023u

static bool str_ok(const char *s, size_t max)
{
	return s && strnlen(s, max + 1) <= max;
}

static bool nonempty(const char *s, size_t max)
{
	return str_ok(s, max) && *s;
}

static int bad(const char **why, const char *what)
{
	if (why)
		*why = what;
	return -EBADMSG;
}

int cd_crypto_request_check(const Corral__CryptoRequest *rq, const char **why)
{
	if (!rq)
		return bad(why, "no request");
	if (!str_ok(rq->db_path, PATH_MAX_LEN) || !str_ok(rq->key_path, PATH_MAX_LEN) ||
	    !str_ok(rq->device_id, TEXT_MAX) || !str_ok(rq->cn, TEXT_MAX))
		return bad(why, "a path or name is too long");
	if (rq->envelope.len > TRUST_ENVELOPE_MAX)
		return bad(why, "envelope larger than the cap");
	if (rq->n_envelopes > CD_CRYPTO_ROOTS_MAX || rq->n_groups > CD_CRYPTO_GROUPS_MAX ||
	    rq->n_ca_chain_der > CD_CRYPTO_CA_MAX)
		return bad(why, "too many trust roots, groups or CA certificates");
	size_t total = 0;
	for (size_t i = 0; i < rq->n_envelopes; i++) {
		if (rq->envelopes[i].len == 0 || rq->envelopes[i].len > TRUST_ENVELOPE_MAX)
			return bad(why, "empty or oversized trust root");
		total += rq->envelopes[i].len;
	}
	if (total > TRUST_ENVELOPE_MAX)
		return bad(why, "trust roots larger than the envelope cap in all");
	for (size_t i = 0; i < rq->n_groups; i++)
		if (!nonempty(rq->groups[i], TEXT_MAX))
			return bad(why, "empty or oversized group name");
	if (rq->certificate_der.len > CD_CRYPTO_CERT_MAX)
		return bad(why, "certificate larger than the cap");
	for (size_t i = 0; i < rq->n_ca_chain_der; i++)
		if (rq->ca_chain_der[i].len == 0 || rq->ca_chain_der[i].len > CD_CRYPTO_CERT_MAX)
			return bad(why, "empty or oversized CA certificate");
	switch (rq->op) {
	case CORRAL__CRYPTO_OP__CRYPTO_OP_STATE:
		return nonempty(rq->db_path, PATH_MAX_LEN) ? 0 : bad(why, "db_path missing");
	case CORRAL__CRYPTO_OP__CRYPTO_OP_INSTALL_ROOT:
	case CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_BUNDLE:
		if (!nonempty(rq->db_path, PATH_MAX_LEN))
			return bad(why, "db_path missing");
		return rq->envelope.len > 0 ? 0 : bad(why, "envelope missing");
	case CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_ROOTS:
		if (!nonempty(rq->db_path, PATH_MAX_LEN))
			return bad(why, "db_path missing");
		return rq->n_envelopes > 0 ? 0 : bad(why, "trust roots missing");
	case CORRAL__CRYPTO_OP__CRYPTO_OP_KEY_PEM:
		return nonempty(rq->key_path, PATH_MAX_LEN) ? 0 : bad(why, "key_path missing");
	case CORRAL__CRYPTO_OP__CRYPTO_OP_CSR:
		if (!nonempty(rq->key_path, PATH_MAX_LEN))
			return bad(why, "key_path missing");
		return nonempty(rq->cn, TEXT_MAX) ? 0 : bad(why, "cn missing");
	case CORRAL__CRYPTO_OP__CRYPTO_OP_CERT:
		return rq->certificate_der.len > 0 ? 0 : bad(why, "certificate missing");
	default:
		return bad(why, "unknown operation");
	}
}

static bool key_id_ok(const char *s)
{
	if (!str_ok(s, TRUST_KEY_ID_LEN) || !*s)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static bool key_ids_ok(char *const *ids, size_t n)
{
	if (n > TRUST_MAX_SIGNATURES)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!key_id_ok(ids[i]))
			return false;
	return true;
}

int cd_crypto_reply_check(Corral__CryptoOp op, const Corral__CryptoReply *rp, const char **why)
{
	if (!rp)
		return bad(why, "no reply");
	/* APPLY_ROOTS answers how many roots it added, INSTALL_ROOT 1 when it installed one */
	if (rp->result < -4095 || rp->result > (int32_t)CD_CRYPTO_ROOTS_MAX)
		return bad(why, "result out of range");
	if (!str_ok(rp->reason, 63) || !str_ok(rp->detail, DETAIL_MAX))
		return bad(why, "reason or detail too long");
	if (!key_ids_ok(rp->signer_key_ids, rp->n_signer_key_ids))
		return bad(why, "bad signer key ids");
	if (rp->pem.len > CD_CRYPTO_CERT_MAX * 2 ||
	    rp->ca_pem.len > CD_CRYPTO_CERT_MAX * 2 * CD_CRYPTO_CA_MAX ||
	    rp->csr_der.len > CD_CRYPTO_CERT_MAX)
		return bad(why, "PEM or CSR larger than the cap");
	bool store_op = op == CORRAL__CRYPTO_OP__CRYPTO_OP_STATE ||
	                op == CORRAL__CRYPTO_OP__CRYPTO_OP_INSTALL_ROOT ||
	                op == CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_ROOTS ||
	                op == CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_BUNDLE;
	const Corral__TrustView *v = rp->view;
	/* A store operation always returns the view, even when it failed (what is in force). A
	 * failure to open the store itself returns no view. */
	if (store_op && !v && rp->result == 0)
		return bad(why, "view missing");
	if (v) {
		if (!key_ids_ok(v->signer_key_ids, v->n_signer_key_ids))
			return bad(why, "bad signer key ids in the view");
		if (v->bundle_error < -4095 || v->bundle_error > 0)
			return bad(why, "bundle_error out of range");
		if (v->bundle.len > TRUST_ENVELOPE_MAX)
			return bad(why, "bundle larger than the cap");
		if (v->bundle.len > 0) {
			Corral__PolicyBundle *b =
			        corral__policy_bundle__unpack(NULL, v->bundle.len, v->bundle.data);
			bool same = b && b->version == v->bundle_version;
			if (b)
				corral__policy_bundle__free_unpacked(b, NULL);
			if (!same)
				return bad(why,
				           "view bundle does not decode or its version differs");
		}
	}
	if (rp->result == 0 && op == CORRAL__CRYPTO_OP__CRYPTO_OP_KEY_PEM && rp->pem.len == 0)
		return bad(why, "key PEM missing");
	if (rp->result == 0 && op == CORRAL__CRYPTO_OP__CRYPTO_OP_CSR && rp->csr_der.len == 0)
		return bad(why, "CSR missing");
	if (rp->result == 0 && op == CORRAL__CRYPTO_OP__CRYPTO_OP_CERT && rp->pem.len == 0)
		return bad(why, "certificate PEM missing");
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static pid_t spawn_helper(const char *path, int child_fd, int *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	if ((*err = posix_spawn_file_actions_init(&fa)) != 0)
		return -1;
	if ((*err = posix_spawnattr_init(&at)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	/* fd 3 is the socket (dup2 onto itself clears close-on-exec), nothing else is inherited
	 * (all our descriptors are close-on-exec; closefrom makes it explicit), and the signal
	 * mask corrald keeps for its signalfd is cleared. */
	sigset_t none;
	sigemptyset(&none);
	pid_t pid = -1;
	if ((*err = posix_spawn_file_actions_adddup2(&fa, child_fd, 3)) == 0 &&
	    (*err = posix_spawn_file_actions_addclosefrom_np(&fa, 4)) == 0 &&
	    (*err = posix_spawnattr_setsigmask(&at, &none)) == 0 &&
	    (*err = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK)) == 0) {
		char *const argv[] = {(char *)"corrald-crypto", NULL};
		char *const envp[] = {NULL};
		*err = posix_spawn(&pid, path, &fa, &at, argv, envp);
		if (*err != 0)
			pid = -1;
	}
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

static void close_fdp(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

int cd_crypto_call(const char *path, const Corral__CryptoRequest *rq, int timeout_ms,
                   Corral__CryptoReply **ret)
{
	if (!path || !ret || cd_crypto_request_check(rq, NULL) < 0)
		return -EINVAL;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	__attribute__((cleanup(close_fdp))) int mine = sv[0];
	/* A SEQPACKET frame must fit the sender's buffer whole (as for the worker). */
	int sz = (int)CD_CRYPTO_FRAME_MAX + 65536;
	for (int i = 0; i < 2; i++)
		if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
			(void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	int err = 0;
	pid_t pid = spawn_helper(path, sv[1], &err);
	close(sv[1]);
	if (pid < 0)
		return -err;
	int r = cd_ipc_send(mine, &rq->base, CD_CRYPTO_FRAME_MAX, NULL, 0);
	_cleanup_free_ uint8_t *buf = NULL;
	ssize_t n = 0;
	if (r == 0) {
		uint64_t deadline = mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
		for (;;) {
			uint64_t now = mono_ms();
			struct pollfd p = {.fd = mine, .events = POLLIN};
			int left = now >= deadline ? 0 : (int)(deadline - now);
			int pr = poll(&p, 1, left);
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr <= 0) {
				r = pr < 0 ? -errno : -ETIMEDOUT;
				break;
			}
			n = cd_ipc_recv(mine, CD_CRYPTO_FRAME_MAX, &buf, NULL, 0, NULL);
			r = n < 0 ? (int)n : n == 0 ? -EPIPE : 0;
			break;
		}
	} else if (r == -EPIPE || r == -ECONNRESET) {
		r = -EPIPE; /* it died before reading its request */
	}
	if (r < 0)
		kill(pid, SIGKILL); /* nothing more is wanted from it */
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r < 0)
		return r;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -EPROTO;
	Corral__CryptoReply *rp = corral__crypto_reply__unpack(NULL, (size_t)n, buf);
	if (!rp || cd_crypto_reply_check(rq->op, rp, NULL) < 0) {
		if (rp)
			corral__crypto_reply__free_unpacked(rp, NULL);
		return -EBADMSG;
	}
	*ret = rp;
	return 0;
}
