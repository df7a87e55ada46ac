#!/usr/bin/env bash
# session 13: (b) A/B: qreg vs lpr16 (16 producer lanes per gathered row, whole lines) vs lpr8
set -u
source .gpu/build_k.sh
for v in s13_qreg s13_lpr16 s13_lpr8; do $NV -std=c++17 -gencode arch=compute_90a,code=sm_90a -O3 --expt-relaxed-constexpr -Ikernels -c .gpu/ga_$v.cu -o /tmp/ga_$v.o & done
$CXX -c .gpu/gb_one.cpp -o /tmp/gb_one.o; wait
OTHERS=$(echo $COMMON | tr ' ' '\n' | grep -v gathered_attention.cu.o | tr '\n' ' ')
for v in s13_qreg s13_lpr16 s13_lpr8; do g++ /tmp/gb_one.o /tmp/o/timing.cpp.o $OTHERS /tmp/ga_$v.o -o /tmp/g_$v $LIBS && echo ${v}_OK; done
echo "build $(( $(date +%s) - t0 )) s"
timeout 90 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.*' > $O/tests.txt 2>&1; echo "tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]" $O/tests.txt | head -8; grep -B2 -A8 "Failure" $O/tests.txt | head -30
for r in 1 2 3; do for v in s13_qreg s13_lpr16 s13_lpr8; do timeout 40 /tmp/g_$v $v b; done; done
echo "done $(( $(date +%s) - t0 )) s"
