# scripts/stages.sh — sourced by the staged-training scripts (train_passkey.sh, train_stream_needle.sh).
# Sourced without arguments, it reads the script's own: [OUT_DIR] [DEVICE] [extra dysra train flags...] (OUT_DIR
# defaults to DEFAULT_OUT; the extra flags stay in "$@" for the stages). Needs ROOT, DEFAULT_OUT and CONFIG (the
# experiment YAML). Defines
#   stage N LIMIT_S [dysra train flags...]
# which trains OUT/stageN (log OUT/stageN.log) under a time limit in seconds (0 = none; on SIGTERM the trainer
# checkpoints and stops) and prints the stage's last evaluation line.
OUT="${1:-$DEFAULT_OUT}"
DEVICE="${2:-auto}"
shift $(( $# < 2 ? $# : 2 ))
DYSRA="${DYSRA_BIN:-${DYSRA_BUILD_DIR:-$ROOT/build}/dysra}"
mkdir -p "$OUT"

stage() {
  local n=$1 limit=$2
  shift 2
  local rc=0
  timeout -s TERM "$limit" "$DYSRA" train "$CONFIG" --device "$DEVICE" --run-dir "$OUT/stage$n" \
    --set log.progress=lines "$@" > "$OUT/stage$n.log" 2>&1 || rc=$?
  # 0: done; 124/130: stopped by the time limit after checkpointing
  [[ $rc == 0 || $rc == 124 || $rc == 130 ]] || { tail -20 "$OUT/stage$n.log"; exit "$rc"; }
  grep "eval step" "$OUT/stage$n.log" | tail -1
}
