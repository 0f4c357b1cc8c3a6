// SPDX-License-Identifier: Apache-2.0
/*
 * lib/trust against the attacks TUF names: each test forges one defect and checks the exact
 * reason code (and errno) it is rejected with. Also keys (permissions, PEM round trip) and
 * trust-root rotation (thresholds of old and new keys, no skipping, no going back).
 */
#include "fixtures.h"
#include "harness.h"
#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

static const enum fx_key S12[] = {FX_SIGNER1, FX_SIGNER2};
static const char *const ENG[] = {"eng"};

static Corral__TrustRoot *root1_cache;

/* The standard root v1, decoded on first use (CUnit asserts need a running test). */
static Corral__TrustRoot *root1(void)
{
	if (!root1_cache) {
		struct fx_blob b = fx_root_v1();
		root1_cache = fx_root_decode(b);
		fx_blob_free(&b);
	}
	return root1_cache;
}

static int suite_cleanup(void)
{
	if (root1_cache)
		corral__trust_root__free_unpacked(root1_cache, NULL);
	root1_cache = NULL;
	fx_keys_free();
	return 0;
}

/* Verifies `b` against root1() for device dev-1 in group eng at FX_NOW; returns the reason. */
static enum trust_reason verify_ctx(const Corral__TrustRoot *root, struct fx_blob b,
                                    uint64_t min_version, int64_t now, int *ret_errno)
{
	struct trust_bundle_ctx ctx = {
	        .now = now,
	        .min_version_exclusive = min_version,
	        .device_id = "dev-1",
	        .groups = ENG,
	        .n_groups = 1,
	};
	struct trust_result res;
	Corral__PolicyBundle *bundle = NULL;
	int r = trust_bundle_verify(root, b.data, b.len, &ctx, &bundle, NULL, &res);
	if (ret_errno)
		*ret_errno = r;
	if (r == 0) {
		CU_ASSERT_PTR_NOT_NULL(bundle);
		corral__policy_bundle__free_unpacked(bundle, NULL);
	} else {
		CU_ASSERT_PTR_NULL(bundle);
		CU_ASSERT_EQUAL(r, trust_reason_errno(res.reason));
		CU_ASSERT(res.detail[0] != '\0');
	}
	return res.reason;
}

static enum trust_reason verify(struct fx_blob b)
{
	return verify_ctx(root1(), b, 0, FX_NOW, NULL);
}

static struct fx_blob good_bundle(uint64_t version)
{
	return fx_bundle(version, FX_NOW - 60, FX_NOW + 30 * FX_DAY, S12, 2);
}

/* ---- baseline -------------------------------------------------------------------------- */

static void test_valid_bundle_accepted(void)
{
	struct fx_blob b = good_bundle(7);
	struct trust_bundle_ctx ctx = {.now = FX_NOW, .groups = ENG, .n_groups = 1};
	struct trust_bundle_info info;
	struct trust_result res;
	Corral__PolicyBundle *bundle = NULL;
	CU_ASSERT_EQUAL_FATAL(
	        trust_bundle_verify(root1(), b.data, b.len, &ctx, &bundle, &info, &res), 0);
	CU_ASSERT_EQUAL(res.reason, TRUST_OK);
	CU_ASSERT_STRING_EQUAL(trust_reason_code(res.reason), "ok");
	CU_ASSERT_EQUAL(info.version, 7);
	CU_ASSERT_EQUAL(info.expires_at, FX_NOW + 30 * FX_DAY);
	CU_ASSERT_EQUAL(info.n_signers, 2);
	CU_ASSERT_STRING_EQUAL(info.signer_key_ids[0], trust_key_id(fx_key(FX_SIGNER1)));
	CU_ASSERT_STRING_EQUAL(info.signer_key_ids[1], trust_key_id(fx_key(FX_SIGNER2)));
	CU_ASSERT_STRING_EQUAL(bundle->policy->name, "fixture");
	corral__policy_bundle__free_unpacked(bundle, NULL);
	/* Without targeting (admin-side verify) it is accepted too. */
	struct trust_bundle_ctx any = {.now = FX_NOW};
	CU_ASSERT_EQUAL(trust_bundle_verify(root1(), b.data, b.len, &any, NULL, NULL, &res), 0);
	fx_blob_free(&b);
}

static void test_reason_codes_distinct(void)
{
	for (int a = TRUST_OK; a <= TRUST_VERSION_GAP; a++)
		for (int b = a + 1; b <= TRUST_VERSION_GAP; b++) {
			CU_ASSERT(strcmp(trust_reason_code(a), trust_reason_code(b)) != 0);
			CU_ASSERT(trust_reason_errno(a) != trust_reason_errno(b));
		}
	CU_ASSERT_STRING_EQUAL(trust_reason_code(TRUST_TOO_LARGE), "too-large");
	CU_ASSERT_STRING_EQUAL(trust_reason_code(TRUST_TRUST_EXPIRED), "trust-expired");
	CU_ASSERT_EQUAL(trust_reason_errno(TRUST_ROLLBACK), -ESTALE);
	CU_ASSERT_EQUAL(trust_reason_errno(TRUST_BAD_SIGNATURE), -EBADMSG);
	CU_ASSERT_EQUAL(trust_reason_errno(TRUST_EXPIRED), -EKEYEXPIRED);
	CU_ASSERT_EQUAL(trust_reason_errno(TRUST_TOO_LARGE), -EMSGSIZE);
}

/* ---- one test per reason code -------------------------------------------------------- */

static void set_type_root(Corral__SignedEnvelope *env)
{
	env->payload_type = CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_TRUST_ROOT;
}

static void test_malformed(void)
{
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	struct fx_blob j = {(uint8_t *)junk, sizeof(junk)};
	CU_ASSERT_EQUAL(verify(j), TRUST_MALFORMED);
	struct fx_blob empty = {(uint8_t *)junk, 0};
	CU_ASSERT_EQUAL(verify(empty), TRUST_MALFORMED);
	/* A trust root handed in as a bundle: wrong payload type. */
	struct fx_blob root = fx_root_v1();
	int err = 0;
	CU_ASSERT_EQUAL(verify_ctx(root1(), root, 0, FX_NOW, &err), TRUST_MALFORMED);
	CU_ASSERT_EQUAL(err, -EINVAL);
	fx_blob_free(&root);
	/* A bundle relabelled as a root for the root verifier. */
	struct fx_blob b = good_bundle(1);
	struct fx_blob relabel = fx_envelope_edit(b, set_type_root);
	struct trust_result res;
	Corral__TrustRoot *r = NULL;
	CU_ASSERT_EQUAL(trust_root_verify_initial(relabel.data, relabel.len, FX_NOW, &r, &res),
	                -EINVAL);
	CU_ASSERT_EQUAL(res.reason, TRUST_MALFORMED);
	fx_blob_free(&relabel);
	fx_blob_free(&b);
	/* A validly signed payload that is not a PolicyBundle. */
	static const uint8_t notbundle[] = {0x0a, 0x05, 'x'};
	uint8_t *env = NULL;
	size_t len = 0;
	struct trust_key *k[] = {fx_key(FX_SIGNER1), fx_key(FX_SIGNER2)};
	CU_ASSERT_EQUAL_FATAL(trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE,
	                                          notbundle, sizeof(notbundle), k, 2, &env, &len),
	                      0);
	struct fx_blob nb = {env, len};
	CU_ASSERT_EQUAL(verify(nb), TRUST_MALFORMED);
	fx_blob_free(&nb);
}

