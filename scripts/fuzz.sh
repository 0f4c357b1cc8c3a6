#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets under tests/fuzz/ with clang and runs each for N seconds
# (default 60): `scripts/fuzz.sh [SECONDS] [TARGET...]`. Corpora live in build/fuzz/corpus/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
CC=clang cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCORRAL_FUZZ=ON \
	-DCORRAL_BUILD_TESTS=ON -DCORRAL_WITH_BPF=OFF -DCORRAL_SANITIZE=address,undefined >/dev/null
cmake --build build/fuzz -j "$(nproc)" --target corral_fuzzers
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	mapfile -t targets < <(cd build/fuzz/fuzz && ls fuzz_* 2>/dev/null || true)
fi
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets built" >&2
	exit 1
fi
fail=0
for t in "${targets[@]}"; do
	corpus=build/fuzz/corpus/$t
	mkdir -p "$corpus"
	seeds=tests/fuzz/seeds/${t#fuzz_}
	extra=()
	[ -d "$seeds" ] && extra+=("$seeds")
	printf 'fuzz: %s for %ss ... ' "$t" "$secs"
	if build/fuzz/fuzz/"$t" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=0 \
		"$corpus" "${extra[@]}" >build/fuzz/"$t".log 2>&1; then
		echo "ok ($(grep -Eo '#[0-9]+' build/fuzz/"$t".log | tail -1 | tr -d '#') runs)"
	else
		echo "CRASH (log: build/fuzz/$t.log)"
		fail=1
	fi
done
exit $fail
