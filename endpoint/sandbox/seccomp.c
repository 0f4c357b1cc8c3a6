/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seccomp filter compiler (libseccomp) and the user-notification supervisor.
 *
 * Compile (once per profile): an always-on baseline of dangerous syscalls plus the profile's
 * additions, each with the profile's action (EPERM through user notification so corrald
 * sees it, kill, or log/continue in audit mode). libseccomp exports the BPF into memory; the
 * child only loads it. In front of libseccomp's program we put a short hand-written prologue
 * for what libseccomp 2.5 cannot express:
 *   - architecture: anything but native x86-64 is killed, and so is an x86-64-ABI call with the
 *     x32 bit (nr >= 0x40000000): libseccomp 2.5 filters keyed on AUDIT_ARCH_X86_64 let x32
 *     numbers fall through to the default (allow) action.
 *   - personality(): only the queries 0 and 0xffffffff pass. The kernel reads the argument as
 *     an unsigned int, so the prologue compares the low 32 bits only ("not in a set of two"
 *     needs two compares on one argument, which libseccomp rejects).
 * Argument compares elsewhere follow the kernel's types: ioctl's request, socket's family and
 * type, clone's flags are 32-bit in the kernel, so they are compared masked to the low 32
 * bits; a full 64-bit equality against TIOCSTI would let 0x100005412 through.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "cleanup.h"
#include "sbx_internal.h"

#define X32_SYSCALL_BIT 0x40000000u
#define SBX_BPF_MAX     4096
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* Unconditionally denied syscalls (the always-on baseline). */
static const char *const baseline_deny[] = {
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register", /* bypass seccomp entirely */
        "ptrace",
        "process_vm_readv",
        "process_vm_writev", /* other processes' memory */
        "bpf",
        "perf_event_open", /* kernel attack surface */
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "mount",
        "umount2",
        "pivot_root",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "move_mount",
        "open_tree",
        "mount_setattr", /* old and new mount API */
        "unshare",
        "setns", /* namespaces (user ns escalation) */
        "keyctl",
        "add_key",
        "request_key", /* keyrings are not namespaced */
        "userfaultfd", /* race widening for kernel exploits */
        "acct",
        "swapon",
        "swapoff",
        "reboot",
        "syslog",
        "open_by_handle_at",
        "iopl",
        "ioperm",
        "quotactl",
        "lookup_dcookie",
        "uselib",
        "vhangup",
};

static int add(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
               struct scmp_arg_cmp a)
{
	int nr = seccomp_syscall_resolve_name(name);
	int r;

	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture */
	r = n ? seccomp_rule_add(ctx, action, nr, 1, a) : seccomp_rule_add(ctx, action, nr, 0);
	return r == -EEXIST ? 0 : r;
}

/* Reads libseccomp's exported BPF back from a memfd. */
static int export_bpf(scmp_filter_ctx ctx, struct sock_filter **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = memfd_create("sbx-seccomp", MFD_CLOEXEC);
	struct stat st;
	struct sock_filter *prog;
	int r;

	if (fd < 0)
		return -errno;
	r = seccomp_export_bpf(ctx, fd);
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) != 0 ||
	    (size_t)st.st_size / sizeof(struct sock_filter) > SBX_BPF_MAX)
		return -EMSGSIZE;
	prog = malloc(st.st_size);
	if (!prog)
		return -ENOMEM;
	if (pread(fd, prog, st.st_size, 0) != st.st_size) {
		free(prog);
		return -EIO;
	}
	*ret = prog;
	*ret_len = (size_t)st.st_size / sizeof(struct sock_filter);
	return 0;
}

