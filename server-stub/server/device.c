// SPDX-License-Identifier: Apache-2.0
/*
 * The device API (docs/server.md): enrollment, certificate renewal, the policy long-poll and
 * event reports. Every endpoint but /v1/enroll authenticates the peer itself from the TLS
 * session: libmicrohttpd's GnuTLS only *requests* a client certificate, so the chain is checked
 * here against the fleet CA (OpenSSL X509_verify_cert) and the device row (revocation) on every
 * request. The device id always comes from the certificate, never from a body.
 */
#include "decode.h"
#include "srv_internal.h"

#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROTOBUF_CTYPE "application/x-protobuf"

static enum MHD_Result reply_proto(struct MHD_Connection *c, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return MHD_NO;
	protobuf_c_message_pack(m, buf);
	return srv_reply(c, 200, PROTOBUF_CTYPE, buf, len);
}

/*
 * Authenticates the device behind this connection into req->dev. Returns 0, or -1 after
 * queueing the refusal into *ret.
 */
static int authenticate(struct srv *s, struct MHD_Connection *c, struct srv_req *req,
                        enum MHD_Result *ret)
{
	if (req->authed)
		return 0;
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	unsigned n = 0;
	const gnutls_datum_t *peers =
	        ci && ci->tls_session ? gnutls_certificate_get_peers(ci->tls_session, &n) : NULL;
	if (!peers || n == 0) {
		*ret = srv_reply_error(c, 401, "no-certificate",
		                       "a fleet client certificate is required");
		return -1;
	}
	const uint8_t *ders[8];
	size_t lens[8];
	if (n > ELEMENTSOF(ders))
		n = ELEMENTSOF(ders);
	for (unsigned i = 0; i < n; i++) {
		ders[i] = peers[i].data;
		lens[i] = peers[i].size;
	}
	char cn[SRV_CA_CN_MAX];
	if (srv_ca_verify_peer(s->ca, ders, lens, n, cn) < 0) {
		*ret = srv_reply_error(c, 401, "bad-certificate",
		                       "certificate not issued by this fleet's CA, or expired");
		return -1;
	}
	pthread_mutex_lock(&s->store_lock);
	int r = s->store->ops->device_get(s->store, cn, &req->dev);
	pthread_mutex_unlock(&s->store_lock);
	if (r == -ENOENT) {
		*ret = srv_reply_error(c, 403, "unknown-device", cn);
		return -1;
	}
	if (r < 0) {
		*ret = srv_reply_error(c, 500, "internal", "device lookup failed");
		return -1;
	}
	if (req->dev.revoked) {
		*ret = srv_reply_error(c, 403, "revoked", "this device has been revoked");
		return -1;
	}
	req->authed = true;
	return 0;
}

int srv_device_preauth(struct srv *s, struct MHD_Connection *c, struct srv_req *req,
                       const char *url, enum MHD_Result *ret)
{
	if (strcmp(url, "/v1/renew") != 0 && strcmp(url, "/v1/policy") != 0 &&
	    strcmp(url, "/v1/report") != 0)
		return 0;
	return authenticate(s, c, req, ret);
}

/* ---- POST /v1/enroll ---------------------------------------------------------------------- */

