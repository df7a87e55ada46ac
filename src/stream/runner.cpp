// The streaming runner (see runner.h).
#include "dysra/stream/runner.h"

#include <torch/torch.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dysra/cache/model.h"
#include "dysra/core/error.h"
#include "dysra/data/tokenizer.h"
#include "dysra/models/lm.h"
#include "dysra/train/checkpoint.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace dysra::stream {
namespace {

using train::string_tensor;
using train::tensor_string;

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

json interval_json(const IntervalRecord& r, const std::vector<cache::MemoryReport>& layers) {
  json j{{"interval", r.index},
         {"tokens", r.tokens},
         {"questions", r.questions},
         {"correct", r.correct},
         {"accuracy", r.questions ? static_cast<double>(r.correct) / static_cast<double>(r.questions) : 0.0},
         {"token_accuracy", r.answer_tokens ? static_cast<double>(r.answer_tokens_correct) /
                                                  static_cast<double>(r.answer_tokens)
                                            : 0.0},
         {"mean_distance", r.questions ? r.distance_sum / static_cast<double>(r.questions) : 0.0},
         {"decode_ms_per_token", r.decode_steps ? 1e3 * r.decode_s / static_cast<double>(r.decode_steps) : 0.0},
         {"prefill_ms_per_token", r.prefill_tokens ? 1e3 * r.prefill_s / static_cast<double>(r.prefill_tokens) : 0.0},
         {"cache_bytes", r.cache_bytes},
         {"cache_kv_bytes", r.cache_kv_bytes},
         {"cache_slots", r.cache_slots},
         {"cache_capacity_bytes", r.cache_capacity_bytes}};
  json per = json::array();
  for (const auto& m : layers) per.push_back(m.bytes);
  j["layer_bytes"] = per;
  return j;
}

json record_to_json(const IntervalRecord& r) {
  return json{{"index", r.index}, {"tokens", r.tokens}, {"questions", r.questions}, {"correct", r.correct},
              {"answer_tokens", r.answer_tokens}, {"answer_tokens_correct", r.answer_tokens_correct},
              {"distance_sum", r.distance_sum}, {"decode_s", r.decode_s}, {"prefill_s", r.prefill_s},
              {"decode_steps", r.decode_steps}, {"prefill_tokens", r.prefill_tokens}};
}

IntervalRecord record_from_json(const json& j) {
  IntervalRecord r;
  r.index = j.at("index"), r.tokens = j.at("tokens"), r.questions = j.at("questions"), r.correct = j.at("correct");
  r.answer_tokens = j.at("answer_tokens"), r.answer_tokens_correct = j.at("answer_tokens_correct");
  r.distance_sum = j.at("distance_sum"), r.decode_s = j.at("decode_s"), r.prefill_s = j.at("prefill_s");
  r.decode_steps = j.at("decode_steps"), r.prefill_tokens = j.at("prefill_tokens");
  return r;
}

struct Runner {
  const StreamOptions& o;
  models::LanguageModelImpl& model;
  const data::Tokenizer& tok;
  torch::Device dev{torch::kCPU};
  std::vector<layers::MixerState> states;
  std::unique_ptr<data::FactStream> stream;
  uint64_t fed = 0;
  IntervalRecord cur;
  uint64_t total_q = 0, total_correct = 0, total_decode_steps = 0;
  double total_decode_s = 0;
  std::string interval_path, question_path, ckpt_path;
  std::ofstream intervals, questions;

  Runner(const StreamOptions& opt, models::LanguageModelImpl& m, const data::Tokenizer& t) : o(opt), model(m), tok(t) {}

