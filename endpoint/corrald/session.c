// SPDX-License-Identifier: Apache-2.0
/*
 * Agent sessions started by `corral run` (see session.h): the glue between a RunRequest, the
 * sandbox engine (sbx) and the per-profile network layer (enforce.c).
 *
 * Start, in this order:
 *   1. the policy and profile: no policy in force refuses (never unconfined); --profile must be
 *      the default or user-selectable;
 *   2. the caller: uid/gid from SO_PEERCRED, supplementary groups from SO_PEERGROUPS (both
 *      as they were at connect), HOME from the passwd entry;
 *   3. the compiled profile and its network layer (cached per policy version in enforce.c);
 *   4. the session variables: WORKDIR = the caller's cwd, checked against the caller's
 *      permission bits; TMP = /tmp/corral-<session id>, 0700, owned by the session user;
 *   5. with a terminal: a pty pair, the slave as the session's stdio (and, after setsid in
 *      the child, its controlling terminal), the master relayed here to the caller's fds;
 *   6. sbx_spawn; the session-start event is written before RunStarted is answered (the
 *      outbox comes first), and the exit event before RunExited.
 *
 * While it runs, the session's own epoll fd (cd_session_fd) covers the pidfd, the seccomp
 * notification fd and the terminal relay, so the daemon watches one descriptor per session.
 */
#include "session.h"
#include "tmppool.h"

#include "cleanup.h"
#include "enforce.h"
#include "fsaudit.h"
#include "ipc.h"
#include "sbx.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#define RELAY_BUF        16384u
#define TAG_PIDFD        1u
#define TAG_NOTIFY       2u
#define TAG_MASTER       3u
#define TAG_IN           4u
#define TAG_OUT          5u
#define VIOLATIONS_PER_S 50u /* per session; the rest are counted in `suppressed` */
#define RM_DEPTH_MAX     64
#define ARGV_MAX         4096u
#define ENV_MAX          4096u

struct relay_buf {
	char data[RELAY_BUF];
	size_t len, off;
};

struct watched {
	int fd;
	uint32_t events;
};

struct cd_session {
	int epfd;
	int client_sock; /* borrowed from the daemon */
	int (*emit)(void *userdata, Corral__Event *ev);
	void *userdata;
	struct cd_enforce *enforce;
	struct cd_enforce_profile *prof;
	struct cd_enforce_session tag;
	bool tagged;
	struct cd_fsaudit *fsaudit; /* borrowed; NULL = none */
	bool fs_registered;         /* the session's domain is mapped by fsaudit */
	char fs_layer[512];
	struct sbx *sbx;
	struct sbx_child *child;
	char id[33];
	char user[256];
	char profile[256];
	uid_t caller_uid;
	uint64_t version;
	bool audit;
	char tmp[64];
	bool have_tmp;
	struct cd_tmppool *tmp_pool; /* borrowed from the daemon; NULL without one */
	int stdio[3];                /* the caller's descriptors (owned) */
	uint64_t start_ms;
	bool ended;

	/* terminal relay (tty sessions) */
	int master, in_fd, out_fd;
	struct watched w_master, w_in, w_out;
	struct relay_buf to_pty, from_pty;
	bool in_eof, master_eof, out_dead;

	/* violation rate limit */
	uint64_t rl_window_ms;
	unsigned rl_count, rl_suppressed;
};

/* ---- replies and events ----------------------------------------------------------------- */

static int reply_failed(int sock, const char *step, int err, const char *message)
{
	Corral__RunFailed f = CORRAL__RUN_FAILED__INIT;
	f.step = (char *)step;
	f.err = err;
	f.message = (char *)message;
	Corral__IpcResponse resp = CORRAL__IPC_RESPONSE__INIT;
	resp.body_case = CORRAL__IPC_RESPONSE__BODY_RUN_FAILED;
	resp.run_failed = &f;
	int r = cd_ipc_send(sock, &resp.base, CD_IPC_FRAME_MAX, NULL, 0);
	return r < 0 ? r : 1;
}

static void event_header(const struct cd_session *s, Corral__Event *ev, Corral__EventKind kind)
{
	ev->kind = kind;
	ev->time_ms = util_now_ms();
	ev->session_id = (char *)s->id;
	ev->uid = (uint32_t)s->caller_uid;
	ev->user = (char *)s->user;
	ev->profile = (char *)s->profile;
	ev->policy_version = s->version;
}

static void emit_event(struct cd_session *s, Corral__Event *ev)
{
	if (s->emit)
		(void)s->emit(s->userdata, ev);
}

static bool has_layer(const char *const *layers, size_t n, const char *prefix)
{
	for (size_t i = 0; i < n; i++)
		if (util_startswith(layers[i], prefix))
			return true;
	return false;
}

