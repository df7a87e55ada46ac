#!/usr/bin/env bash
# MQAR with every backbone on the same data (issue 3): seq len × d_model × learning rate, best lr reported.
#   scripts/mqar_sweep.sh OUT_DIR [DEVICE] [PARALLEL] [STEPS]
# Grid: backbone ∈ {transformer, mamba, linear_attention}, (L, kv pairs = L/16) ∈ {(128,8), (256,16), (512,32)},
# d_model ∈ {64, 128}, lr ∈ {1e-3, 3e-3, 1e-2}. Each run is experiments/mqar.yaml with --set overrides; runs go
# to OUT_DIR/<backbone>_L<L>_d<d>_lr<lr>; scripts/mqar_table.py OUT_DIR prints the table.
# DYSRA_RUN_TIMEOUT=S stops each run after S seconds (SIGTERM: the run checkpoints and writes its summary).
# DYSRA_SWEEP_GPUS=N spreads the runs over N GPUs round-robin (CUDA_VISIBLE_DEVICES).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:?usage: mqar_sweep.sh OUT_DIR [DEVICE] [PARALLEL] [STEPS]}"
DEVICE="${2:-cpu}"
PAR="${3:-1}"
STEPS="${4:-3000}"
DYSRA="${DYSRA_BIN:-${DYSRA_BUILD_DIR:-$ROOT/build}/dysra}"
mkdir -p "$OUT"
jobs_file="$OUT/jobs.txt"
: > "$jobs_file"
# The grid can be narrowed: DYSRA_SWEEP_BACKBONES, DYSRA_SWEEP_LENGTHS ("128 256 512"), DYSRA_SWEEP_D, DYSRA_SWEEP_LR.
for b in ${DYSRA_SWEEP_BACKBONES:-transformer mamba linear_attention}; do
  for L in ${DYSRA_SWEEP_LENGTHS:-128 256 512}; do
    set -- "$L" $((L / 16))
    for d in ${DYSRA_SWEEP_D:-64 128}; do
      for lr in ${DYSRA_SWEEP_LR:-0.001 0.003 0.01}; do
        dir="$OUT/${b}_L$1_d${d}_lr${lr}"
        [[ -f "$dir/summary.json" ]] && continue
        gpu=""
        [[ -n "${DYSRA_SWEEP_GPUS:-}" ]] && gpu="CUDA_VISIBLE_DEVICES=$(( $(wc -l < "$jobs_file") % DYSRA_SWEEP_GPUS )) "
        echo "${gpu}timeout ${DYSRA_RUN_TIMEOUT:-0} $DYSRA train $ROOT/experiments/mqar.yaml --device $DEVICE --run-dir $dir --set model.backbone=$b \
--set data.mqar.seq_len=$1 --set data.mqar.num_kv_pairs=$2 --set model.d_model=$d --set train.lr=$lr \
--set train.steps=$STEPS --set train.batch_size=${DYSRA_SWEEP_BATCH:-64} --set train.checkpoint_every=0 \
--set eval.every=${DYSRA_SWEEP_EVAL_EVERY:-250} --set eval.examples=500 --set log.progress=lines \
--set train.threads=1 > $dir.log 2>&1" >> "$jobs_file"
      done
    done
  done
done
echo "[mqar_sweep] $(wc -l < "$jobs_file") runs, $PAR at a time, on $DEVICE"
xargs -P "$PAR" -I CMD bash -c CMD < "$jobs_file" || echo "[mqar_sweep] some runs failed (see $OUT/*.log)"
python3 "$ROOT/scripts/mqar_table.py" "$OUT"
