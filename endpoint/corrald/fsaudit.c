// SPDX-License-Identifier: Apache-2.0
/*
 * Filesystem (Landlock) denials from the kernel audit subsystem (see fsaudit.h): the audit
 * control exchange (status, the never-task rule, enabling and restoring audit), a strict
 * parser of Landlock audit records, and the mapping of Landlock domains to sessions, which
 * turns each access record into one VIOLATION event (FILESYSTEM, or NETWORK for a Landlock TCP
 * port rule).
 *
 * Record text, as the kernel writes it (kernel/audit.c, security/lsm_audit.c,
 * security/landlock/audit.c): "audit(<sec>.<ms>:<serial>): key=value key=value ...". Values
 * are bare tokens (numbers, hex ids, "fs.read_file"), or, for strings the kernel does not
 * trust (paths, dev, exe, comm), either quoted ("...", only when they hold no space, quote or
 * control byte) or upper-case hex of the raw bytes; a path the kernel could not resolve is the
 * bare token <too_long>.
 */
#include "fsaudit.h"

#include "cleanup.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CTL_TIMEOUT_MS  2000
#define CTL_BUF         8192u
#define FOREIGN_MAX     256u
#define PROCESS_BATCH   256u
#define RCVBUF_BYTES    (1 << 20)
#define FIELD_VALUE_MAX (2 * CD_FSAUDIT_PATH_MAX + 2) /* hex of a PATH_MAX path */

/* ---- parser ---------------------------------------------------------------------------- */

static bool is_hex_upper(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int parse_dec(const char *v, size_t n, uint64_t max, uint64_t *ret)
{
	uint64_t x = 0;
	if (n == 0 || n > 20)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(v[i]))
			return -EBADMSG;
		unsigned d = (unsigned)(v[i] - '0');
		if (x > (max - d) / 10)
			return -EBADMSG;
		x = x * 10 + d;
	}
	*ret = x;
	return 0;
}

/* The kernel prints domain ids with %llx: lower-case hex, no prefix. */
static int parse_domain(const char *v, size_t n, uint64_t *ret)
{
	uint64_t x = 0;
	if (n == 0 || n > 16)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		unsigned d;
		if (is_digit(c))
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return -EBADMSG;
		x = x << 4 | d;
	}
	if (x == 0)
		return -EBADMSG;
	*ret = x;
	return 0;
}

/*
 * An untrusted string value: "quoted" (copied), upper-case hex of the raw bytes (decoded; a
 * NUL byte inside is malformed), or a bare token such as <too_long> (copied as it is).
 */
static int parse_untrusted(const char *v, size_t n, char *out, size_t outlen)
{
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		if (n - 2 >= outlen)
			return -EBADMSG;
		memcpy(out, v + 1, n - 2);
		out[n - 2] = '\0';
		return 0;
	}
	if (n == 0 || memchr(v, '"', n))
		return -EBADMSG;
	bool hex = n % 2 == 0;
	for (size_t i = 0; hex && i < n; i++)
		hex = is_hex_upper(v[i]);
	if (!hex) {
		if (n >= outlen)
			return -EBADMSG;
		memcpy(out, v, n);
		out[n] = '\0';
		return 0;
	}
	if (n / 2 >= outlen)
		return -EBADMSG;
	for (size_t i = 0; i < n / 2; i++) {
		char pair[3] = {v[2 * i], v[2 * i + 1], '\0'};
		unsigned long b = strtoul(pair, NULL, 16);
		if (b == 0)
			return -EBADMSG;
		out[i] = (char)b;
	}
	out[n / 2] = '\0';
	return 0;
}

/* "fs.read_file,fs.refer": lower-case words, dots, underscores, commas. */
static int parse_blockers(const char *v, size_t n, char *out, size_t outlen)
{
	if (n == 0 || n >= outlen)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || is_digit(v[i]) || v[i] == '.' ||
		      v[i] == '_' || v[i] == ','))
			return -EBADMSG;
	memcpy(out, v, n);
	out[n] = '\0';
	return 0;
}

/* "audit(1795785131.225:468): " -> serial; returns the offset of the first field. */
static int parse_prefix(const char *b, size_t len, uint64_t *ret_serial, size_t *ret_off)
{
	static const char head[] = "audit(";
	size_t i = sizeof(head) - 1, start;
	uint64_t x;
	if (len < i || memcmp(b, head, i) != 0)
		return -EBADMSG;
	for (start = i; i < len && is_digit(b[i]); i++)
		;
	if (i == start || i >= len || b[i++] != '.')
		return -EBADMSG;
	for (start = i; i < len && is_digit(b[i]); i++)
		;
	if (i == start || i >= len || b[i++] != ':')
		return -EBADMSG;
	for (start = i; i < len && is_digit(b[i]); i++)
		;
	if (parse_dec(b + start, i - start, UINT64_MAX, &x) < 0)
		return -EBADMSG;
	if (len - i < 3 || b[i] != ')' || b[i + 1] != ':' || b[i + 2] != ' ')
		return -EBADMSG;
	*ret_serial = x;
	*ret_off = i + 3;
	return 0;
}

enum field_bit {
	F_DOMAIN = 1u << 0,
	F_BLOCKERS = 1u << 1,
	F_OBJECT = 1u << 2,
	F_DEV = 1u << 3,
	F_INO = 1u << 4,
	F_STATUS = 1u << 5,
	F_PID = 1u << 6,
	F_UID = 1u << 7,
	F_EXE = 1u << 8,
	F_COMM = 1u << 9,
	F_DENIALS = 1u << 10,
	F_MODE = 1u << 11,
	F_DADDR = 1u << 12,
	F_DEST = 1u << 13,
	F_SRC = 1u << 14,
};

