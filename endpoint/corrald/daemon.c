// SPDX-License-Identifier: Apache-2.0
/*
 * corrald's root parent (see daemon.h). This file is the top level of the daemon: it logs.
 *
 * Ordering rules that matter here:
 *  - every event is written to the outbox (its own transaction) before the daemon acts on it
 *    or answers a client about it;
 *  - a policy update is applied roots first, then the bundle, each through the trust store in
 *    one SQLite transaction, and only then is the next long-poll sent;
 *  - outbox rows are deleted only after the worker relayed the server's ReportAck;
 *  - session start/exit events are committed lazily (in the WAL: they survive a kill -9 at
 *    once) and fdatasync'ed at the latest OUTBOX_SYNC_DELAY_MS later, before any upload, and
 *    at shutdown (docs/endpoint.md, "Durable reporting").
 */
#include "daemon.h"

#include "cleanup.h"
#include "db.h"
#include "enforce.h"
#include "fsaudit.h"
#include "sbx.h"
#include "crypto_helper.h"
#include "kfeatures.h"
#include "ipc.h"
#include "tmppool.h"
#include "log.h"
#include "outbox.h"
#include "session.h"
#include "state.h"
#include "trust.h"
#include "util.h"
#include "worker.h"

#include "corral_version.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#define CLIENTS_MAX     64
#define TAG_SIGNAL      1u
#define TAG_TIMER       2u
#define TAG_LISTEN      3u
#define TAG_WORKER      4u
#define TAG_ENFORCE     5u
#define TAG_FSAUDIT     6u
#define TAG_CLIENT      0x100u
#define TAG_SESSION     0x200u
#define TOKEN_MAX       4096u
#define CA_PEM_MAX      ((size_t)256 * 1024)
#define GROUPS_TEXT_MAX ((size_t)64 * 66)
#define NEVER           UINT64_MAX
#define TRIM_DELAY_MS   2000u /* quiet time before the heap is trimmed */
/* Longest time a lazily committed session event waits for its fdatasync: the window in which
 * an OS crash or power cut (never a crash of corrald) can lose it. */
#define OUTBOX_SYNC_DELAY_MS 100

struct client {
	int fd;
	uid_t uid;
	pid_t pid;
	struct cd_session *session;
};

struct cd_daemon {
	const struct cd_config *cfg;
	sqlite3 *db;
	/* What the trust store holds, as corrald-crypto verified and returned it (take_view):
	 * the parent maps no libcrypto and never checks a signature itself. Refreshed by every
	 * store operation, which all run in the helper. */
	struct {
		bool root_present;
		uint64_t root_version, highest_version, bundle_version;
		int64_t root_expires_at, bundle_expires_at;
		size_t n_signers;
		char signer_ids[TRUST_MAX_SIGNATURES][TRUST_KEY_ID_LEN + 1];
	} tc;
	/* The bundle in force (decoded from the view): sessions start from it, like the
	 * profiles enforce.c compiled from it. NULL when none is in force. */
	Corral__PolicyBundle *bundle;
	struct cd_outbox *outbox;
	int epfd, sigfd, timerfd, listenfd;
	struct client clients[CLIENTS_MAX];
	struct cd_features features;
	struct cd_enforce *enforce;  /* sessions: compiled profiles, network layer (session.c) */
	struct cd_tmppool *tmp_pool; /* session TMP directories made ahead of time, or NULL */
	struct cd_fsaudit *fsaudit;  /* filesystem denials from kernel audit (fsaudit.h) */
	char db_path[4096], key_path[4096], worker_path[4096], crypto_path[4096];

	/* identity */
	char *device_id;
	char **groups;
	size_t n_groups;
	bool enrolled;
	int64_t cert_not_before, cert_not_after;
	int64_t last_sync_ms;

	/* worker */
	pid_t worker_pid;
	int worker_sock;
	unsigned worker_failures;
	uint64_t worker_restart_at;
	bool poll_inflight, report_inflight, enroll_inflight, renew_inflight;
	unsigned poll_failures, report_failures, enroll_failures;
	uint64_t poll_at, report_at, enroll_at, renew_at;
	uint64_t report_last_seq;

	uint64_t policy_version;   /* in force (cache, see policy_version()) */
	uint64_t rejected_version; /* last bundle refused, to report each refusal once */
	char rejected_reason[32];
	char rejected_root[256];

	uint64_t heartbeat_at;
	uint64_t stale_at;
	uint64_t outbox_sync_at; /* NEVER unless a lazy outbox commit awaits its fdatasync */
	bool stale_reported;
	uint64_t timer_armed;
	bool stopping;
	uint64_t trim_at; /* heap trim due (TRIM_DELAY_MS after the last activity) or NEVER */
};

/* ---- helpers ------------------------------------------------------------------------ */

static uint64_t now_mono(void)
{
	return util_monotonic_ms();
}

/* Full-jitter exponential backoff: uniform in [0, min(cap, 1s * 2^failures)]. */
static uint64_t backoff_ms(const struct cd_daemon *d, unsigned failures)
{
	uint64_t cap = (uint64_t)d->cfg->backoff_max * 1000;
	uint64_t ceil = failures >= 30 ? cap : (1000ull << failures);
	if (ceil > cap)
		ceil = cap;
	if (ceil < 100)
		ceil = 100;
	return (uint64_t)arc4random_uniform((uint32_t)(ceil > UINT32_MAX ? UINT32_MAX : ceil));
}

static void free_groups(struct cd_daemon *d)
{
	for (size_t i = 0; i < d->n_groups; i++)
		free(d->groups[i]);
	free(d->groups);
	d->groups = NULL;
	d->n_groups = 0;
}

static int set_groups(struct cd_daemon *d, char *const *groups, size_t n)
{
	char **copy = calloc(n + 1, sizeof(char *));
	if (!copy)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		copy[i] = strdup(groups[i]);
		if (!copy[i]) {
			for (size_t k = 0; k < i; k++)
				free(copy[k]);
			free(copy);
			return -ENOMEM;
		}
	}
	free_groups(d);
	d->groups = copy;
	d->n_groups = n;
	return 0;
}

/* Version of the policy in force (every event carries it), from the cached view. */
static uint64_t policy_version(struct cd_daemon *d)
{
	return d->policy_version;
}

static Corral__Freshness freshness(const struct cd_daemon *d, int64_t now)
{
	/* Expired means stale, never "no policy": the last known good stays in force. */
	if (!d->bundle)
		return CORRAL__FRESHNESS__FRESHNESS_NO_POLICY;
	return d->tc.bundle_expires_at <= now ? CORRAL__FRESHNESS__FRESHNESS_STALE
	                                      : CORRAL__FRESHNESS__FRESHNESS_FRESH;
}

/* Signer key ids of the bundle in force, as pointers for a protobuf message. */
static size_t signer_ids(struct cd_daemon *d, char **ids)
{
	for (size_t i = 0; i < d->tc.n_signers; i++)
		ids[i] = d->tc.signer_ids[i];
	return d->tc.n_signers;
}

/* Takes the helper's view of the store as the state in force. The bundle is decoded again
 * (and its profiles compiled) only when a different one is in force. */
static void take_view(struct cd_daemon *d, const Corral__TrustView *v)
{
	d->tc.root_present = v->root_present;
	d->tc.root_version = v->root_version;
	d->tc.root_expires_at = v->root_expires_at;
	d->tc.highest_version = v->highest_version;
	d->tc.bundle_expires_at = v->bundle_expires_at;
	d->tc.n_signers = v->n_signer_key_ids;
	for (size_t i = 0; i < v->n_signer_key_ids; i++)
		snprintf(d->tc.signer_ids[i], sizeof(d->tc.signer_ids[i]), "%s",
		         v->signer_key_ids[i]);
	if (v->bundle_error)
		log_err("the stored policy bundle no longer verifies (%s): no policy in force",
		        strerror(-v->bundle_error));
	bool same = d->bundle && v->bundle.len > 0 && v->bundle_version == d->tc.bundle_version;
	d->tc.bundle_version = v->bundle.len > 0 ? v->bundle_version : 0;
	d->policy_version = d->tc.bundle_version;
	if (same)
		return;
	/* cd_crypto_reply_check decoded it once already: it decodes. */
	Corral__PolicyBundle *b =
	        v->bundle.len > 0
	                ? corral__policy_bundle__unpack(NULL, v->bundle.len, v->bundle.data)
	                : NULL;
	if (d->enforce && b)
		cd_enforce_prepare(d->enforce, b);
	if (d->bundle)
		corral__policy_bundle__free_unpacked(d->bundle, NULL);
	d->bundle = b;
}

static bool store_op(Corral__CryptoOp op)
{
	return op == CORRAL__CRYPTO_OP__CRYPTO_OP_STATE ||
	       op == CORRAL__CRYPTO_OP__CRYPTO_OP_INSTALL_ROOT ||
	       op == CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_ROOTS ||
	       op == CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_BUNDLE;
}

/* One request to corrald-crypto (crypto_helper.h). Store operations name our database and
 * the time, and their view replaces the cached state. Returns what cd_crypto_call returns
 * (logged); the operation's own outcome is (*ret)->result. */
static int crypto(struct cd_daemon *d, Corral__CryptoRequest *rq, Corral__CryptoReply **ret)
{
	if (store_op(rq->op)) {
		rq->db_path = d->db_path;
		rq->now = util_now_sec();
	}
	int r = cd_crypto_call(d->crypto_path, rq, CD_CRYPTO_TIMEOUT_MS, ret);
	if (r < 0) {
		log_err("crypto helper %s: %s", d->crypto_path, strerror(-r));
		return r;
	}
	if ((*ret)->view)
		take_view(d, (*ret)->view);
	return 0;
}

/* crypto() for operations whose failure leaves nothing to use: 0 with *ret, or -errno (the
 * helper's or the operation's, logged with `what`; *ret NULL). */
static int crypto_ok(struct cd_daemon *d, Corral__CryptoRequest *rq, const char *what,
                     Corral__CryptoReply **ret)
{
	int r = crypto(d, rq, ret);
	if (r < 0)
		return r;
	r = (*ret)->result;
	if (r < 0) {
		log_err("%s: %s", what, (*ret)->detail);
		corral__crypto_reply__free_unpacked(*ret, NULL);
		*ret = NULL;
	}
	return r < 0 ? r : 0;
}

