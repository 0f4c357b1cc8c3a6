/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Corral__Profile built in C equivalent to schema/examples/strict-coding-agent.json (the
 * strict coding-agent profile): system trees read-only and executable, ${HOME} readable except
 * ~/.ssh ~/.aws ~/.gnupg, ${WORKDIR} and ${TMP} writable, the syscall baseline with EPERM,
 * memory and pids limits, env allowlist. Used by the escape runner and the privileged tests.
 * Static storage: one profile per program; callers may tweak fields before compiling.
 */
#pragma once

#include <stdbool.h>

#include <corral.pb-c.h>

struct sbx_test_profile {
	Corral__Profile profile;
	Corral__FilesystemRules fs;
	Corral__SyscallRules sys;
	Corral__Resources res;
	Corral__ProcessRules proc;
	Corral__Requirements req;
	Corral__Degradation deg;
	char *read[16], *write[8], *exec[8], *deny[8], *env[8], *sys_deny[8];
};

/* Fills *t with the strict profile; `extra_exec` (may be NULL) is added to the execute set. */
static inline Corral__Profile *sbx_test_strict_profile(struct sbx_test_profile *t,
                                                       const char *extra_exec)
{
	static const char *const rd[] = {"/usr",      "/etc",         "/lib",   "/lib64",
	                                 "/bin",      "/sbin",        "/proc",  "/dev/null",
	                                 "/dev/zero", "/dev/urandom", "${HOME}"};
	static const char *const wr[] = {"${WORKDIR}", "${TMP}", "/dev/null"};
	static const char *const ex[] = {"/usr", "/bin", "/lib", "/lib64", "/sbin"};
	static const char *const dn[] = {"${HOME}/.ssh", "${HOME}/.aws", "${HOME}/.gnupg"};
	static const char *const env[] = {"PATH", "LANG", "TERM", "ESC_*"};

	*t = (struct sbx_test_profile){
	        .profile = CORRAL__PROFILE__INIT,
	        .fs = CORRAL__FILESYSTEM_RULES__INIT,
	        .sys = CORRAL__SYSCALL_RULES__INIT,
	        .res = CORRAL__RESOURCES__INIT,
	        .proc = CORRAL__PROCESS_RULES__INIT,
	        .req = CORRAL__REQUIREMENTS__INIT,
	        .deg = CORRAL__DEGRADATION__INIT,
	};
	for (size_t i = 0; i < sizeof(rd) / sizeof(rd[0]); i++)
		t->read[t->fs.n_read++] = (char *)rd[i];
	for (size_t i = 0; i < sizeof(wr) / sizeof(wr[0]); i++)
		t->write[t->fs.n_write++] = (char *)wr[i];
	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++)
		t->exec[t->fs.n_execute++] = (char *)ex[i];
	if (extra_exec)
		t->exec[t->fs.n_execute++] = (char *)extra_exec;
	for (size_t i = 0; i < sizeof(dn) / sizeof(dn[0]); i++)
		t->deny[t->fs.n_deny++] = (char *)dn[i];
	for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
		t->env[t->proc.n_env_allow++] = (char *)env[i];
	t->fs.read = t->read;
	t->fs.write = t->write;
	t->fs.execute = t->exec;
	t->fs.deny = t->deny;
	t->proc.env_allow = t->env;
	t->sys.deny = t->sys_deny;
	t->sys.action = CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_ERRNO;
	t->res.memory_max_bytes = 512ull << 20;
	t->res.pids_max = 256;
	t->req.landlock_abi = 6;
	t->req.seccomp = true;
	t->profile.name = (char *)"strict-coding-agent";
	t->profile.mode = CORRAL__MODE__MODE_ENFORCE;
	t->profile.filesystem = &t->fs;
	t->profile.syscalls = &t->sys;
	t->profile.resources = &t->res;
	t->profile.process = &t->proc;
	t->profile.requires = &t->req;
	t->profile.degrade = &t->deg;
	return &t->profile;
}

#ifdef CORRAL_HAVE_POLICY
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

static inline int sbx_test_strv_append(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(*nv));

	if (!nv)
		return -1;
	*v = nv;
	if (!(nv[*n] = strdup(s)))
		return -1;
	(*n)++;
	return 0;
}

/*
 * Loads the default profile of a policy JSON file (e.g. schema/examples/strict-coding-agent.json)
 * through the real policy compiler and adds `extra_exec` to its execute set and `extra_env`
 * to its env allowlist (the test programs live outside the system trees and read ESC_*
 * variables). *ret_policy owns the profile: free with corral__policy__free_unpacked.
 */
static inline Corral__Profile *sbx_test_policy_profile(const char *path, const char *extra_exec,
                                                       const char *extra_env,
                                                       Corral__Policy **ret_policy)
{
	struct policy_error perr = {{0}};
	Corral__Policy *pol = NULL;
	Corral__Profile *p;
	char buf[600];

	if (policy_compile_file(path, &pol, &perr) < 0) {
		fprintf(stderr, "%s: %s\n", path, policy_error_format(&perr, buf, sizeof(buf)));
		return NULL;
	}
	p = (Corral__Profile *)policy_find_profile(pol, pol->default_profile);
	if (!p || !p->filesystem || !p->process ||
	    (extra_exec && sbx_test_strv_append(&p->filesystem->execute, &p->filesystem->n_execute,
	                                        extra_exec) < 0) ||
	    (extra_env && sbx_test_strv_append(&p->process->env_allow, &p->process->n_env_allow,
	                                       extra_env) < 0)) {
		corral__policy__free_unpacked(pol, NULL);
		return NULL;
	}
	*ret_policy = pol;
	return p;
}
#endif
