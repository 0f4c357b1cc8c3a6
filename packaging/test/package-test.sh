#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Package acceptance test (ctest label "privileged": needs root and changes this machine).
#
# From the already built tree BINARY_DIR it builds the three .debs and .rpms with cpack, runs
# lintian on the .debs (no errors allowed), then on this machine's real root:
#   install -> check files, modes, accounts, conffiles, enablement, units, `--version`
#   -> edit config, drop the MDM files, write state -> upgrade to a bumped package version
#   -> check config and state survived -> (if corrald is built) show that a database from a
#   newer corral is refused -> remove (config and state stay) -> purge (state gone).
# The .rpms are checked with rpm -qlp/-qcp/--scripts/--requires (rpmbuild made them; RHEL 9
# is not available here to install them).
#
# The system is left as found: packages purged, test files and the accounts this test
# created removed. It refuses (skips) when a corral installation that it did not make exists.
# Packaging-only tools (lintian, rpm) are installed by scripts/package.sh --deps when missing;
# without network those checks are skipped with the reason printed, the rest still runs.
#
# Usage: package-test.sh SOURCE_DIR BINARY_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
bin=$(cd "$2" && pwd)
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8

skip() {
	echo "SKIP: $*"
	exit 77
}
failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
ok() { echo "ok: $*"; }

# dpkg refuses at once when another package manager holds its lock (an apt-get elsewhere on the
# machine); wait for it, bounded, instead of failing on a transient condition.
dpkg() {
	local i
	for i in $(seq 120); do
		command dpkg "$@" && return 0
		local rc=$?
		fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock >/dev/null 2>&1 || return $rc
		sleep 1
	done
	return 1
}
notice() { echo "note: $*"; }
step() { printf '\n== %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (installs packages into this system)"
for tool in dpkg dpkg-deb cpack; do
	command -v "$tool" >/dev/null 2>&1 || skip "$tool not available"
done
[ -f "$bin/CPackConfig.cmake" ] || skip "$bin has no CPackConfig.cmake (packaging not configured)"

pkgs=(corral-admin corral-agent corral-server)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep 'install ok installed' >/dev/null; }
known() { dpkg-query -W -f='${Status}' "$1" >/dev/null 2>&1 && ! dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep 'not-installed' >/dev/null; }
for p in "${pkgs[@]}"; do
	if known "$p"; then
		skip "$p is already known to dpkg on this machine; not touching an existing install"
	fi
done
for d in /var/lib/corral /var/lib/corral-server /etc/corral; do
	[ -e "$d" ] && skip "$d exists: not touching an existing corral installation"
done

server_pid=
corrald_pid=
made_users=()
for u in corral corral-server; do
	getent passwd "$u" >/dev/null || made_users+=("$u")
