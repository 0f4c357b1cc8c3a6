#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# corral end-to-end demo (the README's first command; docs/quickstart.md walks the same story).
#
#   scripts/demo.sh [--keep] [--check]
#
# 1. installs what is missing and builds (Release); each phase prints its duration
# 2. starts corral-server on a fresh data dir; creates offline root and signer keys (two signers,
#    threshold 2), the trust root, group `engineering` and an enrollment token
# 3. starts corrald configured as an MDM would (drop-in config + token file + trust root)
# 4. signs schema/examples/strict-coding-agent.json with both signers, publishes it, and shows
#    the time from publish to "applied" on the endpoint
# 5. as an unprivileged demo user, runs an "agent" under `corral run` that tries allowed and
#    forbidden things; prints action / expected / result
# 6. shows the violations (corral-admin events query) and the device's compliance; --check
#    requires the agent's ~/.ssh read among them as a FILESYSTEM violation
# 7. tries a tampered bundle and a rollback: both refused with their reason codes
#
# Isolation: everything runs inside two network namespaces the demo creates. `cdemo-ep` holds
# corral-server, corrald and the agent sessions; `cdemo-lab` holds the "internet" (a TLS server
# answering as allowed.test and evil.test, and a DNS server), joined to cdemo-ep by a veth pair
# on documentation addresses (192.0.2.0/24) with no other route. A second veth pair
# (198.51.100.0/30) lets this host's browser reach the console. Nothing can leave the machine.
#
# --keep leaves everything running (the console URL and login are printed); otherwise the demo
# stops everything and cleans up. --check exits non-zero when any outcome differs from the
# expectation (CI runs the demo this way).
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD

keep=0
check=0
for a in "$@"; do
	case "$a" in
	--keep) keep=1 ;;
	--check) check=1 ;;
	-h | --help)
		sed -n '3,30p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "demo: unknown option $a (try --help)" >&2
		exit 2
		;;
	esac
done
[ "$(id -u)" -eq 0 ] || {
	echo "demo: run as root (it creates network namespaces, a demo user and cgroups)" >&2
	exit 1
}

if [ -t 1 ]; then
	B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'
else
	B='' G='' R='' D='' N=''
fi
now_ms() { date +%s%3N; }
phase_start=0
phase() {
	phase_end
	phase_name=$1
	phase_start=$(now_ms)
	printf '%s==> %s%s\n' "$B" "$1" "$N"
}
phase_end() {
	if [ "$phase_start" -ne 0 ]; then
		printf '%s    (%s: %d ms)%s\n' "$D" "$phase_name" $(($(now_ms) - phase_start)) "$N"
	fi
	phase_start=0
}
die() {
	printf '%sdemo: %s%s\n' "$R" "$*" "$N" >&2
	[ -n "${logs:-}" ] && printf 'logs: %s\n' "$logs" >&2
	exit 1
}

EP=cdemo-ep
LAB=cdemo-lab
DEMO_USER=corral-demo
work=/var/tmp/corral-demo
logs=$work/logs
bin=$top/build/demo/bin
pids=()

cleanup() {
	set +e
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	ip netns pids $EP 2>/dev/null | xargs -r kill -KILL 2>/dev/null
	ip netns pids $LAB 2>/dev/null | xargs -r kill -KILL 2>/dev/null
	ip link del cdh0 2>/dev/null
	ip netns del $EP 2>/dev/null
	ip netns del $LAB 2>/dev/null
	rm -rf /etc/netns/$EP /etc/netns/$LAB
}

# ---------------------------------------------------------------------------------------------
phase "dependencies"
scripts/deps.sh
for p in dnsmasq-base passwd; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
done

phase "build (Release)"
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=Release -DCORRAL_BUILD_TESTS=OFF >/dev/null
cmake --build build/demo -j "$(nproc)" >/dev/null || die "build failed (cmake --build build/demo)"
cc -O2 -o build/demo/demo-io-uring scripts/demo/io_uring_probe.c

