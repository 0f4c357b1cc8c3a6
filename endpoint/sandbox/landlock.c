/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Landlock: filesystem rules (read/write/execute sets with ${HOME}, ${WORKDIR}, ${TMP}), deny
 * carve-outs, scoped signals and abstract Unix sockets, optional TCP port rules.
 *
 * Three stages, matching the engine's split of work:
 *  - compile (once per profile): the ABI decides which rights are handled; templates are
 *    validated; missing rights are refused or degraded as the policy says.
 *  - plan (parent, per session): templates are expanded and deny carve-outs are resolved.
 *    Landlock only grants, so a carve-out is made by granting the allowed tree's children
 *    except the denied ones: walk from the allowed root down to each denied path, granting
 *    every sibling entry and nothing on the directories along the way. Symlinks are never
 *    granted (following one is checked against its target's own rules anyway).
 *  - apply (child): open each planned path O_PATH (the part after a session variable with
 *    RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH, so a symlink planted in the user's tree by an earlier
 *    session cannot redirect a grant), add the rules, restrict_self. A path that vanished or
 *    turned into a symlink since the plan is skipped: fail closed.
 */
#include <dirent.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "sbx_internal.h"

#define SBX_RULES_MAX      65536
#define SBX_WALK_DEPTH_MAX 64

#define FS_READ            (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_FILE_ONLY                                                  \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
	 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
	 LANDLOCK_ACCESS_FS_IOCTL_DEV)

uint64_t sbx_landlock_fs_rights(int abi)
{
	uint64_t r;

	if (abi < 1)
		return 0;
	r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */
	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return r;
}

/* Returns 1..3 for a leading ${HOME}/${WORKDIR}/${TMP} (rest after it in *ret_rest), 0 for
 * none, -EINVAL for another variable. */
int sbx_path_var(const char *t, const char **ret_rest)
{
	static const char *const vars[] = {"${HOME}", "${WORKDIR}", "${TMP}"};

	*ret_rest = t;
	if (t[0] != '$')
		return 0;
	for (size_t i = 0; i < ELEMENTSOF(vars); i++)
		if (strncmp(t, vars[i], strlen(vars[i])) == 0) {
			*ret_rest = t + strlen(vars[i]);
			return (int)i + 1;
		}
	return -EINVAL;
}

/* Templates: absolute, or starting with exactly one session variable; no "." / ".." parts. */
static int check_template(const char *t)
{
	const char *rest = t;

	if (sbx_path_var(t, &rest) < 0)
		return -EINVAL;
	if (rest == t && t[0] != '/')
		return -EINVAL;
	if (rest[0] && rest[0] != '/')
		return -EINVAL;
	if (strstr(rest, "$"))
		return -EINVAL;
	for (const char *c = rest; *c;) {
		const char *seg = c + 1, *end = strchr(seg, '/');
		size_t n = end ? (size_t)(end - seg) : strlen(seg);
		if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return -EINVAL;
		if (!end)
			break;
		c = end;
	}
	return 0;
}

/* Normalizes a path in place: collapses "//", drops a trailing "/". */
static void normalize(char *p)
{
	char *w = p;

	for (const char *r = p; *r; r++) {
		if (*r == '/' && w > p && w[-1] == '/')
			continue;
		*w++ = *r;
	}
	*w = '\0';
	if (w - p > 1 && w[-1] == '/')
		w[-1] = '\0';
}

int sbx_expand(const char *tmpl, const char *home, const char *workdir, const char *tmp, char **ret,
               size_t *ret_follow_len)
{
	const char *rest, *base = "";
	int v = sbx_path_var(tmpl, &rest);
	size_t follow;
	char *out;

	if (v < 0)
		return -EINVAL;
	if (v > 0) {
		base = v == 1 ? home : v == 2 ? workdir : tmp;
		if (!base)
			return -ENOENT; /* variable not set for this session */
	}
	if (strlen(base) + strlen(rest) + 1 > SBX_PATH_MAX)
		return -ENAMETOOLONG;
	out = malloc(strlen(base) + strlen(rest) + 2);
	if (!out)
		return -ENOMEM;
	memcpy(out, base, strlen(base));
	memcpy(out + strlen(base), rest, strlen(rest) + 1);
	normalize(out);
	if (out[0] != '/') {
		free(out);
		return -EINVAL;
	}
	follow = v > 0 ? strlen(base) : strlen(out);
	if (follow > strlen(out))
		follow = strlen(out);
	*ret = out;
	*ret_follow_len = follow;
	return 0;
}

