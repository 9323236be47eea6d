// A counting semaphore that never blocks: acquire fails at once when the
// limit is reached (Discord's Semaphore: fail fast, never queue).
#pragma once

#include <atomic>
#include <cstdint>

namespace hearth {

class FailFastSemaphore {
 public:
  explicit FailFastSemaphore(std::uint32_t limit) : limit_(limit) {}

  // Thread-safe. True when a permit was taken; the caller must release() it.
  bool try_acquire() {
    std::uint32_t now = count_.load(std::memory_order_relaxed);
    while (now < limit_) {
      if (count_.compare_exchange_weak(now, now + 1, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }

  void release() { count_.fetch_sub(1, std::memory_order_acq_rel); }

  std::uint32_t in_use() const { return count_.load(std::memory_order_relaxed); }
  std::uint32_t limit() const { return limit_; }

 private:
  const std::uint32_t limit_;
  std::atomic<std::uint32_t> count_{0};
};

}  // namespace hearth
