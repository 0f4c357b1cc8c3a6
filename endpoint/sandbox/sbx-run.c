/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corral-sbx-run: runs one command under a sandbox profile without corrald, for tests,
 * benchmarks and debugging. The profile comes from flags (--read/--write/--deny/...), or from a
 * policy file's profile when the policy compiler is built in (--policy FILE --profile NAME).
 * It supervises the session like corrald would: seccomp notifications are answered and printed,
 * and the exit status, peak memory, CPU time and OOM kills are reported (--stats).
 *
 * Exit code: the command's, 128+N when killed by signal N, 125 when the sandbox could not be
 * set up (the failing step and errno are printed).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <linux/filter.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "sbx.h"
#include "sbx_internal.h"
#include "util.h"
#ifdef CORRAL_HAVE_POLICY
#include "policy.h"
#endif

extern char **environ;

#define LIST_MAX 256

struct list {
	char *v[LIST_MAX];
	size_t n;
};

static int push(struct list *l, char *s)
{
	if (l->n >= LIST_MAX)
		return -E2BIG;
	l->v[l->n++] = s;
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: corral-sbx-run [options] -- COMMAND [ARGS...]\n"
	        "  --read PATH --write PATH --exec PATH --deny PATH   filesystem rules "
	        "(repeatable;\n"
	        "                       ${HOME} ${WORKDIR} ${TMP} are expanded)\n"
	        "  --syscall-deny NAME  extra syscall to deny      --action errno|kill|log\n"
	        "  --no-baseline        disable the syscall baseline (testing only)\n"
	        "  --memory SIZE --pids N --cpu PERCENT            resource limits\n"
	        "  --namespace          isolation tier namespace   --audit   audit mode\n"
	        "  --env NAME|PREFIX_*  pass an environment variable through (repeatable)\n"
	        "  --degrade-resources  --landlock-partial          allow these degradations\n"
	        "  --require-landlock N --require-controller NAME  fail unless available\n"
	        "  --allow-root         --uid N --gid N             identity (root caller only)\n"
	        "  --home P --workdir P --tmp P                     session variables\n"
	        "  --tcp-connect PORT --tcp-bind PORT              Landlock TCP port rules\n"
	        "  --policy FILE --profile NAME                     profile from a policy file\n"
	        "  --layers   print enforced layers   --stats   print exit statistics\n"
	        "  --quiet    do not print violations\n"
	        "  --mechanisms-only  apply only the profile's Landlock rules and seccomp filter\n"
	        "                     (errno for denials) to COMMAND as the caller: no cgroup,\n"
	        "                     namespaces, identity change or supervisor (the baseline\n"
	        "                     of bench/sandbox's runtime-overhead comparison)\n");
}

/*
 * --mechanisms-only: the kernel mechanisms alone, to measure what corral adds at run time on
 * top of them. The same rule planner and the same compiled filter as a session; a child
 * applies them (no_new_privs, Landlock, seccomp without a listener) and execs COMMAND; its
 * failures come back over a CLOEXEC pipe like sbx_spawn's. Returns the exit code.
 */
