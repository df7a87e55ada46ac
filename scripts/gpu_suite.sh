#!/usr/bin/env bash
# The GPU measurements of issues 2, 3, 4 and 6 in one call (run through scripts/gpu.sh after its build):
#   bash scripts/gpu.sh bash scripts/gpu_suite.sh
# Writes into $OUT (or ./gpu_out): kernels.jsonl, peers.jsonl, backbones.jsonl, mqar_table.md, runs.tar.gz, suite.log.
# Each stage has its own time limit so a slow one cannot starve the rest; DYSRA_SUITE_STAGES picks stages.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
O="${OUT:-$ROOT/gpu_out}"
mkdir -p "$O" runs/gpu
B="${DYSRA_BUILD_DIR:-$ROOT/build-gpu}/dysra"
STAGES="${DYSRA_SUITE_STAGES:-kernels mqar sweep passkey wordnet backbones}"
log() { echo "[suite $(date +%H:%M:%S)] $*" | tee -a "$O/suite.log"; }
has() { [[ " $STAGES " == *" $1 "* ]]; }
nvidia-smi --query-gpu=name --format=csv,noheader | tee -a "$O/suite.log"
git rev-parse --short HEAD 2>/dev/null | tee -a "$O/suite.log"
# data built here travels in the ignored .gpu/data (the device machine has no network and no Debian packages)
[[ -d data/generated || ! -d .gpu/data/generated ]] || { mkdir -p data && cp -r .gpu/data/generated data/; }

if has kernels; then
  log "kernel tests under compute-sanitizer"
  timeout 120 bash scripts/gpu_kernels_check.sh "$(dirname "$B")/tests/dysra_gpu_tests" >> "$O/suite.log" 2>&1 || log "kernel check failed"
  log "kernel bench"
  # (--graphs: each side also timed on CUDA-graph replays, its GPU time without launch overhead; compare those rows.
  # Every row carries the SM clock it ran at: compare rows at one clock. DYSRA_SUITE_COOLDOWN_MS rests the card before
  # each row, at ~2 s per row, about 60 rows in all: raise the stage limits with it)
  CD="${DYSRA_SUITE_COOLDOWN_MS:-0}"
  timeout $((300 + 35 * CD / 1000)) "$B" bench kernels --warmup 3 --runs 20 --graphs --cooldown-ms "$CD" \
    --json "$O/kernels.jsonl" >> "$O/suite.log" 2>&1 || log "kernel bench failed"
  timeout $((240 + 30 * CD / 1000)) python3 scripts/bench_peers.py --graphs --cooldown-ms "$CD" --json "$O/peers.jsonl" \
    >> "$O/suite.log" 2>&1 || log "peers failed"
fi
# background: the MQAR sweep (many small runs share the GPU), passkey and WordNet training
if has sweep; then
  log "mqar sweep (background)"
  (DYSRA_BIN="$B" DYSRA_RUN_TIMEOUT=${DYSRA_SWEEP_RUN_S:-60} bash scripts/mqar_sweep.sh runs/gpu/sweep cuda \
    ${DYSRA_SWEEP_PAR:-18} ${DYSRA_SWEEP_STEPS:-2000} > "$O/mqar_table.md" 2>> "$O/suite.log") &
fi
if has passkey; then
  log "passkey 4K (background)"
  (timeout -s TERM ${DYSRA_TRAIN_S:-200} "$B" train experiments/passkey.yaml --device cuda --run-dir runs/gpu/passkey --set log.progress=lines > runs/gpu/passkey.log 2>&1) &
fi
if has wordnet && [[ -f data/generated/wordnet_define/train.jsonl ]]; then
  log "wordnet define (background)"
  (timeout -s TERM ${DYSRA_TRAIN_S:-200} "$B" train experiments/wordnet_define.yaml --device cuda --run-dir runs/gpu/wordnet --set log.progress=lines > runs/gpu/wordnet.log 2>&1) &
fi
if has mqar; then
  log "mqar transformer (issue 2)"
  ( time timeout -s TERM ${DYSRA_TRAIN_S:-200} "$B" train experiments/mqar.yaml --device cuda --run-dir runs/gpu/mqar --set log.progress=lines ) > runs/gpu/mqar.log 2>&1
  tail -3 runs/gpu/mqar.log | tee -a "$O/suite.log"
fi
wait
log "training stages done"
tar czf "$O/runs.tar.gz" --exclude='*.pt' runs/gpu 2>/dev/null
if has backbones; then
  log "backbone throughput: kernels vs LibTorch ops"
  for be in kernels torch; do
    DYSRA_CUDA_BACKEND=$be timeout 100 "$B" bench backbones --device cuda --lengths 1024,2048,4096,8192 --batch 4 \
      --d-model 512 --layers 4 --heads 8 --runs 5 --bf16 --json "$O/backbones_$be.jsonl" >> "$O/suite.log" 2>&1 || log "backbones ($be) failed"
  done
fi
log "done"
ls -la "$O"
