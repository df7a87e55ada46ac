#!/usr/bin/env bash
# session 12: gathered (b) eager and graph rows alternated with dense causal SDPA, SM clock per row (nvidia-smi 50 ms)
set -u
source .gpu/build_k.sh
$CXX -c .gpu/gb_alt.cpp -o /tmp/gb_alt.o && g++ /tmp/gb_alt.o /tmp/o/timing.cpp.o $COMMON -o /tmp/gb $LIBS && echo GB_OK
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv,noheader -lms 50 > $O/smi.txt 2>&1 &
SMI=$!
sleep 1; timeout 200 /tmp/gb > $O/gb.txt 2>&1; echo "gb rc=$?"; sleep 0.3; kill $SMI
python3 - $O/smi.txt $O/gb.txt <<'PY'
import sys
smi=[l.strip().split(', ') for l in open(sys.argv[1]) if l.count(',')>=4]
rows=[l.rstrip('\n').split(' ',1) for l in open(sys.argv[2]) if l[:1].isdigit()]
prev=''
for ts,row in rows:
    seg=[s for s in smi if prev < s[0].split()[1][:12] <= ts]
    if seg:
        cl=[int(s[1].split()[0]) for s in seg]; pw=[float(s[2].split()[0]) for s in seg]; th=sorted(set(s[4][-3:] for s in seg))
        print(f"{ts} {row.strip()} | MHz {min(cl)}-{max(cl)} (mean {sum(cl)/len(cl):.0f}) W {min(pw):.0f}-{max(pw):.0f} T {seg[-1][3]} thr {th}")
    else: print(ts, row.strip())
    prev=ts
PY
grep -v "^[0-9]" $O/gb.txt | head -5
echo "done $(( $(date +%s) - t0 )) s"
BENCH_GRAPHS=1 timeout 150 /tmp/kb gathered_attention > $O/kb_ga.txt 2>&1; echo "kb rc=$?"; grep -E "^gathered|^peak" $O/kb_ga.txt | tr -s " "
timeout 150 python3 scripts/bench_peers.py --only sdpa --graphs > $O/peers.txt 2>&1; echo "peers rc=$?"; grep -E "sdpa|gather" $O/peers.txt | grep -v "^{" | tr -s " " | head -12
echo "all done $(( $(date +%s) - t0 )) s"