done
tmp=$(mktemp -d)
stop_pid() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null && wait "$1" 2>/dev/null
	return 0
}
# stop_corrald: stops the corrald this test started and its worker. Under systemd,
# KillMode=control-group ends both together; here the worker (its child, found by parent pid
# before corrald goes) may linger until its current network wait ends, so it is stopped by
# pid too, with a note of it.
stop_corrald() {
	[ -n "$corrald_pid" ] || return 0
	local children p i
	children=$(pgrep -P "$corrald_pid" 2>/dev/null | paste -sd' ' -)
	stop_pid "$corrald_pid"
	corrald_pid=
	for p in $children; do
		for ((i = 0; i < 30; i++)); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$p" 2>/dev/null; then
			echo "note: corrald's child $p was still running 3 s after corrald exited; stopping it"
			kill "$p" 2>/dev/null
		fi
	done
	return 0
}
cleanup() {
	set +e
	stop_corrald
	stop_pid "$server_pid"
	for p in corral-server corral-agent corral-admin; do
		if known "$p"; then
			dpkg --purge "$p" >/dev/null 2>&1
		fi
	done
	rm -f /etc/corral/corrald.conf.d/50-mdm.conf /etc/corral/trust.root /etc/corral/enroll.token \
		/etc/corral/fleet-ca.pem
	rmdir /etc/corral/corrald.conf.d /etc/corral 2>/dev/null
	for u in "${made_users[@]}"; do
		getent passwd "$u" >/dev/null || continue
		# corrald's worker (user corral) may still be exiting after corrald stopped; userdel
		# refuses an account in use, so wait for its processes to be gone (never kill them
		# by uid: only what this test started, by pid, is stopped above).
		for ((i = 0; i < 100; i++)); do
			pgrep -u "$u" >/dev/null 2>&1 || break
			sleep 0.1
		done
		userdel "$u" >/dev/null 2>&1 || echo "note: could not delete the account $u this test created" >&2
		getent group "$u" >/dev/null && groupdel "$u" >/dev/null 2>&1
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

version=$(sed -n 's/^#define CORRAL_VERSION "\(.*\)"$/\1/p' "$bin/generated/corral_version.h")
[ -n "$version" ] || skip "cannot read the version from $bin/generated/corral_version.h"
upgrade_version="$version+pkgtest1"
echo "project version $version; upgrade test version $upgrade_version"

step "packaging tools"
have_lintian=0
have_rpm=0
# CI (.ci/run -> scripts/test.sh) reaches packaging only through this test, so it installs
# the packaging-only tools here rather than in scripts/deps.sh (which every run pays for).
# CORRAL_PACKAGING_DEPS=0 opts out: the lintian and RPM checks are then skipped, with notice.
if [ "${CORRAL_PACKAGING_DEPS:-1}" != 0 ] &&
	{ ! command -v lintian >/dev/null 2>&1 || ! command -v rpmbuild >/dev/null 2>&1; }; then
	"$src/scripts/package.sh" --deps || notice "could not install packaging tools (offline?)"
fi
command -v lintian >/dev/null 2>&1 && have_lintian=1
command -v rpmbuild >/dev/null 2>&1 && have_rpm=1

step "build packages ($version and $upgrade_version)"
t0=$(date +%s)
cpack --config "$bin/CPackConfig.cmake" -G DEB -B "$tmp/v1" >"$tmp/cpack-v1.log" 2>&1 ||
	{ cat "$tmp/cpack-v1.log"; fail "cpack -G DEB failed"; exit 1; }
cpack --config "$bin/CPackConfig.cmake" -G DEB -B "$tmp/v2" \
	-D CPACK_PACKAGE_VERSION="$upgrade_version" >"$tmp/cpack-v2.log" 2>&1 ||
	{ cat "$tmp/cpack-v2.log"; fail "cpack -G DEB (upgrade version) failed"; exit 1; }
debs_v1=()
debs_v2=()
for p in "${pkgs[@]}"; do
	debs_v1+=("$tmp/v1/${p}_${version}_amd64.deb")
	debs_v2+=("$tmp/v2/${p}_${upgrade_version}_amd64.deb")
done
for f in "${debs_v1[@]}" "${debs_v2[@]}"; do
	[ -f "$f" ] || { fail "missing $f"; ls -l "$tmp/v1" "$tmp/v2"; exit 1; }
done
ok "built ${#debs_v1[@]} + ${#debs_v2[@]} .debs in $(($(date +%s) - t0)) s"

# Which programs this tree packages (targets may still be missing on a branch).
has() { dpkg-deb -c "$1" | grep "\./usr/s\?bin/$2\$" >/dev/null; }
programs=()
for spec in "corral-agent corrald sbin" "corral-agent corrald-worker sbin" \
	"corral-agent corrald-crypto sbin" "corral-agent corral bin" \
	"corral-server corral-server sbin" "corral-admin corral-admin bin"; do
	set -- $spec
	if has "$tmp/v1/${1}_${version}_amd64.deb" "$2"; then
		programs+=("/usr/$3/$2")
	else
		notice "$2 is not built in this tree: $1 ships without it"
	fi
done

step "lintian"
if [ "$have_lintian" -eq 1 ]; then
	# lintian warns when run as root; it still checks everything.
	if lintian --fail-on error --suppress-tags spare-manual-page "${debs_v1[@]}" \
		>"$tmp/lintian.log" 2>&1; then
		ok "lintian: no errors"
	else
		fail "lintian reported errors"
	fi
	grep -v 'root privileges' "$tmp/lintian.log" || true
else
	notice "lintian not available: lintian check skipped"
fi

step "install $version"
dpkg -i "${debs_v1[@]}" >"$tmp/dpkg-install.log" 2>&1 ||
	{ cat "$tmp/dpkg-install.log"; fail "dpkg -i failed"; exit 1; }
for p in "${pkgs[@]}"; do
	v=$(dpkg-query -W -f='${Version}' "$p")
	[ "$v" = "$version" ] && ok "$p $v installed" || fail "$p: installed version '$v'"
done

# mode owner group path
check_mode() {
	local want="$1 $2 $3" got
	got=$(stat -c '%a %U %G' "$4" 2>/dev/null) || { fail "$4 missing"; return; }
	[ "$got" = "$want" ] && ok "$4 $got" || fail "$4 is '$got', want '$want'"
}
check_mode 644 root root /etc/corral/corrald.conf
check_mode 755 root root /etc/corral/corrald.conf.d
check_mode 640 root corral-server /etc/corral/corral-server.conf
check_mode 644 root root /usr/lib/systemd/system/corrald.service
check_mode 644 root root /usr/lib/systemd/system/corral-server.service
check_mode 644 root root /usr/lib/tmpfiles.d/corral.conf
check_mode 700 root root /var/lib/corral
check_mode 755 root root /run/corral
check_mode 700 corral-server corral-server /var/lib/corral-server
for p in "${programs[@]}"; do
	check_mode 755 root root "$p"
done
for u in corral corral-server; do
	shell=$(getent passwd "$u" | cut -d: -f7)
	uid=$(id -u "$u" 2>/dev/null || echo none)
	if [ "$uid" != none ] && [ "$uid" -lt 1000 ] && [ "${shell##*/}" = nologin ]; then
		ok "system user $u (uid $uid, $shell)"
	else
		fail "user $u: uid '$uid' shell '$shell'"
	fi
done
for c in /etc/corral/corrald.conf:corral-agent /etc/corral/corral-server.conf:corral-server; do
	if dpkg-query -W -f='${Conffiles}\n' "${c#*:}" | grep " ${c%%:*} " >/dev/null; then
		ok "${c%%:*} is a conffile of ${c#*:}"
	else
		fail "${c%%:*} is not a conffile of ${c#*:}"
	fi
done
for u in corrald corral-server; do
	state=$(systemctl is-enabled "$u.service" 2>/dev/null || true)
	[ "$state" = enabled ] && ok "$u.service enabled" || fail "$u.service is '$state'"
done
if [ -d /run/systemd/system ]; then
	notice "systemd is PID 1 here: the postinst started the services"
else
	notice "systemd is not PID 1 here: the postinst enabled but did not start the services"
fi
for page in corrald.8 corral.1 corrald.conf.5 corral-server.8 corral-admin.1 corral-policy.5; do
	name=${page%.*}
	sec=${page##*.}
	f=/usr/share/man/man$sec/$page.gz
	if [ -f "$f" ] && { ! command -v man >/dev/null 2>&1 || man -w "$sec" "$name" >/dev/null 2>&1; }; then
		ok "man $sec $name"
	else
		fail "man page $page not installed or not found by man"
	fi
done
for p in "${programs[@]}"; do
	[ "${p##*/}" = corrald-worker ] && continue # internal; started by corrald only
	out=$("$p" --version 2>&1) || fail "$p --version exited non-zero: $out"
	case $out in
	*"$version"*) ok "$p --version: $out" ;;
	*) fail "$p --version prints '$out', want $version" ;;
	esac
