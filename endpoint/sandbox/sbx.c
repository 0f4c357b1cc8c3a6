/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The session object and spawn orchestration: setters only record; sbx_spawn prepares a
 * complete plan in the parent (identity, environment, Landlock rule list, mounts, cgroups),
 * starts the child with clone3 and lets it apply the plan in a fixed order, then waits until
 * the child has exec'd or reported the step that failed.
 *
 * Parent and child talk over three channels, all CLOEXEC:
 *   err pipe   child -> parent  a struct sbx_child_report on failure; EOF at a successful exec
 *   sync pipe  parent -> child  one byte once v1 cgroups and id maps are in place, so the child
 *                               runs no code outside its cgroups or before its maps exist
 *   notify     child -> parent  the seccomp listener fd (SCM_RIGHTS), before exec
 *
 * Two ways to start the child (see spawn_vm): posix_spawn-style CLONE_VM|CLONE_VFORK on a
 * stack of its own (x86-64, process tier: no page-table copy of the caller, which in corrald
 * is most of the spawn cost), or a plain copy (the namespace tier, whose id maps the parent
 * writes while the child waits, and every other architecture). The child's code is the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "sbx_internal.h"
#include "util.h"

#define SBX_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define SBX_ARG_LEN_MAX  (128u * 1024u)

struct sbx {
	const struct sbx_compiled *compiled;
	char **argv, **envp, **env_forced;
	char *cwd;
	bool ids_set;
	uid_t uid;
	gid_t gid;
	gid_t groups[SBX_GROUPS_MAX];
	size_t ngroups;
	int stdio[3];
	char *home, *workdir, *tmp;
	char *cg_parent, *cg_name;
	uint16_t *tcp_connect, *tcp_bind;
	size_t ntcp_connect, ntcp_bind;
	bool landlock_audit;
};

struct sbx_child {
	pid_t pid;
	int pidfd;
	int notify_fd;
	bool notify_continue;
	bool reaped;
	bool has_cgroup;
	bool cgroup_lost;   /* could not be created and the profile allowed running without */
	bool notify_nested; /* inside another session: no listener, denials return ENOSYS */
	struct sbx_cgroup cg;
	const char *layers[SBX_LAYERS_MAX + 4];
	size_t nlayers;
};

/* ---- small helpers --------------------------------------------------------------------------- */

bool sbx_str_copy(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	if (!size)
		return false;
	for (; src && src[n] && n + 1 < size; n++)
		dst[n] = src[n];
	dst[n] = '\0';
	return !src || !src[n];
}

bool sbx_str_append(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	while (n < size && dst[n])
		n++;
	if (n >= size)
		return false;
	return sbx_str_copy(dst + n, size - n, src);
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int strv_copy(const char *const *src, char ***ret)
{
	size_t n = 0, total = 0;
	char **v;

	while (src && src[n]) {
		total += strlen(src[n]);
		if (++n > SBX_ARGS_MAX || total > SBX_ARG_LEN_MAX)
			return -E2BIG;
	}
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(v[i] = strdup(src[i]))) {
			strv_free(v);
			return -ENOMEM;
		}
	*ret = v;
	return 0;
}

/* Absolute, no "." or ".." components; stored without a trailing slash. */
static int copy_abs_path(const char *in, char **ret)
{
	char *p;
	size_t n;

	if (!in) {
		*ret = NULL;
		return 0;
	}
	if (in[0] != '/' || strlen(in) >= SBX_PATH_MAX || strstr(in, "/./") || strstr(in, "/../") ||
	    (strlen(in) >= 2 && strcmp(in + strlen(in) - 2, "/.") == 0) ||
	    (strlen(in) >= 3 && strcmp(in + strlen(in) - 3, "/..") == 0))
		return -EINVAL;
	p = strdup(in);
	if (!p)
		return -ENOMEM;
	n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	*ret = p;
	return 0;
}

/* ---- setters --------------------------------------------------------------------------------- */

struct sbx *sbx_new(void)
{
	struct sbx *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->stdio[0] = s->stdio[1] = s->stdio[2] = -1;
	return s;
}

void sbx_free(struct sbx *s)
{
	if (!s)
		return;
	strv_free(s->argv);
	strv_free(s->envp);
	strv_free(s->env_forced);
	free(s->cwd);
	free(s->home);
	free(s->workdir);
	free(s->tmp);
	free(s->cg_parent);
	free(s->cg_name);
	free(s->tcp_connect);
	free(s->tcp_bind);
	free(s);
}

int sbx_set_profile(struct sbx *s, const struct sbx_compiled *c)
{
	if (!s || !c)
		return -EINVAL;
	s->compiled = c;
	return 0;
}

int sbx_set_argv(struct sbx *s, const char *const *argv)
{
	char **v;
	int r;

	if (!s || !argv || !argv[0] || !argv[0][0])
		return -EINVAL;
	r = strv_copy(argv, &v);
	if (r < 0)
		return r;
	strv_free(s->argv);
	s->argv = v;
	return 0;
}

int sbx_set_envp(struct sbx *s, const char *const *envp)
{
	char **v = NULL;
	int r;

	if (!s)
		return -EINVAL;
	if (envp && (r = strv_copy(envp, &v)) < 0)
		return r;
	strv_free(s->envp);
	s->envp = v;
	return 0;
}

int sbx_set_env_forced(struct sbx *s, const char *const *env)
{
	char **v = NULL;
	int r;

	if (!s)
		return -EINVAL;
	for (size_t i = 0; env && env[i]; i++)
		if (!strchr(env[i], '=') || env[i][0] == '=')
			return -EINVAL;
	if (env && (r = strv_copy(env, &v)) < 0)
		return r;
	strv_free(s->env_forced);
	s->env_forced = v;
	return 0;
}

