// dysra/bench/gpu_clock.h (src/bench) — the SM clock a benchmark row ran at, read through NVML.
//
// Why every row reports it: under sustained tensor-core load an H100/H200 reaches its software power cap within a
// fraction of a second and lowers the SM clock (on an H200: 1980 → ~1620 MHz), and a compute-bound kernel's time
// follows the clock. Two rows of one run can therefore sit at different clocks: the second of two heavy rows runs
// slower whatever it is (bench/RESULTS.md, session 12). A comparison is fair only between rows at the same clock.
// NVML (libnvidia-ml.so.1, part of the driver) is loaded at run time: no link dependency; without it the monitor
// says why and the rows carry no clock. Torch- and CUDA-free.
// Limit: the driver refreshes the clock NVML reports less often than it changes it, so a row of a few tens of ms can
// show the clock from before a drop (on an H200, a gathered-attention row whose runs spread 2.74-3.07 ms read
// 1980 MHz throughout); a spread between a row's min and median is the other sign. Rest the card between rows
// (`dysra bench kernels --cooldown-ms`) or interleave the sides to compare them at one clock.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dysra::bench {

/// The SM clock over one row's samples.
struct ClockStats {
  bool valid = false;  ///< at least one sample
  int samples = 0;
  unsigned min_mhz = 0, max_mhz = 0;
  double mean_mhz = 0;
  uint64_t reasons = 0;  ///< NVML clock-event ("throttle") reason bits seen in any sample, OR-ed
};

/// The stats of raw samples: clocks in MHz and each sample's reason bits (the two vectors are equally long).
ClockStats summarize_clock_samples(const std::vector<unsigned>& mhz, const std::vector<uint64_t>& reasons);

/// The reasons among `reasons` that lower the clock under load, comma separated ("power cap", "thermal",
/// "hardware slowdown", "power brake", "sync boost", "display clock"); "" when none. The idle bit and the
/// applications-clocks setting are left out: they are not slowdowns.
std::string describe_clock_reasons(uint64_t reasons);

/// One row's clock for the table: "1665 MHz (1620-1980, power cap)"; "" when not valid.
std::string format_clock(const ClockStats& s);

/// Samples the SM clock (and the reasons it is held down) of one GPU on a background thread between start() and
/// stop(): one sample at each end and one every `period_ms` in between.
class ClockMonitor {
 public:
  /// pci_bus_id: the device's bus id as cudaDeviceGetPCIBusId writes it ("0000:19:00.0"); library: the NVML
  /// shared object to load.
  explicit ClockMonitor(const std::string& pci_bus_id, const std::string& library = "libnvidia-ml.so.1",
                        int period_ms = 10);
  ~ClockMonitor();
  ClockMonitor(const ClockMonitor&) = delete;
  ClockMonitor& operator=(const ClockMonitor&) = delete;

  bool available() const;
  /// Why the clock cannot be read ("" when available()).
  const std::string& unavailable_reason() const;
  void start();       ///< (no-op when not available; a second start() restarts)
  ClockStats stop();  ///< the samples since start(); not valid when not available or not started

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dysra::bench