#define BAD(why)                \
	do {                    \
		reason = (why); \
		r = -EBADMSG;   \
		goto out;       \
	} while (0)

int cd_fsaudit_parse(int type, const void *buf, size_t len, struct cd_fsaudit_record *ret,
                     const char **ret_reason)
{
	const char *b = buf, *reason = NULL;
	struct cd_fsaudit_record rec;
	unsigned seen = 0;
	char status[32] = "";
	size_t i;
	int r = 1;

	if (type != CD_FSAUDIT_TYPE_ACCESS && type != CD_FSAUDIT_TYPE_DOMAIN)
		return 0;
	if (len > CD_FSAUDIT_RECORD_MAX) {
		if (ret_reason)
			*ret_reason = "record longer than the kernel ever writes";
		return -EMSGSIZE;
	}
	if (!b && len)
		BAD("no record text");
	/* some kernels count a terminating NUL in the message */
	while (len > 0 && b[len - 1] == '\0')
		len--;
	for (i = 0; i < len; i++)
		if ((unsigned char)b[i] < 0x20 || (unsigned char)b[i] > 0x7e)
			BAD("control or non-ASCII byte in the record");
	memset(&rec, 0, sizeof(rec));
	if (parse_prefix(b, len, &rec.serial, &i) < 0)
		BAD("no audit(<time>:<serial>) prefix");
	while (i < len) {
		size_t ks = i, vs, ve;
		while (i < len && b[i] != '=' && b[i] != ' ')
			i++;
		if (i == ks || i >= len || b[i] != '=')
			BAD("field without key=value form");
		const char *key = b + ks;
		size_t kl = i - ks;
		vs = ++i;
		if (i < len && b[i] == '"') {
			const char *q = memchr(b + i + 1, '"', len - i - 1);
			if (!q)
				BAD("unterminated quoted value");
			i = (size_t)(q - b) + 1;
		} else {
			while (i < len && b[i] != ' ')
				i++;
		}
		ve = i;
		if (i < len) {
			if (b[i] != ' ' || i + 1 == len)
				BAD("fields not separated by one space");
			i++;
		}
		const char *v = b + vs;
		size_t vl = ve - vs;
		unsigned bit = 0;
		uint64_t x;
#define KEY(s) (kl == sizeof(s) - 1 && memcmp(key, s, kl) == 0)
		if (vl > FIELD_VALUE_MAX)
			BAD("field value too long");
		if (KEY("domain")) {
			bit = F_DOMAIN;
			if (parse_domain(v, vl, &rec.domain) < 0)
				BAD("domain is not a non-zero hex id");
		} else if (KEY("blockers") && type == CD_FSAUDIT_TYPE_ACCESS) {
			bit = F_BLOCKERS;
			if (parse_blockers(v, vl, rec.blockers, sizeof(rec.blockers)) < 0)
				BAD("malformed blockers");
		} else if ((KEY("path") || KEY("name")) && type == CD_FSAUDIT_TYPE_ACCESS) {
			bit = F_OBJECT;
			rec.object_is_name = KEY("name");
			if (parse_untrusted(v, vl, rec.object, sizeof(rec.object)) < 0)
				BAD("malformed path or name");
		} else if (KEY("dev") && type == CD_FSAUDIT_TYPE_ACCESS) {
			bit = F_DEV;
			if (parse_untrusted(v, vl, rec.dev, sizeof(rec.dev)) < 0)
				BAD("malformed dev");
		} else if (KEY("ino") && type == CD_FSAUDIT_TYPE_ACCESS) {
			bit = F_INO;
			if (parse_dec(v, vl, UINT64_MAX, &rec.ino) < 0)
				BAD("ino is not a number");
			rec.has_ino = true;
		} else if (KEY("daddr") && type == CD_FSAUDIT_TYPE_ACCESS) {
			bit = F_DADDR;
			unsigned char bin[16];
			if (vl == 0 || vl >= sizeof(rec.daddr))
				BAD("daddr is not an IP address");
			memcpy(rec.daddr, v, vl);
			rec.daddr[vl] = '\0';
			if (inet_pton(AF_INET, rec.daddr, bin) != 1 &&
			    inet_pton(AF_INET6, rec.daddr, bin) != 1)
				BAD("daddr is not an IP address");
		} else if ((KEY("dest") || KEY("src")) && type == CD_FSAUDIT_TYPE_ACCESS) {
			bit = KEY("dest") ? F_DEST : F_SRC;
			if (parse_dec(v, vl, 65535, &x) < 0 || x == 0)
				BAD("port is not a number in 1-65535");
			if (bit == F_DEST)
				rec.dport = (uint16_t)x;
			else
				rec.sport = (uint16_t)x;
		} else if (KEY("status") && type == CD_FSAUDIT_TYPE_DOMAIN) {
			bit = F_STATUS;
			if (vl >= sizeof(status))
				BAD("unknown domain status");
			memcpy(status, v, vl);
			status[vl] = '\0';
		} else if (KEY("mode") && type == CD_FSAUDIT_TYPE_DOMAIN) {
			bit = F_MODE;
		} else if (KEY("pid") && type == CD_FSAUDIT_TYPE_DOMAIN) {
			bit = F_PID;
			if (parse_dec(v, vl, INT_MAX, &x) < 0 || x == 0)
				BAD("pid is not a positive number");
			rec.pid = (pid_t)x;
		} else if (KEY("uid") && type == CD_FSAUDIT_TYPE_DOMAIN) {
			bit = F_UID;
			if (parse_dec(v, vl, UINT32_MAX, &x) < 0)
				BAD("uid is not a number");
			rec.uid = (uint32_t)x;
		} else if (KEY("exe") && type == CD_FSAUDIT_TYPE_DOMAIN) {
			bit = F_EXE;
			if (parse_untrusted(v, vl, rec.exe, sizeof(rec.exe)) < 0)
				BAD("malformed exe");
		} else if (KEY("comm") && type == CD_FSAUDIT_TYPE_DOMAIN) {
			bit = F_COMM;
			if (parse_untrusted(v, vl, rec.comm, sizeof(rec.comm)) < 0)
				BAD("malformed comm");
		} else if (KEY("denials") && type == CD_FSAUDIT_TYPE_DOMAIN) {
			bit = F_DENIALS;
			if (parse_dec(v, vl, UINT64_MAX, &rec.denials) < 0)
				BAD("denials is not a number");
		}
#undef KEY
		/* anything else (opid, ocomm, ioctlcmd, daddr, fields of later kernels) is ignored
		 */
		if (bit & seen)
			BAD("a field appears twice");
		seen |= bit;
	}
	if (!(seen & F_DOMAIN))
		BAD("no domain");
	if (type == CD_FSAUDIT_TYPE_ACCESS) {
		if (!(seen & F_BLOCKERS))
			BAD("access record without blockers");
		rec.kind = CD_FSAUDIT_ACCESS;
	} else if (strcmp(status, "allocated") == 0) {
		if (!(seen & F_PID))
			BAD("allocated domain without its creator's pid");
		rec.kind = CD_FSAUDIT_DOMAIN_ALLOCATED;
	} else if (strcmp(status, "deallocated") == 0) {
		rec.kind = CD_FSAUDIT_DOMAIN_DEALLOCATED;
	} else {
		BAD(seen & F_STATUS ? "unknown domain status" : "domain record without status");
	}
	*ret = rec;
out:
	if (r < 0 && ret_reason)
		*ret_reason = reason;
	return r;
}

