/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corral's sandbox engine: a minijail-like API that runs one command under a compiled profile
 * (Landlock, seccomp, cgroups, namespaces, credentials). Usable from C without corrald.
 *
 * Life cycle:
 *   sbx_features_probe(&f);                              once per process (or per policy change)
 *   sbx_compile_profile(profile, &f, &compiled, ...);    once per profile + policy version
 *   s = sbx_new(); sbx_set_*(s, ...);                    per session: setters only record
 *   sbx_spawn(s, &child, &err);                          applies everything in a fixed order
 *   poll(sbx_child_notify_fd(child)) -> sbx_child_notify_handle(child, cb, data)
 *   sbx_child_wait(child, &result); sbx_child_free(child); sbx_free(s);
 *
 * Order in the child (see sbx.c for why each step sits where it does): cgroup (clone3 with
 * CLONE_INTO_CGROUP, v1 cgroup.procs written before the child is released) -> namespaces
 * (tier `namespace`) -> mounts -> new session -> drop groups/gid/uid -> drop capabilities and
 * the bounding set -> no_new_privs -> Landlock -> seccomp (last) -> close all other fds -> exec.
 * A failure at any step is reported to the parent over a CLOEXEC pipe and returned by
 * sbx_spawn() in struct sbx_error; nothing ever fails open silently.
 *
 * All functions return >= 0 on success or -errno. Output parameters are set only on success.
 * Nothing here logs or exits. Objects are not thread-safe; distinct objects may be used from
 * distinct threads. A struct sbx_compiled is immutable after compilation and may be shared by
 * any number of concurrent sessions.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <corral.pb-c.h>

struct sbx;
struct sbx_child;
struct sbx_compiled;

/* Maximum lengths of things the engine copies into fixed buffers. */
#define SBX_PATH_MAX   4096
#define SBX_GROUPS_MAX 64
#define SBX_ARGS_MAX   4096 /* argv and envp entries each */

/* cgroup controller bits (struct sbx_features, requirements, layers). */
#define SBX_CG_MEMORY (1u << 0)
#define SBX_CG_PIDS   (1u << 1)
#define SBX_CG_CPU    (1u << 2)

/* What the running kernel offers. Filled by sbx_features_probe(); plain data, caller owns. */
struct sbx_features {
	int landlock_abi;                    /* 0 = Landlock unavailable */
	bool seccomp;                        /* seccomp filter mode works */
	bool seccomp_notify;                 /* SECCOMP_RET_USER_NOTIF available */
	bool seccomp_log;                    /* SECCOMP_RET_LOG available */
	bool user_namespaces;                /* CLONE_NEWUSER allowed for us */
	bool clone_into_cgroup;              /* clone3 + CLONE_INTO_CGROUP (kernel >= 5.7) */
	bool cgroup_v2;                      /* a cgroup2 hierarchy is mounted */
	bool cgroup_v2_kill;                 /* cgroup.kill exists (kernel >= 5.14) */
	unsigned cgroup_v2_controllers;      /* SBX_CG_* available in the v2 root */
	unsigned cgroup_v1_controllers;      /* SBX_CG_* available as v1 hierarchies */
	char cgroup_v2_root[SBX_PATH_MAX];   /* mount point, e.g. /sys/fs/cgroup/unified */
	char cgroup_v1_memory[SBX_PATH_MAX]; /* v1 mount points ("" when absent) */
	char cgroup_v1_pids[SBX_PATH_MAX];
	char cgroup_v1_cpu[SBX_PATH_MAX];
};

/*
 * Probes the kernel: Landlock ABI, seccomp actions, user namespaces, cgroup v2/v1 mounts and
 * controllers (from /proc/self/mountinfo and cgroup.controllers). Never fails because a
 * feature is missing; returns -errno only when probing itself is impossible (e.g. no /proc).
 */
int sbx_features_probe(struct sbx_features *ret);

/*
 * Compiles a profile for this host once per profile + policy version: checks `requires`
 * against `features` (refusing with -ENOTSUP and a message naming the missing primitive),
 * decides what degrades (only as profile->degrade allows, else -ENOTSUP), builds the Landlock
 * rule templates and the seccomp BPF program (exported into memory). `err` (may be NULL)
 * receives a one-line reason on failure. On success *ret is owned by the caller
 * (sbx_compiled_free). `p` and `features` are not retained.
 */
int sbx_compile_profile(const Corral__Profile *p, const struct sbx_features *features,
                        struct sbx_compiled **ret, char *err, size_t errlen);

/* Frees a compiled profile (NULL is fine). Must outlive every sbx that references it. */
void sbx_compiled_free(struct sbx_compiled *c);

/*
 * Layers the compiled profile will enforce, e.g. "landlock:abi7", "landlock:scope",
 * "seccomp:baseline", "seccomp:notify", "seccomp:arch", "cgroup:v2:memory",
 * "cgroup:v1:pids", "ns:user", "audit:landlock-skipped". *ret_n receives the count. The
 * array and strings are borrowed from `c`.
 */