/* true when `e` ("NAME=value") names a variable that env_forced sets. */
static bool env_is_forced(const struct sbx *s, const char *e)
{
	size_t nl = strcspn(e, "=");

	for (size_t i = 0; s->env_forced && s->env_forced[i]; i++)
		if (strncmp(s->env_forced[i], e, nl) == 0 && s->env_forced[i][nl] == '=')
			return true;
	return false;
}

int sbx_set_cwd(struct sbx *s, const char *cwd)
{
	char *p;
	int r;

	if (!s || !cwd)
		return -EINVAL;
	r = copy_abs_path(cwd, &p);
	if (r < 0)
		return r;
	free(s->cwd);
	s->cwd = p;
	return 0;
}

int sbx_set_ids(struct sbx *s, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups)
{
	if (!s || (ngroups && !groups))
		return -EINVAL;
	if (ngroups > SBX_GROUPS_MAX)
		return -E2BIG;
	s->uid = uid;
	s->gid = gid;
	if (ngroups)
		memcpy(s->groups, groups, ngroups * sizeof(*groups));
	s->ngroups = ngroups;
	s->ids_set = true;
	return 0;
}

int sbx_set_stdio(struct sbx *s, int in_fd, int out_fd, int err_fd)
{
	if (!s || in_fd < -1 || out_fd < -1 || err_fd < -1)
		return -EINVAL;
	s->stdio[0] = in_fd;
	s->stdio[1] = out_fd;
	s->stdio[2] = err_fd;
	return 0;
}

int sbx_set_vars(struct sbx *s, const char *home, const char *workdir, const char *tmp)
{
	char *h = NULL, *w = NULL, *t = NULL;
	int r;

	if (!s)
		return -EINVAL;
	if ((r = copy_abs_path(home, &h)) < 0 || (r = copy_abs_path(workdir, &w)) < 0 ||
	    (r = copy_abs_path(tmp, &t)) < 0) {
		free(h);
		free(w);
		return r;
	}
	free(s->home);
	free(s->workdir);
	free(s->tmp);
	s->home = h;
	s->workdir = w;
	s->tmp = t;
	return 0;
}

static bool valid_cg_name(const char *n, bool allow_slash)
{
	if (!n[0] || strlen(n) > 200 || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
		return false;
	for (const char *c = n; *c; c++) {
		if (*c == '/' && allow_slash) {
			if (c[1] == '.' || c[1] == '/')
				return false; /* no "..", "." or empty components */
			continue;
		}
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || (*c == '.' && c != n)))
			return false;
	}
	return true;
}

int sbx_set_cgroup(struct sbx *s, const char *parent, const char *name)
{
	char *p, *n;

	if (!s || !parent || !name || !valid_cg_name(parent, true) || !valid_cg_name(name, false) ||
	    parent[strlen(parent) - 1] == '/')
		return -EINVAL;
	p = strdup(parent);
	n = strdup(name);
	if (!p || !n) {
		free(p);
		free(n);
		return -ENOMEM;
	}
	free(s->cg_parent);
	free(s->cg_name);
	s->cg_parent = p;
	s->cg_name = n;
	return 0;
}

int sbx_set_landlock_tcp_ports(struct sbx *s, const uint16_t *connect_ports, size_t nconnect,
                               const uint16_t *bind_ports, size_t nbind)
{
	uint16_t *c = NULL, *b = NULL;

	if (!s || (nconnect && !connect_ports) || (nbind && !bind_ports))
		return -EINVAL;
	if (nconnect > 1024 || nbind > 1024)
		return -E2BIG;
	if (nconnect && !(c = malloc(nconnect * sizeof(*c))))
		return -ENOMEM;
	if (nbind && !(b = malloc(nbind * sizeof(*b)))) {
		free(c);
		return -ENOMEM;
	}
	if (nconnect)
		memcpy(c, connect_ports, nconnect * sizeof(*c));
	if (nbind)
		memcpy(b, bind_ports, nbind * sizeof(*b));
	free(s->tcp_connect);
	free(s->tcp_bind);
	s->tcp_connect = c;
	s->tcp_bind = b;
	s->ntcp_connect = nconnect;
	s->ntcp_bind = nbind;
	/* an empty set still means "handle TCP": no connect/bind at all */
	if (!nconnect && !nbind) {
		s->tcp_connect = malloc(sizeof(uint16_t));
		if (!s->tcp_connect)
			return -ENOMEM;
		s->tcp_connect[0] = 0;
		s->ntcp_connect = 1; /* port 0 never connects anywhere */
	}
	return 0;
}

int sbx_set_landlock_audit(struct sbx *s, bool on)
{
	if (!s)
		return -EINVAL;
	s->landlock_audit = on;
	return 0;
}

/* ---- planning (parent) ----------------------------------------------------------------------- */

static void set_error(struct sbx_error *e, const char *step, int error, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void set_error(struct sbx_error *e, const char *step, int error, const char *fmt, ...)
{
	va_list ap;
	char msg[200] = "";

	sbx_str_copy(e->step, sizeof(e->step), step);
	e->error = error;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(e->message, sizeof(e->message), "%s: %s%s%s", step, msg, msg[0] ? ": " : "",
	         strerror(error));
}

static void plan_free(struct sbx_plan *p)
{
	strv_free(p->argv);
	strv_free(p->envp);
	free(p->cwd);
	for (size_t i = 0; i < p->nrules; i++)
		free(p->rules[i].path);
	free(p->rules);
	for (size_t i = 0; i < p->mounts.nwritable; i++)
		free(p->mounts.writable[i]);
	free(p->mounts.writable);
	free(p->mounts.writable_exec);
	for (size_t i = 0; i < p->mounts.nmasked; i++)
		free(p->mounts.masked[i]);
	free(p->mounts.masked);
	free(p->mounts.tmp);
}

static bool env_allowed(const struct sbx_compiled *c, const char *entry)
{
	size_t nl = strcspn(entry, "=");

	for (size_t i = 0; i < c->nenv_allow; i++) {
		const char *pat = c->env_allow[i];
		size_t pl = strlen(pat);
		if (pl && pat[pl - 1] == '*') {
			if (nl >= pl - 1 && strncmp(entry, pat, pl - 1) == 0)
				return true;
		} else if (pl == nl && strncmp(entry, pat, nl) == 0) {
			return true;
		}
	}
	return false;
}

static int env_push(char ***v, size_t *n, const char *name, const char *value)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(**v));
	size_t len;

	if (!nv)
		return -ENOMEM;
	*v = nv;
	len = strlen(name) + strlen(value) + 2;
	if (!(nv[*n] = malloc(len)))
		return -ENOMEM;
	snprintf(nv[*n], len, "%s=%s", name, value);
	nv[++*n] = NULL;
	return 0;
}

