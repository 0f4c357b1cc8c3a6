# SPDX-License-Identifier: Apache-2.0
# corral-agent %pre: the network worker's account exists before any file is installed.
getent passwd corral >/dev/null || useradd --system --user-group --no-create-home \
	--home-dir /nonexistent --shell /sbin/nologin --comment "corral network worker" corral
exit 0