static void test_too_large_endless_data(void)
{
	/* In memory: refused on the length alone, before a byte is parsed. */
	struct fx_blob big = {malloc(TRUST_ENVELOPE_MAX + 1), TRUST_ENVELOPE_MAX + 1};
	CU_ASSERT_PTR_NOT_NULL_FATAL(big.data);
	memset(big.data, 0x0a, big.len);
	int err = 0;
	CU_ASSERT_EQUAL(verify_ctx(root1(), big, 0, FX_NOW, &err), TRUST_TOO_LARGE);
	CU_ASSERT_EQUAL(err, -EMSGSIZE);
	fx_blob_free(&big);
	/* On disk: a sparse 1 TiB file is refused by its size, never read. */
	_cleanup_free_ char *dir = harness_mkdtemp("trust");
	_cleanup_free_ char *path = NULL;
	CU_ASSERT_FATAL(asprintf(&path, "%s/huge.bundle", dir) > 0);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(ftruncate(fd, 1LL << 40), 0);
	close(fd);
	uint8_t *buf = NULL;
	size_t len = 0;
	struct trust_result res;
	CU_ASSERT_EQUAL(trust_envelope_read_file(path, &buf, &len, &res), -EMSGSIZE);
	CU_ASSERT_EQUAL(res.reason, TRUST_TOO_LARGE);
	CU_ASSERT_PTR_NULL(buf);
	/* Missing file: -ENOENT, reported as malformed input. */
	CU_ASSERT_EQUAL(trust_envelope_read_file("/nonexistent/x", &buf, &len, &res), -ENOENT);
	CU_ASSERT_EQUAL(res.reason, TRUST_MALFORMED);
	harness_rm_rf(dir);
}

static void set_alg_unknown(Corral__SignedEnvelope *env)
{
	env->signatures[1]->algorithm = 7;
}

static void test_unknown_algorithm(void)
{
	struct fx_blob b = good_bundle(1);
	struct fx_blob e = fx_envelope_edit(b, set_alg_unknown);
	int err = 0;
	CU_ASSERT_EQUAL(verify_ctx(root1(), e, 0, FX_NOW, &err), TRUST_UNKNOWN_ALGORITHM);
	CU_ASSERT_EQUAL(err, -EPROTONOSUPPORT);
	fx_blob_free(&e);
	fx_blob_free(&b);
}

static void flip_signature(Corral__SignedEnvelope *env)
{
	env->signatures[0]->signature.data[5] ^= 0x01;
}

static void flip_payload(Corral__SignedEnvelope *env)
{
	env->payload.data[env->payload.len - 1] ^= 0x01;
}

static void truncate_signature(Corral__SignedEnvelope *env)
{
	env->signatures[0]->signature.len = 10;
}

static void test_bad_signature(void)
{
	struct fx_blob b = good_bundle(1);
	void (*edits[])(Corral__SignedEnvelope *) = {flip_signature, flip_payload,
	                                             truncate_signature};
	for (size_t i = 0; i < ELEMENTSOF(edits); i++) {
		struct fx_blob e = fx_envelope_edit(b, edits[i]);
		int err = 0;
		CU_ASSERT_EQUAL(verify_ctx(root1(), e, 0, FX_NOW, &err), TRUST_BAD_SIGNATURE);
		CU_ASSERT_EQUAL(err, -EBADMSG);
		fx_blob_free(&e);
	}
	fx_blob_free(&b);
}

static void test_signature_not_movable_between_types(void)
{
	/* A signer's signature over the same bytes as a TRUST_ROOT payload does not verify as
	 * a POLICY_BUNDLE: the payload type is inside the signed message. */
	struct fx_blob b = good_bundle(1);
	Corral__SignedEnvelope *env = corral__signed_envelope__unpack(NULL, b.len, b.data);
	CU_ASSERT_PTR_NOT_NULL_FATAL(env);
	uint8_t *other = NULL;
	size_t olen = 0;
	struct trust_key *k[] = {fx_key(FX_SIGNER1), fx_key(FX_SIGNER2)};
	CU_ASSERT_EQUAL_FATAL(trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_TRUST_ROOT,
	                                          env->payload.data, env->payload.len, k, 2, &other,
	                                          &olen),
	                      0);
	corral__signed_envelope__free_unpacked(env, NULL);
	struct fx_blob o = {other, olen};
	struct fx_blob relabelled = fx_envelope_edit(o, set_type_root);
	fx_blob_free(&o);
	/* Now relabel back as a bundle: same signatures, different domain. */
	env = corral__signed_envelope__unpack(NULL, relabelled.len, relabelled.data);
	CU_ASSERT_PTR_NOT_NULL_FATAL(env);
	env->payload_type = CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE;
	struct fx_blob moved = {malloc(corral__signed_envelope__get_packed_size(env)), 0};
	moved.len = corral__signed_envelope__pack(env, moved.data);
	corral__signed_envelope__free_unpacked(env, NULL);
	CU_ASSERT_EQUAL(verify(moved), TRUST_BAD_SIGNATURE);
	fx_blob_free(&moved);
	fx_blob_free(&relabelled);
	fx_blob_free(&b);
}

static void test_signatures_cover_exact_bytes(void)
{
	/* Payload = bundle v2 followed by a second encoding of field 1 (version = 3). Protobuf
	 * takes the last value; a re-serialization would emit one field and different bytes. The
	 * signatures cover the bytes as sent, so they verify, and the version read is 3. */
	struct fx_blob b = good_bundle(2);
	Corral__SignedEnvelope *env = corral__signed_envelope__unpack(NULL, b.len, b.data);
	CU_ASSERT_PTR_NOT_NULL_FATAL(env);
	size_t plen = env->payload.len + 2;
	uint8_t *payload = malloc(plen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(payload);
	memcpy(payload, env->payload.data, env->payload.len);
	payload[plen - 2] = 0x08; /* field 1, varint */
	payload[plen - 1] = 0x03;
	corral__signed_envelope__free_unpacked(env, NULL);
	struct trust_key *k[] = {fx_key(FX_SIGNER1), fx_key(FX_SIGNER2)};
	struct fx_blob s = {0};
	CU_ASSERT_EQUAL_FATAL(trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE,
	                                          payload, plen, k, 2, &s.data, &s.len),
	                      0);
	struct trust_bundle_ctx ctx = {.now = FX_NOW};
	struct trust_bundle_info info;
	struct trust_result res;
	CU_ASSERT_EQUAL(trust_bundle_verify(root1(), s.data, s.len, &ctx, NULL, &info, &res), 0);
	CU_ASSERT_EQUAL(info.version, 3);
	Corral__PolicyBundle *pb = corral__policy_bundle__unpack(NULL, plen, payload);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pb);
	CU_ASSERT_NOT_EQUAL(corral__policy_bundle__get_packed_size(pb), plen);
	corral__policy_bundle__free_unpacked(pb, NULL);
	free(payload);
	fx_blob_free(&s);
	fx_blob_free(&b);
}

static void test_unknown_key(void)
{
	static const enum fx_key sign[] = {FX_SIGNER1, FX_SIGNER2, FX_OUTSIDER};
	struct fx_blob b = fx_bundle(1, FX_NOW, FX_NOW + FX_DAY, sign, 3);
	int err = 0;
	CU_ASSERT_EQUAL(verify_ctx(root1(), b, 0, FX_NOW, &err), TRUST_UNKNOWN_KEY);
	CU_ASSERT_EQUAL(err, -ENOKEY);
	fx_blob_free(&b);
}

