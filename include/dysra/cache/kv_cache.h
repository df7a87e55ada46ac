// dysra/cache/kv_cache.h — the KV cache seam: attention layers append keys/values and attend over a view;
// cache policies own the memory (which entries survive, what summaries stand for the rest).
//
// Storage. One policy instance per layer (make_cache). It holds, per "row" r = b·H + h (batch element b, head h),
// an ordered list of entries; each entry is a pre-RoPE key, a value, a position (float: summaries sit at the mean
// position of what they replace), a count m (1 for a raw token, the number of tokens a summary stands for) and a
// summary depth (0 raw, 1 summary of raw tokens, 2 summary of summaries, …). Keys are cached before RoPE and
// rotated at view time (kvcache.md §0.3: StreamingLLM's pos-shift, ShadowKV), so a policy may re-assign
// positions (StreamingLLM's in-cache positions) and summaries get a position of their own.
//
// Protocol of one layer call with L new tokens (prefill chunk or decode step):
//   1. v = cache.view()                      — what the new queries may see besides each other;
//   2. the layer attends: query t sees all of v (logit += log m, the count bias) and new tokens 0..t (causal);
//   3. cache.append({k, v, positions, probs}) — stores the L new tokens, then evicts / compresses down to the
//      budget. `probs` ([B, H, L, N_view + L], the softmax of the new queries over the view entries then the new
//      tokens) is computed by the layer only when cache.needs_attention() (H2O, SnapKV, PyramidKV, recorders).
// So the attended set of a chunk is view ∪ chunk; memory held between calls is what append leaves.
//
// Budgets are in slots per row (raw entries + summaries), set per layer and overridable per head.
// Policies (registry names; rules from ../shared/research/kvcache.md):
//   full          — keep everything (unbounded; the reference).
//   window        — the last `budget` tokens.
//   streaming_llm — `sink_tokens` first tokens + the last budget − sinks (§3); positions = in-cache indices.
//   h2o           — accumulated attention s_j = Σ_i A_ij over every query so far; keep the last `window`
//                   tokens + the top (budget − window) of the rest by s_j (§3). Scores accumulate per chunk, then
//                   eviction happens once per append (the original evicts per decoded token; same for L = 1).
//   snapkv        — the last `obs_window` queries' attention (kept as a rolling [w, N] buffer so decode steps
//                   add up the same way as a prefill chunk), summed over those queries, 1-D pooled (kernel
//                   `kernel_size`, max|avg, stride 1, same padding), top (budget − w) per head + the last w
//                   tokens (§3). Applied whenever the cache exceeds its budget (at prefill end, then per step).
//   pyramidkv     — SnapKV selection with the per-layer budget of §2.2 (pyramid_budgets, β = pyramid_beta).
//   razor         — rows of heads listed in `retrieval_heads` (from razor_probe, probes.h) keep everything;
//                   the others keep `sink_tokens` + the last L_h = max(window, N / razor_ratio) tokens (ratio 0:
//                   L_h = window) + one compensation token: running mean of every dropped key and value, count
//                   n_d, logit bias log n_d (§6.1). Keys are averaged before RoPE, at their mean position.
//   compressive   — the method: `sink_tokens` sinks, up to M = `raw_slots` raw tokens; when the raw buffer
//                   overflows, its oldest Δ = `delta` tokens become r = `rank` summaries (compress_block,
//                   `method` svd | mean | learned). At most `summary_slots` summaries: on overflow the oldest 2r
//                   summaries are merged into r (count-weighted) if their depth < `recompress_depth`, otherwise
//                   the oldest summary is dropped. Depth 1 (default) never re-compresses a summary (§0.2, §4.2:
//                   repeated compression degrades retrieval). Slots: sinks + M + summary_slots.
// AttentionRAG (§6.2) is query-aware prompt pruning, not an eviction rule: see probes.h, attention_rag_prune.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dysra/cache/options.h"
#include "dysra/core/registry.h"