static enum MHD_Result handle_enroll(struct srv *s, struct MHD_Connection *c, struct srv_req *req)
{
	Corral__EnrollRequest *in = NULL;
	const char *why = NULL;
	if (srv_decode_enroll(req->body ? req->body : (const uint8_t *)"", req->len,
	                      SRV_ENROLL_BODY_MAX, &in, &why) < 0)
		return srv_reply_error(c, 400, "malformed", why);
	enum MHD_Result ret;
	char token_id[17];
	uint8_t sha[SRV_SHA256_LEN];
	char device_id[32] = "d-";
	_cleanup_free_ uint8_t *cert = NULL;
	size_t cert_len = 0;
	char serial[SRV_CA_SERIAL_HEX];
	int64_t expires = 0;
	_cleanup_free_ ProtobufCBinaryData *roots = NULL;
	if (srv_token_parse(in->token, token_id, sha) < 0) {
		ret = srv_reply_error(c, 401, "invalid-token", "enrollment token not recognised");
		goto out;
	}
	if (srv_random_hex(12, device_id + 2) < 0) {
		ret = srv_reply_error(c, 500, "internal", "no randomness");
		goto out;
	}
	/* Issue first, consume the token second: a bad CSR must not burn a token use. */
	int r = srv_ca_issue(s->ca, in->csr_der.data, in->csr_der.len, device_id,
	                     s->cfg.cert_lifetime_sec, &cert, &cert_len, serial, &expires);
	if (r == -EBADMSG) {
		ret = srv_reply_error(c, 400, "bad-csr",
		                      "CSR does not parse, verify, or has a refused key type");
		goto out;
	}
	if (r < 0) {
		ret = srv_reply_error(c, 500, "internal", "certificate issuance failed");
		goto out;
	}
	struct srv_enroll_in e = {
	        .token_id = token_id,
	        .secret_sha256 = sha,
	        .device_id = device_id,
	        .hostname = in->hostname,
	        .agent_version = in->agent_version,
	        .cert_serial = serial,
	        .cert_expires_at = expires,
	        .now = util_now_sec(),
	};
	enum srv_enroll_result res;
	char group[SRV_ID_MAX];
	pthread_mutex_lock(&s->store_lock);
	r = s->store->ops->enroll(s->store, &e, &res, group);
	pthread_mutex_unlock(&s->store_lock);
	if (r < 0) {
		ret = srv_reply_error(c, 500, "internal", "storing the enrollment failed");
		goto out;
	}
	switch (res) {
	case SRV_ENROLL_INVALID:
		ret = srv_reply_error(c, 401, "invalid-token", "enrollment token not recognised");
		goto out;
	case SRV_ENROLL_EXPIRED:
		ret = srv_reply_error(c, 403, "token-expired", "enrollment token has expired");
		goto out;
	case SRV_ENROLL_EXHAUSTED:
		ret = srv_reply_error(c, 403, "token-exhausted",
		                      "enrollment token has no uses left");
		goto out;
	case SRV_ENROLL_OK:
		break;
	}

	Corral__EnrollResponse out = CORRAL__ENROLL_RESPONSE__INIT;
	size_t ca_len = 0;
	const uint8_t *ca_der = srv_ca_cert_der(s->ca, &ca_len);
	ProtobufCBinaryData chain[1] = {{ca_len, (uint8_t *)ca_der}};
	char *groups[1] = {group};
	out.device_id = device_id;
	out.certificate_der = (ProtobufCBinaryData){cert_len, cert};
	out.n_ca_chain_der = 1;
	out.ca_chain_der = chain;
	out.n_groups = 1;
	out.groups = groups;
	out.certificate_expires_at = expires;
	/* Trust roots are append-only; pack under the lock so the array cannot move. */
	pthread_mutex_lock(&s->poll_lock);
	roots = calloc(s->n_roots ? s->n_roots : 1, sizeof(*roots));
	if (roots) {
		for (size_t i = 0; i < s->n_roots; i++)
			roots[i] = (ProtobufCBinaryData){s->roots[i].len, s->roots[i].data};
		out.n_trust_roots = s->n_roots;
		out.trust_roots = roots;
		ret = reply_proto(c, &out.base);
	} else
		ret = MHD_NO;
	pthread_mutex_unlock(&s->poll_lock);
out:
	corral__enroll_request__free_unpacked(in, NULL);
	return ret;
}

/* ---- POST /v1/renew ---------------------------------------------------------------------- */

static enum MHD_Result handle_renew(struct srv *s, struct MHD_Connection *c, struct srv_req *req)
{
	Corral__RenewRequest *in = NULL;
	const char *why = NULL;
	if (srv_decode_renew(req->body ? req->body : (const uint8_t *)"", req->len,
	                     SRV_ENROLL_BODY_MAX, &in, &why) < 0)
		return srv_reply_error(c, 400, "malformed", why);
	_cleanup_free_ uint8_t *cert = NULL;
	size_t cert_len = 0;
	char serial[SRV_CA_SERIAL_HEX];
	int64_t expires = 0;
	int r = srv_ca_issue(s->ca, in->csr_der.data, in->csr_der.len, req->dev.device_id,
	                     s->cfg.cert_lifetime_sec, &cert, &cert_len, serial, &expires);
	corral__renew_request__free_unpacked(in, NULL);
	if (r == -EBADMSG)
		return srv_reply_error(c, 400, "bad-csr",
		                       "CSR does not parse, verify, or has a refused key type");
	if (r < 0)
		return srv_reply_error(c, 500, "internal", "certificate issuance failed");
	pthread_mutex_lock(&s->store_lock);
	r = s->store->ops->device_set_cert(s->store, req->dev.device_id, serial, expires);
	pthread_mutex_unlock(&s->store_lock);
	if (r < 0)
		return srv_reply_error(c, 500, "internal", "storing the certificate failed");
	Corral__RenewResponse out = CORRAL__RENEW_RESPONSE__INIT;
	out.certificate_der = (ProtobufCBinaryData){cert_len, cert};
	out.certificate_expires_at = expires;
	return reply_proto(c, &out.base);
}

