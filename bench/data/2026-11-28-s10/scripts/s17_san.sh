#!/usr/bin/env bash
set -u
source .gpu/build_k.sh
timeout 40 /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/gt --gtest_color=no --gtest_filter='LinearAttentionCuda.Unnormalized:LinearAttentionCuda.TensorCorePathBf16' > $O/memcheck.txt 2>&1; echo "memcheck rc=$?"
grep -E "ERROR SUMMARY|OK \]|FAILED" $O/memcheck.txt | head
timeout 60 /usr/local/cuda/bin/compute-sanitizer --tool racecheck --error-exitcode 9 /tmp/gt --gtest_color=no --gtest_filter='LinearAttentionCuda.Unnormalized:LinearAttentionCuda.TensorCorePathBf16' > $O/racecheck.txt 2>&1; echo "racecheck rc=$?"
grep -E "RACECHECK SUMMARY|ERROR SUMMARY|hazard|OK \]|FAILED" $O/racecheck.txt | head
echo "done $(( $(date +%s) - t0 )) s"