# ---------------------------------------------------------------------------------------------
phase "network namespaces (nothing leaves the machine)"
cleanup
rm -rf "$work"
mkdir -p "$logs" "$work/keys" "$work/etc/corral/corrald.conf.d"
chmod 0700 "$work/keys"
ip netns add $EP
ip netns add $LAB
ip -n $EP link set lo up
ip -n $LAB link set lo up
ip link add cde0 netns $EP type veth peer name cdl0 netns $LAB
ip -n $EP addr add 192.0.2.1/24 dev cde0
ip -n $LAB addr add 192.0.2.10/24 dev cdl0
ip -n $LAB addr add 192.0.2.20/24 dev cdl0
ip -n $LAB addr add 192.0.2.53/24 dev cdl0
ip -n $EP link set cde0 up
ip -n $LAB link set cdl0 up
ip link add cdh0 type veth peer name cdh1 netns $EP
ip addr add 198.51.100.1/30 dev cdh0
ip -n $EP addr add 198.51.100.2/30 dev cdh1
ip link set cdh0 up
ip -n $EP link set cdh1 up
trap cleanup EXIT
# Enter only the endpoint's network namespace: `ip netns exec` would also remount /sys in a new
# mount namespace, hiding the cgroup hierarchies corrald needs (it would refuse, fail closed).
epns() { nsenter --net=/run/netns/$EP "$@"; }

# The lab: one TLS server answering on every lab address (so allowed.test and evil.test), and a
# DNS server knowing both names.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=allowed.test -addext "subjectAltName=DNS:allowed.test,DNS:evil.test" \
	-keyout "$work/lab.key" -out "$work/lab.pem" >/dev/null 2>&1
ip netns exec $LAB openssl s_server -quiet -www -accept 443 -cert "$work/lab.pem" \
	-key "$work/lab.key" >"$logs/lab-https.log" 2>&1 &
pids+=($!)
ip netns exec $LAB dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces \
	--listen-address=192.0.2.53 --address=/allowed.test/192.0.2.10 \
	--address=/evil.test/192.0.2.20 --log-facility="$logs/lab-dns.log" >/dev/null 2>&1 &
pids+=($!)

# ---------------------------------------------------------------------------------------------
phase "corral-server on 198.51.100.2:8443 (embedded SQLite)"
srv=$work/server
mkdir -p "$srv"
epns "$bin/corral-server" --data-dir "$srv" --listen 198.51.100.2:8443 \
	--hostname corral.demo >"$logs/corral-server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$srv/admin.token" ] && [ -s "$srv/ca.pem" ] && break; sleep 0.1; done
[ -s "$srv/admin.token" ] || die "corral-server did not start"
export CORRAL_SERVER=https://198.51.100.2:8443 CORRAL_TOKEN_FILE=$srv/admin.token CORRAL_CA=$srv/ca.pem
admin() { "$bin/corral-admin" "$@"; }
for _ in $(seq 50); do admin group list >/dev/null 2>&1 && break; sleep 0.1; done

phase "offline keys: 2 root keys (threshold 2), 2 policy signers (threshold 2)"
for k in root-1 root-2 alice bob; do
	printf '    %-7s key id %s\n' "$k" "$(admin key generate --name $k --out "$work/keys" 2>/dev/null)"
done
admin trust init --root "$work/keys/root-1.pub" "$work/keys/root-2.pub" --root-threshold 2 \
	--signer "$work/keys/alice.pub" "$work/keys/bob.pub" --signer-threshold 2 --expires 365d \
	--key "$work/keys/root-1.key" "$work/keys/root-2.key" -o "$work/trust.root" >/dev/null
admin trust publish "$work/trust.root" >/dev/null
echo "    trust root v1 published (the server stores it; it holds no signing key)"

phase "group engineering + enrollment token"
admin group create engineering >/dev/null
admin enroll-token create --group engineering --uses 1 --expires 1h >"$work/enroll.token.out" 2>/dev/null
# The command prints the token alone on its last line.
tail -n 1 "$work/enroll.token.out" >"$work/etc/corral/enroll.token"
chmod 0600 "$work/etc/corral/enroll.token"
echo "    single-use token for group engineering written to $work/etc/corral/enroll.token"

