// SPDX-License-Identifier: Apache-2.0
/*
 * corrald's Landlock audit reader (endpoint/corrald/fsaudit.c) without touching the kernel's
 * audit state:
 *  - the record parser on records captured from this project's test kernel (6.18, Landlock
 *    ABI 7): quoted and hex-encoded paths, make_reg on a directory, domain allocated and
 *    deallocated; and every refusal (size, prefix, bytes, field forms, duplicates, missing
 *    fields) with its reason;
 *  - the domain -> session mapping: access records that precede their domain record, foreign
 *    domains (another creator pid or executable), deallocation, a session's grace period, the
 *    pending queue's bound, the per-session rate limit with `suppressed`;
 *  - the audit control exchange against a fake kernel on a socketpair: status, the never-task
 *    rule (installed, already there, refused), enabling refused (the rule is removed again),
 *    restore failures, malformed, oversized and missing replies;
 *  - as root, with CAP_AUDIT_READ or CAP_AUDIT_CONTROL dropped: reporting unavailable with the
 *    reason (nothing is changed in the kernel on these paths);
 *  - every other error path against the real kernel, in a forked child whose libseccomp filter
 *    makes exactly one system call fail (socket, setns, clone, landlock_create_ruleset, the
 *    self-test child's open, send, poll, recv), or whose heap is exhausted under RLIMIT_AS:
 *    the return value, the status saying why reporting is unavailable, the audit state as it
 *    was (or undone by the parent where the child could not), no descriptor left open and,
 *    in the ASan build, no memory leaked (LeakSanitizer run in the child).
 */
#include "deny.h"
#include "fsaudit.h"
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Captured from this kernel (scripts: a Landlock-restricted sh with LOG_NEW_EXEC_ON). */
static const char rec_access[] = "audit(1795785131.225:468): domain=113cbc3b6 "
                                 "blockers=fs.read_file path=\"/etc/locale.alias\" dev=\"vda\" "
                                 "ino=810";
static const char rec_domain[] = "audit(1795785131.225:469): domain=113cbc3b6 status=allocated "
                                 "mode=enforcing pid=13531 uid=0 exe=\"/tmp/fsaudit-cap/cap\" "
                                 "comm=\"cap\"";
static const char rec_hex[] = "audit(1795785131.229:472): domain=113cbc3b6 blockers=fs.read_file "
                              "path=2F6574632F77697468207370616365 dev=\"vda\" ino=409616";
static const char rec_make[] = "audit(1795785131.229:473): domain=113cbc3b6 blockers=fs.make_reg "
                               "path=\"/tmp\" dev=\"vda\" ino=247066";
static const char rec_dir[] = "audit(1795785131.229:477): domain=113cbc3b6 blockers=fs.read_dir "
                              "path=\"/root\" dev=\"vda\" ino=1354";
static const char rec_dealloc[] = "audit(1795785131.285:478): domain=113cbc3b6 "
                                  "status=deallocated denials=9";
#define CAP_EXE "/tmp/fsaudit-cap/cap"
#define CAP_PID 13531

static int parse(int type, const char *text, struct cd_fsaudit_record *rec, const char **why)
{
	return cd_fsaudit_parse(type, text, strlen(text), rec, why);
}

static void test_parse_real_records(void)
{
	static struct cd_fsaudit_record r;
	const char *why = NULL;
	CU_ASSERT_EQUAL_FATAL(parse(CD_FSAUDIT_TYPE_ACCESS, rec_access, &r, &why), 1);
	CU_ASSERT_EQUAL(r.kind, CD_FSAUDIT_ACCESS);
	CU_ASSERT_EQUAL(r.serial, 468);
	CU_ASSERT_EQUAL(r.domain, 0x113cbc3b6ull);
	CU_ASSERT_STRING_EQUAL(r.blockers, "fs.read_file");
	CU_ASSERT_STRING_EQUAL(r.object, "/etc/locale.alias");
	CU_ASSERT_FALSE(r.object_is_name);
	CU_ASSERT_STRING_EQUAL(r.dev, "vda");
	CU_ASSERT_TRUE(r.has_ino);
	CU_ASSERT_EQUAL(r.ino, 810);

	CU_ASSERT_EQUAL_FATAL(parse(CD_FSAUDIT_TYPE_DOMAIN, rec_domain, &r, &why), 1);
	CU_ASSERT_EQUAL(r.kind, CD_FSAUDIT_DOMAIN_ALLOCATED);
	CU_ASSERT_EQUAL(r.domain, 0x113cbc3b6ull);
	CU_ASSERT_EQUAL(r.pid, CAP_PID);
	CU_ASSERT_EQUAL(r.uid, 0);
	CU_ASSERT_STRING_EQUAL(r.exe, CAP_EXE);
	CU_ASSERT_STRING_EQUAL(r.comm, "cap");

	/* a path with a space is hex-encoded by the kernel */
	CU_ASSERT_EQUAL_FATAL(parse(CD_FSAUDIT_TYPE_ACCESS, rec_hex, &r, &why), 1);
	CU_ASSERT_STRING_EQUAL(r.object, "/etc/with space");
	CU_ASSERT_EQUAL_FATAL(parse(CD_FSAUDIT_TYPE_ACCESS, rec_make, &r, &why), 1);
	CU_ASSERT_STRING_EQUAL(r.blockers, "fs.make_reg");
	CU_ASSERT_STRING_EQUAL(r.object, "/tmp");
	CU_ASSERT_EQUAL_FATAL(parse(CD_FSAUDIT_TYPE_ACCESS, rec_dir, &r, &why), 1);
	CU_ASSERT_STRING_EQUAL(r.blockers, "fs.read_dir");

	CU_ASSERT_EQUAL_FATAL(parse(CD_FSAUDIT_TYPE_DOMAIN, rec_dealloc, &r, &why), 1);
	CU_ASSERT_EQUAL(r.kind, CD_FSAUDIT_DOMAIN_DEALLOCATED);
	CU_ASSERT_EQUAL(r.denials, 9);

	/* documented forms: name= (a dentry), several blockers, signal scope with unknown fields,
	 * <too_long> as the kernel writes it for an unresolvable path, a trailing NUL */
	CU_ASSERT_EQUAL(parse(CD_FSAUDIT_TYPE_ACCESS,
	                      "audit(1.2:3): domain=1a blockers=fs.make_reg,fs.refer name=\"x\" "
	                      "dev=\"vda2\" ino=5",
	                      &r, &why),
	                1);
	CU_ASSERT_TRUE(r.object_is_name);
	CU_ASSERT_STRING_EQUAL(r.object, "x");
	CU_ASSERT_STRING_EQUAL(r.blockers, "fs.make_reg,fs.refer");
	CU_ASSERT_EQUAL(
	        parse(CD_FSAUDIT_TYPE_ACCESS,
	              "audit(1.2:3): domain=1a blockers=scope.signal opid=1 ocomm=\"systemd\"", &r,
	              &why),
	        1);
	CU_ASSERT_STRING_EQUAL(r.object, "");
	CU_ASSERT_EQUAL(parse(CD_FSAUDIT_TYPE_ACCESS,
	                      "audit(1.2:3): domain=1a blockers=fs.read_file path=<too_long>", &r,
	                      &why),
	                1);
	CU_ASSERT_STRING_EQUAL(r.object, "<too_long>");
	static const char nul[] = "audit(1.2:3): domain=1a status=deallocated denials=0\0";
	CU_ASSERT_EQUAL(cd_fsaudit_parse(CD_FSAUDIT_TYPE_DOMAIN, nul, sizeof(nul), &r, &why), 1);
	/* other record types are not ours: 0, record untouched */
	r.domain = 42;
	CU_ASSERT_EQUAL(parse(1300, "audit(1.2:3): arch=c000003e syscall=257", &r, &why), 0);
	CU_ASSERT_EQUAL(r.domain, 42);
}

