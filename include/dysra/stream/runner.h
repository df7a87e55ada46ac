// dysra/stream/runner.h — constant-memory streaming evaluation: an endless FactStream (facts placed at chosen
// distances before questions about them; noise filler + number values = a passkey-style needle stream) is fed
// through a language model chunk by chunk with a KV cache policy at every attention layer.
//
// At each question the model reads "<question> <answer prefix>" (StreamQuestion::answer_prefix, e.g. "The special
// magic number for calm-river is: "; FactStream's kinds: needle, multi-hop chain, variable tracking) and then the
// gold answer one token per decode step
// (L = 1); the argmax before each answer token is the model's greedy guess. A question counts as correct when
// every answer token is guessed (this equals greedy decoding producing the answer exactly). The question and the
// answer stay in the stream. Decode latency is timed over these L = 1 steps (device-synchronised).
//
// Run directory: stream.jsonl — one line per interval of `report_every` stream tokens: tokens, questions,
// correct, accuracy, token_accuracy, mean distance, decode_ms_per_token, prefill_ms_per_token, cache_bytes,
// cache_kv_bytes, cache_slots, cache_capacity_bytes (kv_cache.h MemoryReport), per-layer bytes;
// questions.jsonl — one line per question (id, position, fact position, distance, requested distance, correct,
// guessed answer, gold); stream_config.json; summary.json at the end.
// Checkpoint (`stream.ckpt`, atomic): stream state, token count, every layer's cache / mixer state, interval
// accumulators and the byte size of both JSONL files; resuming truncates the files to those sizes, so a resumed
// run writes exactly what an uninterrupted one would (timings aside).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "dysra/cache/kv_cache.h"
#include "dysra/data/streaming.h"

namespace dysra::data {
class Tokenizer;
}
namespace dysra::models {
class LanguageModelImpl;
}

namespace dysra::stream {

struct StreamOptions {
  data::FactStreamOptions facts;  ///< count_tokens is set to the tokenizer by the runner
  cache::CacheOptions cache;
  uint64_t total_tokens = 100000;   ///< stop once this many model tokens (stream + questions + answers) were fed
  int64_t chunk_tokens = 256;       ///< prefill chunk length fed to the model
  uint64_t report_every = 8192;     ///< interval length in model tokens
  std::string run_dir;              ///< required: outputs and checkpoint
  uint64_t checkpoint_every = 0;    ///< tokens between checkpoints (0: none); written at stream-chunk boundaries
  bool resume = false;              ///< continue from run_dir/stream.ckpt when it exists
  uint64_t stop_after = 0;          ///< testing: stop (as if killed) once this many tokens were fed (0: off)
  bool razor_probe = true;          ///< policy razor with no retrieval_heads: find them with cache::razor_probe
};

struct IntervalRecord {
  uint64_t index = 0, tokens = 0, questions = 0, correct = 0, answer_tokens = 0, answer_tokens_correct = 0;
  double distance_sum = 0, decode_s = 0, prefill_s = 0;
  uint64_t decode_steps = 0, prefill_tokens = 0;
  int64_t cache_bytes = 0, cache_kv_bytes = 0, cache_slots = 0, cache_capacity_bytes = 0;
};

struct StreamSummary {
  uint64_t tokens = 0, questions = 0, correct = 0;
  double accuracy = 0;
  int64_t cache_bytes = 0, cache_slots = 0;
  double decode_ms_per_token = 0;
  bool stopped_early = false;  ///< stop_after reached
};

/// Runs the stream; the model is used in eval mode without gradients.
StreamSummary run_stream(const StreamOptions& options, models::LanguageModelImpl& model,
                         const data::Tokenizer& tokenizer);

}  // namespace dysra::stream
