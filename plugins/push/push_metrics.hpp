// Counters of the push pipeline, shared by the plugin's hooks, the collector
// and the pushers; reported as the plugin's stats (on_stats).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "latency.hpp"

namespace hearth::push {

// Why the collector let a request go without sending it.
enum class ShedReason { kBufferFull, kExpired, kShutdown, kCount };
inline constexpr std::array<const char*, 3> kShedNames = {"shed_buffer_full", "shed_expired",
                                                          "shed_shutdown"};

// Why a send ended without delivery, after any retries.
enum class FailReason {
  kInvalidToken,  // the provider says the device is gone; the token is removed
  kRejected,      // 4xx: the provider will never take this request
  kAuth,          // 401/403: check auth_token / auth_token_file
  kServerError,   // 5xx on every attempt
  kRateLimited,   // 429 on every attempt
  kTimeout,       // no answer within timeout_ms on every attempt
  kConnection,    // could not connect or the connection broke, on every attempt
  kCount
};
inline constexpr std::array<const char*, 7> kFailNames = {
    "failed_invalid_token", "failed_rejected", "failed_auth",      "failed_server_error",
    "failed_rate_limited",  "failed_timeout",  "failed_connection"};

struct PushMetrics {
  std::atomic<std::uint64_t> received{0};   // requests (one per device) offered to the collector
  std::atomic<std::uint64_t> sent{0};       // delivered: the provider answered 2xx
  std::atomic<std::uint64_t> retried{0};    // sends that were attempts after the first
  std::atomic<std::uint64_t> no_device{0};  // targets with no registered device
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(ShedReason::kCount)> shed{};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(FailReason::kCount)> failed{};
  LatencyHistogram latency;  // received -> 2xx, per delivered request

  void count_shed(ShedReason r, std::uint64_t n = 1) {
    shed[static_cast<std::size_t>(r)].fetch_add(n, std::memory_order_relaxed);
  }
  void count_failed(FailReason r) {
    failed[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t shed_total() const {
    std::uint64_t n = 0;
    for (const auto& s : shed) n += s.load(std::memory_order_relaxed);
    return n;
  }
};

}  // namespace hearth::push
