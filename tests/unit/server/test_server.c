// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of corral_server_core without the network: configuration and listen parsing,
 * tokens, the device request decoders, the fleet CA (issuance, peer verification, refusals),
 * the SQLite storage backend (enrollment atomicity, idempotent reports and the contiguous ack,
 * publication rules, append-only audit), event rendering, and srv_new's failure paths.
 */
#include "harness.h"

#include "ca.h"
#include "compliance.h"
#include "cleanup.h"
#include "decode.h"
#include "srv_internal.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *tmp;

static int init(void)
{
	tmp = harness_mkdtemp("server-unit");
	return tmp ? 0 : -1;
}

static int cleanup(void)
{
	harness_rm_rf(tmp);
	free(tmp);
	return 0;
}

static char *path_in(const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", tmp, name) < 0)
		return NULL;
	return p;
}

/* ---- config ---------------------------------------------------------------------------------- */

static void test_listen_parse(void)
{
	char host[64];
	uint16_t port = 0;
	CU_ASSERT_EQUAL(srv_parse_listen("127.0.0.1:8443", host, sizeof(host), &port), 0);
	CU_ASSERT_STRING_EQUAL(host, "127.0.0.1");
	CU_ASSERT_EQUAL(port, 8443);
	CU_ASSERT_EQUAL(srv_parse_listen("[::1]:0", host, sizeof(host), &port), 0);
	CU_ASSERT_STRING_EQUAL(host, "::1");
	CU_ASSERT_EQUAL(port, 0);
	CU_ASSERT_EQUAL(srv_parse_listen("127.0.0.1", host, sizeof(host), &port), -EINVAL);
	CU_ASSERT_EQUAL(srv_parse_listen("127.0.0.1:99999", host, sizeof(host), &port), -EINVAL);
	CU_ASSERT_EQUAL(srv_parse_listen(":80", host, sizeof(host), &port), -EINVAL);
	CU_ASSERT_EQUAL(srv_parse_listen("[::1]80", host, sizeof(host), &port), -EINVAL);
	CU_ASSERT_EQUAL(srv_parse_listen("[::1:80", host, sizeof(host), &port), -EINVAL);
	CU_ASSERT_EQUAL(srv_parse_listen("a-very-long-host-name-that-does-not-fit-in-the-buffer-"
	                                 "given.example:1",
	                                 host, 16, &port),
	                -EINVAL);
}

static int load_cfg(const char *json, struct srv_config *cfg)
{
	_cleanup_free_ char *p = path_in("cfg.json");
	util_write_file_atomic(p, json, strlen(json), 0644);
	srv_config_defaults(cfg);
	char err[256];
	return srv_config_load(p, cfg, err, sizeof(err));
}

