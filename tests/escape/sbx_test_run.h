/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test fixture shared by the escape runner and the privileged sandbox tests: a scratch tree
 * owned by the unprivileged session user (so only the sandbox, not file permissions, stands
 * between the session and the "secret"), and a helper that runs one session to completion
 * while answering seccomp notifications, capturing its output.
 *
 * The tree lives under /var/tmp, not /tmp: the namespace tier mounts a private /tmp.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "sbx.h"

#define SBX_TEST_UID 65534
#define SBX_TEST_GID 65534

struct sbx_test_dirs {
	char base[128], home[160], ssh[192], secret[256], tmp[160], work[160], outside[160],
	        bin[160], denied_bin[256];
};

static inline int sbx_test_mkdir(const char *p, mode_t mode)
{
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -errno;
	if (chown(p, SBX_TEST_UID, SBX_TEST_GID) < 0 || chmod(p, mode) < 0)
		return -errno;
	return 0;
}

static inline int sbx_test_write(const char *p, const char *content, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t n = strlen(content);

	if (fd < 0)
		return -errno;
	if (write(fd, content, n) != (ssize_t)n || fchown(fd, SBX_TEST_UID, SBX_TEST_GID) < 0 ||
	    fchmod(fd, mode) < 0) {
		close(fd);
		return -EIO;
	}
	close(fd);
	return 0;
}