static int add_templates(struct sbx_compiled *c, char **list, size_t n, enum sbx_access_kind kind,
                         char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		struct sbx_path_tmpl *t;

		if (check_template(list[i]) < 0) {
			snprintf(err, errlen,
			         "filesystem path \"%s\" is not absolute or uses an "
			         "unknown variable or . / ..",
			         list[i]);
			return -EINVAL;
		}
		t = realloc(c->paths, (c->npaths + 1) * sizeof(*c->paths));
		if (!t)
			return -ENOMEM;
		c->paths = t;
		c->paths[c->npaths].text = strdup(list[i]);
		if (!c->paths[c->npaths].text)
			return -ENOMEM;
		c->paths[c->npaths++].kind = kind;
	}
	return 0;
}

int sbx_landlock_compile(struct sbx_compiled *c, const Corral__Profile *p,
                         const struct sbx_features *f, char *err, size_t errlen)
{
	const Corral__FilesystemRules *fs = p->filesystem;
	bool partial = p->degrade && p->degrade->landlock_partial;
	uint64_t write;
	int r;

	if (p->requires && p->requires->landlock_abi > (uint32_t)f->landlock_abi) {
		snprintf(err, errlen, "profile requires Landlock ABI %u, host has %d",
		         p->requires->landlock_abi, f->landlock_abi);
		return -ENOTSUP;
	}
	if (c->audit) {
		/* Landlock (up to ABI 7) has no allow-but-log mode: in audit mode it would
		 * deny, so it is skipped and the layers say so. */
		return sbx_compiled_add_layer(c, true,
		                              "landlock (skipped: audit mode, no "
		                              "allow-but-log in Landlock)");
	}
	if (f->landlock_abi < 1) {
		snprintf(err, errlen,
		         "Landlock is unavailable on this host (filesystem rules "
		         "cannot be enforced)");
		return -ENOTSUP;
	}
	/* Rights newer than the host's ABI: refused unless the policy allows partial. */
	if (f->landlock_abi < 6) {
		const char *what = f->landlock_abi < 2   ? "refer"
		                   : f->landlock_abi < 3 ? "truncate"
		                   : f->landlock_abi < 5 ? "ioctl_dev"
		                                         : "scoped signals/abstract sockets";
		if (!partial) {
			snprintf(err, errlen,
			         "Landlock ABI %d lacks %s (needs ABI 6); the policy "
			         "does not allow degrade.landlock_partial",
			         f->landlock_abi, what);
			return -ENOTSUP;
		}
		r = sbx_compiled_add_layer(c, true, "landlock:partial (abi%d lacks %s)",
		                           f->landlock_abi, what);
		if (r < 0)
			return r;
	}
	c->landlock_abi = f->landlock_abi;
	c->ll_handled_fs = sbx_landlock_fs_rights(f->landlock_abi);
	c->ll_read = FS_READ;
	c->ll_exec = FS_READ | LANDLOCK_ACCESS_FS_EXECUTE;
	/* Device nodes are never created (MAKE_CHAR/MAKE_BLOCK handled, never granted). */
	write = FS_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
	        LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |
	        LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
	        LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM |
	        LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE |
	        LANDLOCK_ACCESS_FS_IOCTL_DEV;
	c->ll_write = write & c->ll_handled_fs;
	if (f->landlock_abi >= 6)
		c->ll_scoped = CORRAL_LL_SCOPE_ABSTRACT_UNIX_SOCKET | CORRAL_LL_SCOPE_SIGNAL;
	if (fs) {
		if ((r = add_templates(c, fs->read, fs->n_read, SBX_ACCESS_READ, err, errlen)) <
		            0 ||
		    (r = add_templates(c, fs->write, fs->n_write, SBX_ACCESS_WRITE, err, errlen)) <
		            0 ||
		    (r = add_templates(c, fs->execute, fs->n_execute, SBX_ACCESS_EXEC, err,
		                       errlen)) < 0)
			return r;
		for (size_t i = 0; i < fs->n_deny; i++) {
			char **d;
			if (check_template(fs->deny[i]) < 0) {
				snprintf(err, errlen,
				         "deny path \"%s\" is not absolute or uses an "
				         "unknown variable or . / ..",
				         fs->deny[i]);
				return -EINVAL;
			}
			d = realloc(c->deny, (c->ndeny + 1) * sizeof(*d));
			if (!d)
				return -ENOMEM;
			c->deny = d;
			if (!(c->deny[c->ndeny] = strdup(fs->deny[i])))
				return -ENOMEM;
			c->ndeny++;
		}
	}
	if ((r = sbx_compiled_add_layer(c, false, "landlock:abi%d", f->landlock_abi)) < 0)
		return r;
	if (c->ll_scoped &&
	    (r = sbx_compiled_add_layer(c, false, "landlock:scope:signal,abstract-unix")) < 0)
		return r;
	return 0;
}

