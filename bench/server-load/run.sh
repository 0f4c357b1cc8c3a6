#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs corral-loadgen against a fresh corral-server on loopback:
#   bench/server-load/run.sh [DEVICES] [BUILD_DIR]
# Prints enrollment rate, publish -> all-devices latency (p50/p95/p99/max), server RSS, and
# ingestion rate (100 devices x batches of 500 events). Results are kept in results/.
set -euo pipefail
n=${1:-1000}
build=${2:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
dir=$(mktemp -d /tmp/corral-load-XXXXXX)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
ulimit -n "$(ulimit -Hn)"
cat >"$dir/server.json" <<JSON
{"report_rate": 1000, "report_burst": 1000, "connection_limit": 30000}
JSON
"$build/bin/corral-server" --data-dir "$dir/data" --listen 127.0.0.1:0 --config "$dir/server.json" \
	2>"$dir/server.log" &
pid=$!
for _ in $(seq 100); do
	port=$(sed -n 's/.*listening on https:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/server.log")
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || { cat "$dir/server.log"; exit 1; }
echo "devices=$n server pid $pid port $port; $(nproc) cores; $(uname -r)"
"$build/bin/corral-loadgen" --server "https://127.0.0.1:$port" --ca "$dir/data/ca.pem" \
	--token-file "$dir/data/admin.token" --devices "$n" --server-pid "$pid" \
	--ingest-devices 100 --batch 500 --batches 20
kill -TERM "$pid"
wait "$pid"
echo "server stopped cleanly"