/* The session environment: allowlisted caller variables, then HOME/TMPDIR/PATH. */
static int plan_env(const struct sbx *s, struct sbx_plan *p)
{
	const struct sbx_compiled *c = s->compiled;
	char **v = calloc(1, sizeof(char *));
	size_t n = 0;
	bool have_path = false;
	int r = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; s->envp && s->envp[i] && r >= 0; i++) {
		const char *e = s->envp[i], *eq = strchr(e, '=');
		if (!eq || util_startswith(e, "HOME=") || util_startswith(e, "TMPDIR="))
			continue;
		if (!env_allowed(c, e) || env_is_forced(s, e))
			continue;
		char name[256];
		if ((size_t)(eq - e) >= sizeof(name))
			continue;
		memcpy(name, e, (size_t)(eq - e));
		name[eq - e] = '\0';
		have_path = have_path || strcmp(name, "PATH") == 0;
		r = env_push(&v, &n, name, eq + 1);
	}
	for (size_t i = 0; s->env_forced && s->env_forced[i] && r >= 0; i++) {
		const char *e = s->env_forced[i], *eq = strchr(e, '=');
		char name[256];
		if ((size_t)(eq - e) >= sizeof(name) || util_startswith(e, "HOME=") ||
		    util_startswith(e, "TMPDIR="))
			continue;
		memcpy(name, e, (size_t)(eq - e));
		name[eq - e] = '\0';
		have_path = have_path || strcmp(name, "PATH") == 0;
		r = env_push(&v, &n, name, eq + 1);
	}
	if (r >= 0 && s->home)
		r = env_push(&v, &n, "HOME", s->home);
	if (r >= 0 && s->tmp)
		r = env_push(&v, &n, "TMPDIR", c->namespaces ? "/tmp" : s->tmp);
	if (r >= 0 && !have_path)
		r = env_push(&v, &n, "PATH", SBX_DEFAULT_PATH);
	if (r < 0) {
		strv_free(v);
		return r;
	}
	p->envp = v;
	for (size_t i = 0; v[i]; i++)
		if (util_startswith(v[i], "PATH="))
			p->path_env = v[i] + 5;
	return 0;
}

static int plan_ids(const struct sbx *s, struct sbx_plan *p, struct sbx_error *e)
{
	const struct sbx_compiled *c = s->compiled;

	if (c->run_as) {
		struct passwd pw, *res = NULL;
		char buf[4096];
		int ng = SBX_GROUPS_MAX;
		int r = getpwnam_r(c->run_as, &pw, buf, sizeof(buf), &res);

		if (r != 0 || !res) {
			set_error(e, "credentials", r ? r : ENOENT, "run_as account \"%s\"",
			          c->run_as);
			return -e->error;
		}
		p->uid = pw.pw_uid;
		p->gid = pw.pw_gid;
		if (getgrouplist(c->run_as, pw.pw_gid, p->groups, &ng) < 0) {
			set_error(e, "credentials", E2BIG, "groups of \"%s\"", c->run_as);
			return -E2BIG;
		}
		p->ngroups = (size_t)ng;
	} else if (s->ids_set) {
		p->uid = s->uid;
		p->gid = s->gid;
		memcpy(p->groups, s->groups, s->ngroups * sizeof(gid_t));
		p->ngroups = s->ngroups;
	} else {
		int ng = getgroups(SBX_GROUPS_MAX, p->groups);
		if (ng < 0) {
			set_error(e, "credentials", errno, "getgroups");
			return -e->error;
		}
		p->uid = getuid();
		p->gid = getgid();
		p->ngroups = (size_t)ng;
	}
	if (p->uid == 0 && !c->allow_root) {
		set_error(e, "credentials", EPERM, "the profile does not allow running as root");
		return -EPERM;
	}
	p->change_ids = geteuid() == 0;
	if (!p->change_ids && (p->uid != geteuid() || p->gid != getegid())) {
		set_error(e, "credentials", EPERM, "an unprivileged caller can only run as itself");
		return -EPERM;
	}
	return 0;
}

