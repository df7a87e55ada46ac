// Loading, merging, overriding and validating experiment YAML; the schema of every section.
#include "dysra/config/experiment.h"

#include "dysra/cache/kv_cache.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "dysra/core/error.h"
#include "dysra/data/task.h"
#include "dysra/layers/mixer.h"

namespace fs = std::filesystem;

namespace dysra::config {
namespace {

// ------------------------------------------------------------------------------------------------
// A merged YAML tree plus where each key path was last set ("file:line" or "--set ...").
struct Doc {
  YAML::Node root = YAML::Node(YAML::NodeType::Map);
  std::map<std::string, std::string> origins;

  std::string where(const std::string& path) const {
    for (std::string p = path;;) {
      auto it = origins.find(p);
      if (it != origins.end()) return it->second;
      auto cut = p.find_last_of(".[");
      if (cut == std::string::npos) break;
      p = p.substr(0, cut);
    }
    auto it = origins.find("");
    return it != origins.end() ? it->second : "<config>";
  }
  [[noreturn]] void fail(const std::string& path, const std::string& msg) const {
    throw ConfigError(where(path) + ": " + (path.empty() ? "" : path + ": ") + msg);
  }
};

std::string join(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

void record(Doc& doc, const YAML::Node& node, const std::string& path, const std::string& file) {
  doc.origins[path] = node.Mark().is_null() ? file : file + ":" + std::to_string(node.Mark().line + 1);
  if (node.IsMap()) {
    for (const auto& kv : node) record(doc, kv.second, join(path, kv.first.Scalar()), file);
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) record(doc, node[i], path + "[" + std::to_string(i) + "]", file);
  }
}

void merge(Doc& doc, YAML::Node dst, const YAML::Node& src, const std::string& path, const std::string& file) {
  for (const auto& kv : src) {
    const std::string key = kv.first.Scalar(), child = join(path, key);
    YAML::Node existing = dst[key];
    if (existing.IsMap() && kv.second.IsMap()) {
      merge(doc, existing, kv.second, child, file);
      doc.origins[child] = file + ":" + std::to_string(kv.second.Mark().line + 1);
    } else {
      dst[key] = YAML::Clone(kv.second);
      record(doc, kv.second, child, file);
    }
  }
}

YAML::Node parse_text(const std::string& text, const std::string& name) {
  try {
    YAML::Node n = YAML::Load(text);
    if (n.IsNull()) return YAML::Node(YAML::NodeType::Map);
    if (!n.IsMap()) throw ConfigError(name + ":1: the top level of an experiment must be a mapping");
    return n;
  } catch (const YAML::Exception& e) {
    throw ConfigError(name + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
}

void load_into(Doc& doc, const YAML::Node& node, const std::string& name, const fs::path& dir,
               std::vector<std::string>& stack) {
  if (node["extends"]) {
    const YAML::Node ext = node["extends"];
    const std::string at = name + ":" + std::to_string(ext.Mark().line + 1);
    std::vector<std::string> bases;
    if (ext.IsScalar()) {
      bases.push_back(ext.Scalar());
    } else if (ext.IsSequence()) {
      for (const auto& b : ext) {
        if (!b.IsScalar()) throw ConfigError(at + ": extends: expected a file name or a list of file names");
        bases.push_back(b.Scalar());
      }
    } else {
      throw ConfigError(at + ": extends: expected a file name or a list of file names");
    }
    for (const auto& b : bases) {
      fs::path p = fs::path(b).is_absolute() ? fs::path(b) : dir / b;
      if (!fs::exists(p)) throw ConfigError(at + ": extends: file not found: " + p.string());
      const std::string canon = fs::weakly_canonical(p).string();
      for (const auto& s : stack)
        if (s == canon) throw ConfigError(at + ": extends: cycle through " + p.string());
      std::ifstream in(p);
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string pname = p.lexically_normal().string();
      YAML::Node base = parse_text(ss.str(), pname);
      stack.push_back(canon);
      load_into(doc, base, pname, p.parent_path(), stack);
      stack.pop_back();
    }
  }
  YAML::Node own(YAML::NodeType::Map);
  for (const auto& kv : node)
    if (kv.first.Scalar() != "extends") own[kv.first.Scalar()] = kv.second;
  merge(doc, doc.root, own, "", name);
}

void apply_override(Doc& doc, const std::string& item) {
  const std::string origin = "--set " + item;
  auto eq = item.find('=');
  if (eq == std::string::npos || eq == 0) throw ConfigError(origin + ": expected key.path=value");
  std::string key = item.substr(0, eq), text = item.substr(eq + 1);
  if (key.rfind("--", 0) == 0) key = key.substr(2);
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(origin + ": cannot parse value: " + e.msg);
  }
  std::vector<std::string> parts;
  std::stringstream ks(key);
  for (std::string p; std::getline(ks, p, '.');) {
    if (p.empty()) throw ConfigError(origin + ": empty component in key path '" + key + "'");
    parts.push_back(p);
  }
  std::vector<YAML::Node> chain{doc.root};
  std::string path;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    path = join(path, parts[i]);
    YAML::Node next = chain.back()[parts[i]];
    if (!next.IsDefined() || next.IsNull()) {
      chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next = chain.back()[parts[i]];
    } else if (!next.IsMap()) {
      throw ConfigError(origin + ": " + path + " is not a section");
    }
    chain.push_back(next);
  }
  chain.back()[parts.back()] = value;
  std::vector<std::string> stale;
  for (const auto& kv : doc.origins)
    if (kv.first == key || kv.first.rfind(key + ".", 0) == 0 || kv.first.rfind(key + "[", 0) == 0) stale.push_back(kv.first);
  for (const auto& s : stale) doc.origins.erase(s);
  doc.origins[key] = origin;
}

// ------------------------------------------------------------------------------------------------
// Scalar conversion.
std::string describe(const YAML::Node& n) {
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  if (n.IsNull()) return "nothing (null)";
  return "\"" + n.Scalar() + "\"";
}

bool parse_scalar(const YAML::Node& n, int64_t& out) {
  if (!n.IsScalar()) return false;
  const std::string& s = n.Scalar();
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}
bool parse_scalar(const YAML::Node& n, uint64_t& out) {
  if (!n.IsScalar()) return false;
  const std::string& s = n.Scalar();
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}
bool parse_scalar(const YAML::Node& n, double& out) {
  if (!n.IsScalar() || n.Scalar().empty()) return false;
  const std::string& s = n.Scalar();
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(out);
}
bool parse_scalar(const YAML::Node& n, bool& out) {
  if (!n.IsScalar()) return false;
  const std::string& s = n.Scalar();
  if (s == "true" || s == "True" || s == "TRUE") return out = true, true;
  if (s == "false" || s == "False" || s == "FALSE") return out = false, true;
  return false;
}
bool parse_scalar(const YAML::Node& n, std::string& out) {
  if (!n.IsScalar()) return false;
  out = n.Scalar();
  return true;
}
template <class T>
bool parse_scalar(const YAML::Node& n, std::vector<T>& out) {
  if (!n.IsSequence()) return false;
  std::vector<T> v(n.size());
  for (size_t i = 0; i < n.size(); ++i)
    if (!parse_scalar(n[i], v[i])) return false;
  out = std::move(v);
  return true;
}

template <class T> const char* type_name();
template <> const char* type_name<int64_t>() { return "an integer"; }
template <> const char* type_name<uint64_t>() { return "a non-negative integer"; }
template <> const char* type_name<double>() { return "a number"; }
template <> const char* type_name<bool>() { return "true or false"; }
template <> const char* type_name<std::string>() { return "a string"; }
template <> const char* type_name<std::vector<std::string>>() { return "a list of strings"; }
template <> const char* type_name<std::vector<int64_t>>() { return "a list of integers"; }

std::string fmt_double(double x) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, x);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";  // keep it a float in YAML
  return s;
}
YAML::Node to_node(int64_t x) { return YAML::Node(std::to_string(x)); }
YAML::Node to_node(uint64_t x) { return YAML::Node(std::to_string(x)); }
YAML::Node to_node(double x) { return YAML::Node(fmt_double(x)); }
YAML::Node to_node(bool x) { return YAML::Node(x ? "true" : "false"); }
YAML::Node to_node(const std::string& x) { return YAML::Node(x); }
template <class T>
YAML::Node to_node(const std::vector<T>& v) {
  YAML::Node n(YAML::NodeType::Sequence);
  for (const auto& x : v) n.push_back(to_node(x));
  n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}