static void test_parse_refusals(void)
{
	static const struct {
		int type;
		const char *text, *reason;
	} bad[] = {
	        {1423, "", "prefix"},
	        {1423, "domain=1 blockers=fs.read_file", "prefix"},
	        {1423, "audit(1:3): domain=1 blockers=fs.x", "prefix"},
	        {1423, "audit(1.2:): domain=1 blockers=fs.x", "prefix"},
	        {1423, "audit(1.2:3) domain=1 blockers=fs.x", "prefix"},
	        {1423, "audit(1.2:99999999999999999999): domain=1 blockers=fs.x", "prefix"},
	        {1423, "audit(1.2:3): domain=1 blockers=fs.x\tpath=\"/a\"", "control"},
	        {1423, "audit(1.2:3): domain=1 blockers=fs.x path=\"/\xc3\xa9\"", "non-ASCII"},
	        {1423, "audit(1.2:3): domain=1  blockers=fs.x", "key=value"},
	        {1423, "audit(1.2:3): domain=1 blockers=fs.x ", "one space"},
	        {1423, "audit(1.2:3): domain=1 blockers", "key=value"},
	        {1423, "audit(1.2:3): =1 blockers=fs.x", "key=value"},
	        {1423, "audit(1.2:3): domain=0 blockers=fs.x", "domain"},
	        {1423, "audit(1.2:3): domain=1A blockers=fs.x", "domain"},
	        {1423, "audit(1.2:3): domain=12345678901234567 blockers=fs.x", "domain"},
	        {1423, "audit(1.2:3): domain= blockers=fs.x", "domain"},
	        {1423, "audit(1.2:3): domain=1 blockers=fs.X", "blockers"},
	        {1423, "audit(1.2:3): domain=1 blockers=", "blockers"},
	        {1423, "audit(1.2:3): domain=1 blockers=fs.x path=\"/a", "unterminated"},
	        {1423, "audit(1.2:3): domain=1 blockers=fs.x path=\"/a\"b", "one space"},
	        {1423, "audit(1.2:3): domain=1 blockers=fs.x path=2F00", "path"},
	        {1423, "audit(1.2:3): domain=1 blockers=fs.x path=a\"b", "path"},
	        {1423, "audit(1.2:3): domain=1 blockers=fs.x path=\"\"\"", "one space"},
	        {1423,
	         "audit(1.2:3): domain=1 blockers=fs.x dev=\"0123456789012345678901234567"
	         "8901234567890123456789012345678901234567\"",
	         "dev"},
	        {1423, "audit(1.2:3): domain=1 blockers=fs.x ino=-1", "ino"},
	        {1423, "audit(1.2:3): domain=1 blockers=fs.x ino=18446744073709551616", "ino"},
	        {1423, "audit(1.2:3): domain=1 blockers=fs.x domain=2", "twice"},
	        {1423, "audit(1.2:3): domain=1 blockers=net.x daddr=1.2.3", "daddr"},
	        {1423, "audit(1.2:3): domain=1 blockers=net.x daddr=", "daddr"},
	        {1423,
	         "audit(1.2:3): domain=1 blockers=net.x daddr=ffff:ffff:ffff:ffff:ffff:ffff:"
	         "255.255.255.255x",
	         "daddr"},
	        {1423, "audit(1.2:3): domain=1 blockers=net.x dest=0", "port"},
	        {1423, "audit(1.2:3): domain=1 blockers=net.x dest=65536", "port"},
	        {1423, "audit(1.2:3): domain=1 blockers=net.x src=-1", "port"},
	        {1423, "audit(1.2:3): domain=1 blockers=net.x src=1 src=2", "twice"},
	        {1423, "audit(1.2:3): domain=1 path=\"/a\"", "without blockers"},
	        {1423, "audit(1.2:3): blockers=fs.x", "no domain"},
	        {1424, "audit(1.2:3): domain=1 status=freed", "unknown domain status"},
	        {1424, "audit(1.2:3): domain=1 status=allocatedallocatedallocatedxx",
	         "unknown domain status"},
	        {1424, "audit(1.2:3): domain=1 pid=3", "without status"},
	        {1424, "audit(1.2:3): domain=1 status=allocated uid=0", "creator's pid"},
	        {1424, "audit(1.2:3): domain=1 status=allocated pid=0", "pid"},
	        {1424, "audit(1.2:3): domain=1 status=allocated pid=2147483648", "pid"},
	        {1424, "audit(1.2:3): domain=1 status=allocated pid=3 uid=4294967296", "uid"},
	        {1424, "audit(1.2:3): domain=1 status=allocated pid=3 exe=\"", "unterminated"},
	        {1424, "audit(1.2:3): domain=1 status=allocated pid=3 exe=4100", "exe"},
	        {1424, "audit(1.2:3): domain=1 status=allocated pid=3 comm=4142004344", "comm"},
	        {1424, "audit(1.2:3): domain=1 status=deallocated denials=x", "denials"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		static struct cd_fsaudit_record r;
		const char *why = NULL;
		int rc = parse(bad[i].type, bad[i].text, &r, &why);
		if (rc != -EBADMSG || !why || !strstr(why, bad[i].reason))
			printf("\n    case %zu: %d %s", i, rc, why ? why : "(none)");
		CU_ASSERT_EQUAL(rc, -EBADMSG);
		CU_ASSERT_PTR_NOT_NULL(why && strstr(why, bad[i].reason));
	}
	/* an embedded NUL, a NULL buffer, a value longer than any path, a record too long */
	static struct cd_fsaudit_record r;
	const char *why = NULL;
	static const char emb[] = "audit(1.2:3): domain=1\0 blockers=fs.x";
	CU_ASSERT_EQUAL(cd_fsaudit_parse(1423, emb, sizeof(emb) - 1, &r, &why), -EBADMSG);
	CU_ASSERT_EQUAL(cd_fsaudit_parse(1423, NULL, 5, &r, &why), -EBADMSG);
	static char big[CD_FSAUDIT_RECORD_MAX + 2];
	int n = snprintf(big, sizeof(big), "audit(1.2:3): domain=1 blockers=fs.x path=");
	memset(big + n, 'A', CD_FSAUDIT_RECORD_MAX - (size_t)n);
	big[CD_FSAUDIT_RECORD_MAX] = '\0';
	CU_ASSERT_EQUAL(cd_fsaudit_parse(1423, big, CD_FSAUDIT_RECORD_MAX, &r, &why), -EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(why && strstr(why, "too long"));
	big[CD_FSAUDIT_RECORD_MAX] = 'A';
	CU_ASSERT_EQUAL(cd_fsaudit_parse(1423, big, CD_FSAUDIT_RECORD_MAX + 1, &r, &why),
	                -EMSGSIZE);
}

/* ---- mapping ---------------------------------------------------------------------------- */

#define EV_MAX 128
static struct {
	char session[64], target[512], detail[512];
	uint32_t suppressed, uid;
	bool audit_only;
	int kind;
} g_ev[EV_MAX];
static size_t g_nev;

static int capture(void *userdata, Corral__Event *ev)
{
	(void)userdata;
	if (g_nev >= EV_MAX || ev->kind != CORRAL__EVENT_KIND__EVENT_KIND_VIOLATION)
		return -ENOSPC;
	snprintf(g_ev[g_nev].session, sizeof(g_ev[0].session), "%s", ev->session_id);
	snprintf(g_ev[g_nev].target, sizeof(g_ev[0].target), "%s", ev->violation->target);
	snprintf(g_ev[g_nev].detail, sizeof(g_ev[0].detail), "%s", ev->violation->detail);
	g_ev[g_nev].suppressed = ev->violation->suppressed;
	g_ev[g_nev].audit_only = ev->violation->audit_only;
	g_ev[g_nev].uid = ev->uid;
	g_ev[g_nev].kind = ev->violation->kind;
	g_nev++;
	return 0;
}

static int feed(struct cd_fsaudit *a, int type, const char *text)
{
	return cd_fsaudit_handle(a, type, text, strlen(text));
}

static struct cd_fsaudit *new_reader(void)
{
	struct cd_fsaudit *a = NULL;
	g_nev = 0;
	CU_ASSERT_EQUAL_FATAL(
	        cd_fsaudit_new(CD_FSAUDIT_MODE_OFF, 7, CAP_EXE, NULL, capture, NULL, &a), 0);
	return a;
}

static void add_session(struct cd_fsaudit *a, pid_t pid, const char *id, bool audit)
{
	struct cd_fsaudit_session s = {.pid = pid,
	                               .session_id = id,
	                               .uid = 1000,
	                               .user = "alice",
	                               .profile = "strict",
	                               .policy_version = 3,
	                               .audit = audit};
	CU_ASSERT_EQUAL(cd_fsaudit_session_add(a, &s), 0);
}

static void test_map_real_sequence(void)
{
	struct cd_fsaudit *a = new_reader();
	CU_ASSERT_FALSE(cd_fsaudit_available(a));
	CU_ASSERT_STRING_EQUAL(cd_fsaudit_status(a), "off in the configuration");
	CU_ASSERT_EQUAL(cd_fsaudit_fd(a), -1);
	add_session(a, CAP_PID, "s-one", false);
	add_session(a, 4242, "s-other", false);
	/* the first access record precedes its domain record: held, then reported */
	CU_ASSERT_EQUAL(feed(a, 1423, rec_access), 1);
	CU_ASSERT_EQUAL(g_nev, 0);
	CU_ASSERT_EQUAL(feed(a, 1424, rec_domain), 1);
	CU_ASSERT_EQUAL_FATAL(g_nev, 1);
	CU_ASSERT_STRING_EQUAL(g_ev[0].session, "s-one");
	CU_ASSERT_STRING_EQUAL(g_ev[0].target, "/etc/locale.alias");
	CU_ASSERT_EQUAL(g_ev[0].kind, CORRAL__VIOLATION_KIND__VIOLATION_KIND_FILESYSTEM);
	CU_ASSERT_STRING_EQUAL(g_ev[0].detail,
	                       "blockers=fs.read_file dev=vda ino=810 domain=113cbc3b6");
	CU_ASSERT_EQUAL(g_ev[0].uid, 1000);
	CU_ASSERT_FALSE(g_ev[0].audit_only);
	/* later ones at once */
	CU_ASSERT_EQUAL(feed(a, 1423, rec_hex), 1);
	CU_ASSERT_EQUAL(feed(a, 1423, rec_make), 1);
	CU_ASSERT_EQUAL_FATAL(g_nev, 3);
	CU_ASSERT_STRING_EQUAL(g_ev[1].target, "/etc/with space");
	CU_ASSERT_STRING_EQUAL(g_ev[2].target, "/tmp");
	/* a file name holding invalid UTF-8, a newline and a backslash (the kernel hex-encodes
	 * it): the event text stays valid UTF-8, valid sequences kept */
	CU_ASSERT_EQUAL(feed(a, 1423,
	                     "audit(1.2:3): domain=113cbc3b6 blockers=fs.read_file "
	                     "path=2F61FF0A5C62C3A9E282AC dev=\"vda\" ino=1"),
	                1);
	CU_ASSERT_EQUAL_FATAL(g_nev, 4);
	CU_ASSERT_STRING_EQUAL(g_ev[3].target, "/a\\xff\\x0a\\\\b\xc3\xa9\xe2\x82\xac");
	g_nev = 3;
	/* a scope blocker is not a filesystem violation */
	CU_ASSERT_EQUAL(feed(a, 1423,
	                     "audit(1.2:3): domain=113cbc3b6 blockers=scope.signal opid=1 "
	                     "ocomm=\"init\""),
	                1);
	CU_ASSERT_EQUAL(g_nev, 3);
	/* a malformed record changes nothing */
	CU_ASSERT_EQUAL(feed(a, 1423, "audit(1.2:3): domain=113cbc3b6"), -EBADMSG);
	/* the session ends; its domain is released: it is forgotten, a late record is held
	 * (unknown domain) and never reported */
	cd_fsaudit_session_end(a, CAP_PID);
	CU_ASSERT_EQUAL(feed(a, 1423, rec_dir), 1);
	CU_ASSERT_EQUAL(g_nev, 4); /* in its grace period: still reported */
	CU_ASSERT_EQUAL(feed(a, 1424, rec_dealloc), 1);
	CU_ASSERT_EQUAL(feed(a, 1423, rec_dir), 1);
	CU_ASSERT_EQUAL(g_nev, 4);
	cd_fsaudit_free(a);
}

/* Landlock TCP port rules (net:landlock-ports) and scopes, captured from this kernel. */
static const char rec_connect[] = "audit(1795786607.281:30105): domain=113ccc6f0 "
                                  "blockers=net.connect_tcp daddr=127.0.0.1 dest=9";
static const char rec_connect6[] = "audit(1795786607.281:30107): domain=113ccc6f0 "
                                   "blockers=net.connect_tcp daddr=::1 dest=443";
static const char rec_bind[] = "audit(1795786607.281:30108): domain=113ccc6f0 "
                               "blockers=net.bind_tcp src=8080";
static const char rec_signal[] = "audit(1795786607.281:30109): domain=113ccc6f0 "
                                 "blockers=scope.signal opid=1 ocomm=\"process_api\"";
static const char rec_net_domain[] = "audit(1795786607.281:30106): domain=113ccc6f0 "
                                     "status=allocated mode=enforcing pid=27379 uid=0 "
                                     "exe=\"/tmp/fsaudit-cap/net\" comm=\"net\"";

static void test_parse_and_map_network(void)
{
	static struct cd_fsaudit_record r;
	const char *why = NULL;
	CU_ASSERT_EQUAL_FATAL(parse(1423, rec_connect, &r, &why), 1);
	CU_ASSERT_STRING_EQUAL(r.blockers, "net.connect_tcp");
	CU_ASSERT_STRING_EQUAL(r.daddr, "127.0.0.1");
	CU_ASSERT_EQUAL(r.dport, 9);
	CU_ASSERT_EQUAL_FATAL(parse(1423, rec_connect6, &r, &why), 1);
	CU_ASSERT_STRING_EQUAL(r.daddr, "::1");
	CU_ASSERT_EQUAL_FATAL(parse(1423, rec_bind, &r, &why), 1);
	CU_ASSERT_EQUAL(r.sport, 8080);
	CU_ASSERT_STRING_EQUAL(r.daddr, "");

	struct cd_fsaudit *a = NULL;
	g_nev = 0;
	CU_ASSERT_EQUAL_FATAL(cd_fsaudit_new(CD_FSAUDIT_MODE_OFF, 7, "/tmp/fsaudit-cap/net", NULL,
	                                     capture, NULL, &a),
	                      0);
	add_session(a, 27379, "s-net", false);
	CU_ASSERT_EQUAL(feed(a, 1423, rec_connect), 1);
	CU_ASSERT_EQUAL(feed(a, 1424, rec_net_domain), 1);
	CU_ASSERT_EQUAL(feed(a, 1423, rec_connect6), 1);
	CU_ASSERT_EQUAL(feed(a, 1423, rec_bind), 1);
	CU_ASSERT_EQUAL(feed(a, 1423, rec_signal), 1); /* scopes are not reported */
	CU_ASSERT_EQUAL_FATAL(g_nev, 3);
	CU_ASSERT_EQUAL(g_ev[0].kind, CORRAL__VIOLATION_KIND__VIOLATION_KIND_NETWORK);
	CU_ASSERT_STRING_EQUAL(g_ev[0].target, "127.0.0.1:9");
	CU_ASSERT_STRING_EQUAL(g_ev[0].detail,
	                       "blockers=net.connect_tcp layer=landlock-ports domain=113ccc6f0");
	CU_ASSERT_STRING_EQUAL(g_ev[1].target, "[::1]:443");
	CU_ASSERT_STRING_EQUAL(g_ev[2].target, "*:8080");
	CU_ASSERT_PTR_NOT_NULL(strstr(g_ev[2].detail, "net.bind_tcp"));
	cd_fsaudit_free(a);
}

static void test_map_foreign_domains(void)
{
	struct cd_fsaudit *a = new_reader();
	add_session(a, CAP_PID, "s-one", true);
	/* same pid, another executable: the agent's own domain, not the profile's */
	CU_ASSERT_EQUAL(feed(a, 1423, "audit(1.2:3): domain=aa blockers=fs.read_file path=\"/x\""),
	                1);
	CU_ASSERT_EQUAL(feed(a, 1424,
	                     "audit(1.2:4): domain=aa status=allocated mode=enforcing pid=13531 "
	                     "uid=0 exe=\"/usr/bin/agent\" comm=\"agent\""),
	                1);
	CU_ASSERT_EQUAL(feed(a, 1423, "audit(1.2:5): domain=aa blockers=fs.read_file path=\"/y\""),
	                1);
	/* right executable, a pid that is no session */
	CU_ASSERT_EQUAL(feed(a, 1424,
	                     "audit(1.2:6): domain=bb status=allocated mode=enforcing pid=77 uid=0 "
	                     "exe=\"" CAP_EXE "\" comm=\"cap\""),
	                1);
	CU_ASSERT_EQUAL(feed(a, 1423, "audit(1.2:7): domain=bb blockers=fs.read_file path=\"/z\""),
	                1);
	CU_ASSERT_EQUAL(g_nev, 0);
	/* the profile's domain, its binary replaced on disk since: still ours; audit mode */
	CU_ASSERT_EQUAL(
	        feed(a, 1424,
	             "audit(1.2:8): domain=cc status=allocated mode=enforcing pid=13531 "
	             "uid=0 exe=2F746D702F667361756469742D6361702F636170202864656C6574656429"
	             " comm=\"cap\""),
	        1);
	CU_ASSERT_EQUAL(feed(a, 1423, "audit(1.2:9): domain=cc blockers=fs.read_file name=\"k\""),
	                1);
	CU_ASSERT_EQUAL_FATAL(g_nev, 1);
	CU_ASSERT_TRUE(g_ev[0].audit_only);
	CU_ASSERT_STRING_EQUAL(g_ev[0].target, "k");
	CU_ASSERT_PTR_NOT_NULL(strstr(g_ev[0].detail, "object=name"));
	/* a foreign domain released, then seen again: held (unknown), not reported */
	CU_ASSERT_EQUAL(feed(a, 1424, "audit(1.3:1): domain=aa status=deallocated denials=2"), 1);
	CU_ASSERT_EQUAL(feed(a, 1423, "audit(1.3:2): domain=aa blockers=fs.read_file path=\"/q\""),
	                1);
	CU_ASSERT_EQUAL(g_nev, 1);
	/* a session's domain released while the session runs: a new domain record maps again */
	CU_ASSERT_EQUAL(feed(a, 1424, "audit(1.3:3): domain=cc status=deallocated denials=1"), 1);
	CU_ASSERT_EQUAL(feed(a, 1423, "audit(1.3:4): domain=cc blockers=fs.read_file path=\"/w\""),
	                1);
	CU_ASSERT_EQUAL(g_nev, 1);
	cd_fsaudit_free(a);
}

static void test_map_pending_bound_and_rate_limit(void)
{
	struct cd_fsaudit *a = new_reader();
	add_session(a, CAP_PID, "s-one", false);
	char rec[160];
	/* more held records than the queue keeps: the oldest go */
	for (unsigned i = 0; i < CD_FSAUDIT_PENDING_MAX + 6; i++) {
		snprintf(rec, sizeof(rec),
		         "audit(1.2:%u): domain=dd blockers=fs.read_file path=\"/p%u\"", i, i);
		CU_ASSERT_EQUAL(feed(a, 1423, rec), 1);
	}
	CU_ASSERT_EQUAL(feed(a, 1424,
	                     "audit(1.2:9): domain=dd status=allocated mode=enforcing pid=13531 "
	                     "uid=0 exe=\"" CAP_EXE "\" comm=\"cap\""),
	                1);
	CU_ASSERT_EQUAL_FATAL(g_nev, CD_FSAUDIT_PER_S); /* 64 held, 50 within the second */
	CU_ASSERT_STRING_EQUAL(g_ev[0].target, "/p6");
	/* the next second: one event carrying the count of those suppressed */
	usleep(1050 * 1000);
	CU_ASSERT_EQUAL(feed(a, 1423, "audit(1.2:99): domain=dd blockers=fs.read_file path=\"/n\""),
	                1);
	CU_ASSERT_EQUAL_FATAL(g_nev, CD_FSAUDIT_PER_S + 1);
	CU_ASSERT_EQUAL(g_ev[CD_FSAUDIT_PER_S].suppressed,
	                CD_FSAUDIT_PENDING_MAX - CD_FSAUDIT_PER_S);
	CU_ASSERT_STRING_EQUAL(g_ev[CD_FSAUDIT_PER_S].target, "/n");
	cd_fsaudit_free(a);
}

static void test_session_add_refusals_and_status(void)
{
	struct cd_fsaudit *a = new_reader();
	char longid[80];
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	struct cd_fsaudit_session s = {.pid = 0, .session_id = "s", .user = "u", .profile = "p"};
	CU_ASSERT_EQUAL(cd_fsaudit_session_add(a, &s), -EINVAL);
	CU_ASSERT_EQUAL(cd_fsaudit_session_add(a, NULL), -EINVAL);
	s.pid = 5;
	s.user = NULL;
	CU_ASSERT_EQUAL(cd_fsaudit_session_add(a, &s), -EINVAL);
	s.user = "u";
	s.session_id = longid;
	CU_ASSERT_EQUAL(cd_fsaudit_session_add(a, &s), -EINVAL);
	/* the same pid again replaces the older entry */
	s.session_id = "s";
	CU_ASSERT_EQUAL(cd_fsaudit_session_add(a, &s), 0);
	CU_ASSERT_EQUAL(cd_fsaudit_session_add(a, &s), 0);
	cd_fsaudit_session_end(a, 5);
	cd_fsaudit_session_end(NULL, 5);
	CU_ASSERT_EQUAL(cd_fsaudit_restore(a, NULL, 0), 0); /* nothing changed: nothing to undo */
	cd_fsaudit_free(a);
	cd_fsaudit_free(NULL);
	CU_ASSERT_STRING_EQUAL(cd_fsaudit_status(NULL), "not set up");
	CU_ASSERT_FALSE(cd_fsaudit_available(NULL));

	/* a configuration change switching audit off (captured from this kernel) is noticed only
	 * while reporting is on; this reader is off, so nothing changes */
	static const char cfg_off[] = "audit(1795785815.441:3220): op=set audit_enabled=0 old=1 "
	                              "auid=4294967295 ses=4294967295 res=1";
	CU_ASSERT_EQUAL_FATAL(cd_fsaudit_new(CD_FSAUDIT_MODE_OFF, 7, NULL, NULL, NULL, NULL, &a),
	                      0);
	CU_ASSERT_EQUAL(
	        cd_fsaudit_handle(a, CD_FSAUDIT_TYPE_CONFIG_CHANGE, cfg_off, strlen(cfg_off)), 0);
	CU_ASSERT_STRING_EQUAL(cd_fsaudit_status(a), "off in the configuration");
	cd_fsaudit_free(a);

	/* an ABI without audit records: unavailable, saying why */
	CU_ASSERT_EQUAL_FATAL(cd_fsaudit_new(CD_FSAUDIT_MODE_AUTO, 6, NULL, NULL, NULL, NULL, &a),
	                      0);
	CU_ASSERT_FALSE(cd_fsaudit_available(a));
	CU_ASSERT_PTR_NOT_NULL(strstr(cd_fsaudit_status(a), "Landlock ABI 6"));
	cd_fsaudit_free(a);
}

/* ---- the control exchange against a fake kernel ------------------------------------------ */

enum reply {
	R_ACK,          /* NLMSG_ERROR 0 */
	R_ERR,          /* NLMSG_ERROR -err */
	R_STATUS,       /* ack, then AUDIT_GET's status (as the kernel orders them) */
	R_NONE,         /* no answer */
	R_SHORT_ERR,    /* NLMSG_ERROR too short */
	R_POSITIVE_ERR, /* NLMSG_ERROR with error > 0 */
	R_SHORT_STATUS, /* status payload of 4 bytes */
	R_HUGE,         /* a datagram larger than any reply */
	R_OTHER_SEQ,    /* a reply to another request, then the ack */
};

struct step {
	uint16_t type; /* request expected */
	enum reply reply;
	int err;          /* R_ERR */
	uint32_t enabled; /* R_STATUS */
	uint32_t pid;     /* R_STATUS: a registered auditd */
};

static void fake_send(int fd, uint32_t seq, uint16_t type, const void *data, size_t len)
{
	_Alignas(struct nlmsghdr) char buf[16384];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	memset(buf, 0, sizeof(buf));
	h->nlmsg_len = (uint32_t)NLMSG_LENGTH(len);
	h->nlmsg_type = type;
	h->nlmsg_seq = seq;
	memcpy(NLMSG_DATA(h), data, len);
	(void)!send(fd, buf, h->nlmsg_len, MSG_NOSIGNAL);
}

/* The fake kernel: answers each request per `steps`; exits 0 when every request had the
 * expected type (and the last request is followed by nothing else within 300 ms). */
static void fake_kernel(int fd, const struct step *steps, size_t n)
{
	_Alignas(struct nlmsghdr) char buf[16384];
	for (size_t i = 0; i < n; i++) {
		ssize_t got = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		if (got < (ssize_t)NLMSG_HDRLEN || h->nlmsg_type != steps[i].type)
			_exit(10 + (int)i);
		struct nlmsgerr e;
		memset(&e, 0, sizeof(e));
		e.msg = *h;
		struct audit_status st;
		memset(&st, 0, sizeof(st));
		switch (steps[i].reply) {
		case R_ERR:
			e.error = -steps[i].err;
			/* fallthrough */
		case R_ACK:
			fake_send(fd, h->nlmsg_seq, NLMSG_ERROR, &e, sizeof(e));
			break;
		case R_STATUS:
			fake_send(fd, h->nlmsg_seq, NLMSG_ERROR, &e, sizeof(e));
			st.enabled = steps[i].enabled;
			st.pid = steps[i].pid;
			fake_send(fd, h->nlmsg_seq, AUDIT_GET, &st, sizeof(st));
			break;
		case R_NONE:
			break;
		case R_SHORT_ERR:
			fake_send(fd, h->nlmsg_seq, NLMSG_ERROR, &e, 2);
			break;
		case R_POSITIVE_ERR:
			e.error = 5;
			fake_send(fd, h->nlmsg_seq, NLMSG_ERROR, &e, sizeof(e));
			break;
		case R_SHORT_STATUS:
			fake_send(fd, h->nlmsg_seq, AUDIT_GET, &st, 4);
			fake_send(fd, h->nlmsg_seq, NLMSG_ERROR, &e, sizeof(e));
			break;
		case R_HUGE:
			fake_send(fd, h->nlmsg_seq, NLMSG_ERROR, buf, 9000);
			break;
		case R_OTHER_SEQ:
			e.error = -EPERM;
			fake_send(fd, h->nlmsg_seq + 1000, NLMSG_ERROR, &e, sizeof(e));
			e.error = 0;
			fake_send(fd, h->nlmsg_seq, NLMSG_ERROR, &e, sizeof(e));
			break;
		}
	}
	struct timeval tv = {.tv_sec = 0, .tv_usec = 300000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	_exit(recv(fd, buf, sizeof(buf), 0) > 0 ? 9 : 0);
}

static pid_t start_fake(const struct step *steps, size_t n, int *ret_fd)
{
	int sv[2];
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		fake_kernel(sv[1], steps, n);
	}
	close(sv[1]);
	*ret_fd = sv[0];
	return pid;
}

static int end_fake(pid_t pid, int fd)
{
	int st = 0;
	close(fd);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

#define N(x) (sizeof(x) / sizeof((x)[0]))

static void test_ctl_setup_and_restore(void)
{
	struct cd_fsaudit_changes ch;
	char why[256];
	int fd;
	pid_t pid;

	/* audit on already: nothing changed */
	static const struct step on[] = {{AUDIT_GET, R_STATUS, 0, 1}};
	pid = start_fake(on, N(on), &fd);
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_setup(fd, NULL, &ch, why, sizeof(why)), 0);
	CU_ASSERT_FALSE(ch.rule_added || ch.audit_enabled);
	CU_ASSERT_EQUAL(end_fake(pid, fd), 0);

	/* off: rule, then enable; restore: disable, then the rule */
	static const struct step off[] = {{AUDIT_GET, R_STATUS, 0, 0},
	                                  {AUDIT_ADD_RULE, R_ACK, 0, 0},
	                                  {AUDIT_SET, R_OTHER_SEQ, 0, 0},
	                                  {AUDIT_SET, R_ACK, 0, 0},
	                                  {AUDIT_DEL_RULE, R_ACK, 0, 0}};
	pid = start_fake(off, N(off), &fd);
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_setup(fd, NULL, &ch, why, sizeof(why)), 0);
	CU_ASSERT_TRUE(ch.rule_added && ch.audit_enabled);
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_restore(fd, &ch, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(end_fake(pid, fd), 0);

	/* the rule was there already: not ours, not removed */
	static const struct step had[] = {{AUDIT_GET, R_STATUS, 0, 0},
	                                  {AUDIT_ADD_RULE, R_ERR, EEXIST, 0},
	                                  {AUDIT_SET, R_ACK, 0, 0},
	                                  {AUDIT_SET, R_ACK, 0, 0}};
	pid = start_fake(had, N(had), &fd);
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_setup(fd, NULL, &ch, why, sizeof(why)), 0);
	CU_ASSERT_TRUE(!ch.rule_added && ch.audit_enabled);
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_restore(fd, &ch, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(end_fake(pid, fd), 0);
}

/* A killed predecessor's changes: adopted only while audit is still on, unlocked, and no
 * auditd registered; its rule counts as ours when it is found again. */
static void test_ctl_adopt_inherited(void)
{
	struct cd_fsaudit_changes ch, both = {true, true};
	char why[256];
	int fd;
	pid_t pid;

	static const struct step on[] = {{AUDIT_GET, R_STATUS, 0, 1, 0}};
	pid = start_fake(on, N(on), &fd);
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_setup(fd, &both, &ch, why, sizeof(why)), 1);
	CU_ASSERT_TRUE(ch.rule_added && ch.audit_enabled);
	CU_ASSERT_EQUAL(end_fake(pid, fd), 0);

	static const struct step auditd[] = {{AUDIT_GET, R_STATUS, 0, 1, 4242}};
	pid = start_fake(auditd, N(auditd), &fd);
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_setup(fd, &both, &ch, why, sizeof(why)), 0);
	CU_ASSERT_FALSE(ch.rule_added || ch.audit_enabled);
	CU_ASSERT_EQUAL(end_fake(pid, fd), 0);

	static const struct step locked[] = {{AUDIT_GET, R_STATUS, 0, 2, 0}};
	pid = start_fake(locked, N(locked), &fd);
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_setup(fd, &both, &ch, why, sizeof(why)), 0);
	CU_ASSERT_FALSE(ch.rule_added || ch.audit_enabled);
	CU_ASSERT_EQUAL(end_fake(pid, fd), 0);

	/* switched off since, the rule still there: enabled again, the rule is ours */
	static const struct step off[] = {{AUDIT_GET, R_STATUS, 0, 0, 0},
	                                  {AUDIT_ADD_RULE, R_ERR, EEXIST, 0, 0},
	                                  {AUDIT_SET, R_ACK, 0, 0, 0}};
	pid = start_fake(off, N(off), &fd);
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_setup(fd, &both, &ch, why, sizeof(why)), 0);
	CU_ASSERT_TRUE(ch.rule_added && ch.audit_enabled);
	CU_ASSERT_EQUAL(end_fake(pid, fd), 0);
}