done
if command -v systemd-analyze >/dev/null 2>&1; then
	for u in corrald corral-server; do
		exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' /usr/lib/systemd/system/$u.service)
		if [ -x "$exe" ]; then
			out=$(systemd-analyze verify "/usr/lib/systemd/system/$u.service" 2>&1) &&
				[ -z "$out" ] && ok "installed $u.service verifies" ||
				fail "systemd-analyze verify $u.service: $out"
		else
			notice "$exe not packaged: installed $u.service verified by packaging_lint only"
		fi
	done
fi

step "the unit's capability bounding set suffices for enforcement"
# systemd gives corrald (root) exactly CapabilityBoundingSet= as its capabilities; setpriv
# reproduces that for the build's sandbox and BPF tools, with NoNewPrivileges= as well.
caps=$(sed -n 's/^CapabilityBoundingSet=//p' /usr/lib/systemd/system/corrald.service |
	tr ' ' '\n' | sed -n 's/^CAP_\([A-Z_]*\)$/+\L\1/p' | paste -sd, -)
if [ -z "$caps" ] || ! command -v setpriv >/dev/null 2>&1; then
	fail "no CapabilityBoundingSet= in the installed corrald.service (or no setpriv)"
else
	as_unit=(setpriv --bounding-set "-all,$caps" --inh-caps=-all --no-new-privs)
	# A tool that fails under the unit's set runs again with all of root's capabilities: if it
	# fails there too, the environment lacks something (no BPF, no user namespaces) and the
	# capability set is not what is measured; that is reported, not failed. (The unit's set
	# runs first: a full-root run could create state, like a v1 cgroup parent, that would
	# hide a missing capability.)
	cap_check() { # WHAT COMMAND...
		local what=$1 out
		shift
		if out=$(cd / && timeout 60 "${as_unit[@]}" "$@" 2>&1); then
			ok "$what works under the unit's capability set"
		elif (cd / && timeout 60 "$@" >/dev/null 2>&1); then
			fail "$what fails under the unit's capability set: $(tail -n 2 <<<"$out")"
		else
			notice "$what fails even as full root here, capability set not measured: $(tail -n 1 <<<"$out")"
		fi
	}
	sbx=$bin/bin/corral-sbx-run
	if [ -x "$sbx" ]; then
		# from / : the namespace tier only sees what the rules grant, not ctest's cwd
		sbx_args=(--uid 65534 --gid 65534 --read /usr --read /etc --read /proc --exec /usr
			--exec /bin --exec /lib --exec /lib64 --write /dev/null --memory 256M --pids 64
			--cpu 50 --quiet -- /bin/true)
		cap_check "sandbox session (process tier: cgroups, Landlock, seccomp)" "$sbx" "${sbx_args[@]}"
		cap_check "sandbox session (namespace tier)" "$sbx" --namespace "${sbx_args[@]}"
	else
		notice "corral-sbx-run not built: sandbox not checked against the capability set"
	fi
	bench=$bin/bin/bench_net_connect
	if [ -x "$bench" ]; then
		cap_check "BPF egress filter (load, attach, filtered connects)" "$bench" 100
	else
		notice "bench_net_connect not built: BPF egress not checked against the capability set"
	fi
