#!/usr/bin/env bash
# session 9 call 2 (wip/next): source-level stall profiles of the linear wgmma core, modes 1 and 2, T16384 nonorm fwd
set -u
source .gpu/build_k.sh
for w in 1 2; do
  DYSRA_LINEAR_ATTENTION_WGMMA=$w timeout 150 $NCU --profile-from-start off -k regex:linear_attention_wgmma --launch-count 1 --set full --import-source yes -o /tmp/lw$w /tmp/lp 16384 0 1 > /dev/null 2>&1; echo "ncu $w rc=$?"
  $NCU -i /tmp/lw$w.ncu-rep --page source --csv --print-source sass > /tmp/src$w.csv 2>&1; gzip -c /tmp/src$w.csv > $O/ncu_lin${w}_sass.csv.gz
  $NCU -i /tmp/lw$w.ncu-rep --page details > /tmp/d$w.txt 2>&1
  grep -E "Duration|Issue Slots Busy|Registers Per|Achieved Occ|Warp Cycles Per Issued|DRAM Throughput|L1/TEX Hit|Mem Pipes Busy|Executed Instructions  " /tmp/d$w.txt | head -10
  python3 .gpu/stall_top.py /tmp/src$w.csv 40
  python3 .gpu/ncu_summary.py /tmp/src$w.csv 1 1 60 | tail -40
done
echo "done $(( $(date +%s) - t0 )) s"
