#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Static checks of what the packages ship, without root and without installing anything:
#   - every man page renders with no groff/man warnings (what lintian checks too), and every
#     page named in a unit's Documentation= exists;
#   - both systemd units pass `systemd-analyze verify`, and their exposure scores stay within
#     the bounds argued in the unit files (`systemd-analyze security --offline`);
#   - maintainer scripts and examples parse (sh -n), the Ansible playbook is valid YAML;
#   - the RPM scriptlets, run against stub commands, make the calls rpm expects for install,
#     upgrade and erase (there is no RHEL here to run them for real).
# A check whose tool is missing is reported and skipped; if every check was skipped the test
# exits 77. Usage: lint.sh SOURCE_DIR BINARY_DIR
set -uo pipefail
src=$1
bin=$2
pkg=$src/packaging
failed=0
ran=0
skipped=()
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "FAIL: $*" >&2
	failed=1
}
pass() {
	echo "ok: $*"
	ran=$((ran + 1))
}

# --- man pages ----------------------------------------------------------------------------
mandir=$bin/packaging/generated/man
if ! command -v man >/dev/null 2>&1 || ! command -v groff >/dev/null 2>&1; then
	skipped+=("man pages: man/groff not installed")
elif [ ! -d "$mandir" ]; then
	fail "man pages not generated in $mandir (configure the tree first)"
