/* SPDX-License-Identifier: Apache-2.0 */
/* Escape class: reaching a denied file through /proc magic links (/proc/self/root,
 * /proc/self/cwd). Landlock checks the resolved file, whatever the path. */
#include <fcntl.h>
#include <unistd.h>

#include "esc.h"

int main(void)
{
	const char *secret = esc_env("ESC_SECRET");
	char path[4096];

	snprintf(path, sizeof(path), "/proc/self/root%s", secret);
	ESC_DENIED(open(path, O_RDONLY | O_CLOEXEC), EACCES, "open /proc/self/root/<secret>");
	snprintf(path, sizeof(path), "/proc/%d/root%s", (int)getpid(), secret);
	ESC_DENIED(open(path, O_RDONLY | O_CLOEXEC), EACCES, "open /proc/<pid>/root/<secret>");
	if (chdir(esc_env("ESC_HOME")) == 0)
		ESC_DENIED(open("/proc/self/cwd/.ssh/id_ed25519", O_RDONLY | O_CLOEXEC), EACCES,
		           "open /proc/self/cwd/.ssh/id_ed25519");
	return esc_status;
}