static void test_config(void)
{
	struct srv_config cfg;
	srv_config_defaults(&cfg);
	CU_ASSERT_EQUAL(cfg.cert_lifetime_sec, 30 * 86400);
	CU_ASSERT_EQUAL(cfg.report_body_max, 2u * 1024 * 1024);
	CU_ASSERT_EQUAL(load_cfg("{\"cert_lifetime\":\"7d\",\"report_rate\":2.5,\"report_burst\":"
	                         "5,\"report_body_max\":\"1M\",\"threads\":2,\"connection_limit\":"
	                         "100,\"log_level\":\"debug\"}",
	                         &cfg),
	                0);
	CU_ASSERT_EQUAL(cfg.cert_lifetime_sec, 7 * 86400);
	CU_ASSERT_EQUAL(cfg.threads, 2);
	CU_ASSERT_EQUAL(cfg.report_body_max, 1024 * 1024);
	CU_ASSERT_EQUAL(cfg.log_level, LOG_LEVEL_DEBUG);
	const char *bad[] = {
	        "{\"unknown\":1}",
	        "{\"cert_lifetime\":\"1s\"}",
	        "{\"cert_lifetime\":5}",
	        "{\"report_rate\":0}",
	        "{\"report_burst\":0.5}",
	        "{\"report_body_max\":\"1\"}",
	        "{\"threads\":0}",
	        "{\"connection_limit\":1}",
	        "{\"log_level\":\"loud\"}",
	        "[1]",
	        "not json",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		CU_ASSERT_EQUAL(load_cfg(bad[i], &cfg), -EINVAL);
	char err[256];
	CU_ASSERT_EQUAL(srv_config_load("/nonexistent/corral.json", &cfg, err, sizeof(err)),
	                -ENOENT);
}

/* ---- tokens and decoders ------------------------------------------------------------------ */

static void test_tokens(void)
{
	char id[17], tok[128], id2[17];
	uint8_t sha[SRV_SHA256_LEN], sha2[SRV_SHA256_LEN];
	CU_ASSERT_EQUAL_FATAL(srv_token_new(id, tok, sha), 0);
	CU_ASSERT_EQUAL(srv_token_parse(tok, id2, sha2), 0);
	CU_ASSERT_STRING_EQUAL(id, id2);
	CU_ASSERT(memcmp(sha, sha2, sizeof(sha)) == 0);
	CU_ASSERT_EQUAL(srv_token_parse("nodot", id2, sha2), -EINVAL);
	CU_ASSERT_EQUAL(srv_token_parse("0123456789abcdef.", id2, sha2), -EINVAL);
	CU_ASSERT_EQUAL(srv_token_parse("0123456789ABCDEF.x", id2, sha2), -EINVAL);
	CU_ASSERT_EQUAL(srv_token_parse("0123.x", id2, sha2), -EINVAL);
	CU_ASSERT_EQUAL(srv_token_parse(NULL, id2, sha2), -EINVAL);
	char hex[9];
	CU_ASSERT_EQUAL(srv_random_hex(4, hex), 0);
	CU_ASSERT_EQUAL(strlen(hex), 8);
	CU_ASSERT_EQUAL(srv_random_hex(1000, hex), -EIO);
}

static uint8_t *pack_report(const uint64_t *seqs, size_t n, size_t *ret_len)
{
	Corral__Event ev[8];
	Corral__Event *evp[8];
	for (size_t i = 0; i < n; i++) {
		corral__event__init(&ev[i]);
		ev[i].seq = seqs[i];
		ev[i].kind = CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION;
		evp[i] = &ev[i];
	}
	Corral__ReportBatch b = CORRAL__REPORT_BATCH__INIT;
	b.n_events = n;
	b.events = evp;
	*ret_len = corral__report_batch__get_packed_size(&b);
	uint8_t *buf = malloc(*ret_len + 1);
	corral__report_batch__pack(&b, buf);
	return buf;
}

static void test_decoders(void)
{
	const char *why = NULL;
	Corral__EnrollRequest *er = NULL;
	Corral__EnrollRequest e = CORRAL__ENROLL_REQUEST__INIT;
	e.token = (char *)"t";
	uint8_t csr[3] = {1, 2, 3};
	e.csr_der = (ProtobufCBinaryData){3, csr};
	uint8_t buf[1024];
	size_t len = corral__enroll_request__pack(&e, buf);
	CU_ASSERT_EQUAL(srv_decode_enroll(buf, len, 1024, &er, &why), 0);
	corral__enroll_request__free_unpacked(er, NULL);
	CU_ASSERT_EQUAL(srv_decode_enroll(buf, len, 2, &er, &why), -EMSGSIZE);
	CU_ASSERT_EQUAL(srv_decode_enroll((const uint8_t *)"\xff", 1, 1024, &er, &why), -EBADMSG);
	e.csr_der.len = 0;
	len = corral__enroll_request__pack(&e, buf);
	CU_ASSERT_EQUAL(srv_decode_enroll(buf, len, 1024, &er, &why), -EBADMSG);
	e.csr_der.len = 3;
	char longname[300];
	memset(longname, 'h', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	e.hostname = longname;
	len = corral__enroll_request__pack(&e, buf);
	CU_ASSERT_EQUAL(srv_decode_enroll(buf, len, 1024, &er, &why), -EBADMSG);

	Corral__RenewRequest *rr = NULL;
	Corral__RenewRequest r = CORRAL__RENEW_REQUEST__INIT;
	r.csr_der = (ProtobufCBinaryData){3, csr};
	len = corral__renew_request__pack(&r, buf);
	CU_ASSERT_EQUAL(srv_decode_renew(buf, len, 1024, &rr, &why), 0);
	corral__renew_request__free_unpacked(rr, NULL);
	CU_ASSERT_EQUAL(srv_decode_renew(buf, len, 1, &rr, &why), -EMSGSIZE);
	CU_ASSERT_EQUAL(srv_decode_renew(buf, 0, 1024, &rr, &why), -EBADMSG);
	CU_ASSERT_EQUAL(srv_decode_renew((const uint8_t *)"\xff", 1, 1024, &rr, &why), -EBADMSG);

	Corral__ReportBatch *b = NULL;
	uint64_t ok[3] = {1, 2, 3}, zero[1] = {0}, huge[1] = {(uint64_t)INT64_MAX + 1};
	_cleanup_free_ uint8_t *p1 = pack_report(ok, 3, &len);
	CU_ASSERT_EQUAL(srv_decode_report(p1, len, 4096, 10, &b, &why), 0);
	CU_ASSERT_EQUAL(b->n_events, 3);
	corral__report_batch__free_unpacked(b, NULL);
	CU_ASSERT_EQUAL(srv_decode_report(p1, len, 4, 10, &b, &why), -EMSGSIZE);
	CU_ASSERT_EQUAL(srv_decode_report(p1, len, 4096, 2, &b, &why), -EBADMSG);
	CU_ASSERT_EQUAL(srv_decode_report((const uint8_t *)"\xff", 1, 4096, 2, &b, &why), -EBADMSG);
	_cleanup_free_ uint8_t *p2 = pack_report(zero, 1, &len);
	CU_ASSERT_EQUAL(srv_decode_report(p2, len, 4096, 10, &b, &why), -EBADMSG);
	_cleanup_free_ uint8_t *p3 = pack_report(huge, 1, &len);
	CU_ASSERT_EQUAL(srv_decode_report(p3, len, 4096, 10, &b, &why), -EBADMSG);
}

/* ---- CA ------------------------------------------------------------------------------------- */

static int csr_for(EVP_PKEY *k, uint8_t **ret, size_t *ret_len)
{
	X509_REQ *req = X509_REQ_new();
	X509_REQ_set_pubkey(req, k);
	X509_REQ_sign(req, k, EVP_sha256());
	uint8_t *der = NULL;
	int n = i2d_X509_REQ(req, &der);
	X509_REQ_free(req);
	if (n <= 0)
		return -1;
	*ret = malloc((size_t)n);
	memcpy(*ret, der, (size_t)n);
	OPENSSL_free(der);
	*ret_len = (size_t)n;
	return 0;
}

static void test_ca(void)
{
	_cleanup_free_ char *dir = path_in("ca");
	mkdir(dir, 0700);
	struct srv_ca *ca = NULL;
	char err[256];
	CU_ASSERT_EQUAL_FATAL(srv_ca_open(dir, "mgmt.example", "10.0.0.1", &ca, err, sizeof(err)),
	                      0);
	struct stat st;
	_cleanup_free_ char *key = NULL;
	CU_ASSERT_FATAL(asprintf(&key, "%s/ca.key", dir) > 0);
	CU_ASSERT(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
	CU_ASSERT_PTR_NOT_NULL(strstr(srv_ca_cert_pem(ca), "BEGIN CERTIFICATE"));
	size_t ca_len = 0;
	CU_ASSERT_PTR_NOT_NULL(srv_ca_cert_der(ca, &ca_len));
	CU_ASSERT(ca_len > 100);

	EVP_PKEY *k = EVP_EC_gen("P-256");
	_cleanup_free_ uint8_t *csr = NULL;
	size_t csr_len = 0;
	CU_ASSERT_FATAL(csr_for(k, &csr, &csr_len) == 0);
	_cleanup_free_ uint8_t *cert = NULL;
	size_t cert_len = 0;
	char serial[SRV_CA_SERIAL_HEX];
	int64_t exp = 0;
	CU_ASSERT_EQUAL_FATAL(
	        srv_ca_issue(ca, csr, csr_len, "d-unit", 3600, &cert, &cert_len, serial, &exp), 0);
	CU_ASSERT(exp > util_now_sec());
	CU_ASSERT_EQUAL(strlen(serial), 32);
	char cn[SRV_CA_CN_MAX];
	const uint8_t *ders[2] = {cert, NULL};
	size_t lens[2] = {cert_len, 0};
	CU_ASSERT_EQUAL(srv_ca_verify_peer(ca, ders, lens, 1, cn), 0);
	CU_ASSERT_STRING_EQUAL(cn, "d-unit");
	CU_ASSERT_EQUAL(srv_ca_verify_peer(ca, ders, lens, 0, cn), -ENOKEY);
	uint8_t junk[4] = {0x30, 0x02, 0, 0};
	ders[0] = junk;
	lens[0] = sizeof(junk);
	CU_ASSERT_EQUAL(srv_ca_verify_peer(ca, ders, lens, 1, cn), -EACCES);

	/* A certificate issued by another CA (same CN) does not verify. */
	_cleanup_free_ char *dir2 = path_in("ca2");
	mkdir(dir2, 0700);
	struct srv_ca *other = NULL;
	CU_ASSERT_EQUAL_FATAL(srv_ca_open(dir2, NULL, "127.0.0.1", &other, err, sizeof(err)), 0);
	_cleanup_free_ uint8_t *fcert = NULL;
	size_t fcert_len = 0;
	CU_ASSERT_EQUAL(
	        srv_ca_issue(other, csr, csr_len, "d-unit", 3600, &fcert, &fcert_len, serial, &exp),
	        0);
	ders[0] = fcert;
	lens[0] = fcert_len;
	CU_ASSERT_EQUAL(srv_ca_verify_peer(ca, ders, lens, 1, cn), -EACCES);
	/* ...not even when it brings the other CA along as a chain. */
	size_t ocalen = 0;
	ders[1] = srv_ca_cert_der(other, &ocalen);
	lens[1] = ocalen;
	CU_ASSERT_EQUAL(srv_ca_verify_peer(ca, ders, lens, 2, cn), -EACCES);
	srv_ca_free(other);

	/* Refused CSRs: garbage, trailing bytes, broken signature, weak RSA key. */
	CU_ASSERT_EQUAL(
	        srv_ca_issue(ca, junk, sizeof(junk), "x", 60, &fcert, &fcert_len, serial, &exp),
	        -EBADMSG);
	CU_ASSERT_EQUAL(srv_ca_issue(ca, csr, 0, "x", 60, &fcert, &fcert_len, serial, &exp),
	                -EBADMSG);
	uint8_t *longer = malloc(csr_len + 1);
	memcpy(longer, csr, csr_len);
	longer[csr_len] = 0;
	CU_ASSERT_EQUAL(
	        srv_ca_issue(ca, longer, csr_len + 1, "x", 60, &fcert, &fcert_len, serial, &exp),
	        -EBADMSG);
	free(longer);
	csr[csr_len - 3] ^= 0x40;
	CU_ASSERT_EQUAL(srv_ca_issue(ca, csr, csr_len, "x", 60, &fcert, &fcert_len, serial, &exp),
	                -EBADMSG);
	EVP_PKEY *weak = EVP_RSA_gen(1024);
	_cleanup_free_ uint8_t *wcsr = NULL;
	size_t wlen = 0;
	CU_ASSERT_FATAL(csr_for(weak, &wcsr, &wlen) == 0);
	CU_ASSERT_EQUAL(srv_ca_issue(ca, wcsr, wlen, "x", 60, &fcert, &fcert_len, serial, &exp),
	                -EBADMSG);
	EVP_PKEY_free(weak);
	EVP_PKEY_free(k);
	srv_ca_free(ca);

	/* Reopening loads the same CA; a world-readable CA key is refused. */
	CU_ASSERT_EQUAL(srv_ca_open(dir, NULL, "127.0.0.1", &ca, err, sizeof(err)), 0);
	size_t again = 0;
	srv_ca_cert_der(ca, &again);
	CU_ASSERT_EQUAL(again, ca_len);
	srv_ca_free(ca);
	chmod(key, 0644);
	CU_ASSERT_EQUAL(srv_ca_open(dir, NULL, "127.0.0.1", &ca, err, sizeof(err)), -EPERM);
	chmod(key, 0600);
	/* A directory that cannot be written. */
	CU_ASSERT(srv_ca_open("/nonexistent/dir", NULL, "127.0.0.1", &ca, err, sizeof(err)) < 0);
}

/* ---- store ---------------------------------------------------------------------------------- */

static struct srv_store *open_store(const char *name)
{
	_cleanup_free_ char *p = path_in(name);
	struct srv_store *st = NULL;
	char err[256];
	if (srv_store_sqlite_open(p, &st, err, sizeof(err)) < 0)
		return NULL;
	return st;
}

static int enroll_dev(struct srv_store *st, const char *tok_id, const uint8_t *sha, const char *dev,
                      int64_t now, enum srv_enroll_result *res)
{
	struct srv_enroll_in in = {.token_id = tok_id,
	                           .secret_sha256 = sha,
	                           .device_id = dev,
	                           .hostname = "h",
	                           .agent_version = "v",
	                           .cert_serial = "00",
	                           .cert_expires_at = now + 100,
	                           .now = now};
	char group[SRV_ID_MAX];
	return st->ops->enroll(st, &in, res, group);
}

static void test_store_enroll(void)
{
	struct srv_store *st = open_store("enroll.db");
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	const struct srv_store_ops *o = st->ops;
	int64_t now = util_now_sec();
	uint8_t sha[SRV_SHA256_LEN] = {1}, wrong[SRV_SHA256_LEN] = {2};
	CU_ASSERT_EQUAL(o->enroll_token_add(st, "t1", "g1", sha, 1, now + 60, "me", now), -ENOENT);
	CU_ASSERT_EQUAL(o->group_create(st, "g1", "me", now), 0);
	CU_ASSERT_EQUAL(o->group_create(st, "g1", "me", now), -EEXIST);
	CU_ASSERT_EQUAL(o->group_exists(st, "g1"), 1);
	CU_ASSERT_EQUAL(o->group_exists(st, "g2"), 0);
	CU_ASSERT_EQUAL(o->enroll_token_add(st, "t1", "g1", sha, 2, now + 60, "me", now), 0);
	CU_ASSERT_EQUAL(o->enroll_token_add(st, "t2", "g1", sha, 2, now - 1, "me", now), 0);
	enum srv_enroll_result res;
	CU_ASSERT_EQUAL(enroll_dev(st, "t1", sha, "d1", now, &res), 0);
	CU_ASSERT_EQUAL(res, SRV_ENROLL_OK);
	CU_ASSERT_EQUAL(enroll_dev(st, "t1", wrong, "d2", now, &res), 0);
	CU_ASSERT_EQUAL(res, SRV_ENROLL_INVALID);
	CU_ASSERT_EQUAL(enroll_dev(st, "nope", sha, "d2", now, &res), 0);
	CU_ASSERT_EQUAL(res, SRV_ENROLL_INVALID);
	CU_ASSERT_EQUAL(enroll_dev(st, "t2", sha, "d2", now, &res), 0);
	CU_ASSERT_EQUAL(res, SRV_ENROLL_EXPIRED);
	CU_ASSERT_EQUAL(enroll_dev(st, "t1", sha, "d2", now, &res), 0);
	CU_ASSERT_EQUAL(res, SRV_ENROLL_OK);
	CU_ASSERT_EQUAL(enroll_dev(st, "t1", sha, "d3", now, &res), 0);
	CU_ASSERT_EQUAL(res, SRV_ENROLL_EXHAUSTED);
	/* A device id collision fails as a storage error and consumes nothing. */
	CU_ASSERT_EQUAL(o->enroll_token_add(st, "t3", "g1", sha, 1, now + 60, "me", now), 0);
	CU_ASSERT(enroll_dev(st, "t3", sha, "d1", now, &res) < 0);
	CU_ASSERT_EQUAL(enroll_dev(st, "t3", sha, "d4", now, &res), 0);
	CU_ASSERT_EQUAL(res, SRV_ENROLL_OK);

	struct srv_device d;
	CU_ASSERT_EQUAL(o->device_get(st, "d1", &d), 0);
	CU_ASSERT_STRING_EQUAL(d.group, "g1");
	CU_ASSERT_FALSE(d.revoked);
	CU_ASSERT_EQUAL(o->device_get(st, "zz", &d), -ENOENT);
	CU_ASSERT_EQUAL(o->device_set_cert(st, "d1", "ff", now + 500), 0);
	CU_ASSERT_EQUAL(o->device_set_cert(st, "zz", "ff", now + 500), -ENOENT);
	CU_ASSERT_EQUAL(o->device_revoke(st, "d1", now), 0);
	CU_ASSERT_EQUAL(o->device_revoke(st, "d1", now), -EALREADY);
	CU_ASSERT_EQUAL(o->device_revoke(st, "zz", now), -ENOENT);
	CU_ASSERT_EQUAL(o->device_get(st, "d1", &d), 0);
	CU_ASSERT_TRUE(d.revoked);
	json_t *j = NULL;
	CU_ASSERT_EQUAL(o->device_list(st, "g1", &j), 0);
	CU_ASSERT_EQUAL(json_array_size(j), 3);
	json_decref(j);
	CU_ASSERT_EQUAL(o->device_list(st, NULL, &j), 0);
	CU_ASSERT_EQUAL(json_array_size(j), 3);
	json_decref(j);
	CU_ASSERT_EQUAL(o->device_show(st, "d1", &j), 0);
	CU_ASSERT(json_is_true(json_object_get(j, "revoked")));
	json_decref(j);
	CU_ASSERT_EQUAL(o->device_show(st, "zz", &j), -ENOENT);
	CU_ASSERT_EQUAL(o->group_list(st, &j), 0);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_array_get(j, 0), "devices")), 3);
	json_decref(j);

	struct srv_admin_token t;
	CU_ASSERT_EQUAL(o->admin_token_count(st), 0);
	CU_ASSERT_EQUAL(o->admin_token_add(st, "a1", "n", "admin", sha, "me", now), 0);
	CU_ASSERT_EQUAL(o->admin_token_add(st, "a1", "n", "admin", sha, "me", now), -EEXIST);
	CU_ASSERT_EQUAL(o->admin_token_add(st, "a2", "n", "root", sha, "me", now), -EINVAL);
	CU_ASSERT_EQUAL(o->admin_token_get(st, "a1", &t), 0);
	CU_ASSERT_STRING_EQUAL(t.role, "admin");
	CU_ASSERT_EQUAL(o->admin_token_get(st, "zz", &t), -ENOENT);
	CU_ASSERT_EQUAL(o->admin_token_count(st), 1);
	o->close(st);
}

