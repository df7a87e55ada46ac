#!/usr/bin/env bash
# scripts/gpu_kernels_check.sh — the CUDA kernel checks of issue 6, in one call on the GPU machine:
#   1. the whole GPU test binary (kernels vs float64 references, gradients, determinism, atomics spread);
#   2. compute-sanitizer memcheck and racecheck on the small-size cases.
# usage: scripts/gpu_kernels_check.sh [path/to/dysra_gpu_tests]   (default: build-gpu/tests/dysra_gpu_tests)
# DYSRA_SANITIZE_FILTER: a gtest filter replacing the small cases of steps 2 and 3.
# Exit status: 0 when all three steps pass; the summary at the end says which failed.
set -uo pipefail
BIN=${1:-build-gpu/tests/dysra_gpu_tests}
CS=${COMPUTE_SANITIZER:-/usr/local/cuda/bin/compute-sanitizer}
SMALL=${DYSRA_SANITIZE_FILTER:-'SelectiveScanCuda.OddStateNoOptions:SelectiveScanCuda.AllFeaturesEachDtype:LinearAttentionCuda.Unnormalized:LinearAttentionCuda.NormalizedEachDtype:LinearAttentionCuda.TensorCorePathBf16:GatheredAttentionCuda.EachDtype:GatheredAttentionCuda.CausalGqaOddSizes:GatheredAttentionCuda.TensorCorePath:DecodeAttentionCuda.EachDtypeAndHeadSize:DecodeAttentionCuda.WorkspaceKeptAcrossSteps'}
if [[ ! -x "$BIN" ]]; then echo "gpu_kernels_check: no test binary at $BIN (build target dysra_gpu_tests)" >&2; exit 2; fi
if [[ ! -x "$CS" ]]; then echo "gpu_kernels_check: compute-sanitizer not found at $CS (set COMPUTE_SANITIZER)" >&2; exit 2; fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true

echo "== 1/3 tests: $BIN"
"$BIN" --gtest_color=no; rc_test=$?

echo "== 2/3 compute-sanitizer memcheck (small cases)"
"$CS" --tool memcheck --leak-check no --error-exitcode 99 "$BIN" --gtest_color=no --gtest_filter="$SMALL" 2>&1 \
  | grep -vE '^\s+(out|last_state|lse|S|z|d[A-Za-z0-9_]+): max abs'; rc_mem=${PIPESTATUS[0]}

echo "== 3/3 compute-sanitizer racecheck (small cases)"
"$CS" --tool racecheck --racecheck-report hazard --error-exitcode 99 "$BIN" --gtest_color=no --gtest_filter="$SMALL" 2>&1 \
  | grep -vE '^\s+(out|last_state|lse|S|z|d[A-Za-z0-9_]+): max abs'; rc_race=${PIPESTATUS[0]}

echo "== summary: tests rc=$rc_test memcheck rc=$rc_mem racecheck rc=$rc_race (0 = pass)"
[[ $rc_test -eq 0 && $rc_mem -eq 0 && $rc_race -eq 0 ]]
