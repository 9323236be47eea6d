// The process-wide memory ceiling (--max-memory): the resident set size, read
// from /proc/self/statm at a low rate, against a limit. Above it a process
// refuses new work (OVERLOADED) so that the machine does not start swapping.
#pragma once

#include <chrono>
#include <cstdint>

namespace hearth {

// Resident set size of this process in bytes (0 if /proc cannot be read).
std::uint64_t resident_bytes();

// 80% of the machine's memory (MemTotal in /proc/meminfo), the default ceiling.
std::uint64_t default_memory_ceiling();

class MemoryCeiling {
 public:
  using Clock = std::chrono::steady_clock;
  // How often check() reads /proc/self/statm: a read costs microseconds, and
  // RSS cannot grow past a ceiling by much in this time at realistic rates.
  static constexpr std::chrono::milliseconds kInterval{100};
  static constexpr std::chrono::seconds kLogInterval{10};
  static constexpr std::chrono::seconds kTrimInterval{1};

  explicit MemoryCeiling(std::uint64_t limit_bytes) : limit_(limit_bytes) {}

  // Reads RSS again when kInterval has passed; true while above the limit.
  bool check(Clock::time_point now);
  bool above() const { return above_; }
  std::uint64_t rss() const { return rss_; }
  std::uint64_t limit() const { return limit_; }

  // Counts one refusal; true (with the refusals since the last log line) when
  // it is time to log again, so a flood writes one line per kLogInterval.
  bool refused(Clock::time_point now, std::uint64_t* since_last_log);

 private:
  std::uint64_t limit_;
  std::uint64_t rss_ = 0;
  bool above_ = false;
  Clock::time_point next_read_{};
  Clock::time_point next_log_{};
  Clock::time_point next_trim_{};
  std::uint64_t unlogged_ = 0;
};

}  // namespace hearth