/* ---- the audit control exchange ------------------------------------------------------------ */

/* Every request is one of these two structures (or empty): checked here, at build time, rather
 * than by a run-time branch no caller could ever take. */
_Static_assert(NLMSG_SPACE(sizeof(struct audit_rule_data)) <= CTL_BUF &&
                       NLMSG_SPACE(sizeof(struct audit_status)) <= CTL_BUF,
               "an audit control request does not fit the request buffer");

static int ctl_request(int fd, uint16_t type, const void *data, size_t len,
                       struct audit_status *ret_status)
{
	static uint32_t seq;
	_Alignas(struct nlmsghdr) char buf[CTL_BUF];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	bool have_status = false, acked = false;

	memset(buf, 0, NLMSG_SPACE(len));
	h->nlmsg_len = (uint32_t)NLMSG_LENGTH(len);
	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	h->nlmsg_seq = ++seq;
	if (len)
		memcpy(NLMSG_DATA(h), data, len);
	uint32_t want = h->nlmsg_seq;
	if (send(fd, buf, h->nlmsg_len, MSG_NOSIGNAL) < 0)
		return -errno;
	uint64_t deadline = util_monotonic_ms() + CTL_TIMEOUT_MS;
	for (;;) {
		uint64_t now = util_monotonic_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int pr = poll(&p, 1, (int)(deadline - now));
		if (pr < 0 && errno != EINTR)
			return -errno;
		if (pr <= 0)
			continue;
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		if ((size_t)n > sizeof(buf))
			return -EMSGSIZE;
		int left = (int)n; /* NLMSG_NEXT may take it below 0: signed */
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_seq != want)
				continue; /* a late reply to an earlier request */
			if (h->nlmsg_type == NLMSG_ERROR) {
				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
					return -EBADMSG;
				const struct nlmsgerr *e = NLMSG_DATA(h);
				if (e->error > 0 || e->error < -4095)
					return -EBADMSG;
				if (e->error < 0)
					return e->error;
				/* the kernel sends AUDIT_GET's reply from a thread of its own, so
				 * the acknowledgement usually comes first */
				acked = true;
			}
			if (h->nlmsg_type == AUDIT_GET && ret_status) {
				size_t pl = h->nlmsg_len - NLMSG_HDRLEN;
				/* older kernels send a shorter struct: take what there is */
				if (pl < offsetof(struct audit_status, backlog_limit))
					return -EBADMSG;
				memset(ret_status, 0, sizeof(*ret_status));
				memcpy(ret_status, NLMSG_DATA(h),
				       pl < sizeof(*ret_status) ? pl : sizeof(*ret_status));
				have_status = true;
			}
		}
		if (acked && (!ret_status || have_status))
			return 0;
	}
}

static void never_task_rule(struct audit_rule_data *rd)
{
	memset(rd, 0, sizeof(*rd));
	rd->flags = AUDIT_FILTER_TASK;
	rd->action = AUDIT_NEVER;
}

static int set_enabled(int fd, uint32_t enabled)
{
	struct audit_status st;
	memset(&st, 0, sizeof(st));
	st.mask = AUDIT_STATUS_ENABLED;
	st.enabled = enabled;
	return ctl_request(fd, AUDIT_SET, &st, sizeof(st), NULL);
}

int cd_fsaudit_ctl_status(int fd, bool *ret_enabled)
{
	struct audit_status st;
	int r = ctl_request(fd, AUDIT_GET, NULL, 0, &st);
	if (r < 0)
		return r;
	*ret_enabled = st.enabled != 0;
	return 0;
}

int cd_fsaudit_ctl_setup(int fd, const struct cd_fsaudit_changes *inherited,
                         struct cd_fsaudit_changes *ret, char *why, size_t whylen)
{
	struct cd_fsaudit_changes ch = {false, false};
	struct audit_status st;
	struct audit_rule_data rd;
	int r;

