#!/usr/bin/env bash
# session 13 final (tree = lazy max + Q in registers, 3K+3V): every GPU test, then dysra's gathered rows (bench with
# LibTorch peers, graphs, 2.5 s rest before each row) and bench_peers.py's sdpa rows (graphs, 2.5 s rest)
set -u
source .gpu/build_k.sh
timeout 180 /tmp/gt --gtest_color=no > $O/tests_all.txt 2>&1; echo "all tests rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|tests ran" $O/tests_all.txt | head -20; grep -B2 -A8 "Failure" $O/tests_all.txt | head -30
BENCH_GRAPHS=1 BENCH_COOLDOWN_MS=2500 timeout 130 /tmp/kb gathered_attention > $O/kb.txt 2>&1; echo "kb rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "gathered|peak|sdpa|gather" $O/kb.txt | tr -s " " | cut -c1-230
timeout 130 python3 scripts/bench_peers.py --only sdpa --graphs --cooldown-ms 2500 --json $O/peers.jsonl > $O/peers.txt 2>&1; echo "peers rc=$? at $(( $(date +%s) - t0 )) s"
python3 -c "
import json,sys
for l in open('$O/peers.jsonl'):
    r=json.loads(l); print(r['shape'][:3], r['impl'], r['median_ms'], r['min_ms'], r['tflops'], r.get('sm_mhz_min'), r.get('sm_mhz_max'), r.get('clock_reasons'))
" 2>&1 | head -12
echo "done $(( $(date +%s) - t0 )) s"