fi

# run_corrald LOG: runs the installed corrald with the installed configuration (as the unit
# would) in the background; sets corrald_pid.
run_corrald() {
	/usr/sbin/corrald >"$1" 2>&1 &
	corrald_pid=$!
}
# wait_log FILE PATTERN SECONDS: 0 once PATTERN appears in FILE.
wait_log() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

step "unattended enrollment: MDM script + installed corral-server and corrald"
enrolled=0
if [ -x /usr/sbin/corrald ] && [ -x /usr/sbin/corral-server ] && [ -x /usr/bin/corral-admin ] &&
	command -v setpriv >/dev/null 2>&1; then
	# The server as its unit runs it: its account, its data directory, its packaged config
	# (0640 root:corral-server: readable through the group only), on loopback.
	# Port 0: the kernel picks a free one; the server logs it.
	setpriv --reuid corral-server --regid corral-server --init-groups \
		/usr/sbin/corral-server --config /etc/corral/corral-server.conf \
		--data-dir /var/lib/corral-server --listen 127.0.0.1:0 --hostname localhost \
		>"$tmp/server.log" 2>&1 &
	server_pid=$!
	port=
	if wait_log "$tmp/server.log" "listening on" 10; then
		port=$(sed -n 's|.*listening on https://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$tmp/server.log")
		ok "corral-server runs as corral-server with the packaged configuration (port $port)"
	else
		fail "corral-server did not start"
		sed 's/^/    /' "$tmp/server.log" | head -n 5
	fi
	S=(--server "https://127.0.0.1:$port" --ca /var/lib/corral-server/ca.pem
		--token-file /var/lib/corral-server/admin.token)
	mkdir -m 0700 "$tmp/keys"
	adm() { /usr/bin/corral-admin "$@" >>"$tmp/admin.log" 2>&1; }
	if adm key generate --name root1 --out "$tmp/keys" &&
		adm key generate --name signer1 --out "$tmp/keys" &&
		adm trust init --root "$tmp/keys/root1.pub" --root-threshold 1 \
			--signer "$tmp/keys/signer1.pub" --signer-threshold 1 \
			--key "$tmp/keys/root1.key" --expires 1d -o "$tmp/trust.root" &&
		adm trust publish "$tmp/trust.root" "${S[@]}" &&
		adm group create canary "${S[@]}" &&
		token=$(/usr/bin/corral-admin enroll-token create --group canary --uses 1 \
			--expires 30m "${S[@]}" 2>>"$tmp/admin.log"); then
		ok "server prepared: trust root published, enrollment token for group canary"
	else
		fail "corral-admin could not prepare the server"
		sed 's/^/    /' "$tmp/admin.log" | tail -n 5
	fi
	# What an MDM does: run the example script with its values.
	CORRAL_SERVER_URL="https://127.0.0.1:$port" CORRAL_ENROLL_TOKEN="${token:-}" \
		CORRAL_TRUST_ROOT="$tmp/trust.root" CORRAL_FLEET_CA=/var/lib/corral-server/ca.pem \
		sh "$src/packaging/examples/mdm/corral-mdm-enroll.sh" ||
		fail "the MDM example script failed"
	check_mode 600 root root /etc/corral/enroll.token
	check_mode 644 root root /etc/corral/trust.root
	check_mode 644 root root /etc/corral/fleet-ca.pem
	check_mode 644 root root /etc/corral/corrald.conf.d/50-mdm.conf
	run_corrald "$tmp/corrald-enroll.log"
	if wait_log "$tmp/corrald-enroll.log" "enrolled as" 15; then
		ok "corrald $(grep -o 'enrolled as .*' "$tmp/corrald-enroll.log") on its first start"
		enrolled=1
	else
		fail "corrald did not enroll"
		sed 's/^/    /' "$tmp/corrald-enroll.log" | head -n 8
	fi
	if [ ! -s /etc/corral/enroll.token ]; then
		ok "the used enrollment token is gone from the device"
	else
		fail "enroll.token still holds the token after enrollment"
	fi
	# The MDM runs its script again (periodic compliance runs): an enrolled device, asked
	# through `corral status` on the running daemon, gets no new token.
	CORRAL_SERVER_URL="https://127.0.0.1:$port" CORRAL_ENROLL_TOKEN=unused.token \
		sh "$src/packaging/examples/mdm/corral-mdm-enroll.sh" ||
		fail "the MDM example script failed on its second run"
	[ ! -e /etc/corral/enroll.token ] && ok "MDM script re-run leaves no token on an enrolled device" ||
		fail "MDM script re-run wrote a token to an enrolled device"
	stop_corrald
	n=$(/usr/bin/corral-admin device list --group canary "${S[@]}" 2>/dev/null | grep -c '^d-' || true)
	[ "$n" = 1 ] && ok "the server lists the device in group canary" ||
		fail "server lists $n devices in canary"
	stop_pid "$server_pid"
	server_pid=
else
	notice "corrald, corral-server or corral-admin not built (or no setpriv): enrollment not run"
fi

step "local changes and fleet files before the upgrade"
printf '\n# local edit by the package test\nlog_level = debug\n' >>/etc/corral/corrald.conf
if [ "$enrolled" -eq 0 ]; then
	install -m 0644 "$src/packaging/examples/mdm/50-mdm.conf" \
		/etc/corral/corrald.conf.d/50-mdm.conf
fi
echo "state-before-upgrade" >/var/lib/corral/pkgtest.marker
echo "state-before-upgrade" >/var/lib/corral-server/pkgtest.marker

step "upgrade to $upgrade_version"
dpkg -i --force-confold "${debs_v2[@]}" >"$tmp/dpkg-upgrade.log" 2>&1 ||
	{ cat "$tmp/dpkg-upgrade.log"; fail "upgrade failed"; exit 1; }
for p in "${pkgs[@]}"; do
	v=$(dpkg-query -W -f='${Version}' "$p")
	[ "$v" = "$upgrade_version" ] && ok "$p upgraded to $v" || fail "$p: version '$v' after upgrade"
done
grep -q '^log_level = debug$' /etc/corral/corrald.conf && ok "local conffile edit kept" ||
	fail "local edit of corrald.conf lost on upgrade"
[ -f /etc/corral/corrald.conf.d/50-mdm.conf ] && ok "MDM drop-in kept" || fail "MDM drop-in lost"
for d in /var/lib/corral /var/lib/corral-server; do
	grep -q state-before-upgrade "$d/pkgtest.marker" 2>/dev/null && ok "$d kept on upgrade" ||
		fail "$d state lost on upgrade"
done
check_mode 700 root root /var/lib/corral
check_mode 640 root corral-server /etc/corral/corral-server.conf
if [ "$enrolled" -eq 1 ]; then
	# The upgraded corrald starts on the kept database: same identity, no second enrollment
	# (the server is down now; it just retries in the background).
	run_corrald "$tmp/corrald-upgraded.log"
	wait_log "$tmp/corrald-upgraded.log" "started" 10 || true
	sleep 1
	stop_corrald
	if grep -q "started" "$tmp/corrald-upgraded.log" &&
		! grep -q "enrolling" "$tmp/corrald-upgraded.log"; then
		ok "upgraded corrald resumes with its enrollment (no re-enrollment)"
	else
		fail "upgraded corrald did not resume its enrollment"
		sed 's/^/    /' "$tmp/corrald-upgraded.log" | head -n 8
	fi
fi

step "downgrade: a database from a newer corral is refused"
if [ -x /usr/sbin/corrald ] && command -v sqlite3 >/dev/null 2>&1; then
	# A newer corral would have left its database in /var/lib/corral with a higher schema
	# version: make it so, then start this (older) corrald on it, as the unit would.
	dg_args=() # enrolled: the installed configuration, as the unit runs it
	if [ "$enrolled" -eq 0 ]; then
		# no enrollment ran: let corrald create its database in offline mode first
		mkdir -m 0700 -p "$tmp/keys"
		/usr/bin/corral-admin key generate --name r --out "$tmp/keys" >/dev/null 2>&1 || true
		/usr/bin/corral-admin trust init --root "$tmp/keys/r.pub" --root-threshold 1 \
			--signer "$tmp/keys/r.pub" --signer-threshold 1 --key "$tmp/keys/r.key" \
			--expires 1d -o "$tmp/trust.root" >/dev/null 2>&1 || true
		dg_args=(--config /dev/null --config-dir "$tmp" --offline --trust "$tmp/trust.root"
			--device-id pkgtest --groups pkgtest)
		timeout 5 /usr/sbin/corrald "${dg_args[@]}" >"$tmp/corrald-1.log" 2>&1 || true
	fi
	db=$(find /var/lib/corral -maxdepth 1 -type f -exec sh -c \
		'head -c 15 "$1" | grep -q "SQLite format 3" && echo "$1"' _ {} \; | head -n 1)
	if [ -z "$db" ]; then
		fail "no corrald database in /var/lib/corral"
	else
		sqlite3 "$db" 'PRAGMA user_version = 9999;'
		rc=0
		timeout 10 /usr/sbin/corrald "${dg_args[@]}" >"$tmp/corrald-2.log" 2>&1 || rc=$?
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] &&
			grep -q "newer than this program supports" "$tmp/corrald-2.log"; then
			ok "corrald refuses a newer database (exit $rc): $(grep -m1 -o 'database schema.*' "$tmp/corrald-2.log")"
		else
			fail "corrald did not refuse a newer database (exit $rc)"
			sed 's/^/    /' "$tmp/corrald-2.log" | head -n 5
		fi
	fi