# ---------------------------------------------------------------------------------------------
phase "corrald, configured the way an MDM would (drop-in + token file + trust root)"
cp "$work/trust.root" "$work/etc/corral/trust.root"
cat >"$work/etc/corral/corrald.conf" <<EOF
# corrald.conf shipped by the package (defaults)
log_level = info
EOF
cat >"$work/etc/corral/corrald.conf.d/50-mdm.conf" <<EOF
# dropped by the MDM
server_url = https://198.51.100.2:8443
server_ca_file = $srv/ca.pem
enroll_token_file = $work/etc/corral/enroll.token
trust_root_file = $work/etc/corral/trust.root
data_dir = $work/corrald
socket = $work/corrald.sock
poll_wait = 60s
# the lab's DNS server, and its documentation range as the reachable "internet"
egress_resolver = 192.0.2.53
egress_allow_private = 192.0.2.0/24
EOF
mkdir -p "$work/corrald"
epns "$bin/corrald" --config "$work/etc/corral/corrald.conf" \
	--config-dir "$work/etc/corral/corrald.conf.d" >"$logs/corrald.log" 2>&1 &
pids+=($!)
export CORRAL_SOCKET=$work/corrald.sock
corral() { "$bin/corral" "$@"; }
for _ in $(seq 100); do
	corral status --json 2>/dev/null | grep -q '"enrolled": *true' && break
	sleep 0.1
done
corral status --json 2>/dev/null | grep -q '"enrolled": *true' || die "corrald did not enroll"
device=$(corral status --json | sed -n 's/.*"device_id": *"\([^"]*\)".*/\1/p' | head -1)
if [ -s "$work/etc/corral/enroll.token" ]; then tok="still present"; else tok="consumed (removed by corrald)"; fi
echo "    enrolled as $device; enrollment token $tok"

# ---------------------------------------------------------------------------------------------
phase "sign strict-coding-agent.json (alice + bob, 2 of 2) and publish"
policy=schema/examples/strict-coding-agent.json
admin policy sign "$policy" --version 2 --expires 30d --target group:engineering \
	--key "$work/keys/alice.key" "$work/keys/bob.key" --trust "$work/trust.root" \
	-o "$work/policy-v2.bundle" >"$logs/sign.log" 2>&1 || die "signing failed (see $logs/sign.log)"
t0=$(now_ms)
admin policy publish "$work/policy-v2.bundle" --group engineering | sed 's/^/    /'
applied=""
for _ in $(seq 300); do
	if corral status --json 2>/dev/null | grep -q '"policy_version": *2'; then
		applied=$(($(now_ms) - t0))
		break
	fi
	sleep 0.01
done
[ -n "$applied" ] || die "the endpoint did not apply version 2"
echo "    publish -> applied on the endpoint: ${applied} ms (long-poll, verified on the device)"

# ---------------------------------------------------------------------------------------------
phase "an agent under corral run, as unprivileged user $DEMO_USER"
id "$DEMO_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$DEMO_USER"
home=$(getent passwd "$DEMO_USER" | cut -d: -f6)
install -d -o "$DEMO_USER" -m 0700 "$home/.ssh" "$home/project"
echo "-----BEGIN OPENSSH PRIVATE KEY----- (demo, not a real key)" >"$home/.ssh/id_ed25519"
chown "$DEMO_USER:" "$home/.ssh/id_ed25519"
chmod 0600 "$home/.ssh/id_ed25519"
echo "hello from the project" >"$home/project/README"
chown "$DEMO_USER:" "$home/project/README"
install -m 0755 build/demo/demo-io-uring /usr/local/libexec/corral-demo-io-uring 2>/dev/null ||
	{ mkdir -p /usr/local/libexec && install -m 0755 build/demo/demo-io-uring /usr/local/libexec/corral-demo-io-uring; }
