/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal structures shared by the sandbox engine's files (not part of the public API).
 *
 * Split of work: everything that allocates, reads directories or formats text happens in the
 * parent (profile compile once per policy version, session plan per spawn). The child between
 * clone3 and execve only issues system calls over that prepared plan: it was created by a raw
 * clone3 from a possibly multi-threaded daemon, so malloc, stdio and locale are off limits there.
 */
#pragma once

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sbx.h"

#include "landlock_abi.h"

/* Access-right groups a profile's read/write/execute sets map to. */
enum sbx_access_kind {
	SBX_ACCESS_READ,
	SBX_ACCESS_WRITE,
	SBX_ACCESS_EXEC,
};

/* A path template from the profile ("${HOME}/src", "/usr"). */
struct sbx_path_tmpl {
	char *text;
	enum sbx_access_kind kind;
};

#define SBX_LAYERS_MAX 32

struct sbx_compiled {
	bool audit;      /* Mode audit: deny nothing, report */
	bool namespaces; /* isolation tier `namespace` */
	bool allow_root;
	char *run_as; /* NULL = caller */

	/* Landlock (landlock_abi == 0: not applied) */
	int landlock_abi;
	uint64_t ll_handled_fs;
	uint64_t ll_read, ll_write, ll_exec; /* rights per kind, already masked by the ABI */
	uint64_t ll_scoped;
	struct sbx_path_tmpl *paths;
	size_t npaths;
	char **deny; /* templates */
	size_t ndeny;

	/* seccomp */
	struct sock_filter *bpf;
	size_t bpf_len;
	bool seccomp_notify;          /* the filter contains USER_NOTIF actions */
	bool seccomp_notify_continue; /* answer notifications with CONTINUE (audit/log) */

	/* resources: which controller is used where (SBX_CG_*), limits */
	uint64_t memory_max;
	uint32_t pids_max;
	uint32_t cpu_max_percent;
	unsigned cg_v2; /* controllers to set through v2 */
	unsigned cg_v1; /* controllers to set through v1 */
	bool degrade_resources;
	struct sbx_features features; /* host facts at compile time (paths) */

	char **env_allow;
	size_t nenv_allow;

	const char *layers[SBX_LAYERS_MAX];
	size_t nlayers;
	const char *degraded[SBX_LAYERS_MAX];
	size_t ndegraded;
	char *strings; /* pool owning layer strings */
	size_t strings_len, strings_cap;
};

/* One Landlock path rule, prepared by the parent, applied by the child. */
struct sbx_ll_rule {
	char *path;
	size_t follow_len; /* leading bytes of path opened following symlinks; rest: no symlinks */
	uint64_t access;
};

/* Mount work for the namespace tier, prepared by the parent. */
struct sbx_mount_plan {
	char **writable;     /* bind-mounted onto themselves and kept read-write */
	bool *writable_exec; /* per writable path: also in the execute set (else noexec) */
	size_t nwritable;
	char **masked; /* denied paths hidden by an empty read-only tmpfs (dir) or /dev/null */
	size_t nmasked;
	char *tmp;     /* bound onto /tmp when set */
	bool tmp_exec; /* ${TMP} is in the execute set (else /tmp is noexec) */
};

/* Session cgroups. */
struct sbx_cgroup {
	char v2_path[SBX_PATH_MAX];
	int v2_fd;
	char v1_path[3][SBX_PATH_MAX]; /* memory, pids, cpu ("" when unused) */
	bool v2_kill;
	unsigned v2_ctrl, v1_ctrl;
};

/* sbx_spawn starts process-tier children with CLONE_VM|CLONE_VFORK on a stack of this size
 * (see spawn_vm in sbx.c): x86-64 only (a few lines of assembly), and not under ASan, whose
 * stack bookkeeping does not expect a child running on a foreign stack in shared memory. */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define SBX_HAVE_CLONE_VM 1
#define SBX_VM_STACK      (128u * 1024u)
#else
#define SBX_HAVE_CLONE_VM 0
#endif

