#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's first command: installs what is missing, builds (Release) and runs the
# end-to-end demo (server, signed policy, enrolled endpoint, sandboxed agent, violations).
# The demo story itself lives in scripts/demo/ and grows as the components land.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/demo/run.sh "$@"
