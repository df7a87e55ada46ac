// dysra/cache/compressor.h — the learned compression function f_c of the rotating compressive cache (Compressive
// Transformer, Rae et al. 2019; kvcache.md §4.1) and its attention-reconstruction training.
//
// f_c maps a block of Δ pre-RoPE keys and values of one head to r = Δ / c summaries with a 1-D convolution over
// the token axis (kernel = stride = c, channels D → D), one for keys and one for values, shared by the heads of a
// layer. It is initialised to mean pooling (weight I/c at every tap, no bias), so an untrained compressor equals
// method "mean". Each summary stands for c tokens (count c, position = mean position of its c tokens).
//
// Loss (attention reconstruction, stop-gradient into the model): for queries q that come after the block,
//   ‖attn(q, R(K), V) − attn(q, R(f_K(K)) with logit bias log c, f_V(V))‖² averaged over queries and dims,
// R = RoPE at the tokens' (or summaries') positions when the model uses RoPE.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace dysra::models {
class LanguageModelImpl;
}

namespace dysra::cache {

class LearnedCompressorImpl : public torch::nn::Module {
 public:
  LearnedCompressorImpl(int64_t head_dim, int64_t delta, int64_t rank);
  /// k, v: [G, Δ, D] → {k̃, ṽ}: [G, r, D].
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& k, const torch::Tensor& v);
  int64_t delta() const { return delta_; }
  int64_t rank() const { return rank_; }
  int64_t head_dim() const { return head_dim_; }

 private:
  int64_t head_dim_, delta_, rank_;
  torch::nn::Conv1d ck_{nullptr}, cv_{nullptr};
};
TORCH_MODULE(LearnedCompressor);

/// Training examples: G blocks (rows) of one layer.
struct CompressionSample {
  torch::Tensor keys;      ///< [G, Δ, D] pre-RoPE
  torch::Tensor values;    ///< [G, Δ, D]
  torch::Tensor key_pos;   ///< [G, Δ] float64 positions
  torch::Tensor queries;   ///< [G, Q, D] post-RoPE queries that come after the block
};

/// The attention-reconstruction loss of `c` on one sample (scalar, differentiable in c's parameters).
torch::Tensor attention_reconstruction_loss(LearnedCompressor& c, const CompressionSample& s, bool rope,
                                            double theta);

struct CompressorTrainOptions {
  int64_t steps = 200;
  double lr = 1e-3;
  uint64_t seed = 0;
  /// Every 1/holdout-th block of each sample is held out (0: none): the held-out loss is measured at the start and
  /// every `eval_every` steps, and the compressor ends with the parameters of the best measurement — never worse on
  /// unseen blocks than its mean-pooling start. (Trained to the end on one 4K-token sample it overfitted: worse than
  /// mean pooling on held-out text at r = 2–8, bench/RESULTS.md.)
  double holdout = 0.2;
  int64_t eval_every = 10;
};

/// Adam on the loss over the training blocks of the samples (cycled); returns the training loss of every step.
std::vector<double> train_compressor(LearnedCompressor& c, const std::vector<CompressionSample>& samples,
                                     const CompressorTrainOptions& options, bool rope, double theta);

/// Runs `model` over `tokens` ([1, T] int64) with recording caches and cuts, for every attention layer, the
/// blocks [s, s + Δ) (s = 0, Δ, 2Δ, … while s + Δ + n_queries ≤ T) with the n_queries queries that follow each
/// block. Returns one sample per attention layer (index = layer; layers that are not attention get an empty
/// sample).
std::vector<CompressionSample> collect_compression_samples(models::LanguageModelImpl& model,
                                                           const torch::Tensor& tokens, int64_t delta,
                                                           int64_t n_queries);

/// Relative attention-output error of compressing each block of `s` to `rank` summaries with `method`
/// ("svd" | "mean": compress_block; "learned": `learned`, which must then be given): for block g and the queries
/// after it, ‖attn(q, compressed) − attn(q, block)‖_F / ‖attn(q, block)‖_F, where summaries carry the log-count
/// logit bias and are rotated (RoPE) at their mean position. Returns one error per block (G values).
std::vector<double> compression_block_errors(const CompressionSample& s, int64_t rank, const std::string& method,
                                             bool rope, double theta, LearnedCompressor* learned = nullptr);

/// Saves / loads one compressor per layer (entries may be null for non-attention layers).
void save_compressors(const std::string& path, const std::vector<LearnedCompressor>& compressors);
std::vector<LearnedCompressor> load_compressors(const std::string& path, int64_t n_layers, int64_t head_dim,
                                                int64_t delta, int64_t rank);

}  // namespace dysra::cache