static void test_threshold(void)
{
	int err = 0;
	/* One signer of two required. */
	static const enum fx_key one[] = {FX_SIGNER1};
	struct fx_blob b = fx_bundle(1, FX_NOW, FX_NOW + FX_DAY, one, 1);
	CU_ASSERT_EQUAL(verify_ctx(root1(), b, 0, FX_NOW, &err), TRUST_THRESHOLD);
	CU_ASSERT_EQUAL(err, -EKEYREJECTED);
	fx_blob_free(&b);
	/* The same signer twice counts once. */
	static const enum fx_key dup[] = {FX_SIGNER1, FX_SIGNER1, FX_SIGNER1};
	b = fx_bundle(1, FX_NOW, FX_NOW + FX_DAY, dup, 3);
	CU_ASSERT_EQUAL(verify(b), TRUST_THRESHOLD);
	fx_blob_free(&b);
	/* A root key is not a policy signer. */
	static const enum fx_key rootsig[] = {FX_SIGNER1, FX_ROOT1};
	b = fx_bundle(1, FX_NOW, FX_NOW + FX_DAY, rootsig, 2);
	CU_ASSERT_EQUAL(verify(b), TRUST_THRESHOLD);
	fx_blob_free(&b);
	/* No signature at all. */
	b = fx_bundle(1, FX_NOW, FX_NOW + FX_DAY, NULL, 0);
	CU_ASSERT_EQUAL(verify(b), TRUST_THRESHOLD);
	fx_blob_free(&b);
}

static void test_cosign_two_person(void)
{
	/* Dana signs on her machine, Eve co-signs the very same bytes on hers. */
	static const enum fx_key s1[] = {FX_SIGNER1};
	struct fx_blob one = fx_bundle(9, FX_NOW, FX_NOW + FX_DAY, s1, 1);
	CU_ASSERT_EQUAL(verify(one), TRUST_THRESHOLD);
	struct trust_key *k2[] = {fx_key(FX_SIGNER2)};
	struct fx_blob two = {0};
	CU_ASSERT_EQUAL_FATAL(
	        trust_envelope_cosign(one.data, one.len,
	                              CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE, k2, 1,
	                              &two.data, &two.len),
	        0);
	CU_ASSERT_EQUAL(verify(two), TRUST_OK);
	/* Co-signing again with a key that already signed adds nothing. */
	struct fx_blob again = {0};
	CU_ASSERT_EQUAL_FATAL(
	        trust_envelope_cosign(two.data, two.len,
	                              CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE, k2, 1,
	                              &again.data, &again.len),
	        0);
	CU_ASSERT_EQUAL(again.len, two.len);
	fx_blob_free(&again);
	/* Refusals: wrong type, junk, public key, too many keys. */
	uint8_t *out = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL(trust_envelope_cosign(one.data, one.len,
	                                      CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_TRUST_ROOT, k2, 1,
	                                      &out, &len),
	                -EINVAL);
	static const uint8_t junk[] = {0xff, 0xff};
	CU_ASSERT_EQUAL(trust_envelope_cosign(junk, sizeof(junk),
	                                      CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE, k2,
	                                      1, &out, &len),
	                -EINVAL);
	struct trust_key *pub = NULL;
	CU_ASSERT_EQUAL_FATAL(
	        trust_key_from_raw(trust_key_raw_public(fx_key(FX_SIGNER2)), 32, &pub), 0);
	CU_ASSERT_EQUAL(trust_envelope_cosign(one.data, one.len,
	                                      CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE,
	                                      &pub, 1, &out, &len),
	                -EINVAL);
	trust_key_free(pub);
	struct trust_key *many[TRUST_MAX_SIGNATURES + 1];
	for (size_t i = 0; i < ELEMENTSOF(many); i++)
		many[i] = fx_key(FX_SIGNER2);
	CU_ASSERT_EQUAL(trust_envelope_cosign(one.data, one.len,
	                                      CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE,
	                                      many, ELEMENTSOF(many), &out, &len),
	                -E2BIG);
	/* An envelope already carrying 32 signatures has no room for another key. */
	enum fx_key full_ids[TRUST_MAX_SIGNATURES];
	for (size_t i = 0; i < ELEMENTSOF(full_ids); i++)
		full_ids[i] = FX_SIGNER1;
	struct fx_blob full = fx_bundle(9, FX_NOW, FX_NOW + FX_DAY, full_ids, ELEMENTSOF(full_ids));
	CU_ASSERT_EQUAL(trust_envelope_cosign(full.data, full.len,
	                                      CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE, k2,
	                                      1, &out, &len),
	                -E2BIG);
	CU_ASSERT_PTR_NULL(out);
	fx_blob_free(&full);
	fx_blob_free(&two);
	fx_blob_free(&one);
}

static void test_root_key_listed_as_signer_counts(void)
{
	static const enum fx_key roots[] = {FX_ROOT1, FX_ROOT2};
	static const enum fx_key signers[] = {FX_SIGNER1, FX_ROOT1};
	struct fx_blob rb =
	        fx_root(1, FX_NOW - FX_DAY, FX_NOW + FX_DAY, roots, 2, 2, signers, 2, 2, roots, 2);
	Corral__TrustRoot *root = fx_root_decode(rb);
	static const enum fx_key sign[] = {FX_SIGNER1, FX_ROOT1};
	struct fx_blob b = fx_bundle(1, FX_NOW, FX_NOW + FX_DAY, sign, 2);
	CU_ASSERT_EQUAL(verify_ctx(root, b, 0, FX_NOW, NULL), TRUST_OK);
	fx_blob_free(&b);
	corral__trust_root__free_unpacked(root, NULL);
	fx_blob_free(&rb);
}

static void test_expired_freeze(void)
{
	struct fx_blob b = fx_bundle(1, FX_NOW - 10 * FX_DAY, FX_NOW - 1, S12, 2);
	int err = 0;
	CU_ASSERT_EQUAL(verify_ctx(root1(), b, 0, FX_NOW, &err), TRUST_EXPIRED);
	CU_ASSERT_EQUAL(err, -EKEYEXPIRED);
	/* The very second of expiry is already expired. */
	CU_ASSERT_EQUAL(verify_ctx(root1(), b, 0, FX_NOW - 1, NULL), TRUST_EXPIRED);
	CU_ASSERT_EQUAL(verify_ctx(root1(), b, 0, FX_NOW - 2, NULL), TRUST_OK);
	fx_blob_free(&b);
}

static void test_not_yet_valid(void)
{
	struct fx_blob b =
	        fx_bundle(1, FX_NOW + TRUST_CLOCK_SKEW_SEC + 1, FX_NOW + 30 * FX_DAY, S12, 2);
	int err = 0;
	CU_ASSERT_EQUAL(verify_ctx(root1(), b, 0, FX_NOW, &err), TRUST_NOT_YET_VALID);
	CU_ASSERT_EQUAL(err, -ETIME);
	fx_blob_free(&b);
	/* Within the clock-skew allowance: accepted. */
	b = fx_bundle(1, FX_NOW + TRUST_CLOCK_SKEW_SEC, FX_NOW + 30 * FX_DAY, S12, 2);
	CU_ASSERT_EQUAL(verify(b), TRUST_OK);
	fx_blob_free(&b);
}