  torch::Tensor feed(const std::vector<int32_t>& ids, bool decode) {
    torch::Tensor last;
    for (size_t s = 0; s < ids.size(); s += static_cast<size_t>(o.chunk_tokens)) {
      const size_t e = std::min(ids.size(), s + static_cast<size_t>(o.chunk_tokens));
      std::vector<int64_t> piece(ids.begin() + static_cast<long>(s), ids.begin() + static_cast<long>(e));
      auto x = torch::tensor(piece, torch::kInt64).unsqueeze(0).to(dev);
      sync(dev);
      auto t0 = std::chrono::steady_clock::now();
      auto h = model.hidden(x, {}, &states);
      last = model.logits(h.select(1, h.size(1) - 1));  // [1, V]
      sync(dev);
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (decode) {
        cur.decode_s += dt, cur.decode_steps += piece.size();
        total_decode_s += dt, total_decode_steps += piece.size();
      } else {
        cur.prefill_s += dt, cur.prefill_tokens += piece.size();
      }
      fed += piece.size();
      cur.tokens += piece.size();
      while (fed >= (cur.index + 1) * o.report_every) close_interval();
    }
    return last;
  }

  void close_interval() {
    std::vector<cache::MemoryReport> layers;
    auto mem = cache::total_memory(states, &layers);
    cur.cache_bytes = mem.bytes, cur.cache_kv_bytes = mem.kv_bytes, cur.cache_slots = mem.slots;
    cur.cache_capacity_bytes = mem.capacity_bytes;
    intervals << interval_json(cur, layers).dump() << "\n";
    intervals.flush();
    IntervalRecord next;
    next.index = cur.index + 1;
    cur = next;
  }

  void ask(const data::StreamQuestion& q) {
    DYSRA_CHECK(!q.answers.empty(), "stream: question ", q.id, " has no answer");
    const std::string& gold = q.answers[0];
    const std::string& prefix = q.answer_prefix;
    auto logits = feed(tok.encode(q.question + " " + prefix), false);
    auto ans = tok.encode(gold);
    std::vector<int32_t> guess;
    bool all = true;
    for (auto a : ans) {
      const int32_t g = static_cast<int32_t>(logits.argmax(-1).item<int64_t>());
      guess.push_back(g);
      const bool ok = g == a;
      all = all && ok;
      cur.answer_tokens += 1, cur.answer_tokens_correct += ok ? 1 : 0;
      logits = feed({a}, true);
    }
    feed(tok.encode(". "), false);
    cur.questions += 1, cur.correct += all ? 1 : 0;
    cur.distance_sum += static_cast<double>(q.distance());
    total_q += 1, total_correct += all ? 1 : 0;
    std::string guessed;
    try {
      guessed = tok.decode(guess);
    } catch (const std::exception&) {
      guessed = "<undecodable>";
    }
    questions << json{{"id", q.id},           {"position", q.position},   {"fact_position", q.fact_position},
                      {"distance", q.distance()}, {"requested_distance", q.requested_distance},
                      {"tokens", fed},         {"correct", all},          {"guess", guessed},
                      {"gold", gold}}
                     .dump(-1, ' ', false, json::error_handler_t::replace)  // guesses may be invalid UTF-8
              << "\n";
    questions.flush();
  }

  void save() {
    torch::serialize::OutputArchive ar;
    const auto& st = stream->state();
    json placed = json::array();
    for (const auto& p : st.placed) placed.push_back({p.first, p.second});
    json meta{{"fed", fed},
              {"policy", o.cache.policy},
              {"stream", {{"position", st.position}, {"unit_index", st.unit_index},
                          {"next_question", st.next_question}, {"placed", placed}}},
              {"interval", record_to_json(cur)},
              {"total_q", total_q}, {"total_correct", total_correct},
              {"total_decode_steps", total_decode_steps}, {"total_decode_s", total_decode_s},
              {"interval_bytes", static_cast<uint64_t>(fs::file_size(interval_path))},
              {"question_bytes", static_cast<uint64_t>(fs::file_size(question_path))}};
    json offsets = json::array();
    for (size_t l = 0; l < states.size(); ++l) {
      const auto& s = states[l];
      offsets.push_back({s.offset, s.tensors.size()});
      for (size_t i = 0; i < s.tensors.size(); ++i)
        ar.write("mixer" + std::to_string(l) + "/" + std::to_string(i), s.tensors[i].to(torch::kCPU));
      if (s.kv_cache)
        for (const auto& kv : s.kv_cache->state())
          ar.write("cache" + std::to_string(l) + "/" + kv.first, kv.second.to(torch::kCPU));
    }
    meta["states"] = offsets;
    ar.write("meta", string_tensor(meta.dump()));
    std::ostringstream os;
    ar.save_to(os);
    train::write_file_atomic(ckpt_path, os.str());
  }