static void test_ctl_failures(void)
{
	struct cd_fsaudit_changes ch = {false, false};
	char why[256];
	int fd;
	pid_t pid;
	static const struct {
		struct step steps[3];
		size_t n;
		int expect;
		const char *why;
	} cases[] = {
	        {{{AUDIT_GET, R_ERR, EPERM, 0}}, 1, -EPERM, "AUDIT_GET"},
	        {{{AUDIT_GET, R_SHORT_ERR, 0, 0}}, 1, -EBADMSG, "AUDIT_GET"},
	        {{{AUDIT_GET, R_POSITIVE_ERR, 0, 0}}, 1, -EBADMSG, "AUDIT_GET"},
	        {{{AUDIT_GET, R_SHORT_STATUS, 0, 0}}, 1, -EBADMSG, "AUDIT_GET"},
	        {{{AUDIT_GET, R_HUGE, 0, 0}}, 1, -EMSGSIZE, "AUDIT_GET"},
	        {{{AUDIT_GET, R_NONE, 0, 0}}, 1, -ETIMEDOUT, "AUDIT_GET"},
	        {{{AUDIT_GET, R_STATUS, 0, 0}, {AUDIT_ADD_RULE, R_ERR, EINVAL, 0}},
	         2,
	         -EINVAL,
	         "AUDIT_ADD_RULE"},
	        /* enabling refused: the rule just installed is removed again */
	        {{{AUDIT_GET, R_STATUS, 0, 0},
	          {AUDIT_ADD_RULE, R_ACK, 0, 0},
	          {AUDIT_SET, R_ERR, EPERM, 0}},
	         3,
	         -EPERM,
	         "enabling audit"},
	};
	for (size_t i = 0; i < N(cases); i++) {
		struct step steps[4];
		size_t n = cases[i].n;
		memcpy(steps, cases[i].steps, n * sizeof(steps[0]));
		if (cases[i].expect == -EPERM && n == 3)
			steps[n++] = (struct step){AUDIT_DEL_RULE, R_ACK, 0, 0};
		pid = start_fake(steps, n, &fd);
		why[0] = '\0';
		int r = cd_fsaudit_ctl_setup(fd, NULL, &ch, why, sizeof(why));
		if (r != cases[i].expect || !strstr(why, cases[i].why))
			printf("\n    case %zu: %d %s", i, r, why);
		CU_ASSERT_EQUAL(r, cases[i].expect);
		CU_ASSERT_PTR_NOT_NULL(strstr(why, cases[i].why));
		CU_ASSERT_EQUAL(end_fake(pid, fd), 0);
	}

	/* restore: both steps are tried, the first failure is returned */
	struct cd_fsaudit_changes both = {true, true};
	static const struct step rs[] = {{AUDIT_SET, R_ERR, EPERM, 0},
	                                 {AUDIT_DEL_RULE, R_ERR, ENOENT, 0}};
	pid = start_fake(rs, N(rs), &fd);
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_restore(fd, &both, why, sizeof(why)), -EPERM);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "disabling audit"));
	CU_ASSERT_EQUAL(end_fake(pid, fd), 0);
	static const struct step rd[] = {{AUDIT_SET, R_ACK, 0, 0},
	                                 {AUDIT_DEL_RULE, R_ERR, ENOENT, 0}};
	pid = start_fake(rd, N(rd), &fd);
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_restore(fd, &both, why, sizeof(why)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "removing the rule"));
	CU_ASSERT_EQUAL(end_fake(pid, fd), 0);
	/* nobody at the other end: the send fails */
	int sv[2];
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	close(sv[1]);
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_setup(sv[0], NULL, &ch, why, sizeof(why)), -EPIPE);
	bool on;
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_status(sv[0], &on), -EPIPE);
	close(sv[0]);
}

