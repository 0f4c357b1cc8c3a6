// SPDX-License-Identifier: Apache-2.0
/*
 * corral-admin offline trust commands: `key generate`, `trust init`, `trust rotate`,
 * `trust show`, `policy sign` and `policy verify`. None talks to a server: private keys are
 * read from the admin's own files (refused when group/world accessible) and never leave.
 *
 * Every artefact is checked by the same lib/trust verifier devices run before it is written,
 * so the tool never hands out a root or bundle that a device would refuse for a reason the
 * admin could have seen here. Exit status: 0 success, 1 refused/failed, 2 usage error.
 */
#include "admin.h"
#include "cleanup.h"
#include "policy.h"
#include "trust.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#define EXIT_REFUSED 1
#define EXIT_USAGE   2

/* ---- argument parsing ------------------------------------------------------------------ */

enum arg_kind {
	ARG_FLAG, /* --json */
	ARG_ONE,  /* --expires VALUE */
	ARG_MANY, /* --root A --root B, or --root A B C (until the next --flag) */
};

struct arg {
	const char *name;
	const char *alias;
	enum arg_kind kind;
	const char **vals;
	size_t n;
};

struct parsed {
	const char **pos;
	size_t n_pos;
};

static struct arg *arg_find(struct arg *args, size_t n_args, const char *name)
{
	for (size_t i = 0; i < n_args; i++)
		if (strcmp(args[i].name, name) == 0 ||
		    (args[i].alias && strcmp(args[i].alias, name) == 0))
			return &args[i];
	return NULL;
}

static bool is_flag(const char *s)
{
	return s[0] == '-' && s[1] != '\0';
}

/*
 * Parses argv[1..]. Values are borrowed from argv. Returns 0, 1 for --help, -EINVAL after
 * printing the problem. A multi-valued flag takes every following word up to the next flag;
 * a single-valued flag takes exactly the next word; other words are positional.
 */
static int parse_args(const char *cmd, int argc, char **argv, struct arg *args, size_t n_args,
                      struct parsed *p)
{
	size_t cap = (size_t)argc + 1;
	p->pos = calloc(cap, sizeof(*p->pos));
	if (!p->pos)
		return -ENOMEM;
	for (size_t i = 0; i < n_args; i++) {
		args[i].vals = calloc(cap, sizeof(*args[i].vals));
		if (!args[i].vals)
			return -ENOMEM;
	}
	struct arg *many = NULL;
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
			return 1;
		if (!is_flag(a)) {
			if (many)
				many->vals[many->n++] = a;
			else
				p->pos[p->n_pos++] = a;
			continue;
		}
		many = NULL;
		char name[64];
		const char *inline_val = NULL;
		const char *eq = strchr(a, '=');
		if (eq && (size_t)(eq - a) < sizeof(name)) {
			snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
			inline_val = eq + 1;
		} else {
			snprintf(name, sizeof(name), "%s", a);
		}
		struct arg *g = arg_find(args, n_args, name);
		if (!g) {
			fprintf(stderr, "corral-admin %s: unknown option '%s'\n", cmd, a);
			return -EINVAL;
		}
		if (g->kind == ARG_FLAG) {
			if (inline_val) {
				fprintf(stderr, "corral-admin %s: %s takes no value\n", cmd, name);
				return -EINVAL;
			}
			g->n = 1;
			continue;
		}
		if (g->kind == ARG_ONE && g->n > 0) {
			fprintf(stderr, "corral-admin %s: %s given twice\n", cmd, g->name);
			return -EINVAL;
		}
		if (inline_val) {
			g->vals[g->n++] = inline_val;
		} else if (i + 1 < argc && !is_flag(argv[i + 1])) {
			g->vals[g->n++] = argv[++i];
		} else {
			fprintf(stderr, "corral-admin %s: %s needs a value\n", cmd, g->name);
			return -EINVAL;
		}
		if (g->kind == ARG_MANY)
			many = g;
	}
	return 0;
}

static void args_free(struct arg *args, size_t n_args, struct parsed *p)
{
	for (size_t i = 0; i < n_args; i++)
		free(args[i].vals);
	free(p->pos);
}

static const char *arg_one(struct arg *args, size_t n, const char *name)
{
	struct arg *g = arg_find(args, n, name);
	return g && g->n ? g->vals[0] : NULL;
}

static bool arg_flag(struct arg *args, size_t n, const char *name)
{
	struct arg *g = arg_find(args, n, name);
	return g && g->n;
}