static void test_wrong_target_mix_and_match(void)
{
	static const char *const other[] = {"group:finance", "device:dev-9"};
	struct fx_blob b = fx_bundle_targets(1, FX_NOW, FX_NOW + FX_DAY, other, 2, S12, 2);
	int err = 0;
	CU_ASSERT_EQUAL(verify_ctx(root1(), b, 0, FX_NOW, &err), TRUST_WRONG_TARGET);
	CU_ASSERT_EQUAL(err, -EXDEV);
	fx_blob_free(&b);
	/* No target at all applies to nobody: trust_bundle_sign refuses to make one, and one
	 * made by hand is refused on the device. */
	Corral__Policy policy = CORRAL__POLICY__INIT;
	Corral__PolicyBundle pb = CORRAL__POLICY_BUNDLE__INIT;
	pb.version = 1;
	pb.issued_at = FX_NOW;
	pb.expires_at = FX_NOW + FX_DAY;
	pb.policy = &policy;
	struct trust_key *k[] = {fx_key(FX_SIGNER1), fx_key(FX_SIGNER2)};
	uint8_t *out = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL(trust_bundle_sign(&pb, k, 2, &out, &len), -EINVAL);
	uint8_t payload[256];
	size_t plen = corral__policy_bundle__pack(&pb, payload);
	CU_ASSERT_EQUAL_FATAL(trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE,
	                                          payload, plen, k, 2, &out, &len),
	                      0);
	struct fx_blob nt = {out, len};
	CU_ASSERT_EQUAL(verify(nt), TRUST_WRONG_TARGET);
	fx_blob_free(&nt);
	/* A device target alone matches by device id. */
	static const char *const dev[] = {"device:dev-1"};
	b = fx_bundle_targets(1, FX_NOW, FX_NOW + FX_DAY, dev, 1, S12, 2);
	CU_ASSERT_EQUAL(verify(b), TRUST_OK);
	struct trust_bundle_ctx ctx = {.now = FX_NOW, .device_id = "dev-2"};
	struct trust_result res;
	CU_ASSERT_EQUAL(trust_bundle_verify(root1(), b.data, b.len, &ctx, NULL, NULL, &res),
	                -EXDEV);
	CU_ASSERT_EQUAL(res.reason, TRUST_WRONG_TARGET);
	fx_blob_free(&b);
}

static void test_rollback(void)
{
	struct fx_blob b = good_bundle(5);
	int err = 0;
	CU_ASSERT_EQUAL(verify_ctx(root1(), b, 5, FX_NOW, &err), TRUST_ROLLBACK);
	CU_ASSERT_EQUAL(err, -ESTALE);
	CU_ASSERT_EQUAL(verify_ctx(root1(), b, 9, FX_NOW, NULL), TRUST_ROLLBACK);
	CU_ASSERT_EQUAL(verify_ctx(root1(), b, 4, FX_NOW, NULL), TRUST_OK);
	fx_blob_free(&b);
}

static void test_trust_expired(void)
{
	static const enum fx_key roots[] = {FX_ROOT1, FX_ROOT2};
	struct fx_blob rb =
	        fx_root(1, FX_NOW - 10 * FX_DAY, FX_NOW - FX_DAY, roots, 2, 2, S12, 2, 2, roots, 2);
	Corral__TrustRoot *root = fx_root_decode(rb);
	struct fx_blob b = good_bundle(1);
	int err = 0;
	CU_ASSERT_EQUAL(verify_ctx(root, b, 0, FX_NOW, &err), TRUST_TRUST_EXPIRED);
	CU_ASSERT_EQUAL(err, -EKEYREVOKED);
	/* The expired root itself is refused as an initial root too. */
	struct trust_result res;
	Corral__TrustRoot *r = NULL;
	CU_ASSERT_EQUAL(trust_root_verify_initial(rb.data, rb.len, FX_NOW, &r, &res), -EKEYREVOKED);
	CU_ASSERT_EQUAL(res.reason, TRUST_TRUST_EXPIRED);
	fx_blob_free(&b);
	corral__trust_root__free_unpacked(root, NULL);
	fx_blob_free(&rb);
}

static void test_too_many_signatures(void)
{
	enum fx_key many[TRUST_MAX_SIGNATURES + 1];
	for (size_t i = 0; i < ELEMENTSOF(many); i++)
		many[i] = FX_SIGNER1;
	/* trust_envelope_sign refuses to make one; build with 32 and check 32 is examined. */
	struct fx_blob b = fx_bundle(1, FX_NOW, FX_NOW + FX_DAY, many, TRUST_MAX_SIGNATURES);
	CU_ASSERT_EQUAL(verify(b), TRUST_THRESHOLD);
	fx_blob_free(&b);
	uint8_t *out = NULL;
	size_t len = 0;
	struct trust_key *k[TRUST_MAX_SIGNATURES + 1];
	for (size_t i = 0; i < ELEMENTSOF(k); i++)
		k[i] = fx_key(FX_SIGNER1);
	CU_ASSERT_EQUAL(trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE,
	                                    (const uint8_t *)"x", 1, k, ELEMENTSOF(k), &out, &len),
	                -EINVAL);
	/* 33 signatures on the wire: malformed before any is checked. */
	Corral__Signature sig = CORRAL__SIGNATURE__INIT, *sigs[TRUST_MAX_SIGNATURES + 1];
	sig.key_id = (char *)trust_key_id(fx_key(FX_SIGNER1));
	sig.algorithm = CORRAL__ALGORITHM__ALGORITHM_ED25519;
	for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
		sigs[i] = &sig;
	Corral__SignedEnvelope env = CORRAL__SIGNED_ENVELOPE__INIT;
	env.payload_type = CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE;
	env.payload.data = (uint8_t *)"x";
	env.payload.len = 1;
	env.n_signatures = ELEMENTSOF(sigs);
	env.signatures = sigs;
	struct fx_blob w = {malloc(corral__signed_envelope__get_packed_size(&env)), 0};
	w.len = corral__signed_envelope__pack(&env, w.data);
	CU_ASSERT_EQUAL(verify(w), TRUST_MALFORMED);
	fx_blob_free(&w);
}

/* ---- trust roots ----------------------------------------------------------------------- */

static const enum fx_key R12[] = {FX_ROOT1, FX_ROOT2};
static const enum fx_key R23[] = {FX_ROOT2, FX_ROOT3};
static const enum fx_key R34[] = {FX_ROOT3, FX_ROOT4};

static void test_root_initial(void)
{
	struct fx_blob rb = fx_root_v1();
	Corral__TrustRoot *r = NULL;
	struct trust_result res;
	CU_ASSERT_EQUAL_FATAL(trust_root_verify_initial(rb.data, rb.len, FX_NOW, &r, &res), 0);
	CU_ASSERT_EQUAL(r->version, 1);
	CU_ASSERT_EQUAL(r->n_root_keys, 2);
	corral__trust_root__free_unpacked(r, NULL);
	r = NULL;
	fx_blob_free(&rb);
	/* Signed by one of its two root keys: threshold. */
	static const enum fx_key one[] = {FX_ROOT1};
	rb = fx_root(1, FX_NOW, FX_NOW + FX_DAY, R12, 2, 2, S12, 2, 2, one, 1);
	CU_ASSERT_EQUAL(trust_root_verify_initial(rb.data, rb.len, FX_NOW, &r, &res),
	                -EKEYREJECTED);
	CU_ASSERT_EQUAL(res.reason, TRUST_THRESHOLD);
	fx_blob_free(&rb);
	/* Signed by its policy signers instead of root keys: threshold. */
	rb = fx_root(1, FX_NOW, FX_NOW + FX_DAY, R12, 2, 2, S12, 2, 2, S12, 2);
	CU_ASSERT_EQUAL(trust_root_verify_initial(rb.data, rb.len, FX_NOW, &r, &res),
	                -EKEYREJECTED);
	fx_blob_free(&rb);
	/* Issued in the future. */
	rb = fx_root(1, FX_NOW + FX_DAY, FX_NOW + 2 * FX_DAY, R12, 2, 2, S12, 2, 2, R12, 2);
	CU_ASSERT_EQUAL(trust_root_verify_initial(rb.data, rb.len, FX_NOW, &r, &res), -ETIME);
	CU_ASSERT_EQUAL(res.reason, TRUST_NOT_YET_VALID);
	fx_blob_free(&rb);
	CU_ASSERT_PTR_NULL(r);
}