namespace dysra::cache {

class LearnedCompressorImpl;  // compressor.h


/// Where a cache sits: the layer and the attention geometry.
struct LayerInfo {
  int64_t layer = 0;
  int64_t n_layers = 1;
  int64_t n_heads = 1;
  int64_t head_dim = 0;
  bool rope = true;           ///< the layer rotates keys (compressor training loss)
  double rope_theta = 10000;
  /// method == learned: this layer's compressor (required then).
  std::shared_ptr<LearnedCompressorImpl> compressor;
};

/// The attended set, padded over rows to N = max entries; [B, H, N, ...].
struct CacheView {
  torch::Tensor keys;       ///< [B, H, N, D] pre-RoPE
  torch::Tensor values;     ///< [B, H, N, D]
  torch::Tensor positions;  ///< [B, H, N] float64: rotate keys at these
  torch::Tensor bias;       ///< [B, H, N] float32: log(count) (0 raw), -inf for padding
  /// [B, H] float64: RoPE position of the first new token when the policy re-assigns positions (positions =
  /// cache: 0..N_r-1 for the entries, N_r + t for new token t); undefined → the new tokens' absolute positions.
  torch::Tensor query_offset;
  int64_t size() const { return keys.defined() ? keys.size(2) : 0; }
};

/// L new tokens (and, when the policy asked for it, the attention their queries paid).
struct KVAppend {
  torch::Tensor keys;       ///< [B, H, L, D] pre-RoPE
  torch::Tensor values;     ///< [B, H, L, D]
  torch::Tensor positions;  ///< [L] int64 absolute positions
  torch::Tensor probs;      ///< [B, H, L, N_view + L] or undefined
  torch::Tensor queries;    ///< [B, H, L, D] post-RoPE queries (recorders, compressor training); may be undefined
};

struct HeadMemory {
  int64_t slots = 0;        ///< entries held (raw + summaries), summed over the batch
  int64_t raw = 0;          ///< raw token entries
  int64_t summaries = 0;
  int64_t bytes = 0;        ///< keys + values + per-entry metadata (position f64, count f64, depth i64)
};

struct MemoryReport {
  std::vector<HeadMemory> heads;  ///< per head
  int64_t slots = 0, bytes = 0;   ///< held now
  int64_t kv_bytes = 0;           ///< keys + values only
  /// What a preallocated buffer of the policy's bound would hold: Σ over rows of max(budget, held) slots ×
  /// bytes per slot (budget 0 = unbounded → held). Constant once a bounded policy is full, at any phase.
  int64_t capacity_slots = 0, capacity_bytes = 0;
};

/// Per-entry metadata bytes counted in HeadMemory::bytes (position, count, depth).
constexpr int64_t kEntryMetaBytes = 24;

class KVCachePolicy {
 public:
  KVCachePolicy(CacheOptions options, LayerInfo info);
  virtual ~KVCachePolicy() = default;
  virtual std::string name() const = 0;

  CacheView view() const;
  /// True when append() needs KVAppend::probs.
  virtual bool needs_attention() const { return false; }
  /// Stores the new tokens, then enforces the budget.
  void append(const KVAppend& in);

  MemoryReport memory() const;
  /// Slots allowed per head (budget of this layer unless overridden). 0 = unbounded.
  virtual int64_t head_budget(int64_t head) const;
  void set_layer_budget(int64_t budget);
  void set_head_budgets(std::vector<int64_t> budgets);  ///< one per head; empty → layer budget
  int64_t tokens_seen() const { return seen_; }
  const CacheOptions& options() const { return opt_; }
  const LayerInfo& info() const { return info_; }

  /// Complete state (entries, scores, counters) as named tensors, for checkpoints; load_state restores it.
  std::map<std::string, torch::Tensor> state() const;
  void load_state(const std::map<std::string, torch::Tensor>& state);

  /// One row's entries (tests, probes): rows are b · n_heads + h.
  struct Row {
    torch::Tensor k, v;          ///< [N, D]
    torch::Tensor pos, count;    ///< [N] float64
    torch::Tensor depth;         ///< [N] int64 (0 raw)
    torch::Tensor token;         ///< [N] int64: absolute index of a raw token, -1 for a summary
    torch::Tensor score;         ///< [N] float64 accumulated attention (h2o) — zeros otherwise
    torch::Tensor obs;           ///< [w', N] float64 recent attention rows (snapkv/pyramidkv)
    int64_t size() const { return k.defined() ? k.size(0) : 0; }
  };
  const std::vector<Row>& rows() const { return rows_; }

 protected:
  /// Brings row r within its budget (called after every append).
  virtual void enforce(Row& row, int64_t r) = 0;
  /// Called by append() with the input and the view size it was attended against, before storing.
  virtual void on_append(const KVAppend& in, int64_t view_size) { (void)in, (void)view_size; }
  /// Keeps the entries `keep` (int64 indices, any order: they are sorted) of a row.
  static void keep_only(Row& row, const torch::Tensor& keep);
  /// Positions for the view: default = stored positions; `cache` mode = 0..N-1.
  bool cache_positions_ = false;

