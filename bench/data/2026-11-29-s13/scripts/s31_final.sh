#!/usr/bin/env bash
# session 13 final 2 (main + key-major backward): every GPU test, gathered bench rows with LibTorch peers (graphs, 2.5 s
# rest before each row)
set -u
source .gpu/build_k.sh
timeout 180 /tmp/gt --gtest_color=no > $O/tests_all.txt 2>&1; echo "all tests rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|tests ran" $O/tests_all.txt | head -20; grep -B2 -A8 "Failure" $O/tests_all.txt | head -30
BENCH_GRAPHS=1 BENCH_COOLDOWN_MS=2500 timeout 130 /tmp/kb gathered_attention > $O/kb.txt 2>&1; echo "kb rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "gathered|peak" $O/kb.txt | tr -s " " | cut -c1-200
echo "done $(( $(date +%s) - t0 )) s"
