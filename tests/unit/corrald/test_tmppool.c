// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the session TMP pool (endpoint/corrald/tmppool.c): the thread sweeps what a
 * killed daemon left, keeps the target number of fresh 0700 directories ready, take renames
 * each out once (never over an existing entry), claim refuses a directory that is no longer
 * what the pool made, free removes what nobody took, and a pool whose directory cannot be
 * created simply has nothing to give; put takes an empty, attribute-free TMP back (owned by us
 * again, 0700) and refuses a symlink, a non-empty one, one with an xattr, or a full pool.
 */
#include "harness.h"
#include "tmppool.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static char *tmpdir;

static int setup(void)
{
	tmpdir = harness_mkdtemp("tmppool");
	return tmpdir ? 0 : -1;
}

static int teardown(void)
{
	harness_rm_rf(tmpdir);
	free(tmpdir);
	return 0;
}

/* Takes one directory, waiting up to 2 s for the thread. */
static bool take_wait(struct cd_tmppool *p, char id[33])
{
	for (int i = 0; i < 200; i++) {
		if (cd_tmppool_take(p, id))
			return true;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return false;
}

static size_t count_entries(const char *prefix_name)
{
	size_t n = 0;
	DIR *d = opendir(tmpdir);
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strncmp(de->d_name, prefix_name, strlen(prefix_name)) == 0)
			n++;
	closedir(d);
	return n;
}

static void test_args(void)
{
	struct cd_tmppool *p = NULL;
	char longp[300];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	CU_ASSERT_EQUAL(cd_tmppool_new(NULL, "x-", 2, &p), -EINVAL);
	CU_ASSERT_EQUAL(cd_tmppool_new("/tmp", NULL, 2, &p), -EINVAL);
	CU_ASSERT_EQUAL(cd_tmppool_new("/tmp", "x-", 0, &p), -EINVAL);
	CU_ASSERT_EQUAL(cd_tmppool_new("/tmp", "x-", CD_TMPPOOL_MAX + 1, &p), -EINVAL);
	CU_ASSERT_EQUAL(cd_tmppool_new(longp, "x-", 2, &p), -EINVAL);
	CU_ASSERT_EQUAL(cd_tmppool_new("/tmp", longp, 2, &p), -EINVAL);
	CU_ASSERT_EQUAL(cd_tmppool_new("/tmp", "a/b", 2, &p), -EINVAL);
	char id[33];
	CU_ASSERT_FALSE(cd_tmppool_take(NULL, id));
	cd_tmppool_free(NULL);
}