static int build_plan(const struct sbx *s, struct sbx_plan *p, struct sbx_error *e)
{
	const struct sbx_compiled *c = s->compiled;
	int r;

	p->c = c;
	if ((r = plan_ids(s, p, e)) < 0)
		return r;
	if ((r = strv_copy((const char *const *)s->argv, &p->argv)) < 0 ||
	    (r = plan_env(s, p)) < 0) {
		set_error(e, "prepare", -r, "argv/environment");
		return r;
	}
	p->cwd = strdup(s->cwd ? s->cwd : s->workdir ? s->workdir : "/");
	if (!p->cwd) {
		set_error(e, "prepare", ENOMEM, "cwd");
		return -ENOMEM;
	}
	for (int i = 0; i < 3; i++)
		p->stdio[i] = s->stdio[i];
	if (c->namespaces && s->tmp) {
		if (!(p->mounts.tmp = strdup(s->tmp))) {
			set_error(e, "prepare", ENOMEM, "tmp");
			return -ENOMEM;
		}
		for (size_t i = 0; i < c->npaths; i++)
			if (c->paths[i].kind == SBX_ACCESS_EXEC &&
			    (strcmp(c->paths[i].text, "${TMP}") == 0 ||
			     strcmp(c->paths[i].text, "/tmp") == 0 ||
			     strcmp(c->paths[i].text, "/") == 0))
				p->mounts.tmp_exec = true;
	}
	/* Inside the namespace tier ${TMP} is seen at /tmp (bound there), so rules use that. */
	r = sbx_landlock_plan(p, s->home, s->workdir, c->namespaces && s->tmp ? "/tmp" : s->tmp, e);
	if (r < 0) {
		char msg[sizeof(e->message)];
		sbx_str_copy(msg, sizeof(msg), e->message);
		set_error(e, "landlock", -r, "%s", msg);
		return r;
	}
	if (s->ntcp_connect || s->ntcp_bind) {
		if (c->landlock_abi < 4) {
			set_error(e, "landlock", ENOTSUP, "TCP port rules need Landlock ABI 4%s",
			          c->audit ? " (and Landlock is skipped in audit mode)" : "");
			return -ENOTSUP;
		}
		p->tcp_connect = s->tcp_connect;
		p->ntcp_connect = s->ntcp_connect;
		p->tcp_bind = s->tcp_bind;
		p->ntcp_bind = s->ntcp_bind;
	}
	/* audit mode applies no Landlock: nothing to log */
	if (s->landlock_audit && c->landlock_abi >= 1) {
		if (c->landlock_abi < 7) {
			set_error(e, "landlock", ENOTSUP,
			          "logging denials after exec needs Landlock ABI 7");
			return -ENOTSUP;
		}
		p->landlock_audit = true;
	}
	return 0;
}

/* ---- the child ---------------------------------------------------------------------------- */

_Noreturn void sbx_child_fail(const struct sbx_plan *p, const char *step, int error,
                              const char *detail)
{
	struct sbx_child_report rep;
	ssize_t n;

	memset(&rep, 0, sizeof(rep));
	sbx_str_copy(rep.step, sizeof(rep.step), step);
	rep.error = error;
	sbx_str_copy(rep.detail, sizeof(rep.detail), detail);
	do
		n = write(p->err_fd, &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	_exit(127);
}

static void child_stdio(const struct sbx_plan *p)
{
	int tmp[3] = {-1, -1, -1};

	/* dup to high numbers first so that, e.g., stdout=0 is not clobbered by dup2(x, 0) */
	for (int i = 0; i < 3; i++)
		if (p->stdio[i] >= 0 && (tmp[i] = fcntl(p->stdio[i], F_DUPFD_CLOEXEC, 3)) < 0)
			sbx_child_fail(p, "stdio", errno, NULL);
	for (int i = 0; i < 3; i++)
		if (tmp[i] >= 0 && dup2(tmp[i], i) < 0)
			sbx_child_fail(p, "stdio", errno, NULL);
}

static _Noreturn void child_exec(const struct sbx_plan *p)
{
	const char *file = p->argv[0];
	char buf[SBX_PATH_MAX];
	int saved = ENOENT;

	if (strchr(file, '/')) {
		execve(file, p->argv, p->envp);
		sbx_child_fail(p, "exec", errno, file);
	}
	for (const char *d = p->path_env ? p->path_env : SBX_DEFAULT_PATH; *d;) {
		size_t dl = strcspn(d, ":");
		if (dl && dl + 1 + strlen(file) < sizeof(buf)) {
			memcpy(buf, d, dl);
			buf[dl] = '/';
			sbx_str_copy(buf + dl + 1, sizeof(buf) - dl - 1, file);
			execve(buf, p->argv, p->envp);
			if (errno == EACCES)
				saved = EACCES;
			else if (errno != ENOENT && errno != ENOTDIR)
				sbx_child_fail(p, "exec", errno, buf);
		}
		d += dl;
		if (*d == ':')
			d++;
	}
	sbx_child_fail(p, "exec", saved, file);
}

/*
 * Runs in the child between clone3 and execve. Only system calls on the prepared plan: the
 * parent may be multi-threaded, and a raw clone3 does not reset libc's locks.
 */
static _Noreturn void child_main(const struct sbx_plan *p)
{
	char go;
	ssize_t n;

	/* Wait for the parent: v1 cgroups joined and user-namespace maps written. Until then
	 * this process must not run anything of the session's. (Without either, e.g. pure v2
	 * and the process tier, there is nothing to wait for: one scheduling round trip less.) */
	if (p->sync_fd >= 0) {
		do
			n = read(p->sync_fd, &go, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1)
			_exit(127); /* parent gave up; it reports the reason */
		close(p->sync_fd);
	}
	/* CLONE_VM spawn: join the v1 controllers (and v2 without CLONE_INTO_CGROUP) before
	 * running anything of the session's; "0" is the writing process. */
	for (size_t i = 0; i < ELEMENTSOF(p->cg_join_fd); i++) {
		if (p->cg_join_fd[i] < 0)
			continue;
		if (write(p->cg_join_fd[i], "0", 1) != 1)
			sbx_child_fail(p, "cgroup", errno, "joining the session cgroup");
		close(p->cg_join_fd[i]);
	}

	/* The caller may be a daemon that blocks signals for its signalfd and ignores SIGPIPE:
	 * both survive execve, so the session would ignore SIGTERM from its user and loop on
	 * EPIPE. Start it with default dispositions and an empty mask. */
	for (int sig = 1; sig < _NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &(struct sigaction){.sa_handler = SIG_DFL}, NULL);
	sigset_t none;
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);

	/* Mounts come first, while we still hold CAP_SYS_ADMIN in the new user namespace. */
	if (p->c->namespaces)
		sbx_ns_setup_mounts(p);
	/* A new session: no controlling terminal shared with the caller (TIOCSTI is also
	 * blocked by seccomp); a pty handed in as stdin becomes ours. */
	if (setsid() < 0)
		sbx_child_fail(p, "setsid", errno, NULL);
	child_stdio(p);
	if (isatty(0))
		(void)ioctl(0, TIOCSCTTY, 0);
	/* The bounding set needs CAP_SETPCAP, so it goes before the identity switch... */
	sbx_caps_drop_bounding(p);
	sbx_creds_drop(p);
	/* ...and the capability sets after it (see caps.c for why explicitly). */
	sbx_caps_clear(p);
	/* cwd as the session user: DAC applies; Landlock does not govern chdir. */
	if (chdir(p->cwd) < 0)
		sbx_child_fail(p, "chdir", errno, p->cwd);
	if (setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0}) < 0)
		sbx_child_fail(p, "rlimit", errno, "RLIMIT_CORE");
	/* no_new_privs: setuid binaries and file capabilities cannot raise privilege, and it is
	 * what lets an unprivileged process install Landlock and seccomp. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		sbx_child_fail(p, "no_new_privs", errno, NULL);
	/* Landlock before seccomp: its own syscalls need not be allowed by the filter. */
	sbx_landlock_apply(p);
	/* seccomp last before exec, so the filter need not allow any setup syscall. */
	sbx_seccomp_apply(p);
	/* No inherited fds beyond stdio; the err pipe stays (CLOEXEC) to report exec failure. */
	if (p->err_fd > 3 && syscall(SYS_close_range, 3, p->err_fd - 1, 0) < 0)
		sbx_child_fail(p, "close_range", errno, NULL);
	if (syscall(SYS_close_range, p->err_fd + 1, ~0U, 0) < 0)
		sbx_child_fail(p, "close_range", errno, NULL);
	child_exec(p);
}

