#!/usr/bin/env bash
# Run ON the GPU machine (device `run` with carry [".devdeps"]), from the repo root:
#   bash scripts/gpu.sh [COMMAND...]
# Unpacks the carried Debian packages into /tmp/deps (never into /), builds with CUDA (sm_90) against the
# machine's PyTorch 2.11 (its LibTorch), runs the whole ctest suite (CPU and gpu labels), then COMMAND if given.
# Environment: DYSRA_GPU_TESTS=0 skips ctest; DYSRA_CTEST_ARGS adds ctest arguments.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[[ -d .devdeps ]] || { echo "[gpu] error: .devdeps missing: run scripts/gpu_prepare.sh here and carry .devdeps" >&2; exit 1; }
mkdir -p /tmp/deps
for f in .devdeps/*.deb; do dpkg -x "$f" /tmp/deps; done
export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PKG_CONFIG_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu/pkgconfig PKG_CONFIG_SYSROOT_DIR=/tmp/deps
export DYSRA_TORCH_PREFIX="$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')"
export DYSRA_EXTRA_PREFIX=/tmp/deps/usr DYSRA_BUILD_DIR="$ROOT/build-gpu"
export DYSRA_CMAKE_ARGS="-DTORCH_CUDA_ARCH_LIST=9.0 -DDYSRA_USE_CCACHE=OFF -DDYSRA_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc"
# zlib1g-dev's libz.so points at /lib/... (absent under /tmp/deps): name the shared object directly
ZSO=$(ls /tmp/deps/lib/x86_64-linux-gnu/libz.so.1.* /tmp/deps/usr/lib/x86_64-linux-gnu/libz.so.1.* 2>/dev/null | head -n1 || true)
[[ -n "$ZSO" ]] && DYSRA_CMAKE_ARGS+=" -DZLIB_LIBRARY=$ZSO -DZLIB_INCLUDE_DIR=/tmp/deps/usr/include"
export DYSRA_CMAKE_ARGS
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
t0=$(date +%s)
bash scripts/build.sh
echo "[gpu] build took $(( $(date +%s) - t0 )) s"
if [[ "${DYSRA_GPU_TESTS:-1}" == 1 ]]; then
  (cd "$DYSRA_BUILD_DIR" && ctest --output-on-failure -j 8 --timeout 600 ${DYSRA_CTEST_ARGS:-}) || echo "[gpu] ctest FAILED"
fi
if (($#)); then
  echo "[gpu] running: $*"
  "$@"
fi
