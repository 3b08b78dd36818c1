#!/usr/bin/env bash
# Installs the dependencies, builds petal and runs the whole test suite.
#
#   scripts/test.sh [meson test options or test names...]
#
# Same PETAL_BUILD_DIR / PETAL_JOBS variables as scripts/build.sh. Tests that
# read real data find it in ../shared or assets/ (scripts/fetch_assets.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh
scripts/build.sh
meson test -C "${PETAL_BUILD_DIR:-build}" --num-processes "${PETAL_JOBS:-$(nproc)}" --print-errorlogs "$@"