/* ---- spawn (parent) -------------------------------------------------------------------------- */

#if SBX_HAVE_CLONE_VM
/*
 * long sbx_clone3_vm(struct clone_args *args, size_t size, int (*fn)(void *), void *arg)
 *
 * clone3 for a child that shares our memory and starts on its own stack (args->stack): it
 * calls fn(arg) there and exits with its result, never returning into the caller's frames,
 * which the suspended (CLONE_VFORK) parent still owns. libc has no public clone3 wrapper, and
 * syscall() cannot be used: the child would return through the parent's stack. Returns the
 * child's pid or -errno, like the raw system call.
 */
__asm__(".text\n"
        ".globl sbx_clone3_vm\n"
        ".hidden sbx_clone3_vm\n"
        ".type sbx_clone3_vm, @function\n"
        ".p2align 4\n"
        "sbx_clone3_vm:\n"
        "\tendbr64\n"
        "\tmovq %rdx, %r8\n"  /* fn, kept in the child's copy of the registers */
        "\tmovq %rcx, %r9\n"  /* arg */
        "\tmovl $435, %eax\n" /* __NR_clone3 */
        "\tsyscall\n"
        "\ttestq %rax, %rax\n"
        "\tjnz 1f\n"          /* parent (pid) or error (-errno) */
        "\txorl %ebp, %ebp\n" /* child: outermost frame on the new stack */
        "\tmovq %r9, %rdi\n"
        "\tcallq *%r8\n"
        "\tmovl %eax, %edi\n"
        "\tmovl $231, %eax\n" /* __NR_exit_group */
        "\tsyscall\n"
        "\thlt\n"
        "1:\tretq\n"
        ".size sbx_clone3_vm, .-sbx_clone3_vm\n");
long sbx_clone3_vm(struct clone_args *args, size_t size, int (*fn)(void *), void *arg)
        __attribute__((visibility("hidden")));

struct vm_start {
	const struct sbx_plan *plan;
	int close_fds[3]; /* the parent's ends of the channels */
};

static int child_vm_entry(void *arg)
{
	const struct vm_start *st = arg;

	for (int i = 0; i < 3; i++)
		if (st->close_fds[i] >= 0)
			close(st->close_fds[i]);
	child_main(st->plan);
}

/*
 * Starts the child with CLONE_VM|CLONE_VFORK: it runs on its own stack in our memory and this
 * thread sleeps until it has exec'd or exited, like posix_spawn. Saves copying the caller's
 * page tables (0.25-0.5 ms for corrald, whose address space holds SQLite, libbpf, OpenSSL and
 * the proxy threads), the child's copy-on-write faults and the teardown of that copy at exec.
 * What makes sharing memory safe:
 *   - this thread is suspended until exec/exit, so the plan and stack it owns stay put, and
 *     the child only reads the plan;
 *   - the child makes raw system calls only (no malloc, no locks, no set*id broadcast: see
 *     caps.c), so the caller's other threads never see libc state change under them; errno
 *     is this thread's (shared TLS), which nothing here reads across the call;
 *   - every signal is blocked across clone3, so no handler of the caller runs in the child
 *     before child_main has reset them all to default.
 * Returns the pid (pidfd through ca) or -errno; -ENOSYS when clone3 is refused (inside another
 * corral session), and the caller falls back to the copying path.
 */
/* A child stack with a guard page below it (an overflow faults instead of writing our heap);
 * NULL with errno set. */
