#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# corral-loadgen against two corral-server replicas sharing a throwaway PostgreSQL cluster
# (tests/integration/pg/pg-cluster.sh), the scale-out setup of docs/scaling.md:
#   bench/server-load/run-replicas.sh [DEVICES] [BUILD_DIR]
# Replica A takes the admin calls (setup, publish); every device enrolls, long-polls and reports
# on replica B, so publish -> applied includes the cross-replica wake-up (LISTEN/NOTIFY). The
# ingest phase spreads devices over A and B (a second loadgen run with --devices 100).
# Compare with bench/server-load/run.sh (one server, SQLite).
set -euo pipefail
n=${1:-1000}
build=${2:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
pgc=tests/integration/pg/pg-cluster.sh
dir=$(mktemp -d /tmp/corral-load2-XXXXXX)
pgdir=$(mktemp -u /tmp/corral-pgb-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	"$pgc" stop "$pgdir" || true
	rm -rf "$dir"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
"$pgc" start "$pgdir" >/dev/null

# start NAME DB: one replica; sets $port and $pid (no command substitution: the server would
# hold its stdout open).
start() {
	local name=$1 db=$2
	cat >"$dir/$name.json" <<JSON
{"report_rate": 1000, "report_burst": 1000, "connection_limit": 30000, "database": "$("$pgc" url "$pgdir" "$db")"}
JSON
	"$build/bin/corral-server" --data-dir "$dir/$name" --listen 127.0.0.1:0 \
		--config "$dir/$name.json" >/dev/null 2>"$dir/$name.log" &
	pid=$!
	pids+=("$pid")
	port=
	for _ in $(seq 100); do
		port=$(sed -n 's/.*listening on https:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/$name.log")
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || { cat "$dir/$name.log" >&2; exit 1; }
}

# run DB MODE DEVICES LOADGEN-ARGS...: fresh database, replicas A and B (B on a copy of A's CA
# files and admin token). MODE b: every device on B; ab: devices alternate between A and B.
run() {
	local db=$1 mode=$2 devices=$3
	shift 3
	"$pgc" createdb "$pgdir" "$db"
	rm -rf "$dir/a" "$dir/b"
	start a "$db"
	local pa=$port pida=$pid
	mkdir -m 0700 "$dir/b"
	cp -p "$dir/a/ca.key" "$dir/a/ca.pem" "$dir/a/server.key" "$dir/a/server.pem" \
		"$dir/a/admin.token" "$dir/b/"
	start b "$db"
	local pb=$port pidb=$pid
	local dev=(--device-server "https://127.0.0.1:$pb")
	[ "$mode" = ab ] && dev=(--device-server "https://127.0.0.1:$pa" "${dev[@]}")
	echo "devices=$devices mode=$mode replicas a=:$pa b=:$pb; $("$pgc" version "$pgdir"); $(nproc) cores; $(uname -r)"
	"$build/bin/corral-loadgen" --server "https://127.0.0.1:$pa" --ca "$dir/a/ca.pem" \
		--token-file "$dir/a/admin.token" --devices "$devices" --server-pid "$pidb" \
		"${dev[@]}" "$@"
	kill -TERM "$pida" "$pidb"
	wait "$pida" "$pidb"
	pids=()
	echo "replicas stopped cleanly"
}

echo "== publish -> applied: $n devices on replica b, the publish on replica a (RSS/CPU: b)"
run load1 b "$n" --ingest-devices 10 --batch 10 --batches 1
echo
echo "== ingest: 100 devices alternating over replicas a and b, 100 x 20 batches x 500 events (RSS/CPU: b)"
run load2 ab 100 --ingest-devices 100 --batch 500 --batches 20
