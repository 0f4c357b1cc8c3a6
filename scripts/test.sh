#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's second command: installs what is missing, builds, and runs every test.
#   1. Release build with -Werror: unit, integration and privileged tests (ctest labels).
#   2. ASan+UBSan build: unit tests.
#   3. Format check; short smoke run of every libFuzzer target (scripts/fuzz.sh for long runs).
#   4. The demo (scripts/demo.sh --check): its outcome table must match the expectations.
# Exits non-zero when any step or test fails. Build trees: build/release, build/asan, build/fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
jobs=$(nproc)
phase() { printf '\n==> %s\n' "$*"; }

phase "dependencies"
scripts/deps.sh

phase "release build (-Werror)"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCORRAL_WERROR=ON >/dev/null
cmake --build build/release -j "$jobs"

phase "format check"
cmake --build build/release --target format-check

phase "tests: unit + integration (parallel), privileged (serial)"
status=0
(cd build/release && ctest -L 'unit|integration' -LE privileged --output-on-failure -j "$jobs") || status=1
(cd build/release && ctest -L privileged --output-on-failure -j 1) || status=1

phase "ASan+UBSan build: unit tests"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCORRAL_WERROR=ON \
	-DCORRAL_SANITIZE=address,undefined -DCORRAL_WITH_BPF=OFF >/dev/null
cmake --build build/asan -j "$jobs"
(cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest -L unit --output-on-failure -j "$jobs") || status=1

phase "fuzz smoke (5 s per target)"
scripts/fuzz.sh 5 || status=1

phase "demo (non-interactive, outcomes checked)"
scripts/demo.sh --check || status=1

if [ "$status" -ne 0 ]; then
	echo "test.sh: FAILED" >&2
	exit 1
fi
echo "test.sh: all tests passed"
