// SPDX-License-Identifier: Apache-2.0
/*
 * Strict, capped parser of the server_name extension of a TLS ClientHello, for the proxy's
 * CONNECT check (the SNI must name the CONNECT host, or a tunnel to an allowed CDN could front
 * for any site it serves). TLS libraries do not parse a ClientHello the program only relays,
 * so this is the one hand-written parser in the proxy; it is fuzzed (tests/fuzz/net.cmake).
 * It reads only the first record (at most 16 KiB), bounds-checks every length against its
 * container, and refuses duplicates and anything it does not understand.
 */
#include "proxy.h"

#include <errno.h>
#include <string.h>

struct cursor {
	const uint8_t *p;
	size_t left;
};

static int take(struct cursor *c, size_t n, const uint8_t **ret)
{
	if (c->left < n)
		return -EINVAL;
	if (ret)
		*ret = c->p;
	c->p += n;
	c->left -= n;
	return 0;
}

static int take_u8(struct cursor *c, size_t *ret)
{
	const uint8_t *b;
	if (take(c, 1, &b) < 0)
		return -EINVAL;
	*ret = b[0];
	return 0;
}

static int take_u16(struct cursor *c, size_t *ret)
{
	const uint8_t *b;
	if (take(c, 2, &b) < 0)
		return -EINVAL;
	*ret = (size_t)b[0] << 8 | b[1];
	return 0;
}

/* A sub-cursor over the next `len` bytes. */
static int sub(struct cursor *c, size_t len, struct cursor *ret)
{
	const uint8_t *b;
	if (take(c, len, &b) < 0)
		return -EINVAL;
	ret->p = b;
	ret->left = len;
	return 0;
}

int egress_tls_sni(const uint8_t *buf, size_t len, char *out, size_t out_len)
{
	struct cursor rec, hs, body, v, exts;
	size_t rec_len, n;
	bool found = false;

	if (len < 5)
		return -EAGAIN;
	if (buf[0] != 0x16 || buf[1] != 3)
		return -EINVAL;
	rec_len = (size_t)buf[3] << 8 | buf[4];
	if (rec_len < 4 || rec_len > 16384)
		return -EINVAL;
	if (len < 5 + rec_len)
		return -EAGAIN;
	rec.p = buf + 5;
	rec.left = rec_len;

	/* handshake header: type client_hello (1), 24-bit length within this one record */
	if (take_u8(&rec, &n) < 0 || n != 1)
		return -EINVAL;
	const uint8_t *l3;
	if (take(&rec, 3, &l3) < 0)
		return -EINVAL;
	size_t hs_len = (size_t)l3[0] << 16 | (size_t)l3[1] << 8 | l3[2];
	if (sub(&rec, hs_len, &hs) < 0)
		return -EINVAL; /* ClientHello continues in a later record: refused */

	body = hs;
	if (take(&body, 2 + 32, NULL) < 0) /* version, random */
		return -EINVAL;
	if (take_u8(&body, &n) < 0 || n > 32 || take(&body, n, NULL) < 0) /* session id */
		return -EINVAL;
	if (take_u16(&body, &n) < 0 || n < 2 || n % 2 || take(&body, n, NULL) < 0) /* suites */
		return -EINVAL;
	if (take_u8(&body, &n) < 0 || n < 1 || take(&body, n, NULL) < 0) /* compression */
		return -EINVAL;
	if (body.left == 0)
		return 0; /* no extensions at all */
	if (take_u16(&body, &n) < 0 || sub(&body, n, &exts) < 0 || body.left != 0)
		return -EINVAL;

	while (exts.left) {
		size_t type, elen;
		struct cursor ext;
		if (take_u16(&exts, &type) < 0 || take_u16(&exts, &elen) < 0 ||
		    sub(&exts, elen, &ext) < 0)
			return -EINVAL;
		if (type != 0)
			continue;
		if (found)
			return -EINVAL; /* two server_name extensions */
		found = true;
		struct cursor list;
		if (take_u16(&ext, &n) < 0 || sub(&ext, n, &list) < 0 || ext.left != 0)
			return -EINVAL;
		/* exactly one host_name entry */
		size_t name_type, name_len;
		const uint8_t *name;
		if (take_u8(&list, &name_type) < 0 || name_type != 0 ||
		    take_u16(&list, &name_len) < 0 || take(&list, name_len, &name) < 0 ||
		    list.left != 0 || name_len == 0)
			return -EINVAL;
		if (name_len > 255 || name_len >= out_len)
			return -ENAMETOOLONG;
		v.p = name;
		v.left = name_len;
		memcpy(out, v.p, v.left);
		out[name_len] = '\0';
		n = name_len;
	}
	return found ? (int)n : 0;
}
