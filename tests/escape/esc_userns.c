/* SPDX-License-Identifier: Apache-2.0 */
/* Escape class: creating a user namespace (which hands out capabilities inside it) through
 * unshare, clone flags or clone3; and joining another namespace with setns. */
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "esc.h"

int main(void)
{
	long r;

	ESC_DENIED(unshare(CLONE_NEWUSER), EPERM, "unshare(CLONE_NEWUSER)");
	ESC_DENIED(unshare(CLONE_NEWNS), EPERM, "unshare(CLONE_NEWNS)");
	/* raw clone: flags in the first argument, child would exit at once */
	r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	esc_expect(r < 0, errno, EPERM, "clone(CLONE_NEWUSER)");
	/* high bits set above the 32-bit flags must not hide CLONE_NEWUSER */
	r = syscall(SYS_clone, 0x100000000UL | CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	esc_expect(r < 0, errno, EPERM, "clone(0x100000000 | CLONE_NEWUSER)");
	ESC_DENIED(syscall(SYS_clone3, NULL, 0), ENOSYS, "clone3 (flags unreadable: ENOSYS)");
	ESC_DENIED(setns(0, 0), EPERM, "setns");
	return esc_status;
}
