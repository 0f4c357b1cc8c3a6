// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of corrald's session glue without starting sessions: the enforcement manager's
 * decisions (compile refusals, network layer choice and fail-closed refusal when BPF egress is
 * unavailable — forced with the test hook so the result does not depend on the host —, the
 * Landlock port fallback, the proxy environment, the per-version cache) and the refusals
 * cd_session_start answers before anything is spawned (no policy, profile selection,
 * malformed request, no enforcement layer).
 */
#include "cleanup.h"
#include "enforce.h"
#include "harness.h"
#include "ipc.h"
#include "sbx.h"
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct cd_enforce *g_enf;
static unsigned g_emitted;

static int count_emit(void *userdata, Corral__Event *ev)
{
	(void)userdata;
	(void)ev;
	g_emitted++;
	return 0;
}

static int suite_init(void)
{
	char cg[64];
	snprintf(cg, sizeof(cg), "corral-unit-%d", (int)getpid());
	setenv(CD_ENFORCE_ENV_NO_EGRESS, "1", 1);
	setenv(CD_ENFORCE_ENV_CG_PARENT, cg, 1);
	return cd_enforce_new(true, count_emit, NULL, &g_enf) < 0 ? -1 : 0;
}

static int suite_cleanup(void)
{
	cd_enforce_free(g_enf);
	return 0;
}

/* A profile with a filesystem every host can satisfy and the given network rules. */
struct prof {
	Corral__Profile p;
	Corral__FilesystemRules fs;
	Corral__NetworkRules net;
	Corral__NetworkRule rule[2];
	Corral__NetworkRule *rules[2];
	Corral__HostRule host;
	Corral__HostRule *hosts[1];
	Corral__Degradation deg;
	Corral__Requirements req;
	char *read[1];
};

static void prof_init(struct prof *x, const char *name)
{
	memset(x, 0, sizeof(*x));
	x->p = (Corral__Profile)CORRAL__PROFILE__INIT;
	x->fs = (Corral__FilesystemRules)CORRAL__FILESYSTEM_RULES__INIT;
	x->net = (Corral__NetworkRules)CORRAL__NETWORK_RULES__INIT;
	x->deg = (Corral__Degradation)CORRAL__DEGRADATION__INIT;
	x->req = (Corral__Requirements)CORRAL__REQUIREMENTS__INIT;
	x->read[0] = (char *)"/usr";
	x->fs.read = x->read;
	x->fs.n_read = 1;
	x->p.name = (char *)name;
	x->p.filesystem = &x->fs;
	x->p.network = &x->net;
	for (int i = 0; i < 2; i++) {
		x->rule[i] = (Corral__NetworkRule)CORRAL__NETWORK_RULE__INIT;
		x->rules[i] = &x->rule[i];
	}
	x->host = (Corral__HostRule)CORRAL__HOST_RULE__INIT;
	x->hosts[0] = &x->host;
}

static int get(struct prof *x, uint64_t version, struct cd_enforce_profile **ret, const char **step,
               char *err)
{
	*step = NULL;
	return cd_enforce_profile_get(g_enf, version, &x->p, ret, step, err, 256);
}

static void test_restricted_without_bpf_refuses(void)
{
	struct prof x;
	prof_init(&x, "strict");
	struct cd_enforce_profile *pr = NULL;
	const char *step;
	char err[256];
	CU_ASSERT_EQUAL(get(&x, 1, &pr, &step, err), -ENOTSUP);
	CU_ASSERT_STRING_EQUAL(step, "network");
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "BPF egress filtering is unavailable"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, CD_ENFORCE_ENV_NO_EGRESS));

	/* requires.bpf_network refuses even when degradation is allowed */
	x.deg.network_to_landlock_ports = true;
	x.p.degrade = &x.deg;
	x.req.bpf_network = true;
	x.p.requires = &x.req;
	CU_ASSERT_EQUAL(get(&x, 1, &pr, &step, err), -ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "requires BPF egress filtering"));
}

