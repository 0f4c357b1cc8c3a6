#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Publish -> applied on an enrolled endpoint, end to end over real TLS on loopback: a new policy
# version published with corral-admin while corrald's long-poll is parked, until `corral
# status` shows it (polled every 5 ms, so ±6 ms). Alternates this build and, when given, a
# baseline build, ROUNDS times each, with a fresh server and enrollment per measurement.
#   bench/corrald-apply/publish.sh BUILD_DIR [BASELINE_BUILD_DIR]   (ROUNDS=5)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = --one ]; then
	bin=$(realpath "$2")/bin
	. bench/lib/enrolled-endpoint.sh
	sleep 1 # the long-poll is parked at the server
	$admin policy sign schema/examples/strict-coding-agent.json --version 2 --expires 1d \
		--target group:eng --key "$tmp/keys/signer.key" -o "$tmp/b2" >/dev/null 2>&1
	t0=$(date +%s%N)
	$admin policy publish "$tmp/b2" --group eng >/dev/null
	for _ in $(seq 1000); do
		"$bin/corral" --socket "$tmp/corrald.sock" status 2>/dev/null | grep -q 'version 2' &&
			{ echo $((($(date +%s%N) - t0) / 1000000)); exit 0; }
		sleep 0.005
	done
	echo "bench: version 2 not applied within 5 s" >&2
	exit 1
fi
ROUNDS=${ROUNDS:-5}
builds=("${1:-build}")
[ -n "${2:-}" ] && builds+=("$2")
for b in "${builds[@]}"; do
	for p in corrald corrald-worker corral corral-server corral-admin; do
		[ -x "$b/bin/$p" ] || { echo "bench: $b/bin/$p missing (build first)" >&2; exit 1; }
	done
done
declare -A ms
for r in $(seq "$ROUNDS"); do
	for b in "${builds[@]}"; do
		ms[$b]+="$("$0" --one "$b" 2>/dev/null) "
	done
done
for b in "${builds[@]}"; do
	sorted=$(tr ' ' '\n' <<<"${ms[$b]}" | grep . | sort -n | tr '\n' ' ')
	set -- $sorted
	echo "$b: publish -> applied (ms): $sorted  median $(eval echo "\${$(((${#} + 1) / 2))}")"
done
