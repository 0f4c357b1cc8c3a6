#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sandbox launch and overhead benchmark (hyperfine), figures for docs/sandbox.md.
#   bench/sandbox/bench.sh [BUILD_DIR]        (root: sessions run as nobody)
# 1. start-up: `corral-sbx-run -- /bin/true` (strict-like profile: Landlock + seccomp notify +
#    cgroup memory/pids limits) vs bare exec vs `bwrap --ro-bind / / --unshare-all true` vs
#    `bwrap --ro-bind / / true`, with ratios printed.
# 2. syscall-heavy work inside vs outside: getppid loop, open/close loop, `find /usr`.
set -euo pipefail
BUILD=${1:-build}
RUN=$(realpath "$BUILD/bin/corral-sbx-run")
WL=$(realpath "$BUILD/bin/sbx_workload")
OUT=${OUT:-$(mktemp -d /var/tmp/corral-bench-XXXXXX)}
RUNS=${RUNS:-200}
for tool in hyperfine bwrap python3; do
	command -v "$tool" >/dev/null || { echo "bench: $tool not found (scripts/deps.sh)" >&2; exit 1; }
done
ids=()
[ "$(id -u)" -eq 0 ] && ids=(--uid 65534 --gid 65534)
# The strict-coding-agent shape: system trees read+exec, baseline seccomp with notify, a session
# cgroup. LIMITS adds memory/pids limits (on hybrid hosts these live on cgroup v1, whose attach
# costs an RCU grace period per launch; see docs/sandbox.md).
PROFILE="${ids[*]} --read /usr --read /etc --read /proc --read /dev/null --exec /usr --exec /bin \
--exec /lib --exec /lib64 --exec $(dirname "$WL") --write /dev/null --quiet"
LIMITS="--memory 512M --pids 256"
SBX="$RUN $PROFILE --"
# outside runs use the same identity as the sessions
AS=""
[ "$(id -u)" -eq 0 ] && AS="setpriv --reuid 65534 --regid 65534 --clear-groups"

echo "== start-up ($RUNS runs each) =="
hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$OUT/startup.json" \
	-n bare '/bin/true' \
	-n corral "$SBX /bin/true" \
	-n corral-limits "$RUN $PROFILE $LIMITS -- /bin/true" \
	-n bwrap-unshare-all 'bwrap --ro-bind / / --unshare-all true' \
	-n bwrap 'bwrap --ro-bind / / true'

echo "== syscall-heavy workloads: inside vs outside =="
# find exits 1 on the few root-only directories under /usr, inside and outside alike: -i
hyperfine -N -i --warmup 2 --runs 10 --export-json "$OUT/workload.json" \
	-n getppid-outside "$AS $WL getppid 2000000" \
	-n getppid-inside "$SBX $WL getppid 2000000" \
	-n openclose-outside "$AS $WL openclose 300000 /etc/hostname" \
	-n openclose-inside "$SBX $WL openclose 300000 /etc/hostname" \
	-n find-outside "$AS /usr/bin/find /usr -name corral-nothing" \
	-n find-inside "$SBX /usr/bin/find /usr -name corral-nothing"

python3 - "$OUT/startup.json" "$OUT/workload.json" <<'PY'
import json, sys
def load(p):
    return {r["command"]: r for r in json.load(open(p))["results"]}
s = load(sys.argv[1])
med = {k: v["median"] * 1000 for k, v in s.items()}
print("\nstart-up medians (ms):")
for k, v in med.items():
    print(f"  {k:18s} {v:7.3f}")
print(f"  corral-limits - bare = {med['corral-limits'] - med['bare']:.3f} ms")
print(f"  corral / bwrap-unshare-all = {med['corral'] / med['bwrap-unshare-all']:.2f}x "
      f"(target <= 0.5x), corral / bwrap = {med['corral'] / med['bwrap']:.2f}x, "
      f"corral - bare = {med['corral'] - med['bare']:.3f} ms (target median <= 1.5 ms)")
w = load(sys.argv[2])
print("\nworkload medians (ms), inside / outside:")
for name in ("getppid", "openclose", "find"):
    o, i = w[f"{name}-outside"]["median"] * 1000, w[f"{name}-inside"]["median"] * 1000
    print(f"  {name:10s} outside {o:9.2f}  inside {i:9.2f}  ratio {i / o:.2f}x")
PY
echo "raw results: $OUT"
