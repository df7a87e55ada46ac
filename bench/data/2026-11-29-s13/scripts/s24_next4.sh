#!/usr/bin/env bash
# next session (branch wip/next4 = main + wip/gathered-lazy-rescale + wip/gathered-vstages): gathered tests on the
# tree, then shape (b) (and (a)) A/B in alternating processes, each cool (after a 2.5 s rest) and steady:
#   both = the tree (lazy max + 2K/3V), lazy = .gpu/ga_s12_lazy.cu, v3 = .gpu/ga_s12_v3.cu, main = .gpu/ga_s12_main.cu
set -u
source .gpu/build_k.sh
for v in main lazy v3; do $NV -std=c++17 -gencode arch=compute_90a,code=sm_90a -O3 --expt-relaxed-constexpr -Ikernels -c .gpu/ga_s12_$v.cu -o /tmp/ga_$v.o & done
$CXX -c .gpu/gb_one.cpp -o /tmp/gb_one.o; wait
OTHERS=$(echo $COMMON | tr ' ' '\n' | grep -v gathered_attention.cu.o | tr '\n' ' ')
g++ /tmp/gb_one.o /tmp/o/timing.cpp.o $COMMON -o /tmp/g_both $LIBS && echo BOTH_OK
for v in main lazy v3; do g++ /tmp/gb_one.o /tmp/o/timing.cpp.o $OTHERS /tmp/ga_$v.o -o /tmp/g_$v $LIBS && echo ${v}_OK; done
echo "build $(( $(date +%s) - t0 )) s"
timeout 90 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.*' > $O/tests.txt 2>&1; echo "tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|OK \]" $O/tests.txt | head -8; grep -B2 -A8 "Failure" $O/tests.txt | head -30
for r in 1 2 3; do for v in both lazy v3 main; do timeout 40 /tmp/g_$v $v b; done; done
for v in both main; do timeout 40 /tmp/g_$v $v a; done
[ $(( $(date +%s) - t0 )) -lt 420 ] && { timeout 100 /usr/local/cuda/bin/compute-sanitizer --tool racecheck --error-exitcode 9 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.IndicesOutOfRange' > $O/race_ga.txt 2>&1; echo "racecheck rc=$?"; grep -E "RACECHECK SUMMARY" $O/race_ga.txt; }
echo "done $(( $(date +%s) - t0 )) s"
timeout 150 python3 scripts/bench_peers.py --only sdpa --graphs --cooldown-ms 500 > $O/peers.txt 2>&1; echo "peers rc=$?"; grep -m3 -E "sm_mhz|MHz" $O/peers.txt | cut -c1-400; tail -3 $O/peers.txt | cut -c1-300
echo "all done $(( $(date +%s) - t0 )) s"