/* Writes `ev` to the outbox (the durable record comes first) and wakes the uploader. */
static int emit(struct cd_daemon *d, Corral__Event *ev)
{
	if (!ev->policy_version)
		ev->policy_version = policy_version(d);
	uint64_t seq = 0;
	int r = cd_outbox_append(d->outbox, ev, &seq);
	if (r == -ENOSPC)
		log_warn("outbox full: dropped a kind %d event (will be reported)", (int)ev->kind);
	else if (r < 0)
		log_err("outbox: cannot write event: %s", strerror(-r));
	else
		log_debug("event seq %" PRIu64 " kind %d", seq, (int)ev->kind);
	if (cd_outbox_unsynced(d->outbox) && d->outbox_sync_at == NEVER)
		d->outbox_sync_at = now_mono() + OUTBOX_SYNC_DELAY_MS;
	return r;
}

static void outbox_sync(struct cd_daemon *d)
{
	int r = cd_outbox_sync(d->outbox);
	if (r < 0)
		log_err("outbox: cannot sync: %s", strerror(-r));
	d->outbox_sync_at =
	        cd_outbox_unsynced(d->outbox) ? now_mono() + OUTBOX_SYNC_DELAY_MS : NEVER;
}

static int emit_session_event(void *userdata, Corral__Event *ev)
{
	return emit(userdata, ev);
}

/* The kernel audit changes not undone yet (bit 1: the never-task rule, bit 2: audit on). */
#define FSAUDIT_STATE_KEY "fsaudit_changes"
static void fsaudit_persist(struct cd_daemon *d)
{
	struct cd_fsaudit_changes ch = cd_fsaudit_changes(d->fsaudit);
	int64_t v = (ch.rule_added ? 1 : 0) | (ch.audit_enabled ? 2 : 0), was = 0;
	if (cd_state_get_i64(d->db, FSAUDIT_STATE_KEY, &was) == 0 && was == v)
		return;
	if (cd_state_set_i64(d->db, FSAUDIT_STATE_KEY, v) < 0)
		log_warn("filesystem denials: cannot record the audit changes to undo");
}

static void emit_health(struct cd_daemon *d, const char *state, const char *detail)
{
	Corral__AgentHealth h = CORRAL__AGENT_HEALTH__INIT;
	h.state = (char *)state;
	h.detail = (char *)(detail ? detail : "");
	Corral__Event ev = CORRAL__EVENT__INIT;
	ev.kind = CORRAL__EVENT_KIND__EVENT_KIND_AGENT_HEALTH;
	ev.detail_case = CORRAL__EVENT__DETAIL_AGENT_HEALTH;
	ev.agent_health = &h;
	(void)emit(d, &ev);
}

static void emit_heartbeat(struct cd_daemon *d)
{
	int64_t now = util_now_sec();
	Corral__Heartbeat hb = CORRAL__HEARTBEAT__INIT;
	const Corral__PolicyBundle *bundle = d->bundle;
	if (bundle) {
		hb.policy_version = d->tc.bundle_version;
		hb.policy_expires_at = d->tc.bundle_expires_at;
	}
	hb.freshness = freshness(d, now);
	if (d->tc.root_present) {
		hb.trust_root_version = d->tc.root_version;
		hb.trust_root_expires_at = d->tc.root_expires_at;
		hb.trust_root_expired = d->tc.root_expires_at > 0 && d->tc.root_expires_at <= now;
	}
	Corral__KernelFeatures req, enf;
	char *req_ptrs[CD_FEATURES_CONTROLLERS_MAX], *enf_ptrs[CD_FEATURES_CONTROLLERS_MAX];
	cd_features_requested(bundle ? bundle->policy : NULL, &req, req_ptrs);
	cd_features_to_proto(&d->features, &enf, enf_ptrs);
	hb.requested = &req;
	hb.enforced = &enf;
	hb.agent_version = (char *)CORRAL_VERSION;
	struct cd_outbox_stats st;
	cd_outbox_get_stats(d->outbox, &st);
	hb.outbox_depth = st.depth;
	struct utsname un;
	hb.kernel_release = (char *)"";
	if (uname(&un) == 0)
		hb.kernel_release = un.release;
	Corral__Event ev = CORRAL__EVENT__INIT;
	ev.kind = CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT;
	ev.detail_case = CORRAL__EVENT__DETAIL_HEARTBEAT;
	ev.heartbeat = &hb;
	ev.policy_version = hb.policy_version;
	(void)emit(d, &ev);
	if (hb.freshness == CORRAL__FRESHNESS__FRESHNESS_STALE && !d->stale_reported) {
		log_warn("policy version %" PRIu64 " expired and nothing newer was received: still "
		         "enforced, reported stale",
		         hb.policy_version);
		d->stale_reported = true;
	}
}

/* When the policy in force expires, report stale at once rather than at the next heartbeat. */
static void schedule_stale(struct cd_daemon *d)
{
	d->stale_at = NEVER;
	if (!d->bundle)
		return;
	int64_t now = util_now_sec(), expires_at = d->tc.bundle_expires_at;
	if (expires_at <= now) {
		if (!d->stale_reported)
			d->stale_at = now_mono();
		return;
	}
	d->stale_reported = false;
	d->stale_at = now_mono() + (uint64_t)(expires_at - now) * 1000 + 500;
}

/* Applies a bundle; when `resp` is given it is filled for the CLI, its detail pointing into
 * `detail` (caller's buffer of TRUST detail size). Returns true when applied. */
static bool apply_bundle(struct cd_daemon *d, const uint8_t *env, size_t len, const char *origin,
                         Corral__PolicyApplyResponse *resp, char *detail, size_t detail_len)
{
	Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
	rq.op = CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_BUNDLE;
	rq.envelope.data = (uint8_t *)env;
	rq.envelope.len = len;
	rq.device_id = d->device_id ? d->device_id : (char *)"";
	rq.groups = d->groups;
	rq.n_groups = d->n_groups;
	Corral__CryptoReply *rp = NULL;
	char why[160];
	int r = crypto(d, &rq, &rp);
	if (r < 0)
		snprintf(why, sizeof(why), "crypto helper: %s", strerror(-r));
	Corral__Event ev = CORRAL__EVENT__INIT;
	if (r == 0 && rp->result == 0) {
		/* The apply committed in the helper; its view (taken) holds this bundle. */
		Corral__PolicyApplied pa = CORRAL__POLICY_APPLIED__INIT;
		pa.version = rp->version;
		pa.expires_at = rp->expires_at;
		pa.signer_key_ids = rp->signer_key_ids;
		pa.n_signer_key_ids = rp->n_signer_key_ids;
		ev.kind = CORRAL__EVENT_KIND__EVENT_KIND_POLICY_APPLIED;
		ev.detail_case = CORRAL__EVENT__DETAIL_POLICY_APPLIED;
		ev.policy_applied = &pa;
		ev.policy_version = rp->version;
		(void)emit(d, &ev);
		log_info("policy version %" PRIu64 " applied (%s)", rp->version, origin);
		if (resp) {
			resp->applied = true;
			resp->version = rp->version;
		}
		schedule_stale(d);
		d->rejected_version = 0;
		corral__crypto_reply__free_unpacked(rp, NULL);
		return true;
	}
	const char *reason = r == 0 && *rp->reason ? rp->reason
	                     : !d->tc.root_present ? "no-trust-root"
	                                           : "io-error";
	const char *detail_text = r < 0 ? why : rp->detail;
	/* The server keeps offering a bundle we refused until a newer one is published: report
	 * each refusal once, not on every poll. The version is read without trusting it (only
	 * to recognise the repeat). */
	uint64_t version = 0;
	Corral__SignedEnvelope *e =
	        len <= TRUST_ENVELOPE_MAX ? corral__signed_envelope__unpack(NULL, len, env) : NULL;
	Corral__PolicyBundle *pb =
	        e ? corral__policy_bundle__unpack(NULL, e->payload.len, e->payload.data) : NULL;
	if (pb) {
		version = pb->version;
		corral__policy_bundle__free_unpacked(pb, NULL);
	}
	if (e)
		corral__signed_envelope__free_unpacked(e, NULL);
	bool repeat = !resp && version && version == d->rejected_version &&
	              strcmp(reason, d->rejected_reason) == 0;
	d->rejected_version = version;
	snprintf(d->rejected_reason, sizeof(d->rejected_reason), "%s", reason);
	Corral__PolicyRejected pr = CORRAL__POLICY_REJECTED__INIT;
	pr.reason = (char *)reason;
	pr.detail = (char *)detail_text;
	pr.version = version;
	ev.kind = CORRAL__EVENT_KIND__EVENT_KIND_POLICY_REJECTED;
	ev.detail_case = CORRAL__EVENT__DETAIL_POLICY_REJECTED;
	ev.policy_rejected = &pr;
	if (!repeat)
		(void)emit(d, &ev);
	log_warn("policy bundle rejected (%s): %s: %s", origin, reason, detail_text);
	if (resp) {
		resp->applied = false;
		snprintf(detail, detail_len, "%s", detail_text);
		resp->detail = detail;
		resp->reason = d->rejected_reason; /* copied above: it outlives rp */
	}
	if (rp)
		corral__crypto_reply__free_unpacked(rp, NULL);
	return false;
}