static void test_root_spec_refused(void)
{
	struct trust_key *k[] = {fx_key(FX_ROOT1), fx_key(FX_ROOT1)};
	struct trust_root_spec spec = {
	        .version = 1,
	        .issued_at = FX_NOW,
	        .expires_at = FX_NOW + 1,
	        .root_keys = k,
	        .n_root_keys = 1,
	        .root_threshold = 2, /* above the number of keys */
	        .signer_keys = k,
	        .n_signer_keys = 1,
	        .signer_threshold = 1,
	};
	uint8_t *out = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL(trust_root_sign(&spec, k, 1, &out, &len), -EINVAL);
	spec.root_threshold = 1;
	spec.n_root_keys = 2; /* the same key twice */
	CU_ASSERT_EQUAL(trust_root_sign(&spec, k, 1, &out, &len), -EINVAL);
	spec.n_root_keys = 1;
	spec.expires_at = FX_NOW;
	CU_ASSERT_EQUAL(trust_root_sign(&spec, k, 1, &out, &len), -EINVAL);
	spec.expires_at = FX_NOW + 1;
	CU_ASSERT_EQUAL_FATAL(trust_root_sign(&spec, k, 1, &out, &len), 0);
	free(out);
	CU_ASSERT_EQUAL(trust_root_sign(NULL, k, 1, &out, &len), -EINVAL);
}

static void test_rotation_chain_of_three(void)
{
	/* v1 {R1,R2} -> v2 {R2,R3} -> v3 {R3,R4}, each signed by old AND new thresholds. */
	static const enum fx_key s12[] = {FX_ROOT1, FX_ROOT2, FX_ROOT3};
	static const enum fx_key s23[] = {FX_ROOT2, FX_ROOT3, FX_ROOT4};
	struct fx_blob v1 = fx_root_v1();
	struct fx_blob v2 = fx_root(2, FX_NOW, FX_NOW + FX_DAY, R23, 2, 2, S12, 2, 2, s12, 3);
	struct fx_blob v3 = fx_root(3, FX_NOW, FX_NOW + FX_DAY, R34, 2, 2, S12, 2, 1, s23, 3);
	struct trust_result res;
	Corral__TrustRoot *r1 = fx_root_decode(v1), *r2 = NULL, *r3 = NULL;
	CU_ASSERT_EQUAL_FATAL(trust_root_verify_next(r1, v2.data, v2.len, FX_NOW, &r2, &res), 0);
	CU_ASSERT_EQUAL_FATAL(trust_root_verify_next(r2, v3.data, v3.len, FX_NOW, &r3, &res), 0);
	CU_ASSERT_EQUAL(r3->version, 3);
	CU_ASSERT_EQUAL(r3->signer_threshold, 1);
	/* A new device may start from v2 alone: R1's signature on it is skipped, not refused. */
	Corral__TrustRoot *alone = NULL;
	CU_ASSERT_EQUAL(trust_root_verify_initial(v2.data, v2.len, FX_NOW, &alone, &res), 0);
	if (alone)
		corral__trust_root__free_unpacked(alone, NULL);
	/* The whole chain at once, and a bundle under the newest root. */
	const uint8_t *envs[] = {v1.data, v2.data, v3.data};
	const size_t lens[] = {v1.len, v2.len, v3.len};
	Corral__TrustRoot *last = NULL;
	CU_ASSERT_EQUAL_FATAL(trust_root_verify_chain(envs, lens, 3, FX_NOW, &last, &res), 0);
	CU_ASSERT_EQUAL(last->version, 3);
	static const enum fx_key s1[] = {FX_SIGNER1};
	struct fx_blob b = fx_bundle(1, FX_NOW, FX_NOW + FX_DAY, s1, 1);
	CU_ASSERT_EQUAL(verify_ctx(last, b, 0, FX_NOW, NULL), TRUST_OK);
	CU_ASSERT_EQUAL(verify_ctx(r1, b, 0, FX_NOW, NULL), TRUST_THRESHOLD);
	fx_blob_free(&b);
	/* Walking the chain out of order fails. */
	const uint8_t *bad_envs[] = {v1.data, v3.data, v2.data};
	const size_t bad_lens[] = {v1.len, v3.len, v2.len};
	Corral__TrustRoot *none = NULL;
	CU_ASSERT_EQUAL(trust_root_verify_chain(bad_envs, bad_lens, 3, FX_NOW, &none, &res),
	                -ERANGE);
	CU_ASSERT_EQUAL(trust_root_verify_chain(envs, lens, 0, FX_NOW, &none, &res), -EINVAL);
	CU_ASSERT_PTR_NULL(none);
	corral__trust_root__free_unpacked(last, NULL);
	corral__trust_root__free_unpacked(r1, NULL);
	corral__trust_root__free_unpacked(r2, NULL);
	corral__trust_root__free_unpacked(r3, NULL);
	fx_blob_free(&v1);
	fx_blob_free(&v2);
	fx_blob_free(&v3);
}

static void test_rotation_expired_intermediate_walks(void)
{
	/* A device offline for a year: v2 has expired since, v3 is current. The chain walks. */
	static const enum fx_key s12[] = {FX_ROOT1, FX_ROOT2, FX_ROOT3};
	static const enum fx_key s23[] = {FX_ROOT2, FX_ROOT3, FX_ROOT4};
	struct fx_blob v1 = fx_root_v1();
	struct fx_blob v2 =
	        fx_root(2, FX_NOW - 30 * FX_DAY, FX_NOW - FX_DAY, R23, 2, 2, S12, 2, 2, s12, 3);
	struct fx_blob v3 = fx_root(3, FX_NOW, FX_NOW + FX_DAY, R34, 2, 2, S12, 2, 2, s23, 3);
	const uint8_t *envs[] = {v1.data, v2.data, v3.data};
	const size_t lens[] = {v1.len, v2.len, v3.len};
	Corral__TrustRoot *last = NULL;
	struct trust_result res;
	CU_ASSERT_EQUAL(trust_root_verify_chain(envs, lens, 3, FX_NOW, &last, &res), 0);
	corral__trust_root__free_unpacked(last, NULL);
	last = NULL;
	/* But a chain ending in an expired root is trust-expired. */
	CU_ASSERT_EQUAL(trust_root_verify_chain(envs, lens, 2, FX_NOW, &last, &res), -EKEYREVOKED);
	CU_ASSERT_EQUAL(res.reason, TRUST_TRUST_EXPIRED);
	fx_blob_free(&v1);
	fx_blob_free(&v2);
	fx_blob_free(&v3);
}