static int parse_threshold(const char *cmd, const char *flag, const char *s, uint32_t *ret)
{
	uint64_t v = 0;
	if (!s || util_parse_u64(s, &v) < 0 || v == 0 || v > TRUST_MAX_SIGNATURES) {
		fprintf(stderr, "corral-admin %s: %s must be a number from 1 to %d\n", cmd, flag,
		        TRUST_MAX_SIGNATURES);
		return -EINVAL;
	}
	*ret = (uint32_t)v;
	return 0;
}

/* ---- key helpers ----------------------------------------------------------------------- */

struct keyset {
	struct trust_key *keys[TRUST_MAX_SIGNATURES];
	const char *names[TRUST_MAX_SIGNATURES];
	char name_buf[TRUST_MAX_SIGNATURES][64];
	size_t n;
};

static void keyset_free(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		trust_key_free(ks->keys[i]);
	ks->n = 0;
}

/* Label = file name without directory and extension ("keys/alice.pub" -> "alice"). */
static void key_label(const char *path, char out[64])
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	snprintf(out, 64, "%s", base);
	char *dot = strrchr(out, '.');
	if (dot && dot != out)
		*dot = '\0';
}

static int keyset_load(const char *cmd, const char *const *paths, size_t n, bool private,
                       struct keyset *ks)
{
	if (n > TRUST_MAX_SIGNATURES) {
		fprintf(stderr, "corral-admin %s: at most %d keys\n", cmd, TRUST_MAX_SIGNATURES);
		return -E2BIG;
	}
	for (size_t i = 0; i < n; i++) {
		struct trust_key *k = NULL;
		int r = private ? trust_key_load_private(paths[i], &k)
		                : trust_key_load_public(paths[i], &k);
		if (r < 0) {
			if (r == -EPERM)
				fprintf(stderr,
				        "corral-admin %s: %s is readable by group or others; "
				        "refusing to use it (chmod 600 %s)\n",
				        cmd, paths[i], paths[i]);
			else
				fprintf(stderr, "corral-admin %s: cannot load %s key %s: %s\n", cmd,
				        private ? "private" : "public", paths[i], strerror(-r));
			return r;
		}
		for (size_t j = 0; j < ks->n; j++)
			if (strcmp(trust_key_id(ks->keys[j]), trust_key_id(k)) == 0) {
				fprintf(stderr, "corral-admin %s: key %s is given twice\n", cmd,
				        paths[i]);
				trust_key_free(k);
				return -EINVAL;
			}
		key_label(paths[i], ks->name_buf[ks->n]);
		ks->names[ks->n] = ks->name_buf[ks->n];
		ks->keys[ks->n++] = k;
	}
	return 0;
}

static int write_out(const char *cmd, const char *path, const uint8_t *buf, size_t len)
{
	int r = util_write_file_atomic(path, buf, len, 0644);
	if (r < 0)
		fprintf(stderr, "corral-admin %s: cannot write %s: %s\n", cmd, path, strerror(-r));
	return r;
}

static void print_rejected(const struct trust_result *res)
{
	/* The first line is the contract scripts parse: "rejected: CODE: detail". */
	printf("rejected: %s: %s\n", trust_reason_code(res->reason), res->detail);
}

/* ---- key generate ---------------------------------------------------------------------- */

static int cmd_key_generate(int argc, char **argv)
{
	struct arg args[] = {
	        {"--name", NULL, ARG_ONE},
	        {"--out", "-o", ARG_ONE},
	};
	struct parsed p = {0};
	int r = parse_args("key generate", argc, argv, args, ELEMENTSOF(args), &p);
	const char *name = arg_one(args, ELEMENTSOF(args), "--name");
	const char *dir = arg_one(args, ELEMENTSOF(args), "--out");
	int status = EXIT_USAGE;
	if (r == 1) {
		printf("usage: corral-admin key generate --name NAME --out DIR\n\n"
		       "Writes DIR/NAME.key (private, mode 0600) and DIR/NAME.pub and prints\n"
		       "the key id (hex SHA-256 of the public key).\n");
		status = 0;
		goto out;
	}
	if (r < 0 || !name || !dir || p.n_pos) {
		if (r == 0)
			fprintf(stderr, "usage: corral-admin key generate --name NAME --out DIR\n");
		goto out;
	}
	struct trust_key *k = NULL;
	r = trust_key_generate(&k);
	if (r >= 0)
		r = trust_key_save(k, dir, name);
	if (r < 0) {
		fprintf(stderr, "corral-admin key generate: %s/%s.{key,pub}: %s\n", dir, name,
		        r == -EINVAL ? "invalid key name" : strerror(-r));
		trust_key_free(k);
		status = EXIT_REFUSED;
		goto out;
	}
	printf("%s\n", trust_key_id(k));
	fprintf(stderr, "wrote %s/%s.key (keep offline, mode 0600) and %s/%s.pub\n", dir, name, dir,
	        name);
	trust_key_free(k);
	status = 0;
out:
	args_free(args, ELEMENTSOF(args), &p);
	return status;
}

