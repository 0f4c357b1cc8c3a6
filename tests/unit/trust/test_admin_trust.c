// SPDX-License-Identifier: Apache-2.0
/*
 * corral-admin's offline trust commands run as the real binary: key generation and
 * permissions, trust init/show/rotate, policy sign (compile, lint, refuse invalid) and
 * policy verify with its `rejected: CODE: detail` first line and exit codes.
 */
#include "harness.h"
#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;
static char admin[PATH_MAX];
static char out[65536];

/* Runs corral-admin with the NULL-terminated args in `dir`; stdout (and stderr appended) in
 * `out`. Returns the exit status. */
static int run(const char *first, ...)
{
	const char *argv[64] = {admin, first};
	size_t n = 2;
	va_list ap;
	va_start(ap, first);
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < ELEMENTSOF(argv) - 1)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	int fds[2];
	CU_ASSERT_FATAL(pipe2(fds, O_CLOEXEC) == 0);
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		if (chdir(dir) < 0)
			_exit(126);
		execv(admin, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	size_t len = 0;
	ssize_t r;
	while ((r = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)r;
	out[len] = '\0';
	close(fds[0]);
	int status = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static bool starts(const char *prefix)
{
	return strncmp(out, prefix, strlen(prefix)) == 0;
}

static char *path(const char *name)
{
	static char p[4][1024];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static char policy_file[1024];

static int suite_init(void)
{
	dir = harness_mkdtemp("trust-admin");
	char rel[1024];
	snprintf(rel, sizeof(rel), "%s/bin/corral-admin", harness_binary_dir());
	/* Absolute: the child runs in `dir`. */
	if (!realpath(rel, admin))
		snprintf(admin, sizeof(admin), "%s", rel);
	snprintf(policy_file, sizeof(policy_file), "%s/schema/examples/strict-coding-agent.json",
	         harness_source_dir());
	return dir ? 0 : 1;
}

static int suite_cleanup(void)
{
	harness_rm_rf(dir);
	free(dir);
	return 0;
}

static void test_key_generate(void)
{
	if (access(admin, X_OK) != 0)
		HARNESS_SKIP("%s not built", admin);
	const char *names[] = {"root1", "root2", "root3", "alice", "bob", "mallory"};
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		CU_ASSERT_EQUAL(run("key", "generate", "--name", names[i], "--out", ".", NULL), 0);
		/* The key id is the stdout line (stderr says where the files went). */
		const char *line = out;
		bool found = false;
		for (; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
			found |= strspn(line, "0123456789abcdef") == 64 && line[64] == '\n';
		CU_ASSERT(found);
	}
	struct stat st;
	CU_ASSERT_EQUAL(stat(path("alice.key"), &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	CU_ASSERT_EQUAL(stat(path("alice.pub"), &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0644);
	/* Never overwrites a key. */
	CU_ASSERT_EQUAL(run("key", "generate", "--name", "alice", "--out", ".", NULL), 1);
	CU_ASSERT_EQUAL(run("key", "generate", "--name", "x", NULL), 2);
}

static void test_trust_init_show(void)
{
	if (access(path("root1.key"), R_OK) != 0)
		HARNESS_SKIP("no keys (key generation did not run)");
	/* Several values after one flag, and the flag repeated: both accepted. */
	CU_ASSERT_EQUAL(run("trust", "init", "--root", "root1.pub", "root2.pub", "--root-threshold",
	                    "2", "--signer", "alice.pub", "--signer", "bob.pub",
	                    "--signer-threshold", "2", "--expires", "365d", "--key", "root1.key",
	                    "--key", "root2.key", "-o", "v1.root", NULL),
	                0);
	CU_ASSERT_EQUAL(run("trust", "show", "v1.root", NULL), 0);
	CU_ASSERT(starts("trust root version 1"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "alice"));
	CU_ASSERT_EQUAL(run("trust", "show", "v1.root", "--json", NULL), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"root_threshold\": 2"));
	/* Signed by one root key with threshold 2: refused, nothing written. */
	CU_ASSERT_EQUAL(run("trust", "init", "--root", "root1.pub", "root2.pub", "--root-threshold",
	                    "2", "--signer", "alice.pub", "--signer-threshold", "1", "--expires",
	                    "30d", "--key", "root1.key", "-o", "weak.root", NULL),
	                1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "threshold"));
	CU_ASSERT_NOT_EQUAL(access(path("weak.root"), F_OK), 0);
	/* Missing flags, bad thresholds: usage errors. */
	CU_ASSERT_EQUAL(run("trust", "init", "--root", "root1.pub", NULL), 2);
	CU_ASSERT_EQUAL(run("trust", "init", "--root", "root1.pub", "--root-threshold", "3",
	                    "--signer", "alice.pub", "--signer-threshold", "1", "--expires", "1d",
	                    "--key", "root1.key", "-o", "x.root", NULL),
	                2);
	CU_ASSERT_EQUAL(run("trust", "show", "nonexistent.root", NULL), 1);
	CU_ASSERT(starts("rejected: malformed: "));
}

static void test_trust_rotate(void)
{
	if (access(path("v1.root"), R_OK) != 0)
		HARNESS_SKIP("no v1 root");
	/* Old keys only: devices would refuse it (threshold of the new root's keys). */
	CU_ASSERT_EQUAL(run("trust", "rotate", "--from", "v1.root", "--root", "root2.pub",
	                    "root3.pub", "--signer", "alice.pub", "bob.pub", "--expires", "180d",
	                    "--key", "root1.key", "root2.key", "-o", "bad.root", NULL),
	                1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "threshold"));
	CU_ASSERT_EQUAL(run("trust", "rotate", "--from", "v1.root", "--root", "root2.pub",
	                    "root3.pub", "--signer", "alice.pub", "bob.pub", "--expires", "180d",
	                    "--key", "root1.key", "root2.key", "--key", "root3.key", "-o",
	                    "v2.root", NULL),
	                0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "version 2"));
}

static void test_policy_sign_verify(void)
{
	if (access(path("v2.root"), R_OK) != 0)
		HARNESS_SKIP("no v2 root");
	if (access(policy_file, R_OK) != 0)
		HARNESS_SKIP("%s missing (run under ctest, which sets CORRAL_SOURCE_DIR)",
		             policy_file);
	CU_ASSERT_EQUAL(run("policy", "sign", policy_file, "--version", "3", "--expires", "30d",
	                    "--target", "group:eng", "device:dev-7", "--key", "alice.key",
	                    "bob.key", "-o", "p3.bundle", "--trust", "v1.root", "v2.root", NULL),
	                0);
	CU_ASSERT_EQUAL(run("policy", "verify", "p3.bundle", "--trust", "v1.root", "--trust",
	                    "v2.root", "--group", "eng", NULL),
	                0);
	CU_ASSERT(starts("valid: policy bundle version 3"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "signer: "));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "source sha256: "));
	CU_ASSERT_EQUAL(run("policy", "verify", "p3.bundle", "--trust", "v1.root", "--device",
	                    "dev-7", NULL),
	                0);

	/* Each refusal: exit 1 and `rejected: CODE: ...` first. */
	CU_ASSERT_EQUAL(run("policy", "verify", "p3.bundle", "--trust", "v1.root", "--group",
	                    "finance", NULL),
	                1);
	CU_ASSERT(starts("rejected: wrong-target: "));
	CU_ASSERT_EQUAL(run("policy", "verify", "p3.bundle", "--trust", "v1.root", "--min-version",
	                    "4", NULL),
	                1);
	CU_ASSERT(starts("rejected: rollback: "));
	CU_ASSERT_EQUAL(run("policy", "verify", "v1.root", "--trust", "v1.root", NULL), 1);
	CU_ASSERT(starts("rejected: malformed: "));
	/* Skipping the chain order. */
	CU_ASSERT_EQUAL(run("policy", "verify", "p3.bundle", "--trust", "v2.root", "v1.root", NULL),
	                1);
	CU_ASSERT(starts("rejected: rollback: trust root"));

	CU_ASSERT_EQUAL(run("policy", "sign", policy_file, "--version", "4", "--expires", "30d",
	                    "--target", "group:eng", "--key", "alice.key", "-o", "one.bundle",
	                    NULL),
	                0);
	CU_ASSERT_EQUAL(run("policy", "verify", "one.bundle", "--trust", "v1.root", NULL), 1);
	CU_ASSERT(starts("rejected: threshold: "));
	/* with --trust, sign checks first: one signature of two -> refused, nothing written */
	CU_ASSERT_EQUAL(run("policy", "sign", policy_file, "--version", "4", "--expires", "30d",
	                    "--target", "group:eng", "--key", "alice.key", "-o", "one-t.bundle",
	                    "--trust", "v1.root", NULL),
	                1);
	CU_ASSERT_EQUAL(access("one-t.bundle", F_OK), -1);
	/* Two-person signing on separate machines: Bob co-signs Alice's file. */
	CU_ASSERT_EQUAL(run("policy", "cosign", "one.bundle", "--key", "bob.key", "-o",
	                    "two.bundle", "--trust", "v1.root", NULL),
	                0);
	CU_ASSERT_EQUAL(run("policy", "verify", "two.bundle", "--trust", "v1.root", NULL), 0);
	CU_ASSERT_EQUAL(run("policy", "cosign", "one.bundle", "--key", "mallory.key", "-o",
	                    "three.bundle", "--trust", "v1.root", NULL),
	                1);
	CU_ASSERT_EQUAL(
	        run("policy", "cosign", "v1.root", "--key", "bob.key", "-o", "x.bundle", NULL), 1);
	CU_ASSERT_EQUAL(run("policy", "sign", policy_file, "--version", "4", "--expires", "30d",
	                    "--target", "group:eng", "--key", "alice.key", "mallory.key", "-o",
	                    "mal.bundle", NULL),
	                0);
	CU_ASSERT_EQUAL(run("policy", "verify", "mal.bundle", "--trust", "v1.root", NULL), 1);
	CU_ASSERT(starts("rejected: unknown-key: "));

	/* One flipped byte at the end (inside the last signature). */
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL_FATAL(util_read_file(path("p3.bundle"), 1 << 20, &buf, &len), 0);
	buf[len - 1] ^= 1;
	CU_ASSERT_EQUAL(util_write_file_atomic(path("flip.bundle"), buf, len, 0644), 0);
	CU_ASSERT_EQUAL(run("policy", "verify", "flip.bundle", "--trust", "v1.root", NULL), 1);
	CU_ASSERT(starts("rejected: bad-signature: "));

	/* Larger than the cap: refused by size. */
	int fd = open(path("huge.bundle"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(ftruncate(fd, 64 << 20), 0);
	close(fd);
	CU_ASSERT_EQUAL(run("policy", "verify", "huge.bundle", "--trust", "v1.root", NULL), 1);
	CU_ASSERT(starts("rejected: too-large: "));
	CU_ASSERT_EQUAL(run("policy", "verify", "p3.bundle", NULL), 2);
}

static void test_policy_sign_refusals(void)
{
	if (access(path("alice.key"), R_OK) != 0)
		HARNESS_SKIP("no keys");
	if (access(policy_file, R_OK) != 0)
		HARNESS_SKIP("%s missing (run under ctest, which sets CORRAL_SOURCE_DIR)",
		             policy_file);
	/* A world-readable private key is refused. */
	CU_ASSERT_EQUAL(chmod(path("bob.key"), 0644), 0);
	CU_ASSERT_EQUAL(run("policy", "sign", policy_file, "--version", "5", "--expires", "1d",
	                    "--target", "group:eng", "--key", "bob.key", "-o", "b.bundle", NULL),
	                1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "chmod 600"));
	CU_ASSERT_EQUAL(chmod(path("bob.key"), 0600), 0);
	/* An invalid policy is refused with its JSON pointer. */
	CU_ASSERT_EQUAL(util_write_file_atomic(path("bad.json"), "{\"name\": 5}", 11, 0644), 0);
	CU_ASSERT_EQUAL(run("policy", "sign", "bad.json", "--version", "5", "--expires", "1d",
	                    "--target", "group:eng", "--key", "bob.key", "-o", "b.bundle", NULL),
	                1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "refusing to sign"));
	CU_ASSERT_NOT_EQUAL(access(path("b.bundle"), F_OK), 0);
	/* Bad target syntax and a past expiry are usage errors. */
	CU_ASSERT_EQUAL(run("policy", "sign", policy_file, "--version", "5", "--expires", "1d",
	                    "--target", "eng", "--key", "bob.key", "-o", "b.bundle", NULL),
	                2);
	CU_ASSERT_EQUAL(run("policy", "sign", policy_file, "--version", "5", "--expires",
	                    "2000-01-01T00:00:00Z", "--target", "group:eng", "--key", "bob.key",
	                    "-o", "b.bundle", NULL),
	                2);
	/* --trust self-check: a single signature under threshold 2 is not written. */
	CU_ASSERT_EQUAL(run("policy", "sign", policy_file, "--version", "5", "--expires", "1d",
	                    "--target", "group:eng", "--key", "bob.key", "-o", "b.bundle",
	                    "--trust", "v1.root", NULL),
	                1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "threshold"));
	CU_ASSERT_NOT_EQUAL(access(path("b.bundle"), F_OK), 0);
}

static const struct harness_test tests[] = {
        {"key_generate", test_key_generate},
        {"trust_init_show", test_trust_init_show},
        {"trust_rotate", test_trust_rotate},
        {"policy_sign_verify", test_policy_sign_verify},
        {"policy_sign_refusals", test_policy_sign_refusals},
        {NULL, NULL},
};

int main(int argc, char **argv)
{
	static const struct harness_suite suites[] = {
	        {"admin_trust", suite_init, suite_cleanup, tests},
	        {NULL, NULL, NULL, NULL},
	};
	return harness_main(argc, argv, suites);
}