/* Prepends the architecture and personality() prologue (see the file comment). */
static int prepend_prologue(struct sock_filter **prog, size_t *len, uint32_t deny_ret)
{
	const struct sock_filter pro[] = {
	        /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	        /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 7), /* ->9 */
	        /* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	        /* 3 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 5, 0),  /* ->9 */
	        /* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_personality, 0, 5), /* ->10 */
	        /* 5 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
	        /* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 3, 0),           /* ->10 */
	        /* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 2, 0), /* ->10 */
	        /* 8 */ BPF_STMT(BPF_RET | BPF_K, deny_ret),
	        /* 9 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_filter *n;
	size_t np = ELEMENTSOF(pro);

	if (*len + np > SBX_BPF_MAX)
		return -EMSGSIZE;
	n = malloc((*len + np) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	memcpy(n, pro, sizeof(pro));
	memcpy(n + np, *prog, *len * sizeof(*n));
	free(*prog);
	*prog = n;
	*len += np;
	return 0;
}

int sbx_seccomp_compile(struct sbx_compiled *c, const Corral__Profile *p,
                        const struct sbx_features *f, char *err, size_t errlen)
{
	const Corral__SyscallRules *sr = p->syscalls;
	Corral__SyscallAction act = sr ? sr->action : CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_ERRNO;
	bool baseline = !(sr && sr->baseline_disabled);
	scmp_filter_ctx ctx;
	uint32_t action, deny_ret;
	int r;

	if (!f->seccomp) {
		snprintf(err, errlen, "seccomp is unavailable on this host");
		return -ENOTSUP;
	}
	/* The action on a violation: report through user notification when the kernel has
	 * it (the supervisor answers EPERM, or CONTINUE in audit/log mode). */
	if (c->audit || act == CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_LOG) {
		c->seccomp_notify_continue = true;
		if (f->seccomp_notify) {
			action = SCMP_ACT_NOTIFY;
			deny_ret = SECCOMP_RET_USER_NOTIF;
		} else {
			action = SCMP_ACT_LOG;
			deny_ret = SECCOMP_RET_LOG;
		}
	} else if (act == CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_KILL) {
		action = SCMP_ACT_KILL_PROCESS;
		deny_ret = SECCOMP_RET_KILL_PROCESS;
	} else if (f->seccomp_notify) {
		action = SCMP_ACT_NOTIFY;
		deny_ret = SECCOMP_RET_USER_NOTIF;
	} else {
		action = SCMP_ACT_ERRNO(EPERM);
		deny_ret = SECCOMP_RET_ERRNO | EPERM;
	}
	c->seccomp_notify = action == SCMP_ACT_NOTIFY;

	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -ENOMEM;
	/* Foreign architectures (i386 via int $0x80) are killed, never allowed. */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	/* A binary tree over syscall numbers instead of a linear chain: allowed calls whose
	 * verdict does not depend on arguments are then also cached by the kernel's per-nr
	 * action bitmap, so they cost (almost) nothing. */
	if (r >= 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (r < 0)
		goto out;
	if (baseline) {
		for (size_t i = 0; i < ELEMENTSOF(baseline_deny); i++)
			if ((r = add(ctx, action, baseline_deny[i], 0, (struct scmp_arg_cmp){0})) <
			    0)
				goto out;
		/* clone creating namespaces (a user namespace hands out capabilities). */
		const uint64_t ns = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
		                    CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
		for (unsigned bit = 0; bit < 64; bit++) {
			uint64_t m = 1ULL << bit;
			if (!(ns & m))
				continue;
			if ((r = add(ctx, action, "clone", 1, SCMP_A0(SCMP_CMP_MASKED_EQ, m, m))) <
			    0)
				goto out;
		}
		/* clone3 passes flags in memory seccomp cannot read: ENOSYS makes libc fall
		 * back to clone(), whose flags we can check. Not a violation, no report. */
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) < 0)
			goto out;
		/* Terminal injection. */
		if ((r = add(ctx, action, "ioctl", 1,
		             SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI))) < 0 ||
		    (r = add(ctx, action, "ioctl", 1,
		             SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCLINUX))) < 0)
			goto out;
		/* Packet and raw sockets. */
		if ((r = add(ctx, action, "socket", 1,
		             SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, AF_PACKET))) < 0 ||
		    (r = add(ctx, action, "socket", 1,
		             SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW))) < 0)
			goto out;
		/* Fileless exec: execveat(fd, "", ..., AT_EMPTY_PATH) and executable memfds. */
		if ((r = add(ctx, action, "execveat", 1,
		             SCMP_A4(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH))) < 0 ||
		    (r = add(ctx, action, "memfd_create", 1,
		             SCMP_A1(SCMP_CMP_MASKED_EQ, MFD_EXEC, MFD_EXEC))) < 0)
			goto out;
	}
	for (size_t i = 0; sr && i < sr->n_deny; i++) {
		int nr = seccomp_syscall_resolve_name(sr->deny[i]);
		if (nr == __NR_SCMP_ERROR) {
			snprintf(err, errlen, "unknown syscall \"%s\"", sr->deny[i]);
			r = -EINVAL;
			goto out;
		}
		r = seccomp_rule_add(ctx, action, nr, 0);
		if (r < 0 && r != -EEXIST)
			goto out;
	}
	r = export_bpf(ctx, &c->bpf, &c->bpf_len);
	if (r < 0)
		goto out;
	/* The personality check is part of the baseline; the arch check is always on. */
	r = prepend_prologue(&c->bpf, &c->bpf_len, baseline ? deny_ret : SECCOMP_RET_ALLOW);
	if (r < 0)
		goto out;
	r = sbx_compiled_add_layer(c, false, "seccomp:arch");
	if (r >= 0 && baseline)
		r = sbx_compiled_add_layer(c, false, "seccomp:baseline");
	if (r >= 0 && !baseline)
		r = sbx_compiled_add_layer(c, true, "seccomp:baseline (disabled by policy)");
	if (r >= 0)
		r = sbx_compiled_add_layer(c, false, "seccomp:%s",
		                           action == SCMP_ACT_NOTIFY         ? "notify"
		                           : action == SCMP_ACT_KILL_PROCESS ? "kill"
		                           : action == SCMP_ACT_LOG          ? "log"
		                                                             : "errno");
	if (r >= 0 && !f->seccomp_notify && act != CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_KILL)
		r = sbx_compiled_add_layer(c, true,
		                           "seccomp:notify (unavailable: violations are "
		                           "enforced but not reported)");