// ------------------------------------------------------------------------------------------------
// Validators: return "" when fine, else what is wrong.
template <class T>
using Check = std::function<std::string(const T&)>;

template <class T>
Check<T> at_least(T lo) {
  return [lo](const T& x) { return x >= lo ? std::string() : detail::str_cat("must be >= ", lo, ", got ", x); };
}
Check<double> positive() {
  return [](const double& x) { return x > 0 ? std::string() : detail::str_cat("must be > 0, got ", x); };
}
Check<double> between(double lo, double hi) {
  return [lo, hi](const double& x) {
    return x >= lo && x <= hi ? std::string() : detail::str_cat("must be in [", lo, ", ", hi, "], got ", x);
  };
}
Check<std::string> one_of(std::vector<std::string> names) {
  return [names](const std::string& x) {
    for (const auto& n : names)
      if (n == x) return std::string();
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    return "unknown value \"" + x + "\" (expected one of: " + known + ")";
  };
}

// Reading visitor.
class Reader {
 public:
  Reader(const Doc& doc, YAML::Node node, std::string path) : doc_(doc), node_(node), path_(std::move(path)) {
    if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) doc_.fail(path_, "expected a mapping, got " + describe(node_));
  }
  template <class T>
  void field(const char* key, T& value, const Check<T>& check = {}) {
    seen_.insert(key);
    const std::string path = join(path_, key);
    if (node_.IsMap() && node_[key]) {
      const YAML::Node n = node_[key];
      if (!parse_scalar(n, value)) doc_.fail(path, std::string("expected ") + type_name<T>() + ", got " + describe(n));
    }
    if (check) {
      std::string err = check(value);
      if (!err.empty()) doc_.fail(path, err);
    }
  }
  template <class T>
  void each(const char* key, std::vector<T>& value, const Check<T>& check) {
    field(key, value);
    for (size_t i = 0; i < value.size(); ++i) {
      std::string err = check(value[i]);
      if (!err.empty()) doc_.fail(join(path_, key) + "[" + std::to_string(i) + "]", err);
    }
  }
  template <class F>
  void section(const char* key, F&& f) {
    seen_.insert(key);
    Reader sub(doc_, node_.IsMap() ? node_[key] : YAML::Node(), join(path_, key));
    f(sub);
    sub.finish();
  }
  void finish() const {
    if (!node_.IsMap()) return;
    for (const auto& kv : node_) {
      const std::string key = kv.first.Scalar();
      if (seen_.count(key)) continue;
      std::string known;
      for (const auto& k : seen_) known += (known.empty() ? "" : ", ") + k;
      doc_.fail(join(path_, key), "unknown key (known here: " + known + ")");
    }
  }
  void fail(const char* key, const std::string& msg) const { doc_.fail(join(path_, key), msg); }

 private:
  const Doc& doc_;
  YAML::Node node_;
  std::string path_;
  std::set<std::string> seen_;
};

