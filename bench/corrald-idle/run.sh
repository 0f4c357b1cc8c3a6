#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Idle cost of corrald: resident memory and wake-ups per minute of the root parent and of the
# network worker, enrolled with a real corral-server on loopback and a long-poll parked.
# Usage: bench/corrald-idle/run.sh [BUILD_DIR] [SECONDS]   (defaults: build, 120)
# Wake-ups are counted as voluntary context switches (/proc/PID/status) over the window:
# every return from epoll_wait/poll of an idle process is one.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
secs=${2:-120}
bin=$build/bin
for b in corrald corrald-worker corral corral-server corral-admin; do
	[ -x "$bin/$b" ] || { echo "bench: $bin/$b missing (build first)" >&2; exit 1; }
done
. bench/lib/enrolled-endpoint.sh
sleep 5 # settle: first heartbeat uploaded, long-poll parked

ctx() { awk '/^voluntary_ctxt_switches/{print $2}' "/proc/$1/status"; }
p0=$(ctx "$dpid") w0=$(ctx "$wpid")
sleep "$secs"
p1=$(ctx "$dpid") w1=$(ctx "$wpid")
# Where the parent's resident set goes: Rss per mapping (summed over a file's segments), and
# how much of it is shared file pages vs private memory (docs/endpoint.md#idle-cost).
awk '/^[0-9a-f]+-[0-9a-f]+ /{n = (NF >= 6 ? $NF : "[anon]"); sub(".*/", "", n); next}
	/^Rss:/{rss[n] += $2}
	END {for (k in rss) if (rss[k] > 0) printf "%d %s\n", rss[k], k}' "/proc/$dpid/smaps" |
	sort -rn | head -12 | awk '{printf "%s%s %d", (NR > 1 ? ", " : "parent RSS by mapping (kB): "), $2, $1}
	END {print ""}'
awk '/^(Shared_Clean|Private_Dirty|Anonymous):/{v[$1] = $2}
	END {printf "parent: %d kB shared clean (library pages), %d kB private dirty, %d kB anonymous\n",
		v["Shared_Clean:"], v["Private_Dirty:"], v["Anonymous:"]}' "/proc/$dpid/smaps_rollup"
rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
pss() { awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup"; }
awk -v s="$secs" -v pd=$((p1 - p0)) -v wd=$((w1 - w0)) -v pr="$(rss "$dpid")" \
	-v pp="$(pss "$dpid")" -v wr="$(rss "$wpid")" -v wp="$(pss "$wpid")" 'BEGIN {
	printf "window %ds\n", s
	printf "corrald (root parent): RSS %d kB, PSS %d kB, %d wake-ups = %.2f/min\n",
		pr, pp, pd, pd * 60 / s
	printf "corrald-worker:        RSS %d kB, PSS %d kB, %d wake-ups = %.2f/min\n",
		wr, wp, wd, wd * 60 / s
}'