	r = ctl_request(fd, AUDIT_GET, NULL, 0, &st);
	if (r < 0) {
		snprintf(why, whylen, "audit status (AUDIT_GET): %s", strerror(-r));
		return r;
	}
	if (st.enabled != 0) { /* on already (1), or locked on (2): only read */
		/* ...unless a corrald that crashed switched it on and no auditd has come since:
		 * then it is ours to undo */
		r = 0;
		if (inherited && inherited->audit_enabled && st.enabled == 1 && st.pid == 0) {
			ch = *inherited;
			r = 1;
		}
		*ret = ch;
		return r;
	}
	/* The rule first: every task started once audit is on is then born without an audit
	 * context and keeps the fast syscall path. */
	never_task_rule(&rd);
	r = ctl_request(fd, AUDIT_ADD_RULE, &rd, sizeof(rd), NULL);
	if (r < 0 && r != -EEXIST) {
		snprintf(why, whylen, "audit rule -a never,task (AUDIT_ADD_RULE): %s",
		         strerror(-r));
		return r;
	}
	/* EEXIST: an admin's rule, or ours from before a crash */
	ch.rule_added = r == 0 || (inherited && inherited->rule_added);
	r = set_enabled(fd, 1);
	if (r < 0) {
		snprintf(why, whylen, "enabling audit (AUDIT_SET): %s", strerror(-r));
		if (ch.rule_added)
			(void)ctl_request(fd, AUDIT_DEL_RULE, &rd, sizeof(rd), NULL);
		return r;
	}
	ch.audit_enabled = true;
	*ret = ch;
	return 0;
}

int cd_fsaudit_ctl_restore(int fd, const struct cd_fsaudit_changes *changes, char *why,
                           size_t whylen)
{
	struct audit_rule_data rd;
	int r = 0, q;

	/* Audit off before the rule goes: a task started in between would otherwise get an
	 * audit context while audit is still on. */
	if (changes->audit_enabled && (q = set_enabled(fd, 0)) < 0) {
		snprintf(why, whylen, "disabling audit (AUDIT_SET): %s", strerror(-q));
		r = q;
	}
	never_task_rule(&rd);
	if (changes->rule_added &&
	    (q = ctl_request(fd, AUDIT_DEL_RULE, &rd, sizeof(rd), NULL)) < 0 && r == 0) {
		snprintf(why, whylen, "removing the rule -a never,task (AUDIT_DEL_RULE): %s",
		         strerror(-q));
		r = q;
	}
	return r;
}

/* ---- sessions, domains and events ---------------------------------------------------------- */

struct entry {
	struct entry *next;
	pid_t pid;
	uint64_t domain; /* 0 until its domain record is seen */
	uint64_t end_ms; /* monotonic time the session ended, 0 while it runs */
	char id[64];
	uint32_t uid;
	char user[256];
	char profile[256];
	uint64_t version;
	bool audit;
	uint64_t rl_window_ms;
	unsigned rl_count, rl_suppressed;
};

/* What an event needs of an access record (the record itself is 9 KiB). */
struct denial {
	uint64_t domain;
	char blockers[256];
	char dev[64];
	uint64_t ino;
	bool has_ino;
	bool is_name;
	char daddr[CD_FSAUDIT_ADDR_MAX];
	uint16_t dport, sport;
};

struct pending {
	uint64_t at_ms;
	struct denial d;
	char *object;
};

struct cd_fsaudit {
	bool available;
	char status[384];
	char exe[CD_FSAUDIT_PATH_MAX + 1];
	int ctl_fd, log_fd;
	struct cd_fsaudit_changes changes;
	bool restored;
	cd_fsaudit_emit_fn emit;
	void *userdata;
	struct entry *entries;
	struct pending pend[CD_FSAUDIT_PENDING_MAX];
	size_t npend;
	uint64_t foreign[FOREIGN_MAX];
	size_t nforeign, foreign_next;
};

/* Length of the valid UTF-8 sequence (no overlong forms, surrogates or > U+10FFFF) at `p`
 * of at most `n` bytes, or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t cp;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1fu;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0fu;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07u;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3fu);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/*
 * A decoded path or device name as event text: a file name may hold any byte but NUL, and
 * the event's string fields must be valid UTF-8 (the server renders them as JSON), so control
 * bytes and invalid UTF-8 become \xNN and a backslash \\. `out` holds 4 * strlen(in) + 1.
 */
static void event_text(const char *in, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t n = strlen(in), o = 0;
	for (size_t i = 0; i < n && o + 5 < outlen;) {
		size_t l = utf8_seq(p + i, n - i);
		if (p[i] == '\\') {
			out[o++] = '\\';
			out[o++] = '\\';
			i++;
		} else if (l == 0 || p[i] < 0x20 || p[i] == 0x7f) {
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", p[i]);
			i++;
		} else {
			if (o + l >= outlen)
				break;
			memcpy(out + o, p + i, l);
			o += l;
			i += l;
		}
	}
	out[o] = '\0';
}

static void denial_from(const struct cd_fsaudit_record *rec, struct denial *d)
{
	memset(d, 0, sizeof(*d));
	d->domain = rec->domain;
	snprintf(d->blockers, sizeof(d->blockers), "%s", rec->blockers);
	snprintf(d->dev, sizeof(d->dev), "%s", rec->dev);
	d->ino = rec->ino;
	d->has_ino = rec->has_ino;
	d->is_name = rec->object_is_name;
	snprintf(d->daddr, sizeof(d->daddr), "%s", rec->daddr);
	d->dport = rec->dport;
	d->sport = rec->sport;
}

