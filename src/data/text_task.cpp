#include "dysra/data/text_task.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <unordered_map>

#include "dysra/core/error.h"
#include "dysra/core/random.h"
#include "dysra/metrics/qa.h"

namespace dysra::data {
namespace {

std::string join_answers(const std::vector<std::string>& answers) {
  std::string s;
  for (const auto& a : answers) s += (s.empty() ? "" : ", ") + a;
  return s;
}

}  // namespace

int32_t padding_id(const Tokenizer& tok) { return tok.pad_id() >= 0 ? tok.pad_id() : tok.eos_id(); }

bool encode_prompt_answer(const Tokenizer& tok, const std::string& prompt, const std::string& answer, int64_t seq_len,
                          int64_t* inputs, int64_t* labels, float* weights, double prompt_loss_weight,
                          int64_t answer_budget) {
  auto p = tok.encode(prompt);
  auto a = tok.encode(answer);
  a.push_back(tok.eos_id());
  const int64_t P = static_cast<int64_t>(p.size()), A = answer_budget > 0 ? answer_budget : static_cast<int64_t>(a.size());
  if (static_cast<int64_t>(a.size()) > A || P + A > seq_len + 1) return false;
  // s = pad… p a pad…; inputs = s[0:L], labels[t] = s[t+1] where s[t+1] is an answer token
  std::vector<int64_t> s(static_cast<size_t>(seq_len + 1), padding_id(tok));
  const int64_t start = seq_len + 1 - A - P, first_answer = start + P;
  const int64_t end_answer = first_answer + static_cast<int64_t>(a.size());  // one past EOS
  for (int64_t i = 0; i < P; ++i) s[start + i] = p[i];
  for (size_t i = 0; i < a.size(); ++i) s[first_answer + i] = a[i];
  // prompt targets: s[t+1] for t >= start (the first prompt token has no context, so it is never a target)
  const bool prompt_targets = weights != nullptr && prompt_loss_weight > 0 && P > 1;
  const float prompt_w = prompt_targets ? static_cast<float>(prompt_loss_weight * static_cast<double>(a.size()) /
                                                             static_cast<double>(P - 1))
                                        : 0.f;
  for (int64_t t = 0; t < seq_len; ++t) {
    inputs[t] = s[t];
    const bool answer = t + 1 >= first_answer && t + 1 < end_answer;
    const bool in_prompt = prompt_targets && t >= start && t + 1 < first_answer;
    labels[t] = answer || in_prompt ? s[t + 1] : kIgnoreIndex;
    if (weights) weights[t] = answer ? 1.f : in_prompt ? prompt_w : 0.f;
  }
  return true;
}

TextTask::TextTask(std::string name, int64_t seq_len, const TaskOptions& options)
    : name_(std::move(name)),
      seq_len_(seq_len),
      prompt_loss_weight_(options.prompt_loss_weight),
      tokenizer_(make_tokenizer(options.tokenizer)) {}

Batch TextTask::batch(Split split, const std::vector<int64_t>& ids) const {
  const int64_t B = static_cast<int64_t>(ids.size());
  auto tokens = torch::empty({B, seq_len_}, torch::kInt64), labels = torch::empty({B, seq_len_}, torch::kInt64);
  const bool weighted = split == Split::kTrain && prompt_loss_weight_ > 0;
  auto weights = weighted ? torch::empty({B, seq_len_}, torch::kFloat32) : torch::Tensor();
  for (int64_t b = 0; b < B; ++b) {
    DYSRA_CHECK(ids[b] >= 0 && ids[b] < size(split), name_, ": example id ", ids[b], " out of range [0, ", size(split), ")");
    auto [prompt, answers] = text(split, ids[b]);
    if (!encode_prompt_answer(*tokenizer_, prompt, join_answers(answers), seq_len_, tokens[b].data_ptr<int64_t>(),
                              labels[b].data_ptr<int64_t>(), weighted ? weights[b].data_ptr<float>() : nullptr,
                              prompt_loss_weight_, answer_budget_))
      throw DataError(detail::str_cat(name_, ": example ", ids[b], " needs ", tokenizer_->encode(prompt).size(),
                                      " prompt tokens + ", tokenizer_->encode(join_answers(answers)).size() + 1,
                                      " answer tokens (budget ", answer_budget_, "), more than seq_len + 1 = ", seq_len_ + 1));
  }
  return {tokens, labels, weights};
}

std::map<std::string, double> TextTask::answer_metrics(Split split, int64_t max_examples, int64_t batch_size,
                                                       const Generate& generate) const {
  const int64_t n = max_examples > 0 ? std::min(max_examples, size(split)) : size(split);
  metrics::QAAccumulator acc;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t end = std::min(n, start + batch_size);
    std::vector<std::vector<int32_t>> prompts;
    std::vector<std::vector<std::string>> golds;
    // prompts sit where training put them: left-padded to seq_len + 1 − answer_budget
    const int64_t width = seq_len_ + 1 - answer_budget_;
    for (int64_t i = start; i < end; ++i) {
      auto [prompt, answers] = text(split, i);
      prompts.push_back(tokenizer_->encode(prompt));
      DYSRA_CHECK(static_cast<int64_t>(prompts.back().size()) <= width, name_, ": prompt of example ", i, " has ",
                  prompts.back().size(), " tokens, more than seq_len + 1 - answer_budget = ", width);
      golds.push_back({join_answers(answers)});
    }
    auto batch = torch::full({end - start, width}, padding_id(*tokenizer_), torch::kInt64);
    for (size_t b = 0; b < prompts.size(); ++b) {
      auto row = batch[static_cast<int64_t>(b)];
      const int64_t off = width - static_cast<int64_t>(prompts[b].size());
      for (size_t i = 0; i < prompts[b].size(); ++i) row[off + static_cast<int64_t>(i)] = prompts[b][i];
    }
    auto out = generate(batch, answer_budget_).to(torch::kCPU).contiguous();
    for (size_t b = 0; b < prompts.size(); ++b) {
      std::vector<int32_t> ids;
      for (int64_t j = 0; j < out.size(1); ++j) {
        const auto t = static_cast<int32_t>(out[static_cast<int64_t>(b)][j].item<int64_t>());
        if (t == tokenizer_->eos_id()) break;
        ids.push_back(t);
      }
      const std::string pred = tokenizer_->decode(ids);
      acc.add(pred, golds[b]);
    }
  }
  auto r = acc.result();
  return {{"em", r.em}, {"f1", r.f1}, {"substring_accuracy", r.substring}};
}