static long report(struct srv_store *st, const char *dev, const uint64_t *seqs, size_t n,
                   bool heartbeat, uint64_t *ack)
{
	struct srv_device d;
	if (st->ops->device_get(st, dev, &d) < 0)
		return -1;
	Corral__Event ev[8];
	Corral__Event *evp[8];
	Corral__Heartbeat hb = CORRAL__HEARTBEAT__INIT;
	hb.policy_version = 9;
	hb.freshness = CORRAL__FRESHNESS__FRESHNESS_STALE;
	Corral__PolicyApplied pa = CORRAL__POLICY_APPLIED__INIT;
	pa.version = 9;
	for (size_t i = 0; i < n; i++) {
		corral__event__init(&ev[i]);
		ev[i].seq = seqs[i];
		ev[i].time_ms = util_now_ms();
		ev[i].kind = CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION;
		evp[i] = &ev[i];
	}
	if (heartbeat && n >= 2) {
		ev[0].kind = CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT;
		ev[0].detail_case = CORRAL__EVENT__DETAIL_HEARTBEAT;
		ev[0].heartbeat = &hb;
		ev[1].kind = CORRAL__EVENT_KIND__EVENT_KIND_POLICY_APPLIED;
		ev[1].detail_case = CORRAL__EVENT__DETAIL_POLICY_APPLIED;
		ev[1].policy_applied = &pa;
	}
	Corral__ReportBatch b = CORRAL__REPORT_BATCH__INIT;
	b.n_events = n;
	b.events = evp;
	return st->ops->report_store(st, &d, &b, util_now_ms(), ack);
}

