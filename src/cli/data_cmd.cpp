// `dysra data build` (real corpora → FlashRAG JSONL) and `dysra data tokenizer` (train SentencePiece).
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "dysra/core/error.h"
#include "dysra/data/corpora.h"
#include "dysra/data/tokenizer.h"

namespace dysra::cli {

void add_data_commands(CLI::App& app, std::vector<Command>& out) {
  auto* data = app.add_subcommand("data", "build datasets and tokenizers");
  data->require_subcommand(1);

  auto build_opts = std::make_shared<data::CorporaOptions>();
  auto only = std::make_shared<std::string>();
  auto* build = data->add_subcommand("build", "decode the Debian corpora (scripts/fetch_corpora.sh) into QA tasks and LM corpora");
  build->add_option("--pkgroot", build_opts->pkgroot, "where fetch_corpora.sh unpacked the packages")->capture_default_str();
  build->add_option("--out", build_opts->out_dir, "output folder")->capture_default_str();
  build->add_option("--seed", build_opts->seed, "seed of every sampled split and haystack")->capture_default_str();
  build->add_option("--max-questions", build_opts->max_questions_per_task, "questions per task (0 = all)")->capture_default_str();
  build->add_option("--wordnet-haystack", build_opts->wordnet_haystack_size, "entries per WordNet haystack")->capture_default_str();
  build->add_option("--only", *only, "comma-separated subset of wordnet,austen,kjv,perlfaq,gcide");
  out.push_back({build, [build_opts, only] {
                   if (!only->empty()) {
                     std::stringstream ss(*only);
                     for (std::string s; std::getline(ss, s, ',');) {
                       if (s != "wordnet" && s != "austen" && s != "kjv" && s != "perlfaq" && s != "gcide")
                         throw ConfigError("--only: unknown source \"" + s + "\" (known: wordnet, austen, kjv, perlfaq, gcide)");
                       build_opts->only.push_back(s);
                     }
                   }
                   auto counts = data::build_corpora(*build_opts);
                   for (const auto& kv : counts) std::cout << kv.first << "\t" << kv.second << "\n";
                   std::cout << "written to " << build_opts->out_dir << "\n";
                   return 0;
                 }});

  auto tok = std::make_shared<data::SentencePieceTrainOptions>();
  auto* tcmd = data->add_subcommand("tokenizer", "train a SentencePiece tokenizer on text files");
  tcmd->add_option("--input", tok->input_files, "plain-text training files")->required()->check(CLI::ExistingFile);
  tcmd->add_option("--model-prefix", tok->model_prefix, "writes PREFIX.model and PREFIX.vocab")->required();
  tcmd->add_option("--vocab-size", tok->vocab_size, "vocabulary size")->capture_default_str()->check(CLI::Range(16, 1 << 20));
  tcmd->add_option("--type", tok->model_type, "bpe | unigram")->capture_default_str()->check(CLI::IsMember({"bpe", "unigram"}));
  tcmd->add_option("--threads", tok->num_threads, "training threads")->capture_default_str()->check(CLI::Range(1, 256));
  out.push_back({tcmd, [tok] {
                   auto path = data::train_sentencepiece(*tok);
                   data::TokenizerOptions to;
                   to.type = "sentencepiece";
                   to.model_path = path;
                   auto t = data::make_tokenizer(to);
                   std::cout << "wrote " << path << " (vocab " << t->vocab_size() << ", fingerprint "
                             << t->identity().fingerprint << ")\n";
                   return 0;
                 }});
}

}  // namespace dysra::cli