/* Applies trust roots from the server (all or none). Returns false when they were refused. */
static bool apply_roots(struct cd_daemon *d, uint8_t *const *envs, const size_t *lens, size_t n)
{
	if (n == 0)
		return true;
	Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
	rq.op = CORRAL__CRYPTO_OP__CRYPTO_OP_APPLY_ROOTS;
	Corral__CryptoReply *rp = NULL;
	if (n > CD_CRYPTO_ROOTS_MAX) {
		log_warn("trust roots rejected: %zu in one update (at most %u)", n,
		         CD_CRYPTO_ROOTS_MAX);
		return false;
	}
	ProtobufCBinaryData bins[CD_CRYPTO_ROOTS_MAX];
	for (size_t i = 0; i < n; i++) {
		bins[i].data = envs[i];
		bins[i].len = lens[i];
	}
	rq.envelopes = bins;
	rq.n_envelopes = n;
	char why[160];
	int r = crypto(d, &rq, &rp);
	if (r < 0)
		snprintf(why, sizeof(why), "crypto helper: %s", strerror(-r));
	else
		r = rp->result;
	Corral__Event ev = CORRAL__EVENT__INIT;
	uint64_t v = d->tc.root_version;
	if (r > 0) {
		/* the view taken holds the bundle in force, re-verified under the new roots */
		Corral__PolicyApplied pa = CORRAL__POLICY_APPLIED__INIT;
		pa.version = v;
		ev.kind = CORRAL__EVENT_KIND__EVENT_KIND_TRUST_ROOT_APPLIED;
		ev.detail_case = CORRAL__EVENT__DETAIL_POLICY_APPLIED;
		ev.policy_applied = &pa;
		(void)emit(d, &ev);
		log_info("trust root version %" PRIu64 " applied", v);
		d->rejected_root[0] = '\0';
	} else if (r < 0) {
		Corral__PolicyRejected pr = CORRAL__POLICY_REJECTED__INIT;
		pr.reason = rp && *rp->reason ? rp->reason : (char *)"io-error";
		pr.detail = rp ? rp->detail : why;
		ev.kind = CORRAL__EVENT_KIND__EVENT_KIND_TRUST_ROOT_REJECTED;
		ev.detail_case = CORRAL__EVENT__DETAIL_POLICY_REJECTED;
		ev.policy_rejected = &pr;
		/* Offered again on every poll until fixed: report each refusal once. */
		if (strcmp(d->rejected_root, pr.detail) != 0)
			(void)emit(d, &ev);
		snprintf(d->rejected_root, sizeof(d->rejected_root), "%s", pr.detail);
		log_warn("trust root rejected: %s: %s", pr.reason, pr.detail);
	}
	if (rp)
		corral__crypto_reply__free_unpacked(rp, NULL);
	return r >= 0;
}

/* ---- worker ----------------------------------------------------------------------- */

static void worker_kill(struct cd_daemon *d, const char *why)
{
	if (d->worker_pid > 0) {
		log_warn("stopping network worker: %s", why);
		kill(d->worker_pid, SIGKILL);
	}
	/* Read nothing more from a condemned worker: its death resets the socket
	 * (ECONNRESET while our frames are unread), which must not count as a second
	 * malformed frame. worker_reaped() closes the socket. */
	if (d->worker_sock >= 0)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->worker_sock, NULL);
}

static int worker_send(struct cd_daemon *d, Corral__WorkerMsg *m)
{
	if (d->worker_sock < 0)
		return -ENOTCONN;
	int r = cd_ipc_send(d->worker_sock, &m->base, CD_WORKER_FRAME_MAX, NULL, 0);
	if (r < 0)
		log_warn("worker: send failed: %s", strerror(-r));
	return r;
}

static int read_ca_pem(struct cd_daemon *d, char **ret, size_t *ret_len)
{
	/* After enrollment the chain the server gave is authoritative; before, the configured
	 * fleet CA file (installed with the package or by the MDM). Never the system CAs. */
	if (cd_state_get(d->db, "ca_chain_pem", ret, ret_len) == 0)
		return 0;
	if (!d->cfg->server_ca_file)
		return -ENOENT;
	return util_read_file(d->cfg->server_ca_file, CA_PEM_MAX, ret, ret_len);
}

static int worker_send_init(struct cd_daemon *d)
{
	Corral__WorkerInit init = CORRAL__WORKER_INIT__INIT;
	_cleanup_free_ char *ca = NULL, *cert = NULL;
	char *key = NULL;
	size_t ca_len = 0, cert_len = 0, key_len = 0;
	int r = read_ca_pem(d, &ca, &ca_len);
	if (r < 0) {
		log_err("no fleet CA: set server_ca_file (%s)", strerror(-r));
		return r;
	}
	init.server_url = d->cfg->server_url;
	init.ca_pem.data = (uint8_t *)ca;
	init.ca_pem.len = ca_len;
	init.device_id = d->device_id ? d->device_id : (char *)"";
	Corral__CryptoReply *rp = NULL;
	if (d->enrolled && cd_state_get(d->db, "certificate_pem", &cert, &cert_len) == 0) {
		Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
		rq.op = CORRAL__CRYPTO_OP__CRYPTO_OP_KEY_PEM;
		rq.key_path = d->key_path;
		r = crypto_ok(d, &rq, "device key for the worker", &rp);
		if (r < 0)
			return r;
		key = (char *)rp->pem.data;
		key_len = rp->pem.len;
		init.cert_pem.data = (uint8_t *)cert;
		init.cert_pem.len = cert_len;
		init.key_pem.data = (uint8_t *)key;
		init.key_pem.len = key_len;
	}
	Corral__WorkerMsg m = CORRAL__WORKER_MSG__INIT;
	m.body_case = CORRAL__WORKER_MSG__BODY_INIT;
	m.init = &init;
	r = worker_send(d, &m);
	if (rp) {
		explicit_bzero(key, key_len); /* the device key: in this process only this long */
		corral__crypto_reply__free_unpacked(rp, NULL);
	}
	return r;
}

static int resolve_worker_user(const struct cd_config *cfg, uid_t *uid, gid_t *gid)
{
	const char *names[2] = {cfg->worker_user, NULL};
	if (!cfg->worker_user) {
		names[0] = "corral";
		names[1] = "nobody";
	}
	for (size_t i = 0; i < 2 && names[i]; i++) {
		struct passwd *pw = getpwnam(names[i]);
		if (pw) {
			*uid = pw->pw_uid;
			*gid = pw->pw_gid;
			return 0;
		}
	}
	return -ESRCH;
}

static uint16_t url_port(const char *url)
{
	/* https://host[:port][/...]; IPv6 literals in brackets. */
	const char *h = url + strlen("https://");
	const char *end = h + strcspn(h, "/");
	const char *colon = NULL;
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(end - h));
		if (rb && rb + 1 < end && rb[1] == ':')
			colon = rb + 1;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
	}
	if (!colon)
		return 443;
	unsigned long p = strtoul(colon + 1, NULL, 10);
	return p > 0 && p < 65536 ? (uint16_t)p : 443;
}

static void worker_start(struct cd_daemon *d)
{
	struct cd_worker_opts o = {.path = d->worker_path,
	                           .poll_wait = d->cfg->poll_wait,
	                           .log_level = d->cfg->log_level,
	                           .server_port = url_port(d->cfg->server_url)};
	o.uid = getuid();
	o.gid = getgid();
	if (geteuid() == 0 && resolve_worker_user(d->cfg, &o.uid, &o.gid) < 0) {
		log_err("worker user %s does not exist; the worker will not run as root",
		        d->cfg->worker_user ? d->cfg->worker_user : "corral/nobody");
		d->worker_restart_at = now_mono() + (uint64_t)d->cfg->backoff_max * 1000;
		return;
	}
	int sock = -1;
	pid_t pid = cd_worker_spawn(&o, &sock);
	if (pid < 0) {
		log_err("cannot start the network worker: %s", strerror((int)-pid));
		d->worker_restart_at = now_mono() + backoff_ms(d, ++d->worker_failures);
		return;
	}
	d->worker_pid = pid;
	d->worker_sock = sock;
	d->worker_restart_at = NEVER;
	struct epoll_event ee = {.events = EPOLLIN, .data.u64 = TAG_WORKER};
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, sock, &ee) < 0)
		log_err("epoll: %s", strerror(errno));
	log_debug("network worker started (pid %d, uid %u)", (int)pid, (unsigned)o.uid);
	d->poll_inflight = d->report_inflight = d->enroll_inflight = d->renew_inflight = false;
	if (worker_send_init(d) < 0)
		worker_kill(d, "cannot send its configuration");
}

static void worker_reaped(struct cd_daemon *d, int status)
{
	char detail[128];
	if (WIFSIGNALED(status))
		snprintf(detail, sizeof(detail), "killed by signal %d", WTERMSIG(status));
	else
		snprintf(detail, sizeof(detail), "exited with status %d", WEXITSTATUS(status));
	if (d->worker_sock >= 0) {
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->worker_sock, NULL);
		close(d->worker_sock);
	}
	d->worker_sock = -1;
	d->worker_pid = 0;
	d->poll_inflight = d->report_inflight = d->enroll_inflight = d->renew_inflight = false;
	if (d->stopping)
		return;
	uint64_t delay = backoff_ms(d, ++d->worker_failures);
	log_warn("network worker %s; restarting in %" PRIu64 " ms", detail, delay);
	emit_health(d, "worker-restarted", detail);
	d->worker_restart_at = now_mono() + delay;
}

static bool worker_ready(const struct cd_daemon *d)
{
	return d->worker_sock >= 0 && !d->stopping;
}

static void try_enroll(struct cd_daemon *d)
{
	if (!worker_ready(d) || d->enroll_inflight || d->enrolled || now_mono() < d->enroll_at)
		return;
	const char *tf = d->cfg->enroll_token_file;
	_cleanup_free_ char *token = NULL;
	size_t len = 0;
	int r = tf ? util_read_file(tf, TOKEN_MAX, &token, &len) : -ENOENT;
	if (r == 0) {
		token[strcspn(token, "\r\n")] = '\0';
		len = strlen(token);
	}
	if (r < 0 || len == 0) {
		if (d->enroll_at == 0)
			log_warn("not enrolled and no enrollment token (%s)", tf ? tf : "unset");
		d->enroll_at = now_mono() + (uint64_t)d->cfg->backoff_max * 1000;
		return;
	}
	char host[256] = "corral-device";
	(void)gethostname(host, sizeof(host) - 1);
	if (!*host)
		snprintf(host, sizeof(host), "corral-device");
	/* The helper creates the device key (0600) on first use and signs the request. */
	Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
	rq.op = CORRAL__CRYPTO_OP__CRYPTO_OP_CSR;
	rq.key_path = d->key_path;
	rq.cn = host;
	Corral__CryptoReply *rp = NULL;
	r = crypto_ok(d, &rq, "cannot build the certificate request", &rp);
	if (r < 0) {
		explicit_bzero(token, len);
		d->enroll_at = now_mono() + backoff_ms(d, ++d->enroll_failures);
		return;
	}
	Corral__EnrollRequest er = CORRAL__ENROLL_REQUEST__INIT;
	er.token = token;
	er.csr_der = rp->csr_der;
	er.hostname = host;
	er.agent_version = (char *)CORRAL_VERSION;
	Corral__WorkerMsg m = CORRAL__WORKER_MSG__INIT;
	m.body_case = CORRAL__WORKER_MSG__BODY_ENROLL;
	m.enroll = &er;
	if (worker_send(d, &m) == 0) {
		d->enroll_inflight = true;
		log_info("enrolling with %s", d->cfg->server_url);
	}
	explicit_bzero(token, len);
	corral__crypto_reply__free_unpacked(rp, NULL);
}

