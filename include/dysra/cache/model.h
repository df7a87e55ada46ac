// dysra/cache/model.h — caches attached to a language model: per-layer states, memory totals, the recording
// cache, RazorAttention's retrieval-head probe and AttentionRAG's attention-guided context pruning.
#pragma once
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "dysra/cache/compressor.h"
#include "dysra/cache/kv_cache.h"
#include "dysra/layers/mixer.h"

namespace dysra::data {
class Tokenizer;
}
namespace dysra::models {
class LanguageModelImpl;
}

namespace dysra::cache {

/// One MixerState per layer of `model`; attention and sparse_attention layers get a cache of `options` (LayerInfo
/// from the model; method learned loads `options.compressor_path` unless `compressors` is given). Other mixers
/// (mamba, linear attention) keep their own recurrent state.
std::vector<layers::MixerState> make_layer_states(models::LanguageModelImpl& model, const CacheOptions& options,
                                                  const std::vector<LearnedCompressor>& compressors = {});

/// Sum of the memory of every layer's cache; `per_layer` receives each layer's report (empty for non-attention).
MemoryReport total_memory(const std::vector<layers::MixerState>& states,
                          std::vector<MemoryReport>* per_layer = nullptr);

/// The full policy that also keeps the last append's post-RoPE queries and (when `with_probs`) the attention
/// probabilities of its queries, [B, H, L, N_view + L].
class RecordingCache final : public KVCachePolicy {
 public:
  RecordingCache(const CacheOptions& o, const LayerInfo& info, bool with_probs)
      : KVCachePolicy(o, info), with_probs_(with_probs) {}
  std::string name() const override { return "recording"; }
  bool needs_attention() const override { return with_probs_; }
  torch::Tensor last_probs, last_queries;
  int64_t last_view_size = 0;

 protected:
  void enforce(Row&, int64_t) override {}
  void on_append(const KVAppend& in, int64_t view_size) override {
    last_probs = in.probs, last_queries = in.queries, last_view_size = view_size;
  }

 private:
  bool with_probs_;
};

/// Runs `tokens` ([1, T]) through `model` in one call with recording caches at every attention layer.
/// Returns the caches (null for other layers).
std::vector<std::shared_ptr<RecordingCache>> record_attention(models::LanguageModelImpl& model,
                                                              const torch::Tensor& tokens, bool with_probs);

// ---- RazorAttention retrieval-head probe (kvcache.md §6.1) ----------------------------------------------------

struct RazorProbeOptions {
  int64_t segment = 256;        ///< SEG random tokens (the paper's 2500; smaller for small models)
  int64_t repeats = 4;          ///< the segment repeated this many times
  int64_t vocab_low = 0, vocab_high = 256;  ///< random token ids drawn uniformly from [low, high)
  uint64_t seed = 0;
  double induction_frac = 0.14; ///< top fraction of heads by induction score protected
  double echo_frac = 0.01;      ///< plus the top fraction by echo score
};

struct RazorProbeResult {
  torch::Tensor induction, echo;        ///< [n_layers, n_heads] float64 (0 for non-attention layers)
  std::vector<int64_t> retrieval_heads;  ///< flat layer · n_heads + head, sorted
};

/// Induction score: mean A[i, i − SEG + 1]; echo score: mean A[i, i − SEG], over queries i in repeats 1…
/// Protects ceil(induction_frac · heads) by induction plus ceil(echo_frac · heads) by echo (union).
RazorProbeResult razor_probe(models::LanguageModelImpl& model, const RazorProbeOptions& options);
/// The selection rule alone, from score matrices (testable on hand-made scores).
std::vector<int64_t> select_retrieval_heads(const torch::Tensor& induction, const torch::Tensor& echo,
                                            double induction_frac, double echo_frac);

// ---- AttentionRAG-style pruning (kvcache.md §6.2) --------------------------------------------------------------

struct AttentionRagOptions {
  int64_t top_k = 32;            ///< context tokens kept by attention (then widened to their sentences)
  int64_t chunk_tokens = 1024;   ///< sentences are grouped into chunks of at most this many tokens
};

/// Context sentences → indices of the sentences kept (sorted). Each chunk is run as [chunk ; hint]; the focus
/// token is the last token of `hint` (the query rewritten as an answer prefix, e.g. "Daniel is in the"); its
/// attention to the chunk's tokens is summed over layers and heads; the top_k tokens over all chunks are taken
/// and every sentence holding one is kept.
std::vector<size_t> attention_rag_prune(models::LanguageModelImpl& model, const data::Tokenizer& tokenizer,
                                        const std::vector<std::string>& sentences, const std::string& hint,
                                        const AttentionRagOptions& options);
/// The selection rule alone: token scores with their sentence ids → kept sentence ids (sorted).
std::vector<size_t> select_sentences(const torch::Tensor& token_scores, const std::vector<size_t>& sentence_of,
                                     int64_t top_k);

}  // namespace dysra::cache
