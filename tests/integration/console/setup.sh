#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what the console's browser test needs and nothing else: Debian's chromium and node,
# then playwright-core from the committed package-lock.json (npm ci). Never downloads a browser
# build of its own (no `playwright install`): the test drives /usr/bin/chromium.
# Idempotent; run as root. ctest runs it as the fixture `console_browser_deps` (only when the
# console test is selected) with --best-effort: then a failure to install (not root, no
# registry) is printed and the browser test skips with that reason instead of failing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ "${1:-}" = "--best-effort" ]; then
	if ! "$0"; then
		echo "console setup: could not install the browser test's dependencies; its test will skip"
	fi
	exit 0
fi
missing=()
for p in chromium nodejs npm; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "console setup: missing packages: ${missing[*]} (run as root)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cd "$here"
if [ ! -d node_modules/playwright-core ]; then
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts
fi
echo "console setup: chromium $(/usr/bin/chromium --version 2>/dev/null || echo '?'), node $(node --version)"
