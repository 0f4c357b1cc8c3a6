#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Console overview load benchmark: 10,000 devices and 1,000,000 events in corral-server's
# database, then the overview's API calls (bench_console time) and the full page in headless
# chromium (page_load.mjs, when tests/integration/console/setup.sh has been run).
# Usage: bench/console/run.sh [BUILD_DIR] [DEVICES] [EVENTS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build}"
devices="${2:-10000}"
events="${3:-1000000}"
bin="$build/bin"
[ -x "$bin/bench_console" ] || { echo "build bench_console first (cmake --build $build --target bench_console corral-server)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'kill "${pid:-}" 2>/dev/null || true; wait "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin/bench_console" seed "$work/data" "$devices" "$events"
"$bin/corral-server" --data-dir "$work/data" --listen 127.0.0.1:0 2>"$work/server.log" &
pid=$!
for _ in $(seq 200); do
	port="$(sed -n 's/.*listening on https:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/server.log")"
	[ -n "$port" ] && break
	sleep 0.05
done
[ -n "$port" ] || { cat "$work/server.log" >&2; exit 1; }
token="$(cat "$work/data/admin.token")"
echo "database: $(du -h "$work/data/server.db" | cut -f1)"
# Server CPU per overview load (utime + stime of the server process, in clock ticks): this one
# does not depend on how busy the machine is, unlike the wall-clock figures.
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
runs=30
before="$(cpu)"
"$bin/bench_console" time "https://127.0.0.1:$port/" "$work/data/ca.pem" "$token" "$runs"
after="$(cpu)"
hz="$(getconf CLK_TCK)"
echo "server CPU per overview load: $(( (after - before) * 1000 / hz / (runs + 1) )) ms (user+system, $((runs + 1)) loads incl. warm-up)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
if [ -x /usr/bin/chromium ] && [ -d "$here/../../tests/integration/console/node_modules/playwright-core" ]; then
	node "$here/page_load.mjs" "https://127.0.0.1:$port/" "$token" 20
else
	echo "page load in chromium: skipped (run tests/integration/console/setup.sh)"
fi