  void load() {
    torch::serialize::InputArchive ar;
    try {
      ar.load_from(ckpt_path);
    } catch (const std::exception& e) {
      throw DataError(ckpt_path + ": cannot read stream checkpoint: " + e.what());
    }
    torch::Tensor mt;
    ar.read("meta", mt);
    auto meta = json::parse(tensor_string(mt));
    DYSRA_CHECK_T(ConfigError, meta.at("policy") == o.cache.policy, ckpt_path, ": checkpoint of policy '",
                  meta.at("policy").get<std::string>(), "', this run uses '", o.cache.policy, "'");
    fed = meta.at("fed");
    data::FactStreamState st;
    st.position = meta["stream"]["position"], st.unit_index = meta["stream"]["unit_index"];
    st.next_question = meta["stream"]["next_question"];
    for (const auto& p : meta["stream"]["placed"]) st.placed.emplace_back(p[0].get<uint64_t>(), p[1].get<uint64_t>());
    stream->restore(st);
    cur = record_from_json(meta.at("interval"));
    total_q = meta.at("total_q"), total_correct = meta.at("total_correct");
    total_decode_steps = meta.at("total_decode_steps"), total_decode_s = meta.at("total_decode_s");
    const auto& offs = meta.at("states");
    DYSRA_CHECK_T(DataError, offs.size() == states.size(), ckpt_path, ": states for ", offs.size(),
                  " layers, the model has ", states.size());
    auto keys = ar.keys();
    for (size_t l = 0; l < states.size(); ++l) {
      auto& s = states[l];
      s.offset = offs[l][0].get<int64_t>();
      s.tensors.clear();
      for (size_t i = 0; i < offs[l][1].get<size_t>(); ++i) {
        torch::Tensor t;
        ar.read("mixer" + std::to_string(l) + "/" + std::to_string(i), t);
        s.tensors.push_back(t.to(dev));
      }
      if (s.kv_cache) {
        const std::string p = "cache" + std::to_string(l) + "/";
        std::map<std::string, torch::Tensor> m;
        for (const auto& k : keys)
          if (k.rfind(p, 0) == 0) {
            torch::Tensor t;
            ar.read(k, t);
            const std::string name = k.substr(p.size());
            m[name] = (name.size() > 2 && (name.substr(name.size() - 2) == ".k" || name.substr(name.size() - 2) == ".v"))
                          ? t.to(dev)
                          : t;
          }
        s.kv_cache->load_state(m);
      }
    }
    fs::resize_file(interval_path, meta.at("interval_bytes").get<uint64_t>());
    fs::resize_file(question_path, meta.at("question_bytes").get<uint64_t>());
  }
};

}  // namespace

