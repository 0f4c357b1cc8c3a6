/* SPDX-License-Identifier: Apache-2.0 */
/* Escape class: foreign syscall ABIs. An i386 syscall (int $0x80) and an x32 syscall (the
 * 0x40000000 bit) would look up different numbers than the filter checks; both must kill the
 * process (SIGSYS) before doing anything. Each attempt runs in a forked child. */
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "esc.h"

static void attempt(void (*fn)(void), const char *what)
{
	int status = 0;
	pid_t pid = fork();

	if (pid < 0)
		exit(2);
	if (pid == 0) {
		fn();
		_exit(0); /* reaching here means the call ran */
	}
	waitpid(pid, &status, 0);
	esc_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS, 0, 0, what);
}

static void i386_getpid(void)
{
	long ret = 20; /* __NR_getpid on i386 */
	__asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
	/* i386 unshare(CLONE_NEWUSER) = 310 would be the real attack; any call must die */
}

static void i386_unshare(void)
{
	long ret = 310; /* __NR_unshare on i386 */
	long flags = 0x10000000;
	__asm__ volatile("int $0x80" : "+a"(ret) : "b"(flags) : "memory");
	if (ret == 0)
		_exit(0);
	_exit(0);
}

static void x32_getpid(void)
{
	syscall(0x40000000 | 39);
}

static void x32_ptrace(void)
{
	syscall(0x40000000 | 521, 0, 0, 0, 0); /* x32 ptrace */
}

int main(void)
{
	attempt(i386_getpid, "i386 getpid via int $0x80");
	attempt(i386_unshare, "i386 unshare(CLONE_NEWUSER) via int $0x80");
	attempt(x32_getpid, "x32 getpid (nr | 0x40000000)");
	attempt(x32_ptrace, "x32 ptrace");
	return esc_status;
}
