#!/usr/bin/env bash
# session 11: A/B of DYSRA_LINEAR_ATTENTION_REUSE_SUMS (dq call reusing the forward's segment sums) on the normalised op
set -u
source .gpu/build_k.sh
for r in 1 0; do for a in "4096 1 0" "4096 0 0"; do echo "== REUSE_SUMS=$r split $a"; DYSRA_LINEAR_ATTENTION_REUSE_SUMS=$r timeout 60 $NCU --profile-from-start off --csv --page raw --metrics gpu__time_duration.sum /tmp/lp $a 2>/dev/null | python3 .gpu/split.py | grep -E "mma_kernel|sum_kernel|total"; done; done
for r in 0 1; do echo "-- kb REUSE_SUMS=$r"; DYSRA_LINEAR_ATTENTION_REUSE_SUMS=$r BENCH_GRAPHS=1 timeout 100 /tmp/kb linear_attention > $O/kb_$r.txt 2>&1; grep -E "^linear" $O/kb_$r.txt | grep dysra | grep -v "T16384" | tr -s " " | cut -d" " -f3-12; done
echo "done $(( $(date +%s) - t0 )) s"
