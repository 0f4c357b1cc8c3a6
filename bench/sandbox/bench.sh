#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sandbox launch and overhead benchmark (hyperfine), figures for docs/sandbox.md.
#   bench/sandbox/bench.sh [BUILD_DIR]        (root: sessions run as nobody)
# 1. start-up: `corral-sbx-run -- /bin/true` (strict-like profile: Landlock + seccomp notify +
#    cgroup memory/pids limits) vs bare exec vs `bwrap --ro-bind / / --unshare-all true` vs
#    `bwrap --ro-bind / / true`, with ratios printed.
# 2. syscall-heavy work outside vs under the kernel mechanisms alone (the same Landlock rules and
#    seccomp filter, corral-sbx-run --mechanisms-only) vs inside a session: getppid loop,
#    open/close loop, `find /usr`.
# 3. sbx_launch: sbx_spawn per launch from a resident process (probe + compile done once, as in
#    corrald) vs fork+exec, wall and CPU time.
set -euo pipefail
BUILD=${1:-build}
RUN=$(realpath "$BUILD/bin/corral-sbx-run")
WL=$(realpath "$BUILD/bin/sbx_workload")
OUT=${OUT:-$(mktemp -d /var/tmp/corral-bench-XXXXXX)}
mkdir -p "$OUT"
RUNS=${RUNS:-300}
for tool in hyperfine bwrap python3; do
	command -v "$tool" >/dev/null || { echo "bench: $tool not found (scripts/deps.sh)" >&2; exit 1; }
done
ids=()
[ "$(id -u)" -eq 0 ] && ids=(--uid 65534 --gid 65534)
# The strict-coding-agent shape: system trees read+exec, baseline seccomp with notify, a session
# cgroup. LIMITS adds memory/pids limits (on hybrid hosts these live on cgroup v1, whose attach
# costs an RCU grace period per launch; see docs/sandbox.md).
RULES="--read /usr --read /etc --read /proc --read /dev/null --exec /usr --exec /bin \
--exec /lib --exec /lib64 --exec $(dirname "$WL") --write /dev/null --quiet"
PROFILE="${ids[*]} $RULES"
LIMITS="--memory 512M --pids 256"
SBX="$RUN $PROFILE --"
# outside runs use the same identity as the sessions
AS=""
[ "$(id -u)" -eq 0 ] && AS="setpriv --reuid 65534 --regid 65534 --clear-groups"
# the kernel mechanisms alone, as that identity: the same Landlock rules and seccomp filter,
# nothing else (corral-sbx-run --mechanisms-only): what corral adds at run time is inside/mech
MECH="$AS $RUN --mechanisms-only $RULES --"

# The machine may be shared: commands are interleaved in ROUNDS short rounds (so load drift
# hits all of them alike) and the medians are taken over all rounds' runs.
ROUNDS=${ROUNDS:-6}
per=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
echo "== start-up ($ROUNDS rounds x $per runs each) =="
for r in $(seq "$ROUNDS"); do
	hyperfine -N --style basic --warmup 5 --runs "$per" --export-json "$OUT/startup-$r.json" \
		-n bare '/bin/true' \
		-n corral "$SBX /bin/true" \
		-n corral-limits "$RUN $PROFILE $LIMITS -- /bin/true" \
		-n bwrap-unshare-all 'bwrap --ro-bind / / --unshare-all true' \
		-n bwrap 'bwrap --ro-bind / / true' >/dev/null
done

echo "== syscall-heavy workloads: outside vs mechanisms alone vs inside ($ROUNDS rounds x 2 runs) =="
# find exits 1 on the few root-only directories under /usr, inside and outside alike: -i
for r in $(seq "$ROUNDS"); do
	hyperfine -N -i --style basic --warmup 1 --runs 2 --export-json "$OUT/workload-$r.json" \
		-n getppid-outside "$AS $WL getppid 2000000" \
		-n getppid-mech "$MECH $WL getppid 2000000" \
		-n getppid-inside "$SBX $WL getppid 2000000" \
		-n openclose-outside "$AS $WL openclose 300000 /etc/hostname" \
		-n openclose-mech "$MECH $WL openclose 300000 /etc/hostname" \
		-n openclose-inside "$SBX $WL openclose 300000 /etc/hostname" \
		-n find-outside "$AS /usr/bin/find /usr -name corral-nothing" \
		-n find-mech "$MECH /usr/bin/find /usr -name corral-nothing" \
		-n find-inside "$SBX /usr/bin/find /usr -name corral-nothing" >/dev/null
done

python3 - "$OUT" <<'PY'
import glob, json, statistics, sys
def load(pattern):
    times, cpu = {}, {}
    for p in sorted(glob.glob(pattern)):
        for r in json.load(open(p))["results"]:
            times.setdefault(r["command"], []).extend(r["times"])
            cpu.setdefault(r["command"], []).append(r["user"] + r["system"])
    return {k: (statistics.median(v) * 1000, min(v) * 1000, len(v),
                statistics.mean(cpu[k]) * 1000) for k, v in times.items()}
s = load(sys.argv[1] + "/startup-*.json")
print("\nstart-up (ms)        median     min  cpu(u+s)  runs")
for k, (med, mn, n, c) in s.items():
    print(f"  {k:18s} {med:7.3f} {mn:7.3f} {c:8.3f} {n:6d}")
m = {k: v[0] for k, v in s.items()}
print(f"  corral - bare        = {m['corral'] - m['bare']:.3f} ms (target <= 1.5 ms)")
print(f"  corral-limits - bare = {m['corral-limits'] - m['bare']:.3f} ms")
print(f"  corral / bwrap-unshare-all = {m['corral'] / m['bwrap-unshare-all']:.2f}x (target <= 0.5x)")
print(f"  corral / bwrap             = {m['corral'] / m['bwrap']:.2f}x")
w = load(sys.argv[1] + "/workload-*.json")
print("\nworkload medians (ms)   outside  mechanisms    inside  inside/outside  inside/mechanisms")
for name in ("getppid", "openclose", "find"):
    o, m, i = (w[f"{name}-{k}"][0] for k in ("outside", "mech", "inside"))
    print(f"  {name:18s} {o:9.2f}  {m:9.2f}  {i:9.2f}   {i / o:10.3f}x  {i / m:12.3f}x")
print("  (target: inside within 2 % of the mechanisms alone, i.e. inside/mechanisms <= 1.02x)")
PY
echo
echo "== per-launch cost from a resident process (the corrald case) =="
"$BUILD/bin/sbx_launch" 300 /bin/true
echo "raw results: $OUT"
