#!/usr/bin/env bash
# session 11 call 3: gathered without the index sync (eager + graph rows), linear graph rows (norm T16384 fwd+bwd),
# ncu split of linear norm/nonorm T4096 fwd+bwd, peers once (fla both modes, sdpa) with graphs
set -u
source .gpu/build_k.sh
timeout 100 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.IndicesOutOfRange:GatheredAttentionCuda.CausalGqaOddSizes:GatheredAttentionCuda.EachDtype:LinearAttentionCuda.Unnormalized' > $O/tests.txt 2>&1; echo "tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|OK \]" $O/tests.txt | head; grep -B2 -A8 "Failure" $O/tests.txt | head -30
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/peers/fla_core*.whl > /dev/null 2>&1
BENCH_GRAPHS=1 BENCH_JSON=$O/kb_ga.jsonl timeout 200 /tmp/kb gathered_attention > $O/kb_ga.txt 2>&1; echo "kb ga rc=$?"
grep -E "^gathered|^peak" $O/kb_ga.txt | tr -s " " | cut -d" " -f2-15
grep -E "skipped|what" $O/kb_ga.txt | cut -c1-250 | head -4
for a in "4096 1 0" "4096 0 0" "4096 1 1"; do echo "== split $a"; timeout 60 $NCU --profile-from-start off --csv --page raw --metrics gpu__time_duration.sum /tmp/lp $a 2>/dev/null | python3 .gpu/split.py; done
PYTHONPATH=/tmp/site timeout 240 python3 scripts/bench_peers.py --only fla,sdpa --graphs --json $O/peers.jsonl > $O/peers.txt 2>&1; echo "peers rc=$? at $(( $(date +%s) - t0 )) s"
python3 -c "
import json
for l in open('$O/peers.jsonl'):
    r=json.loads(l); print(r['impl'], r['shape'], r['pass'], r['median_ms'], r['min_ms'])" 2>&1 | grep -E "graph|sdpa_only" 
BENCH_GRAPHS=1 BENCH_JSON=$O/kb_lin.jsonl timeout 150 /tmp/kb linear_attention > $O/kb_lin.txt 2>&1; echo "kb lin rc=$?"
grep -E "^linear" $O/kb_lin.txt | grep dysra | tr -s " " | cut -d" " -f3-12
grep -E "skipped|what" $O/kb_lin.txt | cut -c1-250 | head -4
echo "done $(( $(date +%s) - t0 )) s"
