# SPDX-License-Identifier: Apache-2.0
# corral-server %preun ($1: 0 = erase, 1 = upgrade). On erase stop and disable the server; on
# upgrade %postun restarts it.
if [ "$1" -eq 0 ]; then
	if [ -d /run/systemd/system ]; then
		systemctl stop corral-server.service >/dev/null 2>&1 || :
	fi
	systemctl disable corral-server.service >/dev/null 2>&1 || :
fi
exit 0