static void try_poll(struct cd_daemon *d)
{
	if (!worker_ready(d) || !d->enrolled || d->poll_inflight || now_mono() < d->poll_at)
		return;
	Corral__PollRequest pr = CORRAL__POLL_REQUEST__INIT;
	pr.have_version = d->tc.highest_version;
	pr.root_version = d->tc.root_present ? d->tc.root_version : 0;
	pr.wait_seconds = (uint32_t)d->cfg->poll_wait;
	Corral__WorkerMsg m = CORRAL__WORKER_MSG__INIT;
	m.body_case = CORRAL__WORKER_MSG__BODY_POLL;
	m.poll = &pr;
	if (worker_send(d, &m) == 0)
		d->poll_inflight = true;
	else
		d->poll_at = now_mono() + backoff_ms(d, ++d->poll_failures);
}

static void try_report(struct cd_daemon *d)
{
	if (!worker_ready(d) || !d->enrolled || d->report_inflight || now_mono() < d->report_at)
		return;
	struct cd_outbox_stats st;
	cd_outbox_get_stats(d->outbox, &st);
	if (st.depth == 0)
		return;
	Corral__ReportBatch *b = NULL;
	int r = cd_outbox_batch(d->outbox, CD_OUTBOX_BATCH_EVENTS, CD_OUTBOX_BATCH_BYTES, &b);
	if (r < 0) {
		log_err("outbox: cannot read a batch: %s", strerror(-r));
		d->report_at = now_mono() + backoff_ms(d, ++d->report_failures);
		return;
	}
	if (b->n_events > 0) {
		b->device_id = d->device_id ? strdup(d->device_id) : NULL;
		Corral__WorkerMsg m = CORRAL__WORKER_MSG__INIT;
		m.body_case = CORRAL__WORKER_MSG__BODY_REPORT;
		m.report = b;
		if (worker_send(d, &m) == 0) {
			d->report_inflight = true;
			d->report_last_seq = b->events[b->n_events - 1]->seq;
		} else {
			d->report_at = now_mono() + backoff_ms(d, ++d->report_failures);
		}
	}
	cd_outbox_batch_free(b);
}

static void try_renew(struct cd_daemon *d)
{
	if (!worker_ready(d) || !d->enrolled || d->renew_inflight || now_mono() < d->renew_at)
		return;
	/* Renewal rotates the key: the helper writes a fresh one to device.key.new (0600) and
	 * signs the request with it; handle_renewed moves it in place once the certificate for it
	 * is stored (a crash in between: reconcile_renewed_key). */
	char new_path[sizeof(d->key_path) + 8];
	snprintf(new_path, sizeof(new_path), "%s.new", d->key_path);
	Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
	rq.op = CORRAL__CRYPTO_OP__CRYPTO_OP_CSR;
	rq.key_path = new_path;
	rq.cn = d->device_id && *d->device_id ? d->device_id : (char *)"device";
	rq.new_key = true;
	Corral__CryptoReply *rp = NULL;
	int r = crypto_ok(d, &rq, "cannot build the renewal request", &rp);
	if (r < 0) {
		(void)unlink(new_path);
		d->renew_at = now_mono() + backoff_ms(d, 3);
		return;
	}
	Corral__RenewRequest rr = CORRAL__RENEW_REQUEST__INIT;
	rr.csr_der = rp->csr_der;
	Corral__WorkerMsg m = CORRAL__WORKER_MSG__INIT;
	m.body_case = CORRAL__WORKER_MSG__BODY_RENEW;
	m.renew = &rr;
	if (worker_send(d, &m) == 0) {
		d->renew_inflight = true;
		log_info("renewing the device certificate");
	} else {
		(void)unlink(new_path);
	}
	corral__crypto_reply__free_unpacked(rp, NULL);
}

static void schedule_renew(struct cd_daemon *d)
{
	if (!d->enrolled || d->cert_not_after <= d->cert_not_before) {
		d->renew_at = NEVER;
		return;
	}
	/* Renew at 2/3 of the lifetime: a third of it is left to ride out server outages. Servers
	 * backdate notBefore for clock skew, which on short lifetimes puts that point in the past
	 * for a certificate just received: never before half of what is left since we got it. */
	int64_t at = d->cert_not_before + (d->cert_not_after - d->cert_not_before) * 2 / 3;
	int64_t got = 0;
	if (cd_state_get_i64(d->db, "certificate_received_at", &got) == 0 && got > 0 &&
	    got < d->cert_not_after && at < got + (d->cert_not_after - got) / 2)
		at = got + (d->cert_not_after - got) / 2;
	int64_t now = util_now_sec();
	d->renew_at = at <= now ? now_mono() : now_mono() + (uint64_t)(at - now) * 1000;
}

/* Has the helper parse a DER certificate (and CA chain): PEM text, validity and, with a
 * key_path, whether the certificate is for that key. 0 with *ret, or -errno (logged). */
static int cert_check(struct cd_daemon *d, ProtobufCBinaryData cert, ProtobufCBinaryData *chain,
                      size_t n_chain, const char *key_path, Corral__CryptoReply **ret)
{
	Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
	rq.op = CORRAL__CRYPTO_OP__CRYPTO_OP_CERT;
	rq.certificate_der = cert;
	rq.ca_chain_der = chain;
	rq.n_ca_chain_der = n_chain;
	rq.key_path = (char *)(key_path ? key_path : "");
	return crypto_ok(d, &rq, "certificate check", ret);
}

static int load_certificate_times(struct cd_daemon *d)
{
	_cleanup_free_ char *der = NULL;
	size_t len = 0;
	int r = cd_state_get(d->db, "certificate_der", &der, &len);
	if (r < 0)
		return r;
	Corral__CryptoReply *rp = NULL;
	r = cert_check(d, (ProtobufCBinaryData){.data = (uint8_t *)der, .len = len}, NULL, 0, NULL,
	               &rp);
	if (r < 0)
		return r;
	d->cert_not_before = rp->not_before;
	d->cert_not_after = rp->not_after;
	corral__crypto_reply__free_unpacked(rp, NULL);
	return 0;
}

static int store_groups(struct cd_daemon *d, char **groups, size_t n)
{
	char text[GROUPS_TEXT_MAX];
	size_t pos = 0;
	for (size_t i = 0; i < n && i < 64; i++) {
		int w = snprintf(text + pos, sizeof(text) - pos, "%s%s", i ? "\n" : "", groups[i]);
		if (w < 0 || (size_t)w >= sizeof(text) - pos)
			return -E2BIG;
		pos += (size_t)w;
	}
	int r = cd_state_set(d->db, "groups", text, pos);
	if (r == 0)
		r = set_groups(d, groups, n < 64 ? n : 64);
	return r;
}

static void load_groups_from_db(struct cd_daemon *d)
{
	_cleanup_free_ char *text = NULL;
	if (cd_state_get(d->db, "groups", &text, NULL) < 0)
		return;
	char *list[64];
	size_t n = 0;
	char *save = NULL;
	for (char *t = strtok_r(text, "\n", &save); t && n < 64; t = strtok_r(NULL, "\n", &save))
		list[n++] = t;
	(void)set_groups(d, list, n);
}

static void handle_enrolled(struct cd_daemon *d, const Corral__EnrollResponse *er)
{
	d->enroll_inflight = false;
	/* Check the certificate is for our key before trusting it with anything. */
	Corral__CryptoReply *rp = NULL;
	int r = -EBADMSG;
	if (er->device_id && *er->device_id && er->n_ca_chain_der > 0 &&
	    er->n_ca_chain_der <= CD_CRYPTO_CA_MAX)
		r = cert_check(d, er->certificate_der, er->ca_chain_der, er->n_ca_chain_der,
		               d->key_path, &rp);
	if (r < 0 || !rp->key_matches) {
		log_err("enrollment answer does not match our key or lacks the CA chain");
		if (rp)
			corral__crypto_reply__free_unpacked(rp, NULL);
		d->enroll_at = now_mono() + backoff_ms(d, ++d->enroll_failures);
		return;
	}
	const char *cert_pem = (const char *)rp->pem.data, *ca_pem = (const char *)rp->ca_pem.data;
	size_t cert_len = rp->pem.len, ca_len = rp->ca_pem.len;
	const uint8_t *cder = er->certificate_der.data;
	size_t clen = er->certificate_der.len;
	/* Identity in one transaction: a crash leaves us enrolled or not, never half. */
	r = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
	if (r == 0)
		r = cd_state_set_str(d->db, "device_id", er->device_id);
	if (r == 0)
		r = cd_state_set(d->db, "certificate_pem", cert_pem, cert_len);
	if (r == 0)
		r = cd_state_set(d->db, "certificate_der", cder, clen);
	if (r == 0)
		r = cd_state_set(d->db, "ca_chain_pem", ca_pem, ca_len);
	if (r == 0)
		r = cd_state_set_str(d->db, "server_url", d->cfg->server_url);
	if (r == 0)
		r = cd_state_set_i64(d->db, "enrolled_at", util_now_sec());
	if (r == 0)
		r = cd_state_set_i64(d->db, "certificate_received_at", util_now_sec());
	if (r == 0)
		r = sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
	if (r < 0) {
		(void)sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
		log_err("cannot store the enrollment: %s", sqlite3_errmsg(d->db));
		corral__crypto_reply__free_unpacked(rp, NULL);
		return;
	}
	d->cert_not_before = rp->not_before;
	d->cert_not_after = rp->not_after;
	corral__crypto_reply__free_unpacked(rp, NULL);
	(void)store_groups(d, er->groups, er->n_groups);
	free(d->device_id);
	d->device_id = strdup(er->device_id);
	d->enrolled = true;
	d->enroll_failures = 0;
	schedule_renew(d);
	size_t *rl = calloc(er->n_trust_roots + 1, sizeof(size_t));
	uint8_t **re = calloc(er->n_trust_roots + 1, sizeof(uint8_t *));
	if (rl && re) {
		for (size_t i = 0; i < er->n_trust_roots; i++) {
			re[i] = er->trust_roots[i].data;
			rl[i] = er->trust_roots[i].len;
		}
		apply_roots(d, re, rl, er->n_trust_roots);
	}
	free(rl);
	free(re);
	/* The token is single-use: remove it (or empty it when the directory is read-only). */
	const char *tf = d->cfg->enroll_token_file;
	if (tf && unlink(tf) < 0) {
		int fd = open(tf, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0)
			close(fd);
		else
			log_warn("cannot remove the used enrollment token %s: %s", tf,
			         strerror(errno));
	}
	log_info("enrolled as %s", d->device_id);
	emit_health(d, "enrolled", d->device_id);
	if (worker_send_init(d) < 0)
		worker_kill(d, "cannot send its configuration");
	d->poll_at = d->report_at = 0;
}