/* ---- real kernel, capabilities dropped (root only; nothing is changed) -------------------- */

/* Open descriptors of this process (a leak check around a call). */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int drop_cap_and_probe(int cap, const char *expect)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) < 0)
		return 2;
	data[cap / 32].effective &= ~(1u << (cap % 32));
	if (syscall(SYS_capset, &hdr, data) < 0)
		return 3;
	struct cd_fsaudit *a = NULL;
	int fds = count_fds();
	if (cd_fsaudit_new(CD_FSAUDIT_MODE_AUTO, 7, NULL, NULL, NULL, NULL, &a) < 0)
		return 4;
	int r = !cd_fsaudit_available(a) && strstr(cd_fsaudit_status(a), expect) &&
	                        strstr(cd_fsaudit_status(a), "Operation not permitted") &&
	                        cd_fsaudit_fd(a) < 0
	                ? 0
	                : 5;
	if (r)
		fprintf(stderr, "status: %s\n", cd_fsaudit_status(a));
	cd_fsaudit_free(a);
	/* the refused socket was closed again */
	if (r == 0 && count_fds() != fds)
		r = 6;
	return r;
}

static void test_unavailable_without_capabilities(void)
{
	if (!harness_is_root())
		HARNESS_SKIP("needs root (drops CAP_AUDIT_READ / CAP_AUDIT_CONTROL in a child)");
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
	if (fd < 0)
		HARNESS_SKIP("no NETLINK_AUDIT on this kernel");
	close(fd);
	static const struct {
		int cap;
		const char *expect;
	} cases[] = {{CAP_AUDIT_READ, "log group"}, {CAP_AUDIT_CONTROL, "AUDIT_GET"}};
	for (size_t i = 0; i < N(cases); i++) {
		pid_t pid = fork();
		CU_ASSERT_FATAL(pid >= 0);
		if (pid == 0)
			_exit(drop_cap_and_probe(cases[i].cap, cases[i].expect));
		int st = 0;
		waitpid(pid, &st, 0);
		CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

/* ---- error paths driven in a child: seccomp makes one system call fail ------------------- */

/*
 * What a child reports to the parent through a pipe. The child installs a libseccomp filter
 * that makes exactly the targeted system call fail with a chosen errno (a real failure of
 * the real call, nothing mocked), calls into fsaudit and describes the outcome; the filter
 * and any namespace change die with it.
 */
struct probe {
	int step; /* 0: the child got as far as reporting; else where it stopped */
	int rc;   /* what the call under test returned */
	bool ret_untouched;
	bool available;
	int fd;
	char status[384];
	struct cd_fsaudit_changes changes;
	int fds_before, fds_after;     /* open descriptors around the call (and the free) */
	bool netns_own;                /* the thread is back in the namespace it called from */
	int audit_before, audit_after; /* kernel audit on (1) / off (0) / unknown (-1) */
	int leaks;                     /* LeakSanitizer's verdict (0 without ASan) */
	char msg[256];
};

#if defined(__SANITIZE_ADDRESS__)
#define FSAUDIT_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FSAUDIT_TEST_ASAN 1
#endif
#endif
#ifdef FSAUDIT_TEST_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* Leaks so far, in the child (LeakSanitizer needs to clone: not with clone refused). */
static int leak_check(void)
{
#ifdef FSAUDIT_TEST_ASAN
	return __lsan_do_recoverable_leak_check();
#else
	return 0;
#endif
}

/* Kernel audit on (1), off (0), or -1 when it cannot be asked. A datagram socket: the
 * filters below refuse fsaudit's raw ones, not this. */
static int audit_on(void)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_AUDIT);
	bool on = false;
	int r = fd >= 0 && cd_fsaudit_ctl_status(fd, &on) == 0 ? on : -1;
	if (fd >= 0)
		close(fd);
	return r;
}