/* Layers of this session: the engine's plus the network layer. `out` holds n + 1 pointers. */
static size_t session_layers(const struct cd_session *s, const char **out, size_t max)
{
	size_t n = 0, k = 0;
	const char *const *l = sbx_enforced_layers(s->child, &n);
	for (size_t i = 0; i < n && k + 1 < max; i++)
		out[k++] = l[i];
	if (k < max)
		out[k++] = cd_enforce_profile_net_layer(s->prof);
	if (k < max && s->fs_layer[0])
		out[k++] = s->fs_layer;
	return k;
}

static void emit_start(struct cd_session *s, const Corral__Profile *p,
                       const Corral__RunRequest *req, const char **layers, size_t n_layers)
{
	const struct sbx_features *f = cd_enforce_features(s->enforce);
	Corral__KernelFeatures requested = CORRAL__KERNEL_FEATURES__INIT;
	Corral__KernelFeatures enforced = CORRAL__KERNEL_FEATURES__INIT;
	if (p->requires) {
		requested.landlock_abi = p->requires->landlock_abi;
		requested.seccomp = p->requires->seccomp;
		requested.cgroup_controllers = p->requires->cgroup_controllers;
		requested.n_cgroup_controllers = p->requires->n_cgroup_controllers;
		requested.bpf_cgroup = p->requires->bpf_network;
		requested.user_namespaces = p->requires->user_namespaces;
	}
	enforced.landlock_abi =
	        has_layer(layers, n_layers, "landlock:abi") ? (uint32_t)f->landlock_abi : 0;
	enforced.seccomp = has_layer(layers, n_layers, "seccomp");
	enforced.seccomp_user_notify = sbx_child_notify_fd(s->child) >= 0;
	enforced.cgroup_v2 = sbx_child_cgroup_fd(s->child) >= 0;
	enforced.bpf_cgroup = has_layer(layers, n_layers, "net:bpf");
	enforced.user_namespaces = has_layer(layers, n_layers, "ns:user");
	/* "cgroup:v1:memory" -> "memory:v1", the form heartbeats use */
	char ctl_text[8][32], *ctl[8];
	size_t nctl = 0;
	for (size_t i = 0; i < n_layers && nctl < 8; i++)
		if (util_startswith(layers[i], "cgroup:v1:") ||
		    util_startswith(layers[i], "cgroup:v2:")) {
			snprintf(ctl_text[nctl], sizeof(ctl_text[nctl]), "%s:%.2s",
			         layers[i] + strlen("cgroup:v1:"), layers[i] + strlen("cgroup:"));
			ctl[nctl] = ctl_text[nctl];
			nctl++;
			enforced.cgroup_v1_fallback |= util_startswith(layers[i], "cgroup:v1:");
		}
	enforced.cgroup_controllers = ctl;
	enforced.n_cgroup_controllers = nctl;

	Corral__SessionStart st = CORRAL__SESSION_START__INIT;
	st.argv = req->argv;
	st.n_argv = req->n_argv;
	st.cwd = req->cwd;
	st.requested = &requested;
	st.enforced = &enforced;
	st.layers = (char **)layers;
	st.n_layers = n_layers;
	st.mode = p->mode;
	Corral__Event ev = CORRAL__EVENT__INIT;
	event_header(s, &ev, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_START);
	ev.detail_case = CORRAL__EVENT__DETAIL_SESSION_START;
	ev.session_start = &st;
	emit_event(s, &ev);
}

/* seccomp user notification: one VIOLATION/SYSCALL event, rate-limited per session. */
static void on_syscall(const struct sbx_syscall_event *sev, void *userdata)
{
	struct cd_session *s = userdata;
	uint64_t now = util_monotonic_ms();
	if (now - s->rl_window_ms >= 1000) {
		s->rl_window_ms = now;
		s->rl_count = 0;
	}
	if (++s->rl_count > VIOLATIONS_PER_S) {
		s->rl_suppressed++;
		return;
	}
	char path[64], comm[32] = "", detail[256];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)sev->pid);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (util_read_file(path, 64, &buf, &len) == 0) {
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(comm, sizeof(comm), "%s", buf);
	}
	snprintf(detail, sizeof(detail),
	         "nr=%d args=0x%" PRIx64 ",0x%" PRIx64 ",0x%" PRIx64 ",0x%" PRIx64 ",0x%" PRIx64
	         ",0x%" PRIx64 "%s",
	         sev->nr, sev->args[0], sev->args[1], sev->args[2], sev->args[3], sev->args[4],
	         sev->args[5], sev->allowed ? " action=allowed(audit)" : " action=EPERM");
	Corral__Violation v = CORRAL__VIOLATION__INIT;
	v.kind = CORRAL__VIOLATION_KIND__VIOLATION_KIND_SYSCALL;
	v.pid = (uint32_t)sev->pid;
	v.comm = comm;
	v.target = (char *)sev->name;
	v.detail = detail;
	v.audit_only = sev->allowed;
	v.suppressed = s->rl_suppressed;
	s->rl_suppressed = 0;
	Corral__Event ev = CORRAL__EVENT__INIT;
	event_header(s, &ev, CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION);
	ev.detail_case = CORRAL__EVENT__DETAIL_VIOLATION;
	ev.violation = &v;
	emit_event(s, &ev);
}