static void *vm_stack_map(void)
{
	void *stack = mmap(NULL, SBX_VM_STACK, PROT_READ | PROT_WRITE,
	                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
	if (stack == MAP_FAILED)
		return NULL;
	if (mprotect(stack, 4096, PROT_NONE) < 0) {
		int e = errno;
		munmap(stack, SBX_VM_STACK);
		errno = e;
		return NULL;
	}
	return stack;
}

/* One stack kept between spawns (mapping, guarding and faulting in a fresh one each time
 * cost tens of microseconds). Safe to reuse: when the vfork'ed parent resumes, the child has
 * exec'd or exited and no longer runs on it. A concurrent spawn, or a child of fork() taken
 * while the lock was held, gets a stack of its own (trylock never waits). */
static pthread_mutex_t vm_stack_lock = PTHREAD_MUTEX_INITIALIZER;
static void *vm_stack_cached;

static void *vm_stack_get(bool *ret_cached)
{
	*ret_cached = false;
	if (pthread_mutex_trylock(&vm_stack_lock) == 0) {
		if (!vm_stack_cached)
			vm_stack_cached = vm_stack_map();
		if (vm_stack_cached) {
			*ret_cached = true;
			return vm_stack_cached;
		}
		pthread_mutex_unlock(&vm_stack_lock);
	}
	return vm_stack_map();
}

static void vm_stack_put(void *stack, bool cached)
{
	if (cached)
		pthread_mutex_unlock(&vm_stack_lock);
	else
		munmap(stack, SBX_VM_STACK);
}

static pid_t spawn_vm(struct clone_args *ca, const struct sbx_plan *plan, const int close_fds[3])
{
	struct vm_start st = {.plan = plan};
	sigset_t all, old;
	bool cached;
	void *stack;
	long pid;

	for (int i = 0; i < 3; i++)
		st.close_fds[i] = close_fds[i];
	stack = vm_stack_get(&cached);
	if (!stack)
		return -errno;
	ca->flags |= CLONE_VM | CLONE_VFORK;
	ca->stack = (uint64_t)(uintptr_t)stack;
	ca->stack_size = SBX_VM_STACK;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = sbx_clone3_vm(ca, sizeof(*ca), child_vm_entry, &st);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	vm_stack_put(stack, cached);
	ca->flags &= ~(uint64_t)(CLONE_VM | CLONE_VFORK);
	ca->stack = ca->stack_size = 0;
	return (pid_t)pid;
}

/* Opens the cgroup.procs files the CLONE_VM child writes itself into (see child_main). */
static int open_cg_join(const struct sbx_cgroup *cg, bool v2_too, struct sbx_plan *p)
{
	size_t n = 0;
	char path[SBX_PATH_MAX + 16];

	for (unsigned i = 0; i < 4; i++) {
		const char *dir = i < 3 ? cg->v1_path[i] : v2_too ? cg->v2_path : "";
		int fd;
		if (!dir[0])
			continue;
		snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		p->cg_join_fd[n++] = fd;
	}
	return 0;
}

static void close_cg_join(struct sbx_plan *p)
{
	for (size_t i = 0; i < ELEMENTSOF(p->cg_join_fd); i++)
		if (p->cg_join_fd[i] >= 0)
			close(TAKE_FD(p->cg_join_fd[i]));
}
#endif

static atomic_uint sbx_session_counter;

static int recv_fd(int sock)
{
	char data;
	struct iovec iov = {.iov_base = &data, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = u.buf,
	                     .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1)
		return -EPROTO;
	cm = CMSG_FIRSTHDR(&msg);
	if (data == 'B' && !cm)
		return -EBUSY; /* nested session: no listener (see sbx_seccomp_apply) */
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/*
 * Moves a pair of fds above 0..2: a daemon started with stdio closed would otherwise get its
 * setup pipes there, and the child's stdio dup2() would clobber them.
 */
static int above_stdio(int fds[2])
{
	for (int i = 0; i < 2; i++) {
		int n;
		if (fds[i] < 0 || fds[i] > 2)
			continue;
		n = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
		if (n < 0)
			return -1;
		close(fds[i]);
		fds[i] = n;
	}
	return 0;
}

static void reap(pid_t pid, int pidfd)
{
	if (pidfd >= 0)
		(void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	else
		(void)kill(pid, SIGKILL);
	while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
		;
}

static void child_layers(struct sbx_child *ch, const struct sbx_compiled *c,
                         const struct sbx_plan *p)
{
	for (size_t i = 0; i < c->nlayers && ch->nlayers < ELEMENTSOF(ch->layers); i++) {
		/* what this session could not have is not listed as enforced (it is listed
		 * below with the reason) */
		if (ch->cgroup_lost && util_startswith(c->layers[i], "cgroup:"))
			continue;
		if (ch->notify_nested && strcmp(c->layers[i], "seccomp:notify") == 0)
			continue;
		ch->layers[ch->nlayers++] = c->layers[i];
	}
	if (p->ntcp_connect || p->ntcp_bind)
		ch->layers[ch->nlayers++] = "landlock:tcp-ports";
	if (!p->change_ids)
		ch->layers[ch->nlayers++] = "creds:unprivileged-caller";
	if (ch->cgroup_lost)
		ch->layers[ch->nlayers++] = "cgroup:none (session cgroup could not be created)";
	if (ch->notify_nested)
		ch->layers[ch->nlayers++] =
		        "seccomp:nested (no listener: denials return ENOSYS, unreported)";
}

int sbx_spawn(struct sbx *s, struct sbx_child **ret, struct sbx_error *err)
{
	struct sbx_error e = {0};
	struct sbx_plan plan = {0};
	struct sbx_child *ch = NULL;
	const struct sbx_compiled *c;
	int err_pipe[2] = {-1, -1}, sync_pipe[2] = {-1, -1}, sock[2] = {-1, -1};
	int pidfd = -1;
	pid_t pid = -1;
	char default_name[64];
	int r;

	for (size_t i = 0; i < ELEMENTSOF(plan.cg_join_fd); i++)
		plan.cg_join_fd[i] = -1; /* before any exit: the out path closes them */
	if (!s || !ret || !s->compiled || !s->argv) {
		set_error(&e, "prepare", EINVAL, "profile and argv are required");
		r = -EINVAL;
		goto out;
	}
	c = s->compiled;
	ch = calloc(1, sizeof(*ch));
	if (!ch) {
		set_error(&e, "prepare", ENOMEM, "child");
		r = -ENOMEM;
		goto out;
	}
	ch->pidfd = ch->notify_fd = -1;
	ch->cg.v2_fd = -1;
	r = build_plan(s, &plan, &e);
	if (r < 0)
		goto out;

	/* cgroups before the child exists, so it is born inside them */
	if (c->features.cgroup_v2 || c->cg_v1) {
		snprintf(default_name, sizeof(default_name), "sbx-%d-%u", (int)getpid(),
		         atomic_fetch_add(&sbx_session_counter, 1));
		r = sbx_cgroup_create(c, s->cg_parent ? s->cg_parent : "corral",
		                      s->cg_name ? s->cg_name : default_name, &ch->cg, &e);
		if (r < 0) {
			char msg[sizeof(e.message)];
			sbx_str_copy(msg, sizeof(msg), e.message);
			/* limits requested: a missing cgroup would fail open; else only the
			 * session cgroup (kill, BPF attach point) is lost, which is reported */
			if ((c->cg_v1 || c->cg_v2) && !c->degrade_resources) {
				set_error(&e, "cgroup", -r, "%s", msg);
				goto out;
			}
			ch->cgroup_lost = true;
			r = 0;
		} else {
			ch->has_cgroup = true;
		}
	}

	bool into_cgroup = ch->has_cgroup && ch->cg.v2_fd >= 0 && c->features.clone_into_cgroup;
	bool need_sync = c->namespaces || (ch->has_cgroup &&
	                                   (ch->cg.v1_ctrl || (ch->cg.v2_path[0] && !into_cgroup)));
	/* CLONE_VM unless the parent must act while the child waits (id maps); cgroups the
	 * child cannot be born into it joins itself */
	bool use_vm = SBX_HAVE_CLONE_VM && !c->namespaces;
	if (use_vm)
		need_sync = false;
	if (pipe2(err_pipe, O_CLOEXEC) < 0 || (need_sync && pipe2(sync_pipe, O_CLOEXEC) < 0) ||
	    (c->seccomp_notify &&
	     socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sock) < 0) ||
	    above_stdio(err_pipe) < 0 || above_stdio(sync_pipe) < 0 || above_stdio(sock) < 0) {
		r = -errno;
		set_error(&e, "prepare", errno, "pipes");
		goto out;
	}
	plan.err_fd = err_pipe[1];
	plan.sync_fd = sync_pipe[0];
	plan.notify_sock = sock[1];

	struct clone_args ca = {
	        .flags = CLONE_PIDFD,
	        .pidfd = (uint64_t)(uintptr_t)&pidfd,
	        .exit_signal = SIGCHLD,
	};
	if (into_cgroup) {
		/* born inside the session cgroup: no window where it runs outside */
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)ch->cg.v2_fd;
	}
	if (c->namespaces)
		ca.flags |=
		        CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
#if SBX_HAVE_CLONE_VM
	if (use_vm) {
		const int parent_ends[3] = {err_pipe[0], -1, sock[0]};
		if (ch->has_cgroup &&
		    (r = open_cg_join(&ch->cg, ch->cg.v2_path[0] && !into_cgroup, &plan)) < 0) {
			set_error(&e, "cgroup", -r, "opening cgroup.procs");
			goto out;
		}
		pid = spawn_vm(&ca, &plan, parent_ends);
		close_cg_join(&plan);
		if (pid >= 0)
			goto started;
		if (pid != -ENOSYS) {
			r = pid;
			pid = -1;
			set_error(&e, "clone3", -r, "%s",
			          (ca.flags & CLONE_INTO_CGROUP) ? "into session cgroup" : "");
			goto out;
		}
		/* clone3 refused (inside another session): the copying path below, which
		 * falls back to clone and releases the child once it is in its cgroups */
		use_vm = false;
		need_sync = ch->has_cgroup && (ch->cg.v1_ctrl || ch->cg.v2_path[0]);
		if (need_sync) {
			if (pipe2(sync_pipe, O_CLOEXEC) < 0 || above_stdio(sync_pipe) < 0) {
				r = -errno;
				set_error(&e, "prepare", errno, "pipes");
				goto out;
			}
			plan.sync_fd = sync_pipe[0];
		}
	}
#endif
	pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid < 0 && errno == ENOSYS &&
	    !(ca.flags & ~(uint64_t)(CLONE_PIDFD | CLONE_INTO_CGROUP))) {
		/* Inside another corral session (whose baseline answers clone3 with ENOSYS) or
		 * on a pre-5.3 kernel: plain clone, then join the v2 cgroup through cgroup.procs
		 * before releasing the child, like v1. */
		ca.flags &= ~(uint64_t)CLONE_INTO_CGROUP;
		into_cgroup = false;
		if (!need_sync && ch->has_cgroup) {
			if (pipe2(sync_pipe, O_CLOEXEC) < 0 || above_stdio(sync_pipe) < 0) {
				r = -errno;
				set_error(&e, "prepare", errno, "pipes");
				goto out;
			}
			plan.sync_fd = sync_pipe[0];
			need_sync = true;
		}
		pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, NULL, &pidfd, NULL, 0);
	}
	if (pid < 0) {
		r = -errno;
		set_error(&e, "clone3", errno, "%s",
		          (ca.flags & CLONE_INTO_CGROUP) ? "into session cgroup" : "");
		goto out;
	}
	if (pid == 0) {
		close(err_pipe[0]);
		if (sync_pipe[1] >= 0)
			close(sync_pipe[1]);
		if (sock[0] >= 0)
			close(sock[0]);
		child_main(&plan);
	}
