#!/usr/bin/env bash
# session 11: every test of tests/gpu/test_kernels.cpp (ad-hoc build) and racecheck of the unchecked-index test
set -u
source .gpu/build_k.sh
timeout 240 /tmp/gt --gtest_color=no > $O/tests_all.txt 2>&1; echo "all tests rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|tests ran" $O/tests_all.txt | head -20; grep -B2 -A8 "Failure" $O/tests_all.txt | head -30
timeout 120 /usr/local/cuda/bin/compute-sanitizer --tool racecheck --error-exitcode 9 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.IndicesOutOfRange' > $O/racecheck.txt 2>&1; echo "racecheck rc=$?"
grep -E "RACECHECK SUMMARY|ERROR SUMMARY|hazard|OK \]|FAILED" $O/racecheck.txt | head
echo "done $(( $(date +%s) - t0 )) s"
