#!/usr/bin/env bash
# session 11 last call: linear tests (reuse rule), dysra linear eager + graph rows beside fla (graphs) in one run
set -u
source .gpu/build_k.sh
timeout 60 /tmp/gt --gtest_color=no --gtest_filter='LinearAttentionCuda.*:-LinearAttentionCuda.WgmmaCore' > $O/tests.txt 2>&1; echo "tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|OK \]" $O/tests.txt | head; grep -B2 -A8 "Failure" $O/tests.txt | head -20
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/peers/fla_core*.whl > /dev/null 2>&1
BENCH_GRAPHS=1 BENCH_JSON=$O/kb_lin.jsonl timeout 100 /tmp/kb linear_attention > $O/kb_lin.txt 2>&1; echo "kb lin rc=$?"
grep -E "^linear" $O/kb_lin.txt | grep dysra | tr -s " " | cut -d" " -f3-12
PYTHONPATH=/tmp/site timeout 150 python3 scripts/bench_peers.py --only fla --graphs --json $O/peers.jsonl > $O/peers.txt 2>&1; echo "peers rc=$? at $(( $(date +%s) - t0 )) s"
python3 -c "
import json
for l in open('$O/peers.jsonl'):
    r=json.loads(l); print(r['impl'], r['shape'], r['pass'], r['median_ms'], r['min_ms'])" 2>&1
echo "done $(( $(date +%s) - t0 )) s"