static void test_store_reports(void)
{
	struct srv_store *st = open_store("reports.db");
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	const struct srv_store_ops *o = st->ops;
	int64_t now = util_now_sec();
	uint8_t sha[SRV_SHA256_LEN] = {1};
	enum srv_enroll_result res;
	o->group_create(st, "g", "me", now);
	o->enroll_token_add(st, "t", "g", sha, 5, now + 60, "me", now);
	enroll_dev(st, "t", sha, "a", now, &res);
	enroll_dev(st, "t", sha, "b", now, &res);
	uint64_t ack = 0;
	uint64_t s123[3] = {1, 2, 3}, s5[1] = {5}, s4[1] = {4};
	CU_ASSERT_EQUAL(report(st, "a", s123, 3, true, &ack), 0);
	CU_ASSERT_EQUAL(ack, 3);
	CU_ASSERT_EQUAL(report(st, "a", s123, 3, true, &ack), 0);
	CU_ASSERT_EQUAL(ack, 3);
	CU_ASSERT_EQUAL(report(st, "a", s5, 1, false, &ack), 0);
	CU_ASSERT_EQUAL(ack, 3);
	CU_ASSERT_EQUAL(report(st, "b", s123, 3, false, &ack), 0);
	CU_ASSERT_EQUAL(ack, 3);
	CU_ASSERT_EQUAL(report(st, "a", s4, 1, false, &ack), 0);
	CU_ASSERT_EQUAL(ack, 5);
	json_t *j = NULL;
	struct srv_event_filter f = {.device_id = "a", .kind = -1, .limit = 100};
	CU_ASSERT_EQUAL(o->events_query(st, &f, &j), 0);
	CU_ASSERT_EQUAL(json_array_size(j), 5);
	json_decref(j);
	f.device_id = NULL;
	f.kind = CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT;
	CU_ASSERT_EQUAL(o->events_query(st, &f, &j), 0);
	CU_ASSERT_EQUAL(json_array_size(j), 1);
	json_decref(j);
	f.kind = -1;
	f.since_ms = util_now_ms() + 100000;
	CU_ASSERT_EQUAL(o->events_query(st, &f, &j), 0);
	CU_ASSERT_EQUAL(json_array_size(j), 0);
	json_decref(j);
	CU_ASSERT_EQUAL(o->device_show(st, "a", &j), 0);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "policy_version")), 9);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "freshness")), "stale");
	json_decref(j);

	/* Publications: new version, promotion, duplicate, conflicting bytes. */
	o->group_create(st, "h", "me", now);
	const uint8_t e1[] = "envelope-1", e2[] = "envelope-2";
	uint64_t head = 0;
	CU_ASSERT_EQUAL(o->group_head_version(st, "g", &head), 0);
	CU_ASSERT_EQUAL(head, 0);
	CU_ASSERT_EQUAL(
	        o->publish(st, "g", 9, e1, sizeof(e1), now, now + 9, "me", util_now_ms() - 50), 0);
	CU_ASSERT_EQUAL(o->publish(st, "g", 9, e1, sizeof(e1), now, now + 9, "me", util_now_ms()),
	                -EALREADY);
	CU_ASSERT_EQUAL(o->publish(st, "h", 9, e1, sizeof(e1), now, now + 9, "me", util_now_ms()),
	                0);
	CU_ASSERT_EQUAL(o->publish(st, "h", 9, e2, sizeof(e2), now, now + 9, "me", util_now_ms()),
	                -EEXIST);
	CU_ASSERT_EQUAL(o->group_head_version(st, "g", &head), 0);
	CU_ASSERT_EQUAL(head, 9);
	CU_ASSERT_EQUAL(o->policy_history(st, "g", &j), 0);
	CU_ASSERT_EQUAL(json_array_size(j), 1);
	json_decref(j);
	CU_ASSERT_EQUAL(o->rollout_status(st, "g", &j), 0);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "head_version")), 9);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "devices_on_head")), 1);
	json_t *lat = json_object_get(j, "apply_latency_ms");
	/* The POLICY_APPLIED event was stored before this publication: latency clamps to 0. */
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(lat, "n")), 1);
	json_decref(j);

	/* Trust roots. */
	CU_ASSERT_EQUAL(o->trust_root_add(st, 1, e1, sizeof(e1), now + 99, "me", now), 0);
	CU_ASSERT_EQUAL(o->trust_root_add(st, 1, e2, sizeof(e2), now + 99, "me", now), -EEXIST);

	/* Audit: appended, listed, and append-only even to raw SQL. */
	CU_ASSERT_EQUAL(o->audit_add(st, "me", "x.do", "t", "", util_now_ms()), 0);
	CU_ASSERT_EQUAL(o->audit_list(st, 10, &j), 0);
	CU_ASSERT_EQUAL(json_array_size(j), 1);
	json_decref(j);
	o->close(st);
	_cleanup_free_ char *p = path_in("reports.db");
	sqlite3 *db = NULL;
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(p, &db), SQLITE_OK);
	CU_ASSERT_NOT_EQUAL(sqlite3_exec(db, "UPDATE audit SET actor = 'evil'", NULL, NULL, NULL),
	                    SQLITE_OK);
	CU_ASSERT_NOT_EQUAL(sqlite3_exec(db, "DELETE FROM audit", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static int count_cb(uint64_t version, const char *group, const uint8_t *blob, size_t len,
                    void *userdata)
{
	(*(int *)userdata)++;
	return 0;
}

static int stop_cb(uint64_t version, const char *group, const uint8_t *blob, size_t len,
                   void *userdata)
{
	return -ECANCELED;
}

static void test_store_loads(void)
{
	struct srv_store *st = open_store("reports.db");
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	int n = 0;
	CU_ASSERT_EQUAL(st->ops->group_heads(st, count_cb, &n), 0);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(st->ops->group_heads(st, stop_cb, NULL), -ECANCELED);
	n = 0;
	CU_ASSERT_EQUAL(st->ops->trust_roots_load(st, count_cb, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(st->ops->trust_roots_load(st, stop_cb, NULL), -ECANCELED);
	st->ops->close(st);
	/* A database from a newer server is refused (downgrade protection). */
	_cleanup_free_ char *p = path_in("future.db");
	sqlite3 *db = NULL;
	sqlite3_open(p, &db);
	sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL);
	sqlite3_close(db);
	char err[256];
	CU_ASSERT_EQUAL(srv_store_sqlite_open(p, &st, err, sizeof(err)), -EPROTO);
}

static void test_event_json(void)
{
	Corral__Event ev = CORRAL__EVENT__INIT;
	ev.seq = 3;
	ev.kind = CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION;
	Corral__Violation v = CORRAL__VIOLATION__INIT;
	v.target = (char *)"/etc/shadow";
	Corral__Heartbeat hb = CORRAL__HEARTBEAT__INIT;
	Corral__PolicyRejected pr = CORRAL__POLICY_REJECTED__INIT;
	pr.reason = (char *)"rollback";
	Corral__SessionExit se = CORRAL__SESSION_EXIT__INIT;
	Corral__AgentHealth ah = CORRAL__AGENT_HEALTH__INIT;
	Corral__PolicyApplied pa = CORRAL__POLICY_APPLIED__INIT;
	struct {
		Corral__Event__DetailCase c;
		void *p;
	} cases[] = {
	        {CORRAL__EVENT__DETAIL_VIOLATION, &v},
	        {CORRAL__EVENT__DETAIL_HEARTBEAT, &hb},
	        {CORRAL__EVENT__DETAIL_POLICY_REJECTED, &pr},
	        {CORRAL__EVENT__DETAIL_SESSION_EXIT, &se},
	        {CORRAL__EVENT__DETAIL_AGENT_HEALTH, &ah},
	        {CORRAL__EVENT__DETAIL_POLICY_APPLIED, &pa},
	        {CORRAL__EVENT__DETAIL__NOT_SET, NULL},
	};
	uint8_t buf[512];
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		ev.detail_case = cases[i].c;
		ev.violation = cases[i].p; /* the union member */
		size_t len = corral__event__pack(&ev, buf);
		json_t *j = srv_event_json(buf, len);
		CU_ASSERT_PTR_NOT_NULL_FATAL(j);
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "kind")),
		                       "EVENT_KIND_VIOLATION");
		CU_ASSERT_EQUAL(json_object_get(j, "detail") != NULL, cases[i].p != NULL);
		json_decref(j);
	}
	CU_ASSERT_PTR_NULL(srv_event_json((const uint8_t *)"\xff", 1));
}

