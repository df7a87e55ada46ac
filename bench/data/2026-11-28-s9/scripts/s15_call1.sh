#!/usr/bin/env bash
# session 9 call 1 (branch wip/next): linear wgmma modes 0-3 (tests, A/B x2, per-kernel split, ncu mode 2)
# + gathered list-ahead (.gpu/ga_ahead.cu) A/B vs wip/next's (= main's) gathered kernel, tests
set -u
source .gpu/build_k.sh
( $NV -std=c++17 -gencode arch=compute_90a,code=sm_90a -O3 --expt-relaxed-constexpr -lineinfo -Ikernels -c .gpu/ga_ahead.cu -o /tmp/ga_ahead.o && \
  g++ /tmp/bench_main.o /tmp/o/kernels_bench.cpp.o /tmp/o/timing.cpp.o $(echo $COMMON | tr ' ' '\n' | grep -v gathered_attention.cu.o) /tmp/ga_ahead.o -o /tmp/kb_ahead $LIBS && \
  g++ $(echo $COMMON | tr ' ' '\n' | grep -v gathered_attention.cu.o) /tmp/ga_ahead.o /tmp/o/test_kernels.cpp.o -o /tmp/gt_ahead $LIBS /tmp/deps/usr/lib/x86_64-linux-gnu/libgtest.a /tmp/deps/usr/lib/x86_64-linux-gnu/libgtest_main.a && echo AHEAD_OK ) > $O/ahead_build.txt 2>&1 &
timeout 150 /tmp/gt --gtest_color=no --gtest_filter='LinearAttentionCuda.*:KernelErrors.*' > $O/tests.txt 2>&1; echo "tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]" $O/tests.txt | head; grep -B2 -A6 "Failure" $O/tests.txt | head -30
wait; tail -2 $O/ahead_build.txt
for r in 1 2; do for w in 0 1 2 3; do echo "== DYSRA_LINEAR_ATTENTION_WGMMA=$w round $r"; DYSRA_LINEAR_ATTENTION_WGMMA=$w BENCH_JSON=$O/linear_w${w}_$r.jsonl timeout 60 /tmp/kb linear_attention 2>&1 | grep -E "dysra +fwd" | awk '{print $3,$6,$9,$10}'; done; done
echo "bench $(( $(date +%s) - t0 )) s"
for w in 0 2 3; do for f in 1 0; do echo "== WGMMA=$w T16384 nonorm fwd_only=$f"; DYSRA_LINEAR_ATTENTION_WGMMA=$w timeout 60 $NCU --profile-from-start off --csv --page raw --metrics gpu__time_duration.sum /tmp/lp 16384 0 $f 2>/dev/null | python3 -c "
import csv,sys
rows=list(csv.reader(sys.stdin)); h=rows[0]; i=h.index('Kernel Name'); j=h.index('gpu__time_duration.sum')
tot=0
for r in rows[2:]:
  tot+=float(r[j]); print(f'{float(r[j])/1000:8.1f} us  {r[i][:90]}')
print(f'  total {tot/1000:.1f} us')"; done; done
echo "split $(( $(date +%s) - t0 )) s"
timeout 100 /tmp/gt_ahead --gtest_color=no --gtest_filter='GatheredAttentionCuda.*' > $O/tests_ahead.txt 2>&1; echo "ahead tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]" $O/tests_ahead.txt | head; grep -B2 -A6 "Failure" $O/tests_ahead.txt | head -20
for r in 1 2 3; do for b in main ahead; do k=/tmp/kb; [ $b = ahead ] && k=/tmp/kb_ahead; echo "== $b round $r"; BENCH_JSON=$O/gathered_${b}_$r.jsonl timeout 60 $k gathered_attention 2>&1 | grep -E "(dysra|sdpa) +fwd "; done; done > $O/gathered_ab.txt 2>&1
grep -v dense $O/gathered_ab.txt | awk '/==/{m=$2" "$4} /fwd/{print m, $2, $4, $11}'
echo "gathered $(( $(date +%s) - t0 )) s"
DYSRA_LINEAR_ATTENTION_WGMMA=2 timeout 90 $NCU --profile-from-start off -k regex:linear_attention_wgmma --launch-count 1 --set full -o /tmp/lw2 /tmp/lp 16384 0 1 > /dev/null 2>&1; echo "ncu rc=$?"
$NCU -i /tmp/lw2.ncu-rep --page details > $O/ncu_lin2.txt 2>&1
grep -E "Duration|Issue Slots Busy|Registers Per|Achieved Occ|Warp Cycles Per Issued|DRAM Throughput|L2 Hit|Executed Instructions  " $O/ncu_lin2.txt | head -10
echo "done $(( $(date +%s) - t0 )) s"