static int run_mechanisms_only(const struct sbx_compiled *c, const char *home, const char *workdir,
                               const char *tmp, char *const *argv)
{
	struct sbx_plan plan;
	struct sbx_error e;
	int pfd[2];

	memset(&plan, 0, sizeof(plan));
	memset(&e, 0, sizeof(e));
	plan.c = c;
	plan.sync_fd = plan.notify_sock = -1;
	for (size_t i = 0; i < ELEMENTSOF(plan.cg_join_fd); i++)
		plan.cg_join_fd[i] = -1;
	int r = sbx_landlock_plan(&plan, home, workdir, tmp, &e);
	if (r < 0) {
		log_err("planning Landlock rules: %s: %s", e.message, strerror(-r));
		return 125;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		log_err("pipe: %s", strerror(errno));
		return 125;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		log_err("fork: %s", strerror(errno));
		return 125;
	}
	if (pid == 0) {
		close(pfd[0]);
		plan.err_fd = pfd[1];
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			sbx_child_fail(&plan, "no_new_privs", errno, NULL);
		sbx_landlock_apply(&plan);
		if (c->bpf) {
			struct sock_fprog prog = {.len = (unsigned short)c->bpf_len,
			                          .filter = c->bpf};
			if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
				sbx_child_fail(&plan, "seccomp", errno, "load filter");
		}
		execvp(argv[0], argv);
		sbx_child_fail(&plan, "exec", errno, argv[0]);
	}
	close(pfd[1]);
	struct sbx_child_report rep;
	ssize_t n;
	do
		n = read(pfd[0], &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (n == (ssize_t)sizeof(rep)) {
		rep.step[sizeof(rep.step) - 1] = rep.detail[sizeof(rep.detail) - 1] = '\0';
		log_err("mechanisms-only setup failed at step %s: %s%s%s", rep.step,
		        strerror(rep.error), rep.detail[0] ? ": " : "", rep.detail);
		return 125;
	}
	for (size_t i = 0; i < plan.nrules; i++)
		free(plan.rules[i].path);
	free(plan.rules);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool quiet;

static void on_violation(const struct sbx_syscall_event *ev, void *userdata)
{
	unsigned *count = userdata;

	(*count)++;
	if (!quiet)
		fprintf(stderr,
		        "corral-sbx-run: %s syscall %s (nr %d) by pid %d args 0x%" PRIx64
		        " 0x%" PRIx64 "\n",
		        ev->allowed ? "audit" : "denied", ev->name, ev->nr, (int)ev->pid,
		        ev->args[0], ev->args[1]);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"read", required_argument, NULL, 'r'},
	        {"write", required_argument, NULL, 'w'},
	        {"exec", required_argument, NULL, 'x'},
	        {"deny", required_argument, NULL, 'd'},
	        {"syscall-deny", required_argument, NULL, 's'},
	        {"action", required_argument, NULL, 'a'},
	        {"no-baseline", no_argument, NULL, 'B'},
	        {"memory", required_argument, NULL, 'm'},
	        {"pids", required_argument, NULL, 'p'},
	        {"cpu", required_argument, NULL, 'c'},
	        {"namespace", no_argument, NULL, 'N'},
	        {"audit", no_argument, NULL, 'A'},
	        {"env", required_argument, NULL, 'e'},
	        {"degrade-resources", no_argument, NULL, 'R'},
	        {"landlock-partial", no_argument, NULL, 'P'},
	        {"require-landlock", required_argument, NULL, 'L'},
	        {"require-controller", required_argument, NULL, 'C'},
	        {"allow-root", no_argument, NULL, 'O'},
	        {"uid", required_argument, NULL, 'u'},
	        {"gid", required_argument, NULL, 'g'},
	        {"home", required_argument, NULL, 'H'},
	        {"workdir", required_argument, NULL, 'W'},
	        {"tmp", required_argument, NULL, 'T'},
	        {"tcp-connect", required_argument, NULL, 'k'},
	        {"tcp-bind", required_argument, NULL, 'b'},
	        {"policy", required_argument, NULL, 'y'},
	        {"profile", required_argument, NULL, 'n'},
	        {"layers", no_argument, NULL, 'l'},
	        {"stats", no_argument, NULL, 'S'},
	        {"quiet", no_argument, NULL, 'q'},
	        {"mechanisms-only", no_argument, NULL, 'M'},
	        {"help", no_argument, NULL, 'h'},
	        {0},
	};
	struct list rd = {0}, wr = {0}, ex = {0}, dn = {0}, sc = {0}, env = {0}, ctl = {0};
	Corral__Profile prof = CORRAL__PROFILE__INIT;
	Corral__FilesystemRules fs = CORRAL__FILESYSTEM_RULES__INIT;
	Corral__SyscallRules sys = CORRAL__SYSCALL_RULES__INIT;
	Corral__Resources res = CORRAL__RESOURCES__INIT;
	Corral__ProcessRules proc = CORRAL__PROCESS_RULES__INIT;
	Corral__Requirements req = CORRAL__REQUIREMENTS__INIT;
	Corral__Degradation deg = CORRAL__DEGRADATION__INIT;
	const Corral__Profile *use = &prof;
	const char *home = getenv("HOME"), *workdir = NULL, *tmp = NULL;
	const char *policy_file = NULL, *profile_name = NULL;
	char cwd[PATH_MAX];
	bool show_layers = false, show_stats = false, set_ids = false, mech_only = false;
	uint16_t tcp_c[64], tcp_b[64];
	size_t ntcp_c = 0, ntcp_b = 0;
	bool tcp = false;
	uint64_t v;
	uid_t uid = getuid();
	gid_t gid = getgid();
	int opt, r;

	prof.filesystem = &fs;
	prof.syscalls = &sys;
	prof.resources = &res;
	prof.process = &proc;
	prof.requires = &req;
	prof.degrade = &deg;
	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		r = 0;
		switch (opt) {
		case 'r':
			r = push(&rd, optarg);
			break;
		case 'w':
			r = push(&wr, optarg);
			break;
		case 'x':
			r = push(&ex, optarg);
			break;
		case 'd':
			r = push(&dn, optarg);
			break;
		case 's':
			r = push(&sc, optarg);
			break;
		case 'e':
			r = push(&env, optarg);
			break;
		case 'C':
			r = push(&ctl, optarg);
			break;
		case 'a':
			if (strcmp(optarg, "errno") == 0)
				sys.action = CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_ERRNO;
			else if (strcmp(optarg, "kill") == 0)
				sys.action = CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_KILL;
			else if (strcmp(optarg, "log") == 0)
				sys.action = CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_LOG;
			else
				r = -EINVAL;
			break;
		case 'B':
			sys.baseline_disabled = true;
			break;
		case 'm':
			r = util_parse_size(optarg, &res.memory_max_bytes);
			break;
		case 'p':
			r = util_parse_u64(optarg, &v);
			res.pids_max = (uint32_t)v;
			break;
		case 'c':
			r = util_parse_u64(optarg, &v);
			res.cpu_max_percent = (uint32_t)v;
			break;
		case 'N':
			proc.isolation = CORRAL__ISOLATION__ISOLATION_NAMESPACE;
			break;
		case 'A':
			prof.mode = CORRAL__MODE__MODE_AUDIT;
			break;
		case 'R':
			deg.resources = true;
			break;
		case 'P':
			deg.landlock_partial = true;
			break;
		case 'L':
			r = util_parse_u64(optarg, &v);
			req.landlock_abi = (uint32_t)v;
			break;
		case 'O':
			proc.allow_root = true;
			break;
		case 'u':
			r = util_parse_u64(optarg, &v);
			uid = (uid_t)v;
			set_ids = true;
			break;
		case 'g':
			r = util_parse_u64(optarg, &v);
			gid = (gid_t)v;
			set_ids = true;
			break;
		case 'H':
			home = optarg;
			break;
		case 'W':
			workdir = optarg;
			break;
		case 'T':
			tmp = optarg;
			break;
		case 'k':
		case 'b':
			r = util_parse_u64(optarg, &v);
			if (r >= 0 && (v > 65535 || (opt == 'k' ? ntcp_c : ntcp_b) >= 64))
				r = -ERANGE;
			if (r >= 0 && opt == 'k')
				tcp_c[ntcp_c++] = (uint16_t)v;
			else if (r >= 0)
				tcp_b[ntcp_b++] = (uint16_t)v;
			tcp = true;
			break;
		case 'y':
			policy_file = optarg;
			break;
		case 'n':
			profile_name = optarg;
			break;
		case 'l':
			show_layers = true;
			break;
		case 'S':
			show_stats = true;
			break;
		case 'M':
			mech_only = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 125;
		}
		if (r < 0) {
			log_err("bad value for option %s: %s", argv[optind - 1], strerror(-r));
			return 125;
		}
	}
	if (optind >= argc) {
		usage();
		return 125;
	}
	fs.read = rd.v;
	fs.n_read = rd.n;
	fs.write = wr.v;
	fs.n_write = wr.n;
	fs.execute = ex.v;
	fs.n_execute = ex.n;
	fs.deny = dn.v;
	fs.n_deny = dn.n;
	sys.deny = sc.v;
	sys.n_deny = sc.n;
	proc.env_allow = env.v;
	proc.n_env_allow = env.n;
	req.cgroup_controllers = ctl.v;
	req.n_cgroup_controllers = ctl.n;