/* ---- srv_new failure paths ------------------------------------------------------------ */

static void test_srv_new_errors(void)
{
	struct srv_config cfg;
	srv_config_defaults(&cfg);
	struct srv *s = NULL;
	bool created;
	char err[512];
	/* Data directory below a regular file. */
	_cleanup_free_ char *file = path_in("plainfile");
	util_write_file_atomic(file, "x", 1, 0644);
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s/sub", file);
	snprintf(cfg.listen_host, sizeof(cfg.listen_host), "127.0.0.1");
	CU_ASSERT(srv_new(&cfg, &s, &created, err, sizeof(err)) < 0);
	/* Not an IP address. */
	_cleanup_free_ char *dd = path_in("data-new");
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dd);
	snprintf(cfg.listen_host, sizeof(cfg.listen_host), "localhost");
	CU_ASSERT_EQUAL(srv_new(&cfg, &s, &created, err, sizeof(err)), -EINVAL);
	/* Starts on a free port, a second server on the same port cannot. */
	snprintf(cfg.listen_host, sizeof(cfg.listen_host), "127.0.0.1");
	cfg.port = 0;
	CU_ASSERT_EQUAL_FATAL(srv_new(&cfg, &s, &created, err, sizeof(err)), 0);
	CU_ASSERT_FALSE(created); /* the token was created by the -EINVAL attempt above */
	cfg.port = srv_port(s);
	CU_ASSERT(cfg.port > 0);
	struct srv *s2 = NULL;
	CU_ASSERT_EQUAL(srv_new(&cfg, &s2, &created, err, sizeof(err)), -EADDRNOTAVAIL);
	srv_shutdown(s, 100);
	srv_free(s);
	srv_free(NULL);
}

