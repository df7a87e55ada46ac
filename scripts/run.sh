#!/usr/bin/env bash
# The default experiment: sets up and builds as needed, then trains experiments/quickstart.yaml.
# Arguments are passed to `dysra train` (e.g. --set train.steps=200 --run-dir runs/qs).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/build.sh"
cd "$ROOT"
exec "${DYSRA_BUILD_DIR:-$ROOT/build}/dysra" train experiments/quickstart.yaml "$@"
