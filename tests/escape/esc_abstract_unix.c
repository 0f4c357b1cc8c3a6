/* SPDX-License-Identifier: Apache-2.0 */
/* Escape class: connecting to an abstract Unix socket served outside the sandbox (abstract
 * sockets have no file, so no path rule applies). Landlock's abstract-unix scope refuses it;
 * raw and packet sockets are refused by the seccomp baseline. */
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "esc.h"

int main(void)
{
	const char *name = esc_env("ESC_ABSTRACT");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return 2;
	/* sun_path[0] = '\0' marks the abstract namespace */
	memcpy(sa.sun_path + 1, name, strlen(name));
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	ESC_DENIED(connect(fd, (struct sockaddr *)&sa, len), EPERM,
	           "connect to an outside abstract socket");
	ESC_DENIED(socket(AF_PACKET, SOCK_RAW, 0), EPERM, "socket(AF_PACKET)");
	ESC_DENIED(socket(AF_INET, SOCK_RAW, 1), EPERM, "socket(AF_INET, SOCK_RAW)");
	return esc_status;
}
