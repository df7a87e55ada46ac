#!/usr/bin/env bash
# session 9 call 3 (wip/next 'stages its bf16 output'): tests, A/B linear WGMMA 0/1/2 x2, stall profiles of modes 1 and 2
set -u
source .gpu/build_k.sh
timeout 150 /tmp/gt --gtest_color=no --gtest_filter='LinearAttentionCuda.*:KernelErrors.*' > $O/tests.txt 2>&1; echo "tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]" $O/tests.txt | head; grep -B2 -A6 "Failure" $O/tests.txt | head -30
for r in 1 2; do for w in 0 1 2; do echo "== DYSRA_LINEAR_ATTENTION_WGMMA=$w round $r"; DYSRA_LINEAR_ATTENTION_WGMMA=$w timeout 60 /tmp/kb linear_attention 2>&1 | grep -E "dysra +fwd" | awk '{print $3,$6,$9,$10}'; done; done
echo "bench $(( $(date +%s) - t0 )) s"
for w in 1 2; do
  DYSRA_LINEAR_ATTENTION_WGMMA=$w timeout 100 $NCU --profile-from-start off -k regex:linear_attention_wgmma --launch-count 1 --set full --import-source yes -o /tmp/lw$w /tmp/lp 16384 0 1 > /dev/null 2>&1; echo "ncu $w rc=$?"
  $NCU -i /tmp/lw$w.ncu-rep --page source --csv --print-source sass > /tmp/src$w.csv 2>&1; gzip -c /tmp/src$w.csv > $O/ncu_lin${w}_sass.csv.gz
  $NCU -i /tmp/lw$w.ncu-rep --page details > /tmp/d$w.txt 2>&1
  grep -E "Duration|Issue Slots Busy|Registers Per|Warp Cycles Per Issued|DRAM Throughput|Executed Instructions  " /tmp/d$w.txt | head -8
  python3 .gpu/stall_top.py /tmp/src$w.csv 16
done
echo "done $(( $(date +%s) - t0 )) s"