const char *const *sbx_compiled_layers(const struct sbx_compiled *c, size_t *ret_n);

/*
 * What the profile asked for but this host cannot enforce and the policy allowed to degrade,
 * e.g. "landlock:scope (needs abi6)", "cgroup:memory (no controller)". Borrowed from `c`.
 */
const char *const *sbx_compiled_degraded(const struct sbx_compiled *c, size_t *ret_n);

/* true when the profile runs in audit mode (deny nothing, report everything). */
bool sbx_compiled_audit(const struct sbx_compiled *c);

/* ---- per-session object ------------------------------------------------------------------ */

/* A new empty session description; NULL on allocation failure. Free with sbx_free. */
struct sbx *sbx_new(void);

/* Frees a session description (NULL is fine). Does not free the compiled profile. */
void sbx_free(struct sbx *s);

/*
 * The profile to apply. Does not take ownership: `c` must outlive `s` and every child spawned
 * from it. Required before sbx_spawn (-EINVAL otherwise).
 */
int sbx_set_profile(struct sbx *s, const struct sbx_compiled *c);

/* Command: argv[0] is resolved by execvp rules against PATH of the session environment. Copied. */
int sbx_set_argv(struct sbx *s, const char *const *argv);

/*
 * The caller's environment; only names allowed by the profile's env_allow (exact or PREFIX_*)
 * pass, plus HOME/TMPDIR set from the session variables. Copied. Default: empty.
 */
int sbx_set_envp(struct sbx *s, const char *const *envp);

/*
 * Variables set in the session after the allowlist filter of sbx_set_envp (e.g. the egress
 * proxy's HTTP_PROXY/HTTPS_PROXY/ALL_PROXY/NO_PROXY, which env_allow must not be able to drop
 * or the caller to override): "NAME=value" entries; a caller variable of the same name is
 * dropped. HOME and TMPDIR stay the session variables'. Copied. -EINVAL for an entry without
 * a name.
 */
int sbx_set_env_forced(struct sbx *s, const char *const *env);

/* Working directory in the session (default ${WORKDIR}, else "/"). Copied. */
int sbx_set_cwd(struct sbx *s, const char *cwd);

/*
 * Identity of the caller (from SO_PEERCRED in corrald). The session runs as this uid/gid and
 * these supplementary groups, unless the profile names a run_as account. A uid of 0 is
 * refused at spawn (-EPERM) unless the profile has allow_root. Copied; at most
 * SBX_GROUPS_MAX groups (-E2BIG).
 */
int sbx_set_ids(struct sbx *s, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups);

/*
 * stdin/stdout/stderr for the session (-1 = inherit the caller's). Not owned: the caller
 * closes them after sbx_spawn.
 */
int sbx_set_stdio(struct sbx *s, int in_fd, int out_fd, int err_fd);

/*
 * Session variables expanded in the profile's paths: ${HOME}, ${WORKDIR}, ${TMP}. Absolute
 * paths; NULL leaves a variable unset (rules using it are then skipped and reported by
 * sbx_spawn as -EINVAL when the rule is a write/read root). Copied.
 */
int sbx_set_vars(struct sbx *s, const char *home, const char *workdir, const char *tmp);

/*
 * Where session cgroups go: `parent` relative to the caller's own cgroup (e.g. "corral"), or
 * absolute within each hierarchy (e.g. "/corral"). `name` names the session's leaf (unique per
 * session, e.g. "s-42"; [A-Za-z0-9_.-] only). Default: parent "corral", name "sbx-<pid>-<n>".
 */
int sbx_set_cgroup(struct sbx *s, const char *parent, const char *name);

/*
 * Optional network fallback for when BPF is unavailable and the policy allows degradation:
 * Landlock TCP rules (ABI >= 4) allowing connect to `connect_ports` and bind to `bind_ports`
 * only. Copied. -ENOTSUP at spawn when the ABI lacks TCP rules.
 */
int sbx_set_landlock_tcp_ports(struct sbx *s, const uint16_t *connect_ports, size_t nconnect,
                               const uint16_t *bind_ports, size_t nbind);

/*
 * Makes Landlock log the session's denials to the kernel audit subsystem after the command's
 * exec as well (LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON): by default the kernel logs only the
 * denials of the executable that called landlock_restrict_self, which is the engine's child
 * before exec, never the agent. Records reach user space only while kernel audit is enabled
 * (corrald's fsaudit.c reads them). Needs Landlock ABI 7: sbx_spawn then fails with -ENOTSUP
 * (step "landlock") on an older ABI. Ignored when the profile applies no Landlock (audit
 * mode). Default off. Returns 0 or -EINVAL.
 */
int sbx_set_landlock_audit(struct sbx *s, bool on);

