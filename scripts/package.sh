#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the corral packages: configure + build a release tree, then cpack -G DEB and -G RPM
# (one package per component: corral-agent, corral-server, corral-admin), lintian on the
# .debs (errors fail the build) and a listing of the .rpms.
#
#   scripts/package.sh                     build/package: packages in build/package/packages
#   scripts/package.sh --build-dir DIR     another build tree
#   scripts/package.sh --version-override V   package version V (binaries keep theirs)
#   scripts/package.sh --deps              only install the packaging tools, then exit
#
# The packaging-only tools (rpm for rpmbuild, lintian) are installed here when missing, not
# by scripts/deps.sh, so test runs that never package do not pay for them.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build/package
version_override=
deps_only=0
while [ $# -gt 0 ]; do
	case $1 in
	--build-dir) build_dir=$2; shift 2 ;;
	--version-override) version_override=$2; shift 2 ;;
	--deps) deps_only=1; shift ;;
	-h | --help) sed -n '3,13p' "$0"; exit 0 ;;
	*) echo "package.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

# rpm: rpmbuild for CPack's RPM generator; lintian: Debian policy checks; dpkg-dev:
# dpkg-shlibdeps for exact library dependencies; man-db/groff-base: man page checks.
tools=(rpm lintian dpkg-dev man-db groff-base)
missing=()
for p in "${tools[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "package.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
		exit 1
	fi
	echo "package.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ "$deps_only" -eq 1 ] && exit 0

scripts/deps.sh
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCORRAL_WERROR=ON \
	-DCORRAL_BUILD_TESTS=OFF -DCORRAL_PACKAGE_VERSION_OVERRIDE="$version_override" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"

out=$build_dir/packages
rm -f "$out"/*.deb "$out"/*.rpm "$out"/*.sha256
(cd "$build_dir" && cpack -G DEB && cpack -G RPM)

echo
echo "== lintian"
# lintian complains about running as root but checks all the same.
lintian --fail-on error --suppress-tags spare-manual-page "$out"/*.deb 2>&1 |
	grep -v 'running with root privileges' || true
lintian --fail-on error --suppress-tags spare-manual-page "$out"/*.deb >/dev/null 2>&1 || {
	echo "package.sh: lintian found errors" >&2
	exit 1
}

echo
echo "== packages"
for f in "$out"/*.deb; do
	echo "$(basename "$f"): $(dpkg-deb -f "$f" Depends)"
done
for f in "$out"/*.rpm; do
	echo "$(basename "$f"):"
	rpm -qlp "$f" 2>/dev/null | sed 's/^/    /'
done
