#!/usr/bin/env bash
# session 10 call 5 (branch wip/linear-sum-wgmma): tests, A/B of the segment-sum kernels, split; ~2.5 min
set -u
source .gpu/build_k.sh
timeout 60 /tmp/gt --gtest_color=no --gtest_filter='LinearAttentionCuda.TensorCorePathBf16:LinearAttentionCuda.WgmmaCore:LinearAttentionCuda.Unnormalized' > $O/tests.txt 2>&1; echo "tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|OK \]" $O/tests.txt | head; grep -B2 -A8 "Failure" $O/tests.txt | head -30
for r in 1 2; do for w in 1 0; do echo "== SUMS=$w r$r"; DYSRA_LINEAR_ATTENTION_WGMMA_SUMS=$w timeout 30 /tmp/kb linear_attention 2>&1 | grep -E "dysra +fwd" | grep nonorm | awk '{print $3, $9, $10, $11}'; done; done
for w in 1 0; do echo "== split SUMS=$w T16384 fwd+bwd"; DYSRA_LINEAR_ATTENTION_WGMMA_SUMS=$w timeout 30 $NCU --profile-from-start off --csv --page raw --metrics gpu__time_duration.sum /tmp/lp 16384 0 0 2>/dev/null | python3 .gpu/split.py; done
echo "done $(( $(date +%s) - t0 )) s"
