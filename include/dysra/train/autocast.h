// dysra/train/autocast.h — RAII bf16 autocast on CUDA for a forward (and backward) pass; a no-op when disabled.
#pragma once
#include <ATen/autocast_mode.h>

namespace dysra::train {

class AutocastGuard {
 public:
  explicit AutocastGuard(bool enable) : on_(enable) {
    if (on_) {
      at::autocast::set_autocast_enabled(at::kCUDA, true);
      at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
      at::autocast::increment_nesting();
    }
  }
  ~AutocastGuard() {
    if (on_) {
      if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
      at::autocast::set_autocast_enabled(at::kCUDA, false);
    }
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool on_;
};

}  // namespace dysra::train
