#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Generic MDM post-install script for corral-agent: drop the enrollment settings, the
# enrollment token, the fleet's trust root and the fleet CA certificate, then (re)start
# corrald so it enrolls. Works
# whether it runs before or after the package is installed, and is safe to run again: corrald
# deletes the token file once enrolled, and the script writes no token to a device whose
# corrald reports itself enrolled.
#
# The MDM provides, as environment variables or by editing the defaults below:
#   CORRAL_SERVER_URL    https://host:port of corral-server
#   CORRAL_ENROLL_TOKEN  an enrollment token (`corral-admin enroll-token create --group G`)
#   CORRAL_TRUST_ROOT    path of the trust root file the MDM delivered (from
#                        `corral-admin trust init`, or the latest `trust rotate`)
#   CORRAL_FLEET_CA      path of the fleet CA certificate the MDM delivered (ca.pem from the
#                        server's data directory): the only CA corrald trusts for the server
set -eu

server_url=${CORRAL_SERVER_URL:-https://corral.example.com:8443}
token=${CORRAL_ENROLL_TOKEN:-}
trust_root_src=${CORRAL_TRUST_ROOT:-}
fleet_ca_src=${CORRAL_FLEET_CA:-}

umask 077
install -d -m 0755 /etc/corral /etc/corral/corrald.conf.d

# The trust root is public but its integrity is everything: root-owned, world-readable.
if [ -n "$trust_root_src" ]; then
	install -m 0644 -o root -g root "$trust_root_src" /etc/corral/trust.root.new
	mv -f /etc/corral/trust.root.new /etc/corral/trust.root
fi
if [ -n "$fleet_ca_src" ]; then
	install -m 0644 -o root -g root "$fleet_ca_src" /etc/corral/fleet-ca.pem.new
	mv -f /etc/corral/fleet-ca.pem.new /etc/corral/fleet-ca.pem
fi

# The token is a secret: 0600, written atomically, never on a command line of a long-lived
# process. An empty CORRAL_ENROLL_TOKEN keeps the existing file (re-runs after enrollment).
enrolled=no
if command -v corral >/dev/null 2>&1 && corral status 2>/dev/null | grep -q '^enrolled: *yes'; then
	enrolled=yes
fi
if [ -n "$token" ] && [ "$enrolled" = no ]; then
	tmp=$(mktemp -p /etc/corral)
	printf '%s\n' "$token" >"$tmp"
	chmod 0600 "$tmp"
	mv -f "$tmp" /etc/corral/enroll.token
fi

tmp=$(mktemp -p /etc/corral/corrald.conf.d) # not *.conf: corrald ignores it
cat >"$tmp" <<CONF
# Written by the MDM ($(basename "$0")); do not edit by hand.
server_url = $server_url
enroll_token_file = /etc/corral/enroll.token
trust_root_file = /etc/corral/trust.root
server_ca_file = /etc/corral/fleet-ca.pem
CONF
chmod 0644 "$tmp"
mv -f "$tmp" /etc/corral/corrald.conf.d/50-mdm.conf

# Before the package is installed there is no unit yet: the package's postinst starts corrald
# with these files in place. After installation, restart so it enrolls now.
if [ -d /run/systemd/system ] && systemctl cat corrald.service >/dev/null 2>&1; then
	systemctl enable corrald.service >/dev/null 2>&1 || true
	systemctl restart corrald.service
fi
