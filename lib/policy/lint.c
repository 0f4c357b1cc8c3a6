// SPDX-License-Identifier: Apache-2.0
/*
 * The policy linter: flags policies that compile but are risky, each finding with a stable code,
 * the JSON pointer of the value to change and why it matters. It works on the compiled Policy
 * (paths already normalised, lists in document order), so a finding's index is the index in the
 * administrator's JSON.
 *
 * Path reasoning is lexical, like the rules themselves: a rule on a directory covers the tree
 * below it. Two aliases matter in practice and are folded before comparing: /var/run is /run on
 * every current distribution, and ${HOME} lives below /home (or is covered by "/").
 */
#include "policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

static const char *const lint_codes[] = {
        "writable-system-path",
        "writable-home",
        "readable-secret",
        "writable-secret",
        "network-default-allow",
        "network-allow-any",
        "dns-open",
        "syscall-baseline-disabled",
        "syscall-action-log",
        "no-resource-limits",
        "no-memory-limit",
        "no-pids-limit",
        "audit-in-production",
        "root-allowed",
        "degrade-allowed",
        NULL,
};

const char *const *policy_lint_codes(void)
{
	return lint_codes;
}

/* Secrets an agent must not reach, with what they hold (for the message). */
static const struct {
	const char *path;
	const char *what;
} secrets[] = {
        {"${HOME}/.ssh", "SSH keys"},
        {"${HOME}/.aws", "AWS credentials"},
        {"${HOME}/.gnupg", "GnuPG keys"},
        {"${HOME}/.config/gcloud", "Google Cloud credentials"},
        {"${HOME}/.kube", "Kubernetes credentials"},
        {"${HOME}/.mozilla", "Firefox profiles"},
        {"${HOME}/.config/google-chrome", "Chrome profiles"},
        {"${HOME}/.config/chromium", "Chromium profiles"},
        {"/run/docker.sock", "the Docker socket (root on the host)"},
};

/* System trees whose modification compromises the machine. */
static const char *const system_paths[] = {"/etc", "/usr",   "/bin", "/sbin",
                                           "/lib", "/lib64", "/boot"};

struct lint_ctx {
	struct policy_findings *out;
	size_t added;
	char base[128]; /* "/profiles/NAME" */
};