static inline int sbx_test_copy(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	ssize_t n;
	int in = open(from, O_RDONLY | O_CLOEXEC), out;

	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (out < 0) {
		close(in);
		return -errno;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			break;
	close(in);
	if (fchown(out, SBX_TEST_UID, SBX_TEST_GID) < 0 || fchmod(out, mode) < 0) {
		close(out);
		return -errno;
	}
	close(out);
	return n == 0 ? 0 : -EIO;
}

/* Creates the scratch tree: home (with .ssh/id_ed25519 and a denied binary), tmp, work,
 * outside, bin. Everything owned by the session user. */
static inline int sbx_test_dirs_setup(struct sbx_test_dirs *d)
{
	char tmpl[] = "/var/tmp/corral-sbxtest-XXXXXX";
	int r;

	if (!mkdtemp(tmpl))
		return -errno;
	if (chmod(tmpl, 0755) < 0)
		return -errno;
	snprintf(d->base, sizeof(d->base), "%s", tmpl);
	snprintf(d->home, sizeof(d->home), "%s/home", d->base);
	snprintf(d->ssh, sizeof(d->ssh), "%s/.ssh", d->home);
	snprintf(d->secret, sizeof(d->secret), "%s/id_ed25519", d->ssh);
	snprintf(d->denied_bin, sizeof(d->denied_bin), "%s/denied-true", d->ssh);
	snprintf(d->tmp, sizeof(d->tmp), "%s/tmp", d->base);
	snprintf(d->work, sizeof(d->work), "%s/work", d->base);
	snprintf(d->outside, sizeof(d->outside), "%s/outside", d->base);
	snprintf(d->bin, sizeof(d->bin), "%s/bin", d->base);
	if ((r = sbx_test_mkdir(d->home, 0755)) < 0 || (r = sbx_test_mkdir(d->ssh, 0700)) < 0 ||
	    (r = sbx_test_mkdir(d->tmp, 0755)) < 0 || (r = sbx_test_mkdir(d->work, 0755)) < 0 ||
	    (r = sbx_test_mkdir(d->outside, 0755)) < 0 || (r = sbx_test_mkdir(d->bin, 0755)) < 0)
		return r;
	if ((r = sbx_test_write(d->secret, "PRIVATE KEY\n", 0600)) < 0 ||
	    (r = sbx_test_copy("/bin/true", d->denied_bin, 0755)) < 0)
		return r;
	char p[400];
	snprintf(p, sizeof(p), "%s/notes.txt", d->home);
	if ((r = sbx_test_write(p, "readable notes\n", 0644)) < 0)
		return r;
	snprintf(p, sizeof(p), "%s/existing.txt", d->work);
	return sbx_test_write(p, "work file\n", 0644);
}

/*
 * true when real sessions can be tested here: root (sessions switch to the test user) and
 * a kernel with Landlock ABI >= 6 and seccomp user notification. Else false with the reason
 * for HARNESS_SKIP in `reason`.
 */
static inline bool sbx_test_host_ready(struct sbx_features *f, char *reason, size_t len)
{
	if (!harness_is_root()) {
		snprintf(reason, len, "needs root (sessions switch users)");
		return false;
	}
	if (sbx_features_probe(f) < 0 || f->landlock_abi < 6 || !f->seccomp_notify) {
		snprintf(reason, len, "needs Landlock ABI >= 6 and seccomp notify (have abi %d)",
		         f->landlock_abi);
		return false;
	}
	return true;
}

struct sbx_test_outcome {
	int spawn_rc;
	struct sbx_error err;
	struct sbx_result res;
	unsigned violations;
	char last_syscall[64];
	char output[16384];
	const char *layers[48];
	size_t nlayers;
};

static inline void sbx_test_on_violation(const struct sbx_syscall_event *ev, void *userdata)
{
	struct sbx_test_outcome *o = userdata;

	o->violations++;
	snprintf(o->last_syscall, sizeof(o->last_syscall), "%s", ev->name);
}

/*
 * Runs argv under `c` as the test user with the scratch tree's variables, stdin from
 * `stdin_fd` (-1: /dev/null), stdout+stderr captured. `envp` may be NULL. Optional `s_hook`
 * tweaks the sbx before spawning. Returns sbx_spawn's result.
 */
static inline int sbx_test_run_full(const struct sbx_compiled *c, const char *const *argv,
                                    const char *const *envp, const struct sbx_test_dirs *d,
                                    int stdin_fd, void (*s_hook)(struct sbx *),
                                    struct sbx_test_outcome *o)
{
	static const char *const empty_env[] = {NULL};
	struct sbx *s = sbx_new();
	struct sbx_child *ch = NULL;
	char outpath[] = "/var/tmp/corral-sbxout-XXXXXX";
	int out = mkostemp(outpath, O_CLOEXEC), in = stdin_fd;
	bool close_in = false;
	int r;

	memset(o, 0, sizeof(*o));
	if (!s || out < 0)
		return -ENOMEM;
	unlink(outpath);
	if (in < 0) {
		in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		close_in = true;
	}
	sbx_set_profile(s, c);
	sbx_set_argv(s, argv);
	sbx_set_envp(s, envp ? envp : empty_env);
	sbx_set_ids(s, SBX_TEST_UID, SBX_TEST_GID, NULL, 0);
	sbx_set_vars(s, d->home, d->work, d->tmp);
	sbx_set_cwd(s, d->work);
	sbx_set_stdio(s, in, out, out);
	if (s_hook)
		s_hook(s);
	r = sbx_spawn(s, &ch, &o->err);
	o->spawn_rc = r;
	if (close_in)
		close(in);
	if (r >= 0) {
		const char *const *l = sbx_enforced_layers(ch, &o->nlayers);
		if (o->nlayers > 48)
			o->nlayers = 48;
		memcpy(o->layers, l, o->nlayers * sizeof(*l));
		for (;;) {
			int nfd = sbx_child_notify_fd(ch);
			struct pollfd p[2] = {{.fd = sbx_child_pidfd(ch), .events = POLLIN},
			                      {.fd = nfd, .events = POLLIN}};
			if (poll(p, nfd >= 0 ? 2 : 1, 30000) <= 0) {
				sbx_child_kill(ch);
				break;
			}
			if (nfd >= 0 && (p[1].revents & POLLIN)) {
				sbx_child_notify_handle(ch, sbx_test_on_violation, o);
				continue;
			}
			if (p[0].revents)
				break;
		}
		sbx_child_wait(ch, &o->res);
		sbx_child_free(ch);
		ssize_t n = pread(out, o->output, sizeof(o->output) - 1, 0);
		o->output[n > 0 ? n : 0] = '\0';
	}
	close(out);
	sbx_free(s);
	return r;
}

static inline int sbx_test_run(const struct sbx_compiled *c, const char *const *argv,
                               const struct sbx_test_dirs *d, struct sbx_test_outcome *o)
{
	return sbx_test_run_full(c, argv, NULL, d, -1, NULL, o);
}

/* Runs `sh -c script` (the script sees the tree through ${HOME} etc. in its environment). */
static inline int sbx_test_sh(const struct sbx_compiled *c, const char *script,
                              const struct sbx_test_dirs *d, struct sbx_test_outcome *o)
{
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	return sbx_test_run(c, argv, d, o);
}