#if SBX_HAVE_CLONE_VM
started:
#endif
	ch->pid = pid;
	ch->pidfd = pidfd;
	close(TAKE_FD(err_pipe[1]));
	if (sync_pipe[0] >= 0)
		close(TAKE_FD(sync_pipe[0]));
	if (sock[1] >= 0)
		close(TAKE_FD(sock[1]));

	/* v1 controllers cannot be entered at clone time (nor v2 on kernels without
	 * CLONE_INTO_CGROUP): join them before releasing the child (the CLONE_VM child
	 * has joined them itself) */
	if (ch->has_cgroup && !use_vm &&
	    (r = sbx_cgroup_attach(&ch->cg, pid, !(ca.flags & CLONE_INTO_CGROUP))) < 0) {
		set_error(&e, "cgroup", -r, "joining v1 cgroups");
		goto out;
	}
	if (c->namespaces && (r = sbx_ns_write_maps(pid, &plan)) < 0) {
		set_error(&e, "userns", -r, "writing id maps");
		goto out;
	}
	if (need_sync) {
		if (write(sync_pipe[1], "g", 1) != 1) {
			r = -errno;
			set_error(&e, "prepare", errno, "releasing the child");
			goto out;
		}
		close(TAKE_FD(sync_pipe[1]));
	}

	/* EOF: exec succeeded (CLOEXEC closed the child's end). Data: the step that failed. */
	struct sbx_child_report rep;
	ssize_t n;
	do
		n = read(err_pipe[0], &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	if (n != 0) {
		if (n == (ssize_t)sizeof(rep)) {
			rep.step[sizeof(rep.step) - 1] = '\0';
			rep.detail[sizeof(rep.detail) - 1] = '\0';
			set_error(&e, rep.step, rep.error > 0 ? rep.error : EPROTO, "%s",
			          rep.detail);
		} else {
			set_error(&e, "prepare", EPROTO, "short report from the child");
		}
		r = -e.error;
		goto out;
	}
	if (c->seccomp_notify) {
		int fd = recv_fd(sock[0]);
		if (fd == -EBUSY) {
			ch->notify_nested = true;
			fd = -1;
		} else if (fd < 0) {
			r = fd;
			set_error(&e, "seccomp", -r, "notify fd not received");
			goto out;
		}
		ch->notify_fd = fd;
		ch->notify_continue = c->seccomp_notify_continue;
	}
	child_layers(ch, c, &plan);
	*ret = TAKE_PTR(ch);
	r = 0;
out:
	if (r < 0 && ch) {
		if (pid > 0)
			reap(pid, pidfd);
		if (pidfd >= 0)
			close(pidfd);
		if (ch->has_cgroup)
			sbx_cgroup_destroy(&ch->cg);
		free(ch);
	}
	if (r < 0 && err)
		*err = e;
	for (int i = 0; i < 2; i++) {
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
		if (sync_pipe[i] >= 0)
			close(sync_pipe[i]);
		if (sock[i] >= 0)
			close(sock[i]);
	}
#if SBX_HAVE_CLONE_VM
	close_cg_join(&plan);
#endif
	plan_free(&plan);
	return r;
}

