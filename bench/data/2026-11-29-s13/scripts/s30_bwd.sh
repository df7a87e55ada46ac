#!/usr/bin/env bash
# session 13: key-major dk/dv backward for lists shared by >= 128 rows: gathered tests (incl. BackwardKeyMajor), (a)/(b)
# fwd+bwd rows with DYSRA_GATHERED_ATTENTION_BWD_KEYS default / 0 alternating, sanitizers of the new kernel
set -u
source .gpu/build_k.sh
timeout 120 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.*' > $O/tests.txt 2>&1; echo "tests rc=$? at $(( $(date +%s) - t0 )) s"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|OK \]" $O/tests.txt | head -10; grep -B2 -A12 "Failure" $O/tests.txt | head -40
for r in 1 2; do for kk in def 0; do
  if [ $kk = def ]; then unset DYSRA_GATHERED_ATTENTION_BWD_KEYS; else export DYSRA_GATHERED_ATTENTION_BWD_KEYS=0; fi
  echo "== BWD_KEYS=$kk round $r"; BENCH_NO_PEERS=1 BENCH_GRAPHS=1 BENCH_COOLDOWN_MS=1000 timeout 90 /tmp/kb gathered_attention 2>&1 | grep -E "dysra" | tr -s " " | cut -c1-160
done; done
unset DYSRA_GATHERED_ATTENTION_BWD_KEYS
echo "bench done $(( $(date +%s) - t0 )) s"
for tool in racecheck memcheck; do
  [ $(( $(date +%s) - t0 )) -gt 420 ] && { echo "$tool skipped (time)"; continue; }
  timeout 120 /usr/local/cuda/bin/compute-sanitizer --tool $tool --error-exitcode 9 /tmp/gt --gtest_color=no --gtest_filter='GatheredAttentionCuda.BackwardKeyMajor' > $O/${tool}.txt 2>&1; echo "$tool rc=$? at $(( $(date +%s) - t0 )) s"
  grep -E "SUMMARY|OK \]|FAILED" $O/${tool}.txt | head -4
done
echo "done $(( $(date +%s) - t0 )) s"