static ino_t netns_ino(void)
{
	struct stat st;
	return stat("/proc/thread-self/ns/net", &st) == 0 ? st.st_ino : 0;
}

/* cd_fsaudit_new (MODE_AUTO, ABI 7) under the filter; fills *p. `unshare_net`: called from a
 * network namespace of the child's own (so fsaudit moves to the initial one and back). */
static void probe_new(struct probe *p, const struct deny *d, size_t n, bool unshare_net)
{
	struct cd_fsaudit *sentinel = (struct cd_fsaudit *)p, *a = sentinel;
	p->step = 1;
	if (unshare_net && unshare(CLONE_NEWNET) < 0)
		return;
	ino_t own = netns_ino();
	p->audit_before = audit_on();
	p->step = 2;
	if (install_denials(d, n) < 0)
		return;
	p->fds_before = count_fds();
	p->rc = cd_fsaudit_new(CD_FSAUDIT_MODE_AUTO, 7, NULL, NULL, NULL, NULL, &a);
	p->netns_own = netns_ino() == own;
	p->ret_untouched = a == sentinel;
	if (p->rc == 0 && a != sentinel) {
		p->available = cd_fsaudit_available(a);
		p->fd = cd_fsaudit_fd(a);
		p->changes = cd_fsaudit_changes(a);
		snprintf(p->status, sizeof(p->status), "%s", cd_fsaudit_status(a));
		cd_fsaudit_free(a);
	}
	p->fds_after = count_fds();
	p->audit_after = audit_on();
	p->step = 0;
}

