# SPDX-License-Identifier: Apache-2.0
# corral-server %pre: the service account exists before its files (configuration group,
# state directory) are installed.
getent passwd corral-server >/dev/null || useradd --system --user-group --no-create-home \
	--home-dir /var/lib/corral-server --shell /sbin/nologin \
	--comment "corral management server" corral-server
exit 0
