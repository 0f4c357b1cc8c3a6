# SPDX-License-Identifier: Apache-2.0
# corral-agent %post ($1: 1 = install, 2 = upgrade). Directories, then the service: enabled
# on first install (an MDM-deployed agent is meant to run; an admin's later disable survives
# upgrades), started only when systemd is the running init. A start that fails because the
# MDM has not written its configuration yet does not fail the transaction.
systemd-tmpfiles --create corral.conf >/dev/null 2>&1 || :
if [ "$1" -eq 1 ]; then
	systemctl enable corrald.service >/dev/null 2>&1 || :
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
	if [ "$1" -eq 1 ]; then
		systemctl start corrald.service >/dev/null 2>&1 || :
	fi
fi
exit 0
