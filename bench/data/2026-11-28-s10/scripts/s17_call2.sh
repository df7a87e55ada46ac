#!/usr/bin/env bash
# session 10 call 2: main + k sums in the kernels (wgmma n8 against a ones tile; mma.sync ones fragment) + segment
# sums in one wave (n_sub floor, 4 blocks/SM); tests, per-kernel split, dysra bench around fla-core nonorm x2; ~7 min
set -u
source .gpu/build_k.sh
timeout 150 /tmp/gt --gtest_color=no --gtest_filter='LinearAttentionCuda.*:KernelErrors.*' > $O/tests.txt 2>&1; echo "tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|OK \]" $O/tests.txt | head -12; grep -B2 -A8 "Failure" $O/tests.txt | head -40
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/peers/fla_core*.whl > /dev/null 2>&1
dy() { echo "-- dysra $1"; timeout 60 /tmp/kb linear_attention 2>&1 | grep -E "dysra +fwd" | awk '{print $3, $6, $9, $10, $11}'; }
dy 0
for T in 16384 4096; do for f in 1 0; do echo "== split T$T nonorm fwd_only=$f"; timeout 60 $NCU --profile-from-start off --csv --page raw --metrics gpu__time_duration.sum /tmp/lp $T 0 $f 2>/dev/null | python3 .gpu/split.py; done; done
echo "== split T16384 norm fwd_only=0"; timeout 60 $NCU --profile-from-start off --csv --page raw --metrics gpu__time_duration.sum /tmp/lp 16384 1 0 2>/dev/null | python3 .gpu/split.py
for r in 1 2; do
  PYTHONPATH=/tmp/site timeout $([ $r = 1 ] && echo 200 || echo 120) python3 scripts/bench_peers.py --only fla --fla-modes nonorm --json $O/fla_$r.jsonl > $O/fla_$r.txt 2>&1; echo "fla round $r rc=$? at $(( $(date +%s) - t0 )) s"
  python3 -c "
import json
for l in open('$O/fla_$r.jsonl'):
    r=json.loads(l); print('fla', r['shape'], r['pass'], r['median_ms'], r['min_ms'])" 2>&1 | tail -4
  dy $r
done
echo "done $(( $(date +%s) - t0 )) s"
