/* SPDX-License-Identifier: Apache-2.0 */
/* Escape class: symlink, hardlink and rename tricks to reach a denied tree from a writable
 * one. Landlock checks the real file (symlinks) and the rights on both ends of a link or
 * rename (EACCES; EXDEV when only the REFER right is missing). */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "esc.h"

int main(void)
{
	const char *secret = esc_env("ESC_SECRET"), *tmp = esc_env("ESC_TMP");
	const char *denied = esc_env("ESC_DENIED_DIR");
	char link_path[4096], hard[4096], moved[4096], mine[4096], into[4096];
	int fd;

	snprintf(link_path, sizeof(link_path), "%s/link-to-secret", tmp);
	snprintf(hard, sizeof(hard), "%s/hard-secret", tmp);
	snprintf(moved, sizeof(moved), "%s/moved-secret", tmp);
	snprintf(mine, sizeof(mine), "%s/mine", tmp);
	snprintf(into, sizeof(into), "%s/planted", denied);

	unlink(link_path);
	unlink(mine);
	/* a symlink may be created, but following it meets the target's rules */
	if (symlink(secret, link_path) < 0)
		printf("note: symlink creation refused (%s)\n", strerror(errno));
	ESC_DENIED(open(link_path, O_RDONLY | O_CLOEXEC), EACCES, "open a symlink into .ssh");
	ESC_DENIED2(link(secret, hard), EXDEV, EACCES, "hardlink a denied file into ${TMP}");
	ESC_DENIED2(rename(secret, moved), EXDEV, EACCES, "rename a denied file into ${TMP}");
	fd = open(mine, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		printf("setup: cannot create %s: %s\n", mine, strerror(errno));
		return 2;
	}
	close(fd);
	ESC_DENIED2(rename(mine, into), EXDEV, EACCES, "rename a file into the denied tree");
	ESC_DENIED2(link(mine, into), EXDEV, EACCES, "hardlink a file into the denied tree");
	return esc_status;
}
