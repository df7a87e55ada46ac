#include "bench/gpu_clock.h"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <numeric>
#include <thread>

namespace dysra::bench {

ClockStats summarize_clock_samples(const std::vector<unsigned>& mhz, const std::vector<uint64_t>& reasons) {
  ClockStats s;
  if (mhz.empty()) return s;
  s.valid = true;
  s.samples = int(mhz.size());
  s.min_mhz = *std::min_element(mhz.begin(), mhz.end());
  s.max_mhz = *std::max_element(mhz.begin(), mhz.end());
  s.mean_mhz = std::accumulate(mhz.begin(), mhz.end(), 0.0) / double(mhz.size());
  for (const uint64_t r : reasons) s.reasons |= r;
  return s;
}

std::string describe_clock_reasons(uint64_t reasons) {
  // NVML's clock-event reason bits (nvmlClocksEventReason*; 0x1 idle and 0x2 applications clocks left out)
  static const std::pair<uint64_t, const char*> kNames[] = {
      {0x4, "power cap"},          {0x20 | 0x40, "thermal"},   {0x8, "hardware slowdown"},
      {0x80, "power brake"},       {0x10, "sync boost"},       {0x100, "display clock"}};
  std::string out;
  for (const auto& [bits, name] : kNames) {
    if (!(reasons & bits)) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

std::string format_clock(const ClockStats& s) {
  if (!s.valid) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f MHz", s.mean_mhz);  // (one clock throughout: the mean is that clock)
  std::string detail = s.min_mhz == s.max_mhz ? "" : std::to_string(s.min_mhz) + "-" + std::to_string(s.max_mhz);
  const std::string why = describe_clock_reasons(s.reasons);
  if (!why.empty()) detail += (detail.empty() ? "" : ", ") + why;
  return detail.empty() ? std::string(buf) : std::string(buf) + " (" + detail + ")";
}

// ------------------------------------------------------------------------------------------------ monitor
struct ClockMonitor::Impl {
  // NVML's C entry points (nvmlReturn_t is an int enum, nvmlDevice_t an opaque pointer; 0 = NVML_SUCCESS)
  using InitFn = int (*)();
  using ShutdownFn = int (*)();
  using HandleFn = int (*)(const char*, void**);
  using ClockFn = int (*)(void*, int, unsigned*);
  using ReasonsFn = int (*)(void*, unsigned long long*);
  static constexpr int kClockSm = 1;  // NVML_CLOCK_SM

  void* lib = nullptr;
  bool initialised = false;
  void* device = nullptr;
  ClockFn clock = nullptr;
  ReasonsFn reasons = nullptr;
  ShutdownFn shutdown = nullptr;
  std::string why;
  int period_ms = 10;

  std::thread sampler;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::vector<unsigned> mhz;
  std::vector<uint64_t> bits;

  void sample() {  // (called with mu held)
    unsigned c = 0;
    if (clock(device, kClockSm, &c) != 0) return;
    unsigned long long r = 0;
    if (reasons && reasons(device, &r) != 0) r = 0;
    mhz.push_back(c);
    bits.push_back(r);
  }
  void join() {
    if (!sampler.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    cv.notify_all();
    sampler.join();
  }
};

ClockMonitor::ClockMonitor(const std::string& pci_bus_id, const std::string& library, int period_ms)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.period_ms = std::max(1, period_ms);
  m.lib = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!m.lib) {
    const char* e = dlerror();
    m.why = "cannot load " + library + (e ? std::string(": ") + e : std::string());
    return;
  }
  auto init = reinterpret_cast<Impl::InitFn>(dlsym(m.lib, "nvmlInit_v2"));
  auto handle = reinterpret_cast<Impl::HandleFn>(dlsym(m.lib, "nvmlDeviceGetHandleByPciBusId_v2"));
  m.clock = reinterpret_cast<Impl::ClockFn>(dlsym(m.lib, "nvmlDeviceGetClockInfo"));
  m.shutdown = reinterpret_cast<Impl::ShutdownFn>(dlsym(m.lib, "nvmlShutdown"));
  m.reasons = reinterpret_cast<Impl::ReasonsFn>(dlsym(m.lib, "nvmlDeviceGetCurrentClocksEventReasons"));
  if (!m.reasons)  // (the name before NVML 12.2)
    m.reasons = reinterpret_cast<Impl::ReasonsFn>(dlsym(m.lib, "nvmlDeviceGetCurrentClocksThrottleReasons"));
  if (!init || !handle || !m.clock || !m.shutdown) {
    m.why = library + " lacks nvmlInit_v2 / nvmlDeviceGetHandleByPciBusId_v2 / nvmlDeviceGetClockInfo / nvmlShutdown";
    return;
  }
  if (const int rc = init(); rc != 0) {
    m.why = "nvmlInit_v2 failed (NVML error " + std::to_string(rc) + ")";
    return;
  }
  m.initialised = true;
  if (const int rc = handle(pci_bus_id.c_str(), &m.device); rc != 0) {
    m.why = "NVML has no device at PCI bus id '" + pci_bus_id + "' (NVML error " + std::to_string(rc) + ")";
    m.device = nullptr;
    return;
  }
  unsigned probe = 0;
  if (const int rc = m.clock(m.device, Impl::kClockSm, &probe); rc != 0) {
    m.why = "NVML cannot read the SM clock of '" + pci_bus_id + "' (NVML error " + std::to_string(rc) + ")";
    m.device = nullptr;
  }
}

ClockMonitor::~ClockMonitor() {
  impl_->join();
  if (impl_->initialised) impl_->shutdown();
  if (impl_->lib) dlclose(impl_->lib);
}

bool ClockMonitor::available() const { return impl_->device != nullptr; }

const std::string& ClockMonitor::unavailable_reason() const { return impl_->why; }

void ClockMonitor::start() {
  Impl& m = *impl_;
  if (!available()) return;
  m.join();
  std::lock_guard<std::mutex> lock(m.mu);
  m.mhz.clear();
  m.bits.clear();
  m.stopping = false;
  m.sample();
  m.sampler = std::thread([&m] {
    std::unique_lock<std::mutex> lock(m.mu);
    while (!m.cv.wait_for(lock, std::chrono::milliseconds(m.period_ms), [&m] { return m.stopping; })) m.sample();
  });
}

ClockStats ClockMonitor::stop() {
  Impl& m = *impl_;
  if (!available() || !m.sampler.joinable()) return {};
  m.join();
  std::lock_guard<std::mutex> lock(m.mu);
  m.sample();
  return summarize_clock_samples(m.mhz, m.bits);
}

}  // namespace dysra::bench
