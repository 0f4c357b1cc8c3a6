#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What corrald's crypto helper costs a policy apply: `corral policy apply` of a new bundle
# version (verify + one SQLite transaction + the reply) on an offline corrald, timed with
# hyperfine, for this build and, when given, a baseline build measured in the same run (e.g.
# one from before the verify moved into corrald-crypto). Each timed run applies the next
# version (hyperfine --prepare picks it), so every run verifies and commits a new bundle.
#   bench/corrald-apply/run.sh BUILD_DIR [BASELINE_BUILD_DIR]   (root; RUNS=50)
set -euo pipefail
RUNS=${RUNS:-50}
builds=("$(realpath "${1:-build}")")
[ -n "${2:-}" ] && builds+=("$(realpath "$2")")
command -v hyperfine >/dev/null || { echo "bench: hyperfine not found (scripts/deps.sh)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (corral policy apply needs root)" >&2; exit 1; }
for b in "${builds[@]}"; do
	for p in corrald corral corral-admin; do
		[ -x "$b/bin/$p" ] || { echo "bench: $b/bin/$p missing (build first)" >&2; exit 1; }
	done
done
DIR=$(mktemp -d /tmp/corral-applybench-XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$DIR"' EXIT
ADMIN="${builds[0]}/bin/corral-admin"
$ADMIN key generate --name root --out "$DIR" >/dev/null 2>&1
$ADMIN key generate --name signer --out "$DIR" >/dev/null 2>&1
$ADMIN trust init --root "$DIR/root.pub" --root-threshold 1 --signer "$DIR/signer.pub" \
	--signer-threshold 1 --expires 30d --key "$DIR/root.key" -o "$DIR/root.tr" >/dev/null
n=$((RUNS + 20)) # hyperfine's warm-up runs take versions too
mkdir -p "$DIR/bundles"
for v in $(seq 1 "$n"); do
	$ADMIN policy sign schema/examples/strict-coding-agent.json --version "$v" --expires 1d \
		--target group:eng --key "$DIR/signer.key" -o "$DIR/bundles/$(printf %05d "$v")" \
		>/dev/null 2>&1
done
cmds=()
i=0
for b in "${builds[@]}"; do
	d=$DIR/d$i
	mkdir -p "$d/queue"
	cp "$DIR"/bundles/* "$d/queue/"
	"$b/bin/corrald" --config /dev/null --config-dir "$DIR" --offline --trust "$DIR/root.tr" \
		--group eng --data-dir "$d/data" --socket "$d/sock" 2>"$d/log" &
	pids+=($!)
	for _ in $(seq 100); do [ -S "$d/sock" ] && break; sleep 0.05; done
	# the next version into $d/cur before each run
	prep="f=\$(ls $d/queue | head -1); mv $d/queue/\$f $d/cur"
	label=$([ "$i" -eq 0 ] && echo this || echo baseline)
	cmds+=(--prepare "$prep" -n "$label ($b)" "$b/bin/corral --socket $d/sock policy apply $d/cur")
	i=$((i + 1))
done
hyperfine --warmup 3 --runs "$RUNS" "${cmds[@]}" --export-json "$DIR/h.json" | grep -v '^$'
for i in $(seq 0 $((${#builds[@]} - 1))); do
	applied=$(grep -c "applied (local)" "$DIR/d$i/log" || true)
	echo "build $i (${builds[$i]}): $applied bundles applied, log: $(grep -c rejected "$DIR/d$i/log" || true) rejected"
done
python3 - "$DIR/h.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
base = r[1]["median"] if len(r) > 1 else None
for x in r:
    line = f'{x["command"][:70]:70s} median {x["median"]*1e3:7.2f} ms  mean {x["mean"]*1e3:7.2f} ms'
    if base:
        line += f'  ratio to baseline {x["median"]/base:5.2f}x'
    print(line)
PY