/* ---- GET /v1/policy ---------------------------------------------------------------------- */

/*
 * Packs a PolicyUpdate for `dev` when something newer than (have, root) exists. Caller holds
 * poll_lock (the heads and roots are read in place). Returns 1 with *ret (caller frees), 0 when
 * nothing is newer, -ENOMEM.
 */
static int build_update_locked(struct srv *s, const struct srv_device *dev, uint64_t have,
                               uint64_t root, uint8_t **ret, size_t *ret_len)
{
	const struct srv_group_head *h = s->heads;
	while (h && strcmp(h->group, dev->group) != 0)
		h = h->next;
	bool bundle = h && h->version > have;
	size_t first_root = 0;
	while (first_root < s->n_roots && s->roots[first_root].version <= root)
		first_root++;
	size_t nroots = s->n_roots - first_root;
	if (!bundle && nroots == 0)
		return 0;
	Corral__PolicyUpdate up = CORRAL__POLICY_UPDATE__INIT;
	_cleanup_free_ ProtobufCBinaryData *roots = calloc(nroots ? nroots : 1, sizeof(*roots));
	if (!roots)
		return -ENOMEM;
	for (size_t i = 0; i < nroots; i++)
		roots[i] = (ProtobufCBinaryData){s->roots[first_root + i].len,
		                                 s->roots[first_root + i].data};
	char *groups[1] = {(char *)dev->group};
	if (bundle)
		up.bundle = (ProtobufCBinaryData){h->len, h->envelope};
	up.n_trust_roots = nroots;
	up.trust_roots = roots;
	up.n_groups = 1;
	up.groups = groups;
	size_t len = corral__policy_update__get_packed_size(&up);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	corral__policy_update__pack(&up, buf);
	*ret = buf;
	*ret_len = len;
	return 1;
}

static int query_u64(struct MHD_Connection *c, const char *name, uint64_t *ret)
{
	const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
	if (!v) {
		*ret = 0;
		return 0;
	}
	return util_parse_u64(v, ret);
}

static enum MHD_Result handle_policy(struct srv *s, struct MHD_Connection *c, struct srv_req *req)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;
	if (!req->poll_started) {
		uint64_t wait = 0;
		if (query_u64(c, "have", &req->have) < 0 || query_u64(c, "root", &req->root) < 0 ||
		    query_u64(c, "wait", &wait) < 0)
			return srv_reply_error(c, 400, "malformed",
			                       "have, root and wait are numbers");
		if (wait > SRV_POLL_WAIT_MAX)
			wait = SRV_POLL_WAIT_MAX;
		req->poll_started = true;
		req->waiter.conn = c;
		snprintf(req->waiter.group, sizeof(req->waiter.group), "%s", req->dev.group);
		snprintf(req->waiter.device_id, sizeof(req->waiter.device_id), "%s",
		         req->dev.device_id);
		req->waiter.deadline_ms = util_monotonic_ms() + wait * 1000;
	} else {
		/* Resumed by a publish, a trust root, the timer or a revocation. Revocation marks
		 * the waiter (srv_poll_revoke), so a wake-up needs no database round trip. */
		pthread_mutex_lock(&s->poll_lock);
		bool revoked = req->waiter.revoked;
		pthread_mutex_unlock(&s->poll_lock);
		if (revoked)
			return srv_reply_error(c, 403, "revoked", "this device has been revoked");
	}
	pthread_mutex_lock(&s->poll_lock);
	if (s->shutting_down) {
		pthread_mutex_unlock(&s->poll_lock);
		struct MHD_Response *resp =
		        MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, "Retry-After", "1");
		MHD_add_response_header(resp, "X-Corral-Reason", "shutting-down");
		enum MHD_Result ret = MHD_queue_response(c, 503, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	r = build_update_locked(s, &req->dev, req->have, req->root, &buf, &len);
	/* Answered or re-suspended, a woken poll has been dealt with (fan-out accounting). */
	srv_poll_answered_locked(s, &req->waiter);
	if (r == 0 && util_monotonic_ms() < req->waiter.deadline_ms) {
		/* Register and suspend under the same lock a publisher takes to wake us, so a
		 * publish between the check above and here cannot be missed. */
		srv_poll_add_locked(s, &req->waiter);
		MHD_suspend_connection(c);
		pthread_mutex_unlock(&s->poll_lock);
		return MHD_YES;
	}
	pthread_mutex_unlock(&s->poll_lock);
	if (r < 0)
		return MHD_NO;
	enum MHD_Result ret = r == 0 ? srv_reply(c, 304, NULL, NULL, 0)
	                             : srv_reply(c, 200, PROTOBUF_CTYPE, buf, len);
	free(buf);
	return ret;
}