/* ---- running session ------------------------------------------------------------------------- */

pid_t sbx_child_pid(const struct sbx_child *c)
{
	return c->pid;
}

int sbx_child_pidfd(const struct sbx_child *c)
{
	return c->pidfd;
}

int sbx_child_notify_fd(const struct sbx_child *c)
{
	return c->notify_fd;
}

int sbx_child_cgroup_fd(const struct sbx_child *c)
{
	return c->has_cgroup ? c->cg.v2_fd : -1;
}

const char *const *sbx_enforced_layers(const struct sbx_child *c, size_t *ret_n)
{
	*ret_n = c->nlayers;
	return c->layers;
}

int sbx_child_notify_handle(struct sbx_child *c, sbx_notify_fn cb, void *userdata)
{
	if (c->notify_fd < 0)
		return -EBADF;
	return sbx_notify_handle(c->notify_fd, c->notify_continue, cb, userdata);
}

int sbx_child_signal(struct sbx_child *c, int sig)
{
	if (c->reaped)
		return -ESRCH;
	return syscall(SYS_pidfd_send_signal, c->pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

int sbx_child_kill(struct sbx_child *c)
{
	int r = -ESRCH;

	if (c->reaped)
		return -ESRCH;
	if (c->has_cgroup)
		r = sbx_cgroup_kill(&c->cg);
	if (r < 0) {
		/* no cgroup: the session's process group (setsid made it one) */
		(void)kill(-c->pid, SIGKILL);
		r = syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0) < 0 ? -errno : 0;
	}
	return r;
}

int sbx_child_wait(struct sbx_child *c, struct sbx_result *ret)
{
	struct sbx_result res = {0};
	struct rusage ru = {0};
	int status = 0;
	pid_t w;

	if (c->reaped)
		return -ECHILD;
	do
		w = wait4(c->pid, &status, __WALL, &ru);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	c->reaped = true;
	if (WIFEXITED(status)) {
		res.exit_code = WEXITSTATUS(status);
	} else if (WIFSIGNALED(status)) {
		res.signal = WTERMSIG(status);
		res.core_dumped = WCOREDUMP(status);
	}
	res.cpu_usec = (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec +
	               (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
	if (c->has_cgroup) {
		/* descendants left behind by the first process do not outlive the session */
		(void)sbx_cgroup_kill(&c->cg);
		sbx_cgroup_stats(&c->cg, &res); /* the rmdir waits for sbx_child_free */
	} else {
		(void)kill(-c->pid, SIGKILL);
	}
	if (ret)
		*ret = res;
	return 0;
}

void sbx_child_free(struct sbx_child *c)
{
	if (!c)
		return;
	if (!c->reaped) {
		(void)sbx_child_kill(c);
		(void)sbx_child_wait(c, NULL);
	}
	if (c->has_cgroup)
		sbx_cgroup_destroy(&c->cg);
	if (c->pidfd >= 0)
		close(c->pidfd);
	if (c->notify_fd >= 0)
		close(c->notify_fd);
	free(c);
}
