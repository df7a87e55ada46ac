#!/usr/bin/env bash
# session 12 call 1 (branch wip/next3 = main + wip/aug-sums + wip/gathered-earlyq + wip/gathered-carveout): tests; A/B
# by env (DYSRA_LINEAR_ATTENTION_WGMMA_SUMS=1/0, DYSRA_GATHERED_ATTENTION_WS_EARLY_Q=1/0, _WS_CARVEOUT=0 once) around fla + sdpa peers (graphs), x2
set -u
source .gpu/build_k.sh
timeout 150 /tmp/gt --gtest_color=no --gtest_filter='LinearAttentionCuda.*:GatheredAttentionCuda.*' > $O/tests.txt 2>&1; echo "tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|OK \]" $O/tests.txt | head -12; grep -B2 -A8 "Failure" $O/tests.txt | head -30
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/peers/fla_core*.whl > /dev/null 2>&1
dy() {
  for s in 1 0; do DYSRA_LINEAR_ATTENTION_WGMMA_SUMS=$s BENCH_NO_PEERS=1 BENCH_GRAPHS=1 BENCH_JSON=$O/kb_lin_$1_$s.jsonl timeout 100 /tmp/kb linear_attention > $O/kb_lin_$1_$s.txt 2>&1
    grep -E "^linear" $O/kb_lin_$1_$s.txt | grep "dysra (CUDA graph)" | grep " norm" | tr -s " " | cut -d" " -f3-11 | sed "s/^/r$1 sums$s /"; done
  for q in 1 0; do DYSRA_GATHERED_ATTENTION_WS_EARLY_Q=$q BENCH_NO_PEERS=1 BENCH_GRAPHS=1 BENCH_JSON=$O/kb_ga_$1_$q.jsonl timeout 150 /tmp/kb gathered_attention > $O/kb_ga_$1_$q.txt 2>&1
    grep -E "^gathered" $O/kb_ga_$1_$q.txt | grep " dysra" | grep fwd | grep -v "fwd+bwd" | tr -s " " | cut -d" " -f2-3,9-14 | sed "s/^/r$1 earlyq$q /"; done
  if [ $1 = 0 ]; then  # the driver's default carveout (wip/gathered-carveout's A/B: (b)'s graph row vs eager)
    DYSRA_GATHERED_ATTENTION_WS_CARVEOUT=0 BENCH_NO_PEERS=1 BENCH_GRAPHS=1 timeout 150 /tmp/kb gathered_attention > $O/kb_ga_carve0.txt 2>&1
    grep -E "^gathered" $O/kb_ga_carve0.txt | grep " dysra" | grep fwd | grep -v "fwd+bwd" | tr -s " " | cut -d" " -f2-3,9-14 | sed "s/^/r0 carveout-default /"; fi; }
dy 0
for r in 1 2; do
  [ $r = 2 ] && [ $(( $(date +%s) - t0 )) -gt 420 ] && { echo "round 2 skipped (time)"; break; }
  PYTHONPATH=/tmp/site timeout $([ $r = 1 ] && echo 280 || echo 150) python3 scripts/bench_peers.py --only fla,sdpa --graphs --json $O/peers_$r.jsonl > $O/peers_$r.txt 2>&1; echo "peers round $r rc=$? at $(( $(date +%s) - t0 )) s"
  python3 -c "
import json
for l in open('$O/peers_$r.jsonl'):
    r=json.loads(l); print(r['impl'], r['shape'], r['pass'], r['median_ms'], r['min_ms'])" 2>&1 | grep -E "graph|sdpa_only|dense"
  [ $(( $(date +%s) - t0 )) -lt 480 ] && dy $r
done
echo "done $(( $(date +%s) - t0 )) s"
