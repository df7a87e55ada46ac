#!/usr/bin/env bash
# session 11 call 2 (main + bench --graphs): dysra eager and CUDA-graph rows around fla (both modes) + sdpa peers, x2
set -u
source .gpu/build_k.sh
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/peers/fla_core*.whl > /dev/null 2>&1
dy() { echo "-- dysra $1"
  BENCH_GRAPHS=1 BENCH_JSON=$O/kb_lin_$1.jsonl timeout 120 /tmp/kb linear_attention > $O/kb_lin_$1.txt 2>&1; echo "kb lin rc=$?"
  grep -E "^linear" $O/kb_lin_$1.txt | tr -s " " | cut -d" " -f3-12
  grep skipped $O/kb_lin_$1.txt | cut -c1-250 | head -4
  BENCH_GRAPHS=1 BENCH_JSON=$O/kb_ga_$1.jsonl timeout 200 /tmp/kb gathered_attention > $O/kb_ga_$1.txt 2>&1; echo "kb ga rc=$?"
  grep -E "^gathered|^peak" $O/kb_ga_$1.txt | tr -s " " | cut -d" " -f2-15 | grep -v "(b).*fwd+bwd"
  grep skipped $O/kb_ga_$1.txt | cut -c1-250 | head -4; }
dy 0
for r in 1 2; do
  PYTHONPATH=/tmp/site timeout $([ $r = 1 ] && echo 240 || echo 150) python3 scripts/bench_peers.py --only fla,sdpa --graphs --json $O/peers_$r.jsonl > $O/peers_$r.txt 2>&1; echo "peers round $r rc=$? at $(( $(date +%s) - t0 )) s"
  python3 -c "
import json
for l in open('$O/peers_$r.jsonl'):
    r=json.loads(l); print(r['impl'], r['shape'], r['pass'], r['median_ms'], r['min_ms'])" 2>&1 | tail -24
  grep -h skipped $O/peers_$r.txt | cut -c1-200 | head -3
  [ $r = 1 ] && dy $r
done
echo "done $(( $(date +%s) - t0 )) s"