static void test_rotation_signed_only_by_old_keys(void)
{
	struct fx_blob v1 = fx_root_v1();
	Corral__TrustRoot *r1 = fx_root_decode(v1);
	struct trust_result res;
	Corral__TrustRoot *r2 = NULL;
	/* New root keys {R3,R4} never signed: the old keys alone cannot rotate trust. */
	struct fx_blob v2 = fx_root(2, FX_NOW, FX_NOW + FX_DAY, R34, 2, 2, S12, 2, 2, R12, 2);
	CU_ASSERT_EQUAL(trust_root_verify_next(r1, v2.data, v2.len, FX_NOW, &r2, &res),
	                -EKEYREJECTED);
	CU_ASSERT_EQUAL(res.reason, TRUST_THRESHOLD);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.detail, "own root keys"));
	fx_blob_free(&v2);
	/* Nor can the new keys alone (a thief's self-made root). */
	v2 = fx_root(2, FX_NOW, FX_NOW + FX_DAY, R34, 2, 2, S12, 2, 2, R34, 2);
	CU_ASSERT_EQUAL(trust_root_verify_next(r1, v2.data, v2.len, FX_NOW, &r2, &res),
	                -EKEYREJECTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.detail, "previous root"));
	fx_blob_free(&v2);
	/* One old key plus both new: below the old threshold of 2. */
	static const enum fx_key mix[] = {FX_ROOT1, FX_ROOT3, FX_ROOT4};
	v2 = fx_root(2, FX_NOW, FX_NOW + FX_DAY, R34, 2, 2, S12, 2, 2, mix, 3);
	CU_ASSERT_EQUAL(trust_root_verify_next(r1, v2.data, v2.len, FX_NOW, &r2, &res),
	                -EKEYREJECTED);
	fx_blob_free(&v2);
	CU_ASSERT_PTR_NULL(r2);
	corral__trust_root__free_unpacked(r1, NULL);
	fx_blob_free(&v1);
}

static void test_rotation_skip_and_rollback(void)
{
	static const enum fx_key all[] = {FX_ROOT1, FX_ROOT2, FX_ROOT3};
	struct fx_blob v1 = fx_root_v1();
	Corral__TrustRoot *r1 = fx_root_decode(v1);
	struct trust_result res;
	Corral__TrustRoot *r = NULL;
	struct fx_blob v3 = fx_root(3, FX_NOW, FX_NOW + FX_DAY, R23, 2, 2, S12, 2, 2, all, 3);
	CU_ASSERT_EQUAL(trust_root_verify_next(r1, v3.data, v3.len, FX_NOW, &r, &res), -ERANGE);
	CU_ASSERT_EQUAL(res.reason, TRUST_VERSION_GAP);
	CU_ASSERT_STRING_EQUAL(trust_reason_code(res.reason), "version-gap");
	/* Re-presenting v1 (or anything <= current) as next: rollback. */
	CU_ASSERT_EQUAL(trust_root_verify_next(r1, v1.data, v1.len, FX_NOW, &r, &res), -ESTALE);
	CU_ASSERT_EQUAL(res.reason, TRUST_ROLLBACK);
	/* A successor that is itself expired is refused. */
	struct fx_blob v2 =
	        fx_root(2, FX_NOW - 9 * FX_DAY, FX_NOW - FX_DAY, R23, 2, 2, S12, 2, 2, all, 3);
	CU_ASSERT_EQUAL(trust_root_verify_next(r1, v2.data, v2.len, FX_NOW, &r, &res),
	                -EKEYREVOKED);
	CU_ASSERT_EQUAL(trust_root_verify_next(NULL, v2.data, v2.len, FX_NOW, &r, &res), -EINVAL);
	CU_ASSERT_PTR_NULL(r);
	fx_blob_free(&v2);
	fx_blob_free(&v3);
	corral__trust_root__free_unpacked(r1, NULL);
	fx_blob_free(&v1);
}

static void corrupt_root_key_id(Corral__SignedEnvelope *env)
{
	/* Flip a byte inside the payload's first key id (hex 'x' is not hex of the key). */
	for (size_t i = 0; i + 1 < env->payload.len; i++)
		if (env->payload.data[i] >= 'a' && env->payload.data[i] <= 'f') {
			env->payload.data[i] = env->payload.data[i] == 'a' ? 'b' : 'a';
			return;
		}
}

static void test_root_malformed_keys(void)
{
	struct fx_blob v1 = fx_root_v1();
	struct fx_blob e = fx_envelope_edit(v1, corrupt_root_key_id);
	struct trust_result res;
	Corral__TrustRoot *r = NULL;
	CU_ASSERT_EQUAL(trust_root_peek(e.data, e.len, &r, &res), -EINVAL);
	CU_ASSERT_EQUAL(res.reason, TRUST_MALFORMED);
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_EQUAL_FATAL(trust_root_peek(v1.data, v1.len, &r, &res), 0);
	CU_ASSERT_EQUAL(r->version, 1);
	corral__trust_root__free_unpacked(r, NULL);
	fx_blob_free(&e);
	fx_blob_free(&v1);
}

/* ---- structural and size checks ------------------------------------------------------- */

/* Signs a hand-built TrustRoot payload with R1 and R2 and returns the initial verification. */
static int verify_handmade_root(const Corral__TrustRoot *root, struct trust_result *res)
{
	size_t plen = corral__trust_root__get_packed_size(root);
	uint8_t *payload = malloc(plen + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(payload);
	corral__trust_root__pack(root, payload);
	struct trust_key *k[] = {fx_key(FX_ROOT1), fx_key(FX_ROOT2)};
	uint8_t *env = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL_FATAL(trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_TRUST_ROOT,
	                                          payload, plen, k, 2, &env, &len),
	                      0);
	Corral__TrustRoot *out = NULL;
	int r = trust_root_verify_initial(env, len, FX_NOW, &out, res);
	if (out)
		corral__trust_root__free_unpacked(out, NULL);
	free(env);
	free(payload);
	return r;
}