/* ---- the caller ------------------------------------------------------------------------- */

/*
 * Supplementary groups the peer had when it connected: SO_PEERGROUPS, the same snapshot as
 * SO_PEERCRED's uid (no /proc read, no pid reuse to guard against). Returns how many, or
 * -E2BIG when the caller is in more than `max` (the session would lose some: refused, as the
 * engine refuses such a caller of its own), or -errno.
 */
static int caller_groups(int sock, gid_t *groups, size_t max)
{
	socklen_t len = (socklen_t)(max * sizeof(gid_t));
	if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return errno == ERANGE ? -E2BIG : -errno;
	return (int)(len / sizeof(gid_t));
}

/*
 * WORKDIR must be a directory the caller may enter and list by its permission bits (owner,
 * group incl. supplementary, other; no ACLs) — the session then gets Landlock rights there,
 * and DAC still applies to everything below. The child's chdir as the session user is the
 * second, authoritative check.
 */
static int check_workdir(const char *cwd, uid_t uid, gid_t gid, const gid_t *groups, size_t ng,
                         char *msg, size_t msglen)
{
	struct stat st;
	if (cwd[0] != '/') {
		snprintf(msg, msglen, "working directory \"%s\" is not absolute", cwd);
		return -EINVAL;
	}
	if (stat(cwd, &st) < 0) {
		int r = -errno;
		snprintf(msg, msglen, "working directory %s: %s", cwd, strerror(-r));
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(msg, msglen, "working directory %s is not a directory", cwd);
		return -ENOTDIR;
	}
	if (uid == 0)
		return 0;
	mode_t need;
	if (st.st_uid == uid) {
		need = S_IRUSR | S_IXUSR;
	} else {
		bool in_group = st.st_gid == gid;
		for (size_t i = 0; i < ng && !in_group; i++)
			in_group = groups[i] == st.st_gid;
		need = in_group ? S_IRGRP | S_IXGRP : S_IROTH | S_IXOTH;
	}
	if ((st.st_mode & need) != need) {
		snprintf(msg, msglen, "working directory %s: the caller may not enter it", cwd);
		return -EACCES;
	}
	return 0;
}

/* ---- per-session TMP -------------------------------------------------------------------- */

/* Removes everything below `dfd` without following symlinks (runs as root on a directory the
 * session user controlled). Deeper than RM_DEPTH_MAX is left behind. Closes `dfd`. */
static void rm_tree_at(int dfd, int depth)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0 || errno != EISDIR)
			continue;
		if (depth < RM_DEPTH_MAX) {
			int sub = openat(dirfd(d), de->d_name,
			                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				rm_tree_at(sub, depth + 1);
		}
		(void)unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

static void tmp_remove(struct cd_session *s)
{
	if (!s->have_tmp)
		return;
	/* An empty TMP goes back to the pool for a later session (see cd_tmppool_put for the
	 * checks): no rmdir now and no mkdir later. */
	if (s->tmp_pool && cd_tmppool_put(s->tmp_pool, s->tmp) == 0) {
		s->have_tmp = false;
		return;
	}
	/* Otherwise most sessions leave TMP empty: one rmdir then, no directory walk (on ext4 the
	 * readdir of even an empty directory was the largest part of the cleanup). rmdir never
	 * follows a symlink put in TMP's place. */
	if (rmdir(s->tmp) == 0) {
		s->have_tmp = false;
		return;
	}
	int fd = open(s->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		rm_tree_at(fd, 0);
	(void)rmdir(s->tmp);
	s->have_tmp = false;
}

static int tmp_create(struct cd_session *s, struct cd_tmppool *pool, uid_t uid, gid_t gid)
{
	/* A directory the pool made ahead of time: its random name becomes the session id
	 * (nothing has used the id yet) and it is checked before the session user gets it. */
	char id[sizeof(s->id)];
	if (cd_tmppool_take(pool, id)) {
		memcpy(s->id, id, sizeof(s->id));
		snprintf(s->tmp, sizeof(s->tmp), "%s/%s%s", CD_SESSION_TMP_DIR, CD_SESSION_TMP_NAME,
		         s->id);
		s->have_tmp = true;
		return cd_tmppool_claim(s->tmp, uid, gid);
	}
	snprintf(s->tmp, sizeof(s->tmp), "%s/%s%s", CD_SESSION_TMP_DIR, CD_SESSION_TMP_NAME, s->id);
	if (mkdir(s->tmp, 0700) < 0)
		return -errno; /* EEXIST too: the name is unguessable, so something is wrong */
	s->have_tmp = true;
	_cleanup_close_ int fd = open(s->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchown(fd, uid, gid) < 0 || fchmod(fd, 0700) < 0)
		return -errno;
	return 0;
}

/* The uid/gid the session runs as (run_as account or the caller) for owning TMP and the pty. */
static int session_ids(const Corral__Profile *p, uid_t uid, gid_t gid, uid_t *ret_uid,
                       gid_t *ret_gid)
{
	if (p->process && p->process->run_as && *p->process->run_as) {
		struct passwd pw, *res = NULL;
		char buf[4096];
		int r = getpwnam_r(p->process->run_as, &pw, buf, sizeof(buf), &res);
		if (r != 0 || !res)
			return r ? -r : -ENOENT;
		*ret_uid = pw.pw_uid;
		*ret_gid = pw.pw_gid;
		return 0;
	}
	*ret_uid = uid;
	*ret_gid = gid;
	return 0;
}

/* ---- terminal --------------------------------------------------------------------------- */

/*
 * A descriptor of our own for the caller's terminal side, non-blocking, so a stalled terminal
 * never blocks corrald: re-opened through /proc/self/fd with the same access mode the caller
 * had (never more), falling back to the caller's description for regular files, which do
 * not block.
 */
static int reopen_nonblock(int fd, int acc)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	int have = fl & O_ACCMODE;
	if (have != O_RDWR && have != acc)
		return -EBADF;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		return d < 0 ? -errno : d;
	}
	if (!S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode))
		return -EOPNOTSUPP;
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int nfd = open(path, acc | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	return nfd < 0 ? -errno : nfd;
}

