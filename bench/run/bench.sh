#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `corral run` start-up through the daemon (hyperfine), figures for docs/sandbox.md.
#   [RUNS=100] [ROUNDS=5] [PRIO="chrt -f 10"] bench/run/bench.sh [BUILD_DIR]
#   (root: starts a private corrald; sessions run as nobody)
# Compares `corral run -- /bin/true` (CLI -> corrald -> sbx_spawn -> exit -> RunExited) with a
# bare exec of /bin/true, the CLI's own start-up (`corral --version`), `bwrap --ro-bind / / --unshare-all true` and `bwrap --ro-bind / / true`,
# all run by hyperfine as nobody, and prints the ratios. Two profiles: `bench` (Landlock,
# seccomp baseline with user notification, session cgroup under the profile cgroup with the BPF
# egress programs) and `limits` (the same plus memory/pids limits, which live on cgroup v1 on
# hybrid hosts).
set -euo pipefail
BUILD=$(realpath "${1:-build}")
RUNS=${RUNS:-100}
ROUNDS=${ROUNDS:-5}
# PRIO="chrt -f 10" runs corrald and hyperfine (and so every measured command) SCHED_FIFO: on a
# shared, loaded build machine this measures the work instead of the wait for a CPU.
PRIO=${PRIO:-}
for tool in hyperfine bwrap python3 setpriv; do
	command -v "$tool" >/dev/null || { echo "bench: $tool not found (scripts/deps.sh)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (starts corrald)" >&2; exit 1; }
DIR=$(mktemp -d /tmp/corral-runbench-XXXXXX)
chmod 0755 "$DIR"
trap 'kill "$(cat "$DIR/corrald.pid" 2>/dev/null)" 2>/dev/null || true; sleep 0.3; rm -rf "$DIR"' EXIT
ADMIN="$BUILD/bin/corral-admin"
cat > "$DIR/policy.json" <<JSON
{"name": "bench", "default_profile": "bench", "user_selectable": ["bench", "limits"],
 "profiles": {
  "bench": {"mode": "enforce",
   "filesystem": {"read": ["/usr", "/lib", "/lib64", "/bin", "/etc", "/dev/null", "\${WORKDIR}", "\${TMP}"],
    "write": ["\${WORKDIR}", "\${TMP}", "/dev/null"], "execute": ["/usr", "/lib", "/lib64", "/bin"]},
   "network": {"default": "deny", "dns": "deny"},
   "syscalls": {"baseline": true, "action": "errno"},
   "process": {"isolation": "process", "env_allow": ["PATH"]}},
  "limits": {"mode": "enforce",
   "filesystem": {"read": ["/usr", "/lib", "/lib64", "/bin", "/etc", "/dev/null", "\${WORKDIR}", "\${TMP}"],
    "write": ["\${WORKDIR}", "\${TMP}", "/dev/null"], "execute": ["/usr", "/lib", "/lib64", "/bin"]},
   "network": {"default": "deny", "dns": "deny"},
   "syscalls": {"baseline": true, "action": "errno"},
   "resources": {"memory_max": "512M", "pids_max": 256},
   "process": {"isolation": "process", "env_allow": ["PATH"]}}}}
JSON
(cd "$DIR" && "$ADMIN" key generate --name root --out . >/dev/null &&
	"$ADMIN" key generate --name signer --out . >/dev/null &&
	"$ADMIN" trust init --root root.pub --root-threshold 1 --signer signer.pub \
		--signer-threshold 1 --expires 1d --key root.key -o root.tr >/dev/null &&
	"$ADMIN" policy sign policy.json --version 1 --expires 1d --target group:bench \
		--key signer.key -o bundle --trust root.tr >/dev/null 2>&1)
mkdir -p "$DIR/d"
$PRIO "$BUILD/bin/corrald" --config /dev/null --config-dir "$DIR/d" --data-dir "$DIR/d/data" \
	--socket "$DIR/d/corrald.sock" --offline --trust "$DIR/root.tr" --group bench \
	--log-level warn 2>"$DIR/corrald.log" &
echo $! > "$DIR/corrald.pid"
for _ in $(seq 100); do [ -S "$DIR/d/corrald.sock" ] && break; sleep 0.05; done
export CORRAL_SOCKET="$DIR/d/corrald.sock"
"$BUILD/bin/corral" policy apply "$DIR/bundle" >/dev/null
mkdir -p "$DIR/work" && chown 65534:65534 "$DIR/work"
CORRAL="$BUILD/bin/corral"
cd "$DIR/work"
setpriv --reuid 65534 --regid 65534 --clear-groups -- "$CORRAL" run -- /bin/true
echo "== corral run start-up ($ROUNDS rounds x $RUNS runs each, as nobody) =="
# Several short rounds, all samples pooled: hyperfine runs one command's runs back to back, so
# on a shared machine a load change would otherwise land on one command only and skew ratios.
for round in $(seq "$ROUNDS"); do
	$PRIO setpriv --reuid 65534 --regid 65534 --clear-groups -- env CORRAL_SOCKET="$CORRAL_SOCKET" \
		hyperfine -N --warmup 30 --runs "$RUNS" --export-json "$DIR/work/run-$round.json" \
		--style none \
		-n bare '/bin/true' \
		-n corral-version "$CORRAL --version" \
		-n corral-run "$CORRAL run -- /bin/true" \
		-n corral-run-limits "$CORRAL run --profile limits -- /bin/true" \
		-n bwrap-unshare-all 'bwrap --ro-bind / / --unshare-all true' \
		-n bwrap 'bwrap --ro-bind / / true'
done
python3 - "$DIR"/work/run-*.json <<'PY'
import json, statistics, sys
times = {}
for f in sys.argv[1:]:
    for x in json.load(open(f))["results"]:
        times.setdefault(x["command"], []).extend(x["times"])
med = {k: statistics.median(v) * 1000 for k, v in times.items()}
mn = {k: min(v) * 1000 for k, v in times.items()}
print(f"\nmedians over {len(sys.argv) - 1} rounds (ms):")
for k, v in med.items():
    print(f"  {k:18s} {v:7.3f}   (min {mn[k]:.3f}, n={len(times[k])})")
c = med["corral-run"]
print(f"  corral-run - bare = {c - med['bare']:.3f} ms; corral-run / bare = {c / med['bare']:.2f}x")
print(f"  CLI start-up alone (corral --version) = {med['corral-version']:.3f} ms")
print(f"  corral-run / bwrap-unshare-all = {c / med['bwrap-unshare-all']:.2f}x (target <= 0.5x)")
print(f"  corral-run / bwrap = {c / med['bwrap']:.2f}x")
print(f"  corral-run median {c:.3f} ms (target <= 1.5 ms): {'met' if c <= 1.5 else 'missed by %.3f ms' % (c - 1.5)}")
print(f"  corral-run-limits / bwrap-unshare-all = {med['corral-run-limits'] / med['bwrap-unshare-all']:.2f}x")
PY