static void handle_renewed(struct cd_daemon *d, const Corral__RenewResponse *rr)
{
	d->renew_inflight = false;
	/* Crash safety: the new key is in device.key.new since the request (try_renew); the
	 * certificate rows commit, then the rename. A crash in between is resolved at start
	 * (reconcile_renewed_key): whichever key matches the stored certificate wins. */
	char new_path[sizeof(d->key_path) + 8];
	snprintf(new_path, sizeof(new_path), "%s.new", d->key_path);
	Corral__CryptoReply *rp = NULL;
	int r = cert_check(d, rr->certificate_der, NULL, 0, new_path, &rp);
	if (r == 0 && !rp->key_matches)
		r = -EBADMSG;
	bool tx = r == 0 && sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
	if (r == 0 && !tx)
		r = -EIO;
	if (r == 0)
		r = cd_state_set(d->db, "certificate_pem", rp->pem.data, rp->pem.len);
	if (r == 0)
		r = cd_state_set(d->db, "certificate_der", rr->certificate_der.data,
		                 rr->certificate_der.len);
	if (r == 0)
		r = cd_state_set_i64(d->db, "certificate_received_at", util_now_sec());
	if (r == 0)
		r = sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
	if (r < 0 && tx)
		(void)sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
	if (r < 0)
		(void)unlink(new_path); /* nothing committed: the old pair stays valid */
	else if (rename(new_path, d->key_path) < 0)
		r = -errno; /* committed: keep device.key.new for reconcile_renewed_key() */
	if (r == 0) {
		d->cert_not_before = rp->not_before;
		d->cert_not_after = rp->not_after;
	}
	if (rp)
		corral__crypto_reply__free_unpacked(rp, NULL);
	if (r < 0) {
		log_err("certificate renewal failed: %s", strerror(-r));
		d->renew_at = now_mono() + backoff_ms(d, 3);
		return;
	}
	schedule_renew(d);
	log_info("device certificate renewed");
	emit_health(d, "certificate-renewed", NULL);
	if (worker_send_init(d) < 0)
		worker_kill(d, "cannot send its configuration");
}

static void handle_update(struct cd_daemon *d, const Corral__PolicyUpdate *u)
{
	d->poll_inflight = false;
	d->last_sync_ms = util_now_ms();
	bool ok = true;
	(void)cd_state_set_i64(d->db, "last_sync_ms", d->last_sync_ms);
	if (u->n_groups > 0)
		(void)store_groups(d, u->groups, u->n_groups);
	if (u->n_trust_roots > 0) {
		size_t *lens = calloc(u->n_trust_roots, sizeof(size_t));
		uint8_t **envs = calloc(u->n_trust_roots, sizeof(uint8_t *));
		if (lens && envs) {
			for (size_t i = 0; i < u->n_trust_roots; i++) {
				envs[i] = u->trust_roots[i].data;
				lens[i] = u->trust_roots[i].len;
			}
			ok = apply_roots(d, envs, lens, u->n_trust_roots);
		}
		free(lens);
		free(envs);
	}
	/* Immediately poll again: the server holds the request until something changes. A
	 * rejected bundle would come back at once, so then we wait like after an error. */
	if (u->bundle.len > 0 &&
	    !apply_bundle(d, u->bundle.data, u->bundle.len, "server", NULL, NULL, 0))
		ok = false;
	if (ok) {
		d->poll_failures = 0;
		d->poll_at = 0;
	} else {
		d->poll_at = now_mono() + backoff_ms(d, ++d->poll_failures);
	}
}

static void handle_worker_error(struct cd_daemon *d, const Corral__WorkerError *e)
{
	const char *req = e->request ? e->request : "";
	unsigned *fails = NULL;
	uint64_t *at = NULL;
	if (strcmp(req, "poll") == 0) {
		d->poll_inflight = false;
		fails = &d->poll_failures;
		at = &d->poll_at;
	} else if (strcmp(req, "report") == 0) {
		d->report_inflight = false;
		fails = &d->report_failures;
		at = &d->report_at;
	} else if (strcmp(req, "enroll") == 0) {
		d->enroll_inflight = false;
		fails = &d->enroll_failures;
		at = &d->enroll_at;
	} else if (strcmp(req, "renew") == 0) {
		d->renew_inflight = false;
		/* the key made for it goes: the next attempt makes another */
		char new_path[sizeof(d->key_path) + 8];
		snprintf(new_path, sizeof(new_path), "%s.new", d->key_path);
		(void)unlink(new_path);
		fails = &d->poll_failures;
		at = &d->renew_at;
	} else {
		worker_kill(d, "error for an unknown request");
		return;
	}
	uint64_t delay = backoff_ms(d, ++*fails);
	if (e->retry_after > 0 && (uint64_t)e->retry_after * 1000 > delay)
		delay = (uint64_t)e->retry_after * 1000;
	*at = now_mono() + delay;
	log_warn("%s failed (%s%s%s); retrying in %" PRIu64 " ms", req, e->kind,
	         e->detail && *e->detail ? ": " : "", e->detail ? e->detail : "", delay);
}

static void handle_worker(struct cd_daemon *d)
{
	_cleanup_free_ uint8_t *buf = NULL;
	ssize_t n = cd_ipc_recv(d->worker_sock, CD_WORKER_FRAME_MAX, &buf, NULL, 0, NULL);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		/* EOF or a broken frame: the worker is gone or misbehaving; SIGCHLD reaps it.
		 * ECONNRESET is a worker that died with our frames unread: gone, not malformed. */
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->worker_sock, NULL);
		if (n < 0 && n != -ECONNRESET) {
			emit_health(d, "worker-malformed", "bad frame");
			worker_kill(d, "malformed frame");
		}
		return;
	}
	Corral__WorkerMsg *m = corral__worker_msg__unpack(NULL, (size_t)n, buf);
	if (!m) {
		emit_health(d, "worker-malformed", "undecodable message");
		worker_kill(d, "undecodable message");
		return;
	}
	switch (m->body_case) {
	case CORRAL__WORKER_MSG__BODY_UPDATE:
		if (!d->poll_inflight)
			goto unexpected;
		handle_update(d, m->update);
		break;
	case CORRAL__WORKER_MSG__BODY_ACK:
		if (!d->report_inflight)
			goto unexpected;
		d->report_inflight = false;
		{
			/* The server cannot have stored more than we sent; never trust it to
			 * delete rows it did not see. */
			uint64_t ack = m->ack->acked_seq < d->report_last_seq ? m->ack->acked_seq
			                                                      : d->report_last_seq;
			struct cd_outbox_stats before;
			cd_outbox_get_stats(d->outbox, &before);
			int r = cd_outbox_ack(d->outbox, ack);
			if (r < 0)
				log_err("outbox ack: %s", strerror(-r));
			d->last_sync_ms = util_now_ms();
			if (r >= 0 && ack > before.acked_seq) {
				d->report_failures = 0;
				d->report_at = 0; /* more may be waiting: next batch at once */
			} else {
				/* No progress (the server misses an earlier event): back off
				 * instead of resending in a tight loop. */
				d->report_at = now_mono() + backoff_ms(d, ++d->report_failures);
			}
		}
		break;
	case CORRAL__WORKER_MSG__BODY_ENROLLED:
		if (!d->enroll_inflight)
			goto unexpected;
		handle_enrolled(d, m->enrolled);
		break;
	case CORRAL__WORKER_MSG__BODY_RENEWED:
		if (!d->renew_inflight)
			goto unexpected;
		handle_renewed(d, m->renewed);
		break;
	case CORRAL__WORKER_MSG__BODY_ERROR:
		handle_worker_error(d, m->error);
		break;
	default:
		goto unexpected;
	}
	d->worker_failures = 0;
	corral__worker_msg__free_unpacked(m, NULL);
	return;
unexpected:
	corral__worker_msg__free_unpacked(m, NULL);
	emit_health(d, "worker-malformed", "unexpected message");
	worker_kill(d, "unexpected message");
}

/* ---- local IPC -------------------------------------------------------------------- */

static int reply_error(int fd, int err, const char *msg)
{
	Corral__IpcError e = CORRAL__IPC_ERROR__INIT;
	e.err = err;
	e.message = (char *)msg;
	Corral__IpcResponse resp = CORRAL__IPC_RESPONSE__INIT;
	resp.body_case = CORRAL__IPC_RESPONSE__BODY_ERROR;
	resp.error = &e;
	return cd_ipc_send(fd, &resp.base, CD_IPC_FRAME_MAX, NULL, 0);
}

static int handle_status(struct cd_daemon *d, struct client *c)
{
	Corral__StatusResponse s = CORRAL__STATUS_RESPONSE__INIT;
	s.enrolled = d->enrolled;
	s.offline = d->cfg->offline;
	s.device_id = d->device_id ? d->device_id : (char *)"";
	s.server_url = d->cfg->server_url ? d->cfg->server_url : (char *)"";
	s.groups = d->groups;
	s.n_groups = d->n_groups;
	char *ids[TRUST_MAX_SIGNATURES];
	if (d->bundle) {
		s.policy_version = d->tc.bundle_version;
		s.policy_expires_at = d->tc.bundle_expires_at;
		s.n_signer_key_ids = signer_ids(d, ids);
		s.signer_key_ids = ids;
	}
	s.freshness = freshness(d, util_now_sec());
	s.last_sync_ms = d->last_sync_ms;
	struct cd_outbox_stats st;
	cd_outbox_get_stats(d->outbox, &st);
	s.outbox_depth = st.depth;
	Corral__KernelFeatures kf;
	char *ptrs[CD_FEATURES_CONTROLLERS_MAX];
	cd_features_to_proto(&d->features, &kf, ptrs);
	s.enforced = &kf;
	if (d->tc.root_present) {
		s.trust_root_version = d->tc.root_version;
		s.trust_root_expires_at = d->tc.root_expires_at;
	}
	s.agent_version = (char *)CORRAL_VERSION;
	s.certificate_expires_at = d->cert_not_after;
	Corral__IpcResponse resp = CORRAL__IPC_RESPONSE__INIT;
	resp.body_case = CORRAL__IPC_RESPONSE__BODY_STATUS;
	resp.status = &s;
	return cd_ipc_send(c->fd, &resp.base, CD_IPC_FRAME_MAX, NULL, 0);
}

