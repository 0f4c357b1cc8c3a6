/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared helpers for the escape programs. Each program runs inside the strict profile (set up
 * by test_escape.c) and tries one class of escape. Exit status: 0 every attempt was contained
 * with the expected error, 1 something escaped, 3 contained but with an unexpected errno,
 * 2 the program's own setup failed. Paths and pids come from ESC_* environment variables.
 */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int esc_status;

/* unbuffered: a program killed mid-way still shows what it printed */
__attribute__((constructor)) static void esc_unbuffered(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
}

static inline const char *esc_env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !v[0]) {
		printf("setup: %s not set\n", name);
		exit(2);
	}
	return v;
}

/* `ok` is true when the attempt failed; `err` is the errno it must have failed with
 * (`expected`, or `alt` when another layer legitimately refuses first, e.g. EROFS from the
 * namespace tier's read-only root before Landlock's EACCES). */
static inline void esc_expect2(int ok, int err, int expected, int alt, const char *what)
{
	if (!ok) {
		printf("ESCAPED: %s\n", what);
		esc_status = 1;
	} else if (expected && err != expected && (!alt || err != alt)) {
		printf("contained, unexpected errno %d (%s, wanted %s): %s\n", err, strerror(err),
		       strerror(expected), what);
		if (!esc_status)
			esc_status = 3;
	} else {
		printf("contained: %s (%s)\n", what, strerror(err));
	}
}

static inline void esc_expect(int ok, int err, int expected, const char *what)
{
	esc_expect2(ok, err, expected, 0, what);
}

/* Evaluates a call returning < 0 on failure and checks errno. */
#define ESC_DENIED(call, expected, what)                           \
	do {                                                       \
		errno = 0;                                         \
		long esc_r_ = (long)(call);                        \
		esc_expect(esc_r_ < 0, errno, (expected), (what)); \
	} while (0)

#define ESC_DENIED2(call, expected, alt, what)                             \
	do {                                                               \
		errno = 0;                                                 \
		long esc_r_ = (long)(call);                                \
		esc_expect2(esc_r_ < 0, errno, (expected), (alt), (what)); \
	} while (0)
