// Bounds the warnings one peer can make a process log: at most `burst` lines
// per key per second, then one summary ("N more ... in the last second") when
// the second is over. Keys are peers (a routing id, a node name, an address).
// Thread-safe: the shards of a node share one.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hearth {

class LogLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // `who` prefixes summaries ("broker", "node 'a'"). At most `max_keys`
  // peers are tracked one by one; beyond that they share one budget.
  explicit LogLimiter(std::string who, std::uint32_t burst = 10, std::size_t max_keys = 4096);

  // Logs the warning when `key` is within its budget; otherwise counts it.
  template <class... Args>
  void warn(std::string_view key, spdlog::format_string_t<Args...> format, Args&&... args) {
    if (admit(key, Clock::now())) spdlog::warn(format, std::forward<Args>(args)...);
  }

  // True when a line for `key` may be logged now (it is then counted).
  bool admit(std::string_view key, Clock::time_point now);
  // Logs the summaries of seconds that are over; call about once a second.
  void flush(Clock::time_point now);
  // Lines not logged so far, over all keys.
  std::uint64_t suppressed() const;

 private:
  struct Window {
    Clock::time_point start;
    std::uint32_t logged = 0;
    std::uint64_t dropped = 0;
  };
  void summarise(const std::string& key, const Window& w);

  const std::string who_;
  const std::uint32_t burst_;
  const std::size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Window> windows_;
  std::uint64_t suppressed_ = 0;
};

}  // namespace hearth