else
	n=0
	for page in "$mandir"/*.[1-8]; do
		n=$((n + 1))
		if grep -q '@PROJECT_VERSION@' "$page"; then
			fail "$(basename "$page"): version not substituted"
		fi
		# Same invocation as lintian's manpage check: any output on stderr is a warning.
		warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
			man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null)
		if [ -n "$warnings" ]; then
			fail "$(basename "$page"): $warnings"
		fi
		# The version reaches the rendered footer: it came from project(VERSION).
		if ! MANWIDTH=80 man -l "$page" 2>/dev/null | tail -n 2 | grep -q "corral [0-9]"; then
			fail "$(basename "$page"): no 'corral VERSION' in the footer"
		fi
		sec=${page##*.}
		mkdir -p "$tmp/man/man$sec"
		cp "$page" "$tmp/man/man$sec/"
	done
	if [ "$n" -ne 6 ]; then
		fail "expected 6 man pages, found $n"
	fi
	[ "$failed" -eq 0 ] && pass "$n man pages render without warnings"
fi

# --- systemd units ------------------------------------------------------------------------
if ! command -v systemd-analyze >/dev/null 2>&1; then
	skipped+=("units: systemd-analyze not installed")
else
	mkdir -p "$tmp/units"
	# verify insists that ExecStart= names an executable: point it at one for the check.
	for unit in corrald corral-server; do
		sed -E 's#^ExecStart=/usr/sbin/[a-z-]+#ExecStart=/bin/true#' \
			"$pkg/systemd/$unit.service" >"$tmp/units/$unit.service"
	done
	if [ -d "$tmp/man" ]; then
		out=$(MANPATH=$tmp/man systemd-analyze verify --man=yes \
			"$tmp/units/corrald.service" "$tmp/units/corral-server.service" 2>&1)
	else
		out=$(systemd-analyze verify --man=no \
			"$tmp/units/corrald.service" "$tmp/units/corral-server.service" 2>&1)
	fi
	if [ -n "$out" ]; then
		fail "systemd-analyze verify: $out"
	else
		pass "units verify (directives, Documentation= man pages)"
	fi
	# Exposure bounds (0-100 in tenths): the server is fully locked down; corrald keeps what
	# enforcement needs (reasons in the unit). A regression in either raises the score.
	for spec in "corral-server 20" "corrald 60"; do
		set -- $spec
		score=$(systemd-analyze security --offline=yes "$tmp/units/$1.service" 2>/dev/null |
			sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
		if [ -z "$score" ]; then
			skipped+=("security score of $1: this systemd-analyze cannot score offline")
			continue
		fi
		if awk -v s="$score" -v max="$2" 'BEGIN { exit !(s * 10 <= max) }'; then
			pass "$1.service exposure $score <= $(awk -v m="$2" 'BEGIN { print m / 10 }')"
		else
			fail "$1.service exposure $score exceeds $(awk -v m="$2" 'BEGIN { print m / 10 }')"
		fi
	done
	# The unit must not claim sd_notify support the daemon lacks.
	if grep -Eq '^(Type=notify|WatchdogSec=)' "$pkg/systemd/"*.service; then
		fail "a unit uses Type=notify/WatchdogSec= but the daemons do not speak sd_notify"
	fi
fi

# --- scripts and examples -----------------------------------------------------------------
n=0
for f in "$pkg"/deb/*/postinst "$pkg"/deb/*/prerm "$pkg"/deb/*/postrm "$pkg"/rpm/*.sh \
	"$pkg"/examples/mdm/*.sh "$pkg"/test/*.sh "$src"/scripts/package.sh; do
	[ -e "$f" ] || continue
	n=$((n + 1))
	case $f in
	*/test/*.sh | */scripts/*.sh) shell=bash ;;
	*) shell=sh ;; # maintainer scripts run under /bin/sh (dash on Debian)
	esac
	if ! out=$($shell -n "$f" 2>&1); then
		fail "$f does not parse: $out"
	fi
done
pass "$n shell scripts parse"
if python3 -c 'import yaml' 2>/dev/null; then
	if python3 -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert d[0]["tasks"]' \
		"$pkg/examples/ansible/corral-agent.yml"; then
		pass "Ansible playbook is valid YAML with tasks"
	else
		fail "Ansible playbook does not parse"
	fi
else
	skipped+=("Ansible playbook: python3-yaml not installed")
fi

# --- RPM scriptlets: no RHEL here, so run them against stub commands and compare the calls
# they make for each $1 (1 = install, 2 = upgrade, 0 = erase) with what rpm expects.
stub=$tmp/stub
mkdir -p "$stub"
for cmd in systemctl systemd-tmpfiles useradd; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\n' "$cmd" "$tmp" >"$stub/$cmd"
	chmod +x "$stub/$cmd"
done
printf '#!/bin/sh\nexit 2\n' >"$stub/getent" # no account exists yet
chmod +x "$stub/getent"
scriptlet_calls() { # COMPONENT PHASE ARG
	rm -f "$tmp/calls"
	PATH=$stub:$PATH sh "$pkg/rpm/$1-$2.sh" "$3" >/dev/null 2>&1 || echo "exit-status $?"
	[ -f "$tmp/calls" ] && sed 's/ *$//' "$tmp/calls" | paste -sd';' - || true
}
rpm_ok=1
expect() { # COMPONENT PHASE ARG EXPECTED-CALLS
	local got
	got=$(scriptlet_calls "$1" "$2" "$3")
	if [ "$got" != "$4" ]; then
		fail "rpm $1 %$2 $3: calls '$got', want '$4'"
		rpm_ok=0
	fi
}
for c in agent server; do
	case $c in
	agent) unit=corrald.service tmpf=corral.conf user=corral ;;
	server) unit=corral-server.service tmpf=corral-server.conf user=corral-server ;;
	esac
	# without systemd as PID 1 (this machine, image builds): no start/stop/reload
	expect $c pre 1 "useradd --system --user-group --no-create-home --home-dir $(
		[ $c = agent ] && echo /nonexistent || echo /var/lib/corral-server) --shell /sbin/nologin --comment $(
		[ $c = agent ] && echo 'corral network worker' || echo 'corral management server') $user"
	expect $c post 1 "systemd-tmpfiles --create $tmpf;systemctl enable $unit"
	expect $c post 2 "systemd-tmpfiles --create $tmpf"
	expect $c preun 0 "systemctl disable $unit"
	expect $c preun 1 ""
	expect $c postun 0 ""
	expect $c postun 1 ""
done
[ "$rpm_ok" -eq 1 ] && pass "RPM scriptlets make the expected calls for install, upgrade, erase"

for s in "${skipped[@]}"; do
	echo "skipped: $s"
done
if [ "$failed" -ne 0 ]; then
	exit 1
fi
if [ "$ran" -eq 0 ]; then
	echo "all checks skipped"
	exit 77
fi
exit 0
