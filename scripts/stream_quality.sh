#!/usr/bin/env bash
# Needle accuracy against fact distance for every cache policy at one memory budget (issue 5):
#   scripts/stream_quality.sh OUT_DIR WEIGHTS [TOKENS] [extra dysra stream run flags...]
# WEIGHTS: a run trained on experiments/stream_needle.yaml. Each policy holds ~1,156 slots per head per layer:
# window / streaming_llm / h2o with --budget 1156; compressive with 4 sinks + M 1024 raw + 4·32 summaries
# (Δ 256, r 32). The stream asks a question every 512 tokens about facts 200 … 8,000 tokens back: inside the raw
# window, in the compressive cache's summaries (~1.1K–2.1K back) and long evicted. `full` is the unbounded
# reference. Prints the table of scripts/stream_quality_table.py.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:?usage: stream_quality.sh OUT_DIR WEIGHTS [TOKENS] [flags...]}"
W="${2:?weights}"
TOKENS="${3:-32768}"
shift $(( $# < 3 ? $# : 3 ))
DYSRA="${DYSRA_BIN:-${DYSRA_BUILD_DIR:-$ROOT/build}/dysra}"
mkdir -p "$OUT"
common=(--config "$ROOT/experiments/stream_needle.yaml" --weights "$W" --tokens "$TOKENS" --question-interval 512
        --distances 200,600,1500,3000,8000 --report-every "$TOKENS" --chunk 256 "$@")
run() {  # name flags...
  local name=$1
  shift
  [[ -f "$OUT/$name/summary.json" ]] && return 0
  "$DYSRA" stream run "${common[@]}" --run-dir "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1 || { tail -5 "$OUT/$name.log"; return 1; }
}
run full --policy full &
run window --policy window --budget 1156 &
wait
run streaming_llm --policy streaming_llm --budget 1156 &
run compressive --policy compressive --raw-slots 1024 --delta 256 --rank 32 &
wait
run h2o --policy h2o --budget 1156
python3 "$ROOT/scripts/stream_quality_table.py" "$OUT"