install -o "$DEMO_USER" -m 0755 scripts/demo/agent.sh "$home/project/agent.sh"
results=$work/agent-results.txt
(cd "$home/project" && epns setpriv --reuid="$DEMO_USER" --regid="$DEMO_USER" \
	--init-groups env -i HOME="$home" USER="$DEMO_USER" PATH=/usr/bin:/bin LANG=C.UTF-8 \
	CORRAL_SOCKET="$CORRAL_SOCKET" "$bin/corral" run -- /bin/bash ./agent.sh) \
	>"$results" 2>"$logs/agent.stderr" || true
fail=0
printf '    %-48s %-9s %-9s\n' ACTION EXPECTED RESULT
while IFS='|' read -r action expected result; do
	[ -n "$action" ] || continue
	if [ "$expected" = "$result" ]; then c=$G; else c=$R; fail=1; fi
	printf '    %-48s %-9s %s%-9s%s\n' "$action" "$expected" "$c" "$result" "$N"
done <"$results"
[ -s "$results" ] || { echo "    the agent produced no results (see $logs/agent.stderr)"; fail=1; }

# ---------------------------------------------------------------------------------------------
phase "what the fleet sees"
corral flush >/dev/null 2>&1 || true
echo "    corral-admin events query --device $device --kind violation"
admin events query --device "$device" --kind violation --limit 20 | sed 's/^/      /'
# Landlock denials reach the fleet through kernel audit (corrald's fsaudit.c): the agent's
# read of ~/.ssh/id_ed25519 must be there as a FILESYSTEM violation.
if admin events query --device "$device" --kind violation --limit 500 |
	grep -qE 'VIOLATION_KIND_FILESYSTEM[^}]*\.ssh/id_ed25519'; then
	echo "    filesystem violation for ~/.ssh/id_ed25519 (Landlock, via kernel audit): reported"
else
	printf '    %sfilesystem violation for ~/.ssh/id_ed25519: missing%s\n' "$R" "$N"
	fail=1
fi
echo "    corral-admin device list"
admin device list | sed 's/^/      /'

# ---------------------------------------------------------------------------------------------
phase "attacks on the control plane"
cp "$work/policy-v2.bundle" "$work/tampered.bundle"
# Flip one byte inside the signed policy text ("coding-agent" -> "coding-agenT").
off=$(grep -obUa 'coding-agent' "$work/tampered.bundle" | head -1 | cut -d: -f1)
printf 'T' | dd of="$work/tampered.bundle" bs=1 seek=$((off + 11)) conv=notrunc status=none
tampered=$(admin policy publish "$work/tampered.bundle" --group engineering 2>&1 | head -1 || true)
printf '    tampered bundle: %s\n' "$tampered"
admin policy sign "$policy" --version 1 --expires 30d --target group:engineering \
	--key "$work/keys/alice.key" "$work/keys/bob.key" -o "$work/policy-v1.bundle" >/dev/null 2>&1
rolled=$(admin policy publish "$work/policy-v1.bundle" --group engineering 2>&1 | head -1 || true)
printf '    rollback to v1:  %s\n' "$rolled"
case "$tampered" in *bad-signature*) ;; *) fail=1 ;; esac
case "$rolled" in *rollback*) ;; *) fail=1 ;; esac
phase_end

echo
echo "logs: $logs"
printf 'console: https://198.51.100.2:8443/ (fleet CA %s); log in with the admin token in %s\n' \
	"$srv/ca.pem" "$srv/admin.token"
if [ "$keep" -eq 1 ]; then
	trap - EXIT
	printf '%sEverything is still running (--keep).%s Stop it with:\n' "$B" "$N"
	printf '  kill %s; ip netns del %s; ip netns del %s; ip link del cdh0\n' "${pids[*]}" $EP $LAB
else
	echo "(rerun with --keep to leave the server, corrald and the lab running and open the console)"
fi
if [ "$fail" -ne 0 ]; then
	printf '%sdemo: some outcomes differ from the expectation%s\n' "$R" "$N"
	[ "$check" -eq 1 ] && exit 1
fi
exit 0