static int open_pty(uid_t uid, gid_t gid, unsigned rows, unsigned cols, int *ret_master,
                    int *ret_slave)
{
	_cleanup_close_ int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	char name[128];
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0)
		return -errno;
	int sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (sl < 0)
		return -errno;
	/* the session user owns its terminal (tty, stty, mesg work as for a login) */
	if (fchown(sl, uid, gid) < 0 || fchmod(sl, 0620) < 0) {
		int r = -errno;
		close(sl);
		return r;
	}
	if (rows && cols) {
		struct winsize ws = {.ws_row = (unsigned short)rows,
		                     .ws_col = (unsigned short)cols};
		(void)ioctl(m, TIOCSWINSZ, &ws);
	}
	*ret_master = TAKE_FD(m);
	*ret_slave = sl;
	return 0;
}

static void watch_set(struct cd_session *s, struct watched *w, uint32_t tag, uint32_t events)
{
	if (w->fd < 0 || w->events == events)
		return;
	struct epoll_event ee = {.events = events, .data.u32 = tag};
	if (events == 0)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	else if (epoll_ctl(s->epfd, w->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, w->fd, &ee) < 0)
		return;
	w->events = events;
}

/* Moves bytes between the caller's terminal and the pty master until nothing moves. */
static void relay_pump(struct cd_session *s)
{
	bool progress = true;
	while (progress) {
		progress = false;
		if (!s->in_eof && s->to_pty.len == 0) {
			ssize_t n = read(s->in_fd, s->to_pty.data, RELAY_BUF);
			if (n > 0) {
				s->to_pty.len = (size_t)n;
				s->to_pty.off = 0;
				progress = true;
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				s->in_eof = true;
			}
		}
		if (s->to_pty.len > 0 && !s->master_eof) {
			ssize_t n = write(s->master, s->to_pty.data + s->to_pty.off, s->to_pty.len);
			if (n > 0) {
				s->to_pty.off += (size_t)n;
				s->to_pty.len -= (size_t)n;
				progress = true;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				s->to_pty.len = 0;
			}
		}
		if (!s->master_eof && s->from_pty.len == 0) {
			ssize_t n = read(s->master, s->from_pty.data, RELAY_BUF);
			if (n > 0) {
				s->from_pty.len = (size_t)n;
				s->from_pty.off = 0;
				progress = true;
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				s->master_eof = true; /* EIO: every slave descriptor is closed */
			}
		}
		if (s->from_pty.len > 0) {
			ssize_t n = s->out_dead
			                    ? (ssize_t)s->from_pty.len
			                    : write(s->out_fd, s->from_pty.data + s->from_pty.off,
			                            s->from_pty.len);
			if (n > 0) {
				s->from_pty.off += (size_t)n;
				s->from_pty.len -= (size_t)n;
				progress = true;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				s->out_dead = true; /* caller's output is gone: discard */
			}
		}
	}
	watch_set(s, &s->w_in, TAG_IN, !s->in_eof && s->to_pty.len == 0 ? EPOLLIN : 0);
	watch_set(s, &s->w_master, TAG_MASTER,
	          s->master_eof
	                  ? 0
	                  : (s->from_pty.len == 0 ? EPOLLIN : 0) | (s->to_pty.len ? EPOLLOUT : 0));
	watch_set(s, &s->w_out, TAG_OUT, s->from_pty.len && !s->out_dead ? EPOLLOUT : 0);
}

/* After the session ended: the rest of its output, waiting at most ~1 s for the caller. */
static void relay_drain(struct cd_session *s)
{
	uint64_t deadline = util_monotonic_ms() + 1000;
	s->in_eof = true;
	for (;;) {
		relay_pump(s);
		if ((s->master_eof && s->from_pty.len == 0) || s->out_dead ||
		    util_monotonic_ms() >= deadline)
			break;
		struct pollfd pfd = {.fd = s->from_pty.len ? s->out_fd : s->master,
		                     .events = s->from_pty.len ? POLLOUT : POLLIN};
		if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
			break;
	}
}

