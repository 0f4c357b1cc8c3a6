/* SPDX-License-Identifier: Apache-2.0 */
/* Escape class: the old and new mount APIs (mount, fsopen/fsmount/move_mount/open_tree,
 * mount_setattr, pivot_root): all denied by the baseline with EPERM. */
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "esc.h"

int main(void)
{
	ESC_DENIED(mount("none", "/tmp", "tmpfs", 0, NULL), EPERM, "mount tmpfs");
	ESC_DENIED(syscall(SYS_fsopen, "tmpfs", 0), EPERM, "fsopen");
	ESC_DENIED(syscall(SYS_fspick, AT_FDCWD, "/", 0), EPERM, "fspick");
	ESC_DENIED(syscall(SYS_fsconfig, 3, 0, NULL, NULL, 0), EPERM, "fsconfig");
	ESC_DENIED(syscall(SYS_fsmount, 3, 0, 0), EPERM, "fsmount");
	ESC_DENIED(syscall(SYS_open_tree, AT_FDCWD, "/", 1 /* OPEN_TREE_CLONE */), EPERM,
	           "open_tree");
	ESC_DENIED(syscall(SYS_move_mount, -1, "", AT_FDCWD, "/tmp", 0), EPERM, "move_mount");
	ESC_DENIED(syscall(SYS_mount_setattr, AT_FDCWD, "/", 0, NULL, 0), EPERM, "mount_setattr");
	ESC_DENIED(syscall(SYS_pivot_root, "/", "/"), EPERM, "pivot_root");
	ESC_DENIED(umount2("/proc", MNT_DETACH), EPERM, "umount2");
	return esc_status;
}
