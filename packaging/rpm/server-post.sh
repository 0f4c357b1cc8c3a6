# SPDX-License-Identifier: Apache-2.0
# corral-server %post ($1: 1 = install, 2 = upgrade). State directory, then the service:
# enabled on first install (an admin's later disable survives upgrades), started only when
# systemd is the running init; a failed start does not fail the transaction.
systemd-tmpfiles --create corral-server.conf >/dev/null 2>&1 || :
if [ "$1" -eq 1 ]; then
	systemctl enable corral-server.service >/dev/null 2>&1 || :
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
	if [ "$1" -eq 1 ]; then
		systemctl start corral-server.service >/dev/null 2>&1 || :
	fi
fi
exit 0
