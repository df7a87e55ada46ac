#include "dysra/data/lm_task.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dysra/core/error.h"
#include "dysra/core/random.h"
#include "dysra/data/jsonl.h"
#include "dysra/data/text_task.h"

namespace dysra::data {

std::vector<std::string> read_lm_documents(const std::string& path) {
  DYSRA_CHECK_T(DataError, std::filesystem::is_regular_file(path), path, ": no such file");
  std::vector<std::string> docs;
  if (std::filesystem::path(path).extension() == ".jsonl") {
    for (auto& d : read_flashrag_corpus(path)) docs.push_back(d.title.empty() ? std::move(d.text) : "\"" + d.title + "\"\n" + d.text);
  } else {
    std::ifstream in(path, std::ios::binary);
    DYSRA_CHECK_T(DataError, in.good(), path, ": cannot open");
    std::string line, para;
    auto flush = [&] {
      if (!para.empty()) docs.push_back(std::move(para));
      para.clear();
    };
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) {
        flush();
      } else {
        para += (para.empty() ? "" : "\n") + line;
      }
    }
    flush();
  }
  docs.erase(std::remove_if(docs.begin(), docs.end(), [](const std::string& d) { return d.empty(); }), docs.end());
  DYSRA_CHECK_T(DataError, !docs.empty(), path, ": no documents (empty corpus)");
  return docs;
}

LmTask::LmTask(const LmTaskOptions& o, const TokenizerOptions& tokenizer) : options_(o), tokenizer_(make_tokenizer(tokenizer)) {
  DYSRA_CHECK_T(ConfigError, o.mode == "pack" || o.mode == "pad", "data.lm.mode: expected pack or pad, got \"", o.mode, "\"");
  DYSRA_CHECK_T(ConfigError, o.seq_len >= 2, "data.lm.seq_len: must be at least 2, got ", o.seq_len);
  DYSRA_CHECK_T(ConfigError, !o.train_path.empty() && !o.eval_path.empty(), "data.lm: train_path and eval_path are required");
  train_ = load(o.train_path, 0);
  eval_ = load(o.eval_path, o.max_eval_examples);
}

LmTask::SplitData LmTask::load(const std::string& path, int64_t max_examples) const {
  SplitData d;
  const int64_t L = options_.seq_len;
  for (const auto& doc : read_lm_documents(path)) {
    const auto ids = tokenizer_->encode(doc);
    const int64_t begin = static_cast<int64_t>(d.tokens.size());
    d.tokens.insert(d.tokens.end(), ids.begin(), ids.end());
    d.tokens.push_back(tokenizer_->eos_id());
    if (options_.mode == "pad") {
      // pieces of ≤ L + 1 tokens starting every L tokens: consecutive pieces share one token, so every token
      // after the document's first is a target exactly once
      const int64_t n = static_cast<int64_t>(d.tokens.size()) - begin;
      for (int64_t s = 0; s + 1 < n; s += L) d.segments.push_back({begin + s, std::min(L + 1, n - s)});
    }
  }
  if (options_.mode == "pack") {
    const int64_t n = static_cast<int64_t>(d.tokens.size());
    for (int64_t s = 0; s + L + 1 <= n; s += L) d.segments.push_back({s, L + 1});
    DYSRA_CHECK_T(DataError, !d.segments.empty(), path, ": ", n, " tokens, fewer than one window of data.lm.seq_len + 1 = ",
                  L + 1);
  }
  if (max_examples > 0 && static_cast<int64_t>(d.segments.size()) > max_examples) d.segments.resize(static_cast<size_t>(max_examples));
  return d;
}

int64_t LmTask::size(Split split) const { return static_cast<int64_t>(data(split).segments.size()); }

int64_t LmTask::corpus_tokens(Split split) const { return static_cast<int64_t>(data(split).tokens.size()); }

int64_t LmTask::example_length(Split split, int64_t id) const {
  const auto& d = data(split);
  DYSRA_CHECK(id >= 0 && id < size(split), "lm: example id ", id, " out of range [0, ", size(split), ")");
  return d.segments[static_cast<size_t>(id)].length - 1;
}

Batch LmTask::batch(Split split, const std::vector<int64_t>& ids) const {
  const auto& d = data(split);
  const int64_t B = static_cast<int64_t>(ids.size());
  int64_t W = 0;
  for (int64_t id : ids) W = std::max(W, example_length(split, id));
  auto tokens = torch::full({B, W}, padding_id(*tokenizer_), torch::kInt64);
  auto labels = torch::full({B, W}, kIgnoreIndex, torch::kInt64);
  auto* tp = tokens.data_ptr<int64_t>();
  auto* lp = labels.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    const Segment& s = d.segments[static_cast<size_t>(ids[b])];
    for (int64_t t = 0; t + 1 < s.length; ++t) {
      tp[b * W + t] = d.tokens[static_cast<size_t>(s.begin + t)];
      lp[b * W + t] = d.tokens[static_cast<size_t>(s.begin + t + 1)];
    }
  }
  return {tokens, labels, {}};
}

std::vector<int64_t> LmTask::epoch_order(uint64_t seed, int64_t epoch, int64_t batch_size) const {
  auto perm = Task::epoch_order(seed, epoch, batch_size);
  if (options_.mode != "pad" || !options_.bucket || batch_size <= 1) return perm;
  const auto& segs = train_.segments;
  auto len = [&](int64_t id) { return segs[static_cast<size_t>(id)].length; };
  const size_t window = static_cast<size_t>(batch_size * options_.bucket_window);
  std::vector<std::vector<int64_t>> batches;
  for (size_t w = 0; w < perm.size(); w += window) {
    auto first = perm.begin() + static_cast<std::ptrdiff_t>(w);
    auto last = perm.begin() + static_cast<std::ptrdiff_t>(std::min(perm.size(), w + window));
    std::stable_sort(first, last, [&](int64_t a, int64_t b) { return len(a) > len(b); });
    for (auto it = first; it < last; it += std::min<std::ptrdiff_t>(batch_size, last - it))
      batches.emplace_back(it, std::min(it + batch_size, last));
  }
  // a short (partial) batch stays last so that every other batch keeps batch_size examples
  const bool partial = !batches.empty() && static_cast<int64_t>(batches.back().size()) < batch_size;
  std::vector<size_t> which(batches.size() - (partial ? 1 : 0));
  for (size_t i = 0; i < which.size(); ++i) which[i] = i;
  SplitMix64 rng(mix_seed(seed, 0xB0C7E7u, static_cast<uint64_t>(epoch)));
  rng.shuffle(which);
  if (partial) which.push_back(batches.size() - 1);
  std::vector<int64_t> order;
  order.reserve(perm.size());
  for (size_t i : which) order.insert(order.end(), batches[i].begin(), batches[i].end());
  return order;
}

}  // namespace dysra::data
