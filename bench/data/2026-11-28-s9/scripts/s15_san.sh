#!/usr/bin/env bash
# session 9: compute-sanitizer racecheck + memcheck of LinearAttentionCuda.WgmmaCore (TMA core), main 8be3df4+
set -u
source .gpu/build_k.sh
CS=/usr/local/cuda/bin/compute-sanitizer
timeout 230 $CS --tool memcheck --error-exitcode 9 /tmp/gt --gtest_color=no --gtest_filter='LinearAttentionCuda.WgmmaCore' > $O/memcheck.txt 2>&1; echo "memcheck rc=$?"
grep -E "ERROR SUMMARY|PASSED|FAILED" $O/memcheck.txt | head -5
timeout 250 $CS --tool racecheck --error-exitcode 9 /tmp/gt --gtest_color=no --gtest_filter='LinearAttentionCuda.WgmmaCore' > $O/racecheck.txt 2>&1; echo "racecheck rc=$?"
grep -E "RACECHECK SUMMARY|ERROR SUMMARY|hazard|PASSED|FAILED" $O/racecheck.txt | head -8
echo "done $(( $(date +%s) - t0 )) s"