StreamSummary run_stream(const StreamOptions& o, models::LanguageModelImpl& model, const data::Tokenizer& tok) {
  DYSRA_CHECK_T(ConfigError, !o.run_dir.empty(), "stream.run_dir: required");
  DYSRA_CHECK_T(ConfigError, o.chunk_tokens >= 1, "stream.chunk_tokens: must be >= 1, got ", o.chunk_tokens);
  DYSRA_CHECK_T(ConfigError, o.report_every >= 1, "stream.report_every: must be >= 1");
  DYSRA_CHECK_T(ConfigError, tok.vocab_size() <= model.vocab_size(), "stream: tokenizer vocabulary (",
                tok.vocab_size(), ") exceeds the model's (", model.vocab_size(), ")");
  fs::create_directories(o.run_dir);
  model.eval();
  torch::NoGradGuard ng;
  Runner r(o, model, tok);
  if (!model.parameters().empty()) r.dev = model.parameters()[0].device();

  cache::CacheOptions co = o.cache;
  if (co.policy == "razor" && co.retrieval_heads.empty() && o.razor_probe) {
    cache::RazorProbeOptions po;
    po.vocab_high = std::min<int64_t>(256, model.vocab_size());
    co.retrieval_heads = cache::razor_probe(model, po).retrieval_heads;
  }
  r.states = cache::make_layer_states(model, co);
  auto fo = o.facts;
  fo.count_tokens = data::tokenizer_token_counter(tok);
  r.stream = std::make_unique<data::FactStream>(fo);
  r.interval_path = (fs::path(o.run_dir) / "stream.jsonl").string();
  r.question_path = (fs::path(o.run_dir) / "questions.jsonl").string();
  r.ckpt_path = (fs::path(o.run_dir) / "stream.ckpt").string();
  const bool resuming = o.resume && fs::exists(r.ckpt_path);
  if (!resuming) {
    std::ofstream(r.interval_path, std::ios::trunc);
    std::ofstream(r.question_path, std::ios::trunc);
  } else {
    r.load();
  }
  r.intervals.open(r.interval_path, std::ios::app);
  r.questions.open(r.question_path, std::ios::app);
  DYSRA_CHECK_T(DataError, r.intervals && r.questions, o.run_dir, ": cannot write the stream outputs");

  {
    json cfg{{"policy", co.policy},       {"budget", co.budget},   {"sink_tokens", co.sink_tokens},
             {"window", co.window},       {"raw_slots", co.raw_slots}, {"delta", co.delta},
             {"rank", co.rank},           {"summary_slots", co.summary_slots},
             {"recompress_depth", co.recompress_depth}, {"method", co.method},
             {"retrieval_heads", co.retrieval_heads}, {"total_tokens", o.total_tokens},
             {"chunk_tokens", o.chunk_tokens}, {"report_every", o.report_every},
             {"question_interval", o.facts.question_interval}, {"distances", o.facts.distances},
             {"seed", o.facts.seed}, {"device", r.dev.str()}};
    std::ofstream(fs::path(o.run_dir) / "stream_config.json") << cfg.dump(2) << "\n";
  }

  StreamSummary sum;
  uint64_t last_ckpt = r.fed;
  while (r.fed < o.total_tokens) {
    auto chunk = r.stream->next();
    r.feed(tok.encode(chunk.text), false);
    for (const auto& q : chunk.questions) r.ask(q);
    if (o.checkpoint_every > 0 && r.fed - last_ckpt >= o.checkpoint_every) {
      r.save();
      last_ckpt = r.fed;
    }
    if (o.stop_after > 0 && r.fed >= o.stop_after) {
      sum.stopped_early = true;
      break;
    }
  }
  if (!sum.stopped_early && r.cur.tokens > 0) r.close_interval();
  auto mem = cache::total_memory(r.states);
  sum.tokens = r.fed, sum.questions = r.total_q, sum.correct = r.total_correct;
  sum.accuracy = r.total_q ? static_cast<double>(r.total_correct) / static_cast<double>(r.total_q) : 0.0;
  sum.cache_bytes = mem.bytes, sum.cache_slots = mem.slots;
  sum.decode_ms_per_token = r.total_decode_steps ? 1e3 * r.total_decode_s / static_cast<double>(r.total_decode_steps) : 0;
  if (!sum.stopped_early)
    std::ofstream(fs::path(o.run_dir) / "summary.json")
        << json{{"tokens", sum.tokens}, {"questions", sum.questions}, {"correct", sum.correct},
                {"accuracy", sum.accuracy}, {"cache_bytes", sum.cache_bytes}, {"cache_slots", sum.cache_slots},
                {"decode_ms_per_token", sum.decode_ms_per_token}, {"policy", co.policy}}
               .dump(2)
        << "\n";
  return sum;
}

}  // namespace dysra::stream