// Writing visitor.
class Writer {
 public:
  YAML::Node node = YAML::Node(YAML::NodeType::Map);
  template <class T>
  void field(const char* key, T& value, const Check<T>& = {}) {
    node[key] = to_node(value);
  }
  template <class T>
  void each(const char* key, std::vector<T>& value, const Check<T>&) {
    node[key] = to_node(value);
  }
  template <class F>
  void section(const char* key, F&& f) {
    Writer sub;
    f(sub);
    node[key] = sub.node;
  }
  void fail(const char*, const std::string&) const {}
};

// ------------------------------------------------------------------------------------------------
// The schema: one visit() per Options struct, used for reading, validating and writing.
template <class V>
void visit(V& v, models::MambaOptions& o) {
  v.field("d_state", o.d_state, at_least<int64_t>(1));
  v.field("d_conv", o.d_conv, at_least<int64_t>(1));
  v.field("expand", o.expand, at_least<int64_t>(1));
  v.field("dt_rank", o.dt_rank, at_least<int64_t>(0));
  v.field("dt_min", o.dt_min, positive());
  v.field("dt_max", o.dt_max, positive());
  if (o.dt_min > o.dt_max) v.fail("dt_min", "must be <= dt_max");
}
template <class V>
void visit(V& v, models::LinearAttentionOptions& o) {
  v.field("feature_map", o.feature_map, one_of({"elu1", "relu", "identity"}));
  v.field("chunk_size", o.chunk_size, at_least<int64_t>(1));
  v.field("normalize", o.normalize);
}
template <class V>
void visit(V& v, models::SparseAttentionOptions& o) {
  v.field("block_q", o.block_q, at_least<int64_t>(1));
  v.field("top_k", o.top_k, at_least<int64_t>(1));
  v.field("index_source", o.index_source, one_of({"random", "window", "oracle"}));
}
template <class V>
void visit(V& v, models::ModelOptions& o) {
  v.field("backbone", o.backbone, one_of({"transformer", "mamba", "linear_attention", "dysra"}));
  Check<std::string> known_layer = [](const std::string& x) {
    return layers::mixer_registry().contains(x)
               ? std::string()
               : "unknown layer type \"" + x + "\" (known: " + layers::mixer_registry().known() + ")";
  };
  v.each("layers", o.layers, known_layer);
  v.field("n_layers", o.n_layers, at_least<int64_t>(1));
  v.field("d_model", o.d_model, at_least<int64_t>(1));
  v.field("n_heads", o.n_heads, at_least<int64_t>(1));
  if (o.d_model % o.n_heads != 0)
    v.fail("n_heads", detail::str_cat("d_model (", o.d_model, ") must be divisible by n_heads (", o.n_heads, ")"));
  v.field("mlp_ratio", o.mlp_ratio, at_least<int64_t>(0));
  v.field("dropout", o.dropout, between(0.0, 0.99));
  v.field("norm", o.norm, one_of({"layernorm", "rmsnorm"}));
  v.field("position", o.position, one_of({"rope", "learned", "none"}));
  v.field("rope_theta", o.rope_theta, positive());
  v.field("max_seq_len", o.max_seq_len, at_least<int64_t>(1));
  v.field("context_budget", o.context_budget, at_least<int64_t>(0));
  v.field("tie_embeddings", o.tie_embeddings);
  v.section("mamba", [&](V& s) { visit(s, o.mamba); });
  v.section("linear_attention", [&](V& s) { visit(s, o.linear_attention); });
  v.section("sparse_attention", [&](V& s) { visit(s, o.sparse_attention); });
  if (o.backbone == "dysra" && o.layers.empty()) v.fail("layers", "backbone 'dysra' needs a layer pattern, e.g. [mamba, sparse_attention]");
}
template <class V>
void visit(V& v, data::MqarOptions& o) {
  v.field("vocab_size", o.vocab_size, at_least<int64_t>(4));
  v.field("seq_len", o.seq_len, at_least<int64_t>(4));
  v.field("num_kv_pairs", o.num_kv_pairs, at_least<int64_t>(1));
  v.field("num_passes", o.num_passes, at_least<int64_t>(1));
  v.field("power_a", o.power_a, positive());
  v.field("random_non_queries", o.random_non_queries);
  v.field("train_examples", o.train_examples, at_least<int64_t>(1));
  v.field("eval_examples", o.eval_examples, at_least<int64_t>(1));
  if (o.seq_len % 2 != 0) v.fail("seq_len", detail::str_cat("must be even, got ", o.seq_len));
  if (o.vocab_size <= o.seq_len) v.fail("vocab_size", detail::str_cat("must exceed seq_len (", o.seq_len, "), got ", o.vocab_size));
  if (4 * o.num_kv_pairs > o.vocab_size) v.fail("num_kv_pairs", "needs vocab_size >= 4·num_kv_pairs");
  if (o.num_kv_pairs * 2 * o.num_passes + o.num_kv_pairs * 2 > o.seq_len)
    v.fail("num_kv_pairs", detail::str_cat("needs num_kv_pairs·2·num_passes + num_kv_pairs·2 <= seq_len (", o.seq_len, ")"));
}
template <class V>
void visit(V& v, data::SyntheticTaskOptions& o) {
  v.field("seq_len", o.seq_len, at_least<int64_t>(16));
  v.field("min_seq_len", o.min_seq_len, at_least<int64_t>(0));
  v.field("length_buckets", o.length_buckets, at_least<int64_t>(1));
  v.field("train_examples", o.train_examples, at_least<int64_t>(1));
  v.field("eval_examples", o.eval_examples, at_least<int64_t>(1));
  v.field("essay_path", o.essay_path);
  if (o.min_seq_len > o.seq_len)
    v.fail("min_seq_len", detail::str_cat("must not exceed seq_len (", o.seq_len, "), got ", o.min_seq_len));
}
// A path that must exist when given ("" = not set).
Check<std::string> existing_file_or_empty() {
  return [](const std::string& p) {
    return p.empty() || std::filesystem::exists(p) ? std::string() : "file not found: " + p;
  };
}
template <class V>
void visit(V& v, data::QaTaskOptions& o) {
  const Check<std::string> file = existing_file_or_empty();
  v.field("train_path", o.train_path, file);
  v.field("eval_path", o.eval_path, file);
  v.field("corpus_path", o.corpus_path, file);
  v.field("haystack_docs", o.haystack_docs, at_least<int64_t>(1));
  v.field("seq_len", o.seq_len, at_least<int64_t>(16));
  v.field("max_train_examples", o.max_train_examples, at_least<int64_t>(0));
  v.field("max_eval_examples", o.max_eval_examples, at_least<int64_t>(0));
  v.field("max_answer_tokens", o.max_answer_tokens, at_least<int64_t>(1));
  if (o.train_path.empty()) v.fail("train_path", "required for task qa");
  if (o.eval_path.empty()) v.fail("eval_path", "required for task qa");
}
template <class V>
void visit(V& v, data::LmTaskOptions& o) {
  const Check<std::string> file = existing_file_or_empty();
  v.field("train_path", o.train_path, file);
  v.field("eval_path", o.eval_path, file);
  v.field("seq_len", o.seq_len, at_least<int64_t>(2));
  v.field("mode", o.mode, one_of({"pack", "pad"}));
  v.field("bucket", o.bucket);
  v.field("bucket_window", o.bucket_window, at_least<int64_t>(1));
  v.field("max_eval_examples", o.max_eval_examples, at_least<int64_t>(0));
  if (o.train_path.empty()) v.fail("train_path", "required for task lm");
  if (o.eval_path.empty()) v.fail("eval_path", "required for task lm");
}
template <class V>
void visit(V& v, data::StreamTaskOptions& o) {
  v.field("seq_len", o.seq_len, at_least<int64_t>(16));
  v.field("question_interval", o.question_interval, at_least<int64_t>(2));
  v.field("skip", o.skip, at_least<int64_t>(0));
  v.field("distances", o.distances);
  v.field("kind", o.kind, one_of({"needle", "chain", "variables"}));
  v.field("hops", o.hops, at_least<int64_t>(1));
  v.field("filler", o.filler, one_of({"noise", "essay"}));
  v.field("train_examples", o.train_examples, at_least<int64_t>(1));
  v.field("eval_examples", o.eval_examples, at_least<int64_t>(1));
  if (o.distances.empty()) v.fail("distances", "must not be empty");
  for (int64_t d : o.distances)
    if (d <= 0 || (o.skip == 0 && d >= o.question_interval))
      v.fail("distances", detail::str_cat("each must be in (0, question_interval = ", o.question_interval, "), got ", d));
  if (o.kind == "chain" && o.hops < 2) v.fail("hops", "a chain needs at least 2 hops");
}
template <class V>
void visit(V& v, data::TokenizerOptions& o) {
  const Check<std::string> file = existing_file_or_empty();
  v.field("type", o.type, one_of({"byte", "sentencepiece"}));
  v.field("model_path", o.model_path, file);
  v.field("expected_fingerprint", o.expected_fingerprint);
  if (o.type == "sentencepiece" && o.model_path.empty()) v.fail("model_path", "required for a sentencepiece tokenizer");
}
template <class V>
void visit(V& v, data::TaskOptions& o) {
  v.field("task", o.task, one_of(data::task_registry().names()));
  if (o.task == "mqar") {
    v.section("mqar", [&](V& s) { visit(s, o.mqar); });
    return;  // token ids, no tokenizer
  }
  if (o.task == "qa") {
    v.section("qa", [&](V& s) { visit(s, o.qa); });
  } else if (o.task == "lm") {
    v.section("lm", [&](V& s) { visit(s, o.lm); });
  } else if (o.task == "fact_stream") {
    v.section("stream", [&](V& s) { visit(s, o.stream); });
  } else {
    v.section("synthetic", [&](V& s) { visit(s, o.synthetic); });
  }
  v.section("tokenizer", [&](V& s) { visit(s, o.tokenizer); });
  if (o.task != "lm") v.field("prompt_loss_weight", o.prompt_loss_weight, between(0.0, 1000.0));
}
template <class V>
void visit(V& v, train::TrainOptions& o) {
  v.field("steps", o.steps, at_least<int64_t>(1));
  v.field("batch_size", o.batch_size, at_least<int64_t>(1));
  v.field("lr", o.lr, positive());
  v.field("min_lr_ratio", o.min_lr_ratio, between(0.0, 1.0));
  v.field("warmup_steps", o.warmup_steps, at_least<int64_t>(0));
  v.field("weight_decay", o.weight_decay, between(0.0, 10.0));
  v.field("beta1", o.beta1, between(0.0, 0.9999999));
  v.field("beta2", o.beta2, between(0.0, 0.9999999));
  v.field("eps", o.eps, positive());
  v.field("grad_clip", o.grad_clip, at_least<double>(0.0));
  v.field("bf16", o.bf16);
  v.field("checkpoint_every", o.checkpoint_every, at_least<int64_t>(0));
  v.field("keep_checkpoints", o.keep_checkpoints, at_least<int64_t>(1));
  v.field("threads", o.threads, at_least<int64_t>(0));
  v.field("init_from", o.init_from, Check<std::string>([](const std::string& p) {
            return p.empty() || std::filesystem::exists(p) ? std::string() : "no such checkpoint or run directory: " + p;
          }));
}
template <class V>
void visit(V& v, train::EvalOptions& o) {
  v.field("every", o.every, at_least<int64_t>(0));
  v.field("batch_size", o.batch_size, at_least<int64_t>(1));
  v.field("examples", o.examples, at_least<int64_t>(0));
  v.field("answer_examples", o.answer_examples, at_least<int64_t>(0));
  v.field("early_stop_metric", o.early_stop_metric);
  v.field("early_stop_threshold", o.early_stop_threshold);
  v.field("early_stop_mode", o.early_stop_mode, one_of({"max", "min"}));
  if ((o.early_stop_metric == "loss" || o.early_stop_metric == "perplexity") && o.early_stop_mode == "max")
    v.fail("early_stop_mode", detail::str_cat("early stopping on ", o.early_stop_metric,
                                              " needs early_stop_mode: min (it would stop at the first evaluation)"));
}
template <class V>
void visit(V& v, train::LogOptions& o) {
  v.field("every", o.every, at_least<int64_t>(1));
  v.field("level", o.level, one_of({"trace", "debug", "info", "warn", "error"}));
  v.field("progress", o.progress, one_of({"auto", "bar", "lines"}));
}
template <class V>
void visit(V& v, cache::CacheOptions& o) {
  v.field("policy", o.policy, one_of(cache::cache_registry().names()));
  v.field("budget", o.budget, at_least<int64_t>(0));
  v.field("sink_tokens", o.sink_tokens, at_least<int64_t>(0));
  v.field("window", o.window, at_least<int64_t>(0));
  v.field("positions", o.positions, one_of({"", "original", "cache"}));
  v.field("obs_window", o.obs_window, at_least<int64_t>(1));
  v.field("kernel_size", o.kernel_size, at_least<int64_t>(1));
  v.field("pooling", o.pooling, one_of({"max", "avg"}));
  v.field("pyramid_beta", o.pyramid_beta, positive());
  v.field("retrieval_heads", o.retrieval_heads);
  v.field("razor_ratio", o.razor_ratio, at_least<double>(0.0));
  v.field("raw_slots", o.raw_slots, at_least<int64_t>(1));
  v.field("delta", o.delta, at_least<int64_t>(1));
  v.field("rank", o.rank, at_least<int64_t>(1));
  v.field("summary_slots", o.summary_slots, at_least<int64_t>(0));
  v.field("recompress_depth", o.recompress_depth, at_least<int64_t>(1));
  v.field("method", o.method, one_of({"svd", "mean", "learned"}));
  v.field("compressor_path", o.compressor_path, existing_file_or_empty());
  if (o.policy == "compressive") {
    if (o.delta > o.raw_slots) v.fail("delta", detail::str_cat("must be <= raw_slots (", o.raw_slots, "), got ", o.delta));
    if (o.rank > o.delta) v.fail("rank", detail::str_cat("must be <= delta (", o.delta, "), got ", o.rank));
    if (o.method == "learned" && o.compressor_path.empty()) v.fail("compressor_path", "required for method learned");
  }
  if ((o.policy == "window" || o.policy == "streaming_llm" || o.policy == "h2o" || o.policy == "snapkv" ||
       o.policy == "pyramidkv") && o.budget < 1)
    v.fail("budget", detail::str_cat("policy ", o.policy, " needs a budget >= 1 slot per head"));
}
template <class V>
void visit(V& v, StreamRunOptions& o) {
  v.field("tokens", o.tokens);
  v.field("chunk", o.chunk, at_least<int64_t>(1));
  v.field("report_every", o.report_every);
  v.field("question_interval", o.question_interval, at_least<int64_t>(2));
  v.field("distances", o.distances);
  v.field("filler", o.filler, one_of({"noise", "essay"}));
  v.field("kind", o.kind, one_of({"needle", "chain", "variables"}));
  v.field("hops", o.hops, at_least<int64_t>(1));
  v.field("seed", o.seed);
  v.field("checkpoint_every", o.checkpoint_every);
  if (o.report_every < 1) v.fail("report_every", "must be >= 1");
  if (o.distances.empty()) v.fail("distances", "must not be empty");
  for (int64_t d : o.distances)
    if (d <= 0) v.fail("distances", detail::str_cat("each must be > 0, got ", d));
}
template <class V>
void visit(V& v, ExperimentOptions& o) {
  v.field("name", o.name);
  v.field("seed", o.seed);
  v.field("device", o.device, one_of({"auto", "cpu", "cuda"}));
  v.section("model", [&](V& s) { visit(s, o.model); });
  v.section("data", [&](V& s) { visit(s, o.data); });
  v.section("train", [&](V& s) { visit(s, o.train); });
  v.section("eval", [&](V& s) { visit(s, o.eval); });
  v.section("log", [&](V& s) { visit(s, o.log); });
  v.section("cache", [&](V& s) { visit(s, o.cache); });
  v.section("stream", [&](V& s) { visit(s, o.stream); });
}

