#!/usr/bin/env bash
# session 12: ncu full set + source stalls of one gathered (b) forward launch (the first ws kernel of gb_dense)
set -u
source .gpu/build_k.sh
$CXX -c .gpu/gb_dense.cpp -o /tmp/gb_dense.o && g++ /tmp/gb_dense.o /tmp/o/timing.cpp.o $COMMON -o /tmp/gd $LIBS && echo GD_OK
timeout 240 $NCU -k regex:gathered_attention_fwd_ws_kernel --launch-count 1 --set full --import-source yes -o /tmp/gb /tmp/gd > $O/ncu_run.txt 2>&1; echo "ncu rc=$? at $(( $(date +%s) - t0 )) s"
tail -3 $O/ncu_run.txt
$NCU -i /tmp/gb.ncu-rep --page source --csv --print-source sass > /tmp/src.csv 2>&1; gzip -c /tmp/src.csv > $O/ncu_b_sass.csv.gz
$NCU -i /tmp/gb.ncu-rep --page details > $O/details.txt 2>&1
grep -E "Duration|SM Frequency|Issue Slots Busy|Registers Per|Achieved Occ|Theoretical Occ|Warp Cycles Per Issued|L2 Hit|L1/TEX Hit|Mem Pipes Busy|Executed Ipc|Compute \(SM\) Throughput|Memory Throughput|L2 Cache Throughput|Block Limit" $O/details.txt | head -24
python3 .gpu/stall_top.py /tmp/src.csv 45
echo "done $(( $(date +%s) - t0 )) s"