// ---- synthetic --------------------------------------------------------------------------------------------
SyntheticTask::SyntheticTask(const std::string& name, const TaskOptions& options, uint64_t seed)
    : TextTask(name, options.synthetic.seq_len, options), options_(options.synthetic), seed_(seed) {
  const SyntheticTaskOptions& o = options_;
  SyntheticCommon c;
  c.count_tokens = tokenizer_token_counter(*tokenizer_);
  c.seed = seed;
  c.essay_path = o.essay_path;
  c.split = "train";
  std::vector<int64_t> lengths{o.seq_len};
  if (o.min_seq_len > 0 && o.min_seq_len < o.seq_len && o.length_buckets > 1) {
    lengths.clear();
    const double ratio = static_cast<double>(o.seq_len) / static_cast<double>(o.min_seq_len);
    for (int64_t i = 0; i < o.length_buckets; ++i) {
      const auto len = static_cast<int64_t>(std::llround(static_cast<double>(o.min_seq_len) *
                                                         std::pow(ratio, static_cast<double>(i) / static_cast<double>(o.length_buckets - 1))));
      if (lengths.empty() || len > lengths.back()) lengths.push_back(std::min(len, o.seq_len));
    }
  }
  for (int64_t len : lengths) {
    c.max_seq_length = static_cast<size_t>(len);
    train_.push_back(make_synthetic_task(name, c));
  }
  c.max_seq_length = static_cast<size_t>(o.seq_len);
  c.split = "validation";
  eval_ = make_synthetic_task(name, c);
  // RULER fits prompt + tokens_to_generate into seq_len; the answer and EOS get that budget + 1
  answer_budget_ = static_cast<int64_t>(eval_(0).tokens_to_generate) + 1;
}

int64_t SyntheticTask::size(Split split) const {
  return split == Split::kTrain ? options_.train_examples : options_.eval_examples;
}

std::pair<std::string, std::vector<std::string>> SyntheticTask::text(Split split, int64_t id) const {
  if (split != Split::kTrain) {
    auto ex = eval_(static_cast<uint64_t>(id));
    return {ex.prompt(), ex.answers};
  }
  const size_t which = train_.size() == 1 ? 0
                                          : static_cast<size_t>(SplitMix64(mix_seed(seed_, 0x1E76u, static_cast<uint64_t>(id)))
                                                                    .below(static_cast<int64_t>(train_.size())));
  auto ex = train_[which](static_cast<uint64_t>(id));
  return {ex.prompt(), ex.answers};
}

