#!/usr/bin/env bash
# session 11 final call: memcheck of the unchecked-index and normalised-linear tests, then every gathered and linear GPU
# test (int64 lists read in place on every kernel variant of TensorCorePath)
set -u
source .gpu/build_k.sh
timeout 70 /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.IndicesOutOfRange:LinearAttentionCuda.NormalizedTensorCore' > $O/memcheck.txt 2>&1; echo "memcheck rc=$?"
grep -E "ERROR SUMMARY|OK \]|FAILED" $O/memcheck.txt | head
timeout 420 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.*:LinearAttentionCuda.*:-LinearAttentionCuda.TensorCorePathBf16' > $O/tests.txt 2>&1; echo "tests rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|OK \]" $O/tests.txt | head -30; grep -B2 -A8 "Failure" $O/tests.txt | head -30
echo "done $(( $(date +%s) - t0 )) s"
