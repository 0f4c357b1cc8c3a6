/* SPDX-License-Identifier: Apache-2.0 */
/* Escape class: writing outside the allowed paths, reading a denied file, writing a read-only
 * system path. Landlock must refuse each with EACCES (the namespace tier's read-only root may
 * refuse first with EROFS). */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "esc.h"

int main(void)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/planted", esc_env("ESC_OUTSIDE"));
	ESC_DENIED2(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644), EACCES, EROFS,
	            "create a file outside the write set");
	ESC_DENIED(open(esc_env("ESC_SECRET"), O_RDONLY | O_CLOEXEC), EACCES,
	           "read a file in a denied tree");
	ESC_DENIED2(open("/etc/passwd", O_WRONLY | O_CLOEXEC), EACCES, EROFS, "write /etc/passwd");
	ESC_DENIED2(mkdir("/usr/corral-escape", 0755), EACCES, EROFS, "mkdir under /usr");
	snprintf(path, sizeof(path), "%s/.bashrc", esc_env("ESC_HOME"));
	ESC_DENIED2(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644), EACCES, EROFS,
	            "create a file directly in ${HOME} (ancestor of a carve-out, read-only)");
	return esc_status;
}
