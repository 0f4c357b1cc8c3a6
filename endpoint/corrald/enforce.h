/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-policy-version enforcement for `corral run` sessions: everything that is prepared once
 * per profile rather than once per session.
 *
 *  - the kernel feature probe (sbx_features_probe), done once when corrald starts (whether
 *    BPF egress loads is found out on first use: it costs ~0.2 s, too much for every start);
 *  - compiled profiles (sbx_compile_profile), cached per (policy version, profile name), so a
 *    launch does only per-session work; entries of an older version are freed once no session
 *    uses them any more;
 *  - the network layer of each profile: a profile cgroup (v2) <root>/corral/p-<profile> that
 *    every session cgroup of the profile sits below, with the BPF egress programs attached
 *    once to it (the sessions inherit them); the egress proxy for hostname rules on a loopback
 *    address (the BPF rules of that profile also allow exactly the proxy's address:port and the
 *    session gets the proxy environment); and, when BPF is unavailable, Landlock TCP port rules
 *    only if the policy allows that degradation, else the profile refuses to run (fail closed);
 *  - the violation sources that are not per session: the BPF ring buffers (mapped back to the
 *    session by cgroup id) and the proxy's refusals, written as VIOLATION/NETWORK events.
 *
 * Everything runs on corrald's event loop thread: the daemon watches cd_enforce_fd() and calls
 * cd_enforce_process() when it is readable.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <corral.pb-c.h>

struct cd_enforce;
struct cd_enforce_profile;
struct sbx_compiled;
struct sbx_features;

/* Writes one event to the outbox (the daemon's emit). Returns 0 or -errno. */
typedef int (*cd_enforce_emit_fn)(void *userdata, Corral__Event *ev);

/*
 * Test hooks (only honoured when corrald runs with test_hooks = yes; documented in
 * docs/sandbox.md): CORRAL_TEST_EGRESS_UNAVAILABLE=1 in corrald's environment makes the BPF
 * egress layer count as unavailable; CORRAL_TEST_CGROUP_PARENT=NAME puts profile cgroups under
 * /NAME instead of /corral, so concurrent test daemons do not share profile cgroups.
 */
#define CD_ENFORCE_ENV_NO_EGRESS "CORRAL_TEST_EGRESS_UNAVAILABLE"
#define CD_ENFORCE_ENV_CG_PARENT "CORRAL_TEST_CGROUP_PARENT"

/*
 * Probes the kernel and creates the manager. `emit` receives network violations. Returns 0
 * with *ret owned by the caller (cd_enforce_free), or -errno when probing is impossible.
 */
int cd_enforce_new(bool test_hooks, cd_enforce_emit_fn emit, void *userdata,
                   struct cd_enforce **ret);

/*
 * Egress proxy settings for proxies started after this call: the DNS server it resolves allowed
 * hostnames with ("IPv4[:port]", NULL = the system resolver) and a comma-separated list of
 * non-public CIDRs it may connect to (NULL = none; loopback, private and metadata ranges stay
 * refused otherwise, which is what stops DNS rebinding). Both copied. Returns 0, -ENOMEM, or
 * -E2BIG for more than CD_ENFORCE_PRIVATE_MAX ranges.
 */
#define CD_ENFORCE_PRIVATE_MAX 64
int cd_enforce_set_proxy(struct cd_enforce *e, const char *resolver, const char *allow_private);

/* Frees everything (detaches BPF programs, stops proxies). Sessions must be gone. NULL ok. */
void cd_enforce_free(struct cd_enforce *e);

/* The kernel features probed at start (borrowed). */
const struct sbx_features *cd_enforce_features(const struct cd_enforce *e);

/* An epoll fd that is readable when network events or proxy work wait. Owned by `e`. */
int cd_enforce_fd(const struct cd_enforce *e);

/* Handles whatever is ready on cd_enforce_fd() without blocking. */
void cd_enforce_process(struct cd_enforce *e);

/*
 * Compiles every profile of `bundle` ahead of the first launch (errors are left for the
 * launch to report). Call after a bundle has been applied; NULL bundle is fine.
 */
void cd_enforce_prepare(struct cd_enforce *e, const Corral__PolicyBundle *bundle);

/*
 * The prepared enforcement of profile `p` of policy `version` (compiled and its network
 * layer set up on first use). On success *ret holds a reference (cd_enforce_profile_put).
 * On failure returns -errno with a one-line reason in `err` and the failing step in `step`
 * ("profile" for compile/requirements, "network" for the network layer), e.g. -ENOTSUP when
 * the profile restricts the network, BPF egress is unavailable and degradation is not allowed.
 */
int cd_enforce_profile_get(struct cd_enforce *e, uint64_t version, const Corral__Profile *p,
                           struct cd_enforce_profile **ret, const char **ret_step, char *err,
                           size_t errlen);

/* Drops a reference taken by cd_enforce_profile_get. NULL ok. */
void cd_enforce_profile_put(struct cd_enforce *e, struct cd_enforce_profile *pr);

/* The compiled profile (valid while the reference is held). */
const struct sbx_compiled *cd_enforce_profile_compiled(const struct cd_enforce_profile *pr);

/* The cgroup parent for sbx_set_cgroup ("/corral/p-<name>", absolute in each hierarchy). */
const char *cd_enforce_profile_cgroup(const struct cd_enforce_profile *pr);

/* The network layer in force: "net:bpf", "net:landlock-ports", "net:open" (default_allow
 * without BPF) — for the session's layers. Static or borrowed string. */
const char *cd_enforce_profile_net_layer(const struct cd_enforce_profile *pr);

/* Landlock TCP connect ports when the network layer is "net:landlock-ports" (else n = 0). */
const uint16_t *cd_enforce_profile_tcp_ports(const struct cd_enforce_profile *pr, size_t *ret_n);

/* Proxy environment ("HTTP_PROXY=..." etc., NULL-terminated) when the profile has hostname
 * rules, else NULL. Borrowed. */
const char *const *cd_enforce_profile_proxy_env(const struct cd_enforce_profile *pr);

/* What a network violation is attributed to. Strings are owned by the session and must stay
 * valid until cd_enforce_session_remove. */
struct cd_enforce_session {
	uint64_t cgroup_id; /* inode of the session's v2 cgroup directory (0 = none) */
	const struct cd_enforce_profile *profile;
	const char *session_id;
	uint32_t uid;
	const char *user;
	const char *profile_name;
	uint64_t policy_version;
	struct cd_enforce_session *next; /* managed by cd_enforce */
};

/* Registers a running session so BPF and proxy events can be attributed to it. */
void cd_enforce_session_add(struct cd_enforce *e, struct cd_enforce_session *s);

/* Unregisters it (before its strings go away). Drains pending BPF events first. */
void cd_enforce_session_remove(struct cd_enforce *e, struct cd_enforce_session *s);
