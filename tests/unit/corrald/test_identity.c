// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of corrald's identity and state helpers: the device key (created 0600, reloaded,
 * refused when readable by others or corrupt), the CSR (parses, self-signature verifies),
 * certificate conversions, the key/value state table and the kernel feature probes on fake
 * sysfs/procfs trees (hybrid cgroup v1 fallback and pure v2).
 */
#include "db.h"
#include "harness.h"
#include "identity.h"
#include "kfeatures.h"
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sqlite3.h>

static char *dir;

static int setup(void)
{
	dir = harness_mkdtemp("identity");
	return dir ? 0 : -1;
}

static int teardown(void)
{
	harness_rm_rf(dir);
	free(dir);
	return 0;
}

static void put(const char *rel, const char *text)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	/* mkdir -p of the parent */
	for (char *p = path + strlen(dir) + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	FILE *f = fopen(path, "we");
	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
}

static void test_key_and_csr(void)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/device.key", dir);
	EVP_PKEY *k = NULL, *k2 = NULL;
	CU_ASSERT_EQUAL_FATAL(cd_identity_load_or_create_key(path, &k), 0);
	struct stat st;
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	CU_ASSERT_EQUAL_FATAL(cd_identity_load_or_create_key(path, &k2), 0);
	CU_ASSERT_EQUAL(EVP_PKEY_eq(k, k2), 1);
	EVP_PKEY_free(k2);
	uint8_t *der = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL_FATAL(cd_identity_make_csr(k, "host-1", &der, &len), 0);
	const unsigned char *p = der;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(req);
	CU_ASSERT_EQUAL(X509_REQ_verify(req, k), 1);
	X509_REQ_free(req);
	free(der);

	/* A self-signed certificate to exercise the conversions. */
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3000);
	X509_set_pubkey(x, k);
	X509_sign(x, k, EVP_sha256());
	unsigned char *cder = NULL;
	int clen = i2d_X509(x, &cder);
	CU_ASSERT_FATAL(clen > 0);
	int64_t nb = 0, na = 0;
	CU_ASSERT_EQUAL(cd_identity_cert_times(cder, (size_t)clen, &nb, &na), 0);
	CU_ASSERT_EQUAL(na - nb, 3000);
	const uint8_t *ders[2] = {cder, cder};
	size_t lens[2] = {(size_t)clen, (size_t)clen};
	char *pem = NULL;
	size_t pem_len = 0;
	CU_ASSERT_EQUAL(cd_identity_der_to_pem(ders, lens, 2, &pem, &pem_len), 0);
	CU_ASSERT_PTR_NOT_NULL(pem && strstr(pem, "-----BEGIN CERTIFICATE-----"));
	free(pem);
	lens[1] = (size_t)clen - 1;
	CU_ASSERT_EQUAL(cd_identity_der_to_pem(ders, lens, 2, &pem, &pem_len), -EBADMSG);
	CU_ASSERT_EQUAL(cd_identity_cert_times((const uint8_t *)"junk", 4, &nb, &na), -EBADMSG);
	OPENSSL_free(cder);
	X509_free(x);
	EVP_PKEY_free(k);

	/* Readable by others: refused. Corrupt: refused. Unreadable path: -errno. */
	CU_ASSERT_EQUAL(chmod(path, 0644), 0);
	CU_ASSERT_EQUAL(cd_identity_load_or_create_key(path, &k), -EPERM);
	put("bad.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
	snprintf(path, sizeof(path), "%s/bad.key", dir);
	CU_ASSERT_EQUAL(chmod(path, 0600), 0);
	CU_ASSERT_EQUAL(cd_identity_load_or_create_key(path, &k), -EBADMSG);
	snprintf(path, sizeof(path), "%s/nodir/x.key", dir);
	CU_ASSERT_EQUAL(cd_identity_load_or_create_key(path, &k), -ENOENT);
}

static void test_state(void)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/state.db", dir);
	sqlite3 *db = NULL;
	CU_ASSERT_EQUAL_FATAL(db_open(path, endpoint_migrations, 0, &db, NULL, 0), 0);
	char *v = NULL;
	CU_ASSERT_EQUAL(cd_state_get(db, "device_id", &v, NULL), -ENOENT);
	CU_ASSERT_EQUAL(cd_state_set_str(db, "device_id", "d-1"), 0);
	size_t len = 0;
	CU_ASSERT_EQUAL(cd_state_get(db, "device_id", &v, &len), 0);
	CU_ASSERT_STRING_EQUAL(v, "d-1");
	CU_ASSERT_EQUAL(len, 3);
	free(v);
	int64_t x = 0;
	CU_ASSERT_EQUAL(cd_state_set_i64(db, "n", -42), 0);
	CU_ASSERT_EQUAL(cd_state_get_i64(db, "n", &x), 0);
	CU_ASSERT_EQUAL(x, -42);
	CU_ASSERT_EQUAL(cd_state_get_i64(db, "device_id", &x), -EINVAL);
	CU_ASSERT_EQUAL(cd_state_get_i64(db, "none", &x), -ENOENT);
	char *big = calloc(1, CD_STATE_VALUE_MAX + 1);
	CU_ASSERT_EQUAL(cd_state_set(db, "big", big, CD_STATE_VALUE_MAX + 1), -EFBIG);
	free(big);
	CU_ASSERT_EQUAL(cd_state_set(db, "empty", NULL, 0), 0);
	CU_ASSERT_EQUAL(cd_state_get(db, "empty", &v, &len), 0);
	CU_ASSERT_EQUAL(len, 0);
	free(v);
	CU_ASSERT_EQUAL(db_exec(db, "DROP TABLE device", NULL, 0), 0);
	CU_ASSERT_EQUAL(cd_state_get(db, "device_id", &v, NULL), -EIO);
	CU_ASSERT_EQUAL(cd_state_set_str(db, "device_id", "x"), -EIO);
	sqlite3_close_v2(db);
}

