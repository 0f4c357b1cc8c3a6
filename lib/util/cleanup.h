/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Scope-bound cleanup helpers (the systemd contract): `_cleanup_free_ char *p = NULL;` frees on
 * every return path; `TAKE_PTR(p)` hands ownership out and leaves NULL behind. Destructors
 * accept NULL and half-built objects. The one header for all such helpers in corral.
 */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

#define TAKE_PTR(p)                       \
	({                                \
		__typeof__(p) _tp_ = (p); \
		(p) = NULL;               \
		_tp_;                     \
	})

#define TAKE_FD(fd)               \
	({                        \
		int _tfd_ = (fd); \
		(fd) = -1;        \
		_tfd_;            \
	})

static inline void util_freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(util_freep)

/* Closes *fd if >= 0, preserving errno (so cleanup never hides the error being returned). */
static inline void util_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_close_ _cleanup_(util_closep)

static inline void util_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(util_fclosep)

/* Declares `static inline void namep(type **p)` calling func(*p) when non-NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
	static inline void func##p(type **p)    \
	{                                       \
		if (*p)                         \
			func(*p);               \
	}

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
