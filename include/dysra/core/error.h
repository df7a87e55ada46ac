// dysra/core/error.h — the exception types every dysra module throws, and the check macros.
//
// Errors are values a researcher reads: they name the file, line, key, argument or tensor involved.
// `ConfigError` and `DataError` are user input problems (the CLI exits with code 2); `Error` is the base.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace dysra {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bad configuration: YAML files, `--set` overrides, CLI flags. The message starts with "file:line: key:".
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// Bad data files (JSONL, corpora, tokenizer models). The message names the file and line.
class DataError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <class... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace dysra

/// Throws dysra::Error with the streamed arguments when `cond` is false.
#define DYSRA_CHECK(cond, ...) \
  do {                         \
    if (!(cond)) throw ::dysra::Error(::dysra::detail::str_cat(__VA_ARGS__)); \
  } while (0)

/// Same, with a typed exception.
#define DYSRA_CHECK_T(type, cond, ...) \
  do {                                 \
    if (!(cond)) throw type(::dysra::detail::str_cat(__VA_ARGS__)); \
  } while (0)