static void test_features_fake_trees(void)
{
	/* Hybrid host: v2 without the controllers, v1 hierarchies for them. */
	put("h/sys/fs/cgroup/unified/cgroup.controllers", "cpuset io\n");
	put("h/sys/fs/cgroup/memory/tasks", "");
	put("h/sys/fs/cgroup/pids/tasks", "");
	put("h/proc/sys/kernel/seccomp/actions_avail",
	    "kill_process kill_thread trap errno user_notif trace log allow\n");
	put("h/proc/sys/user/max_user_namespaces", "0\n");
	char sys[1024], proc[1024];
	snprintf(sys, sizeof(sys), "%s/h/sys", dir);
	snprintf(proc, sizeof(proc), "%s/h/proc", dir);
	struct cd_features f;
	cd_features_detect(sys, proc, &f);
	CU_ASSERT_TRUE(f.cgroup_v2);
	CU_ASSERT_TRUE(f.cgroup_v1_fallback);
	CU_ASSERT_EQUAL_FATAL(f.n_controllers, 2);
	CU_ASSERT_STRING_EQUAL(f.controllers[0], "memory:v1");
	CU_ASSERT_STRING_EQUAL(f.controllers[1], "pids:v1");
	CU_ASSERT_FALSE(f.user_namespaces);
	CU_ASSERT_EQUAL(f.seccomp_user_notify, f.seccomp);

	/* Pure v2 host with every controller; user_notif missing. */
	put("p/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma\n");
	put("p/proc/sys/kernel/seccomp/actions_avail", "kill_process errno allow\n");
	put("p/proc/sys/user/max_user_namespaces", "63000\n");
	snprintf(sys, sizeof(sys), "%s/p/sys", dir);
	snprintf(proc, sizeof(proc), "%s/p/proc", dir);
	cd_features_detect(sys, proc, &f);
	CU_ASSERT_TRUE(f.cgroup_v2);
	CU_ASSERT_FALSE(f.cgroup_v1_fallback);
	CU_ASSERT_EQUAL_FATAL(f.n_controllers, 3);
	CU_ASSERT_STRING_EQUAL(f.controllers[0], "memory:v2");
	CU_ASSERT_STRING_EQUAL(f.controllers[2], "cpu:v2");
	CU_ASSERT_TRUE(f.user_namespaces);
	CU_ASSERT_FALSE(f.seccomp_user_notify);

	/* Nothing at all. */
	snprintf(sys, sizeof(sys), "%s/none", dir);
	cd_features_detect(sys, sys, &f);
	CU_ASSERT_FALSE(f.cgroup_v2);
	CU_ASSERT_EQUAL(f.n_controllers, 0);
	CU_ASSERT_FALSE(f.bpf_cgroup);

	/* Proto views. */
	Corral__KernelFeatures kf;
	char *ptrs[CD_FEATURES_CONTROLLERS_MAX];
	snprintf(sys, sizeof(sys), "%s/h/sys", dir);
	snprintf(proc, sizeof(proc), "%s/h/proc", dir);
	cd_features_detect(sys, proc, &f);
	cd_features_to_proto(&f, &kf, ptrs);
	CU_ASSERT_EQUAL(kf.n_cgroup_controllers, 2);
	CU_ASSERT_STRING_EQUAL(kf.cgroup_controllers[1], "pids:v1");

	Corral__Requirements r1 = CORRAL__REQUIREMENTS__INIT, r2 = CORRAL__REQUIREMENTS__INIT;
	char *c1[] = {(char *)"memory"}, *c2[] = {(char *)"memory", (char *)"pids"};
	r1.landlock_abi = 4;
	r1.n_cgroup_controllers = 1;
	r1.cgroup_controllers = c1;
	r2.landlock_abi = 2;
	r2.seccomp = true;
	r2.bpf_network = true;
	r2.n_cgroup_controllers = 2;
	r2.cgroup_controllers = c2;
	Corral__Profile p1 = CORRAL__PROFILE__INIT, p2 = CORRAL__PROFILE__INIT,
	                p3 = CORRAL__PROFILE__INIT;
	p1.requires = &r1;
	p2.requires = &r2;
	Corral__Profile *profs[] = {&p1, &p2, &p3};
	Corral__Policy pol = CORRAL__POLICY__INIT;
	pol.n_profiles = 3;
	pol.profiles = profs;
	cd_features_requested(&pol, &kf, ptrs);
	CU_ASSERT_EQUAL(kf.landlock_abi, 4);
	CU_ASSERT_TRUE(kf.seccomp);
	CU_ASSERT_TRUE(kf.bpf_cgroup);
	CU_ASSERT_EQUAL(kf.n_cgroup_controllers, 2);
	cd_features_requested(NULL, &kf, ptrs);
	CU_ASSERT_EQUAL(kf.landlock_abi, 0);

	/* The real kernel: whatever it has, the probe does not crash and ABI is sane. */
	cd_features_detect("/sys", "/proc", &f);
	CU_ASSERT(f.landlock_abi < 100);
}

static const struct harness_test tests[] = {
        {"key_and_csr", test_key_and_csr},
        {"state", test_state},
        {"features_fake_trees", test_features_fake_trees},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"identity", setup, teardown, tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
