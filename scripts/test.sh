#!/usr/bin/env bash
# Set-up + build + the CPU test suite (ctest, everything not labelled gpu). Extra arguments go to ctest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${DYSRA_BUILD_DIR:-$ROOT/build}"
bash "$ROOT/scripts/build.sh"
cd "$BUILD"
ctest -LE gpu --output-on-failure -j "${DYSRA_TEST_JOBS:-2}" --timeout 1200 "$@"
