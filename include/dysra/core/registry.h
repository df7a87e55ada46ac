// dysra/core/registry.h — name → factory maps. A new layer, task, cache policy or retriever is one
// file pair plus one registration; an unknown name is an error that lists the known ones.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "dysra/core/error.h"

namespace dysra {

template <class Factory>
class Registry {
 public:
  explicit Registry(std::string what) : what_(std::move(what)) {}

  void add(const std::string& name, Factory factory) { entries_[name] = std::move(factory); }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }

  const Factory& get(const std::string& name) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) throw Error("unknown " + what_ + " '" + name + "' (known: " + known() + ")");
    return it->second;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& kv : entries_) out.push_back(kv.first);
    return out;
  }
  std::string known() const {
    std::string s;
    for (const auto& kv : entries_) s += (s.empty() ? "" : ", ") + kv.first;
    return s;
  }

 private:
  std::string what_;
  std::map<std::string, Factory> entries_;
};

}  // namespace dysra