/* ---- start ------------------------------------------------------------------------------ */

static const Corral__Profile *find_profile(const Corral__Policy *pol, const char *name)
{
	for (size_t i = 0; i < pol->n_profiles; i++)
		if (pol->profiles[i]->name && strcmp(pol->profiles[i]->name, name) == 0)
			return pol->profiles[i];
	return NULL;
}

static bool selectable(const Corral__Policy *pol, const char *name)
{
	if (pol->default_profile && strcmp(pol->default_profile, name) == 0)
		return true;
	for (size_t i = 0; i < pol->n_user_selectable; i++)
		if (strcmp(pol->user_selectable[i], name) == 0)
			return true;
	return false;
}

static int session_epoll_add(struct cd_session *s, int fd, uint32_t tag)
{
	struct epoll_event ee = {.events = EPOLLIN, .data.u32 = tag};
	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ee) < 0 ? -errno : 0;
}

static struct cd_session *session_alloc(void)
{
	struct cd_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->epfd = s->master = s->in_fd = s->out_fd = -1;
	s->w_master.fd = s->w_in.fd = s->w_out.fd = -1;
	for (int i = 0; i < 3; i++)
		s->stdio[i] = -1;
	uint8_t rnd[16];
	arc4random_buf(rnd, sizeof(rnd));
	util_hex(rnd, sizeof(rnd), s->id);
	return s;
}

int cd_session_start(const struct cd_session_env *env, int client_sock, uid_t uid, pid_t pid,
                     const Corral__RunRequest *req, int *fds, size_t n_fds,
                     struct cd_session **ret_session)
{
	struct cd_session *s = session_alloc();
	char msg[512] = "";
	const char *step = "request";
	int err = 0, r, slave = -1;

	for (size_t i = 0; i < n_fds && i < 3; i++)
		if (s)
			s->stdio[i] = fds[i];
		else
			close(fds[i]);
	for (size_t i = 3; i < n_fds; i++)
		close(fds[i]);
	if (!s)
		return reply_failed(client_sock, "prepare", ENOMEM, "out of memory");
	s->client_sock = client_sock;
	s->emit = env->emit;
	s->userdata = env->userdata;
	s->enforce = env->enforce;
	s->caller_uid = uid;

	/* 1. policy and profile: never unconfined */
	const Corral__Policy *pol = env->bundle ? env->bundle->policy : NULL;
	if (!pol) {
		step = "policy";
		err = ENOENT;
		snprintf(msg, sizeof(msg),
		         "no policy in force; corral run refuses to start an unconfined agent");
		goto fail;
	}
	if (!s->enforce) {
		step = "prepare";
		err = ENOSYS;
		snprintf(msg, sizeof(msg),
		         "the enforcement layer failed to start (see corrald's log)");
		goto fail;
	}
	if (n_fds != 3 || req->n_argv == 0 || req->n_argv > ARGV_MAX || req->n_env > ENV_MAX ||
	    !req->cwd) {
		err = EINVAL;
		snprintf(msg, sizeof(msg), "a run request needs argv, cwd and three descriptors");
		goto fail;
	}
	const char *pname = req->profile && *req->profile ? req->profile : pol->default_profile;
	if (!pname || !*pname) {
		step = "select";
		err = ENOENT;
		snprintf(msg, sizeof(msg),
		         "the policy names no default profile; pick one with --profile");
		goto fail;
	}
	if (!selectable(pol, pname)) {
		step = "select";
		err = EPERM;
		snprintf(msg, sizeof(msg),
		         "profile \"%s\" is not selectable: the policy allows the default \"%s\"%s",
		         pname, pol->default_profile ? pol->default_profile : "",
		         pol->n_user_selectable ? " and its user_selectable profiles" : "");
		goto fail;
	}
	const Corral__Profile *p = find_profile(pol, pname);
	if (!p) {
		step = "select";
		err = ENOENT;
		snprintf(msg, sizeof(msg), "profile \"%s\" is not in policy version %" PRIu64,
		         pname, env->bundle->version);
		goto fail;
	}
	snprintf(s->profile, sizeof(s->profile), "%s", pname);
	s->version = env->bundle->version;
	s->audit = p->mode == CORRAL__MODE__MODE_AUDIT;

