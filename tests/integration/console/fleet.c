// SPDX-License-Identifier: Apache-2.0
/*
 * The console tests' simulated fleet (see fleet.h). What it creates, and what the console must
 * therefore show (the tests assert these numbers):
 *
 *   groups canary, prod, staging; bundle v1 published to all three, v2 to canary only.
 *   canary-1  v2 fresh                         -> compliant
 *   canary-2  v2 fresh, Landlock not enforced  -> degraded
 *   canary-3  v1 fresh                         -> out-of-date
 *   canary-4  v1, rejected v2 ("expired")      -> failing
 *   prod-1..4 v1 fresh                         -> compliant
 *   prod-5    v1 stale                         -> stale
 *   prod-6    enrolled, never reported         -> pending
 *   prod-7    v1 fresh, then revoked           -> revoked
 *   prod-8    v1 fresh, Landlock not enforced  -> degraded
 *
 * Every device but prod-6 reports two sessions of three violations each (filesystem, network,
 * syscall): session 0 by alice under profile "default", session 1 by bob under "build".
 */
#include "fleet.h"

#include "cleanup.h"
#include "harness.h"
#include "trust.h"
#include "util.h"

#include <corral.pb-c.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- server process -------------------------------------------------------------------------- */

int fleet_server_start(struct fleet *f, const char *dir)
{
	char log[600], bin[600], data[600], cfg[600];
	snprintf(f->dir, sizeof(f->dir), "%s", dir);
	snprintf(log, sizeof(log), "%s/server.log", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(cfg, sizeof(cfg), "%s/server.json", dir);
	snprintf(bin, sizeof(bin), "%s/bin/corral-server", harness_binary_dir());
	const char *json = "{\"report_rate\": 50, \"report_burst\": 200}";
	if (util_write_file_atomic(cfg, json, strlen(json), 0644) < 0)
		return -1;
	int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (lfd < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(lfd, 2);
		/* CORRAL_TEST_DATABASE (tests/integration/pg): the same checks on PostgreSQL. */
		const char *db = getenv("CORRAL_TEST_DATABASE");
		if (db)
			execl(bin, bin, "--data-dir", data, "--listen", "127.0.0.1:0", "--config",
			      cfg, "--database", db, (char *)NULL);
		else
			execl(bin, bin, "--data-dir", data, "--listen", "127.0.0.1:0", "--config",
			      cfg, (char *)NULL);
		_exit(127);
	}
	close(lfd);
	if (pid < 0)
		return -1;
	f->pid = pid;
	static const char tag[] = "listening on https://127.0.0.1:";
	for (int i = 0; i < 400; i++) {
		_cleanup_free_ char *text = NULL;
		size_t len;
		if (util_read_file(log, 1 << 20, &text, &len) == 0) {
			const char *p = strstr(text, tag);
			if (p) {
				f->port = (unsigned)strtoul(p + strlen(tag), NULL, 10);
				break;
			}
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			f->pid = -1;
			fprintf(stderr, "corral-server exited: %s\n", text ? text : "");
			return -1;
		}
		usleep(25000);
	}
	if (!f->port)
		return -1;
	char path[700];
	snprintf(path, sizeof(path), "%s/admin.token", data);
	_cleanup_free_ char *tok = NULL;
	size_t len;
	if (util_read_file(path, 256, &tok, &len) < 0)
		return -1;
	tok[strcspn(tok, "\n")] = '\0';
	snprintf(f->admin, sizeof(f->admin), "%s", tok);
	return 0;
}

int fleet_server_stop(struct fleet *f)
{
	if (f->pid <= 0)
		return -1;
	kill(f->pid, SIGTERM);
	int st = 0;
	for (int i = 0; i < 400; i++) {
		if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
			f->pid = -1;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(25000);
	}
	kill(f->pid, SIGKILL);
	waitpid(f->pid, &st, 0);
	f->pid = -1;
	return -1;
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

int fleet_http(const struct fleet *f, const char *method, const char *path, const void *body,
               size_t len, const char *ctype, const struct fleet_device *dev, const char *bearer,
               struct th_response *out)
{
	char ca[600];
	snprintf(ca, sizeof(ca), "%s/data/ca.pem", f->dir);
	struct th_request rq = {.port = f->port,
	                        .ca_file = ca,
	                        .method = method,
	                        .path = path,
	                        .body = body,
	                        .len = len,
	                        .ctype = ctype,
	                        .bearer = bearer,
	                        .cert = dev ? dev->crt : NULL,
	                        .key = dev ? dev->key : NULL};
	return th_https(&rq, out);
}

long fleet_api(const struct fleet *f, const char *method, const char *path, const char *json,
               const char *bearer, json_t **ret)
{
	struct th_response r;
	char full[1024];
	snprintf(full, sizeof(full), "/api/v1/%s", path);
	if (fleet_http(f, method, full, json, json ? strlen(json) : 0,
	               json ? "application/json" : NULL, NULL, bearer, &r) < 0)
		return -1;
	if (ret)
		*ret = r.body ? json_loads(r.body, 0, NULL) : NULL;
	long s = r.status;
	th_response_free(&r);
	return s;
}

static long upload(const struct fleet *f, const char *path, const uint8_t *env, size_t len)
{
	struct th_response r;
	char full[512];
	snprintf(full, sizeof(full), "/api/v1/%s", path);
	if (fleet_http(f, "POST", full, env, len, "application/octet-stream", NULL, f->admin, &r) <
	    0)
		return -1;
	long s = r.status;
	if (s != 200)
		fprintf(stderr, "upload %s: %ld %s\n", path, s, r.body ? r.body : "");
	th_response_free(&r);
	return s;
}

/* ---- signed material ------------------------------------------------------------------------ */

static const char *const SOURCE_V1 =
        "{\"name\": \"fleet\", \"default_profile\": \"default\", \"profiles\": ["
        "{\"name\": \"default\", \"mode\": \"enforce\", \"filesystem\": {\"read\": "
        "[\"${HOME}\", \"/usr\"], \"deny\": [\"${HOME}/.ssh\", \"${HOME}/.aws\"]}, "
        "\"network\": {\"hosts\": [\"api.github.com:443\"]}}, "
        "{\"name\": \"build\", \"mode\": \"audit\", \"filesystem\": {\"read\": [\"/usr\"], "
        "\"write\": [\"${WORKDIR}\"]}}]}";
static const char *const SOURCE_V2 =
        "{\"name\": \"fleet\", \"default_profile\": \"default\", \"profiles\": ["
        "{\"name\": \"default\", \"mode\": \"enforce\", \"filesystem\": {\"read\": "
        "[\"${HOME}\", \"/usr\"], \"deny\": [\"${HOME}/.ssh\", \"${HOME}/.aws\", "
        "\"${HOME}/.gnupg\"]}, \"network\": {\"hosts\": [\"api.github.com:443\", "
        "\"pypi.org:443\"]}}, "
        "{\"name\": \"ci\", \"mode\": \"enforce\", \"filesystem\": {\"read\": [\"/usr\"], "
        "\"write\": [\"${WORKDIR}\", \"${TMP}\"]}}]}";

static int make_bundle(uint64_t version, const char *source, struct trust_key *const *keys,
                       uint8_t **ret, size_t *ret_len)
{
	Corral__Profile prof = CORRAL__PROFILE__INIT;
	prof.name = (char *)"default";
	Corral__Profile *profs[1] = {&prof};
	Corral__Policy pol = CORRAL__POLICY__INIT;
	pol.name = (char *)"fleet";
	pol.default_profile = (char *)"default";
	pol.n_profiles = 1;
	pol.profiles = profs;
	static const char *const groups[] = {"canary", "prod", "staging"};
	Corral__Target tg[3];
	Corral__Target *tgp[3];
	for (size_t i = 0; i < 3; i++) {
		corral__target__init(&tg[i]);
		tg[i].kind_case = CORRAL__TARGET__KIND_GROUP;
		tg[i].group = (char *)groups[i];
		tgp[i] = &tg[i];
	}
	Corral__PolicyBundle b = CORRAL__POLICY_BUNDLE__INIT;
	b.version = version;
	b.issued_at = util_now_sec() - 60;
	b.expires_at = util_now_sec() + 86400 * 7;
	b.n_targets = 3;
	b.targets = tgp;
	b.policy = &pol;
	b.source_json = (char *)source;
	return trust_bundle_sign(&b, keys, 2, ret, ret_len);
}

static int publish_material(struct fleet *f)
{
	struct trust_key *root = NULL, *s1 = NULL, *s2 = NULL;
	int r = -1;
	_cleanup_free_ uint8_t *rootenv = NULL, *b1 = NULL, *b2 = NULL;
	size_t rlen = 0, l1 = 0, l2 = 0;
	if (trust_key_generate(&root) < 0 || trust_key_generate(&s1) < 0 ||
	    trust_key_generate(&s2) < 0)
		goto out;
	struct trust_key *signers[2] = {s1, s2};
	struct trust_root_spec spec = {
	        .version = 1,
	        .issued_at = util_now_sec() - 60,
	        .expires_at = util_now_sec() + 86400 * 30,
	        .root_keys = &root,
	        .n_root_keys = 1,
	        .root_threshold = 1,
	        .signer_keys = signers,
	        .n_signer_keys = 2,
	        .signer_threshold = 2,
	};
	if (trust_root_sign(&spec, &root, 1, &rootenv, &rlen) < 0 ||
	    make_bundle(1, SOURCE_V1, signers, &b1, &l1) < 0 ||
	    make_bundle(2, SOURCE_V2, signers, &b2, &l2) < 0)
		goto out;
	if (upload(f, "trust", rootenv, rlen) != 200 ||
	    upload(f, "groups/canary/policy", b1, l1) != 200 ||
	    upload(f, "groups/prod/policy", b1, l1) != 200 ||
	    upload(f, "groups/staging/policy", b1, l1) != 200 ||
	    upload(f, "groups/canary/policy", b2, l2) != 200)
		goto out;
	r = 0;
out:
	trust_key_free(root);
	trust_key_free(s1);
	trust_key_free(s2);
	return r;
}

/* ---- devices -------------------------------------------------------------------------------- */

static int write_key(const char *path, EVP_PKEY *k)
{
	FILE *fp = fopen(path, "we");
	if (!fp)
		return -errno;
	int ok = PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	chmod(path, 0600);
	return ok == 1 ? 0 : -EIO;
}

static int write_cert(const char *path, const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	if (!x)
		return -EBADMSG;
	FILE *fp = fopen(path, "we");
	int ok = fp ? PEM_write_X509(fp, x) : 0;
	if (fp)
		fclose(fp);
	X509_free(x);
	return ok == 1 ? 0 : -EIO;
}

static int enroll(struct fleet *f, struct fleet_device *d, const char *token)
{
	EVP_PKEY *k = NULL;
	int r = -1;
	uint8_t *der = NULL, *body = NULL;
	size_t n = 0;
	if (th_make_csr(d->name, &k, &der, &n) < 0)
		goto out;
	Corral__EnrollRequest rq = CORRAL__ENROLL_REQUEST__INIT;
	rq.token = (char *)token;
	rq.csr_der = (ProtobufCBinaryData){n, der};
	rq.hostname = d->name;
	rq.agent_version = (char *)"0.1.0";
	size_t len = corral__enroll_request__get_packed_size(&rq);
	body = malloc(len + 1);
	if (!body)
		goto out;
	corral__enroll_request__pack(&rq, body);
	struct th_response res;
	if (fleet_http(f, "POST", "/v1/enroll", body, len, "application/x-protobuf", NULL, NULL,
	               &res) < 0)
		goto out;
	if (res.status == 200) {
		Corral__EnrollResponse *er =
		        corral__enroll_response__unpack(NULL, res.len, (uint8_t *)res.body);
		if (er) {
			snprintf(d->id, sizeof(d->id), "%s", er->device_id);
			snprintf(d->crt, sizeof(d->crt), "%s/%s.crt", f->dir, d->name);
			snprintf(d->key, sizeof(d->key), "%s/%s.key", f->dir, d->name);
			if (write_key(d->key, k) == 0 &&
			    write_cert(d->crt, er->certificate_der.data, er->certificate_der.len) ==
			            0)
				r = 0;
			corral__enroll_response__free_unpacked(er, NULL);
		}
	} else
		fprintf(stderr, "enroll %s: %ld %s\n", d->name, res.status,
		        res.body ? res.body : "");
	th_response_free(&res);
out:
	free(der);
	free(body);
	EVP_PKEY_free(k);
	return r;
}

/* What each device reports (see the table at the top of this file). */
struct plan {
	uint64_t policy; /* 0 = no heartbeat */
	Corral__Freshness freshness;
	bool degraded;
	uint64_t rejected; /* a PolicyRejected for this version */
	bool violations;
};

static const struct plan PLANS[FLEET_DEVICES] = {
        {2, CORRAL__FRESHNESS__FRESHNESS_FRESH, false, 0, true},
        {2, CORRAL__FRESHNESS__FRESHNESS_FRESH, true, 0, true},
        {1, CORRAL__FRESHNESS__FRESHNESS_FRESH, false, 0, true},
        {1, CORRAL__FRESHNESS__FRESHNESS_FRESH, false, 2, true},
        {1, CORRAL__FRESHNESS__FRESHNESS_FRESH, false, 0, true},
        {1, CORRAL__FRESHNESS__FRESHNESS_FRESH, false, 0, true},
        {1, CORRAL__FRESHNESS__FRESHNESS_FRESH, false, 0, true},
        {1, CORRAL__FRESHNESS__FRESHNESS_FRESH, false, 0, true},
        {1, CORRAL__FRESHNESS__FRESHNESS_STALE, false, 0, true},
        {0, CORRAL__FRESHNESS__FRESHNESS_UNKNOWN, false, 0, false},
        {1, CORRAL__FRESHNESS__FRESHNESS_FRESH, false, 0, true},
        {1, CORRAL__FRESHNESS__FRESHNESS_FRESH, true, 0, true},
};

#define EVENTS_MAX 32

struct batch {
	Corral__Event ev[EVENTS_MAX];
	Corral__Event *evp[EVENTS_MAX];
	Corral__Violation viol[EVENTS_MAX];
	Corral__SessionStart start[2];
	Corral__SessionExit exit[2];
	Corral__Heartbeat hb;
	Corral__KernelFeatures req, enf;
	Corral__PolicyApplied applied;
	Corral__PolicyRejected rejected;
	char sessions[2][48];
	char *argv[2][3];
	size_t n;
};

static Corral__Event *next_event(struct batch *b, Corral__EventKind kind, int64_t t)
{
	Corral__Event *e = &b->ev[b->n];
	corral__event__init(e);
	e->seq = b->n + 1;
	e->time_ms = t;
	e->kind = kind;
	b->evp[b->n] = e;
	b->n++;
	return e;
}

static int report_device(struct fleet *f, size_t idx)
{
	const struct plan *p = &PLANS[idx];
	struct fleet_device *d = &f->dev[idx];
	struct batch *b = calloc(1, sizeof(*b));
	if (!b)
		return -1;
	int64_t now = util_now_ms();
	/* Spread over the last hours so the time chart has several bars. */
	int64_t t0 = now - (int64_t)(idx % 6 + 1) * 3600000 - 60000;
	static const char *const users[2] = {"alice", "bob"};
	static const char *const profiles[2] = {"default", "build"};
	static const Corral__ViolationKind kinds[3] = {
	        CORRAL__VIOLATION_KIND__VIOLATION_KIND_FILESYSTEM,
	        CORRAL__VIOLATION_KIND__VIOLATION_KIND_NETWORK,
	        CORRAL__VIOLATION_KIND__VIOLATION_KIND_SYSCALL};
	static const char *const targets[3] = {"/home/user/.ssh/id_ed25519", "203.0.113.7:443",
	                                       "ptrace"};
	if (p->policy) {
		Corral__Event *e = next_event(b, CORRAL__EVENT_KIND__EVENT_KIND_POLICY_APPLIED, t0);
		corral__policy_applied__init(&b->applied);
		b->applied.version = p->policy;
		e->policy_version = p->policy;
		e->detail_case = CORRAL__EVENT__DETAIL_POLICY_APPLIED;
		e->policy_applied = &b->applied;
	}
	if (p->rejected) {
		Corral__Event *e =
		        next_event(b, CORRAL__EVENT_KIND__EVENT_KIND_POLICY_REJECTED, t0 + 1000);
		corral__policy_rejected__init(&b->rejected);
		b->rejected.version = p->rejected;
		b->rejected.reason = (char *)"expired";
		b->rejected.detail = (char *)"bundle expired before it was applied";
		e->policy_version = p->policy;
		e->detail_case = CORRAL__EVENT__DETAIL_POLICY_REJECTED;
		e->policy_rejected = &b->rejected;
	}
	for (int s = 0; p->violations && s < 2; s++) {
		snprintf(b->sessions[s], sizeof(b->sessions[s]), "s-%s-%d", d->name, s);
		int64_t ts = t0 + 60000 + s * 600000;
		Corral__Event *e = next_event(b, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START, ts);
		corral__session_start__init(&b->start[s]);
		b->argv[s][0] = (char *)"claude";
		b->argv[s][1] = (char *)(s ? "--build" : "--chat");
		b->start[s].n_argv = 2;
		b->start[s].argv = b->argv[s];
		b->start[s].cwd = (char *)"/home/user/src";
		e->detail_case = CORRAL__EVENT__DETAIL_SESSION_START;
		e->session_start = &b->start[s];
		for (int k = 0; k < 3; k++) {
			Corral__Event *v = next_event(b, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION,
			                              ts + 1000 * (k + 1));
			Corral__Violation *vi = &b->viol[b->n];
			corral__violation__init(vi);
			vi->kind = kinds[k];
			vi->pid = 4000 + (uint32_t)k;
			vi->comm = (char *)"agent";
			/* The last device's network target looks like a spreadsheet formula: CSV
			 * exports must defuse it. */
			vi->target = (char *)(idx == FLEET_DEVICES - 1 && k == 1
			                              ? "=HYPERLINK(\"http://x\")"
			                              : targets[k]);
			vi->detail = (char *)"op=open";
			vi->hostname = d->name;
			v->detail_case = CORRAL__EVENT__DETAIL_VIOLATION;
			v->violation = vi;
			f->violations_total++;
		}
		e = next_event(b, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_EXIT, ts + 5000);
		corral__session_exit__init(&b->exit[s]);
		b->exit[s].exit_status = s;
		b->exit[s].duration_ms = 5000;
		e->detail_case = CORRAL__EVENT__DETAIL_SESSION_EXIT;
		e->session_exit = &b->exit[s];
	}
	/* Session fields on every event of a session. */
	for (size_t i = 0; i < b->n; i++) {
		Corral__Event *e = &b->ev[i];
		if (e->kind < CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION ||
		    e->kind > CORRAL__EVENT_KIND__EVENT_KIND_SESSION_EXIT)
			continue;
		int s = e->time_ms >= t0 + 60000 + 600000 ? 1 : 0;
		e->session_id = b->sessions[s];
		e->user = (char *)users[s];
		e->uid = 1000 + (uint32_t)s;
		e->profile = (char *)profiles[s];
		e->policy_version = p->policy;
	}
	if (p->policy) {
		Corral__Event *e =
		        next_event(b, CORRAL__EVENT_KIND__EVENT_KIND_HEARTBEAT, now - 30000);
		corral__heartbeat__init(&b->hb);
		corral__kernel_features__init(&b->req);
		corral__kernel_features__init(&b->enf);
		b->req.landlock_abi = 4;
		b->req.seccomp = true;
		b->enf.landlock_abi = p->degraded ? 0 : 4;
		b->enf.seccomp = true;
		b->hb.policy_version = p->policy;
		b->hb.freshness = p->freshness;
		b->hb.trust_root_version = 1;
		b->hb.requested = &b->req;
		b->hb.enforced = &b->enf;
		b->hb.agent_version = (char *)"0.1.0";
		b->hb.kernel_release = (char *)"6.18.0-corral";
		e->policy_version = p->policy;
		e->detail_case = CORRAL__EVENT__DETAIL_HEARTBEAT;
		e->heartbeat = &b->hb;
	}
	int r = 0;
	if (b->n) {
		Corral__ReportBatch rb = CORRAL__REPORT_BATCH__INIT;
		rb.n_events = b->n;
		rb.events = b->evp;
		size_t len = corral__report_batch__get_packed_size(&rb);
		uint8_t *buf = malloc(len + 1);
		struct th_response res;
		r = -1;
		if (buf) {
			corral__report_batch__pack(&rb, buf);
			if (fleet_http(f, "POST", "/v1/report", buf, len, "application/x-protobuf",
			               d, NULL, &res) == 0) {
				r = res.status == 200 ? 0 : -1;
				if (r < 0)
					fprintf(stderr, "report %s: %ld %s\n", d->name, res.status,
					        res.body ? res.body : "");
				th_response_free(&res);
			}
			free(buf);
		}
	}
	free(b);
	return r;
}

static char *enroll_token(struct fleet *f, const char *group, int uses)
{
	char body[256];
	snprintf(body, sizeof(body), "{\"group\":\"%s\",\"uses\":%d,\"expires_at\":%lld}", group,
	         uses, (long long)util_now_sec() + 86400);
	json_t *j = NULL;
	long s = fleet_api(f, "POST", "enroll-tokens", body, f->admin, &j);
	const char *t = json_string_value(json_object_get(j, "token"));
	char *out = s == 201 && t ? strdup(t) : NULL;
	json_decref(j);
	return out;
}

int fleet_seed(struct fleet *f)
{
	static const char *const groups[] = {"canary", "prod", "staging"};
	for (size_t i = 0; i < 3; i++) {
		char body[64];
		snprintf(body, sizeof(body), "{\"name\":\"%s\"}", groups[i]);
		if (fleet_api(f, "POST", "groups", body, f->admin, NULL) != 201)
			return -1;
	}
	json_t *j = NULL;
	if (fleet_api(f, "POST", "tokens", "{\"role\":\"viewer\",\"name\":\"auditor\"}", f->admin,
	              &j) != 201) {
		json_decref(j);
		return -1;
	}
	snprintf(f->viewer, sizeof(f->viewer), "%s",
	         json_string_value(json_object_get(j, "token")) ?: "");
	json_decref(j);
	if (publish_material(f) < 0)
		return -1;
	_cleanup_free_ char *tc = enroll_token(f, "canary", 4);
	_cleanup_free_ char *tp = enroll_token(f, "prod", 8);
	if (!tc || !tp)
		return -1;
	for (size_t i = 0; i < FLEET_DEVICES; i++) {
		struct fleet_device *d = &f->dev[i];
		bool canary = i < 4;
		const char *group = canary ? "canary" : "prod";
		snprintf(d->group, sizeof(d->group), "%s", group);
		snprintf(d->name, sizeof(d->name), "%s-%u", group,
		         (unsigned)(canary ? i + 1 : i - 3));
		if (enroll(f, d, canary ? tc : tp) < 0 || report_device(f, i) < 0)
			return -1;
	}
	/* prod-7 is revoked by an admin. */
	char path[128];
	snprintf(path, sizeof(path), "devices/%s/revoke", f->dev[10].id);
	if (fleet_api(f, "POST", path, "{}", f->admin, NULL) != 200)
		return -1;
	return 0;
}