static int handle_events(struct cd_daemon *d, struct client *c, const Corral__EventsRequest *rq)
{
	Corral__Event **evs = NULL;
	size_t n = 0;
	int r = cd_outbox_recent(d->outbox, rq->limit ? rq->limit : 20, &evs, &n);
	if (r < 0)
		return reply_error(c->fd, -r, "cannot read events");
	Corral__EventsResponse er = CORRAL__EVENTS_RESPONSE__INIT;
	struct cd_outbox_stats st;
	cd_outbox_get_stats(d->outbox, &st);
	er.pending = st.depth;
	er.events = evs;
	er.n_events = n;
	Corral__IpcResponse resp = CORRAL__IPC_RESPONSE__INIT;
	resp.body_case = CORRAL__IPC_RESPONSE__BODY_EVENTS;
	resp.events = &er;
	/* Fit the frame: drop the oldest of the newest-first list until it does. */
	while (er.n_events > 0 && corral__ipc_response__get_packed_size(&resp) > CD_IPC_FRAME_MAX)
		er.n_events--;
	r = cd_ipc_send(c->fd, &resp.base, CD_IPC_FRAME_MAX, NULL, 0);
	cd_outbox_events_free(evs, n);
	return r;
}

static int handle_policy_apply(struct cd_daemon *d, struct client *c, int *fds, size_t n_fds)
{
	if (c->uid != 0)
		return reply_error(c->fd, EPERM, "permission denied: root required");
	if (n_fds != 1)
		return reply_error(c->fd, EINVAL, "policy apply needs the bundle file descriptor");
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = util_read_fd(fds[0], TRUST_ENVELOPE_MAX, &buf, &len);
	Corral__PolicyApplyResponse pr = CORRAL__POLICY_APPLY_RESPONSE__INIT;
	char detail[sizeof(((struct trust_result *)0)->detail)];
	if (r == -EFBIG) {
		/* Oversized before reading it all (endless data): same code as the verifier. */
		pr.reason = (char *)"too-large"; /* the verifier's code for TRUST_TOO_LARGE */
		pr.detail = (char *)"bundle larger than the envelope cap";
		Corral__PolicyRejected rej = CORRAL__POLICY_REJECTED__INIT;
		rej.reason = pr.reason;
		rej.detail = pr.detail;
		Corral__Event ev = CORRAL__EVENT__INIT;
		ev.kind = CORRAL__EVENT_KIND__EVENT_KIND_POLICY_REJECTED;
		ev.detail_case = CORRAL__EVENT__DETAIL_POLICY_REJECTED;
		ev.policy_rejected = &rej;
		(void)emit(d, &ev);
	} else if (r < 0) {
		return reply_error(c->fd, -r, "cannot read the bundle file");
	} else {
		apply_bundle(d, (const uint8_t *)buf, len, "local", &pr, detail, sizeof(detail));
	}
	Corral__IpcResponse resp = CORRAL__IPC_RESPONSE__INIT;
	resp.body_case = CORRAL__IPC_RESPONSE__BODY_POLICY_APPLY;
	resp.policy_apply = &pr;
	return cd_ipc_send(c->fd, &resp.base, CD_IPC_FRAME_MAX, NULL, 0);
}

static int handle_policy_show(struct cd_daemon *d, struct client *c)
{
	Corral__PolicyShowResponse ps = CORRAL__POLICY_SHOW_RESPONSE__INIT;
	const Corral__PolicyBundle *b = d->bundle;
	char *ids[TRUST_MAX_SIGNATURES];
	if (b) {
		ps.present = true;
		ps.version = d->tc.bundle_version;
		ps.expires_at = d->tc.bundle_expires_at;
		ps.n_signer_key_ids = signer_ids(d, ids);
		ps.signer_key_ids = ids;
		ps.policy = b->policy;
		ps.source_json = b->source_json;
	}
	ps.freshness = freshness(d, util_now_sec());
	Corral__IpcResponse resp = CORRAL__IPC_RESPONSE__INIT;
	resp.body_case = CORRAL__IPC_RESPONSE__BODY_POLICY_SHOW;
	resp.policy_show = &ps;
	/* Large policies: the source text goes first, then the compiled form. */
	if (corral__ipc_response__get_packed_size(&resp) > CD_IPC_FRAME_MAX)
		ps.source_json = NULL;
	if (corral__ipc_response__get_packed_size(&resp) > CD_IPC_FRAME_MAX)
		ps.policy = NULL;
	return cd_ipc_send(c->fd, &resp.base, CD_IPC_FRAME_MAX, NULL, 0);
}

static int handle_flush(struct cd_daemon *d, struct client *c)
{
	if (c->uid != 0)
		return reply_error(c->fd, EPERM, "permission denied: root required");
	d->report_at = 0;
	d->report_failures = 0;
	emit_heartbeat(d);
	try_report(d);
	struct cd_outbox_stats st;
	cd_outbox_get_stats(d->outbox, &st);
	Corral__FlushResponse fr = CORRAL__FLUSH_RESPONSE__INIT;
	fr.acked_seq = st.acked_seq;
	fr.pending = st.depth;
	Corral__IpcResponse resp = CORRAL__IPC_RESPONSE__INIT;
	resp.body_case = CORRAL__IPC_RESPONSE__BODY_FLUSH;
	resp.flush = &fr;
	return cd_ipc_send(c->fd, &resp.base, CD_IPC_FRAME_MAX, NULL, 0);
}

static int handle_test_generate(struct cd_daemon *d, struct client *c,
                                const Corral__TestGenerateRequest *rq)
{
	if (!d->cfg->test_hooks)
		return reply_error(c->fd, EOPNOTSUPP, "test hooks are disabled");
	if (c->uid != 0)
		return reply_error(c->fd, EPERM, "permission denied: root required");
	if (rq->count == 0 || rq->count > 100000)
		return reply_error(c->fd, EINVAL, "count must be 1-100000");
	Corral__EventKind kind = rq->kind ? rq->kind : CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION;
	if (kind != CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION &&
	    kind != CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT &&
	    kind != CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START &&
	    kind != CORRAL__EVENT_KIND__EVENT_KIND_SESSION_EXIT)
		return reply_error(c->fd, EINVAL, "kind must be a violation, heartbeat or session");
	Corral__TestGenerateResponse tr = CORRAL__TEST_GENERATE_RESPONSE__INIT;
	for (uint32_t i = 0; i < rq->count; i++) {
		Corral__Violation v = CORRAL__VIOLATION__INIT;
		Corral__Heartbeat hb = CORRAL__HEARTBEAT__INIT;
		Corral__SessionStart ss = CORRAL__SESSION_START__INIT;
		Corral__SessionExit se = CORRAL__SESSION_EXIT__INIT;
		char target[64];
		snprintf(target, sizeof(target), "/synthetic/%u", i);
		v.kind = CORRAL__VIOLATION_KIND__VIOLATION_KIND_FILESYSTEM;
		v.target = target;
		v.detail = (char *)"test_generate";
		hb.agent_version = (char *)CORRAL_VERSION;
		Corral__Event ev = CORRAL__EVENT__INIT;
		ev.kind = kind;
		ev.session_id = (char *)"synthetic";
		switch (kind) {
		case CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT:
			ev.detail_case = CORRAL__EVENT__DETAIL_HEARTBEAT;
			ev.heartbeat = &hb;
			break;
		case CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START:
			ev.detail_case = CORRAL__EVENT__DETAIL_SESSION_START;
			ev.session_start = &ss;
			break;
		case CORRAL__EVENT_KIND__EVENT_KIND_SESSION_EXIT:
			ev.detail_case = CORRAL__EVENT__DETAIL_SESSION_EXIT;
			ev.session_exit = &se;
			break;
		default:
			ev.detail_case = CORRAL__EVENT__DETAIL_VIOLATION;
			ev.violation = &v;
		}
		int er = emit(d, &ev);
		if (er == -ENOSPC)
			continue; /* dropped by the bounded outbox: counted and reported */
		if (er < 0)
			break;
		if (!tr.first_seq)
			tr.first_seq = ev.seq;
		tr.last_seq = ev.seq;
	}
	try_report(d);
	Corral__IpcResponse resp = CORRAL__IPC_RESPONSE__INIT;
	resp.body_case = CORRAL__IPC_RESPONSE__BODY_TEST_GENERATED;
	resp.test_generated = &tr;
	return cd_ipc_send(c->fd, &resp.base, CD_IPC_FRAME_MAX, NULL, 0);
}

static void client_close(struct cd_daemon *d, struct client *c)
{
	if (c->fd < 0)
		return;
	if (c->session) {
		int sfd = cd_session_fd(c->session);
		if (sfd >= 0)
			epoll_ctl(d->epfd, EPOLL_CTL_DEL, sfd, NULL);
		cd_session_free(c->session);
		c->session = NULL;
	}
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
}

