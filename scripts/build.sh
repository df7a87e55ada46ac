#!/usr/bin/env bash
# Configures (once) and builds dysra into build/ (or $DYSRA_BUILD_DIR). Runs scripts/setup.sh first.
# Extra CMake arguments: DYSRA_CMAKE_ARGS="-DDYSRA_WITH_CUDA=OFF".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${DYSRA_BUILD_DIR:-$ROOT/build}"
# DYSRA_TORCH_PREFIX: use an existing LibTorch (e.g. the GPU machine's python torch) and skip set-up.
if [[ -n "${DYSRA_TORCH_PREFIX:-}" ]]; then
  TORCH_PREFIX="$DYSRA_TORCH_PREFIX"
else
  bash "$ROOT/scripts/setup.sh"
  TORCH_PREFIX="$(cat "$ROOT/.venv/torch_prefix")"
fi
JOBS="${DYSRA_JOBS:-$(nproc)}"
if [[ ! -f "$BUILD/build.ninja" ]]; then
  echo "[build] configuring $BUILD"
  # shellcheck disable=SC2086
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$TORCH_PREFIX${DYSRA_EXTRA_PREFIX:+;$DYSRA_EXTRA_PREFIX}" ${DYSRA_CMAKE_ARGS:-}
fi
echo "[build] building ($JOBS jobs)"
# DYSRA_BUILD_TARGETS="dysra_cli dysra_gpu_tests" builds only those targets.
# shellcheck disable=SC2086
cmake --build "$BUILD" -j "$JOBS" ${DYSRA_BUILD_TARGETS:+--target $DYSRA_BUILD_TARGETS}
