#!/usr/bin/env bash
# session 12: gathered (b) against its data-movement floor and the card's L2/HBM read bandwidth, SM clock per row
set -u
source .gpu/build_k.sh
$NV -std=c++17 -gencode arch=compute_90a,code=sm_90a -O3 -c .gpu/floor.cu -o /tmp/floor.o && $CXX -c .gpu/floor_main.cpp -o /tmp/floor_main.o && \
  g++ /tmp/floor_main.o /tmp/floor.o /tmp/o/timing.cpp.o $COMMON -o /tmp/fl $LIBS && echo FL_OK
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv,noheader -lms 50 > $O/smi.txt 2>&1 &
SMI=$!
sleep 1; timeout 150 /tmp/fl > $O/fl.txt 2>&1; echo "fl rc=$?"; sleep 0.3; kill $SMI
python3 - $O/smi.txt $O/fl.txt <<'PY'
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
grep -v "^[0-9]" $O/fl.txt | head -5
echo "done $(( $(date +%s) - t0 )) s"