/* Why a spawn failed: the step in the child (or parent) and the errno. Plain data. */
struct sbx_error {
	char step[32];     /* e.g. "cgroup", "userns", "mount", "setuid", "caps", "landlock" */
	int error;         /* positive errno */
	char message[256]; /* one line, e.g. "landlock: open /home/u/src: Permission denied" */
};

/*
 * Starts the session and waits until the child has exec'd or failed. On success *ret is
 * owned by the caller (sbx_child_free; the process keeps running). On failure returns -errno,
 * fills *err (may be NULL) and leaves nothing behind (child reaped, cgroups removed).
 */
int sbx_spawn(struct sbx *s, struct sbx_child **ret, struct sbx_error *err);

/* ---- a running session ------------------------------------------------------------------- */

/* Pid of the session's first process (in the caller's pid namespace). */
pid_t sbx_child_pid(const struct sbx_child *c);

/* pidfd of that process (owned by `c`), for poll(). */
int sbx_child_pidfd(const struct sbx_child *c);

/*
 * seccomp user-notification fd (owned by `c`; -1 when the profile uses no notify action).
 * Poll it for POLLIN and call sbx_child_notify_handle. While nobody answers, the notifying
 * thread in the session blocks, so service it promptly.
 */
int sbx_child_notify_fd(const struct sbx_child *c);

/*
 * The session's cgroup v2 directory fd (owned by `c`; -1 without v2), for the network layer's
 * BPF attach (BPF_CGROUP_INET*_CONNECT etc.).
 */
int sbx_child_cgroup_fd(const struct sbx_child *c);

/*
 * Sends `sig` to the session's first process through its pidfd (no pid-reuse race), e.g. to
 * forward a client's Ctrl-C. In the namespace tier that process is pid 1 of its namespace and
 * ignores signals it has no handler for (SIGKILL excepted). Returns 0, -ESRCH once reaped,
 * or -errno.
 */
int sbx_child_signal(struct sbx_child *c, int sig);

/* Layers actually enforced for this session (compiled layers + per-session facts). Borrowed. */
const char *const *sbx_enforced_layers(const struct sbx_child *c, size_t *ret_n);

/*
 * Ends the session and all its descendants: cgroup.kill on v2, else a SIGKILL loop over the
 * v1 cgroup.procs. Returns 0 or -errno.
 */
int sbx_child_kill(struct sbx_child *c);

/* One seccomp event seen by the supervisor. */
struct sbx_syscall_event {
	pid_t pid;        /* task that made the call (caller's pid namespace) */
	int nr;           /* syscall number */
	uint32_t arch;    /* AUDIT_ARCH_* */
	const char *name; /* syscall name ("?" when unknown); valid during the callback */
	uint64_t args[6];
	bool allowed; /* true: answered CONTINUE (audit mode); false: denied with EPERM */
};

/* Callback for violations; the return value is ignored (reporting only). */
typedef void (*sbx_notify_fn)(const struct sbx_syscall_event *ev, void *userdata);

/*
 * Receives one notification from a seccomp listener `fd`, calls `cb` (may be NULL), and answers
 * it: with SECCOMP_USER_NOTIF_FLAG_CONTINUE when `audit`, else with -EPERM. Returns 1 when
 * one was handled, 0 when the target died before the answer (ENOENT: nothing to report
 * beyond the callback), -errno on fd errors (-ENOENT never; -EBADF etc.).
 */
int sbx_notify_handle(int fd, bool audit, sbx_notify_fn cb, void *userdata);

/* Same for a child's notify fd, with audit taken from its profile. */
int sbx_child_notify_handle(struct sbx_child *c, sbx_notify_fn cb, void *userdata);

/* How a session ended. Plain data. */
struct sbx_result {
	int exit_code; /* valid when signal == 0 */
	int signal;    /* terminating signal, 0 if exited */
	bool core_dumped;
	uint64_t memory_peak_bytes; /* 0 when unknown */
	uint64_t cpu_usec;          /* user + system, whole session cgroup when known */
	uint64_t oom_kills;         /* processes killed by the memory limit */
	uint64_t pids_max_hits;     /* fork/clone refused by the pids limit */
	bool cpu_from_cgroup;       /* cpu_usec covers all descendants (cgroup) vs rusage */
};

/*
 * Waits for the session's first process to exit (blocking; use the pidfd to poll first),
 * kills remaining descendants and collects cgroup statistics. The emptied session cgroups are
 * removed by sbx_child_free, so a caller can report the exit before that cleanup.
 * May be called once; returns -ECHILD afterwards.
 */
int sbx_child_wait(struct sbx_child *c, struct sbx_result *ret);

/*
 * Frees the handle, closing its fds. A still-running session is killed and reaped first
 * (a session never outlives its handle unnoticed). NULL is fine.
 */
void sbx_child_free(struct sbx_child *c);

/* Name of a syscall number on x86-64 ("?" when unknown). Static storage. */
const char *sbx_syscall_name(int nr);
