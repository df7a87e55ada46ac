#!/usr/bin/env bash
# session 10 call 3: k sums without the wgmma serialisation (C7520); tests, split, dysra around fla nonorm x2, memcheck
set -u
source .gpu/build_k.sh
timeout 150 /tmp/gt --gtest_color=no --gtest_filter='LinearAttentionCuda.*:KernelErrors.*' > $O/tests.txt 2>&1; echo "tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|OK \]" $O/tests.txt | head -12; grep -B2 -A8 "Failure" $O/tests.txt | head -40
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/peers/fla_core*.whl > /dev/null 2>&1
dy() { echo "-- dysra $1"; timeout 60 /tmp/kb linear_attention 2>&1 | grep -E "dysra +fwd" | awk '{print $3, $6, $9, $10, $11}'; }
dy 0
for a in "16384 0 1" "16384 0 0" "4096 0 1"; do echo "== split $a"; timeout 60 $NCU --profile-from-start off --csv --page raw --metrics gpu__time_duration.sum /tmp/lp $a 2>/dev/null | python3 .gpu/split.py; done
for r in 1 2; do
  PYTHONPATH=/tmp/site timeout $([ $r = 1 ] && echo 200 || echo 120) python3 scripts/bench_peers.py --only fla --fla-modes nonorm --json $O/fla_$r.jsonl > $O/fla_$r.txt 2>&1; echo "fla round $r rc=$? at $(( $(date +%s) - t0 )) s"
  python3 -c "
import json
for l in open('$O/fla_$r.jsonl'):
    r=json.loads(l); print('fla', r['shape'], r['pass'], r['median_ms'], r['min_ms'])" 2>&1 | tail -4
  dy $r
done
rem=$(( 560 - ($(date +%s) - t0) )); echo "memcheck budget $rem s"
timeout $rem /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/gt --gtest_color=no --gtest_filter='LinearAttentionCuda.Unnormalized:LinearAttentionCuda.TensorCorePathBf16:LinearAttentionCuda.WgmmaCore' > $O/memcheck.txt 2>&1; echo "memcheck rc=$?"
grep -E "ERROR SUMMARY|OK \]|FAILED" $O/memcheck.txt | head
echo "done $(( $(date +%s) - t0 )) s"
