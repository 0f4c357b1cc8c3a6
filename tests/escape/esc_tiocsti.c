/* SPDX-License-Identifier: Apache-2.0 */
/* Escape class: terminal injection. TIOCSTI pushes bytes into the tty's input queue (commands
 * for the user's shell after the session ends); TIOCLINUX can do similar on a VT. The request
 * is compared on its low 32 bits, as the kernel reads it: 0x100005412 is TIOCSTI too. stdin
 * is a pty here. */
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "esc.h"

int main(void)
{
	char c = 'x';

	if (!isatty(0)) {
		printf("setup: stdin is not a tty\n");
		return 2;
	}
	ESC_DENIED(ioctl(0, TIOCSTI, &c), EPERM, "ioctl(TIOCSTI)");
	ESC_DENIED(syscall(SYS_ioctl, 0, 0x100000000UL | TIOCSTI, &c), EPERM,
	           "ioctl(0x100000000 | TIOCSTI)");
	ESC_DENIED(syscall(SYS_ioctl, 0, 0xffffffff00000000UL | TIOCSTI, &c), EPERM,
	           "ioctl(0xffffffff00000000 | TIOCSTI)");
	ESC_DENIED(ioctl(0, TIOCLINUX, &c), EPERM, "ioctl(TIOCLINUX)");
	return esc_status;
}
