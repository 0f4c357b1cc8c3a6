// SPDX-License-Identifier: Apache-2.0
/* Self-confinement of corrald's helpers (see confine.h): raw Landlock and capset syscalls. */
#include "confine.h"

#include "landlock_abi.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int add_path(int rs, const struct cd_confine_path *p, uint64_t handled)
{
	int fd = open(p->path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct stat st;
	bool dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
	uint64_t access = LANDLOCK_ACCESS_FS_READ_FILE | (dir ? LANDLOCK_ACCESS_FS_READ_DIR : 0);
	if (p->write) {
		access |= LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
		if (dir)
			access |= LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG;
	}
	struct landlock_path_beneath_attr pb = {.allowed_access = access & handled,
	                                        .parent_fd = fd};
	int r = (int)syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
	int e = errno;
	close(fd);
	return r < 0 ? -e : 0;
}

int cd_confine_landlock(const struct cd_confine_path *paths, size_t n, uint16_t connect_port)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi <= 0)
		return -EOPNOTSUPP;
	struct corral_ll_ruleset_attr attr = {0};
	attr.handled_access_fs = (1ULL << 13) - 1; /* ABI 1: execute .. make_sym */
	if (abi >= 2)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	size_t size = sizeof(uint64_t);
	if (abi >= 4 && connect_port) {
		attr.handled_access_net =
		        LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
		size = 2 * sizeof(uint64_t);
	}
	if (abi >= 6) {
		attr.scoped = CORRAL_LL_SCOPE_ABSTRACT_UNIX_SOCKET | CORRAL_LL_SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (rs < 0)
		return -errno;
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++)
		r = add_path(rs, &paths[i], attr.handled_access_fs);
	if (r == 0 && attr.handled_access_net) {
		struct corral_ll_net_port_attr np = {
		        .allowed_access = LANDLOCK_ACCESS_NET_CONNECT_TCP, .port = connect_port};
		if (syscall(SYS_landlock_add_rule, rs, CORRAL_LL_RULE_NET_PORT, &np, 0) < 0)
			r = -errno;
	}
	if (r == 0 && syscall(SYS_landlock_restrict_self, rs, 0) < 0)
		r = -errno;
	close(rs);
	return r;
}

int cd_confine_drop_caps(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {{0}};
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	return 0;
}
