/* SPDX-License-Identifier: Apache-2.0 */
/* Escape class: signals to a process outside the sandbox running as the same user (ESC_PID).
 * Landlock's signal scope (ABI 6) refuses them with EPERM. */
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "esc.h"

int main(void)
{
	pid_t pid = (pid_t)atoi(esc_env("ESC_PID"));

	ESC_DENIED(kill(pid, SIGKILL), EPERM, "kill(outside pid, SIGKILL)");
	ESC_DENIED(kill(pid, SIGTERM), EPERM, "kill(outside pid, SIGTERM)");
	ESC_DENIED(syscall(SYS_tgkill, pid, pid, SIGKILL), EPERM, "tgkill(outside pid)");
	ESC_DENIED(kill(1, SIGTERM), EPERM, "kill(1, SIGTERM)");
	return esc_status;
}