/* ---- trust init / rotate --------------------------------------------------------------- */

static void root_usage(FILE *f, bool rotate)
{
	if (rotate)
		fprintf(f,
		        "usage: corral-admin trust rotate --from OLD.root --root PUB... "
		        "[--root-threshold N]\n"
		        "         --signer PUB... [--signer-threshold M] --expires "
		        "DURATION|RFC3339\n"
		        "         --key OLDROOTKEY... --key NEWROOTKEY... -o FILE\n\n"
		        "Makes the next trust root (version = OLD + 1). Devices accept it only "
		        "when\n"
		        "signed by a threshold of OLD's root keys AND a threshold of the new ones, "
		        "so\n"
		        "pass enough --key files from both sets. Thresholds default to OLD's.\n");
	else
		fprintf(f,
		        "usage: corral-admin trust init --root PUB... --root-threshold N\n"
		        "         --signer PUB... --signer-threshold M --expires DURATION|RFC3339\n"
		        "         --key ROOTKEY... -o FILE\n\n"
		        "Makes the first trust root (version 1), signed by a threshold of its "
		        "root\n"
		        "keys. Root keys sign trust roots only; signer keys sign policies.\n");
}

static int cmd_root(int argc, char **argv, bool rotate)
{
	const char *cmd = rotate ? "trust rotate" : "trust init";
	struct arg args[] = {
	        {"--root", NULL, ARG_MANY},   {"--root-threshold", NULL, ARG_ONE},
	        {"--signer", NULL, ARG_MANY}, {"--signer-threshold", NULL, ARG_ONE},
	        {"--expires", NULL, ARG_ONE}, {"--key", NULL, ARG_MANY},
	        {"-o", "--output", ARG_ONE},  {"--from", NULL, ARG_ONE},
	};
	const size_t na = ELEMENTSOF(args);
	struct parsed p = {0};
	struct keyset roots = {0}, signers = {0}, sign = {0};
	_cleanup_free_ uint8_t *old_buf = NULL, *out = NULL;
	Corral__TrustRoot *old = NULL, *check = NULL;
	int status = EXIT_USAGE;
	int r = parse_args(cmd, argc, argv, args, na, &p);
	if (r == 1) {
		root_usage(stdout, rotate);
		status = 0;
		goto done;
	}
	const char *from = arg_one(args, na, "--from");
	const char *output = arg_one(args, na, "-o");
	const char *expires = arg_one(args, na, "--expires");
	struct arg *root_a = arg_find(args, na, "--root"),
	           *signer_a = arg_find(args, na, "--signer"), *key_a = arg_find(args, na, "--key");
	if (r < 0 || p.n_pos || !output || !expires || !root_a->n || !signer_a->n || !key_a->n ||
	    (rotate != (from != NULL))) {
		if (r == 0)
			root_usage(stderr, rotate);
		goto done;
	}
	int64_t now = util_now_sec(), exp = 0;
	if (util_parse_expiry(expires, now, &exp) < 0 || exp <= now) {
		fprintf(stderr,
		        "corral-admin %s: --expires '%s' is not a future time or duration\n", cmd,
		        expires);
		goto done;
	}
	struct trust_result res;
	status = EXIT_REFUSED;
	if (rotate) {
		size_t len = 0;
		if (trust_envelope_read_file(from, &old_buf, &len, &res) < 0 ||
		    trust_root_peek(old_buf, len, &old, &res) < 0) {
			fprintf(stderr, "corral-admin %s: %s: %s: %s\n", cmd, from,
			        trust_reason_code(res.reason), res.detail);
			goto done;
		}
	}
	const char *rt = arg_one(args, na, "--root-threshold");
	const char *st = arg_one(args, na, "--signer-threshold");
	uint32_t root_threshold = old ? old->root_threshold : 0;
	uint32_t signer_threshold = old ? old->signer_threshold : 0;
	if ((rt || !rotate) && parse_threshold(cmd, "--root-threshold", rt, &root_threshold) < 0) {
		status = EXIT_USAGE;
		goto done;
	}
	if ((st || !rotate) &&
	    parse_threshold(cmd, "--signer-threshold", st, &signer_threshold) < 0) {
		status = EXIT_USAGE;
		goto done;
	}
	if (keyset_load(cmd, root_a->vals, root_a->n, false, &roots) < 0 ||
	    keyset_load(cmd, signer_a->vals, signer_a->n, false, &signers) < 0 ||
	    keyset_load(cmd, key_a->vals, key_a->n, true, &sign) < 0)
		goto done;
	if (root_threshold > roots.n || signer_threshold > signers.n) {
		fprintf(stderr, "corral-admin %s: a threshold is larger than its number of keys\n",
		        cmd);
		status = EXIT_USAGE;
		goto done;
	}
	struct trust_root_spec spec = {
	        .version = old ? old->version + 1 : 1,
	        .issued_at = now,
	        .expires_at = exp,
	        .root_keys = roots.keys,
	        .n_root_keys = roots.n,
	        .root_threshold = root_threshold,
	        .signer_keys = signers.keys,
	        .n_signer_keys = signers.n,
	        .signer_threshold = signer_threshold,
	        .root_names = roots.names,
	        .signer_names = signers.names,
	};
	size_t out_len = 0;
	r = trust_root_sign(&spec, sign.keys, sign.n, &out, &out_len);
	if (r < 0) {
		fprintf(stderr, "corral-admin %s: cannot sign the root: %s\n", cmd, strerror(-r));
		goto done;
	}
	/* Check it the way a device will before handing it out. */
	r = rotate ? trust_root_verify_next(old, out, out_len, now, &check, &res)
	           : trust_root_verify_initial(out, out_len, now, &check, &res);
	if (r < 0) {
		fprintf(stderr,
		        "corral-admin %s: devices would refuse this root (%s: %s); "
		        "nothing written\n",
		        cmd, trust_reason_code(res.reason), res.detail);
		goto done;
	}
	if (write_out(cmd, output, out, out_len) < 0)
		goto done;
	char when[32];
	printf("trust root version %llu, expires %s, %zu root keys (threshold %u), %zu signer "
	       "keys (threshold %u) -> %s\n",
	       (unsigned long long)spec.version, util_format_rfc3339(exp, when, sizeof(when)),
	       roots.n, root_threshold, signers.n, signer_threshold, output);
	status = 0;
done:
	if (old)
		corral__trust_root__free_unpacked(old, NULL);
	if (check)
		corral__trust_root__free_unpacked(check, NULL);
	keyset_free(&roots);
	keyset_free(&signers);
	keyset_free(&sign);
	args_free(args, na, &p);
	return status;
}