static int add(struct lint_ctx *l, const char *code, const char *suffix, const char *msg_fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Appends a finding at the profile's pointer + `suffix`; -ENOMEM when the array cannot grow. */
static int add(struct lint_ctx *l, const char *code, const char *suffix, const char *msg_fmt, ...)
{
	struct policy_findings *f = l->out;
	struct policy_finding *items = realloc(f->items, (f->count + 1) * sizeof(*items));
	if (!items)
		return -ENOMEM;
	f->items = items;
	struct policy_finding *it = &items[f->count];
	memset(it, 0, sizeof(*it));
	it->code = code;
	snprintf(it->pointer, sizeof(it->pointer), "%s%s", l->base, suffix);
	va_list ap;
	va_start(ap, msg_fmt);
	vsnprintf(it->message, sizeof(it->message), msg_fmt, ap);
	va_end(ap);
	f->count++;
	l->added++;
	return 0;
}

/* Copies `p` into buf with /var/run folded to /run (a symlink to it everywhere). */
static void fold(const char *p, char *buf, size_t len)
{
	if (strcmp(p, "/var/run") == 0 || strncmp(p, "/var/run/", 9) == 0)
		snprintf(buf, len, "/run%s", p + 8);
	else
		snprintf(buf, len, "%s", p);
}

/* true when a rule on `a` covers `b` (a is b or an ancestor of b). */
static bool path_covers(const char *a_raw, const char *b_raw)
{
	char a[4200], b[4200];
	fold(a_raw, a, sizeof(a));
	fold(b_raw, b, sizeof(b));
	if (strcmp(a, "/") == 0)
		return b[0] == '/' || strncmp(b, "${HOME}", 7) == 0;
	if (strcmp(a, "/home") == 0 && strncmp(b, "${HOME}", 7) == 0)
		return true;
	size_t la = strlen(a);
	return strncmp(a, b, la) == 0 && (b[la] == '\0' || b[la] == '/');
}

static bool denied(const Corral__FilesystemRules *fs, const char *path)
{
	for (size_t i = 0; i < fs->n_deny; i++)
		if (path_covers(fs->deny[i], path))
			return true;
	return false;
}

/* One finding per entry, naming the secrets it exposes that no deny covers. */
static int lint_secrets(struct lint_ctx *l, const Corral__FilesystemRules *fs, bool write)
{
	size_t n = write ? fs->n_write : fs->n_read;
	char *const *list = write ? fs->write : fs->read;
	for (size_t i = 0; i < n; i++) {
		size_t hit[ELEMENTSOF(secrets)];
		size_t count = 0;
		for (size_t s = 0; s < ELEMENTSOF(secrets); s++) {
			const char *sp = secrets[s].path;
			bool reaches = path_covers(list[i], sp) || path_covers(sp, list[i]);
			if (reaches && !denied(fs, sp) && !denied(fs, list[i]))
				hit[count++] = s;
		}
		if (!count)
			continue;
		char suffix[64];
		snprintf(suffix, sizeof(suffix), "/filesystem/%s/%zu", write ? "write" : "read", i);
		const char *code = write ? "writable-secret" : "readable-secret";
		const char *verb = write ? "writable" : "readable";
		int r;
		if (count == 1) {
			r = add(l, code, suffix, "%s makes %s (%s) %s and no deny covers it",
			        list[i], secrets[hit[0]].path, secrets[hit[0]].what, verb);
		} else {
			/* Several secrets: list the paths only, so the message stays whole. */
			char names[200];
			size_t o = 0;
			names[0] = '\0';
			for (size_t k = 0; k < count && o < sizeof(names); k++)
				o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s",
				                      k ? ", " : "", secrets[hit[k]].path);
			r = add(l, code, suffix,
			        "%s makes %zu secrets %s and no deny covers them: %s", list[i],
			        count, verb, names);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int lint_filesystem(struct lint_ctx *l, const Corral__FilesystemRules *fs)
{
	int r;
	for (size_t i = 0; i < fs->n_write; i++) {
		const char *w = fs->write[i];
		char suffix[64];
		snprintf(suffix, sizeof(suffix), "/filesystem/write/%zu", i);
		bool system = strcmp(w, "/") == 0;
		for (size_t s = 0; s < ELEMENTSOF(system_paths); s++)
			if (path_covers(system_paths[s], w))
				system = true;
		if (system) {
			r = add(l, "writable-system-path", suffix,
			        "%s is writable: an agent can replace system programs or "
			        "configuration and escape on the next boot or login",
			        w);
		} else if (path_covers(w, "${HOME}")) {
			r = add(l, "writable-home", suffix,
			        "%s makes the whole home directory writable: shell startup files, "
			        "~/.config autostart and git hooks run code outside the sandbox",
			        w);
		} else {
			continue;
		}
		if (r < 0)
			return r;
	}
	if ((r = lint_secrets(l, fs, false)) < 0 || (r = lint_secrets(l, fs, true)) < 0)
		return r;
	return 0;
}

static int lint_network(struct lint_ctx *l, const Corral__NetworkRules *net)
{
	int r;
	if (net->default_allow &&
	    (r = add(l, "network-default-allow", "/network/default",
	             "traffic no rule names is allowed: an agent can send data anywhere")) < 0)
		return r;
	for (size_t i = 0; i < net->n_allow; i++) {
		const char *cidr = net->allow[i]->cidr;
		if (strcmp(cidr, "0.0.0.0/0") != 0 && strcmp(cidr, "::/0") != 0)
			continue;
		char suffix[64];
		snprintf(suffix, sizeof(suffix), "/network/allow/%zu/cidr", i);
		if ((r = add(l, "network-allow-any", suffix,
		             "%s allows every address: the rule is default-allow in disguise",
		             cidr)) < 0)
			return r;
	}
	if (!net->default_allow && net->dns == CORRAL__DNS_MODE__DNS_OPEN &&
	    (r = add(l, "dns-open", "/network/dns",
	             "DNS to any resolver is open while the network is restricted: data can "
	             "leave encoded in DNS queries (use \"filtered\")")) < 0)
		return r;
	return 0;
}

/* Each degradation an enforcing profile accepts is a layer that can silently go missing. */
static int lint_degrade(struct lint_ctx *l, const Corral__Degradation *d)
{
	int r;
	if (d->network_to_landlock_ports &&
	    (r = add(l, "degrade-allowed", "/degrade/network_to_landlock_ports",
	             "without BPF the profile runs with Landlock TCP port rules only: addresses, "
	             "UDP and host rules are no longer enforced")) < 0)
		return r;
	if (d->resources &&
	    (r = add(l, "degrade-allowed", "/degrade/resources",
	             "without the cgroup controllers the profile runs with no resource limits")) <
	            0)
		return r;
	if (d->landlock_partial &&
	    (r = add(l, "degrade-allowed", "/degrade/landlock_partial",
	             "on an older kernel the filesystem rules the Landlock ABI cannot express "
	             "(e.g. truncate, ioctl on devices) are dropped")) < 0)
		return r;
	return 0;
}

static int lint_profile(struct lint_ctx *l, const Corral__Profile *p)
{
	int r;
	if (p->filesystem && (r = lint_filesystem(l, p->filesystem)) < 0)
		return r;
	if (p->network && (r = lint_network(l, p->network)) < 0)
		return r;
	if (p->syscalls && p->syscalls->baseline_disabled &&
	    (r = add(l, "syscall-baseline-disabled", "/syscalls/baseline",
	             "the hardened system call baseline is off: io_uring, ptrace, bpf, the mount "
	             "API and 32-bit entry points become reachable")) < 0)
		return r;
	if (p->syscalls && p->syscalls->action == CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_LOG &&
	    p->mode == CORRAL__MODE__MODE_ENFORCE &&
	    (r = add(l, "syscall-action-log", "/syscalls/action",
	             "denied system calls are only logged, not blocked, in an enforcing "
	             "profile")) < 0)
		return r;
	const Corral__Resources *res = p->resources;
	bool no_mem = !res || res->memory_max_bytes == 0;
	bool no_pids = !res || res->pids_max == 0;
	bool no_cpu = !res || res->cpu_max_percent == 0;
	if (no_mem && no_pids && no_cpu) {
		if ((r = add(l, "no-resource-limits", "/resources",
		             "no memory, process or CPU limit: a runaway or hostile agent can "
		             "exhaust the machine (fork bomb, memory)")) < 0)
			return r;
	} else {
		if (no_mem && (r = add(l, "no-memory-limit", "/resources/memory_max",
		                       "no memory limit: the agent can drive the machine into "
		                       "the OOM killer")) < 0)
			return r;
		if (no_pids &&
		    (r = add(l, "no-pids-limit", "/resources/pids_max",
		             "no process limit: a fork bomb takes the machine down")) < 0)
			return r;
	}
	if (p->production && p->mode == CORRAL__MODE__MODE_AUDIT &&
	    (r = add(l, "audit-in-production", "/mode",
	             "a production profile in audit mode denies nothing; it only reports")) < 0)
		return r;
	if (p->degrade && p->mode == CORRAL__MODE__MODE_ENFORCE &&
	    (r = lint_degrade(l, p->degrade)) < 0)
		return r;
	if (p->process && p->process->allow_root &&
	    (r = add(l, "root-allowed", "/process/allow_root",
	             "root callers may run this profile as root, where kernel attack surface "
	             "and capabilities make escapes far easier")) < 0)
		return r;
	if (p->process && p->process->run_as && strcmp(p->process->run_as, "root") == 0 &&
	    (r = add(l, "root-allowed", "/process/run_as",
	             "the agent runs as root, where kernel attack surface and capabilities make "
	             "escapes far easier")) < 0)
		return r;
	return 0;
}

int policy_lint(const Corral__Policy *policy, struct policy_findings *ret)
{
	if (!policy || !ret)
		return -EINVAL;
	struct lint_ctx l = {.out = ret};
	for (size_t i = 0; i < policy->n_profiles; i++) {
		const Corral__Profile *p = policy->profiles[i];
		if (!p)
			continue;
		snprintf(l.base, sizeof(l.base), "/profiles/%s", p->name ? p->name : "");
		int r = lint_profile(&l, p);
		if (r < 0)
			return r;
	}
	return (int)l.added;
}

void policy_findings_free(struct policy_findings *f)
{
	if (!f)
		return;
	free(f->items);
	f->items = NULL;
	f->count = 0;
}