static void handle_client(struct cd_daemon *d, struct client *c)
{
	_cleanup_free_ uint8_t *buf = NULL;
	int fds[CD_IPC_FDS_MAX];
	size_t n_fds = 0;
	ssize_t n = cd_ipc_recv(c->fd, CD_IPC_FRAME_MAX, &buf, fds, CD_IPC_FDS_MAX, &n_fds);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		if (n < 0 && n != -ECONNRESET)
			(void)reply_error(c->fd, (int)-n, "malformed request frame");
		client_close(d, c);
		return;
	}
	Corral__IpcRequest *rq = corral__ipc_request__unpack(NULL, (size_t)n, buf);
	int r = 0;
	if (!rq) {
		r = reply_error(c->fd, EBADMSG, "malformed request");
	} else {
		switch (rq->body_case) {
		case CORRAL__IPC_REQUEST__BODY_STATUS:
			r = handle_status(d, c);
			break;
		case CORRAL__IPC_REQUEST__BODY_EVENTS:
			r = handle_events(d, c, rq->events);
			break;
		case CORRAL__IPC_REQUEST__BODY_POLICY_APPLY:
			r = handle_policy_apply(d, c, fds, n_fds);
			break;
		case CORRAL__IPC_REQUEST__BODY_POLICY_SHOW:
			r = handle_policy_show(d, c);
			break;
		case CORRAL__IPC_REQUEST__BODY_FLUSH:
			r = handle_flush(d, c);
			break;
		case CORRAL__IPC_REQUEST__BODY_TEST_GENERATE:
			r = handle_test_generate(d, c, rq->test_generate);
			break;
		case CORRAL__IPC_REQUEST__BODY_RUN: {
			if (c->session) { /* one session per connection: never lose track of one */
				r = reply_error(c->fd, EBUSY, "a session already runs here");
				break;
			}
			struct cd_session_env env = {.bundle = d->bundle,
			                             .emit = emit_session_event,
			                             .userdata = d,
			                             .enforce = d->enforce,
			                             .tmp_pool = d->tmp_pool,
			                             .fsaudit = d->fsaudit};
			int sfds[CD_IPC_FDS_MAX];
			memcpy(sfds, fds, n_fds * sizeof(int));
			size_t sn = n_fds;
			n_fds = 0; /* ownership moves to the session */
			r = cd_session_start(&env, c->fd, c->uid, c->pid, rq->run, sfds, sn,
			                     &c->session);
			if (r == 0 && c->session && cd_session_fd(c->session) >= 0) {
				struct epoll_event ee = {.events = EPOLLIN,
				                         .data.u64 = TAG_SESSION |
				                                     (uint64_t)(c - d->clients)};
				epoll_ctl(d->epfd, EPOLL_CTL_ADD, cd_session_fd(c->session), &ee);
			}
			if (r > 0)
				r = 0;
			break;
		}
		case CORRAL__IPC_REQUEST__BODY_SIGNAL:
			r = c->session ? cd_session_signal(c->session, rq->signal)
			               : reply_error(c->fd, ESRCH, "no session on this connection");
			break;
		default:
			r = reply_error(c->fd, EOPNOTSUPP, "unknown request");
		}
		corral__ipc_request__free_unpacked(rq, NULL);
	}
	for (size_t i = 0; i < n_fds; i++)
		close(fds[i]);
	if (r < 0)
		client_close(d, c);
}

static void handle_accept(struct cd_daemon *d)
{
	for (;;) {
		int fd = accept4(d->listenfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct client *slot = NULL;
		for (size_t i = 0; i < CLIENTS_MAX; i++)
			if (d->clients[i].fd < 0) {
				slot = &d->clients[i];
				break;
			}
		uid_t uid;
		pid_t pid;
		if (!slot || cd_ipc_peer(fd, &uid, &pid) < 0) {
			(void)reply_error(fd, EBUSY, "too many clients");
			close(fd);
			continue;
		}
		slot->fd = fd;
		slot->uid = uid;
		slot->pid = pid;
		slot->session = NULL;
		struct epoll_event ee = {.events = EPOLLIN,
		                         .data.u64 = TAG_CLIENT | (uint64_t)(slot - d->clients)};
		if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ee) < 0)
			client_close(d, slot);
	}
}

/* ---- timers and loop ---------------------------------------------------------------- */

static void arm_timer(struct cd_daemon *d)
{
	uint64_t next = d->heartbeat_at;
	if (d->stale_at < next)
		next = d->stale_at;
	if (d->outbox_sync_at < next)
		next = d->outbox_sync_at;
	if (d->trim_at < next)
		next = d->trim_at;
	if (!d->cfg->offline) {
		if (d->worker_pid <= 0 && d->worker_restart_at < next)
			next = d->worker_restart_at;
		if (worker_ready(d)) {
			if (!d->enrolled && !d->enroll_inflight && d->enroll_at < next)
				next = d->enroll_at;
			if (d->enrolled && !d->poll_inflight && d->poll_at < next)
				next = d->poll_at;
			struct cd_outbox_stats st;
			cd_outbox_get_stats(d->outbox, &st);
			if (d->enrolled && st.depth && !d->report_inflight && d->report_at < next)
				next = d->report_at;
			if (d->enrolled && !d->renew_inflight && d->renew_at < next)
				next = d->renew_at;
		}
	}
	if (next == d->timer_armed)
		return;
	d->timer_armed = next;
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	uint64_t at = next == 0 ? 1 : next;
	its.it_value.tv_sec = (time_t)(at / 1000);
	its.it_value.tv_nsec = (long)(at % 1000) * 1000000;
	timerfd_settime(d->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* No CLI connection open (so no session running either): the loop is about to sleep for long. */
static bool daemon_quiet(const struct cd_daemon *d)
{
	for (size_t i = 0; i < CLIENTS_MAX; i++)
		if (d->clients[i].fd >= 0)
			return false;
	return true;
}

static void run_due(struct cd_daemon *d)
{
	uint64_t now = now_mono();
	if (now >= d->heartbeat_at) {
		emit_heartbeat(d);
		d->heartbeat_at = now + (uint64_t)d->cfg->heartbeat_interval * 1000;
	}
	if (now >= d->outbox_sync_at)
		outbox_sync(d);
	/*
	 * Quiet for TRIM_DELAY_MS: hand back the free memory at the top of the heap and whole
	 * free pages inside it (malloc_trim), ≈ 100 kB after start-up, enrollment or a policy
	 * update. Not right after those steps (the replies and uploads that follow allocate
	 * again) and not after every `corral run` (a burst of sessions would trim, and fault the
	 * pages back in, each time). Never while a CLI client or session is active; the next
	 * activity schedules it again, so an idle daemon never wakes for it.
	 */
	if (now >= d->trim_at) {
		d->trim_at = NEVER;
		if (daemon_quiet(d))
			malloc_trim(0);
	}
	if (now >= d->stale_at) {
		d->stale_at = NEVER;
		if (!d->stale_reported)
			emit_heartbeat(d);
	}
	if (d->cfg->offline)
		return;
	if (d->worker_pid <= 0 && now >= d->worker_restart_at)
		worker_start(d);
	try_enroll(d);
	try_poll(d);
	try_report(d);
	try_renew(d);
}

static void handle_signals(struct cd_daemon *d)
{
	struct signalfd_siginfo si;
	while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			log_info("received %s, shutting down", strsignal((int)si.ssi_signo));
			d->stopping = true;
		} else if (si.ssi_signo == SIGCHLD) {
			int status;
			pid_t pid;
			/* only the worker: session processes are reaped by the sandbox engine
			 * (sbx_child_wait), which needs their exit status */
			if (d->worker_pid > 0 &&
			    (pid = waitpid(d->worker_pid, &status, WNOHANG)) == d->worker_pid)
				worker_reaped(d, status);
		}
	}
}

int cd_daemon_run(struct cd_daemon *d)
{
	emit_health(d, "started", CORRAL_VERSION);
	d->heartbeat_at = now_mono(); /* first heartbeat at once: the server learns our state */
	schedule_stale(d);
	if (!d->cfg->offline)
		d->worker_restart_at = 0;
	d->trim_at = now_mono() + TRIM_DELAY_MS; /* after start-up's allocations */
	while (!d->stopping) {
		run_due(d);
		arm_timer(d);
		struct epoll_event evs[16];
		int n = epoll_wait(d->epfd, evs, 16, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("epoll_wait: %s", strerror(errno));
			return -errno;
		}
		/* anything but our own timer is activity: trim once it has been quiet a while */
		if (n > 1 || (n == 1 && evs[0].data.u64 != TAG_TIMER))
			d->trim_at = now_mono() + TRIM_DELAY_MS;
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == TAG_SIGNAL) {
				handle_signals(d);
			} else if (tag == TAG_TIMER) {
				uint64_t exp;
				(void)!read(d->timerfd, &exp, sizeof(exp));
				d->timer_armed = 0;
			} else if (tag == TAG_ENFORCE) {
				cd_enforce_process(d->enforce);
			} else if (tag == TAG_FSAUDIT) {
				bool was = cd_fsaudit_available(d->fsaudit);
				cd_fsaudit_process(d->fsaudit);
				if (was && !cd_fsaudit_available(d->fsaudit))
					log_warn("filesystem denials are no longer reported: %s",
					         cd_fsaudit_status(d->fsaudit));
			} else if (tag == TAG_LISTEN) {
				handle_accept(d);
			} else if (tag == TAG_WORKER) {
				if (d->worker_sock >= 0)
					handle_worker(d);
			} else if ((tag & ~0xffull) == TAG_CLIENT) {
				struct client *c = &d->clients[tag & 0xff];
				if (c->fd >= 0)
					handle_client(d, c);
			} else if ((tag & ~0xffull) == TAG_SESSION) {
				struct client *c = &d->clients[tag & 0xff];
				if (c->session && cd_session_process(c->session) > 0)
					client_close(d, c);
			}
		}
	}
	/* Graceful shutdown: the stop event is durable before the worker goes away; the next
	 * start uploads it. */
	emit_health(d, "stopped", "SIGTERM");
	if (d->worker_pid > 0) {
		kill(d->worker_pid, SIGTERM);
		int status;
		(void)waitpid(d->worker_pid, &status, 0);
		d->worker_pid = 0;
	}
	return 0;
}

/* A renewal interrupted between storing the certificate and renaming device.key.new: keep
 * the key that matches the stored certificate. */
