#!/usr/bin/env bash
# session 13: Q in registers for the one-consumer ws forward (tree: 3K+3V), A/B against lazy (session-12 winner)
set -u
source .gpu/build_k.sh
for v in s13_qreg s13_qreg5 s13_qreg42 s12_lazy s12_main; do $NV -std=c++17 -gencode arch=compute_90a,code=sm_90a -O3 --expt-relaxed-constexpr -Ikernels -c .gpu/ga_$v.cu -o /tmp/ga_$v.o & done
$CXX -c .gpu/gb_one.cpp -o /tmp/gb_one.o; wait
OTHERS=$(echo $COMMON | tr ' ' '\n' | grep -v gathered_attention.cu.o | tr '\n' ' ')
for v in s13_qreg s13_qreg5 s13_qreg42 s12_lazy s12_main; do g++ /tmp/gb_one.o /tmp/o/timing.cpp.o $OTHERS /tmp/ga_$v.o -o /tmp/g_$v $LIBS && echo ${v}_OK; done
echo "build $(( $(date +%s) - t0 )) s"
timeout 90 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.*' > $O/tests.txt 2>&1; echo "tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|OK \]" $O/tests.txt | head -8; grep -B2 -A8 "Failure" $O/tests.txt | head -30
for r in 1 2 3; do for v in s13_qreg s13_qreg5 s13_qreg42 s12_lazy; do timeout 40 /tmp/g_$v $v b; done; done
for r in 1 2; do for v in s13_qreg s12_lazy s12_main; do timeout 40 /tmp/g_$v $v a; done; done
echo "ab done $(( $(date +%s) - t0 )) s"
timeout 100 /usr/local/cuda/bin/compute-sanitizer --tool racecheck --error-exitcode 9 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.IndicesOutOfRange' > $O/race_ga.txt 2>&1; echo "racecheck rc=$?"; grep -E "RACECHECK SUMMARY" $O/race_ga.txt
timeout 100 /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.IndicesOutOfRange' > $O/mem_ga.txt 2>&1; echo "memcheck rc=$?"; grep -E "ERROR SUMMARY" $O/mem_ga.txt
echo "done $(( $(date +%s) - t0 )) s"