	/* 2. the caller */
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	if (getsockopt(client_sock, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != uid) {
		step = "credentials";
		err = errno ? errno : EPERM;
		snprintf(msg, sizeof(msg), "cannot read the caller's credentials");
		goto fail;
	}
	gid_t groups[SBX_GROUPS_MAX];
	int ngr = caller_groups(client_sock, groups, SBX_GROUPS_MAX);
	if (ngr < 0) {
		step = "credentials";
		err = -ngr;
		if (ngr == -E2BIG)
			snprintf(msg, sizeof(msg),
			         "the caller is in more than %d supplementary groups",
			         SBX_GROUPS_MAX);
		else
			snprintf(msg, sizeof(msg), "cannot read the caller's groups: %s",
			         strerror(-ngr));
		goto fail;
	}
	size_t ng = (size_t)ngr;
	struct passwd pw, *pwr = NULL;
	char pwbuf[4096];
	const char *home = NULL;
	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &pwr) == 0 && pwr) {
		snprintf(s->user, sizeof(s->user), "%s", pw.pw_name);
		home = pw.pw_dir;
	} else {
		snprintf(s->user, sizeof(s->user), "%u", (unsigned)uid);
	}
	uid_t suid = uid;
	gid_t sgid = 0;
	if ((r = session_ids(p, uid, cred.gid, &suid, &sgid)) < 0) {
		step = "credentials";
		err = -r;
		snprintf(msg, sizeof(msg), "run_as account \"%s\": %s", p->process->run_as,
		         strerror(-r));
		goto fail;
	}

	/* 3. compiled profile and network layer (cached per policy version) */
	r = cd_enforce_profile_get(s->enforce, s->version, p, &s->prof, &step, msg, sizeof(msg));
	if (r < 0) {
		err = -r;
		goto fail;
	}

	/* 4. session variables */
	step = "workdir";
	if ((r = check_workdir(req->cwd, uid, cred.gid, groups, ng, msg, sizeof(msg))) < 0) {
		err = -r;
		goto fail;
	}
	s->tmp_pool = env->tmp_pool;
	if ((r = tmp_create(s, env->tmp_pool, suid, sgid)) < 0) {
		step = "tmp";
		err = -r;
		snprintf(msg, sizeof(msg), "%s: %s", s->tmp, strerror(-r));
		goto fail;
	}

	/* 5. terminal */
	if (req->tty) {
		step = "pty";
		if ((r = open_pty(suid, sgid, req->rows, req->cols, &s->master, &slave)) < 0 ||
		    (r = s->in_fd = reopen_nonblock(s->stdio[0], O_RDONLY)) < 0 ||
		    (r = s->out_fd = reopen_nonblock(s->stdio[1], O_WRONLY)) < 0) {
			err = -r;
			snprintf(msg, sizeof(msg), "terminal: %s", strerror(-r));
			goto fail;
		}
		s->w_master.fd = s->master;
		s->w_in.fd = s->in_fd;
		s->w_out.fd = s->out_fd;
	}

	/* 6. the sandbox */
	step = "prepare";
	const char *argv[ARGV_MAX + 1], *envp[ENV_MAX + 1];
	for (size_t i = 0; i < req->n_argv; i++)
		argv[i] = req->argv[i];
	argv[req->n_argv] = NULL;
	for (size_t i = 0; i < req->n_env; i++)
		envp[i] = req->env[i];
	envp[req->n_env] = NULL;
	const char *forced[16];
	size_t nf = 0;
	char sid_env[64], prof_env[300];
	snprintf(sid_env, sizeof(sid_env), "CORRAL_SESSION=%s", s->id);
	snprintf(prof_env, sizeof(prof_env), "CORRAL_PROFILE=%s", s->profile);
	forced[nf++] = sid_env;
	forced[nf++] = prof_env;
	const char *const *penv = cd_enforce_profile_proxy_env(s->prof);
	for (size_t i = 0; penv && penv[i] && nf < 15; i++)
		forced[nf++] = penv[i];
	forced[nf] = NULL;
	size_t nports = 0;
	const uint16_t *ports = cd_enforce_profile_tcp_ports(s->prof, &nports);
	char cg_name[40];
	snprintf(cg_name, sizeof(cg_name), "s-%s", s->id);
	int io[3] = {s->stdio[0], s->stdio[1], s->stdio[2]};
	if (req->tty)
		io[0] = io[1] = io[2] = slave;
	s->fsaudit = env->fsaudit;
	bool fs_report = cd_fsaudit_available(s->fsaudit);
	s->sbx = sbx_new();
	if (!s->sbx || (r = sbx_set_profile(s->sbx, cd_enforce_profile_compiled(s->prof))) < 0 ||
	    (fs_report && (r = sbx_set_landlock_audit(s->sbx, true)) < 0) ||
	    (r = sbx_set_argv(s->sbx, argv)) < 0 || (r = sbx_set_envp(s->sbx, envp)) < 0 ||
	    (r = sbx_set_env_forced(s->sbx, forced)) < 0 ||
	    (r = sbx_set_cwd(s->sbx, req->cwd)) < 0 ||
	    (r = sbx_set_ids(s->sbx, uid, cred.gid, groups, ng)) < 0 ||
	    (r = sbx_set_stdio(s->sbx, io[0], io[1], io[2])) < 0 ||
	    (r = sbx_set_vars(s->sbx, home, req->cwd, s->tmp)) < 0 ||
	    (r = sbx_set_cgroup(s->sbx, cd_enforce_profile_cgroup(s->prof), cg_name)) < 0 ||
	    (nports && (r = sbx_set_landlock_tcp_ports(s->sbx, ports, nports, NULL, 0)) < 0)) {
		err = s->sbx ? -r : ENOMEM;
		snprintf(msg, sizeof(msg), "session description: %s", strerror(err));
		goto fail;
	}
	struct sbx_error se;
	memset(&se, 0, sizeof(se));
	s->start_ms = util_monotonic_ms();
	r = sbx_spawn(s->sbx, &s->child, &se);
	if (slave >= 0) {
		close(slave); /* the session holds it now; EIO on the master means it is gone */
		slave = -1;
	}
	if (r < 0) {
		step = se.step[0] ? se.step : "spawn";
		err = se.error ? se.error : -r;
		/* the engine's message may already start with its step */
		size_t sl = strlen(step);
		const char *m = se.message;
		if (strncmp(m, step, sl) == 0 && m[sl] == ':' && m[sl + 1] == ' ')
			m += sl + 2;
		snprintf(msg, sizeof(msg), "%s", *m ? m : strerror(err));
		goto fail;
	}
	/* the caller's descriptors were the session's stdio; with a pty they stay for the relay */
	if (!req->tty)
		for (int i = 0; i < 3; i++) {
			close(s->stdio[i]);
			s->stdio[i] = -1;
		}

	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0 || session_epoll_add(s, sbx_child_pidfd(s->child), TAG_PIDFD) < 0 ||
	    (sbx_child_notify_fd(s->child) >= 0 &&
	     session_epoll_add(s, sbx_child_notify_fd(s->child), TAG_NOTIFY) < 0)) {
		step = "prepare";
		err = errno;
		snprintf(msg, sizeof(msg), "session event loop: %s", strerror(err));
		goto fail;
	}
	if (req->tty)
		relay_pump(s);

	/* attribution of network denials: the session cgroup's id is its inode number */
	struct stat cst;
	s->tag.cgroup_id = sbx_child_cgroup_fd(s->child) >= 0 &&
	                                   fstat(sbx_child_cgroup_fd(s->child), &cst) == 0
	                           ? (uint64_t)cst.st_ino
	                           : 0;
	s->tag.profile = s->prof;
	s->tag.session_id = s->id;
	s->tag.uid = (uint32_t)uid;
	s->tag.user = s->user;
	s->tag.profile_name = s->profile;
	s->tag.policy_version = s->version;
	cd_enforce_session_add(s->enforce, &s->tag);
	s->tagged = true;

	/* Filesystem denials: reported through kernel audit (fsaudit.c) or said to be missing;
	 * only where Landlock is applied (in audit mode it is skipped: nothing is denied). */
	size_t ne = 0;
	const char *const *el = sbx_enforced_layers(s->child, &ne);
	if (has_layer(el, ne, "landlock:abi")) {
		struct cd_fsaudit_session fss = {.pid = sbx_child_pid(s->child),
		                                 .session_id = s->id,
		                                 .uid = (uint32_t)uid,
		                                 .user = s->user,
		                                 .profile = s->profile,
		                                 .policy_version = s->version,
		                                 .audit = s->audit};
		int fr = fs_report ? cd_fsaudit_session_add(s->fsaudit, &fss) : -ENOTSUP;
		s->fs_registered = fr >= 0;
		if (fr >= 0)
			snprintf(s->fs_layer, sizeof(s->fs_layer), "report:filesystem");
		else
			snprintf(s->fs_layer, sizeof(s->fs_layer),
			         "report:filesystem (unavailable: %s; filesystem denials are not "
			         "reported)",
			         fr == -ENOTSUP ? cd_fsaudit_status(s->fsaudit) : strerror(-fr));
	}
	const char *layers[64];
	size_t nl = session_layers(s, layers, 64);
	emit_start(s, p, req, layers, nl);

	Corral__RunStarted rs = CORRAL__RUN_STARTED__INIT;
	rs.session_id = s->id;
	rs.pid = (uint32_t)sbx_child_pid(s->child);
	rs.layers = (char **)layers;
	rs.n_layers = nl;
	Corral__IpcResponse resp = CORRAL__IPC_RESPONSE__INIT;
	resp.body_case = CORRAL__IPC_RESPONSE__BODY_RUN_STARTED;
	resp.run_started = &rs;
	(void)cd_ipc_send(client_sock, &resp.base, CD_IPC_FRAME_MAX, NULL, 0);
	*ret_session = s;
	return 0;

