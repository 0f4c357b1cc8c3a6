/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-launch cost of the engine from a resident process (as corrald uses it: features probed
 * and the profile compiled once), against plain fork+exec of the same command. Prints median
 * wall time and mean CPU time (parent and child) per launch. Root: sessions run as nobody.
 *   sbx_launch [N] [COMMAND]      (default 200 /bin/true)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sbx.h"
#include "sbx_test_profile.h"

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static double cpu_ms(int who)
{
	struct rusage r;

	getrusage(who, &r);
	return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e3 +
	       (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int launch_sbx(const struct sbx_compiled *c, const char *const *argv)
{
	struct sbx *s = sbx_new();
	struct sbx_child *ch = NULL;
	struct sbx_error e;
	struct sbx_result r;

	if (!s)
		return -1;
	sbx_set_profile(s, c);
	sbx_set_argv(s, argv);
	if (geteuid() == 0)
		sbx_set_ids(s, 65534, 65534, NULL, 0);
	if (sbx_spawn(s, &ch, &e) < 0) {
		fprintf(stderr, "spawn: %s\n", e.message);
		sbx_free(s);
		return -1;
	}
	sbx_child_wait(ch, &r);
	sbx_child_free(ch);
	sbx_free(s);
	return 0;
}

static int launch_plain(const char *const *argv)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	return 0;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200;
	const char *argv_cmd[] = {argc > 2 ? argv[2] : "/bin/true", NULL};
	struct sbx_features f;
	struct sbx_compiled *c = NULL;
	struct sbx_test_profile tp;
	char err[256];
	double *wall[2];

	if (n < 1 || n > 100000)
		return 2;
	wall[0] = calloc((size_t)n, sizeof(double));
	wall[1] = calloc((size_t)n, sizeof(double));
	if (!wall[0] || !wall[1] || sbx_features_probe(&f) < 0)
		return 1;
	/* the strict shape without limits (hybrid hosts put those on cgroup v1, see docs) */
	Corral__Profile *p = sbx_test_strict_profile(&tp, NULL);
	tp.res.memory_max_bytes = 0;
	tp.res.pids_max = 0;
	if (sbx_compile_profile(p, &f, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "compile: %s\n", err);
		return 1;
	}
	for (int mode = 0; mode < 2; mode++) {
		double s0 = cpu_ms(RUSAGE_SELF), c0 = cpu_ms(RUSAGE_CHILDREN);
		/* interleaving is not needed for CPU time; wall time takes the median */
		for (int i = 0; i < n; i++) {
			double t0 = now_ms();
			if ((mode ? launch_sbx(c, argv_cmd) : launch_plain(argv_cmd)) < 0)
				return 1;
			wall[mode][i] = now_ms() - t0;
		}
		qsort(wall[mode], (size_t)n, sizeof(double), cmp);
		printf("%-12s wall median %.3f ms (min %.3f)  cpu parent %.3f ms child %.3f ms\n",
		       mode ? "sbx_spawn" : "fork+exec", wall[mode][n / 2], wall[mode][0],
		       (cpu_ms(RUSAGE_SELF) - s0) / n, (cpu_ms(RUSAGE_CHILDREN) - c0) / n);
	}
	printf("overhead per launch: wall median %.3f ms\n", wall[1][n / 2] - wall[0][n / 2]);
	sbx_compiled_free(c);
	free(wall[0]);
	free(wall[1]);
	return 0;
}