/* One VIOLATION event: FILESYSTEM for fs.* blockers (target: the path), NETWORK for the
 * Landlock TCP port rules' net.* blockers (target: "addr:port", "[v6]:port", or "*:port" for
 * a bind). */
static void emit_violation(struct cd_fsaudit *a, struct entry *e, const struct denial *d,
                           const char *object)
{
	uint64_t now = util_monotonic_ms();
	char detail[512 + 4 * 64], inotext[32] = "";
	bool net = util_startswith(d->blockers, "net.");
	if (now - e->rl_window_ms >= 1000) {
		e->rl_window_ms = now;
		e->rl_count = 0;
	}
	if (++e->rl_count > CD_FSAUDIT_PER_S) {
		e->rl_suppressed++;
		return;
	}
	static char target[4 * CD_FSAUDIT_PATH_MAX + 1];
	char devtext[4 * 64 + 1];
	if (net && d->daddr[0])
		snprintf(target, sizeof(target), strchr(d->daddr, ':') ? "[%s]:%u" : "%s:%u",
		         d->daddr, (unsigned)d->dport);
	else if (net)
		snprintf(target, sizeof(target), "*:%u",
		         (unsigned)(d->sport ? d->sport : d->dport));
	else
		event_text(object, target, sizeof(target));
	event_text(d->dev, devtext, sizeof(devtext));
	if (d->has_ino)
		snprintf(inotext, sizeof(inotext), " ino=%" PRIu64, d->ino);
	snprintf(detail, sizeof(detail), "blockers=%s%s%s%s%s%s domain=%" PRIx64, d->blockers,
	         devtext[0] ? " dev=" : "", devtext, inotext, d->is_name ? " object=name" : "",
	         net ? " layer=landlock-ports" : "", d->domain);
	Corral__Violation v = CORRAL__VIOLATION__INIT;
	v.kind = net ? CORRAL__VIOLATION_KIND__VIOLATION_KIND_NETWORK
	             : CORRAL__VIOLATION_KIND__VIOLATION_KIND_FILESYSTEM;
	v.comm = (char *)"";
	v.target = target;
	v.detail = detail;
	v.audit_only = e->audit;
	v.suppressed = e->rl_suppressed;
	e->rl_suppressed = 0;
	Corral__Event ev = CORRAL__EVENT__INIT;
	ev.kind = CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION;
	ev.time_ms = util_now_ms();
	ev.session_id = e->id;
	ev.uid = e->uid;
	ev.user = e->user;
	ev.profile = e->profile;
	ev.policy_version = e->version;
	ev.detail_case = CORRAL__EVENT__DETAIL_VIOLATION;
	ev.violation = &v;
	if (a->emit)
		(void)a->emit(a->userdata, &ev);
}

static struct entry *entry_by_domain(struct cd_fsaudit *a, uint64_t domain)
{
	for (struct entry *e = a->entries; e; e = e->next)
		if (e->domain == domain)
			return e;
	return NULL;
}

static bool is_foreign(const struct cd_fsaudit *a, uint64_t domain)
{
	for (size_t i = 0; i < a->nforeign; i++)
		if (a->foreign[i] == domain)
			return true;
	return false;
}

static void foreign_add(struct cd_fsaudit *a, uint64_t domain)
{
	if (is_foreign(a, domain))
		return;
	a->foreign[a->foreign_next] = domain;
	a->foreign_next = (a->foreign_next + 1) % FOREIGN_MAX;
	if (a->nforeign < FOREIGN_MAX)
		a->nforeign++;
}

static void foreign_remove(struct cd_fsaudit *a, uint64_t domain)
{
	for (size_t i = 0; i < a->nforeign; i++)
		if (a->foreign[i] == domain)
			a->foreign[i] = 0; /* ids are never 0: the slot matches nothing */
}

static void pending_drop(struct cd_fsaudit *a, size_t i)
{
	free(a->pend[i].object);
	memmove(&a->pend[i], &a->pend[i + 1], (a->npend - i - 1) * sizeof(a->pend[0]));
	a->npend--;
}

/* Drops pending records older than CD_FSAUDIT_PENDING_MS, and ended sessions whose grace
 * period is over. */
static void sweep(struct cd_fsaudit *a)
{
	uint64_t now = util_monotonic_ms();
	while (a->npend > 0 && now - a->pend[0].at_ms > CD_FSAUDIT_PENDING_MS)
		pending_drop(a, 0);
	for (struct entry **pp = &a->entries; *pp;) {
		struct entry *e = *pp;
		if (e->end_ms && now - e->end_ms > CD_FSAUDIT_GRACE_MS) {
			*pp = e->next;
			free(e);
		} else {
			pp = &e->next;
		}
	}
}

static void pending_add(struct cd_fsaudit *a, const struct cd_fsaudit_record *rec)
{
	char *obj = strdup(rec->object);
	if (!obj)
		return;
	if (a->npend == CD_FSAUDIT_PENDING_MAX)
		pending_drop(a, 0);
	struct pending *p = &a->pend[a->npend++];
	p->at_ms = util_monotonic_ms();
	denial_from(rec, &p->d);
	p->object = obj;
}

/* The creator's exe is ours (also once our binary was replaced on disk: " (deleted)"). */
static bool exe_matches(const struct cd_fsaudit *a, const char *exe)
{
	size_t n = strlen(a->exe);
	if (!a->exe[0] || strncmp(exe, a->exe, n) != 0)
		return false;
	return exe[n] == '\0' || strcmp(exe + n, " (deleted)") == 0;
}

