// End-to-end push latency: a lock-free log-linear histogram (8 steps per
// power of two, so a percentile is within 12.5% of the true value).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace hearth::push {

class LatencyHistogram {
 public:
  struct Percentiles {
    std::uint64_t count = 0;
    std::uint64_t p50_us = 0, p90_us = 0, p99_us = 0, max_us = 0;
  };

  // Any thread.
  void record(std::uint64_t micros);
  // Percentiles of what was recorded since the previous call; starts a new window.
  Percentiles take_window();

 private:
  static constexpr std::size_t kBuckets = 16 + 44 * 8;
  static std::size_t bucket_of(std::uint64_t micros);
  static std::uint64_t upper_bound_of(std::size_t bucket);

  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
  std::atomic<std::uint64_t> max_{0};
};

}  // namespace hearth::push
