#!/usr/bin/env bash
# session 13: (b) A/B: qreg vs lpr2
set -u
source .gpu/build_k.sh
for v in s13_qreg s13_lpr2; do $NV -std=c++17 -gencode arch=compute_90a,code=sm_90a -O3 --expt-relaxed-constexpr -Ikernels -c .gpu/ga_$v.cu -o /tmp/ga_$v.o & done
$CXX -c .gpu/gb_one.cpp -o /tmp/gb_one.o; wait
OTHERS=$(echo $COMMON | tr ' ' '\n' | grep -v gathered_attention.cu.o | tr '\n' ' ')
for v in s13_qreg s13_lpr2; do g++ /tmp/gb_one.o /tmp/o/timing.cpp.o $OTHERS /tmp/ga_$v.o -o /tmp/g_$v $LIBS && echo ${v}_OK; done
echo "build $(( $(date +%s) - t0 )) s"
timeout 90 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.*' > $O/tests.txt 2>&1; echo "tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]" $O/tests.txt | head -8; grep -B2 -A8 "Failure" $O/tests.txt | head -30
for r in 1 2 3; do for v in s13_qreg s13_lpr2; do timeout 40 /tmp/g_$v $v b; done; done
$CXX -c .gpu/gb_dense.cpp -o /tmp/gb_dense.o && for v in s13_qreg s13_lpr2; do g++ /tmp/gb_dense.o /tmp/o/timing.cpp.o $OTHERS /tmp/ga_$v.o -o /tmp/gd_$v $LIBS && echo GD_${v}_OK; done
for v in s13_qreg s13_lpr2; do echo "== dense vs $v"; cp /tmp/gd_$v /tmp/gd
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv,noheader -lms 50 > $O/smi.txt 2>&1 &
SMI=$!
sleep 1; timeout 150 /tmp/gd > $O/gd.txt 2>&1; echo "gd rc=$?"; sleep 0.3; kill $SMI
python3 - $O/smi.txt $O/gd.txt <<'PY'
import sys
smi=[l.strip().split(', ') for l in open(sys.argv[1]) if l.count(',')>=4]
rows=[l.rstrip('\n').split(' ',1) for l in open(sys.argv[2]) if l[:1].isdigit()]
prev=''
for ts,row in rows:
    seg=[s for s in smi if prev < s[0].split()[1][:12] <= ts]
    seg=seg[-max(1,len(seg)//2):] if 'cool' in row else seg  # a cool row's interval starts with the rest
    if seg:
        cl=[int(s[1].split()[0]) for s in seg]; th=sorted(set(s[4][-3:] for s in seg))
        print(f"{ts} {row.strip()} | MHz {min(cl)}-{max(cl)} (mean {sum(cl)/len(cl):.0f}) T {seg[-1][3]} thr {th}")
    else: print(ts, row.strip())
    prev=ts
PY
grep -v "^[0-9]" $O/gd.txt | head -5
true "done $(( $(date +%s) - t0 )) s"
done
echo "done $(( $(date +%s) - t0 )) s"
