# SPDX-License-Identifier: Apache-2.0
# corral-agent %preun ($1: 0 = erase, 1 = upgrade). On erase stop corrald (and every agent
# session with it) and disable it; on upgrade %postun restarts it.
if [ "$1" -eq 0 ]; then
	if [ -d /run/systemd/system ]; then
		systemctl stop corrald.service >/dev/null 2>&1 || :
	fi
	systemctl disable corrald.service >/dev/null 2>&1 || :
fi
exit 0