typedef void (*probe_fn)(struct probe *p, const void *arg);

/* Runs fn in a forked child; returns its report (step 99: the child died before reporting). */
static struct probe run_probe(probe_fn fn, const void *arg)
{
	struct probe p;
	int pfd[2];
	memset(&p, 0, sizeof(p));
	p.step = 99;
	CU_ASSERT_FATAL(pipe2(pfd, O_CLOEXEC) == 0);
	fflush(NULL);
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct probe c;
		close(pfd[0]);
		memset(&c, 0, sizeof(c));
		c.audit_before = c.audit_after = -1;
		fn(&c, arg);
		_exit(write(pfd[1], &c, sizeof(c)) == (ssize_t)sizeof(c) ? 0 : 1);
	}
	close(pfd[1]);
	if (read(pfd[0], &p, sizeof(p)) != (ssize_t)sizeof(p))
		p.step = 99;
	close(pfd[0]);
	int st = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (p.step != 0 || p.leaks)
		printf("\n    child stopped at step %d (leaks %d): rc %d, status \"%s\" %s", p.step,
		       p.leaks, p.rc, p.status, p.msg);
	return p;
}

/* Reporting unavailable, cleanly: nothing open, nothing changed, the reason in the status. */
static void assert_unavailable(const struct probe *p, const char *why)
{
	CU_ASSERT_EQUAL(p->step, 0);
	CU_ASSERT_EQUAL(p->rc, 0);
	CU_ASSERT_FALSE(p->available);
	CU_ASSERT_EQUAL(p->fd, -1);
	CU_ASSERT_FALSE(p->changes.rule_added || p->changes.audit_enabled);
	if (!strstr(p->status, why))
		printf("\n    status \"%s\", expected \"%s\"", p->status, why);
	CU_ASSERT_PTR_NOT_NULL(strstr(p->status, why));
	CU_ASSERT_EQUAL(p->fds_after, p->fds_before);
	CU_ASSERT_TRUE(p->netns_own);
	if (harness_is_root())
		CU_ASSERT(p->audit_before >= 0); /* the comparison below means something */
	CU_ASSERT_EQUAL(p->audit_after, p->audit_before);
	CU_ASSERT_EQUAL(p->leaks, 0);
}

#define SOCK_LOG  (SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK)
#define SOCK_CTL  (SOCK_RAW | SOCK_CLOEXEC)
#define ARG(i, v) SCMP_A##i(SCMP_CMP_EQ, (scmp_datum_t)(v))

struct new_case {
	struct deny d[2];
	size_t n;
	bool unshare_net;
	bool lsan; /* LeakSanitizer can run in the child (clone not refused) */
};

static void probe_new_case(struct probe *p, const void *arg)
{
	const struct new_case *c = arg;
	probe_new(p, c->d, c->n, c->unshare_net);
	if (c->lsan && p->step == 0)
		p->leaks = leak_check();
}

