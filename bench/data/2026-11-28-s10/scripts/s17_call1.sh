#!/usr/bin/env bash
# session 10 call 1: main + wip/linear-pipe's linear_attention.cu built side by side; pipe tests (WgmmaCore runs
# modes 1-3); dysra main / pipe mode 3 / pipe mode 2 benches around fla-core's unnormalised mode run twice
# (round 2 = same-run figure; round 1 carries Triton compiles); per-kernel split at T4096 and T16384; ~8 min
set -u
mkdir -p /tmp/p
NV0=/usr/local/cuda/bin/nvcc
( $NV0 -std=c++17 -gencode arch=compute_90a,code=sm_90a -O3 --expt-relaxed-constexpr -lineinfo -Ikernels -c .gpu/pipe/linear_attention.cu -o /tmp/p/la.o || echo PIPE_LA_FAIL ) &
source .gpu/build_k.sh
TP=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
$CXX -c .gpu/pipe/test_kernels.cpp -o /tmp/p/tk.o || echo PIPE_TK_FAIL
C3=$(echo $COMMON | sed 's#/tmp/o/linear_attention.cu.o#/tmp/p/la.o#')
g++ $C3 /tmp/p/tk.o -o /tmp/gt3 $LIBS /tmp/deps/usr/lib/x86_64-linux-gnu/libgtest.a /tmp/deps/usr/lib/x86_64-linux-gnu/libgtest_main.a && echo GT3_OK
g++ /tmp/bench_main.o /tmp/o/kernels_bench.cpp.o /tmp/o/timing.cpp.o $C3 -o /tmp/kb3 $LIBS && echo KB3_OK
g++ /tmp/lin_prof.o $C3 -o /tmp/lp3 $LIBS && echo LP3_OK
echo "builds $(( $(date +%s) - t0 )) s"
timeout 120 /tmp/gt3 --gtest_color=no --gtest_filter='LinearAttentionCuda.WgmmaCore:LinearAttentionCuda.*Unnorm*' > $O/tests3.txt 2>&1; echo "pipe tests rc=$?"
grep -E "^\[  (FAILED|PASSED)|FAILED  \]|^\[       OK" $O/tests3.txt | head; grep -B2 -A6 "Failure" $O/tests3.txt | head -20
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/peers/fla_core*.whl > /dev/null 2>&1
dy() { echo "-- dysra $1"; timeout 60 /tmp/kb linear_attention 2>&1 | grep -E "dysra +fwd" | grep nonorm | awk '{print "main", $3, $9, $10, $11}'
  DYSRA_LINEAR_ATTENTION_WGMMA=3 timeout 60 /tmp/kb3 linear_attention 2>&1 | grep -E "dysra +fwd" | grep nonorm | awk '{print "pipe3", $3, $9, $10, $11}'
  DYSRA_LINEAR_ATTENTION_WGMMA=2 timeout 60 /tmp/kb3 linear_attention 2>&1 | grep -E "dysra +fwd" | grep nonorm | awk '{print "pipe2", $3, $9, $10, $11}'; }
dy 0
for r in 1 2; do
  PYTHONPATH=/tmp/site timeout $([ $r = 1 ] && echo 200 || echo 150) python3 scripts/bench_peers.py --only fla --fla-modes nonorm --json $O/fla_$r.jsonl > $O/fla_$r.txt 2>&1; echo "fla round $r rc=$? at $(( $(date +%s) - t0 )) s"
  python3 -c "
import json
for l in open('$O/fla_$r.jsonl'):
    r=json.loads(l); print('fla', r['shape'], r['pass'], r['median_ms'], r['min_ms'])" 2>&1 | tail -4
  dy $r
done
for T in 4096 16384; do for f in 1 0; do echo "== split main T$T nonorm fwd_only=$f"; timeout 60 $NCU --profile-from-start off --csv --page raw --metrics gpu__time_duration.sum /tmp/lp $T 0 $f 2>/dev/null | python3 .gpu/split.py; done; done
echo "done $(( $(date +%s) - t0 )) s"