static void test_root_structure_malformed(void)
{
	Corral__PublicKey r1, r2, s1, *roots[] = {&r1, &r2}, *signers[] = {&s1};
	trust_key_to_proto(fx_key(FX_ROOT1), "r1", &r1);
	trust_key_to_proto(fx_key(FX_ROOT2), "r2", &r2);
	trust_key_to_proto(fx_key(FX_SIGNER1), "s1", &s1);
	Corral__TrustRoot t = CORRAL__TRUST_ROOT__INIT;
	t.version = 1;
	t.issued_at = FX_NOW;
	t.expires_at = FX_NOW + FX_DAY;
	t.n_root_keys = 2;
	t.root_keys = roots;
	t.root_threshold = 2;
	t.n_signer_keys = 1;
	t.signer_keys = signers;
	t.signer_threshold = 1;
	struct trust_result res;
	CU_ASSERT_EQUAL(verify_handmade_root(&t, &res), 0);

	t.version = 0;
	CU_ASSERT_EQUAL(verify_handmade_root(&t, &res), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.detail, "version 0"));
	t.version = 1;
	t.expires_at = t.issued_at;
	CU_ASSERT_EQUAL(verify_handmade_root(&t, &res), -EINVAL);
	t.expires_at = FX_NOW + FX_DAY;
	t.root_threshold = 0;
	CU_ASSERT_EQUAL(verify_handmade_root(&t, &res), -EINVAL);
	t.root_threshold = 3;
	CU_ASSERT_EQUAL(verify_handmade_root(&t, &res), -EINVAL);
	t.root_threshold = 2;
	t.n_signer_keys = 0;
	CU_ASSERT_EQUAL(verify_handmade_root(&t, &res), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.detail, "no signer keys"));
	t.n_signer_keys = 1;
	s1.algorithm = 9;
	CU_ASSERT_EQUAL(verify_handmade_root(&t, &res), -EPROTONOSUPPORT);
	CU_ASSERT_EQUAL(res.reason, TRUST_UNKNOWN_ALGORITHM);
	s1.algorithm = CORRAL__ALGORITHM__ALGORITHM_ED25519;
	s1.public_key.len = 31;
	CU_ASSERT_EQUAL(verify_handmade_root(&t, &res), -EINVAL);
	s1.public_key.len = 32;
	roots[1] = &r1; /* the same root key listed twice */
	t.root_threshold = 1;
	CU_ASSERT_EQUAL(verify_handmade_root(&t, &res), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.detail, "twice"));
	roots[1] = &r2;
	Corral__PublicKey *many[TRUST_MAX_SIGNATURES + 1];
	for (size_t i = 0; i < ELEMENTSOF(many); i++)
		many[i] = &s1;
	t.signer_keys = many;
	t.n_signer_keys = ELEMENTSOF(many);
	CU_ASSERT_EQUAL(verify_handmade_root(&t, &res), -EINVAL);
	/* Not a TrustRoot at all, correctly signed. */
	static const uint8_t junk[] = {0x0a, 0x7f};
	struct trust_key *k[] = {fx_key(FX_ROOT1)};
	uint8_t *env = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL_FATAL(trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_TRUST_ROOT,
	                                          junk, sizeof(junk), k, 1, &env, &len),
	                      0);
	Corral__TrustRoot *out = NULL;
	CU_ASSERT_EQUAL(trust_root_verify_initial(env, len, FX_NOW, &out, &res), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.detail, "not a TrustRoot"));
	free(env);
	/* An envelope with an empty payload. */
	CU_ASSERT_EQUAL(trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_TRUST_ROOT, NULL, 0,
	                                    k, 1, &env, &len),
	                0);
	CU_ASSERT_EQUAL(trust_root_verify_initial(env, len, FX_NOW, &out, &res), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.detail, "empty payload"));
	free(env);
	/* Too many keys in a spec. */
	struct trust_key *mk[TRUST_MAX_SIGNATURES + 1];
	for (size_t i = 0; i < ELEMENTSOF(mk); i++)
		mk[i] = fx_key(FX_ROOT1);
	struct trust_root_spec spec = {.version = 1,
	                               .issued_at = FX_NOW,
	                               .expires_at = FX_NOW + 1,
	                               .root_keys = mk,
	                               .n_root_keys = ELEMENTSOF(mk),
	                               .root_threshold = 1,
	                               .signer_keys = mk,
	                               .n_signer_keys = 1,
	                               .signer_threshold = 1};
	CU_ASSERT_EQUAL(trust_root_sign(&spec, mk, 1, &env, &len), -EINVAL);
}

static void test_size_caps_on_signing(void)
{
	size_t big = TRUST_ENVELOPE_MAX + 1;
	uint8_t *payload = calloc(1, big);
	CU_ASSERT_PTR_NOT_NULL_FATAL(payload);
	struct trust_key *k[] = {fx_key(FX_SIGNER1)};
	uint8_t *env = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL(trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE,
	                                    payload, big, k, 1, &env, &len),
	                -EMSGSIZE);
	/* Exactly the cap as payload: the envelope around it is over the cap. */
	CU_ASSERT_EQUAL(trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE,
	                                    payload, TRUST_ENVELOPE_MAX, k, 1, &env, &len),
	                -EMSGSIZE);
	CU_ASSERT_EQUAL(trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE, NULL,
	                                    5, k, 1, &env, &len),
	                -EINVAL);
	/* A bundle whose source alone is over the cap. */
	memset(payload, 'a', big - 1);
	Corral__Policy policy = CORRAL__POLICY__INIT;
	Corral__Target t = CORRAL__TARGET__INIT, *tp = &t;
	t.kind_case = CORRAL__TARGET__KIND_GROUP;
	t.group = (char *)"eng";
	Corral__PolicyBundle b = CORRAL__POLICY_BUNDLE__INIT;
	b.version = 1;
	b.issued_at = FX_NOW;
	b.expires_at = FX_NOW + 1;
	b.n_targets = 1;
	b.targets = &tp;
	b.policy = &policy;
	b.source_json = (char *)payload;
	CU_ASSERT_EQUAL(trust_bundle_sign(&b, k, 1, &env, &len), -EMSGSIZE);
	CU_ASSERT_EQUAL(trust_bundle_sign(NULL, k, 1, &env, &len), -EINVAL);
	free(payload);
	struct trust_bundle_ctx ctx = {.now = FX_NOW};
	CU_ASSERT_EQUAL(trust_bundle_verify(NULL, env, len, &ctx, NULL, NULL, NULL), -EINVAL);
	CU_ASSERT_EQUAL(trust_bundle_verify(root1(), env, len, NULL, NULL, NULL, NULL), -EINVAL);
	CU_ASSERT_PTR_NULL(env);
}

/* ---- keys ------------------------------------------------------------------------------ */

