/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to lib/policy (and its unit tests): validators and normalisers for the string values
 * of the policy language. Each takes untrusted text with its length, returns 0 with a newly
 * allocated canonical form (caller frees), -EINVAL with a plain reason written to `why`, or
 * -ENOMEM. They never echo control characters into `why`.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Longest path accepted, in bytes (PATH_MAX). */
#define POLICY_PATH_MAX 4096

/*
 * Normalises a filesystem path: absolute, or ${HOME}, ${WORKDIR}, ${TMP} followed by the end or
 * '/'. Repeated and trailing slashes are removed; "." and ".." components, control characters
 * and unknown variables are refused.
 */
int policy_path_normalize(const char *in, size_t len, char **ret, char *why, size_t why_len);

/*
 * Normalises a hostname rule "HOST:PORT" or "*.DOMAIN:PORT" into a lower-case host without the
 * trailing dot and a port. IP literals are refused (they belong in network.allow).
 */
int policy_host_normalize(const char *in, size_t len, char **ret_host, uint32_t *ret_port,
                          char *why, size_t why_len);

/*
 * Canonicalises a CIDR ("192.0.2.0/24", "2001:db8::/32", or a single address) to inet_ntop text
 * and prefix; IPv4-mapped IPv6 networks (::ffff:0:0/96 and longer) become IPv4. Host bits must
 * be zero.
 */
int policy_cidr_canonical(const char *in, size_t len, char **ret, char *why, size_t why_len);

/*
 * Copies `in` (len bytes) into out (out_len >= 8) for quoting in a message: at most out_len - 4
 * bytes, control bytes as '?', "..." when cut. Returns out.
 */
const char *policy_quote(const char *in, size_t len, char *out, size_t out_len);