/* What the child does; fully prepared by the parent. */
struct sbx_plan {
	const struct sbx_compiled *c;
	char **argv;
	char **envp;
	const char *path_env; /* PATH value for the exec search (points into envp) */
	char *cwd;
	uid_t uid;
	gid_t gid;
	gid_t groups[SBX_GROUPS_MAX];
	size_t ngroups;
	bool change_ids; /* we are privileged and must switch identity */
	int stdio[3];
	struct sbx_ll_rule *rules;
	size_t nrules;
	size_t rules_cap;
	uint16_t *tcp_connect, *tcp_bind;
	size_t ntcp_connect, ntcp_bind;
	bool landlock_audit; /* LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON (ABI >= 7) */
	struct sbx_mount_plan mounts;
	int err_fd;      /* child -> parent: struct sbx_child_report */
	int sync_fd;     /* parent -> child: release byte */
	int notify_sock; /* child -> parent: seccomp listener via SCM_RIGHTS */
	/* CLONE_VM spawn only: cgroup.procs files the child joins itself by writing "0" (v1
	 * controllers, or v2 without CLONE_INTO_CGROUP), since the vfork'ed parent cannot */
	int cg_join_fd[4];
};

/* What the child writes on failure (no formatting in the child: the parent formats). */
struct sbx_child_report {
	char step[32];
	int error;
	char detail[SBX_PATH_MAX];
};

/* Child failure: writes the report and _exit()s. Async-signal-safe. */
_Noreturn void sbx_child_fail(const struct sbx_plan *p, const char *step, int error,
                              const char *detail);

/* async-signal-safe bounded copy/append (return false on truncation). */
bool sbx_str_copy(char *dst, size_t size, const char *src);
bool sbx_str_append(char *dst, size_t size, const char *src);

/* features.c */
int sbx_own_cgroup(const char *controller, char *buf, size_t len);

/* profile.c */
int sbx_compiled_add_layer(struct sbx_compiled *c, bool degraded, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* landlock.c */
uint64_t sbx_landlock_fs_rights(int abi);
int sbx_landlock_compile(struct sbx_compiled *c, const Corral__Profile *p,
                         const struct sbx_features *f, char *err, size_t errlen);
int sbx_landlock_plan(struct sbx_plan *plan, const char *home, const char *workdir, const char *tmp,
                      struct sbx_error *err);
int sbx_path_var(const char *t, const char **ret_rest);
int sbx_expand(const char *tmpl, const char *home, const char *workdir, const char *tmp, char **ret,
               size_t *ret_follow_len);
void sbx_landlock_apply(const struct sbx_plan *p); /* child; fails via sbx_child_fail */

/* seccomp.c */
int sbx_seccomp_compile(struct sbx_compiled *c, const Corral__Profile *p,
                        const struct sbx_features *f, char *err, size_t errlen);
void sbx_seccomp_apply(const struct sbx_plan *p); /* child */

/* cgroup.c */
int sbx_cgroup_create(const struct sbx_compiled *c, const char *parent, const char *name,
                      struct sbx_cgroup *ret, struct sbx_error *err);
int sbx_cgroup_attach(const struct sbx_cgroup *cg, pid_t pid, bool v2_too);
int sbx_cgroup_kill(const struct sbx_cgroup *cg);
void sbx_cgroup_stats(const struct sbx_cgroup *cg, struct sbx_result *r);
void sbx_cgroup_destroy(struct sbx_cgroup *cg);

/* ns.c */
int sbx_ns_write_maps(pid_t pid, const struct sbx_plan *p);
void sbx_ns_setup_mounts(const struct sbx_plan *p); /* child */

/* caps.c */
void sbx_caps_drop_bounding(const struct sbx_plan *p); /* child, before the uid change */
void sbx_creds_drop(const struct sbx_plan *p);         /* child */
void sbx_caps_clear(const struct sbx_plan *p);         /* child, after the uid change */
