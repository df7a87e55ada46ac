#!/usr/bin/env bash
# session 12: the producer loads the next tile's list entries a tile ahead (working tree) vs HEAD's kernel (.gpu/ga_old.cu):
# gathered tests, A/B of (b) in alternating processes (cool + steady each), racecheck of the ws D128 cases
set -u
source .gpu/build_k.sh
$NV -std=c++17 -gencode arch=compute_90a,code=sm_90a -O3 --expt-relaxed-constexpr -Ikernels -I kernels/gathered_attention -c .gpu/ga_old.cu -o /tmp/ga_old.o &
$CXX -c .gpu/gb_one.cpp -o /tmp/gb_one.o; wait
g++ /tmp/gb_one.o /tmp/o/timing.cpp.o $COMMON -o /tmp/g_new $LIBS && echo NEW_OK
OLDC=$(echo $COMMON | tr ' ' '\n' | grep -v gathered_attention.cu.o | tr '\n' ' ')
g++ /tmp/gb_one.o /tmp/o/timing.cpp.o $OLDC /tmp/ga_old.o -o /tmp/g_old $LIBS && echo OLD_OK
echo "build $(( $(date +%s) - t0 )) s"
timeout 60 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.*' > $O/tests.txt 2>&1; echo "tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|OK \]" $O/tests.txt | head -8; grep -B2 -A8 "Failure" $O/tests.txt | head -20
for r in 1 2 3; do timeout 40 /tmp/g_new new; timeout 40 /tmp/g_old old; done
timeout 100 /usr/local/cuda/bin/compute-sanitizer --tool racecheck --error-exitcode 9 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.IndicesOutOfRange' > $O/race_ga.txt 2>&1; echo "racecheck rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "RACECHECK SUMMARY|OK \]|FAILED" $O/race_ga.txt | head -3
echo "done $(( $(date +%s) - t0 )) s"
