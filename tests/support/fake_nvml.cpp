// A stand-in for libnvidia-ml.so.1 in the CPU tests of the benchmark's clock monitor (tests/test_bench_clock.cpp):
// one device, at PCI bus id "0000:19:00.0", whose SM clock reads 1980 MHz for the first two reads and 1620 MHz after,
// with the software power cap (reason bit 0x4) given from the third read on. C entry points as NVML declares them
// (nvmlReturn_t = int, 0 = success; nvmlDevice_t = opaque pointer).
#include <atomic>
#include <cstring>

namespace {
std::atomic<int> reads{0};
int device_tag = 0;
}  // namespace

extern "C" {
int nvmlInit_v2() { return 0; }
int nvmlShutdown() { return 0; }
int nvmlDeviceGetHandleByPciBusId_v2(const char* bus_id, void** device) {
  if (std::strcmp(bus_id, "0000:19:00.0") != 0) return 6;  // NVML_ERROR_NOT_FOUND
  *device = &device_tag;
  return 0;
}
int nvmlDeviceGetClockInfo(void* device, int type, unsigned* mhz) {
  if (device != &device_tag || type != 1) return 2;  // NVML_ERROR_INVALID_ARGUMENT (1 = NVML_CLOCK_SM)
  *mhz = reads++ < 2 ? 1980u : 1620u;
  return 0;
}
int nvmlDeviceGetCurrentClocksEventReasons(void* device, unsigned long long* reasons) {
  *reasons = reads.load() > 2 ? 0x4ull : 0ull;
  return 0;
}
}
