#!/usr/bin/env bash
# Needle accuracy against fact distance and stream length for every cache policy at one memory budget (issue 5):
#   scripts/stream_quality.sh OUT_DIR WEIGHTS [TOKENS] [extra dysra stream run flags...]
# WEIGHTS: a run trained by scripts/train_stream_needle.sh (experiments/stream_needle.yaml). Every bounded policy
# holds 1,156 slots per head per layer and reads them at in-cache positions (--positions cache, StreamingLLM's
# rule), so the model never sees a relative distance beyond its 2K training context:
#   window / streaming_llm / h2o / snapkv / pyramidkv   --budget 1156 (pyramidkv: 1156 on average over layers)
#   compressive                    4 sinks + M 512 raw + 640 summaries (Δ 128 → r 32, 20 blocks, SVD merging)
#   razor                          non-retrieval heads 4 sinks + 1,151 recent + 1 compensation token; the retrieval
#                                  heads (induction/echo probe) keep every token, so it is unbounded like full
# The stream asks a question every 512 tokens about a fact 200 / 800 / 1,500 / 2,500 / 6,000 tokens back:
#   200   raw for every policy;
#   800   raw for the 1,156-token windows, already compressed by the compressive cache (raw holds 385–512);
#   1,500 and 2,500  evicted by window / StreamingLLM / H2O's recent part, in the compressive cache's summaries
#                    (they cover the ~2,560 tokens before its raw slots);
#   6,000 evicted by every bounded policy.
# `full` (unbounded, original positions) is the reference, run for FULL_TOKENS (default min(TOKENS, 16384)), as is
# razor; snapkv and pyramidkv (4× the per-token cost of the others on a CPU) for SNAP_TOKENS (default
# min(TOKENS, 262144)).
# Policies run concurrently (one process each). Prints scripts/stream_quality_table.py's tables.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:?usage: stream_quality.sh OUT_DIR WEIGHTS [TOKENS] [flags...]}"
W="${2:?weights}"
TOKENS="${3:-32768}"
shift $(( $# < 3 ? $# : 3 ))
FULL_TOKENS="${FULL_TOKENS:-$(( TOKENS < 16384 ? TOKENS : 16384 ))}"
SNAP_TOKENS="${SNAP_TOKENS:-$(( TOKENS < 262144 ? TOKENS : 262144 ))}"
DYSRA="${DYSRA_BIN:-${DYSRA_BUILD_DIR:-$ROOT/build}/dysra}"
mkdir -p "$OUT"
common=(--config "$ROOT/experiments/stream_needle.yaml" --weights "$W" --question-interval 512
        --distances 200,800,1500,2500,6000 --report-every 4096 --chunk 256 "$@")
run() {  # name tokens flags...
  local name=$1 tokens=$2
  shift 2
  [[ -f "$OUT/$name/summary.json" ]] && return 0
  "$DYSRA" stream run "${common[@]}" --tokens "$tokens" --run-dir "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1 ||
    { echo "[stream_quality] $name failed:"; tail -5 "$OUT/$name.log"; return 1; }
}
bounded=(--positions cache --sinks 4)
pids=()
run full "$FULL_TOKENS" --policy full & pids+=($!)
run window "$TOKENS" --policy window --budget 1156 "${bounded[@]}" & pids+=($!)
run streaming_llm "$TOKENS" --policy streaming_llm --budget 1156 "${bounded[@]}" & pids+=($!)
run h2o "$TOKENS" --policy h2o --budget 1156 "${bounded[@]}" & pids+=($!)
run compressive "$TOKENS" --policy compressive --raw-slots 512 --delta 128 --rank 32 --summary-slots 640 \
  "${bounded[@]}" & pids+=($!)
run snapkv "$SNAP_TOKENS" --policy snapkv --budget 1156 "${bounded[@]}" & pids+=($!)
run pyramidkv "$SNAP_TOKENS" --policy pyramidkv --budget 1156 "${bounded[@]}" & pids+=($!)
run razor "$FULL_TOKENS" --policy razor --window 1151 "${bounded[@]}" & pids+=($!)
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
python3 "$ROOT/scripts/stream_quality_table.py" "$OUT"
exit $rc
