// Exponential backoff with jitter, so that a burst of retries spreads out
// instead of arriving together again.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace hearth {

class JitteredBackoff {
 public:
  JitteredBackoff(std::chrono::milliseconds base, std::chrono::milliseconds cap, std::uint64_t seed)
      : base_(base), cap_(cap), rng_(seed) {}

  // Delay before retry number `attempt` (0-based): uniform in [d/2, d*3/2)
  // where d = min(cap, base * 2^attempt).
  std::chrono::milliseconds delay(unsigned attempt) {
    const auto shift = std::min(attempt, 20u);
    const auto d = std::min<std::int64_t>(cap_.count(), base_.count() << shift);
    std::uniform_int_distribution<std::int64_t> pick(d / 2, d + d / 2);
    return std::chrono::milliseconds(std::max<std::int64_t>(1, pick(rng_)));
  }

 private:
  std::chrono::milliseconds base_;
  std::chrono::milliseconds cap_;
  std::mt19937_64 rng_;
};

}  // namespace hearth