static void handle_record(struct cd_fsaudit *a, const struct cd_fsaudit_record *rec)
{
	struct entry *e;

	switch (rec->kind) {
	case CD_FSAUDIT_ACCESS:
		/* filesystem rights and the TCP port rules; scope blockers are not reported */
		if (!util_startswith(rec->blockers, "fs.") &&
		    !util_startswith(rec->blockers, "net."))
			return;
		if ((e = entry_by_domain(a, rec->domain))) {
			struct denial d;
			denial_from(rec, &d);
			emit_violation(a, e, &d, rec->object);
		} else if (!is_foreign(a, rec->domain))
			pending_add(a, rec); /* its domain record follows it */
		return;
	case CD_FSAUDIT_DOMAIN_ALLOCATED:
		e = NULL;
		if (exe_matches(a, rec->exe))
			for (e = a->entries; e; e = e->next)
				if (e->pid == rec->pid &&
				    (e->domain == 0 || e->domain == rec->domain))
					break;
		if (!e) {
			foreign_add(a, rec->domain);
		} else {
			e->domain = rec->domain;
		}
		/* in arrival order: the access records this domain record follows */
		for (size_t i = 0; i < a->npend;) {
			struct pending *p = &a->pend[i];
			if (p->d.domain != rec->domain) {
				i++;
				continue;
			}
			if (e)
				emit_violation(a, e, &p->d, p->object);
			pending_drop(a, i);
		}
		return;
	case CD_FSAUDIT_DOMAIN_DEALLOCATED:
		foreign_remove(a, rec->domain);
		for (size_t i = 0; i < a->npend;)
			if (a->pend[i].d.domain == rec->domain)
				pending_drop(a, i);
			else
				i++;
		for (struct entry **pp = &a->entries; *pp; pp = &(*pp)->next) {
			e = *pp;
			if (e->domain != rec->domain)
				continue;
			if (e->end_ms) { /* nothing of it can come any more */
				*pp = e->next;
				free(e);
			} else {
				e->domain = 0;
			}
			break;
		}
		return;
	}
}

/* "audit(...): op=set audit_enabled=0 old=1 auid=... ses=... res=1": someone switched audit
 * off, so no record will come any more; sessions from now on say so. */
static void check_config_change(struct cd_fsaudit *a, const char *buf, size_t len)
{
	static const char off[] = " op=set audit_enabled=0 ", ok[] = " res=1";
	if (!a->available || len > CD_FSAUDIT_RECORD_MAX ||
	    !memmem(buf, len, off, sizeof(off) - 1) || !memmem(buf, len, ok, sizeof(ok) - 1))
		return;
	a->available = false;
	snprintf(a->status, sizeof(a->status),
	         "kernel audit was switched off by another process while corrald ran");
}

int cd_fsaudit_handle(struct cd_fsaudit *a, int type, const void *buf, size_t len)
{
	struct cd_fsaudit_record *rec;
	int r;
	if (type == CD_FSAUDIT_TYPE_CONFIG_CHANGE) {
		if (buf)
			check_config_change(a, buf, len);
		return 0;
	}
	rec = malloc(sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	r = cd_fsaudit_parse(type, buf, len, rec, NULL);
	if (r > 0) {
		sweep(a);
		handle_record(a, rec);
	}
	free(rec);
	return r;
}

void cd_fsaudit_process(struct cd_fsaudit *a)
{
	_Alignas(struct nlmsghdr) char buf[NLMSG_SPACE(CD_FSAUDIT_RECORD_MAX) + 64];

	if (!a || a->log_fd < 0)
		return;
	for (unsigned k = 0; k < PROCESS_BATCH; k++) {
		struct sockaddr_nl from;
		socklen_t fl = sizeof(from);
		memset(&from, 0, sizeof(from));
		ssize_t n = recvfrom(a->log_fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
		                     (struct sockaddr *)&from, &fl);
		if (n < 0) {
			if (errno == EINTR || errno == ENOBUFS)
				continue; /* ENOBUFS: records were lost to a full socket; read on */
			break;
		}
		/* only the kernel (port 0) sends to the log group; a truncated datagram is dropped
		 */
		if ((size_t)n > sizeof(buf) || from.nl_family != AF_NETLINK || from.nl_pid != 0)
			continue;
		int left = (int)n; /* NLMSG_NEXT may take it below 0: signed */
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left);
		     h = NLMSG_NEXT(h, left))
			(void)cd_fsaudit_handle(a, h->nlmsg_type, NLMSG_DATA(h),
			                        h->nlmsg_len - NLMSG_HDRLEN);
	}
	sweep(a);
}

/* ---- life cycle -------------------------------------------------------------------------- */

static int open_log_socket(int *ret, char *why, size_t whylen)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_AUDIT);
	if (fd < 0) {
		int r = -errno;
		snprintf(why, whylen, "audit netlink socket: %s", strerror(-r));
		return r;
	}
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK,
	                         .nl_groups = 1u << (AUDIT_NLGRP_READLOG - 1)};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		snprintf(why, whylen, "audit netlink: joining the log group (CAP_AUDIT_READ): %s",
		         strerror(-r));
		close(fd);
		return r;
	}
	/* a burst of denials must not overflow the socket before the loop reads it */
	int sz = RCVBUF_BYTES;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	*ret = fd;
	return 0;
}

/*
 * The kernel multicasts audit records only to listeners in the initial network namespace
 * (kauditd sends through init_net's audit socket). A corrald started in another one (the demo
 * runs it in one) creates its audit sockets in the initial one and returns to its own: a
 * socket keeps the namespace it was created in, and only this thread moves. The initial
 * namespace is kthreadd's (pid 2, a kernel thread: always there, and readable where pid 1 is
 * not), else pid 1's. Returns 1 when it moved (*ret_saved: our own namespace, to return to),
 * else 0 with `note` saying why not when it could not tell or not move (the self-test then
 * decides).
 */