static int cmd_trust_init(int argc, char **argv)
{
	return cmd_root(argc, argv, false);
}

static int cmd_trust_rotate(int argc, char **argv)
{
	return cmd_root(argc, argv, true);
}

/* ---- trust show ------------------------------------------------------------------------ */

static json_t *keys_json(Corral__PublicKey *const *keys, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:s}", "key_id", keys[i]->key_id, "name",
		                                   keys[i]->name));
	return a;
}

static void keys_print(const char *what, Corral__PublicKey *const *keys, size_t n, uint32_t t)
{
	printf("%s keys (threshold %u of %zu):\n", what, t, n);
	for (size_t i = 0; i < n; i++)
		printf("  %s  %s\n", keys[i]->key_id, keys[i]->name);
}

static int cmd_trust_show(int argc, char **argv)
{
	struct arg args[] = {{"--json", NULL, ARG_FLAG}};
	struct parsed p = {0};
	int status = EXIT_USAGE;
	_cleanup_free_ uint8_t *buf = NULL;
	Corral__TrustRoot *root = NULL;
	Corral__SignedEnvelope *env = NULL;
	int r = parse_args("trust show", argc, argv, args, 1, &p);
	if (r == 1) {
		printf("usage: corral-admin trust show FILE [--json]\n\n"
		       "Prints a trust root: version, validity, keys, thresholds, signatures.\n"
		       "Signatures are listed, not verified (use `policy verify --trust`).\n");
		status = 0;
		goto done;
	}
	if (r < 0 || p.n_pos != 1) {
		if (r == 0)
			fprintf(stderr, "usage: corral-admin trust show FILE [--json]\n");
		goto done;
	}
	struct trust_result res;
	size_t len = 0;
	status = EXIT_REFUSED;
	if (trust_envelope_read_file(p.pos[0], &buf, &len, &res) < 0 ||
	    trust_envelope_decode(buf, len, CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_TRUST_ROOT, &env,
	                          &res) < 0 ||
	    trust_root_peek(buf, len, &root, &res) < 0) {
		print_rejected(&res);
		goto done;
	}
	char issued[32], expires[32];
	util_format_rfc3339(root->issued_at, issued, sizeof(issued));
	util_format_rfc3339(root->expires_at, expires, sizeof(expires));
	bool expired = root->expires_at <= util_now_sec();
	if (arg_flag(args, 1, "--json")) {
		json_auto_t *sigs = json_array();
		for (size_t i = 0; sigs && i < env->n_signatures; i++)
			json_array_append_new(sigs, json_string(env->signatures[i]->key_id));
		json_auto_t *o = json_pack(
		        "{s:I, s:s, s:s, s:b, s:I, s:o, s:I, s:o, s:O}", "version",
		        (json_int_t)root->version, "issued_at", issued, "expires_at", expires,
		        "expired", expired, "root_threshold", (json_int_t)root->root_threshold,
		        "root_keys", keys_json(root->root_keys, root->n_root_keys),
		        "signer_threshold", (json_int_t)root->signer_threshold, "signer_keys",
		        keys_json(root->signer_keys, root->n_signer_keys), "signatures", sigs);
		_cleanup_free_ char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
		if (!text) {
			fprintf(stderr, "corral-admin trust show: out of memory\n");
			goto done;
		}
		printf("%s\n", text);
	} else {
		printf("trust root version %llu\n", (unsigned long long)root->version);
		printf("issued:  %s\nexpires: %s%s\n", issued, expires,
		       expired ? " (EXPIRED: rotate to a new root)" : "");
		keys_print("root", root->root_keys, root->n_root_keys, root->root_threshold);
		keys_print("policy signer", root->signer_keys, root->n_signer_keys,
		           root->signer_threshold);
		printf("signatures (%zu):\n", env->n_signatures);
		for (size_t i = 0; i < env->n_signatures; i++)
			printf("  %s\n", env->signatures[i]->key_id);
	}
	status = 0;
done:
	if (root)
		corral__trust_root__free_unpacked(root, NULL);
	if (env)
		corral__signed_envelope__free_unpacked(env, NULL);
	args_free(args, 1, &p);
	return status;
}