/* ---- POST /v1/report ----------------------------------------------------------------------- */

static enum MHD_Result handle_report(struct srv *s, struct MHD_Connection *c, struct srv_req *req)
{
	unsigned retry = 1;
	if (!srv_rate_allow(s, req->dev.rowid, &retry)) {
		char detail[64], ra[16];
		snprintf(detail, sizeof(detail), "retry after %u s", retry);
		snprintf(ra, sizeof(ra), "%u", retry);
		char body[128];
		int n = snprintf(body, sizeof(body), "rate-limited: %s\n", detail);
		struct MHD_Response *resp =
		        MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
		MHD_add_response_header(resp, "X-Corral-Reason", "rate-limited");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
		enum MHD_Result ret = MHD_queue_response(c, 429, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	Corral__ReportBatch *b = NULL;
	const char *why = NULL;
	if (srv_decode_report(req->body ? req->body : (const uint8_t *)"", req->len,
	                      s->cfg.report_body_max, SRV_REPORT_EVENTS_MAX, &b, &why) < 0)
		return srv_reply_error(c, 400, "malformed", why);
	enum MHD_Result ret;
	if (b->device_id && *b->device_id && strcmp(b->device_id, req->dev.device_id) != 0) {
		ret = srv_reply_error(c, 403, "device-mismatch",
		                      "device_id differs from the certificate's device");
		goto out;
	}
	uint64_t acked = 0;
	pthread_mutex_lock(&s->store_lock);
	/* Re-read the watermark under the lock: another connection of the same device may have
	 * advanced it since authentication. */
	int r = s->store->ops->device_get(s->store, req->dev.device_id, &req->dev);
	if (r >= 0)
		r = s->store->ops->report_store(s->store, &req->dev, b, util_now_ms(), &acked);
	pthread_mutex_unlock(&s->store_lock);
	if (r < 0) {
		ret = srv_reply_error(c, 500, "internal", "storing the report failed");
		goto out;
	}
	/* Acknowledge only after the commit above: nothing acknowledged can be lost. */
	Corral__ReportAck ack = CORRAL__REPORT_ACK__INIT;
	ack.acked_seq = acked;
	ret = reply_proto(c, &ack.base);
out:
	corral__report_batch__free_unpacked(b, NULL);
	return ret;
}

enum MHD_Result srv_device_handle(struct srv *s, struct MHD_Connection *c, struct srv_req *req,
                                  const char *method, const char *url)
{
	bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
	if (strcmp(url, "/v1/enroll") == 0) {
		if (!post)
			return srv_reply_error(c, 405, "method", "use POST");
		return handle_enroll(s, c, req);
	}
	const char *known[] = {"/v1/renew", "/v1/policy", "/v1/report"};
	bool found = false;
	for (size_t i = 0; i < ELEMENTSOF(known); i++)
		found |= strcmp(url, known[i]) == 0;
	if (!found)
		return srv_reply_error(c, 404, "not-found", url);
	enum MHD_Result ret;
	if (authenticate(s, c, req, &ret) < 0)
		return ret;
	if (strcmp(url, "/v1/policy") == 0) {
		if (!get)
			return srv_reply_error(c, 405, "method", "use GET");
		return handle_policy(s, c, req);
	}
	if (!post)
		return srv_reply_error(c, 405, "method", "use POST");
	if (strcmp(url, "/v1/renew") == 0)
		return handle_renew(s, c, req);
	return handle_report(s, c, req);
}
