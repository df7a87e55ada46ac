#!/usr/bin/env bash
# Passkey retrieval at 4K byte tokens in two stages (issue 4): stage 1 learns the retrieval at contexts of
# 512–1K tokens, stage 2 starts from its weights (train.init_from) and trains at 512–4K, evaluated at 4K.
#   scripts/train_passkey.sh [OUT_DIR] [DEVICE] [extra dysra train flags...]
# DYSRA_STAGE1_S / DYSRA_STAGE2_S: time limits in seconds (SIGTERM: the stage checkpoints and stops).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEFAULT_OUT=runs/passkey
CONFIG="$ROOT/experiments/passkey.yaml"
source "$ROOT/scripts/stages.sh"
stage 1 "${DYSRA_STAGE1_S:-0}" --set data.synthetic.seq_len=1024 --set train.steps=1500 "$@"
stage 2 "${DYSRA_STAGE2_S:-0}" --set train.init_from="$OUT/stage1" "$@"