fail:
	if (slave >= 0)
		close(slave);
	r = reply_failed(client_sock, step, err ? err : EIO, msg);
	cd_session_free(s);
	return r;
}

/* ---- running ---------------------------------------------------------------------------- */

int cd_session_signal(struct cd_session *s, const Corral__RunSignal *sig)
{
	if (!s->child || s->ended)
		return 0;
	if (sig->signo == SIGWINCH) {
		if (s->master >= 0 && sig->rows && sig->cols && sig->rows < 65536 &&
		    sig->cols < 65536) {
			/* the kernel signals the pty's foreground process group itself */
			struct winsize ws = {.ws_row = (unsigned short)sig->rows,
			                     .ws_col = (unsigned short)sig->cols};
			(void)ioctl(s->master, TIOCSWINSZ, &ws);
		}
		return 0;
	}
	/* only what a terminal user can send; anything else is ignored */
	if (sig->signo != SIGINT && sig->signo != SIGTERM && sig->signo != SIGHUP &&
	    sig->signo != SIGQUIT)
		return 0;
	(void)syscall(SYS_pidfd_send_signal, sbx_child_pidfd(s->child), sig->signo, NULL, 0);
	return 0;
}

int cd_session_fd(const struct cd_session *s)
{
	return s ? s->epfd : -1;
}

