#!/usr/bin/env bash
# session 13: (b) A/B: qreg (Q in registers, 3K+3V) vs split (+ S issued before V waits) vs ahead2 (+ list 2 tiles ahead)
set -u
source .gpu/build_k.sh
for v in s13_qreg s13_split s13_ahead2; do $NV -std=c++17 -gencode arch=compute_90a,code=sm_90a -O3 --expt-relaxed-constexpr -Ikernels -c .gpu/ga_$v.cu -o /tmp/ga_$v.o & done
$CXX -c .gpu/gb_one.cpp -o /tmp/gb_one.o; wait
OTHERS=$(echo $COMMON | tr ' ' '\n' | grep -v gathered_attention.cu.o | tr '\n' ' ')
for v in s13_qreg s13_split s13_ahead2; do g++ /tmp/gb_one.o /tmp/o/timing.cpp.o $OTHERS /tmp/ga_$v.o -o /tmp/g_$v $LIBS && echo ${v}_OK; done
echo "build $(( $(date +%s) - t0 )) s"
timeout 90 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.*' > $O/tests.txt 2>&1; echo "tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]" $O/tests.txt | head -8; grep -B2 -A8 "Failure" $O/tests.txt | head -30
for r in 1 2 3 4; do for v in s13_qreg s13_split s13_ahead2; do timeout 40 /tmp/g_$v $v b; done; done
echo "done $(( $(date +%s) - t0 )) s"