static void test_key_generate_save_load(void)
{
	_cleanup_free_ char *dir = harness_mkdtemp("trust-keys");
	struct trust_key *k = NULL;
	CU_ASSERT_EQUAL_FATAL(trust_key_generate(&k), 0);
	CU_ASSERT(trust_key_is_private(k));
	CU_ASSERT_EQUAL(strlen(trust_key_id(k)), TRUST_KEY_ID_LEN);
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256(trust_key_raw_public(k), TRUST_ED25519_PUB_LEN, md);
	char id[TRUST_KEY_ID_LEN + 1];
	util_hex(md, sizeof(md), id);
	CU_ASSERT_STRING_EQUAL(id, trust_key_id(k));
	CU_ASSERT_EQUAL_FATAL(trust_key_save(k, dir, "alice"), 0);
	CU_ASSERT_EQUAL(trust_key_save(k, dir, "alice"), -EEXIST);
	CU_ASSERT_EQUAL(trust_key_save(k, dir, "../x"), -EINVAL);
	CU_ASSERT_EQUAL(trust_key_save(k, "/nonexistent-dir", "bob"), -ENOENT);

	char kp[512], pp[512];
	snprintf(kp, sizeof(kp), "%s/alice.key", dir);
	snprintf(pp, sizeof(pp), "%s/alice.pub", dir);
	struct stat st;
	CU_ASSERT_EQUAL(stat(kp, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	CU_ASSERT_EQUAL(stat(pp, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0644);

	struct trust_key *priv = NULL, *pub = NULL, *half = NULL;
	CU_ASSERT_EQUAL_FATAL(trust_key_load_private(kp, &priv), 0);
	CU_ASSERT_STRING_EQUAL(trust_key_id(priv), trust_key_id(k));
	CU_ASSERT_EQUAL_FATAL(trust_key_load_public(pp, &pub), 0);
	CU_ASSERT(!trust_key_is_private(pub));
	CU_ASSERT_STRING_EQUAL(trust_key_id(pub), trust_key_id(k));
	CU_ASSERT_EQUAL_FATAL(trust_key_load_public(kp, &half), 0);
	CU_ASSERT(!trust_key_is_private(half));
	CU_ASSERT_STRING_EQUAL(trust_key_id(half), trust_key_id(k));

	/* A public key cannot sign; a public file is not a private key. */
	uint8_t sig[TRUST_ED25519_SIG_LEN];
	CU_ASSERT_EQUAL(trust_key_sign(pub, (const uint8_t *)"m", 1, sig), -EINVAL);
	CU_ASSERT_EQUAL(trust_key_sign(priv, (const uint8_t *)"m", 1, sig), 0);
	struct trust_key *bad = NULL;
	CU_ASSERT_EQUAL(chmod(pp, 0600), 0);
	CU_ASSERT_EQUAL(trust_key_load_private(pp, &bad), -EBADMSG);
	CU_ASSERT_EQUAL(trust_key_save(pub, dir, "pubonly"), -EINVAL);
	uint8_t *out = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL(trust_envelope_sign(CORRAL__PAYLOAD_TYPE__PAYLOAD_TYPE_POLICY_BUNDLE,
	                                    (const uint8_t *)"x", 1, &pub, 1, &out, &len),
	                -EINVAL);

	/* Group- or world-readable private key: refused before reading. */
	CU_ASSERT_EQUAL(chmod(kp, 0640), 0);
	CU_ASSERT_EQUAL(trust_key_load_private(kp, &bad), -EPERM);
	CU_ASSERT_EQUAL(trust_key_load_public(kp, &bad), -EPERM);
	CU_ASSERT_EQUAL(chmod(kp, 0604), 0);
	CU_ASSERT_EQUAL(trust_key_load_private(kp, &bad), -EPERM);
	CU_ASSERT_PTR_NULL(bad);
	CU_ASSERT_EQUAL(trust_key_load_private("/nonexistent/k.key", &bad), -ENOENT);
	CU_ASSERT_EQUAL(trust_key_load_public("/nonexistent/k.pub", &bad), -ENOENT);

	/* Not PEM at all. */
	char jp[512];
	snprintf(jp, sizeof(jp), "%s/junk.pub", dir);
	CU_ASSERT_EQUAL(util_write_file_atomic(jp, "hello\n", 6, 0644), 0);
	CU_ASSERT_EQUAL(trust_key_load_public(jp, &bad), -EBADMSG);

	trust_key_free(k);
	trust_key_free(priv);
	trust_key_free(pub);
	trust_key_free(half);
	trust_key_free(NULL);
	harness_rm_rf(dir);
}

static void test_key_from_raw(void)
{
	struct trust_key *k = NULL;
	CU_ASSERT_EQUAL(trust_key_from_raw(trust_key_raw_public(fx_key(FX_ROOT1)), 31, &k),
	                -EINVAL);
	CU_ASSERT_EQUAL_FATAL(trust_key_from_raw(trust_key_raw_public(fx_key(FX_ROOT1)), 32, &k),
	                      0);
	CU_ASSERT_STRING_EQUAL(trust_key_id(k), trust_key_id(fx_key(FX_ROOT1)));
	CU_ASSERT(!trust_key_is_private(k));
	trust_key_free(k);
}

static void test_key_refusals(void)
{
	_cleanup_free_ char *dir = harness_mkdtemp("trust-keys");
	char p[600];
	struct trust_key *k = NULL;
	/* A P-256 key is a valid PEM key but not Ed25519. */
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ec);
	BIO *pub = BIO_new(BIO_s_mem()), *priv = BIO_new(BIO_s_mem());
	CU_ASSERT_EQUAL(PEM_write_bio_PUBKEY(pub, ec), 1);
	CU_ASSERT_EQUAL(PEM_write_bio_PrivateKey(priv, ec, NULL, NULL, 0, NULL, NULL), 1);
	char *data = NULL;
	long n = BIO_get_mem_data(pub, &data);
	snprintf(p, sizeof(p), "%s/ec.pub", dir);
	CU_ASSERT_EQUAL(util_write_file_atomic(p, data, (size_t)n, 0644), 0);
	CU_ASSERT_EQUAL(trust_key_load_public(p, &k), -EPROTONOSUPPORT);
	n = BIO_get_mem_data(priv, &data);
	snprintf(p, sizeof(p), "%s/ec.key", dir);
	CU_ASSERT_EQUAL(util_write_file_atomic(p, data, (size_t)n, 0600), 0);
	CU_ASSERT_EQUAL(trust_key_load_private(p, &k), -EPROTONOSUPPORT);
	BIO_free(pub);
	BIO_free(priv);
	EVP_PKEY_free(ec);
	/* Oversized key file: refused by size. */
	char *big = calloc(1, 20000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 'A', 19999);
	snprintf(p, sizeof(p), "%s/big.pub", dir);
	CU_ASSERT_EQUAL(util_write_file_atomic(p, big, 19999, 0644), 0);
	CU_ASSERT_EQUAL(trust_key_load_public(p, &k), -EFBIG);
	/* A directory path too long for DIR/NAME.key. */
	memset(big, 'd', 5000);
	big[0] = '/';
	big[5000] = '\0';
	CU_ASSERT_EQUAL(trust_key_save(fx_key(FX_SIGNER1), big, "x"), -ENAMETOOLONG);
	CU_ASSERT_EQUAL(trust_key_save(NULL, dir, "x"), -EINVAL);
	CU_ASSERT_EQUAL(trust_key_from_raw(NULL, 32, &k), -EINVAL);
	CU_ASSERT_PTR_NULL(k);
	free(big);
	harness_rm_rf(dir);
}

static const struct harness_test attack_tests[] = {
        {"valid_bundle_accepted", test_valid_bundle_accepted},
        {"reason_codes_distinct", test_reason_codes_distinct},
        {"malformed", test_malformed},
        {"too_large_endless_data", test_too_large_endless_data},
        {"unknown_algorithm", test_unknown_algorithm},
        {"bad_signature", test_bad_signature},
        {"signature_not_movable_between_types", test_signature_not_movable_between_types},
        {"signatures_cover_exact_bytes", test_signatures_cover_exact_bytes},
        {"unknown_key", test_unknown_key},
        {"threshold", test_threshold},
        {"root_key_listed_as_signer_counts", test_root_key_listed_as_signer_counts},
        {"cosign_two_person", test_cosign_two_person},
        {"expired_freeze", test_expired_freeze},
        {"not_yet_valid", test_not_yet_valid},
        {"wrong_target_mix_and_match", test_wrong_target_mix_and_match},
        {"rollback", test_rollback},
        {"trust_expired", test_trust_expired},
        {"too_many_signatures", test_too_many_signatures},
        {NULL, NULL},
};

static const struct harness_test root_tests[] = {
        {"root_initial", test_root_initial},
        {"root_spec_refused", test_root_spec_refused},
        {"rotation_chain_of_three", test_rotation_chain_of_three},
        {"rotation_expired_intermediate_walks", test_rotation_expired_intermediate_walks},
        {"rotation_signed_only_by_old_keys", test_rotation_signed_only_by_old_keys},
        {"rotation_skip_and_rollback", test_rotation_skip_and_rollback},
        {"root_malformed_keys", test_root_malformed_keys},
        {"root_structure_malformed", test_root_structure_malformed},
        {"size_caps_on_signing", test_size_caps_on_signing},
        {NULL, NULL},
};

static const struct harness_test key_tests[] = {
        {"key_generate_save_load", test_key_generate_save_load},
        {"key_from_raw", test_key_from_raw},
        {"key_refusals", test_key_refusals},
        {NULL, NULL},
};

int main(int argc, char **argv)
{
	static const struct harness_suite suites[] = {
	        {"attacks", NULL, suite_cleanup, attack_tests},
	        {"roots", NULL, suite_cleanup, root_tests},
	        {"keys", NULL, NULL, key_tests},
	        {NULL, NULL, NULL, NULL},
	};
	return harness_main(argc, argv, suites);
}
