#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages corral needs to build, test and run the demo, skipping those
# already present (apt-get update only when something is missing). Idempotent.
set -euo pipefail
pkgs=(
	build-essential cmake ninja-build pkg-config clang llvm lld libclang-rt-14-dev
	libcurl4-openssl-dev libssl-dev openssl libsqlite3-dev sqlite3 libprotobuf-c-dev protobuf-c-compiler
	libseccomp-dev libbpf-dev bpftool libhttp-parser-dev libcunit1-dev libjansson-dev libmicrohttpd-dev libgnutls28-dev
	libpq-dev postgresql
	iproute2 curl procps psmisc util-linux clang-format hyperfine bubblewrap
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing packages: ${missing[*]} (run as root to install them)" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