else
	notice "corrald not built in this tree (or no sqlite3): downgrade refusal not shown here;"
	notice "lib/db's db_open refuses a newer schema (tests/unit/db covers it)"
fi
# The package manager itself allows going back; the data directory survives it.
dpkg -i --force-confold "${debs_v1[@]}" >"$tmp/dpkg-downgrade.log" 2>&1 ||
	{ cat "$tmp/dpkg-downgrade.log"; fail "package downgrade failed"; }
grep -q state-before-upgrade /var/lib/corral/pkgtest.marker 2>/dev/null &&
	ok "package downgrade to $version keeps /var/lib/corral" || fail "state lost on downgrade"

step "remove: configuration and state stay"
dpkg --remove corral-server corral-agent corral-admin >"$tmp/dpkg-remove.log" 2>&1 ||
	{ cat "$tmp/dpkg-remove.log"; fail "dpkg --remove failed"; }
for p in "${programs[@]}" /usr/lib/systemd/system/corrald.service; do
	[ -e "$p" ] && fail "$p still present after remove" || true
done
[ -f /etc/corral/corrald.conf ] && ok "corrald.conf kept on remove" || fail "corrald.conf gone on remove"
[ -f /var/lib/corral/pkgtest.marker ] && ok "/var/lib/corral kept on remove" ||
	fail "/var/lib/corral gone on remove"