  CacheOptions opt_;
  LayerInfo info_;
  std::vector<Row> rows_;
  std::vector<int64_t> head_budgets_;
  int64_t layer_budget_ = 0;
  int64_t seen_ = 0;
  int64_t batch_ = 0;
};

using CacheFactory = std::function<std::unique_ptr<KVCachePolicy>(const CacheOptions&, const LayerInfo&)>;
Registry<CacheFactory>& cache_registry();

/// Validates the options (ConfigError naming the `cache.<key>`) and builds the policy of `options.policy`.
std::unique_ptr<KVCachePolicy> make_cache(const CacheOptions& options, const LayerInfo& info);
/// Checks the option values against the policy (called by make_cache).
void validate(const CacheOptions& options, const LayerInfo& info);

/// PyramidKV per-layer budgets (§2.2): slots kept at each layer (selected keep_l plus the w window) for a
/// per-layer budget B (including w) over `n_layers` layers after `length` tokens.
std::vector<int64_t> pyramid_budgets(int64_t budget, int64_t window, int64_t n_layers, int64_t length, double beta);

/// Block compression: `n` entries (pre-RoPE keys/values [n, D], positions, counts [n]) → `r` summaries.
///   svd   — SVD-guided merging (the factorisation the method uses). Rows X = [K/‖K‖_F | V/‖V‖_F] (joint, so
///           that a summary's key and value describe the same tokens) are embedded by the truncated SVD
///           X ≈ U_q Σ_q V_qᵀ (q = min(r, rank X)) as E = U_q Σ_q; r pivot tokens are chosen in E (first the
///           largest leverage ‖U_q[i]‖², then farthest-point), every token joins its nearest pivot, two
///           count-weighted Lloyd steps refine the groups, and each group becomes one entry: count-weighted mean
///           key, mean value, mean position, count = Σ counts. Why this and not the rows of Σ_r V_rᵀ: those rows
///           are not keys (softmax is not linear, their logits mean nothing), while group means with counts are
///           RazorAttention's compensation token generalised to r slots (r = 1 is exactly it), memory is r per
///           block whatever Δ is (option (b) of §0.5), and r = n is lossless (every token its own group).
///   mean  — r contiguous segments (sizes differ by ≤ 1), count-weighted means: Compressive Transformer pooling.
/// Returns {k [r', D], v, pos [r'], count [r']} with r' = min(r, n) (empty groups are dropped).
struct Block {
  torch::Tensor k, v, pos, count;
};
/// `rope_theta` > 0 (keys are rotated by RoPE when attended): the svd embedding is taken of the keys rotated at
/// their positions, so that equal keys at different positions (one byte seen twice, in a first layer) are not
/// merged as if they were one, and a summary's key is the mean of its members' rotated keys, stored unrotated at
/// the mean position — rotated back there it is exactly that mean, so a query's logit on a summary is the mean
/// of its logits on the members (with rope_theta = 0: the mean of the raw keys, as without RoPE).
Block compress_block(const Block& in, int64_t r, const std::string& method, double rope_theta = 0.0);

/// What L new tokens may attend to through a cache (steps 1–2 of the protocol above), for attention layers that
/// do their own attention (sparse_attention): the view's entries then the new tokens.
struct CacheMemory {
  torch::Tensor queries;  ///< [B, H, L, D] the new queries, rotated (RoPE) at the new tokens' positions
  torch::Tensor keys;     ///< [B, H, N + L, D] view keys rotated at their positions, then the new keys rotated
  torch::Tensor values;   ///< [B, H, N + L, D]
  torch::Tensor bias;     ///< [B, H, N + L] float32: log(count) for view entries (−inf padding), 0 for new tokens
  int64_t n_view = 0;     ///< N
};
/// q, k pre-RoPE, v: [B, H, L, D]; `positions` [L] int64 absolute (the policy may re-assign them, see CacheView).
CacheMemory cache_memory(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                         const torch::Tensor& positions, const KVCachePolicy& cache, bool rope, double theta);
/// Step 3 of the protocol: stores the new tokens (k pre-RoPE) in the cache; `probs` as KVAppend::probs (undefined
/// unless cache.needs_attention()), `queries` the rotated queries (may be undefined).
void append_to_cache(KVCachePolicy& cache, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& positions, const torch::Tensor& probs, const torch::Tensor& queries);

/// Attention of the layer through the cache (protocol above): q, k pre-RoPE, v: [B, H, L, D]; `positions` [L]
/// int64 absolute. Rotates with RoPE (theta) when `rope`. Appends to `cache`. Returns [B, H, L, D].
torch::Tensor attend_through_cache(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                   const torch::Tensor& positions, KVCachePolicy& cache, bool rope, double theta);

/// RoPE (half-split, as layers::apply_rope) with per-element float positions: x [..., N, D], pos [..., N].
torch::Tensor rope_at(const torch::Tensor& x, const torch::Tensor& pos, double theta);

}  // namespace dysra::cache