static bool have_audit_netlink(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* The log group's socket cannot be created (EACCES): unavailable with the reason, before
 * anything is asked of the kernel. Needs no privilege. */
static void test_new_log_socket_fails(void)
{
	static const struct new_case c = {
	        {{SCMP_SYS(socket),
	          EACCES,
	          3,
	          {ARG(0, AF_NETLINK), ARG(1, SOCK_LOG), ARG(2, NETLINK_AUDIT)}}},
	        1,
	        false,
	        true};
	struct probe p = run_probe(probe_new_case, &c);
	assert_unavailable(&p, "audit netlink socket: Permission denied");
}

/* The control socket cannot be created (EMFILE) once the log socket is bound: the log socket
 * is closed again; also from a network namespace of its own, where the thread must be back
 * in it afterwards. Root: joining the log group needs CAP_AUDIT_READ. */
static void test_new_ctl_socket_fails(void)
{
	if (!harness_is_root())
		HARNESS_SKIP("needs root (CAP_AUDIT_READ to bind the log socket first)");
	if (!have_audit_netlink())
		HARNESS_SKIP("no NETLINK_AUDIT on this kernel");
	struct new_case c = {{{SCMP_SYS(socket),
	                       EMFILE,
	                       3,
	                       {ARG(0, AF_NETLINK), ARG(1, SOCK_CTL), ARG(2, NETLINK_AUDIT)}}},
	                     1,
	                     false,
	                     true};
	struct probe p = run_probe(probe_new_case, &c);
	assert_unavailable(&p, "audit netlink socket: Too many open files");
	c.unshare_net = true;
	p = run_probe(probe_new_case, &c);
	assert_unavailable(&p, "audit netlink socket: Too many open files");
}

/* setns back to the caller's own network namespace fails (EPERM on exactly that setns: the
 * descriptor fsaudit saved it in is the lowest free one when it opens it, the initial
 * namespace's the next): cd_fsaudit_new returns the error (corrald stops), *ret untouched,
 * both audit sockets closed, nothing allocated left, the audit state not touched. */
static void probe_setns_back(struct probe *p, const void *arg)
{
	(void)arg;
	p->step = 1;
	if (unshare(CLONE_NEWNET) < 0)
		return;
	int saved = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int target = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (saved < 0 || target < 0)
		return;
	close(target);
	close(saved);
	struct deny d = {SCMP_SYS(setns), EPERM, 2, {ARG(0, saved), ARG(1, CLONE_NEWNET)}};
	probe_new(p, &d, 1, false);
	if (p->step == 0)
		p->leaks = leak_check();
}

static void test_new_netns_return_fails(void)
{
	if (!harness_is_root())
		HARNESS_SKIP("needs root (a network namespace of its own, setns)");
	if (!have_audit_netlink())
		HARNESS_SKIP("no NETLINK_AUDIT on this kernel");
	struct probe p = run_probe(probe_setns_back, NULL);
	CU_ASSERT_EQUAL(p.step, 0);
	CU_ASSERT_EQUAL(p.rc, -EPERM);
	CU_ASSERT_TRUE(p.ret_untouched);
	CU_ASSERT_EQUAL(p.fds_after, p.fds_before);
	CU_ASSERT_FALSE(p.netns_own); /* left in the initial one: the caller must stop */
	CU_ASSERT_EQUAL(p.audit_after, p.audit_before);
	CU_ASSERT_EQUAL(p.leaks, 0);
}

/* The initial network namespace cannot be entered (every setns refused): the sockets are made
 * in corrald's own namespace, where no record is multicast, so the self-test times out and
 * reporting is unavailable, saying both; what setup changed is undone at once. */
static void test_new_netns_enter_fails(void)
{
	if (!harness_is_root())
		HARNESS_SKIP("needs root (a network namespace of its own, audit control)");
	if (!have_audit_netlink())
		HARNESS_SKIP("no NETLINK_AUDIT on this kernel");
	static const struct new_case c = {
	        {{SCMP_SYS(setns), EPERM, 1, {ARG(1, CLONE_NEWNET)}}}, 1, true, true};
	struct probe p = run_probe(probe_new_case, &c);
	assert_unavailable(&p, "self-test: no Landlock audit record reached corrald within");
	CU_ASSERT_PTR_NOT_NULL(strstr(
	        p.status, "not in the initial network namespace and cannot enter it: Operation "
	                  "not permitted"));
}

/*
 * The self-test cannot run (root, the real audit state: set up, then undone at once):
 *  - fork refused (clone, clone3: EAGAIN): "self-test: fork";
 *  - the Landlock child fails (landlock_create_ruleset: ENOSYS, inherited by the child);
 *  - the child's denial never happens (its open of "/" refused: EACCES), so no record comes:
 *    the self-test times out.
 * Each time reporting is unavailable with the reason and audit is as it was before.
 */
static void test_self_test_failures(void)
{
	if (!harness_is_root())
		HARNESS_SKIP("needs root (audit control, the log group)");
	if (!have_audit_netlink())
		HARNESS_SKIP("no NETLINK_AUDIT on this kernel");
	if (syscall(SYS_landlock_create_ruleset, NULL, 0, 1) < 7)
		HARNESS_SKIP("Landlock ABI < 7: no audit records to test with");
	static const struct new_case fork_fails = {
	        {{SCMP_SYS(clone), EAGAIN, 0, {}}, {SCMP_SYS(clone3), EAGAIN, 0, {}}},
	        2,
	        false,
	        false};
	struct probe p = run_probe(probe_new_case, &fork_fails);
	assert_unavailable(&p, "self-test: fork: Resource temporarily unavailable");

	static const struct new_case child_fails = {
	        {{SCMP_SYS(landlock_create_ruleset), ENOSYS, 0, {}}}, 1, false, true};
	p = run_probe(probe_new_case, &child_fails);
	assert_unavailable(&p, "self-test: the Landlock child failed (status 256)");

	static const struct new_case no_denial = {
	        {{SCMP_SYS(openat), EACCES, 1, {ARG(2, O_RDONLY | O_DIRECTORY | O_CLOEXEC)}}},
	        1,
	        false,
	        true};
	p = run_probe(probe_new_case, &no_denial);
	assert_unavailable(&p, "self-test: no Landlock audit record reached corrald within");
}

/*
 * Undoing fails (root, audit off before: the reader enabled it): the kernel refuses the
 * requests (send: EPERM under the filter), cd_fsaudit_restore returns the error with the step,
 * and is done (a second call does nothing); the parent then undoes the changes the child
 * reported, so the host is left as it was.
 */
static void probe_restore_fails(struct probe *p, const void *arg)
{
	(void)arg;
	struct cd_fsaudit *a = NULL;
	p->step = 1;
	p->audit_before = audit_on();
	if (cd_fsaudit_new(CD_FSAUDIT_MODE_AUTO, 7, NULL, NULL, NULL, NULL, &a) < 0)
		return;
	p->available = cd_fsaudit_available(a);
	p->changes = cd_fsaudit_changes(a);
	snprintf(p->status, sizeof(p->status), "%s", cd_fsaudit_status(a));
	p->step = 2;
	if (!p->available || !(p->changes.audit_enabled || p->changes.rule_added)) {
		cd_fsaudit_free(a);
		p->step = 0;
		return;
	}
	struct deny d = {SCMP_SYS(sendto), EPERM, 0, {}};
	p->step = 3;
	if (install_denials(&d, 1) < 0)
		return;
	p->rc = cd_fsaudit_restore(a, p->msg, sizeof(p->msg));
	p->fd = cd_fsaudit_fd(a);
	p->ret_untouched = cd_fsaudit_restore(a, NULL, 0) == 0; /* idempotent */
	cd_fsaudit_free(a);
	p->step = 0;
}

static void test_restore_fails(void)
{
	if (!harness_is_root())
		HARNESS_SKIP("needs root (audit control, the log group)");
	if (!have_audit_netlink())
		HARNESS_SKIP("no NETLINK_AUDIT on this kernel");
	struct probe p = run_probe(probe_restore_fails, NULL);
	CU_ASSERT_EQUAL_FATAL(p.step, 0);
	if (!p.available)
		HARNESS_SKIP("reporting is unavailable here: %s", p.status);
	if (!p.changes.audit_enabled && !p.changes.rule_added)
		HARNESS_SKIP("audit was on already: the reader changes nothing, nothing to undo");
	/* it really stayed on (the child could not ask: its sends fail) */
	CU_ASSERT_EQUAL(audit_on(), 1);
	/* the host first: undo what the child left */
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
	char why[256] = "";
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(cd_fsaudit_ctl_restore(fd, &p.changes, why, sizeof(why)), 0);
	close(fd);
	CU_ASSERT_EQUAL(audit_on(), p.audit_before);

	CU_ASSERT_EQUAL(p.rc, -EPERM);
	CU_ASSERT_STRING_EQUAL(p.msg, "disabling audit (AUDIT_SET): Operation not permitted");
	CU_ASSERT_EQUAL(p.fd, -1);
	CU_ASSERT_TRUE(p.ret_untouched);
}

/* The control exchange's own system calls fail (a fake kernel on a socketpair, no root):
 * poll (ENOMEM) and recv (ENOMEM, after the fake kernel's reply is there). */
static void probe_ctl_syscall(struct probe *p, const void *arg)
{
	const struct deny *d = arg;
	static const struct step get[] = {{AUDIT_GET, R_STATUS, 0, 0, 0}};
	struct cd_fsaudit_changes ch = {false, false};
	int fd;
	p->step = 1;
	pid_t pid = start_fake(get, N(get), &fd);
	if (install_denials(d, 2) < 0)
		return;
	p->rc = cd_fsaudit_ctl_setup(fd, NULL, &ch, p->msg, sizeof(p->msg));
	p->changes = ch;
	(void)end_fake(pid, fd);
	p->step = 0;
}

static void test_ctl_syscalls_fail(void)
{
	static const struct deny poll_fails[2] = {{SCMP_SYS(poll), ENOMEM, 0, {}},
	                                          {SCMP_SYS(ppoll), ENOMEM, 0, {}}};
	struct probe p = run_probe(probe_ctl_syscall, poll_fails);
	CU_ASSERT_EQUAL(p.step, 0);
	CU_ASSERT_EQUAL(p.rc, -ENOMEM);
	CU_ASSERT_STRING_EQUAL(p.msg, "audit status (AUDIT_GET): Cannot allocate memory");
	CU_ASSERT_FALSE(p.changes.rule_added || p.changes.audit_enabled);

	static const struct deny recv_fails[2] = {{SCMP_SYS(recvfrom), ENOMEM, 0, {}},
	                                          {SCMP_SYS(recvmsg), ENOMEM, 0, {}}};
	p = run_probe(probe_ctl_syscall, recv_fails);
	CU_ASSERT_EQUAL(p.step, 0);
	CU_ASSERT_EQUAL(p.rc, -ENOMEM);
	CU_ASSERT_STRING_EQUAL(p.msg, "audit status (AUDIT_GET): Cannot allocate memory");
}

/* ---- out of memory: the child's heap exhausted under RLIMIT_AS ----------------------------- */

#ifndef FSAUDIT_TEST_ASAN
/* Takes every heap block of at least 16 bytes (nothing can grow past RLIMIT_AS): a list of
 * blocks, each holding the next. */
static void *exhaust_heap(void)
{
	static const size_t sizes[] = {1u << 16, 1u << 13, 1u << 10, 128, 16};
	void *list = NULL;
	for (size_t i = 0; i < N(sizes); i++) {
		void *b;
		while ((b = malloc(sizes[i]))) {
			*(void **)b = list;
			list = b;
		}
	}
	return list;
}

static void release_heap(void *list)
{
	while (list) {
		void *next = *(void **)list;
		free(list);
		list = next;
	}
}

static int g_emitted;
static int count_emit(void *userdata, Corral__Event *ev)
{
	(void)userdata;
	(void)ev;
	g_emitted++;
	return 0;
}

static void __attribute__((noinline)) touch_stack(void)
{
	volatile char buf[256 * 1024];
	for (size_t i = 0; i < sizeof(buf); i += 4096)
		buf[i] = 1;
}

/* The step at which it went wrong, or 0: every allocation refused returns -ENOMEM with
 * nothing half done, and the reader works as before once memory is back. */
static void probe_oom(struct probe *p, const void *arg)
{
	(void)arg;
	struct cd_fsaudit *a = NULL, *b = (struct cd_fsaudit *)p;
	struct cd_fsaudit_session s = {.pid = CAP_PID,
	                               .session_id = "s-oom",
	                               .uid = 1000,
	                               .user = "alice",
	                               .profile = "strict",
	                               .policy_version = 3};
	unsigned long pages = 0;
	struct rlimit old;
	p->step = 1;
	if (cd_fsaudit_new(CD_FSAUDIT_MODE_OFF, 7, CAP_EXE, NULL, count_emit, NULL, &a) < 0)
		return;
	FILE *statm = fopen("/proc/self/statm", "re");
	if (!statm || fscanf(statm, "%lu", &pages) != 1 || getrlimit(RLIMIT_AS, &old) < 0)
		return;
	fclose(statm);
	touch_stack(); /* the stack must not need to grow past the limit */
	p->step = 2;
	struct rlimit rl = {.rlim_cur = pages * (unsigned long)getpagesize(),
	                    .rlim_max = old.rlim_max};
	if (setrlimit(RLIMIT_AS, &rl) < 0)
		return;
	void *heap = exhaust_heap();
	int r1 = cd_fsaudit_session_add(a, &s);
	int r2 = cd_fsaudit_handle(a, CD_FSAUDIT_TYPE_DOMAIN, rec_domain, strlen(rec_domain));
	int r3 = cd_fsaudit_new(CD_FSAUDIT_MODE_OFF, 7, NULL, NULL, NULL, NULL, &b);
	release_heap(heap);
	if (setrlimit(RLIMIT_AS, &old) < 0)
		return;
	p->step = r1 != -ENOMEM ? 3 : r2 != -ENOMEM ? 4 : r3 != -ENOMEM ? 5 : 0;
	p->ret_untouched = b == (struct cd_fsaudit *)p;
	if (p->step)
		return;
	/* nothing was registered: the domain is foreign, its access record not reported... */
	g_emitted = 0;
	p->step = 6;
	if (cd_fsaudit_handle(a, CD_FSAUDIT_TYPE_DOMAIN, rec_domain, strlen(rec_domain)) != 1 ||
	    cd_fsaudit_handle(a, CD_FSAUDIT_TYPE_ACCESS, rec_access, strlen(rec_access)) != 1 ||
	    g_emitted != 0)
		return;
	/* ...and with memory back, a session is registered and its denials are reported */
	p->step = 7;
	s.pid = 4321;
	if (cd_fsaudit_session_add(a, &s) != 0 ||
	    cd_fsaudit_handle(a, CD_FSAUDIT_TYPE_DOMAIN,
	                      "audit(1.2:3): domain=ee status=allocated mode=enforcing pid=4321 "
	                      "uid=0 exe=\"" CAP_EXE "\" comm=\"cap\"",
	                      strlen("audit(1.2:3): domain=ee status=allocated mode=enforcing "
	                             "pid=4321 uid=0 exe=\"" CAP_EXE "\" comm=\"cap\"")) != 1 ||
	    g_emitted != 0)
		return;
	static const char acc[] = "audit(1.2:4): domain=ee blockers=fs.read_file path=\"/x\"";
	if (cd_fsaudit_handle(a, CD_FSAUDIT_TYPE_ACCESS, acc, strlen(acc)) != 1 || g_emitted != 1)
		return;
	cd_fsaudit_free(a);
	p->step = 0;
}

#endif

static void test_out_of_memory(void)
{
#ifdef FSAUDIT_TEST_ASAN
	HARNESS_SKIP("ASan's allocator maps its heap up front, so RLIMIT_AS cannot exhaust it "
	             "(the plain build drives these paths)");
#else
	struct probe p = run_probe(probe_oom, NULL);
	CU_ASSERT_EQUAL(p.step, 0);
	CU_ASSERT_TRUE(p.ret_untouched);
#endif
}

static const struct harness_test tests[] = {
        {"parse_real_records", test_parse_real_records},
        {"parse_refusals", test_parse_refusals},
        {"parse_and_map_network", test_parse_and_map_network},
        {"map_real_sequence", test_map_real_sequence},
        {"map_foreign_domains", test_map_foreign_domains},
        {"map_pending_bound_and_rate_limit", test_map_pending_bound_and_rate_limit},
        {"session_add_refusals_and_status", test_session_add_refusals_and_status},
        {"ctl_setup_and_restore", test_ctl_setup_and_restore},
        {"ctl_adopt_inherited", test_ctl_adopt_inherited},
        {"ctl_failures", test_ctl_failures},
        {"unavailable_without_capabilities", test_unavailable_without_capabilities},
        {"new_log_socket_fails", test_new_log_socket_fails},
        {"new_ctl_socket_fails", test_new_ctl_socket_fails},
        {"new_netns_return_fails", test_new_netns_return_fails},
        {"new_netns_enter_fails", test_new_netns_enter_fails},
        {"self_test_failures", test_self_test_failures},
        {"restore_fails", test_restore_fails},
        {"ctl_syscalls_fail", test_ctl_syscalls_fail},
        {"out_of_memory", test_out_of_memory},
        {NULL, NULL},
};

int main(int argc, char **argv)
{
	static const struct harness_suite suites[] = {
	        {"fsaudit", NULL, NULL, tests},
	        {NULL, NULL, NULL, NULL},
	};
	return harness_main(argc, argv, suites);
}