[ -f /var/lib/corral-server/pkgtest.marker ] && ok "/var/lib/corral-server kept on remove" ||
	fail "/var/lib/corral-server gone on remove"

step "purge: state deleted"
dpkg --purge corral-server corral-agent corral-admin >"$tmp/dpkg-purge.log" 2>&1 ||
	{ cat "$tmp/dpkg-purge.log"; fail "dpkg --purge failed"; }
for d in /var/lib/corral /var/lib/corral-server /etc/corral/corrald.conf \
	/etc/corral/corral-server.conf; do
	[ -e "$d" ] && fail "$d still present after purge" || ok "$d gone after purge"
done
[ -f /etc/corral/corrald.conf.d/50-mdm.conf ] && ok "MDM-owned drop-in left to the MDM" ||
	fail "purge deleted the MDM's file"
state=$(systemctl is-enabled corrald.service 2>&1 || true)
case $state in
enabled*) fail "corrald.service still enabled after purge" ;;
*) ok "corrald.service no longer enabled ($state)" ;;
esac
for p in "${pkgs[@]}"; do
	known "$p" && fail "$p still known to dpkg after purge" || true
done

step "RPM"
if [ "$have_rpm" -eq 1 ]; then
	cpack --config "$bin/CPackConfig.cmake" -G RPM -B "$tmp/rpm" >"$tmp/cpack-rpm.log" 2>&1 ||
		{ cat "$tmp/cpack-rpm.log"; fail "cpack -G RPM failed"; }
	want_agent="/etc/corral/corrald.conf /usr/lib/systemd/system/corrald.service
		/usr/lib/tmpfiles.d/corral.conf /usr/share/man/man8/corrald.8.gz"
	want_server="/etc/corral/corral-server.conf /usr/lib/systemd/system/corral-server.service
		/usr/lib/tmpfiles.d/corral-server.conf /usr/share/man/man8/corral-server.8.gz"
	want_admin="/usr/share/man/man1/corral-admin.1.gz /usr/share/man/man5/corral-policy.5.gz"
	for p in "${programs[@]}"; do
		case $p in
		*/corrald | */corrald-worker | */corrald-crypto | */corral) want_agent="$want_agent $p" ;;
		*/corral-server) want_server="$want_server $p" ;;
		*/corral-admin) want_admin="$want_admin $p" ;;
		esac
	done
	for c in agent server admin; do
		f=$(ls "$tmp/rpm"/corral-$c-"$version"-1.*.rpm 2>/dev/null | head -n 1)
		[ -n "$f" ] || { fail "no corral-$c .rpm"; continue; }
		list=$(rpm -qlp "$f" 2>/dev/null)
		want_var=want_$c
		missing=
		for w in ${!want_var}; do
			grep -qx "$w" <<<"$list" || missing="$missing $w"
		done
		[ -z "$missing" ] && ok "$(basename "$f"): $(wc -l <<<"$list") files, all expected present" ||
			fail "$(basename "$f") lacks:$missing"
		if grep -q '^/etc/corral$' <<<"$list"; then
			fail "$(basename "$f") claims /etc/corral itself"
		fi
	done
	f=$(ls "$tmp/rpm"/corral-agent-*.rpm | head -n 1)
	rpm -qcp "$f" | grep -x /etc/corral/corrald.conf >/dev/null && ok "corrald.conf is %config in the rpm" ||
		fail "corrald.conf is not %config in the rpm"
	rpm -qp --scripts "$f" | grep 'useradd' >/dev/null && ok "rpm %pre creates the worker account" ||
		fail "rpm scriptlets do not create the worker account"
	rpm -qp --requires "$f" | grep -x libseccomp >/dev/null && ok "rpm requires the RHEL 9 library packages" ||
		fail "rpm requires lack libseccomp"
else
	notice "rpmbuild not available: RPM check skipped"
fi

echo
if [ "$failures" -ne 0 ]; then
	echo "package test: $failures failure(s)"
	exit 1
fi
echo "package test: all checks passed"
