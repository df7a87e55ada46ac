#!/usr/bin/env bash
# session 10 final call: CMake build + ctest -L gpu (scripts/gpu.sh) on main, then dysra bench kernels linear_attention
set -u
O=${OUT:-/tmp/out}; t0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.max.sm,driver_version --format=csv,noheader | tee $O/card.txt
git log -1 --format=%H | tee -a $O/card.txt
DYSRA_CTEST_ARGS="-L gpu" timeout 520 bash scripts/gpu.sh true > $O/build.log 2>&1; echo "gpu.sh rc=$?"
grep -E "build took|tests passed|tests failed|ctest FAILED|\*\*\*Failed|error:|Total Test|Test +#" $O/build.log | tail -30
echo "cmake+ctest $(( $(date +%s) - t0 )) s"
timeout 40 build-gpu/dysra bench kernels --ops linear_attention --warmup 3 --runs 20 --json $O/linear.jsonl 2>&1 | grep dysra
echo "done $(( $(date +%s) - t0 )) s"