// ---- questions over a FactStream --------------------------------------------------------------------------
FactStreamTask::FactStreamTask(const TaskOptions& options, uint64_t seed)
    : TextTask("fact_stream", options.stream.seq_len, options), options_(options.stream), seed_(seed) {
  const auto& o = options_;
  DYSRA_CHECK_T(ConfigError, !o.distances.empty(), "data.stream.distances: must not be empty");
  for (int64_t d : o.distances)
    DYSRA_CHECK_T(ConfigError, d > 0 && (o.skip > 0 || d < o.question_interval),
                  "data.stream.distances: each must be in (0, question_interval = ", o.question_interval, "), got ", d);
  // the longest answer: a 7-digit number (needle, chain) or hops five-letter names (variables), plus EOS
  answer_budget_ = o.kind == "variables" ? 7 * o.hops + 1 : 8;
  // every prompt must fit: the stream to its first question (< question_interval + one item) + question + prefix
  for (int64_t id = 0; id < 16; ++id) {
    const auto n = static_cast<int64_t>(tokenizer_->encode(text(Split::kTrain, id).first).size());
    DYSRA_CHECK_T(ConfigError, n + answer_budget_ <= o.seq_len + 1, "data.stream: a prompt takes ", n,
                  " tokens; seq_len ", o.seq_len, " must be at least that + ", answer_budget_ - 1,
                  " (lower question_interval or raise seq_len)");
  }
}

int64_t FactStreamTask::size(Split split) const {
  return split == Split::kTrain ? options_.train_examples : options_.eval_examples;
}

std::pair<std::string, std::vector<std::string>> FactStreamTask::text(Split split, int64_t id) const {
  FactStreamOptions fo;
  fo.seed = mix_seed(seed_, static_cast<uint64_t>(split) + 0x57u, static_cast<uint64_t>(id));
  fo.split = split == Split::kTrain ? "train" : "validation";
  fo.chunk_size = static_cast<size_t>(options_.question_interval);
  fo.question_interval = static_cast<size_t>(options_.question_interval);
  fo.distances.assign(options_.distances.begin(), options_.distances.end());
  fo.random_distance = true;
  fo.filler = options_.filler == "essay" ? Haystack::essay : Haystack::noise;
  fo.kind = options_.kind;
  fo.hops = static_cast<size_t>(options_.hops);
  fo.count_tokens = tokenizer_token_counter(*tokenizer_);
  FactStream stream(fo);
  std::string prompt;
  for (int guard = 0; guard < 100000; ++guard) {
    auto c = stream.next();
    prompt += c.text;
    for (const auto& q : c.questions) {
      if (static_cast<int64_t>(q.id) < options_.skip) {  // answered in the text, as the stream runner does
        prompt += q.question + " " + q.answer_prefix + q.answers[0] + ". ";
        continue;
      }
      const std::string tail = q.question + " " + q.answer_prefix;
      // Fill the context from the left with stream text (cut mid-item if need be) instead of padding it: on an
      // endless stream the model never sees padding or the stream's start, so it must not learn to rely on them.
      // Bytes bound tokens from above, so the prompt fits seq_len + 1 − answer_budget in any tokenizer.
      const size_t room = static_cast<size_t>(seq_len_ + 1 - answer_budget_);
      const size_t cut = prompt.size() + tail.size() > room ? prompt.size() + tail.size() - room : 0;
      const std::string kept = prompt.substr(cut);
      for (const auto& part : q.parts)
        DYSRA_CHECK_T(ConfigError, kept.find(part) != std::string::npos, "data.stream: seq_len ", seq_len_,
                      " cannot hold a fact ", q.requested_distance,
                      " back plus the question; lower data.stream.distances or raise seq_len");
      return {kept + tail, q.answers};
    }
  }
  throw DataError("fact_stream: no question within 100000 chunks");
}

