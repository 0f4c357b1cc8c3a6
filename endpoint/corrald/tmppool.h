/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A few per-session TMP directories created ahead of time by a background thread, so that
 * `corral run` does not wait for the mkdir: on the test VM's ext4 /tmp a directory creation
 * blocks for ~1 ms (0.05-5 ms) of disk I/O, the largest single wait of a session start.
 *
 * A ready directory is DIR/NAMEpool-<id>, <id> 32 hex digits of fresh randomness (the session
 * id of the session that takes it), created mode 0700 and owned by corrald's euid (root): in
 * the sticky /tmp nobody else can remove, rename or fill it. Taking it renames it to
 * DIR/NAME<id> (never over an existing entry); the session checks it again
 * (cd_tmppool_claim) before handing it to the session user. Ready directories left behind by
 * a killed daemon are removed by the next pool's thread before it creates new ones (with two
 * daemons on one host, e.g. in tests, one may sweep the other's: that one's take then fails
 * and its session makes its own directory, as without a pool).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CD_TMPPOOL_MAX 8

struct cd_tmppool; /* opaque */

/*
 * Starts the pool: a thread keeps `target` (1..CD_TMPPOOL_MAX) directories ready in `dir`
 * (such as "/tmp") named `name` (such as "corral-") + "pool-" + id; both strings are copied.
 * Returns 0 or -EINVAL, -ENOMEM, or the pthread_create error.
 */
int cd_tmppool_new(const char *dir, const char *name, size_t target, struct cd_tmppool **ret_pool);

/*
 * Takes one ready directory without waiting and renames it to DIR/NAME<id>: copies the id
 * (33 bytes with the NUL) to ret_id and returns true, or false when none is ready or the
 * rename failed (the caller then creates one itself). The directory belongs to the caller from
 * then on. NULL pool: false.
 */
bool cd_tmppool_take(struct cd_tmppool *pool, char ret_id[33]);

/*
 * Verifies that `path` (a directory taken from the pool) is still what the pool created: a
 * directory, not a symlink, mode 0700, owned by our euid. Then gives it to uid:gid (mode
 * 0700). Returns 0, -errno from open/fchown/fchmod, or -EPERM when it is not as created.
 */
int cd_tmppool_claim(const char *path, uid_t uid, gid_t gid);

/*
 * Gives a session's TMP at `path` (DIR/NAME<id>) back to the pool instead of removing it, so
 * that in the steady state no directory is created or deleted at all (on ext4 the creation's
 * free-inode search, which skips recently deleted inodes, was the largest CPU cost of a
 * session). In order: opened without following a symlink; made ours again, mode 0700 (from
 * then on nobody else can add an entry: creation checks the directory's owner and mode under
 * the same inode lock that chown takes); reused only when it carries no extended attribute
 * (an ACL the session user set would follow the directory to its next user) and is empty;
 * renamed to a new ready name (never over an entry). The pool keeps up to CD_TMPPOOL_MAX this
 * way (its thread refills only up to its target, and only when takes outrun puts). Returns 0
 * when the pool took it; -ENOSPC (CD_TMPPOOL_MAX ready), -EPERM (attributes), -ENOTEMPTY, or -errno
 * of a step: the caller then removes the directory itself, as without a pool. NULL pool: -EINVAL.
 */
int cd_tmppool_put(struct cd_tmppool *pool, const char *path);

/* Stops the thread and removes the directories nobody took. NULL is fine. */
void cd_tmppool_free(struct cd_tmppool *pool);
