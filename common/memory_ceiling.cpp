#include "common/memory_ceiling.hpp"

#include <malloc.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace hearth {

std::uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

std::uint64_t default_memory_ceiling() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  std::uint64_t kib = 0;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemTotal:") return kib * 1024 / 10 * 8;
  }
  return 0;  // unknown: no ceiling
}

bool MemoryCeiling::check(Clock::time_point now) {
  if (limit_ == 0) return false;
  if (now >= next_read_) {
    rss_ = resident_bytes();
    if (rss_ > limit_ && now >= next_trim_) {
      // Freed memory the allocator keeps for reuse (say, after slow clients
      // went away) counts in RSS; give it back before refusing anything.
      malloc_trim(0);
      rss_ = resident_bytes();
      next_trim_ = now + kTrimInterval;
    }
    above_ = rss_ > limit_;
    next_read_ = now + kInterval;
  }
  return above_;
}

bool MemoryCeiling::refused(Clock::time_point now, std::uint64_t* since_last_log) {
  ++unlogged_;
  if (now < next_log_) return false;
  next_log_ = now + kLogInterval;
  *since_last_log = unlogged_;
  unlogged_ = 0;
  return true;
}

}  // namespace hearth