static void reconcile_renewed_key(struct cd_daemon *d)
{
	char new_path[sizeof(d->key_path) + 8];
	snprintf(new_path, sizeof(new_path), "%s.new", d->key_path);
	if (access(new_path, F_OK) != 0)
		return;
	_cleanup_free_ char *der = NULL;
	size_t len = 0;
	bool match = false;
	Corral__CryptoReply *rp = NULL;
	if (cd_state_get(d->db, "certificate_der", &der, &len) == 0 &&
	    cert_check(d, (ProtobufCBinaryData){.data = (uint8_t *)der, .len = len}, NULL, 0,
	               new_path, &rp) == 0) {
		match = rp->key_matches;
		corral__crypto_reply__free_unpacked(rp, NULL);
	}
	if (match && rename(new_path, d->key_path) == 0)
		log_info("completed an interrupted certificate renewal");
	else
		(void)unlink(new_path);
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096];
	if (strlen(path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int install_initial_root(struct cd_daemon *d)
{
	if (!d->cfg->trust_root_file) {
		if (!d->cfg->offline && !d->tc.root_present)
			log_warn("no trust_root_file: the first trust root will be taken from the "
			         "server at enrollment (trust on first use)");
		return 0;
	}
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = util_read_file(d->cfg->trust_root_file, TRUST_ENVELOPE_MAX, &buf, &len);
	if (r == 0 && len == 0)
		r = -ENODATA;
	if (r < 0) {
		log_err("trust root %s: %s", d->cfg->trust_root_file,
		        r == -ENODATA ? "empty file" : strerror(-r));
		return r;
	}
	Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
	rq.op = CORRAL__CRYPTO_OP__CRYPTO_OP_INSTALL_ROOT;
	rq.envelope.data = (uint8_t *)buf;
	rq.envelope.len = len;
	Corral__CryptoReply *rp = NULL;
	r = crypto(d, &rq, &rp);
	if (r < 0)
		return r;
	r = rp->result;
	if (r == -EEXIST)
		r = 0; /* rotated since: the chain in the database is newer than the file */
	else if (r < 0)
		log_err("trust root %s refused: %s: %s", d->cfg->trust_root_file,
		        *rp->reason ? rp->reason : strerror(-r), rp->detail);
	else if (r > 0)
		log_info("installed trust root from %s", d->cfg->trust_root_file);
	corral__crypto_reply__free_unpacked(rp, NULL);
	return r < 0 ? r : 0;
}

/* The helpers sit next to corrald (same package, same directory). */
static int sibling_path(char *out, size_t size, const char *name)
{
	ssize_t n = readlink("/proc/self/exe", out, size - 1);
	if (n <= 0)
		return n < 0 ? -errno : -ENOENT;
	out[n] = '\0';
	char *slash = strrchr(out, '/');
	size_t dir = slash ? (size_t)(slash + 1 - out) : 0;
	if (dir + strlen(name) >= size)
		return -ENAMETOOLONG;
	snprintf(out + dir, size - dir, "%s", name);
	return 0;
}

int cd_daemon_new(const struct cd_config *cfg, struct cd_daemon **ret)
{
	/* Declared before the first `goto fail`: cleanup must never see it uninitialised. */
	_cleanup_free_ char *dev = NULL;
	struct cd_daemon *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = cfg;
	d->epfd = d->sigfd = d->timerfd = d->listenfd = d->worker_sock = -1;
	for (size_t i = 0; i < CLIENTS_MAX; i++)
		d->clients[i].fd = -1;
	d->stale_at = d->worker_restart_at = d->renew_at = d->outbox_sync_at = NEVER;
	d->trim_at = NEVER;
	int r = mkdir_p(cfg->data_dir, 0700);
	if (r < 0) {
		log_err("data directory %s: %s", cfg->data_dir, strerror(-r));
		goto fail;
	}
	/* The socket first: a second corrald on the same socket stops here, before it
	 * touches the database. Directory of the socket: created 0755 so unprivileged users can
	 * reach it. */
	char sockdir[4096];
	snprintf(sockdir, sizeof(sockdir), "%s", cfg->socket);
	char *slash = strrchr(sockdir, '/');
	if (slash && slash != sockdir) {
		*slash = '\0';
		(void)mkdir_p(sockdir, 0755);
	}
	d->listenfd = cd_ipc_listen(cfg->socket);
	if (d->listenfd < 0) {
		r = d->listenfd;
		log_err("socket %s: %s%s", cfg->socket, strerror(-r),
		        r == -EADDRINUSE ? " (another corrald is running)" : "");
		goto fail;
	}
	snprintf(d->db_path, sizeof(d->db_path), "%s/corrald.db", cfg->data_dir);
	snprintf(d->key_path, sizeof(d->key_path), "%s/device.key", cfg->data_dir);
	if ((r = sibling_path(d->worker_path, sizeof(d->worker_path), "corrald-worker")) < 0 ||
	    (r = sibling_path(d->crypto_path, sizeof(d->crypto_path), "corrald-crypto")) < 0) {
		log_err("cannot locate corrald's helpers: %s", strerror(-r));
		goto fail;
	}
	char err[512] = "";
	r = db_open(d->db_path, endpoint_migrations, 0, &d->db, err, sizeof(err));
	if (r < 0) {
		log_err("database: %s", err);
		goto fail;
	}
	/* The database is small and touched rarely: a 512 KiB page cache is plenty. */
	(void)db_exec(d->db, "PRAGMA cache_size = -512", NULL, 0);
	/* The trust store, as the crypto helper verifies it (the stored chain and bundle are
	 * re-checked from their bytes): refuse to start on one that does not verify. */
	Corral__CryptoRequest rq = CORRAL__CRYPTO_REQUEST__INIT;
	rq.op = CORRAL__CRYPTO_OP__CRYPTO_OP_STATE;
	Corral__CryptoReply *rp = NULL;
	r = crypto_ok(d, &rq, "crypto helper", &rp);
	if (r < 0)
		goto fail;
	corral__crypto_reply__free_unpacked(rp, NULL);
	r = install_initial_root(d);
	if (r < 0)
		goto fail;
	r = cd_outbox_open(d->db, cfg->outbox_max_bytes, cfg->outbox_max_events, &d->outbox);
	if (r < 0) {
		log_err("outbox: %s", strerror(-r));
		goto fail;
	}
	/* Identity: enrolled state from the database; offline mode from the configuration. */
	if (cfg->offline) {
		d->device_id = cfg->device_id ? strdup(cfg->device_id) : NULL;
		if (cfg->n_groups)
			(void)set_groups(d, cfg->groups, cfg->n_groups);
	} else if (cd_state_get(d->db, "device_id", &dev, NULL) == 0) {
		d->device_id = TAKE_PTR(dev);
		d->enrolled = true;
		reconcile_renewed_key(d);
		load_groups_from_db(d);
		(void)load_certificate_times(d);
		schedule_renew(d);
	}
	(void)cd_state_get_i64(d->db, "last_sync_ms", &d->last_sync_ms);
	cd_features_detect("/sys", "/proc", &d->features);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	d->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->sigfd < 0 || d->timerfd < 0 || d->epfd < 0) {
		r = -errno;
		log_err("event loop setup: %s", strerror(-r));
		goto fail;
	}
	struct epoll_event ee = {.events = EPOLLIN};
	ee.data.u64 = TAG_SIGNAL;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sigfd, &ee);
	ee.data.u64 = TAG_TIMER;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->timerfd, &ee);
	ee.data.u64 = TAG_LISTEN;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->listenfd, &ee);
	/* sessions: without the enforcement layer `corral run` refuses (never unconfined) */
	r = cd_enforce_new(cfg->test_hooks, emit_session_event, d, &d->enforce);
	if (r < 0) {
		log_err("session enforcement unavailable: %s", strerror(-r));
	} else if ((r = cd_enforce_set_proxy(d->enforce, cfg->egress_resolver,
	                                     cfg->egress_allow_private)) < 0) {
		log_err("egress proxy settings: %s", strerror(-r));
		goto fail;
	} else {
		ee.data.u64 = TAG_ENFORCE;
		epoll_ctl(d->epfd, EPOLL_CTL_ADD, cd_enforce_fd(d->enforce), &ee);
		/* Two TMP directories made ahead of time by a thread: a session start then does not
		 * wait for the mkdir (≈ 1 ms of disk I/O on ext4). Without the pool each session
		 * makes its own. */
		int pr = cd_tmppool_new(CD_SESSION_TMP_DIR, CD_SESSION_TMP_NAME, 2, &d->tmp_pool);
		if (pr < 0)
			log_warn("session TMP pool: %s (sessions create TMP themselves)",
			         strerror(-pr));
	}
	/* Filesystem (Landlock) denials: read from kernel audit when the kernel can; otherwise
	 * every session's layers say they are not reported (never silently). */
	int64_t was = 0;
	(void)cd_state_get_i64(d->db, FSAUDIT_STATE_KEY, &was);
	struct cd_fsaudit_changes inherited = {.rule_added = (was & 1) != 0,
	                                       .audit_enabled = (was & 2) != 0};
	r = cd_fsaudit_new(cfg->landlock_audit ? CD_FSAUDIT_MODE_AUTO : CD_FSAUDIT_MODE_OFF,
	                   d->enforce ? cd_enforce_features(d->enforce)->landlock_abi : 0, NULL,
	                   &inherited, emit_session_event, d, &d->fsaudit);
	if (r < 0) {
		log_err("filesystem denial reporting: %s", strerror(-r));
		goto fail;
	}
	/* what the kernel state owes us, durable before anything else: a corrald that is killed
	 * is undone by the next one on this data directory */
	fsaudit_persist(d);
	if (cd_fsaudit_available(d->fsaudit)) {
		log_info("filesystem denials: %s", cd_fsaudit_status(d->fsaudit));
		ee.data.u64 = TAG_FSAUDIT;
		epoll_ctl(d->epfd, EPOLL_CTL_ADD, cd_fsaudit_fd(d->fsaudit), &ee);
	} else {
		log_warn("filesystem denials are not reported: %s", cd_fsaudit_status(d->fsaudit));
	}
	if (d->enforce && d->bundle)
		cd_enforce_prepare(d->enforce,
		                   d->bundle); /* `corral run` does per-session work only */
	*ret = d;
	return 0;
fail:
	cd_daemon_free(d);
	return r;
}

void cd_daemon_free(struct cd_daemon *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < CLIENTS_MAX; i++)
		client_close(d, &d->clients[i]);
	/* sessions are gone: undo exactly what was changed in the kernel's audit state */
	if (d->fsaudit) {
		char msg[256] = "";
		int rr = cd_fsaudit_restore(d->fsaudit, msg, sizeof(msg));
		if (rr < 0)
			log_err("filesystem denials: restoring the audit state: %s", msg);
		else if (rr > 0)
			log_info("filesystem denials: audit state restored");
		if (rr >= 0)
			fsaudit_persist(d);
		cd_fsaudit_free(d->fsaudit);
		d->fsaudit = NULL;
	}
	if (d->worker_pid > 0) {
		kill(d->worker_pid, SIGKILL);
		(void)waitpid(d->worker_pid, NULL, 0);
	}
	if (d->worker_sock >= 0)
		close(d->worker_sock);
	cd_tmppool_free(d->tmp_pool);
	cd_enforce_free(d->enforce);
	if (d->listenfd >= 0) {
		close(d->listenfd);
		unlink(d->cfg->socket);
	}
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->sigfd >= 0)
		close(d->sigfd);
	if (d->timerfd >= 0)
		close(d->timerfd);
	if (d->outbox)
		outbox_sync(d);
	cd_outbox_free(d->outbox);
	if (d->bundle)
		corral__policy_bundle__free_unpacked(d->bundle, NULL);
	if (d->db)
		sqlite3_close_v2(d->db);
	free_groups(d);
	free(d->device_id);
	free(d);
}