/* Reaps the session, writes the exit event, then answers RunExited. */
static void session_end(struct cd_session *s, bool answer)
{
	struct sbx_result res;
	memset(&res, 0, sizeof(res));
	if (s->ended)
		return;
	s->ended = true;
	if (!s->child)
		return;
	/* The first process has exited when we answer (sbx_child_wait kills what it left in
	 * the cgroup); a session whose client went away is still running and is killed. */
	if (!answer)
		(void)sbx_child_kill(s->child);
	int r = sbx_child_wait(s->child, &res);
	if (s->master >= 0 && answer)
		relay_drain(s);
	/* denials already logged by the kernel are read before the exit event is written */
	if (s->fs_registered) {
		cd_fsaudit_session_end(s->fsaudit, sbx_child_pid(s->child));
		s->fs_registered = false;
	}
	/* The exit is reported (outbox, then the client) before the cleanup: the session tag,
	 * TMP and the cgroup directories go in cd_session_free, right after this. */
	if (r < 0)
		res.signal = SIGKILL;
	Corral__SessionExit se = CORRAL__SESSION_EXIT__INIT;
	se.exit_status = res.exit_code;
	se.term_signal = res.signal;
	se.duration_ms = util_monotonic_ms() - s->start_ms;
	se.peak_memory_bytes = res.memory_peak_bytes;
	se.cpu_usec = res.cpu_usec;
	se.oom_killed = res.oom_kills > 0;
	Corral__Event ev = CORRAL__EVENT__INIT;
	event_header(s, &ev, CORRAL__EVENT_KIND__EVENT_KIND_SESSION_EXIT);
	ev.detail_case = CORRAL__EVENT__DETAIL_SESSION_EXIT;
	ev.session_exit = &se;
	emit_event(s, &ev);
	if (!answer)
		return;
	Corral__RunExited x = CORRAL__RUN_EXITED__INIT;
	x.exit_status = res.exit_code;
	x.term_signal = res.signal;
	Corral__IpcResponse resp = CORRAL__IPC_RESPONSE__INIT;
	resp.body_case = CORRAL__IPC_RESPONSE__BODY_RUN_EXITED;
	resp.run_exited = &x;
	(void)cd_ipc_send(s->client_sock, &resp.base, CD_IPC_FRAME_MAX, NULL, 0);
}

int cd_session_process(struct cd_session *s)
{
	if (s->ended)
		return 1;
	struct epoll_event evs[8];
	int n = epoll_wait(s->epfd, evs, 8, 0);
	bool exited = false;
	for (int i = 0; i < n; i++) {
		switch (evs[i].data.u32) {
		case TAG_PIDFD:
			exited = true;
			break;
		case TAG_NOTIFY:
			/* HUP: no task uses the filter any more (the session is exiting);
			 * level-triggered, it would wake us until the pidfd is read */
			if (((evs[i].events & EPOLLIN) &&
			     sbx_child_notify_handle(s->child, on_syscall, s) < 0) ||
			    (evs[i].events & (EPOLLHUP | EPOLLERR)))
				epoll_ctl(s->epfd, EPOLL_CTL_DEL, sbx_child_notify_fd(s->child),
				          NULL);
			break;
		default:
			break; /* relay: pumped below */
		}
	}
	if (s->master >= 0)
		relay_pump(s);
	if (!exited)
		return 0;
	session_end(s, true);
	return 1;
}

void cd_session_free(struct cd_session *s)
{
	if (!s)
		return;
	/* a session whose client went away is killed; its exit is still reported */
	if (s->child && !s->ended)
		session_end(s, false);
	sbx_child_free(s->child);
	sbx_free(s->sbx);
	if (s->tagged)
		cd_enforce_session_remove(s->enforce, &s->tag);
	tmp_remove(s);
	if (s->prof)
		cd_enforce_profile_put(s->enforce, s->prof);
	for (int i = 0; i < 3; i++)
		if (s->stdio[i] >= 0)
			close(s->stdio[i]);
	if (s->master >= 0)
		close(s->master);
	if (s->in_fd >= 0)
		close(s->in_fd);
	if (s->out_fd >= 0)
		close(s->out_fd);
	if (s->epfd >= 0)
		close(s->epfd);
	free(s);
}
