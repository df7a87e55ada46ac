#!/usr/bin/env bash
# session 12 call 4 (main = 424ccb0 + aug sums + early Q): every GPU test, (b) eager-vs-graph probes (clocks/power
# while the bench runs; ncu per-launch durations eager vs graph nodes), sanitizers of the two new kernel changes
set -u
source .gpu/build_k.sh
timeout 200 /tmp/gt --gtest_color=no > $O/tests_all.txt 2>&1; echo "all tests rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|tests ran" $O/tests_all.txt | head -20; grep -B2 -A8 "Failure" $O/tests_all.txt | head -30
# (1) clocks and power while dysra's gathered rows run (timestamps on each printed row)
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv,noheader -lms 100 > $O/smi.txt 2>&1 &
SMI=$!
BENCH_NO_PEERS=1 BENCH_GRAPHS=1 timeout 150 /tmp/kb gathered_attention 2>&1 | while IFS= read -r l; do echo "$(date +%H:%M:%S.%N | cut -c1-12) $l"; done > $O/kb_ts.txt
kill $SMI; grep -E "gathered|peak" $O/kb_ts.txt | tr -s " " | cut -c1-140
python3 - $O/smi.txt $O/kb_ts.txt <<'PY'
import sys
smi=[l.strip().split(', ') for l in open(sys.argv[1]) if l.count(',')>=5]
rows=[l.split(' ',1) for l in open(sys.argv[2]) if 'gathered' in l or 'peak' in l]
prev=smi[0][0].split()[1][:12] if smi else ''
for ts,row in rows:
    seg=[s for s in smi if prev < s[0].split()[1][:12] <= ts]
    if seg:
        cl=[int(s[1].split()[0]) for s in seg]; pw=[float(s[3].split()[0]) for s in seg]; th=sorted(set(s[5] for s in seg))
        print(f"{' '.join(row.split())[:120]} | sm MHz {min(cl)}-{max(cl)} W {min(pw):.0f}-{max(pw):.0f} thr {th}")
    prev=ts
PY
# (2) ncu: each launch of the (b) kernel (one consumer, 64-key tiles), eager and as graph nodes
if [ $(( $(date +%s) - t0 )) -lt 300 ]; then
BENCH_NO_PEERS=1 BENCH_GRAPHS=1 timeout 200 $NCU --graph-profiling node --kernel-name-base demangled \
  --kernel-name "regex:fwd_ws_kernel<__nv_bfloat16, 1, 64" --csv --page raw \
  --metrics gpu__time_duration.sum,sm__cycles_active.avg,gpc__cycles_elapsed.max,lts__t_sector_hit_rate.pct,launch__grid_size,launch__occupancy_limit_shared_mem,launch__shared_mem_per_block_dynamic \
  /tmp/kb gathered_attention > $O/ncu_b.csv 2> $O/ncu_b.err; echo "ncu rc=$? at $(( $(date +%s) - t0 )) s"
python3 - $O/ncu_b.csv <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
k = next((i for i, r in enumerate(rows) if 'Kernel Name' in r), None)
if k is None: print('no csv'); sys.exit()
h = rows[k]
for m in ['gpu__time_duration.sum','sm__cycles_active.avg','gpc__cycles_elapsed.max','lts__t_sector_hit_rate.pct','launch__grid_size','launch__occupancy_limit_shared_mem','launch__shared_mem_per_block_dynamic']:
    if m not in h: print(m, 'missing'); continue
    j = h.index(m)
    v = [r[j] for r in rows[k + 2:] if len(r) > j]
    print(m, rows[k + 1][j], ' '.join(x.replace(',', '')[:7] for x in v))
PY
tail -3 $O/ncu_b.err
fi
# (3) sanitizers: early Q (ws D128 cases of IndicesOutOfRange), the augmented warpgroup sums
timeout 90 /usr/local/cuda/bin/compute-sanitizer --tool racecheck --error-exitcode 9 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.IndicesOutOfRange' > $O/race_ga.txt 2>&1; echo "racecheck ga rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "RACECHECK SUMMARY|ERROR SUMMARY|hazard|OK \]|FAILED" $O/race_ga.txt | head -5
for tool in racecheck memcheck; do
  [ $(( $(date +%s) - t0 )) -gt 440 ] && { echo "$tool skipped (time)"; continue; }
  timeout 70 /usr/local/cuda/bin/compute-sanitizer --tool $tool --error-exitcode 9 /tmp/lp 1024 1 > $O/${tool}_lin.txt 2>&1; echo "$tool lin (lp T1024 norm fwd+bwd) rc=$? at $(( $(date +%s) - t0 )) s"
  grep -E "SUMMARY|hazard|^ok" $O/${tool}_lin.txt | head -5
done
echo "done $(( $(date +%s) - t0 )) s"
