#include "dysra/train/checkpoint.h"

#include <ATen/Context.h>
#include <fcntl.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>

#include "dysra/core/error.h"

namespace fs = std::filesystem;

namespace dysra::train {
namespace {

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  if (!fs::is_directory(dir)) return out;
  static const std::regex re(R"(step-(\d+)\.pt)");
  for (const auto& e : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, m, re)) out.emplace_back(std::stoll(m[1]), e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

torch::Tensor string_tensor(const std::string& s) {
  auto t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
  return t;
}

std::string tensor_string(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU).contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<size_t>(c.numel()));
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    DYSRA_CHECK(out.good(), "cannot write ", tmp);
    out << content;
    out.flush();
    DYSRA_CHECK(out.good(), "write failed: ", tmp);
  }
  fsync_path(tmp, false);
  fs::rename(tmp, path);
  fsync_path(fs::path(path).parent_path().empty() ? "." : fs::path(path).parent_path().string(), true);
}

std::string save_checkpoint(const std::string& dir, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                            const TrainerState& st, int64_t keep) {
  fs::create_directories(dir);
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive, optim_archive;
  model.save(model_archive);
  optimizer.save(optim_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optim_archive);
  archive.write("state.step", torch::tensor(st.step, torch::kInt64));
  archive.write("state.data_cursor", torch::tensor(st.data_cursor, torch::kInt64));
  archive.write("state.best_metric", torch::tensor(st.best_metric, torch::kFloat64));
  archive.write("state.has_best", torch::tensor(static_cast<int64_t>(st.has_best), torch::kInt64));
  archive.write("state.elapsed_s", torch::tensor(st.elapsed_s, torch::kFloat64));
  archive.write("state.config_yaml", string_tensor(st.config_yaml));
  archive.write("rng.cpu", at::detail::getDefaultCPUGenerator().get_state());
  if (torch::cuda::is_available()) {
    for (int i = 0; i < static_cast<int>(torch::cuda::device_count()); ++i)
      archive.write("rng.cuda" + std::to_string(i),
                    at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i))).get_state());
  }
  char name[64];
  std::snprintf(name, sizeof name, "step-%08lld.pt", static_cast<long long>(st.step));
  const std::string path = (fs::path(dir) / name).string(), tmp = path + ".tmp";
  archive.save_to(tmp);
  fsync_path(tmp, false);
  fs::rename(tmp, path);
  fsync_path(dir, true);
  write_file_atomic((fs::path(dir) / "latest").string(), std::string(name) + "\n");
  auto all = list_checkpoints(dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) fs::remove(all[i].second);
  return path;
}

std::optional<std::string> latest_checkpoint(const std::string& dir) {
  const fs::path latest = fs::path(dir) / "latest";
  if (fs::exists(latest)) {
    std::ifstream in(latest);
    std::string name;
    std::getline(in, name);
    if (!name.empty() && fs::exists(fs::path(dir) / name)) return (fs::path(dir) / name).string();
  }
  auto all = list_checkpoints(dir);
  if (all.empty()) return std::nullopt;
  return all.back().second.string();
}

std::string resolve_checkpoint(const std::string& path, const std::string& what) {
  const fs::path p(path);
  if (fs::is_directory(p)) {
    if (auto c = latest_checkpoint((p / "checkpoints").string())) return *c;
    if (auto c = latest_checkpoint(p.string())) return *c;
    throw ConfigError(what + ": " + path + ": no checkpoint in it (nor in its checkpoints/ folder)");
  }
  if (p.filename() == "latest" && fs::is_regular_file(p)) {
    if (auto c = latest_checkpoint(p.parent_path().string())) return *c;
    throw ConfigError(what + ": " + path + ": names no existing checkpoint");
  }
  if (!fs::is_regular_file(p)) throw ConfigError(what + ": " + path + ": no such checkpoint file or run directory");
  return path;
}

namespace {
/// Where a checkpoint's tensors are loaded: the model's device (a checkpoint written on a GPU loads on a CPU-only
/// machine and the other way round).
torch::Device device_of(const torch::nn::Module& model) {
  const auto params = model.parameters();
  return params.empty() ? torch::Device(torch::kCPU) : params.front().device();
}
}  // namespace

TrainerState load_checkpoint(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer& optimizer) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, device_of(model));
  } catch (const c10::Error& e) {
    throw Error(path + ": cannot read checkpoint: " + e.what_without_backtrace());
  }
  torch::serialize::InputArchive model_archive, optim_archive;
  archive.read("model", model_archive);
  archive.read("optimizer", optim_archive);
  try {
    model.load(model_archive);
  } catch (const c10::Error& e) {
    throw Error(path + ": checkpoint does not match the model (changed model config?): " + e.what_without_backtrace());
  }
  optimizer.load(optim_archive);
  TrainerState st;
  auto get = [&](const char* key) {  // a fresh tensor per key: read() into a used one would resize its storage
    torch::Tensor t;
    archive.read(key, t);
    return t;
  };
  st.step = get("state.step").item<int64_t>();
  st.data_cursor = get("state.data_cursor").item<int64_t>();
  st.best_metric = get("state.best_metric").item<double>();
  st.has_best = get("state.has_best").item<int64_t>() != 0;
  st.elapsed_s = get("state.elapsed_s").item<double>();
  st.config_yaml = tensor_string(get("state.config_yaml"));
  at::Generator cpu_gen = at::detail::getDefaultCPUGenerator();
  cpu_gen.set_state(get("rng.cpu"));
  if (torch::cuda::is_available()) {
    for (int i = 0; i < static_cast<int>(torch::cuda::device_count()); ++i) {
      torch::Tensor s;
      if (archive.try_read("rng.cuda" + std::to_string(i), s)) {
        at::Generator g = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i)));
        g.set_state(s);
      }
    }
  }
  return st;
}

}  // namespace dysra::train

namespace dysra::train {
void load_model_weights(const std::string& path, torch::nn::Module& model) {
  torch::serialize::InputArchive archive, model_archive;
  try {
    archive.load_from(path, device_of(model));
    archive.read("model", model_archive);
    model.load(model_archive);
  } catch (const c10::Error& e) {
    throw Error(path + ": cannot load model weights: " + e.what_without_backtrace());
  }
}
}  // namespace dysra::train
