/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Filesystem (Landlock) denials of sessions, read from the kernel audit subsystem.
 *
 * Landlock (kernel >= 6.15, ABI 7) reports a denial only as audit records: type 1423
 * (AUDIT_LANDLOCK_ACCESS: "domain=<hex> blockers=fs.read_file path=... dev=... ino=...") and
 * 1424 (AUDIT_LANDLOCK_DOMAIN: "domain=<hex> status=allocated mode=enforcing pid=<creator>
 * uid=... exe=... comm=...", emitted right after the first access record of a domain, and
 * "status=deallocated denials=N" when the domain is freed). corrald joins the audit netlink
 * multicast group AUDIT_NLGRP_READLOG (CAP_AUDIT_READ), which never displaces an auditd. When
 * audit is off (these hosts boot with it off and run no auditd) it installs the task rule
 * `-a never,task` first, so no process pays for syscall auditing, then enables audit; it
 * remembers exactly what it changed and undoes that on a clean exit (cd_fsaudit_restore).
 *
 * A domain is mapped to a session by its creator pid: the session's first process calls
 * landlock_restrict_self in the sandbox engine before it execs the agent (the engine passes
 * LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON, sbx_set_landlock_audit, so the agent's denials are
 * logged at all), and the creator's exe must be corrald's own binary (an agent that sandboxes
 * itself again creates domains of its own, which are not the profile's). Access records of a
 * domain not mapped yet wait in a bounded queue for its domain record. fs.* blockers become
 * VIOLATION/FILESYSTEM events; net.* blockers (the Landlock TCP port rules that stand in for
 * BPF egress, net:landlock-ports) VIOLATION/NETWORK events; scope.* blockers are not reported.
 *
 * Everything runs on corrald's event loop thread (no locking). Nothing here logs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <corral.pb-c.h>

struct cd_fsaudit;

/* Audit record types (linux/audit.h of kernels >= 6.15; Debian 12's headers lack them). */
#define CD_FSAUDIT_TYPE_ACCESS 1423
#define CD_FSAUDIT_TYPE_DOMAIN 1424
/* AUDIT_CONFIG_CHANGE: audit switched off by someone else ends reporting (honestly). */
#define CD_FSAUDIT_TYPE_CONFIG_CHANGE 1305
/* Longest record text the kernel sends (MAX_AUDIT_MESSAGE_LENGTH); longer is refused. */
#define CD_FSAUDIT_RECORD_MAX 8970u
/* Longest decoded path/exe kept (PATH_MAX); the kernel never logs a longer one. */
#define CD_FSAUDIT_PATH_MAX 4096u
/* Longest address text (INET6_ADDRSTRLEN). */
#define CD_FSAUDIT_ADDR_MAX 46u
/* Access records waiting for their domain record, at most; the oldest goes first. */
#define CD_FSAUDIT_PENDING_MAX 64u
/* A pending access record older than this is dropped (its domain record never came). */
#define CD_FSAUDIT_PENDING_MS 2000u
/* An ended session's domain stays mapped this long for records still in flight. */
#define CD_FSAUDIT_GRACE_MS 10000u
/* Filesystem violations per second and session; the rest are counted in `suppressed`. */
#define CD_FSAUDIT_PER_S 50u

enum cd_fsaudit_kind {
	CD_FSAUDIT_ACCESS,
	CD_FSAUDIT_DOMAIN_ALLOCATED,
	CD_FSAUDIT_DOMAIN_DEALLOCATED,
};

/* One parsed Landlock record. Plain data; strings are decoded and NUL-terminated. */
struct cd_fsaudit_record {
	enum cd_fsaudit_kind kind;
	uint64_t serial; /* audit(<time>:<serial>) */
	uint64_t domain; /* never 0 */
	/* access */
	char blockers[256];                   /* "fs.read_file", "fs.make_reg,fs.refer", ... */
	char object[CD_FSAUDIT_PATH_MAX + 1]; /* path= (or name= when object_is_name), "" if none */
	bool object_is_name; /* a dentry's last component only (no full path was logged) */
	char dev[64];
	uint64_t ino;
	bool has_ino;
	char daddr[CD_FSAUDIT_ADDR_MAX]; /* net.connect_tcp: destination address, else "" */
	uint16_t dport;                  /* net.connect_tcp: destination port, else 0 */
	uint16_t sport;                  /* net.bind_tcp: the port, else 0 */
	/* domain allocated */
	pid_t pid; /* the domain's creator */
	uint32_t uid;
	char exe[CD_FSAUDIT_PATH_MAX + 1];
	char comm[64];
	/* domain deallocated */
	uint64_t denials;
};

/*
 * Parses the text of one audit record of netlink message type `type`. Returns 1 with *ret
 * filled for a Landlock record, 0 for another record type (ignored, *ret untouched),
 * -EMSGSIZE when `len` exceeds CD_FSAUDIT_RECORD_MAX, -EBADMSG for a malformed record with a
 * static reason in *ret_reason (may be NULL). Unknown fields are ignored; a known field twice,
 * a value of the wrong form or a missing required field is malformed.
 */
int cd_fsaudit_parse(int type, const void *buf, size_t len, struct cd_fsaudit_record *ret,
                     const char **ret_reason);

/* Writes one event to the outbox (the daemon's emit). Returns 0 or -errno. */
typedef int (*cd_fsaudit_emit_fn)(void *userdata, Corral__Event *ev);

/* What setup changed, so that exactly that is undone. */
struct cd_fsaudit_changes {
	bool rule_added;    /* we installed -a never,task (EEXIST: it was there already) */
	bool audit_enabled; /* we switched audit from off to on */
};

enum cd_fsaudit_mode {
	CD_FSAUDIT_MODE_OFF,  /* configuration `landlock_audit = off` */
	CD_FSAUDIT_MODE_AUTO, /* set up when the kernel can (default) */
};

/*
 * Sets up reading Landlock records: nothing for MODE_OFF or `landlock_abi` < 7; otherwise the
 * multicast socket, then (audit off) the never-task rule and enabling audit. Failing to set
 * up is not an error: the object then reports unavailable with the reason
 * (cd_fsaudit_available/cd_fsaudit_status) and sessions say so in their layers.
 * `creator_exe` is the executable whose domains are sessions' (NULL = /proc/self/exe); copied.
 * `inherited` (may be NULL): what a previous corrald on the same state changed and never
 * undid (it was killed); adopted, so that this one undoes it, when audit is still on and no
 * auditd has registered since (cd_fsaudit_ctl_setup).
 * When corrald runs in a network namespace other than pid 1's, the audit sockets are created
 * in pid 1's (the kernel multicasts audit records only in the initial one) and the calling
 * thread returns to its own. Returns 0 with *ret owned by the caller (cd_fsaudit_free),
 * -ENOMEM, or -errno when returning to its own network namespace failed (corrald must stop).
 */
int cd_fsaudit_new(enum cd_fsaudit_mode mode, int landlock_abi, const char *creator_exe,
                   const struct cd_fsaudit_changes *inherited, cd_fsaudit_emit_fn emit,
                   void *userdata, struct cd_fsaudit **ret);

/* What this reader changed in the kernel and has not undone yet (for the daemon to persist,
 * so that a corrald that is killed is undone by the next one). */
struct cd_fsaudit_changes cd_fsaudit_changes(const struct cd_fsaudit *a);

/* true when denials are being read. */
bool cd_fsaudit_available(const struct cd_fsaudit *a);

/*
 * One line: what was set up ("audit log group joined; audit enabled (was off), rule -a
 * never,task installed") or why it is unavailable ("off in the configuration", "audit
 * netlink: bind to the log group: Operation not permitted", ...). Borrowed from `a`.
 */
const char *cd_fsaudit_status(const struct cd_fsaudit *a);

/* The netlink socket to watch for EPOLLIN (owned by `a`), or -1 when unavailable. */
int cd_fsaudit_fd(const struct cd_fsaudit *a);

/* Reads and handles every record ready on the socket without blocking. */
void cd_fsaudit_process(struct cd_fsaudit *a);

/*
 * Handles one record as read from the socket (netlink type and text): parses, maps, emits;
 * a configuration change switching audit off makes reporting unavailable from then on.
 * cd_fsaudit_process calls this; exposed so tests can feed captured records. Returns what
 * cd_fsaudit_parse returned (0 for a configuration change), or -ENOMEM.
 */
int cd_fsaudit_handle(struct cd_fsaudit *a, int type, const void *buf, size_t len);

/* What a session's filesystem violations carry. Strings are copied by cd_fsaudit_session_add. */
struct cd_fsaudit_session {
	pid_t pid; /* the session's first process: the Landlock domain's creator */
	const char *session_id;
	uint32_t uid;
	const char *user;
	const char *profile;
	uint64_t policy_version;
	bool audit; /* profile in audit mode: violations are audit_only */
};

/* Registers a running session. Returns 0, -EINVAL (pid <= 0, a string too long) or -ENOMEM. */
int cd_fsaudit_session_add(struct cd_fsaudit *a, const struct cd_fsaudit_session *s);

/*
 * The session of creator `pid` ended: reads what the socket holds now (so its violations
 * usually precede its exit event), then keeps the mapping for CD_FSAUDIT_GRACE_MS for records
 * still in flight, or until its domain is deallocated.
 */
void cd_fsaudit_session_end(struct cd_fsaudit *a, pid_t pid);

/*
 * Undoes what cd_fsaudit_new changed, in reverse order (audit disabled again, then the rule
 * removed) and closes the sockets. Idempotent. Returns 1 when something was undone, 0 when
 * there was nothing to undo, or -errno with the reason in `msg` (may be NULL).
 */
int cd_fsaudit_restore(struct cd_fsaudit *a, char *msg, size_t msglen);

/* Restores (cd_fsaudit_restore) and frees. NULL is fine. */
void cd_fsaudit_free(struct cd_fsaudit *a);

/*
 * AUDIT_GET, then when audit is off: AUDIT_ADD_RULE (never, task list, no fields) and
 * AUDIT_SET enabled=1, in that order (no task started after audit is on lacks the rule).
 * `inherited` (may be NULL) is what a killed predecessor changed: adopted when audit is still
 * on (not locked) and no auditd is registered; its rule counts as ours on EEXIST.
 * `fd` is a NETLINK_AUDIT socket (or a test's stand-in speaking the same messages; replies are
 * awaited for at most 2 s). On failure, what was changed is undone. Returns 0 with *ret set
 * (1 when `inherited` was adopted), or -errno with the failing step in `why`.
 */
int cd_fsaudit_ctl_setup(int fd, const struct cd_fsaudit_changes *inherited,
                         struct cd_fsaudit_changes *ret, char *why, size_t whylen);

/* AUDIT_GET: *ret_enabled = whether audit is on (1 or locked 2). Returns 0 or -errno. */
int cd_fsaudit_ctl_status(int fd, bool *ret_enabled);

/* Undoes `changes`: AUDIT_SET enabled=0, then AUDIT_DEL_RULE. Returns 0 or the first -errno
 * (both steps are tried) with the step in `why`. */
int cd_fsaudit_ctl_restore(int fd, const struct cd_fsaudit_changes *changes, char *why,
                           size_t whylen);