// ---- FlashRAG QA -----------------------------------------------------------------------------------------
QaTask::QaTask(const TaskOptions& options, uint64_t seed)
    : TextTask("qa", options.qa.seq_len, options), options_(options.qa), seed_(seed) {
  const QaTaskOptions& o = options_;
  DYSRA_CHECK_T(ConfigError, !o.train_path.empty() && !o.eval_path.empty(), "data.qa: train_path and eval_path are required");
  train_ = read_flashrag_questions(o.train_path);
  eval_ = read_flashrag_questions(o.eval_path);
  if (o.max_train_examples > 0 && static_cast<int64_t>(train_.size()) > o.max_train_examples) train_.resize(o.max_train_examples);
  if (o.max_eval_examples > 0 && static_cast<int64_t>(eval_.size()) > o.max_eval_examples) eval_.resize(o.max_eval_examples);
  for (const auto* set : {&train_, &eval_})
    for (const auto& q : *set)
      DYSRA_CHECK_T(DataError, !q.golden_answers.empty(), o.train_path, ": question ", q.id, " has no golden answer");
  if (!o.corpus_path.empty()) {
    corpus_ = read_flashrag_corpus(o.corpus_path);
    for (size_t i = 0; i < corpus_.size(); ++i) doc_index_[corpus_[i].id] = i;
    for (const auto* set : {&train_, &eval_})
      for (const auto& q : *set)
        for (const auto& g : q.gold_doc_ids)
          DYSRA_CHECK_T(DataError, doc_index_.count(g), o.corpus_path, ": gold document ", g, " of question ", q.id, " is not in the corpus");
  }
  // Questions whose answer exceeds max_answer_tokens, or whose gold documents, question and answer budget
  // cannot fit seq_len, are dropped (and counted): no truncation ever hides the evidence.
  auto answer_tokens = [&](const QAExample& q) { return static_cast<int64_t>(tokenizer_->encode(q.golden_answers[0]).size()); };
  auto drop = [&](const std::function<bool(const QAExample&)>& bad) {
    for (auto* set : {&train_, &eval_}) {
      const size_t before = set->size();
      set->erase(std::remove_if(set->begin(), set->end(), bad), set->end());
      dropped_ += static_cast<int64_t>(before - set->size());
    }
  };
  drop([&](const QAExample& q) { return answer_tokens(q) > o.max_answer_tokens; });
  answer_budget_ = 1;
  for (const auto* set : {&train_, &eval_})
    for (const auto& q : *set) answer_budget_ = std::max(answer_budget_, answer_tokens(q) + 1);
  // byte counts bound the token counts from above (every tokenizer here spends at most one token per byte)
  drop([&](const QAExample& q) {
    int64_t n = static_cast<int64_t>(q.question.size()) + 7 + answer_budget_;  // "Q: " question "\nA: "
    for (const auto& g : q.gold_doc_ids)
      if (doc_index_.count(g)) n += static_cast<int64_t>(corpus_[doc_index_.at(g)].text.size()) + 1;
    return n > seq_len_ + 1;
  });
  DYSRA_CHECK_T(DataError, !train_.empty() && !eval_.empty(), o.train_path, ": no question fits data.qa.seq_len = ", o.seq_len,
                " with its gold documents (", dropped_, " dropped); raise seq_len");
  std::unordered_map<std::string, int64_t> freq;
  int64_t best = 0;
  for (const auto& q : train_)
    if (++freq[q.golden_answers[0]] > best) best = freq[q.golden_answers[0]], majority_ = q.golden_answers[0];
}

std::map<std::string, double> QaTask::answer_metrics(Split split, int64_t max_examples, int64_t batch_size,
                                                     const Generate& generate) const {
  auto m = TextTask::answer_metrics(split, max_examples, batch_size, generate);
  const int64_t n = max_examples > 0 ? std::min(max_examples, size(split)) : size(split);
  metrics::QAAccumulator baseline;
  for (int64_t i = 0; i < n; ++i) baseline.add(majority_, text(split, i).second);
  m["majority_em"] = baseline.result().em;
  m["majority_f1"] = baseline.result().f1;
  return m;
}

int64_t QaTask::size(Split split) const {
  return static_cast<int64_t>(split == Split::kTrain ? train_.size() : eval_.size());
}

std::pair<std::string, std::vector<std::string>> QaTask::text(Split split, int64_t id) const {
  const QAExample& q = (split == Split::kTrain ? train_ : eval_)[static_cast<size_t>(id)];
  std::vector<size_t> docs;
  for (const auto& g : q.gold_doc_ids) docs.push_back(doc_index_.at(g));
  SplitMix64 rng(mix_seed(seed_, static_cast<uint64_t>(split), static_cast<uint64_t>(id)));
  if (!corpus_.empty()) {
    for (int64_t tries = 0; static_cast<int64_t>(docs.size()) < options_.haystack_docs && tries < 100; ++tries) {
      size_t d = static_cast<size_t>(rng.below(static_cast<int64_t>(corpus_.size())));
      if (std::find(docs.begin(), docs.end(), d) == docs.end()) docs.push_back(d);
    }
  }
  rng.shuffle(docs);
  const std::string tail = "Q: " + q.question + "\nA: ";
  const size_t budget = static_cast<size_t>(seq_len_ + 1 - answer_budget_);  // bytes bound tokens from above
  auto build = [&](const std::vector<size_t>& ds) {
    std::string p;
    for (size_t d : ds) p += corpus_[d].text + "\n";
    return p + tail;
  };
  std::string prompt = build(docs);
  // drop distractors (never a gold document) until the prompt fits
  while (prompt.size() > budget) {
    auto it = std::find_if(docs.begin(), docs.end(), [&](size_t d) {
      return std::find(q.gold_doc_ids.begin(), q.gold_doc_ids.end(), corpus_[d].id) == q.gold_doc_ids.end();
    });
    if (it == docs.end()) break;
    docs.erase(it);
    prompt = build(docs);
  }
  return {prompt, {q.golden_answers[0]}};
}

}  // namespace dysra::data