static void test_landlock_ports_fallback(void)
{
	struct prof x;
	prof_init(&x, "ports");
	x.deg.network_to_landlock_ports = true;
	x.p.degrade = &x.deg;
	x.rule[0].cidr = (char *)"192.0.2.0/24";
	x.rule[0].port_min = 80;
	x.rule[0].port_max = 81;
	x.rule[1].cidr = (char *)"192.0.2.53/32";
	x.rule[1].port_min = 53;
	x.rule[1].protocol = CORRAL__PROTOCOL__PROTOCOL_UDP; /* not a TCP port: skipped */
	x.net.allow = x.rules;
	x.net.n_allow = 2;
	struct cd_enforce_profile *pr = NULL;
	const char *step;
	char err[256];
	int r = get(&x, 1, &pr, &step, err);
	if (cd_enforce_features(g_enf)->landlock_abi < 4) {
		CU_ASSERT_EQUAL(r, -ENOTSUP);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "has no TCP rules"));
		return;
	}
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_STRING_EQUAL(cd_enforce_profile_net_layer(pr), "net:landlock-ports");
	size_t n = 0;
	const uint16_t *ports = cd_enforce_profile_tcp_ports(pr, &n);
	CU_ASSERT_EQUAL(n, 2);
	if (n == 2)
		CU_ASSERT(ports[0] == 80 && ports[1] == 81);
	CU_ASSERT_PTR_NULL(cd_enforce_profile_proxy_env(pr));
	CU_ASSERT_PTR_NOT_NULL(cd_enforce_profile_compiled(pr));
	CU_ASSERT(strncmp(cd_enforce_profile_cgroup(pr), "/corral-unit-", 13) == 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(cd_enforce_profile_cgroup(pr), "/p-ports"));

	/* cached: the same entry for the same version and name */
	struct cd_enforce_profile *again = NULL;
	CU_ASSERT_EQUAL(get(&x, 1, &again, &step, err), 0);
	CU_ASSERT_PTR_EQUAL(again, pr);
	cd_enforce_profile_put(g_enf, again);
	cd_enforce_profile_put(g_enf, pr);

	/* a range wider than Landlock rules can list refuses */
	x.rule[0].port_min = 1;
	x.rule[0].port_max = 1000;
	CU_ASSERT_EQUAL(get(&x, 2, &pr, &step, err), -ENOTSUP);
	CU_ASSERT_STRING_EQUAL(step, "network");
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "port range"));
}

static void test_proxy_env_and_open(void)
{
	struct prof x;
	prof_init(&x, "web");
	x.deg.network_to_landlock_ports = true;
	x.p.degrade = &x.deg;
	x.host.host = (char *)"allowed.test";
	x.host.port = 443;
	x.net.hosts = x.hosts;
	x.net.n_hosts = 1;
	struct cd_enforce_profile *pr = NULL;
	const char *step;
	char err[256];
	int r = get(&x, 3, &pr, &step, err);
	if (cd_enforce_features(g_enf)->landlock_abi >= 4) {
		CU_ASSERT_EQUAL_FATAL(r, 0);
		const char *const *env = cd_enforce_profile_proxy_env(pr);
		CU_ASSERT_PTR_NOT_NULL_FATAL(env);
		bool https = false;
		for (size_t i = 0; env[i]; i++)
			https |= strncmp(env[i], "HTTPS_PROXY=http://127.0.0.1:", 29) == 0;
		CU_ASSERT_TRUE(https);
		/* the proxy's port is the one Landlock lets the session connect to */
		size_t n = 0;
		CU_ASSERT_PTR_NOT_NULL(cd_enforce_profile_tcp_ports(pr, &n));
		CU_ASSERT_EQUAL(n, 1);
		cd_enforce_profile_put(g_enf, pr);
	}
	cd_enforce_process(g_enf); /* nothing ready: returns at once */

	struct prof o;
	prof_init(&o, "open");
	o.net.default_allow = true;
	CU_ASSERT_EQUAL_FATAL(get(&o, 3, &pr, &step, err), 0);
	CU_ASSERT_STRING_EQUAL(cd_enforce_profile_net_layer(pr), "net:open");
	cd_enforce_profile_put(g_enf, pr);
}

static void test_proxy_settings(void)
{
	/* Accepted: a resolver and two ranges; NULLs reset to the defaults. */
	CU_ASSERT_EQUAL(cd_enforce_set_proxy(g_enf, "192.0.2.53", "10.0.0.0/8,2001:db8::/32"), 0);
	CU_ASSERT_EQUAL(cd_enforce_set_proxy(g_enf, NULL, NULL), 0);
	/* More ranges than the proxy takes is refused, and leaves no settings behind. */
	char many[CD_ENFORCE_PRIVATE_MAX * 16 + 32] = "";
	size_t off = 0;
	for (int i = 0; i <= CD_ENFORCE_PRIVATE_MAX; i++)
		off += (size_t)snprintf(many + off, sizeof(many) - off, "%s10.%d.0.0/16",
		                        i ? "," : "", i);
	CU_ASSERT_EQUAL(cd_enforce_set_proxy(g_enf, "192.0.2.53", many), -E2BIG);
	CU_ASSERT_EQUAL(cd_enforce_set_proxy(g_enf, NULL, NULL), 0);
}

