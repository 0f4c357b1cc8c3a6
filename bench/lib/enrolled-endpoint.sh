# SPDX-License-Identifier: Apache-2.0
# Sourced by the endpoint benches: a corral-server on loopback (embedded SQLite), a trust root,
# group eng, policy version 1 published, and a corrald from $bin enrolled with it that shows
# that policy. Needs: bin (the build's bin directory), and the repository as the working
# directory. Sets: tmp (removed on exit), spid, dpid, wpid (the worker), admin, CORRAL_*.
tmp=$(mktemp -d)
cleanup() {
	[ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null || true
	[ -n "${spid:-}" ] && kill "$spid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

echo '{}' >"$tmp/server.json"
"$bin/corral-server" --data-dir "$tmp/srv" --listen 127.0.0.1:0 --config "$tmp/server.json" \
	2>"$tmp/server.log" &
spid=$!
for _ in $(seq 100); do
	port=$(grep -o 'listening on https://127.0.0.1:[0-9]*' "$tmp/server.log" 2>/dev/null |
		sed 's/.*://' || true)
	[ -n "$port" ] && break
	sleep 0.1
done
export CORRAL_SERVER=https://127.0.0.1:$port CORRAL_TOKEN_FILE=$tmp/srv/admin.token \
	CORRAL_CA=$tmp/srv/ca.pem
admin=$bin/corral-admin
mkdir -p "$tmp/keys"
$admin key generate --name root --out "$tmp/keys" >/dev/null 2>&1
$admin key generate --name signer --out "$tmp/keys" >/dev/null 2>&1
$admin trust init --root "$tmp/keys/root.pub" --root-threshold 1 --signer "$tmp/keys/signer.pub" \
	--signer-threshold 1 --expires 30d --key "$tmp/keys/root.key" -o "$tmp/root.tr" >/dev/null
$admin group create eng >/dev/null
$admin trust publish "$tmp/root.tr" >/dev/null
$admin enroll-token create --group eng --uses 1 --expires 1h 2>/dev/null |
	grep -o '[0-9a-f]\{16\}\.[0-9a-f]\{64\}' | head -1 >"$tmp/token"
$admin policy sign schema/examples/strict-coding-agent.json --version 1 --expires 1d \
	--target group:eng --key "$tmp/keys/signer.key" -o "$tmp/b1" >/dev/null 2>&1
$admin policy publish "$tmp/b1" --group eng >/dev/null

"$bin/corrald" --config /dev/null --config-dir "$tmp" --data-dir "$tmp/data" \
	--socket "$tmp/corrald.sock" --server-url "$CORRAL_SERVER" --server-ca-file "$CORRAL_CA" \
	--enroll-token-file "$tmp/token" --trust "$tmp/root.tr" 2>"$tmp/corrald.log" &
dpid=$!
for _ in $(seq 100); do
	"$bin/corral" --socket "$tmp/corrald.sock" status 2>/dev/null | grep -q 'version 1, fresh' &&
		break
	sleep 0.1
done
"$bin/corral" --socket "$tmp/corrald.sock" status | grep -E 'enrolled|policy' >&2
wpid=$(cut -d' ' -f1 "/proc/$dpid/task/$dpid/children")