/* A device is degraded only when it enforces less than requested, never when it offers more. */
static void test_features_missing(void)
{
	char buf[256];
	Corral__KernelFeatures req = CORRAL__KERNEL_FEATURES__INIT;
	Corral__KernelFeatures enf = CORRAL__KERNEL_FEATURES__INIT;
	char *req_ctl[] = {(char *)"memory", (char *)"pids"};
	char *enf_ctl[] = {(char *)"memory:v1", (char *)"cpu:v1"};
	/* nothing requested: nothing missing, whatever is enforced */
	CU_ASSERT_EQUAL(srv_features_missing(NULL, &enf, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "");
	CU_ASSERT_EQUAL(srv_features_missing(&req, NULL, buf, sizeof(buf)), 0);
	/* more than requested is compliant (the demo host: ABI 7 where 4 was asked) */
	req.landlock_abi = 4;
	req.seccomp = true;
	enf.landlock_abi = 7;
	enf.seccomp = true;
	enf.bpf_cgroup = true;
	CU_ASSERT_EQUAL(srv_features_missing(&req, &enf, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "");
	/* each kind of shortfall is named; controllers match with or without ":v1" */
	req.landlock_abi = 7;
	enf.landlock_abi = 2;
	req.user_namespaces = true;
	req.cgroup_controllers = req_ctl;
	req.n_cgroup_controllers = 2;
	enf.cgroup_controllers = enf_ctl;
	enf.n_cgroup_controllers = 2;
	CU_ASSERT_EQUAL(srv_features_missing(&req, &enf, buf, sizeof(buf)), 3);
	CU_ASSERT_STRING_EQUAL(buf, "landlock_abi 7 (host 2), user_namespaces, cgroup:pids");
	/* nothing reported as enforced: everything requested is missing */
	CU_ASSERT_EQUAL(srv_features_missing(&req, NULL, buf, sizeof(buf)), 5);
	/* a short buffer truncates the list but not the count */
	char tiny[16];
	CU_ASSERT_EQUAL(srv_features_missing(&req, &enf, tiny, sizeof(tiny)), 3);
	CU_ASSERT(strlen(tiny) < sizeof(tiny));
}

static const struct harness_test tests[] = {
        {"features_missing", test_features_missing},
        {"listen_parse", test_listen_parse},
        {"config", test_config},
        {"tokens", test_tokens},
        {"decoders", test_decoders},
        {"ca", test_ca},
        {"store_enroll", test_store_enroll},
        {"store_reports", test_store_reports},
        {"store_loads", test_store_loads},
        {"event_json", test_event_json},
        {"srv_new_errors", test_srv_new_errors},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"server", init, cleanup, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