static void test_take_claim_free(void)
{
	char prefix[4096];
	snprintf(prefix, sizeof(prefix), "%s/s-", tmpdir);
	/* left by a killed daemon: an empty ready directory (swept) and one with content (kept) */
	char left[4200];
	snprintf(left, sizeof(left), "%s/s-pool-0123", tmpdir);
	CU_ASSERT_EQUAL_FATAL(mkdir(left, 0700), 0);
	snprintf(left, sizeof(left), "%s/s-pool-full", tmpdir);
	CU_ASSERT_EQUAL_FATAL(mkdir(left, 0700), 0);
	snprintf(left, sizeof(left), "%s/s-pool-full/f", tmpdir);
	FILE *f = fopen(left, "we");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fclose(f);
	struct cd_tmppool *p = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_tmppool_new(tmpdir, "s-", 3, &p), 0);
	char ids[5][33];
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_TRUE_FATAL(take_wait(p, ids[i]));
		CU_ASSERT_EQUAL(strlen(ids[i]), 32);
		CU_ASSERT_EQUAL(strspn(ids[i], "0123456789abcdef"), 32);
		for (int j = 0; j < i; j++)
			CU_ASSERT_NOT_EQUAL(strcmp(ids[i], ids[j]), 0);
		char path[8400];
		snprintf(path, sizeof(path), "%s%s", prefix, ids[i]);
		struct stat st;
		CU_ASSERT_EQUAL_FATAL(lstat(path, &st), 0);
		CU_ASSERT_TRUE(S_ISDIR(st.st_mode));
		CU_ASSERT_EQUAL(st.st_mode & 07777, 0700);
		CU_ASSERT_EQUAL(st.st_uid, geteuid());
	}
	/* claim: as made -> given to the owner; tampered ones refused */
	char path[8400];
	snprintf(path, sizeof(path), "%s%s", prefix, ids[0]);
	CU_ASSERT_EQUAL(cd_tmppool_claim(path, getuid(), getgid()), 0);
	snprintf(path, sizeof(path), "%s%s", prefix, ids[1]);
	CU_ASSERT_EQUAL(chmod(path, 0755), 0);
	CU_ASSERT_EQUAL(cd_tmppool_claim(path, getuid(), getgid()), -EPERM);
	snprintf(path, sizeof(path), "%s%s", prefix, ids[2]);
	CU_ASSERT_EQUAL(rmdir(path), 0);
	CU_ASSERT_EQUAL(symlink(tmpdir, path), 0);
	CU_ASSERT_EQUAL(cd_tmppool_claim(path, getuid(), getgid()), -ENOTDIR);
	CU_ASSERT_EQUAL(unlink(path), 0);
	CU_ASSERT_EQUAL(cd_tmppool_claim(path, getuid(), getgid()), -ENOENT);
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "%s%s", prefix, ids[i]);
		(void)rmdir(path);
	}
	/* refilled to the target (the empty leftover swept, the full one kept), then free
	 * removes what nobody took */
	for (int i = 0; i < 200 && count_entries("s-pool-") < 4; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	CU_ASSERT_EQUAL(count_entries("s-pool-"), 4);
	snprintf(left, sizeof(left), "%s/s-pool-0123", tmpdir);
	CU_ASSERT_EQUAL(access(left, F_OK), -1);
	cd_tmppool_free(p);
	CU_ASSERT_EQUAL(count_entries("s-pool-"), 1);
	CU_ASSERT_EQUAL(count_entries("s-"), 1);
	snprintf(left, sizeof(left), "%s/s-pool-full", tmpdir);
	CU_ASSERT_EQUAL(harness_rm_rf(left), 0);
}

/* The taken name exists already (cannot happen with random ids; a squatter): no rename over
 * it, the ready directory is dropped, take says none. */
static void test_rename_refused(void)
{
	struct cd_tmppool *p = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_tmppool_new(tmpdir, "r-", 1, &p), 0);
	for (int i = 0; i < 200 && count_entries("r-pool-") < 1; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	DIR *d = opendir(tmpdir);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	char id[64] = "";
	struct dirent *de;
	while ((de = readdir(d)))
		if (strncmp(de->d_name, "r-pool-", 7) == 0)
			snprintf(id, sizeof(id), "%s", de->d_name + 7);
	closedir(d);
	CU_ASSERT_EQUAL_FATAL(strlen(id), 32);
	char squat[4200];
	snprintf(squat, sizeof(squat), "%s/r-%s", tmpdir, id);
	CU_ASSERT_EQUAL_FATAL(mkdir(squat, 0755), 0);
	char got[33];
	CU_ASSERT_FALSE(cd_tmppool_take(p, got));
	struct stat st;
	CU_ASSERT_EQUAL(stat(squat, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0755); /* untouched */
	cd_tmppool_free(p);
	CU_ASSERT_EQUAL(rmdir(squat), 0);
	CU_ASSERT_EQUAL(count_entries("r-"), 0);
}

static void test_unwritable(void)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/missing", tmpdir);
	struct cd_tmppool *p = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_tmppool_new(dir, "s-", 2, &p), 0);
	struct timespec ts = {0, 100 * 1000 * 1000};
	nanosleep(&ts, NULL);
	char id[33];
	CU_ASSERT_FALSE(cd_tmppool_take(p, id));
	cd_tmppool_free(p); /* does not wait for the 1 s retry */
}

