#include "latency.hpp"

#include <bit>
#include <vector>

namespace hearth::push {

std::size_t LatencyHistogram::bucket_of(std::uint64_t v) {
  if (v < 16) return static_cast<std::size_t>(v);
  const int msb = 63 - std::countl_zero(v);
  const std::size_t step = (v >> (msb - 3)) & 7;
  const std::size_t b = 16 + static_cast<std::size_t>(msb - 4) * 8 + step;
  return b < kBuckets ? b : kBuckets - 1;
}

std::uint64_t LatencyHistogram::upper_bound_of(std::size_t b) {
  if (b < 16) return b;
  const int msb = static_cast<int>((b - 16) / 8) + 4;
  const std::uint64_t step = (b - 16) % 8;
  return ((8 + step + 1) << (msb - 3)) - 1;
}

void LatencyHistogram::record(std::uint64_t micros) {
  buckets_[bucket_of(micros)].fetch_add(1, std::memory_order_relaxed);
  std::uint64_t seen = max_.load(std::memory_order_relaxed);
  while (micros > seen && !max_.compare_exchange_weak(seen, micros, std::memory_order_relaxed)) {
  }
}

LatencyHistogram::Percentiles LatencyHistogram::take_window() {
  std::vector<std::uint64_t> counts(kBuckets);
  Percentiles p;
  for (std::size_t b = 0; b < kBuckets; ++b) {
    counts[b] = buckets_[b].exchange(0, std::memory_order_relaxed);
    p.count += counts[b];
  }
  p.max_us = max_.exchange(0, std::memory_order_relaxed);
  if (p.count == 0) return p;
  auto at = [&](double q) {
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(p.count - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < kBuckets; ++b) {
      seen += counts[b];
      if (seen >= rank) return std::min(upper_bound_of(b), p.max_us);
    }
    return p.max_us;
  };
  p.p50_us = at(0.50);
  p.p90_us = at(0.90);
  p.p99_us = at(0.99);
  return p;
}

}  // namespace hearth::push