static int enter_init_netns(int *ret_saved, char *note, size_t notelen)
{
	struct stat self, init;
	char comm[32] = "";
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	const char *path = "/proc/1/ns/net";
	if (util_read_file("/proc/2/comm", sizeof(comm), &buf, &len) == 0 &&
	    strncmp(buf, "kthreadd\n", len) == 0 && len == strlen("kthreadd\n"))
		path = "/proc/2/ns/net";
	if (stat("/proc/self/ns/net", &self) < 0 || stat(path, &init) < 0) {
		snprintf(note, notelen, "; the initial network namespace (%s) is unreadable: %s",
		         path, strerror(errno));
		return 0;
	}
	if (self.st_dev == init.st_dev && self.st_ino == init.st_ino)
		return 0;
	_cleanup_close_ int saved = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int target = open(path, O_RDONLY | O_CLOEXEC);
	if (saved < 0 || target < 0 || setns(target, CLONE_NEWNET) < 0) {
		snprintf(
		        note, notelen,
		        "; corrald is not in the initial network namespace and cannot enter it: %s",
		        strerror(errno));
		return 0;
	}
	*ret_saved = TAKE_FD(saved);
	return 1;
}

/*
 * Proves that Landlock denials reach the socket before sessions are told they are reported
 * (a namespace, an audit exclude rule or a kernel without Landlock audit would otherwise make
 * reporting silently empty): a child restricts itself to no directory reads, opens "/", exits;
 * its domain record must arrive within SELFTEST_MS. The child only issues system calls (the
 * daemon may have threads). Records read meanwhile are handled as usual.
 */
#define SELFTEST_MS 1000
static int self_test(struct cd_fsaudit *a, char *why, size_t whylen)
{
	_Alignas(struct nlmsghdr) char buf[NLMSG_SPACE(CD_FSAUDIT_RECORD_MAX) + 64];
	static struct cd_fsaudit_record rec;
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		snprintf(why, whylen, "self-test: fork: %s", strerror(-r));
		return r;
	}
	if (pid == 0) {
		uint64_t handled = 1ull << 3; /* LANDLOCK_ACCESS_FS_READ_DIR */
		long rfd = syscall(SYS_landlock_create_ruleset, &handled, sizeof(handled), 0);
		if (rfd < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_landlock_restrict_self, (int)rfd, 0) < 0)
			_exit(1);
		(void)open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		_exit(0);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(why, whylen, "self-test: the Landlock child failed (status %d)", st);
		return -ECHILD;
	}
	uint64_t deadline = util_monotonic_ms() + SELFTEST_MS;
	for (;;) {
		uint64_t now = util_monotonic_ms();
		if (now >= deadline)
			break;
		struct pollfd p = {.fd = a->log_fd, .events = POLLIN};
		if (poll(&p, 1, (int)(deadline - now)) <= 0)
			continue;
		struct sockaddr_nl from;
		socklen_t fl = sizeof(from);
		memset(&from, 0, sizeof(from));
		ssize_t n = recvfrom(a->log_fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
		                     (struct sockaddr *)&from, &fl);
		if (n < 0 || (size_t)n > sizeof(buf) || from.nl_pid != 0)
			continue;
		int left = (int)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left);
		     h = NLMSG_NEXT(h, left)) {
			const char *text = NLMSG_DATA(h);
			size_t len = h->nlmsg_len - NLMSG_HDRLEN;
			if (cd_fsaudit_parse(h->nlmsg_type, text, len, &rec, NULL) <= 0)
				continue;
			if (rec.kind == CD_FSAUDIT_DOMAIN_ALLOCATED && rec.pid == pid)
				return 0;
			handle_record(a, &rec);
		}
	}
	snprintf(why, whylen, "self-test: no Landlock audit record reached corrald within %d ms",
	         SELFTEST_MS);
	return -ETIMEDOUT;
}

