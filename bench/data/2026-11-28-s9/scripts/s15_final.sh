#!/usr/bin/env bash
# session 9 final call (main 8be3df4: TMA linear core default from T 8192): CMake build + ctest -L gpu; dysra bench
# linear_attention + fla-core both modes in the same run
set -u
O=${OUT:-/tmp/out}; t0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.max.sm,driver_version --format=csv,noheader | tee $O/card.txt
git log -1 --format=%H >> $O/card.txt 2>/dev/null || true
DYSRA_CTEST_ARGS="-L gpu" timeout 380 bash scripts/gpu.sh true > $O/build.log 2>&1; echo "gpu.sh rc=$?"
grep -E "build took|tests passed|tests failed|ctest FAILED|\*\*\*Failed|error:|Total Test" $O/build.log | head -20
echo "cmake+ctest $(( $(date +%s) - t0 )) s"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/peers/fla_core*.whl > /dev/null 2>&1
timeout 40 build-gpu/dysra bench kernels --ops linear_attention --warmup 3 --runs 20 --json $O/linear_1.jsonl 2>&1 | grep dysra
PYTHONPATH=/tmp/site timeout 120 python3 scripts/bench_peers.py --only fla --fla-modes both --json $O/peers.jsonl > $O/peers.txt 2>&1; echo "peers rc=$?"
python3 -c "
import json
for l in open('$O/peers.jsonl'):
    r=json.loads(l); print(r['shape'], r['impl'], r['pass'], r['median_ms'])"
timeout 40 build-gpu/dysra bench kernels --ops linear_attention --warmup 3 --runs 20 --json $O/linear_2.jsonl 2>&1 | grep dysra
echo "done $(( $(date +%s) - t0 )) s"
