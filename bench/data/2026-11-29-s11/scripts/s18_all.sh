#!/usr/bin/env bash
# session 11 call 1 (branch wip/next2 = main + wip/linear-decoupled + wip/gathered-pregather): new tests; A/B linear
# WGMMA=2/4 and gathered PREGATHER=0/1 around fla nonorm + sdpa peers (eager and --graphs) run twice; ~8-9 min
set -u
source .gpu/build_k.sh
timeout 120 /tmp/gt --gtest_color=no --gtest_filter='LinearAttentionCuda.WgmmaCore:LinearAttentionCuda.Unnormalized:GatheredAttentionCuda.PreGatheredLists:GatheredAttentionCuda.CausalGqaOddSizes' > $O/tests.txt 2>&1; echo "tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|OK \]" $O/tests.txt | head; grep -B2 -A8 "Failure" $O/tests.txt | head -30
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/peers/fla_core*.whl > /dev/null 2>&1
dy() { echo "-- dysra $1"
  for w in 2 4; do DYSRA_LINEAR_ATTENTION_WGMMA=$w timeout 40 /tmp/kb linear_attention 2>&1 | grep -E "dysra +fwd" | grep nonorm | grep T16384 | awk -v w=$w '{print "lin mode" w, $3, $9, $10, $11}'; done
  timeout 40 /tmp/kb linear_attention 2>&1 | grep -E "dysra +fwd" | grep nonorm | grep T4096 | awk '{print "lin default", $3, $9, $10, $11}'
  for g in 0 1; do DYSRA_GATHERED_ATTENTION_PREGATHER=$g timeout 60 /tmp/kb gathered_attention 2>&1 | grep -E " dysra " | tr -s " " | cut -c1-110 | head -3 | sed "s/^/pregather$g /"; done; }
dy 0
for r in 1 2; do
  PYTHONPATH=/tmp/site timeout $([ $r = 1 ] && echo 240 || echo 120) python3 scripts/bench_peers.py --only fla,sdpa --fla-modes nonorm --graphs --json $O/peers_$r.jsonl > $O/peers_$r.txt 2>&1; echo "peers round $r rc=$? at $(( $(date +%s) - t0 )) s"
  python3 -c "
import json
for l in open('$O/peers_$r.jsonl'):
    r=json.loads(l); print(r['impl'], r['shape'], r['pass'], r['median_ms'], r['min_ms'])" 2>&1 | tail -14
  grep -h skipped $O/peers_$r.txt | cut -c1-200 | head -3
  dy $r
done
echo "done $(( $(date +%s) - t0 )) s"