#ifdef CORRAL_HAVE_POLICY
	Corral__Policy *pol = NULL;
	if (policy_file) {
		struct policy_error perr = {0};
		char buf[600];
		r = policy_compile_file(policy_file, &pol, &perr);
		if (r < 0) {
			log_err("%s: %s", policy_file,
			        policy_error_format(&perr, buf, sizeof(buf)));
			return 125;
		}
		use = policy_find_profile(pol, profile_name ? profile_name : pol->default_profile);
		if (!use) {
			log_err("%s: no profile \"%s\"", policy_file,
			        profile_name ? profile_name : pol->default_profile);
			return 125;
		}
	}
#else
	if (policy_file || profile_name) {
		log_err("--policy needs corral-sbx-run built with the policy compiler");
		return 125;
	}
#endif

	if (!getcwd(cwd, sizeof(cwd))) {
		log_err("getcwd: %s", strerror(errno));
		return 125;
	}
	if (!workdir)
		workdir = cwd;

	struct sbx_features f;
	struct sbx_compiled *compiled = NULL;
	char err[512];
	r = sbx_features_probe(&f);
	if (r < 0) {
		log_err("probing kernel features: %s", strerror(-r));
		return 125;
	}
	r = sbx_compile_profile(use, &f, &compiled, err, sizeof(err));
	if (r < 0) {
		log_err("refusing to run: %s", err);
		return 125;
	}
	if (mech_only) {
		if (set_ids || prof.process->isolation != CORRAL__ISOLATION__ISOLATION_PROCESS ||
		    tcp) {
			log_err("--mechanisms-only runs as the caller, in the process tier, "
			        "without "
			        "--uid/--gid, --namespace or TCP port rules");
			return 125;
		}
		return run_mechanisms_only(compiled, home, workdir, tmp, argv + optind);
	}
	struct sbx *s = sbx_new();
	if (!s)
		return 125;
	if ((r = sbx_set_profile(s, compiled)) < 0 ||
	    (r = sbx_set_argv(s, (const char *const *)argv + optind)) < 0 ||
	    (r = sbx_set_envp(s, (const char *const *)environ)) < 0 ||
	    (r = sbx_set_vars(s, home, workdir, tmp)) < 0 || (r = sbx_set_cwd(s, cwd)) < 0 ||
	    (set_ids && (r = sbx_set_ids(s, uid, gid, NULL, 0)) < 0) ||
	    (tcp && (r = sbx_set_landlock_tcp_ports(s, tcp_c, ntcp_c, tcp_b, ntcp_b)) < 0)) {
		log_err("session settings: %s", strerror(-r));
		return 125;
	}
	struct sbx_child *child = NULL;
	struct sbx_error serr = {0};
	r = sbx_spawn(s, &child, &serr);
	if (r < 0) {
		log_err("sandbox setup failed at step %s: %s", serr.step, serr.message);
		return 125;
	}
	if (show_layers) {
		size_t n, nd;
		const char *const *l = sbx_enforced_layers(child, &n);
		const char *const *d = sbx_compiled_degraded(compiled, &nd);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, "corral-sbx-run: layer %s\n", l[i]);
		for (size_t i = 0; i < nd; i++)
			fprintf(stderr, "corral-sbx-run: not enforced %s\n", d[i]);
	}

	/* Supervise: answer seccomp notifications until the first process exits. */
	unsigned violations = 0;
	int notify_fd = sbx_child_notify_fd(child);
	for (;;) {
		struct pollfd pfd[2] = {
		        {.fd = sbx_child_pidfd(child), .events = POLLIN},
		        {.fd = notify_fd, .events = POLLIN},
		};
		int nfds = notify_fd >= 0 ? 2 : 1;
		if (poll(pfd, (nfds_t)nfds, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (nfds == 2 && (pfd[1].revents & POLLIN)) {
			(void)sbx_child_notify_handle(child, on_violation, &violations);
			continue;
		}
		if (pfd[0].revents)
			break;
		if (nfds == 2 && (pfd[1].revents & (POLLHUP | POLLERR | POLLNVAL)))
			notify_fd = -1; /* no task uses the filter any more */
	}
	struct sbx_result res_out = {0};
	r = sbx_child_wait(child, &res_out);
	if (r < 0) {
		log_err("wait: %s", strerror(-r));
		return 125;
	}
	if (show_stats)
		fprintf(stderr,
		        "corral-sbx-run: exit=%d signal=%d memory_peak=%" PRIu64
		        " cpu_usec=%" PRIu64 " oom_kills=%" PRIu64 " pids_max_hits=%" PRIu64
		        " violations=%u\n",
		        res_out.exit_code, res_out.signal, res_out.memory_peak_bytes,
		        res_out.cpu_usec, res_out.oom_kills, res_out.pids_max_hits, violations);
	sbx_child_free(child);
	sbx_free(s);
	sbx_compiled_free(compiled);
#ifdef CORRAL_HAVE_POLICY
	if (pol)
		corral__policy__free_unpacked(pol, NULL);
#endif
	return res_out.signal ? 128 + res_out.signal : res_out.exit_code;
}