ExperimentOptions bind(Doc& doc, const std::vector<std::string>& overrides) {
  for (const auto& o : overrides) apply_override(doc, o);
  ExperimentOptions options;
  Reader r(doc, doc.root, "");
  visit(r, options);
  r.finish();
  return options;
}

}  // namespace

ExperimentOptions load_experiment(const std::string& path, const std::vector<std::string>& overrides) {
  if (!fs::exists(path)) throw ConfigError(path + ": config file not found");
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot read config file");
  std::stringstream ss;
  ss << in.rdbuf();
  Doc doc;
  doc.origins[""] = path;
  std::vector<std::string> stack{fs::weakly_canonical(path).string()};
  load_into(doc, parse_text(ss.str(), path), path, fs::path(path).parent_path(), stack);
  return bind(doc, overrides);
}

ExperimentOptions parse_experiment(const std::string& text, const std::string& name,
                                   const std::vector<std::string>& overrides) {
  Doc doc;
  doc.origins[""] = name;
  std::vector<std::string> stack;
  load_into(doc, parse_text(text, name), name, fs::current_path(), stack);
  return bind(doc, overrides);
}

std::string to_yaml(const ExperimentOptions& options) {
  ExperimentOptions copy = options;
  Writer w;
  visit(w, copy);
  YAML::Emitter out;
  out << w.node;
  return std::string(out.c_str()) + "\n";
}

}  // namespace dysra::config