out:
	if (r < 0 && !err[0])
		snprintf(err, errlen, "seccomp filter: %s", strerror(-r));
	seccomp_release(ctx);
	return r;
}

/* ---- child side ---------------------------------------------------------------------------- */

/*
 * Sends the listener fd to the parent (SCM_RIGHTS) before exec; fd < 0 sends a bare 'B'
 * ("busy": no listener could be created, see below).
 */
static int send_fd(int sock, int fd)
{
	char data = fd >= 0 ? 'N' : 'B';
	struct iovec iov = {.iov_base = &data, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;

	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

void sbx_seccomp_apply(const struct sbx_plan *p)
{
	const struct sbx_compiled *c = p->c;
	struct sock_fprog prog = {.len = (unsigned short)c->bpf_len, .filter = c->bpf};
	unsigned flags = c->seccomp_notify ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
	long fd;

	if (!c->bpf)
		return;
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (fd < 0 && errno == EBUSY && flags) {
		/* A filter above us (an enclosing corral session) already has a listener and
		 * the kernel allows one per chain. Without a listener the notify actions fail
		 * the call with ENOSYS: still denied, but unreported (the newest filter's
		 * notification wins, so the outer listener does not see it either). The parent
		 * is told, and lists it in the session's layers. */
		fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
		if (fd < 0)
			sbx_child_fail(p, "seccomp", errno, "load filter");
		if (send_fd(p->notify_sock, -1) < 0)
			sbx_child_fail(p, "seccomp", errno, "send notify status");
		return;
	}
	if (fd < 0)
		sbx_child_fail(p, "seccomp", errno, "load filter");
	if (c->seccomp_notify) {
		if (send_fd(p->notify_sock, (int)fd) < 0)
			sbx_child_fail(p, "seccomp", errno, "send notify fd");
		close((int)fd);
	}
}

/* ---- supervisor ----------------------------------------------------------------------------- */

int sbx_notify_handle(int fd, bool audit, sbx_notify_fn cb, void *userdata)
{
	struct seccomp_notif_sizes sizes;
	_cleanup_free_ struct seccomp_notif *req = NULL;
	_cleanup_free_ struct seccomp_notif_resp *resp = NULL;
	struct sbx_syscall_event ev;
	char *name;

	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0)
		return -errno;
	/* The kernel's structs may be larger than ours: allocate what it says. */
	req = calloc(1, sizes.seccomp_notif > sizeof(*req) ? sizes.seccomp_notif : sizeof(*req));
	resp = calloc(1, sizes.seccomp_notif_resp > sizeof(*resp) ? sizes.seccomp_notif_resp
	                                                          : sizeof(*resp));
	if (!req || !resp)
		return -ENOMEM;
	if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0)
		return errno == ENOENT ? 0 : -errno; /* ENOENT: the target died meanwhile */
	ev = (struct sbx_syscall_event){
	        .pid = (pid_t)req->pid,
	        .nr = req->data.nr,
	        .arch = req->data.arch,
	        .allowed = audit,
	};
	memcpy(ev.args, req->data.args, sizeof(ev.args));
	name = seccomp_syscall_resolve_num_arch(req->data.arch, req->data.nr);
	ev.name = name ? name : "?";
	resp->id = req->id;
	if (audit) {
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	} else {
		resp->error = -EPERM;
	}
	/* Answer first: the session is blocked until we do; reporting can wait. */
	int r = ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, resp) < 0 ? -errno : 1;
	if (r == -ENOENT)
		r = 0;
	if (cb)
		cb(&ev, userdata);
	free(name);
	return r;
}

const char *sbx_syscall_name(int nr)
{
	static __thread char buf[64];
	char *n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);

	if (!n)
		return "?";
	snprintf(buf, sizeof(buf), "%s", n);
	free(n);
	return buf;
}
