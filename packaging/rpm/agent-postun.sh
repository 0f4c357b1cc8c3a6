# SPDX-License-Identifier: Apache-2.0
# corral-agent %postun ($1: 0 = erase, 1 = upgrade). Upgrade: restart a running corrald on
# the new binary. Erase: rpm has no purge, so /var/lib/corral (database, device key) is kept,
# as rpm keeps changed %config files; delete it by hand to forget the enrollment.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
	if [ "$1" -ge 1 ]; then
		systemctl try-restart corrald.service >/dev/null 2>&1 || :
	fi
fi
exit 0