int cd_fsaudit_new(enum cd_fsaudit_mode mode, int landlock_abi, const char *creator_exe,
                   const struct cd_fsaudit_changes *inherited, cd_fsaudit_emit_fn emit,
                   void *userdata, struct cd_fsaudit **ret)
{
	struct cd_fsaudit *a = calloc(1, sizeof(*a));
	char why[sizeof(a->status)] = "";
	int r;

	if (!a)
		return -ENOMEM;
	a->ctl_fd = a->log_fd = -1;
	a->emit = emit;
	a->userdata = userdata;
	if (creator_exe) {
		snprintf(a->exe, sizeof(a->exe), "%s", creator_exe);
	} else {
		ssize_t n = readlink("/proc/self/exe", a->exe, sizeof(a->exe) - 1);
		a->exe[n > 0 ? n : 0] = '\0';
	}
	if (mode == CD_FSAUDIT_MODE_OFF) {
		snprintf(a->status, sizeof(a->status), "off in the configuration");
		goto done;
	}
	if (landlock_abi < 7) {
		snprintf(a->status, sizeof(a->status),
		         "Landlock ABI %d logs no denials (audit records need ABI 7)",
		         landlock_abi);
		goto done;
	}
	int saved_ns = -1;
	char note[160] = "";
	bool moved = enter_init_netns(&saved_ns, note, sizeof(note)) > 0;
	r = open_log_socket(&a->log_fd, why, sizeof(why));
	if (r >= 0 &&
	    (a->ctl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT)) < 0) {
		r = -errno;
		snprintf(why, sizeof(why), "audit netlink socket: %s", strerror(-r));
	}
	if (moved) {
		/* back to our own namespace before anything else: the egress proxies and
		 * resolvers must be created there. Failing that, corrald must not run on. */
		int q = setns(saved_ns, CLONE_NEWNET) < 0 ? -errno : 0;
		close(saved_ns);
		if (q < 0) {
			if (a->log_fd >= 0)
				close(a->log_fd);
			if (a->ctl_fd >= 0)
				close(a->ctl_fd);
			free(a);
			return q;
		}
	}
	if (r < 0) {
		snprintf(a->status, sizeof(a->status), "%s", why);
		goto fail_sockets;
	}
	if ((r = cd_fsaudit_ctl_setup(a->ctl_fd, inherited, &a->changes, why, sizeof(why))) < 0) {
		snprintf(a->status, sizeof(a->status), "%s", why);
		goto fail_sockets;
	}
	bool adopted = r > 0;
	if ((r = self_test(a, why, sizeof(why))) < 0) {
		char undo[256] = "";
		/* truncated if need be: it is a human-readable status line */
		if (snprintf(a->status, sizeof(a->status), "%s%s", why, note) >=
		    (int)sizeof(a->status))
			a->status[sizeof(a->status) - 1] = '\0';
		/* nothing to read: what setup changed goes again at once */
		if (cd_fsaudit_ctl_restore(a->ctl_fd, &a->changes, undo, sizeof(undo)) < 0)
			snprintf(a->status + strlen(a->status),
			         sizeof(a->status) - strlen(a->status), "; %s", undo);
		memset(&a->changes, 0, sizeof(a->changes));
		goto fail_sockets;
	}
	a->available = true;
	snprintf(a->status, sizeof(a->status), "reading the audit log group%s; %s",
	         moved ? " (sockets in the initial network namespace)" : "",
	         adopted ? "audit left on by a corrald that was killed: adopted, undone on exit"
	         : a->changes.audit_enabled
	                 ? (a->changes.rule_added
	                            ? "audit enabled (was off), rule -a never,task installed"
	                            : "audit enabled (was off), rule -a never,task was present")
	                 : "audit was on already, nothing changed");
	goto done;
fail_sockets:
	if (a->ctl_fd >= 0)
		close(a->ctl_fd);
	if (a->log_fd >= 0)
		close(a->log_fd);
	a->ctl_fd = a->log_fd = -1;
done:
	*ret = a;
	return 0;
}

struct cd_fsaudit_changes cd_fsaudit_changes(const struct cd_fsaudit *a)
{
	struct cd_fsaudit_changes none = {false, false};
	return a && !a->restored ? a->changes : none;
}

bool cd_fsaudit_available(const struct cd_fsaudit *a)
{
	return a && a->available;
}

const char *cd_fsaudit_status(const struct cd_fsaudit *a)
{
	return a ? a->status : "not set up";
}

int cd_fsaudit_fd(const struct cd_fsaudit *a)
{
	return a ? a->log_fd : -1;
}

int cd_fsaudit_session_add(struct cd_fsaudit *a, const struct cd_fsaudit_session *s)
{
	if (!a || !s || s->pid <= 0 || !s->session_id || !s->user || !s->profile)
		return -EINVAL;
	struct entry *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	if (snprintf(e->id, sizeof(e->id), "%s", s->session_id) >= (int)sizeof(e->id) ||
	    snprintf(e->user, sizeof(e->user), "%s", s->user) >= (int)sizeof(e->user) ||
	    snprintf(e->profile, sizeof(e->profile), "%s", s->profile) >= (int)sizeof(e->profile)) {
		free(e);
		return -EINVAL;
	}
	sweep(a);
	/* a stale entry of a reused pid (ended, in its grace period) is not this session */
	for (struct entry **pp = &a->entries; *pp;) {
		if ((*pp)->pid == s->pid) {
			struct entry *old = *pp;
			*pp = old->next;
			free(old);
		} else {
			pp = &(*pp)->next;
		}
	}
	e->pid = s->pid;
	e->uid = s->uid;
	e->version = s->policy_version;
	e->audit = s->audit;
	e->next = a->entries;
	a->entries = e;
	return 0;
}

void cd_fsaudit_session_end(struct cd_fsaudit *a, pid_t pid)
{
	if (!a)
		return;
	cd_fsaudit_process(a);
	for (struct entry *e = a->entries; e; e = e->next)
		if (e->pid == pid && !e->end_ms)
			e->end_ms = util_monotonic_ms();
}

int cd_fsaudit_restore(struct cd_fsaudit *a, char *msg, size_t msglen)
{
	char why[256] = "";
	int r = 0;

	if (!a || a->restored)
		return 0;
	a->restored = true;
	if (a->log_fd >= 0)
		close(a->log_fd);
	a->log_fd = -1;
	if (a->ctl_fd >= 0) {
		r = cd_fsaudit_ctl_restore(a->ctl_fd, &a->changes, why, sizeof(why));
		close(a->ctl_fd);
		a->ctl_fd = -1;
	}
	a->available = false;
	if (r < 0 && msg && msglen)
		snprintf(msg, msglen, "%s", why);
	if (r < 0)
		return r;
	return a->changes.audit_enabled || a->changes.rule_added;
}

void cd_fsaudit_free(struct cd_fsaudit *a)
{
	if (!a)
		return;
	(void)cd_fsaudit_restore(a, NULL, 0);
	while (a->npend > 0)
		pending_drop(a, a->npend - 1);
	while (a->entries) {
		struct entry *e = a->entries;
		a->entries = e->next;
		free(e);
	}
	free(a);
}