/* Waits until the pool holds `want` ready directories (up to 2 s). */
static void wait_ready(size_t want)
{
	for (int i = 0; i < 200 && count_entries("p-pool-") < want; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static void test_put(void)
{
	struct cd_tmppool *p = NULL;
	char id[33], path[4200], f[4300];
	struct stat st, before;
	CU_ASSERT_EQUAL(cd_tmppool_put(NULL, "/x"), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(cd_tmppool_new(tmpdir, "p-", 1, &p), 0);
	/* a taken directory, given away and left empty with an odd mode: taken back */
	CU_ASSERT_TRUE_FATAL(take_wait(p, id));
	snprintf(path, sizeof(path), "%s/p-%s", tmpdir, id);
	CU_ASSERT_EQUAL(cd_tmppool_claim(path, 65534, 65534), 0);
	CU_ASSERT_EQUAL(chmod(path, 02777), 0);
	CU_ASSERT_EQUAL_FATAL(lstat(path, &before), 0);
	wait_ready(1); /* the thread's refill first: the put goes above the target */
	CU_ASSERT_EQUAL(cd_tmppool_put(p, path), 0);
	CU_ASSERT_EQUAL(access(path, F_OK), -1);
	CU_ASSERT_EQUAL(count_entries("p-pool-"), 2);
	/* the next take is that directory (same inode), as the pool would have made it */
	CU_ASSERT_TRUE_FATAL(take_wait(p, id));
	snprintf(path, sizeof(path), "%s/p-%s", tmpdir, id);
	CU_ASSERT_EQUAL_FATAL(lstat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_ino, before.st_ino);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0700);
	CU_ASSERT_EQUAL(st.st_uid, geteuid());
	CU_ASSERT_EQUAL(cd_tmppool_claim(path, getuid(), getgid()), 0);
	/* not empty: refused (the caller removes it) */
	snprintf(f, sizeof(f), "%s/left", path);
	FILE *fp = fopen(f, "we");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fclose(fp);
	CU_ASSERT_EQUAL(cd_tmppool_put(p, path), -ENOTEMPTY);
	CU_ASSERT_EQUAL(unlink(f), 0);
	/* an extended attribute (an ACL would be one) would follow it to the next user */
	if (setxattr(path, "user.corral-test", "1", 1, 0) == 0) {
		CU_ASSERT_EQUAL(cd_tmppool_put(p, path), -EPERM);
		CU_ASSERT_EQUAL(removexattr(path, "user.corral-test"), 0);
	} else {
		printf("\n    (user xattrs not supported here: %s; that case untested)",
		       strerror(errno));
	}
	/* a symlink in its place: never followed */
	CU_ASSERT_EQUAL(rmdir(path), 0);
	CU_ASSERT_EQUAL(symlink(tmpdir, path), 0);
	CU_ASSERT_EQUAL(cd_tmppool_put(p, path), -ENOTDIR);
	CU_ASSERT_EQUAL(unlink(path), 0);
	CU_ASSERT_EQUAL(cd_tmppool_put(p, path), -ENOENT);
	/* at most CD_TMPPOOL_MAX ready: then refused, the directory stays for the caller */
	int r = 0;
	for (int i = 0; i <= CD_TMPPOOL_MAX && r == 0; i++) {
		snprintf(path, sizeof(path), "%s/p-x%d", tmpdir, i);
		CU_ASSERT_EQUAL_FATAL(mkdir(path, 0700), 0);
		r = cd_tmppool_put(p, path);
	}
	CU_ASSERT_EQUAL(r, -ENOSPC);
	CU_ASSERT_EQUAL(rmdir(path), 0);
	CU_ASSERT_EQUAL(count_entries("p-pool-"), CD_TMPPOOL_MAX);
	cd_tmppool_free(p);
	CU_ASSERT_EQUAL(count_entries("p-"), 0);
}

static const struct harness_test tests[] = {
        {"args", test_args},
        {"take_claim_free", test_take_claim_free},
        {"rename_refused", test_rename_refused},
        {"unwritable", test_unwritable},
        {"put", test_put},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"tmppool", setup, teardown, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