/* ---- trust chain loading (for verify and sign self-checks) ----------------------------- */

/* Reads and verifies the roots named by --trust (oldest first) at `now`. */
static int load_chain(const char *const *paths, size_t n, int64_t now, Corral__TrustRoot **ret_root,
                      struct trust_result *res)
{
	uint8_t *bufs[64] = {0};
	size_t lens[64] = {0};
	if (n == 0 || n > ELEMENTSOF(bufs))
		return -EINVAL;
	int r = 0;
	for (size_t i = 0; i < n && r >= 0; i++) {
		r = trust_envelope_read_file(paths[i], &bufs[i], &lens[i], res);
		if (r < 0)
			snprintf(res->detail, sizeof(res->detail), "%s: %s", paths[i],
			         r == -EMSGSIZE ? "too large" : strerror(-r));
	}
	if (r >= 0) {
		r = trust_root_verify_chain((const uint8_t *const *)bufs, lens, n, now, ret_root,
		                            res);
		if (r < 0) {
			/* Say which file the rejection is about: the roots, not the bundle. */
			char d[sizeof(res->detail)];
			memcpy(d, res->detail, sizeof(d));
			snprintf(res->detail, sizeof(res->detail), "trust root: %.240s", d);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(bufs[i]);
	return r;
}

/* --trust given: verifies the new bundle as devices holding that root chain would, and says
 * why they would refuse it. Returns 0, or -1 after printing (nothing is written then). */
static int check_devices_accept(const char *cmd, const struct arg *trust_a, const uint8_t *env,
                                size_t len, int64_t now)
{
	Corral__TrustRoot *root = NULL;
	struct trust_result res;
	struct trust_bundle_ctx ctx = {.now = now};
	memset(&res, 0, sizeof(res));
	int r = load_chain(trust_a->vals, trust_a->n, now, &root, &res);
	if (r >= 0)
		r = trust_bundle_verify(root, env, len, &ctx, NULL, NULL, &res);
	if (root)
		corral__trust_root__free_unpacked(root, NULL);
	if (r < 0) {
		fprintf(stderr,
		        "corral-admin %s: devices would refuse this bundle (%s: %s); nothing "
		        "written\n",
		        cmd, trust_reason_code(res.reason), res.detail);
		return -1;
	}
	return 0;
}

/* ---- policy sign ----------------------------------------------------------------------- */

static void sign_usage(FILE *f)
{
	fprintf(f, "usage: corral-admin policy sign POLICY.json --version N\n"
	           "         --expires DURATION|RFC3339 --target group:NAME|device:ID...\n"
	           "         --key KEY... -o BUNDLE [--trust ROOT...]\n\n"
	           "Compiles and lints the policy (refuses an invalid one, prints findings as\n"
	           "warnings), then signs the exact serialized bundle with each --key. With\n"
	           "--trust, checks the bundle against the trust root chain before writing.\n");
}

static int cmd_policy_sign(int argc, char **argv)
{
	struct arg args[] = {
	        {"--version", NULL, ARG_ONE}, {"--expires", NULL, ARG_ONE},
	        {"--target", NULL, ARG_MANY}, {"--key", NULL, ARG_MANY},
	        {"-o", "--output", ARG_ONE},  {"--trust", NULL, ARG_MANY},
	};
	const size_t na = ELEMENTSOF(args);
	const char *cmd = "policy sign";
	struct parsed p = {0};
	struct keyset sign = {0};
	_cleanup_free_ char *src = NULL, *compact = NULL;
	_cleanup_free_ uint8_t *out = NULL;
	_cleanup_free_ Corral__Target *targets = NULL;
	_cleanup_free_ Corral__Target **target_ptrs = NULL;
	Corral__Policy *policy = NULL;
	struct policy_findings findings = {0};
	int status = EXIT_USAGE;
	int r = parse_args(cmd, argc, argv, args, na, &p);
	if (r == 1) {
		sign_usage(stdout);
		status = 0;
		goto done;
	}
	const char *version_s = arg_one(args, na, "--version");
	const char *expires = arg_one(args, na, "--expires");
	const char *output = arg_one(args, na, "-o");
	struct arg *target_a = arg_find(args, na, "--target"), *key_a = arg_find(args, na, "--key"),
	           *trust_a = arg_find(args, na, "--trust");
	if (r < 0 || p.n_pos != 1 || !version_s || !expires || !output || !target_a->n ||
	    !key_a->n) {
		if (r == 0)
			sign_usage(stderr);
		goto done;
	}
	uint64_t version = 0;
	if (util_parse_u64(version_s, &version) < 0 || version == 0 || version > INT64_MAX) {
		fprintf(stderr, "corral-admin %s: --version must be a positive integer\n", cmd);
		goto done;
	}
	int64_t now = util_now_sec(), exp = 0;
	if (util_parse_expiry(expires, now, &exp) < 0 || exp <= now) {
		fprintf(stderr,
		        "corral-admin %s: --expires '%s' is not a future time or duration\n", cmd,
		        expires);
		goto done;
	}
	targets = calloc(target_a->n, sizeof(*targets));
	target_ptrs = calloc(target_a->n, sizeof(*target_ptrs));
	if (!targets || !target_ptrs)
		goto done;
	for (size_t i = 0; i < target_a->n; i++) {
		const char *t = target_a->vals[i];
		corral__target__init(&targets[i]);
		if (util_startswith(t, "group:") && t[6]) {
			targets[i].kind_case = CORRAL__TARGET__KIND_GROUP;
			targets[i].group = (char *)t + 6;
		} else if (util_startswith(t, "device:") && t[7]) {
			targets[i].kind_case = CORRAL__TARGET__KIND_DEVICE_ID;
			targets[i].device_id = (char *)t + 7;
		} else {
			fprintf(stderr,
			        "corral-admin %s: --target '%s' is not group:NAME or device:ID\n",
			        cmd, t);
			goto done;
		}
		target_ptrs[i] = &targets[i];
	}

	status = EXIT_REFUSED;
	const char *file = p.pos[0];
	size_t src_len = 0;
	r = util_read_file(file, POLICY_SOURCE_MAX, &src, &src_len);
	if (r < 0) {
		fprintf(stderr, "corral-admin %s: %s: %s\n", cmd, file,
		        r == -EFBIG ? "larger than the policy size limit" : strerror(-r));
		goto done;
	}
	struct policy_error perr = {0};
	r = policy_compile(src, src_len, &policy, &perr);
	if (r < 0) {
		char msg[600];
		fprintf(stderr, "corral-admin %s: %s: %s\nrefusing to sign an invalid policy\n",
		        cmd, file, policy_error_format(&perr, msg, sizeof(msg)));
		goto done;
	}
	r = policy_lint(policy, &findings);
	if (r < 0)
		goto done;
	for (size_t i = 0; i < findings.count; i++)
		fprintf(stderr, "warning: %s: %s: %s [%s]\n", file, findings.items[i].pointer,
		        findings.items[i].message, findings.items[i].code);
	r = policy_source_compact(src, src_len, &compact);
	if (r < 0) {
		fprintf(stderr, "corral-admin %s: %s: %s\n", cmd, file, strerror(-r));
		goto done;
	}
	if (keyset_load(cmd, key_a->vals, key_a->n, true, &sign) < 0)
		goto done;

	uint8_t digest[SHA256_DIGEST_LENGTH];
	/* The hash of the file as the admin wrote it: `sha256sum POLICY.json` matches. */
	SHA256((const uint8_t *)src, src_len, digest);
	Corral__PolicyBundle bundle = CORRAL__POLICY_BUNDLE__INIT;
	bundle.version = version;
	bundle.issued_at = now;
	bundle.expires_at = exp;
	bundle.n_targets = target_a->n;
	bundle.targets = target_ptrs;
	bundle.policy = policy;
	bundle.source_sha256.data = digest;
	bundle.source_sha256.len = sizeof(digest);
	bundle.source_json = compact;
	size_t out_len = 0;
	r = trust_bundle_sign(&bundle, sign.keys, sign.n, &out, &out_len);
	if (r < 0) {
		fprintf(stderr, "corral-admin %s: cannot sign: %s\n", cmd,
		        r == -EMSGSIZE ? "bundle larger than the envelope size limit"
		                       : strerror(-r));
		goto done;
	}
	if (trust_a->n && check_devices_accept(cmd, trust_a, out, out_len, now) < 0)
		goto done;
	if (write_out(cmd, output, out, out_len) < 0)
		goto done;
	char when[32];
	printf("signed policy bundle version %llu, expires %s, %zu signature%s -> %s\n",
	       (unsigned long long)version, util_format_rfc3339(exp, when, sizeof(when)), sign.n,
	       sign.n == 1 ? "" : "s", output);
	for (size_t i = 0; i < sign.n; i++)
		printf("  signer %s  %s\n", trust_key_id(sign.keys[i]), sign.names[i]);
	status = 0;
done:
	if (policy)
		corral__policy__free_unpacked(policy, NULL);
	policy_findings_free(&findings);
	keyset_free(&sign);
	args_free(args, na, &p);
	return status;
}

/* ---- policy cosign --------------------------------------------------------------------- */

static void cosign_usage(FILE *f)
{
	fprintf(f,
	        "usage: corral-admin policy cosign BUNDLE --key KEY... -o OUT [--trust ROOT...]\n\n"
	        "Adds your signature to a bundle someone else signed, over the very same\n"
	        "bytes (two-person signing on separate machines). Check the contents first:\n"
	        "`policy verify` prints what you are about to vouch for.\n");
}

static int cmd_policy_cosign(int argc, char **argv)
{
	struct arg args[] = {
	        {"--key", NULL, ARG_MANY},
	        {"-o", "--output", ARG_ONE},
	        {"--trust", NULL, ARG_MANY},
	};
	const size_t na = ELEMENTSOF(args);
	const char *cmd = "policy cosign";
	struct parsed p = {0};
	struct keyset sign = {0};
	_cleanup_free_ uint8_t *buf = NULL, *out = NULL;
	int status = EXIT_USAGE;
	int r = parse_args(cmd, argc, argv, args, na, &p);
	if (r == 1) {
		cosign_usage(stdout);
		status = 0;
		goto done;
	}
	const char *output = arg_one(args, na, "-o");
	struct arg *key_a = arg_find(args, na, "--key"), *trust_a = arg_find(args, na, "--trust");
	if (r < 0 || p.n_pos != 1 || !output || !key_a->n) {
		if (r == 0)
			cosign_usage(stderr);
		goto done;
	}
	status = EXIT_REFUSED;
	struct trust_result res;
	size_t len = 0, out_len = 0;
	if (trust_envelope_read_file(p.pos[0], &buf, &len, &res) < 0) {
		print_rejected(&res);
		goto done;
	}
	if (keyset_load(cmd, key_a->vals, key_a->n, true, &sign) < 0)
		goto done;
	r = trust_envelope_cosign(buf, len, CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE,
	                          sign.keys, sign.n, &out, &out_len);
	if (r < 0) {
		fprintf(stderr, "corral-admin %s: %s: %s\n", cmd, p.pos[0],
		        r == -EINVAL ? "not a signed policy bundle" : strerror(-r));
		goto done;
	}
	if (trust_a->n && check_devices_accept(cmd, trust_a, out, out_len, util_now_sec()) < 0)
		goto done;
	if (write_out(cmd, output, out, out_len) < 0)
		goto done;
	printf("co-signed %s -> %s\n", p.pos[0], output);
	for (size_t i = 0; i < sign.n; i++)
		printf("  signer %s  %s\n", trust_key_id(sign.keys[i]), sign.names[i]);
	status = 0;
done:
	keyset_free(&sign);
	args_free(args, na, &p);
	return status;
}

/* ---- policy verify --------------------------------------------------------------------- */

static void verify_usage(FILE *f)
{
	fprintf(f, "usage: corral-admin policy verify BUNDLE --trust ROOT... [--group NAME]...\n"
	           "         [--device ID] [--min-version N]\n\n"
	           "Verifies a signed bundle exactly as a device does. Several --trust files are\n"
	           "a chain of roots, oldest first. Exit 0 when valid; otherwise exit 1 with a\n"
	           "first line `rejected: CODE: detail` (codes in docs/trust.md).\n");
}

static int cmd_policy_verify(int argc, char **argv)
{
	struct arg args[] = {
	        {"--trust", NULL, ARG_MANY},
	        {"--group", NULL, ARG_MANY},
	        {"--device", NULL, ARG_ONE},
	        {"--min-version", NULL, ARG_ONE},
	};
	const size_t na = ELEMENTSOF(args);
	const char *cmd = "policy verify";
	struct parsed p = {0};
	_cleanup_free_ uint8_t *buf = NULL;
	Corral__TrustRoot *root = NULL;
	Corral__PolicyBundle *bundle = NULL;
	int status = EXIT_USAGE;
	int r = parse_args(cmd, argc, argv, args, na, &p);
	if (r == 1) {
		verify_usage(stdout);
		status = 0;
		goto done;
	}
	struct arg *trust_a = arg_find(args, na, "--trust"),
	           *group_a = arg_find(args, na, "--group");
	const char *minv_s = arg_one(args, na, "--min-version");
	uint64_t min_version = 0;
	if (r < 0 || p.n_pos != 1 || !trust_a->n) {
		if (r == 0)
			verify_usage(stderr);
		goto done;
	}
	if (minv_s && util_parse_u64(minv_s, &min_version) < 0) {
		fprintf(stderr, "corral-admin %s: --min-version must be a number\n", cmd);
		goto done;
	}
	status = EXIT_REFUSED;
	int64_t now = util_now_sec();
	struct trust_result res;
	size_t len = 0;
	/* Bundle first: an oversized envelope is refused before anything else is read. */
	r = trust_envelope_read_file(p.pos[0], &buf, &len, &res);
	if (r >= 0)
		r = load_chain(trust_a->vals, trust_a->n, now, &root, &res);
	struct trust_bundle_ctx ctx = {
	        .now = now,
	        /* "--min-version N" = the highest applied is N-1: N itself is acceptable. */
	        .min_version_exclusive = min_version ? min_version - 1 : 0,
	        .device_id = arg_one(args, na, "--device"),
	        .groups = group_a->vals,
	        .n_groups = group_a->n,
	};
	struct trust_bundle_info info;
	if (r >= 0)
		r = trust_bundle_verify(root, buf, len, &ctx, &bundle, &info, &res);
	if (r < 0) {
		print_rejected(&res);
		goto done;
	}
	char when[32];
	printf("valid: policy bundle version %llu\n", (unsigned long long)info.version);
	printf("expires: %s\n", util_format_rfc3339(info.expires_at, when, sizeof(when)));
	printf("trust root: version %llu\n", (unsigned long long)root->version);
	for (size_t i = 0; i < info.n_signers; i++)
		printf("signer: %s\n", info.signer_key_ids[i]);
	if (bundle->source_sha256.len == SHA256_DIGEST_LENGTH) {
		/* For the co-signer: compare with `sha256sum POLICY.json` before vouching. */
		char hex[2 * SHA256_DIGEST_LENGTH + 1];
		util_hex(bundle->source_sha256.data, SHA256_DIGEST_LENGTH, hex);
		printf("source sha256: %s\n", hex);
	}
	status = 0;
done:
	if (bundle)
		corral__policy_bundle__free_unpacked(bundle, NULL);
	if (root)
		corral__trust_root__free_unpacked(root, NULL);
	args_free(args, na, &p);
	return status;
}

const struct admin_command admin_trust_commands[] = {
        {"key generate", "--name NAME --out DIR", "create an Ed25519 signing key pair",
         cmd_key_generate},
        {"trust init", "--root PUB... --signer PUB... --key ROOTKEY... -o FILE",
         "create the first trust root", cmd_trust_init},
        {"trust rotate", "--from OLD --root PUB... --signer PUB... --key KEY... -o FILE",
         "create the next trust root (key rotation)", cmd_trust_rotate},
        {"trust show", "FILE [--json]", "print a trust root", cmd_trust_show},
        {"policy sign", "POLICY.json --version N --expires T --target T... --key KEY... -o F",
         "compile, lint and sign a policy bundle", cmd_policy_sign},
        {"policy cosign", "BUNDLE --key KEY... -o OUT [--trust ROOT...]",
         "add a second signature to a signed bundle", cmd_policy_cosign},
        {"policy verify", "BUNDLE --trust ROOT... [--group G]... [--device ID]",
         "verify a signed bundle as a device would", cmd_policy_verify},
        {NULL, NULL, NULL, NULL},
};