static void test_compile_refusals(void)
{
	struct prof x;
	prof_init(&x, "future");
	x.net.default_allow = true;
	x.req.landlock_abi = 99;
	x.p.requires = &x.req;
	struct cd_enforce_profile *pr = NULL;
	const char *step;
	char err[256];
	CU_ASSERT_EQUAL(get(&x, 4, &pr, &step, err), -ENOTSUP);
	CU_ASSERT_STRING_EQUAL(step, "profile");

	x.p.name = NULL;
	CU_ASSERT_EQUAL(get(&x, 4, &pr, &step, err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(step, "profile");
	CU_ASSERT_PTR_NULL(pr);
}

/* cd_session_start's answers before spawning: read the RunFailed from the other end. */
static Corral__RunFailed *start_failed(const struct cd_session_env *env,
                                       const Corral__RunRequest *req, size_t nfds,
                                       Corral__IpcResponse **ret_resp)
{
	int sp[2];
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == 0);
	int fds[3];
	for (size_t i = 0; i < nfds; i++)
		fds[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
	struct cd_session *s = NULL;
	int r = cd_session_start(env, sp[0], getuid(), getpid(), req, fds, nfds, &s);
	CU_ASSERT_EQUAL(r, 1);
	CU_ASSERT_PTR_NULL(s);
	_cleanup_free_ uint8_t *buf = NULL;
	ssize_t n = cd_ipc_recv(sp[1], CD_IPC_FRAME_MAX, &buf, NULL, 0, NULL);
	close(sp[0]);
	close(sp[1]);
	*ret_resp = n > 0 ? corral__ipc_response__unpack(NULL, (size_t)n, buf) : NULL;
	if (!*ret_resp || (*ret_resp)->body_case != CORRAL__IPC_RESPONSE__BODY_RUN_FAILED)
		return NULL;
	return (*ret_resp)->run_failed;
}

static void test_session_refusals(void)
{
	char *argv[] = {(char *)"/bin/true"};
	Corral__RunRequest req = CORRAL__RUN_REQUEST__INIT;
	req.argv = argv;
	req.n_argv = 1;
	req.cwd = (char *)"/";
	struct cd_session_env env = {.emit = count_emit, .enforce = g_enf};
	Corral__IpcResponse *resp = NULL;

	/* no policy in force */
	Corral__RunFailed *f = start_failed(&env, &req, 3, &resp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_STRING_EQUAL(f->step, "policy");
	CU_ASSERT_EQUAL(f->err, ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(f->message, "refuses to start an unconfined agent"));
	corral__ipc_response__free_unpacked(resp, NULL);

	struct prof a, b;
	prof_init(&a, "default");
	prof_init(&b, "hidden");
	Corral__Profile *profs[2] = {&a.p, &b.p};
	Corral__Policy pol = CORRAL__POLICY__INIT;
	pol.default_profile = (char *)"default";
	pol.profiles = profs;
	pol.n_profiles = 2;
	Corral__PolicyBundle bundle = CORRAL__POLICY_BUNDLE__INIT;
	bundle.version = 9;
	bundle.policy = &pol;
	env.bundle = &bundle;

	req.profile = (char *)"hidden";
	f = start_failed(&env, &req, 3, &resp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_STRING_EQUAL(f->step, "select");
	CU_ASSERT_EQUAL(f->err, EPERM);
	CU_ASSERT_PTR_NOT_NULL(strstr(f->message, "\"hidden\" is not selectable"));
	corral__ipc_response__free_unpacked(resp, NULL);

	/* selectable but absent from the policy */
	char *sel[] = {(char *)"ghost"};
	pol.user_selectable = sel;
	pol.n_user_selectable = 1;
	req.profile = (char *)"ghost";
	f = start_failed(&env, &req, 3, &resp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_STRING_EQUAL(f->step, "select");
	CU_ASSERT_EQUAL(f->err, ENOENT);
	corral__ipc_response__free_unpacked(resp, NULL);

	/* malformed: no descriptors */
	req.profile = (char *)"";
	f = start_failed(&env, &req, 0, &resp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_STRING_EQUAL(f->step, "request");
	CU_ASSERT_EQUAL(f->err, EINVAL);
	corral__ipc_response__free_unpacked(resp, NULL);

	/* no enforcement layer: refused, never unconfined */
	env.enforce = NULL;
	f = start_failed(&env, &req, 3, &resp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_STRING_EQUAL(f->step, "prepare");
	CU_ASSERT_EQUAL(f->err, ENOSYS);
	corral__ipc_response__free_unpacked(resp, NULL);

	/* default profile whose network layer cannot be built: the network step */
	env.enforce = g_enf;
	f = start_failed(&env, &req, 3, &resp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_STRING_EQUAL(f->step, "network");
	CU_ASSERT_EQUAL(f->err, ENOTSUP);
	corral__ipc_response__free_unpacked(resp, NULL);
	CU_ASSERT_EQUAL(g_emitted, 0); /* nothing started, nothing reported */
}

static const struct harness_test tests[] = {
        {"restricted_without_bpf_refuses", test_restricted_without_bpf_refuses},
        {"landlock_ports_fallback", test_landlock_ports_fallback},
        {"proxy_env_and_open", test_proxy_env_and_open},
        {"proxy_settings", test_proxy_settings},
        {"compile_refusals", test_compile_refusals},
        {"session_refusals", test_session_refusals},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"session_unit", suite_init, suite_cleanup, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
