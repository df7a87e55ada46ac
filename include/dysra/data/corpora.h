// dysra/data/corpora.h — real corpora from Debian packages: decoders, and the builder behind `dysra data build`.
//
// `scripts/fetch_corpora.sh` downloads and unpacks (never installs) wordnet-base, r-cran-janeaustenr,
// bible-kjv-text (+ bible-kjv, whose `bible` binary dumps the text), perl-doc and dict-gcide into
// .cache/pkgroot. `build_corpora()` decodes them and writes FlashRAG JSONL under `out_dir`:
//
//   corpora/<name>.jsonl            {id, contents}: wordnet, kjv, austen, austen_needle, perl_pod
//   <task>/{train,dev,test}.jsonl   {id, question, golden_answers, metadata}; metadata.gold_doc_ids names the
//                                   documents that hold the answer, metadata.corpus the corpus file,
//                                   metadata.haystack (or haystack_id) the documents a long-context reader gets
//   wordnet/haystacks.jsonl         {id, doc_ids}: WordNet haystacks of N entries
//   lm/<name>/{train,validation,test}.{jsonl,txt}   LM corpora: gcide, austen, kjv
//   manifest.json                   options, source packages, and the counts returned below
//
// Tasks: wordnet_define, wordnet_reverse, wordnet_cloze, wordnet_hypernym (2-hop through "kind of: [id]"),
// austen_locate, austen_first_mention, austen_needle, kjv_lookup, kjv_reverse, perlfaq (all in test.jsonl).
// Everything is a deterministic function of the packages and `CorporaOptions` (seeded selection and splits).
// Sources, licences, counts and sizes: data/README.md.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dysra::data {

struct CorporaOptions {
  std::string pkgroot = ".cache/pkgroot";  ///< where scripts/fetch_corpora.sh unpacked the packages
  std::string out_dir = "data/generated";
  uint64_t seed = 1234;
  size_t max_questions_per_task = 20000;  ///< per task before splitting; 0 = every eligible item
  double dev_fraction = 0.1;              ///< QA splits (perlfaq: all in test)
  double test_fraction = 0.1;
  double lm_validation_fraction = 0.02;   ///< LM splits, per document (GCIDE entry, Austen/KJV chapter)
  double lm_test_fraction = 0.02;
  size_t wordnet_haystack_size = 2000;    ///< entries per WordNet haystack
  size_t austen_needles_per_novel = 50;
  size_t austen_locate_per_novel = 400;
  /// Sources to build (wordnet, austen, kjv, perlfaq, gcide); empty = all.
  std::vector<std::string> only;
};

/// Builds every requested source; returns counts keyed "<task>/<split>", "corpus/<name>", "lm/<name>/<split>".
/// Throws DataError naming the missing file when a package is not unpacked (run scripts/fetch_corpora.sh).
std::map<std::string, size_t> build_corpora(const CorporaOptions& opt);

// ---- decoders (public for tests and for loaders) -----------------------------------------------------

/// One synset of a WordNet 3.0 data.<pos> file (wndb(5WN)).
struct WordNetSynset {
  std::string id;        ///< "wn-n-02084071" (file pos n/v/a/r + 8-digit offset)
  uint32_t offset = 0;
  char pos = 'n';        ///< n, v, a, s (satellite adjective), r
  int lexfile = 0;
  std::vector<std::string> lemmas;  ///< underscores → spaces, adjective markers "(a)" removed
  std::vector<std::pair<std::string, std::string>> pointers;  ///< (symbol, target synset id)
  std::string gloss;               ///< the whole gloss
  std::string definition;          ///< gloss clauses that are not quoted examples, joined by "; "
  std::vector<std::string> examples;  ///< the quoted examples, quotes removed
  std::vector<std::string> hypernyms() const;  ///< targets of "@" and "@i"
};
/// Reads one data.{noun,verb,adj,adv} file (licence header lines skipped). DataError with file:line.
std::vector<WordNetSynset> read_wordnet_data(const std::string& path);

/// A dictd database entry.
struct DictEntry {
  std::string headword;
  std::string body;
  uint64_t offset = 0, length = 0;
};
/// dictd base-64 number ("A–Z a–z 0–9 + /", big-endian digits).
uint64_t dictd_b64(const std::string& s);
/// Reads a dictd index + .dict.dz (gzip/dictzip) or plain .dict; one entry per distinct (offset, length),
/// headword of its first index line; "00-database-*" entries skipped.
std::vector<DictEntry> read_dictd(const std::string& index_path, const std::string& dict_path);

/// One KJV verse from the `bible -f` dump ("Ge1:1 In the beginning …").
struct Verse {
  std::string key;   ///< "Ge1:1"
  std::string book;  ///< "Ge"
  int chapter = 0, verse = 0;
  std::string text;
};
std::vector<Verse> read_kjv(const std::string& path);

/// A POD section: text from one =head1/=head2 line to the next.
struct PodSection {
  std::string heading;  ///< heading text, POD formatting codes (C<…>, L<…>, …) stripped
  int level = 1;
  std::string body;     ///< raw POD body
};
std::vector<PodSection> read_pod_sections(const std::string& path);
/// Strips POD formatting codes: "C<foo>" → "foo", "L<text|perlfunc>" → "text", "E<lt>" → "<".
std::string strip_pod_codes(const std::string& s);

/// Decodes an R lazy-load database (`<name>.rdx` gzip index + `<name>.rdb` zlib records, R serialisation
/// version 2/3, XDR): every object that is a character vector, by name (NA elements become "").
std::map<std::string, std::vector<std::string>> read_r_lazyload_strings(const std::string& rdx_path,
                                                                        const std::string& rdb_path);
/// Decompresses a gzip (or zlib) file or buffer.
std::string gunzip(const std::string& data, const std::string& what);

/// A novel split into chapters (janeaustenr's one-line-per-element text).
struct NovelChapter {
  std::string id;     ///< "austen/emma/v1c3" or "austen/prideprejudice/c12"
  std::string label;  ///< "Volume I, Chapter 3" or "Chapter 12"
  std::string heading;  ///< the heading line as printed
  std::vector<std::string> paragraphs;  ///< whitespace-normalised paragraphs, heading excluded
};
struct Novel {
  std::string name;   ///< "emma"
  std::string title;  ///< "Emma"
  std::vector<NovelChapter> chapters;
};
/// Chapters start at "CHAPTER <n>"/"Chapter <n>" lines (roman or arabic); "VOLUME <n>" lines set the volume
/// (chapters restart per volume). Text before the first chapter is dropped. DataError when no chapter found.
Novel parse_novel(const std::string& name, const std::vector<std::string>& lines);

}  // namespace dysra::data
