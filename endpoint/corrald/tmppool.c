// SPDX-License-Identifier: Apache-2.0
/*
 * Pre-created per-session TMP directories (see tmppool.h). One thread does the mkdir calls
 * and nothing else: no allocation, no stdio, so a fork() in the daemon's main thread (the
 * worker start) never inherits a lock this thread holds besides the pool's own mutex, which
 * the child does not touch.
 */
#include "tmppool.h"

#include "cleanup.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define PREFIX_MAX   200
#define NAME_MAX_LEN 64

struct cd_tmppool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool stop;
	size_t target, n;
	char ids[CD_TMPPOOL_MAX][33];
	char dir[PREFIX_MAX], name[NAME_MAX_LEN];
};

/* DIR/NAMEpool-<id> (ready) or DIR/NAME<id> (taken). */
static void dir_path(const struct cd_tmppool *p, const char *id, bool ready, char *out, size_t len)
{
	snprintf(out, len, "%s/%s%s%s", p->dir, p->name, ready ? "pool-" : "", id);
}

/* Removes ready directories a killed daemon left (empty, ours): rmdir never follows a
 * symlink and never removes anything with content. */
static void sweep(struct cd_tmppool *p)
{
	char ready[NAME_MAX_LEN + 8];
	snprintf(ready, sizeof(ready), "%spool-", p->name);
	int dfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (strncmp(de->d_name, ready, strlen(ready)) == 0 &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode) && st.st_uid == geteuid())
			(void)unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

static void *refill(void *arg)
{
	struct cd_tmppool *p = arg;
	sweep(p);
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		if (p->n >= p->target) {
			pthread_cond_wait(&p->cond, &p->lock);
			continue;
		}
		pthread_mutex_unlock(&p->lock);
		uint8_t rnd[16];
		char id[33], path[PREFIX_MAX + NAME_MAX_LEN + 48];
		arc4random_buf(rnd, sizeof(rnd));
		util_hex(rnd, sizeof(rnd), id);
		dir_path(p, id, true, path, sizeof(path));
		bool ok = mkdir(path, 0700) == 0;
		pthread_mutex_lock(&p->lock);
		if (ok) {
			memcpy(p->ids[p->n++], id, sizeof(id));
		} else if (!p->stop) {
			/* e.g. /tmp unwritable: sessions fall back to their own mkdir (and report
			 * its error); retry later rather than spin */
			struct timespec at;
			clock_gettime(CLOCK_REALTIME, &at);
			at.tv_sec += 1;
			pthread_cond_timedwait(&p->cond, &p->lock, &at);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int cd_tmppool_new(const char *dir, const char *name, size_t target, struct cd_tmppool **ret_pool)
{
	if (!dir || !name || strlen(dir) >= PREFIX_MAX || strlen(name) >= NAME_MAX_LEN ||
	    strchr(name, '/') || target == 0 || target > CD_TMPPOOL_MAX)
		return -EINVAL;
	struct cd_tmppool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	memcpy(p->dir, dir, strlen(dir) + 1);
	memcpy(p->name, name, strlen(name) + 1);
	p->target = target;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	/* The thread takes no signal: the daemon reads its signals from a signalfd, which
	 * works only while every thread blocks them. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&p->thread, NULL, refill, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return -r;
	}
	*ret_pool = p;
	return 0;
}

bool cd_tmppool_take(struct cd_tmppool *pool, char ret_id[33])
{
	if (!pool)
		return false;
	char id[33];
	bool got = false;
	pthread_mutex_lock(&pool->lock);
	if (pool->n > 0) {
		memcpy(id, pool->ids[--pool->n], sizeof(id));
		got = true;
		pthread_cond_signal(&pool->cond);
	}
	pthread_mutex_unlock(&pool->lock);
	if (!got)
		return false;
	char from[PREFIX_MAX + NAME_MAX_LEN + 48], to[PREFIX_MAX + NAME_MAX_LEN + 48];
	dir_path(pool, id, true, from, sizeof(from));
	dir_path(pool, id, false, to, sizeof(to));
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) < 0) {
		(void)rmdir(from);
		return false;
	}
	memcpy(ret_id, id, sizeof(id));
	return true;
}

int cd_tmppool_claim(const char *path, uid_t uid, gid_t gid)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || (st.st_mode & 07777) != 0700 || st.st_uid != geteuid())
		return -EPERM;
	/* exactly 0700 was checked: no set-id bit for chown to clear, so no chmod after it */
	if (fchown(fd, uid, gid) < 0)
		return -errno;
	return 0;
}

/* True when the directory open at fd has no entry but "." and "..". */
static int dir_empty(int fd)
{
	/* getdents64 directly: no DIR allocation, and one call answers for an empty directory */
	union {
		struct dirent64 d;
		char buf[512];
	} u;
	long n = syscall(SYS_getdents64, fd, u.buf, sizeof(u.buf));
	if (n < 0)
		return -errno;
	for (long off = 0; off < n;) {
		const struct dirent64 *de = (const struct dirent64 *)(u.buf + off);
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			return 0;
		off += de->d_reclen;
	}
	/* a full buffer of only "." and ".." cannot happen; anything more was seen above */
	return 1;
}

int cd_tmppool_put(struct cd_tmppool *pool, const char *path)
{
	if (!pool || !path)
		return -EINVAL;
	/* Up to CD_TMPPOOL_MAX, above the thread's target: the thread refills right after a
	 * take, so with a limit of `target` a put would find no room in the steady state. */
	pthread_mutex_lock(&pool->lock);
	bool room = pool->n < CD_TMPPOOL_MAX;
	pthread_mutex_unlock(&pool->lock);
	if (!room)
		return -ENOSPC;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fchown(fd, geteuid(), getegid()) < 0 || fchmod(fd, 0700) < 0)
		return -errno;
	ssize_t x = flistxattr(fd, NULL, 0);
	if (x < 0)
		return -errno;
	if (x > 0)
		return -EPERM;
	int e = dir_empty(fd);
	if (e < 0)
		return e;
	if (!e)
		return -ENOTEMPTY;
	uint8_t rnd[16];
	char id[33], to[PREFIX_MAX + NAME_MAX_LEN + 48];
	arc4random_buf(rnd, sizeof(rnd));
	util_hex(rnd, sizeof(rnd), id);
	dir_path(pool, id, true, to, sizeof(to));
	if (renameat2(AT_FDCWD, path, AT_FDCWD, to, RENAME_NOREPLACE) < 0)
		return -errno;
	pthread_mutex_lock(&pool->lock);
	room = pool->n < CD_TMPPOOL_MAX;
	if (room)
		memcpy(pool->ids[pool->n++], id, sizeof(id));
	pthread_mutex_unlock(&pool->lock);
	if (!room) { /* filled meanwhile by the thread */
		(void)rmdir(to);
		return -ENOSPC;
	}
	return 0;
}

void cd_tmppool_free(struct cd_tmppool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stop = true;
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	pthread_join(pool->thread, NULL);
	for (size_t i = 0; i < pool->n; i++) {
		char path[PREFIX_MAX + NAME_MAX_LEN + 48];
		dir_path(pool, pool->ids[i], true, path, sizeof(path));
		(void)rmdir(path);
	}
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}