/* true when `p` is `root` or lies beneath it. */
static bool path_inside(const char *p, const char *root)
{
	size_t n = strlen(root);

	if (strcmp(root, "/") == 0)
		return true;
	return strncmp(p, root, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

static int plan_add_rule(struct sbx_plan *plan, const char *path, size_t follow_len,
                         uint64_t access)
{
	struct sbx_ll_rule *r;

	if (plan->nrules >= SBX_RULES_MAX)
		return -E2BIG;
	if (plan->nrules == plan->rules_cap) {
		size_t cap = plan->rules_cap ? plan->rules_cap * 2 : 32;
		r = realloc(plan->rules, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		plan->rules = r;
		plan->rules_cap = cap;
	}
	r = &plan->rules[plan->nrules];
	r->path = strdup(path);
	if (!r->path)
		return -ENOMEM;
	r->follow_len = follow_len;
	r->access = access;
	plan->nrules++;
	return 0;
}

/*
 * Grants `path` unless a denied path lies at or beneath it; then grants each entry of `path`
 * that holds no denied path and recurses into those that do. Directories on the way to a
 * denied path get no rule of their own (a rule on them would cover the denied path too).
 */
static int grant(struct sbx_plan *plan, const char *path, size_t follow_len, uint64_t access,
                 char **deny, size_t ndeny, unsigned depth)
{
	_cleanup_close_ int dfd = -1;
	DIR *dir;
	struct dirent *de;
	bool any = false;
	int r = 0;

	for (size_t i = 0; i < ndeny; i++) {
		if (strcmp(deny[i], path) == 0 || path_inside(path, deny[i]))
			return 0; /* the whole tree is denied */
		if (path_inside(deny[i], path))
			any = true;
	}
	if (!any)
		return plan_add_rule(plan, path, follow_len, access);
	if (depth >= SBX_WALK_DEPTH_MAX)
		return -ELOOP;
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT || errno == EACCES || errno == ENOTDIR ? 0 : -errno;
	dir = fdopendir(dfd);
	if (!dir)
		return -errno;
	dfd = -1; /* owned by dir now */
	while ((de = readdir(dir))) {
		char child[SBX_PATH_MAX];
		struct stat st;
		bool holds = false, is_denied = false;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(child, sizeof(child), "%s/%s",
		                     strcmp(path, "/") == 0 ? "" : path,
		                     de->d_name) >= sizeof(child)) {
			r = -ENAMETOOLONG;
			break;
		}
		if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISLNK(st.st_mode))
			continue; /* never grant a symlink; its target has its own rules */
		for (size_t i = 0; i < ndeny; i++) {
			if (strcmp(deny[i], child) == 0)
				is_denied = true;
			else if (path_inside(deny[i], child))
				holds = true;
		}
		if (is_denied)
			continue;
		if (holds && S_ISDIR(st.st_mode))
			r = grant(plan, child, follow_len, access, deny, ndeny, depth + 1);
		else
			r = plan_add_rule(plan, child, follow_len, access);
		if (r < 0)
			break;
	}
	closedir(dir);
	return r;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int strv_push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	if (!(nv[*n] = strdup(s)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

/*
 * true when `path` lies in the execute set. The namespace tier mounts writable paths noexec
 * otherwise: Landlock's EXECUTE right governs execve, not mmap(PROT_EXEC), so without noexec a
 * file written there could still be run through ld.so.
 */
static bool covered_by_exec(const struct sbx_compiled *c, const char *path, const char *home,
                            const char *workdir, const char *tmp)
{
	for (size_t i = 0; i < c->npaths; i++) {
		char *e = NULL;
		size_t fl;
		bool in;

		if (c->paths[i].kind != SBX_ACCESS_EXEC ||
		    sbx_expand(c->paths[i].text, home, workdir, tmp, &e, &fl) < 0)
			continue;
		in = path_inside(path, e);
		free(e);
		if (in)
			return true;
	}
	return false;
}

static int rule_cmp(const void *a, const void *b)
{
	const struct sbx_ll_rule *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	if (c)
		return c;
	return x->follow_len < y->follow_len ? -1 : x->follow_len > y->follow_len;
}

/*
 * One rule per path: the read, write and execute sets often name the same path (/usr to read
 * and to execute, ${WORKDIR} to read and to write), and each rule costs the child an open, a
 * stat and a landlock_add_rule. The kernel ORs the rights of rules on the same object anyway,
 * so merging them changes nothing but the cost. Same path and same follow_len only: a
 * different follow_len may resolve to another object.
 */
static void merge_rules(struct sbx_plan *plan)
{
	size_t n = 0;

	if (plan->nrules < 2)
		return;
	qsort(plan->rules, plan->nrules, sizeof(*plan->rules), rule_cmp);
	for (size_t i = 1; i < plan->nrules; i++) {
		struct sbx_ll_rule *last = &plan->rules[n], *r = &plan->rules[i];
		if (strcmp(last->path, r->path) == 0 && last->follow_len == r->follow_len) {
			last->access |= r->access;
			free(r->path);
			continue;
		}
		plan->rules[++n] = *r;
	}
	plan->nrules = n + 1;
}

int sbx_landlock_plan(struct sbx_plan *plan, const char *home, const char *workdir, const char *tmp,
                      struct sbx_error *err)
{
	const struct sbx_compiled *c = plan->c;
	char **deny = NULL;
	size_t ndeny = 0;
	int r = 0;

	/* Deny paths are planned even without Landlock: the namespace tier masks them. */
	for (size_t i = 0; i < c->ndeny; i++) {
		char *d = NULL;
		size_t fl;
		r = sbx_expand(c->deny[i], home, workdir, tmp, &d, &fl);
		if (r == -ENOENT) {
			r = 0; /* variable unset: nothing to carve out of */
			continue;
		}
		if (r < 0)
			goto out;
		r = strv_push(&deny, &ndeny, d);
		if (r >= 0 && c->namespaces)
			r = strv_push(&plan->mounts.masked, &plan->mounts.nmasked, d);
		free(d);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < c->npaths; i++) {
		const struct sbx_path_tmpl *t = &c->paths[i];
		uint64_t access = t->kind == SBX_ACCESS_READ    ? c->ll_read
		                  : t->kind == SBX_ACCESS_WRITE ? c->ll_write
		                                                : c->ll_exec;
		char *path = NULL;
		size_t follow_len;

		r = sbx_expand(t->text, home, workdir, tmp, &path, &follow_len);
		if (r == -ENOENT) {
			r = 0; /* e.g. ${TMP} not given: that root simply is not granted */
			continue;
		}
		if (r < 0) {
			snprintf(err->message, sizeof(err->message), "expanding \"%s\"", t->text);
			goto out;
		}
		if (c->namespaces && t->kind == SBX_ACCESS_WRITE) {
			bool *e = realloc(plan->mounts.writable_exec,
			                  (plan->mounts.nwritable + 1) * sizeof(*e));
			if (!e)
				r = -ENOMEM;
			else {
				plan->mounts.writable_exec = e;
				e[plan->mounts.nwritable] =
				        covered_by_exec(c, path, home, workdir, tmp);
				r = strv_push(&plan->mounts.writable, &plan->mounts.nwritable,
				              path);
			}
		}
		if (r >= 0 && c->landlock_abi > 0)
			r = grant(plan, path, follow_len, access, deny, ndeny, 0);
		if (r < 0)
			snprintf(err->message, sizeof(err->message), "planning rules for %s", path);
		free(path);
		if (r < 0)
			goto out;
	}
	merge_rules(plan);
out:
	free_strv(deny, ndeny);
	return r;
}

/* ---- child side: system calls only ------------------------------------------------------- */

static int open_rule_path(const struct sbx_ll_rule *rule)
{
	char prefix[SBX_PATH_MAX];
	struct open_how how = {
	        .flags = O_PATH | O_CLOEXEC,
	        .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH,
	};
	const char *rest;
	int pfd, fd, saved;

	if (rule->path[rule->follow_len] == '\0')
		return open(rule->path, O_PATH | O_CLOEXEC);
	if (rule->follow_len >= sizeof(prefix))
		return -1;
	memcpy(prefix, rule->path, rule->follow_len);
	prefix[rule->follow_len] = '\0';
	pfd = open(rule->follow_len ? prefix : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return -1;
	rest = rule->path + rule->follow_len;
	while (*rest == '/')
		rest++;
	fd = (int)syscall(SYS_openat2, pfd, rest, &how, sizeof(how));
	saved = errno;
	close(pfd);
	errno = saved;
	return fd;
}

void sbx_landlock_apply(const struct sbx_plan *p)
{
	const struct sbx_compiled *c = p->c;
	struct corral_ll_ruleset_attr attr = {
	        .handled_access_fs = c->ll_handled_fs,
	        .scoped = c->ll_scoped,
	};
	size_t attr_size = sizeof(uint64_t);
	int rfd;

	if (c->landlock_abi < 1)
		return;
	if (p->ntcp_connect || p->ntcp_bind)
		attr.handled_access_net =
		        LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
	if (c->landlock_abi >= 4)
		attr_size = 2 * sizeof(uint64_t);
	if (c->landlock_abi >= 6)
		attr_size = sizeof(attr);
	rfd = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (rfd < 0)
		sbx_child_fail(p, "landlock", errno, "create_ruleset");
	for (size_t i = 0; i < p->nrules; i++) {
		const struct sbx_ll_rule *rule = &p->rules[i];
		struct landlock_path_beneath_attr pb = {0};
		struct stat st;
		int fd = open_rule_path(rule);

		if (fd < 0) {
			/* gone, inaccessible to this user, or now a symlink: not granted */
			if (errno == ENOENT || errno == EACCES || errno == ELOOP ||
			    errno == ENOTDIR || errno == EXDEV)
				continue;
			sbx_child_fail(p, "landlock", errno, rule->path);
		}
		if (fstat(fd, &st) < 0)
			sbx_child_fail(p, "landlock", errno, rule->path);
		pb.allowed_access = rule->access;
		if (!S_ISDIR(st.st_mode))
			pb.allowed_access &= FS_FILE_ONLY;
		pb.parent_fd = fd;
		if (syscall(SYS_landlock_add_rule, rfd, CORRAL_LL_RULE_PATH_BENEATH, &pb, 0) < 0)
			sbx_child_fail(p, "landlock", errno, rule->path);
		close(fd);
	}
	for (size_t i = 0; i < p->ntcp_connect + p->ntcp_bind; i++) {
		bool connect = i < p->ntcp_connect;
		struct corral_ll_net_port_attr np = {
		        .allowed_access = connect ? LANDLOCK_ACCESS_NET_CONNECT_TCP
		                                  : LANDLOCK_ACCESS_NET_BIND_TCP,
		        .port = connect ? p->tcp_connect[i] : p->tcp_bind[i - p->ntcp_connect],
		};
		if (syscall(SYS_landlock_add_rule, rfd, CORRAL_LL_RULE_NET_PORT, &np, 0) < 0)
			sbx_child_fail(p, "landlock", errno, "tcp port rule");
	}
	/* LOG_NEW_EXEC_ON: without it the kernel logs only denials of this pre-exec child (the
	 * executable that restricted itself), never the agent it is about to exec. */
	if (syscall(SYS_landlock_restrict_self, rfd,
	            p->landlock_audit ? CORRAL_LL_RESTRICT_SELF_LOG_NEW_EXEC_ON : 0) < 0)
		sbx_child_fail(p, "landlock", errno, "restrict_self");
	close(rfd);
}
