// Wall-clock microseconds since the Unix epoch: the base of ring versions and
// guild epochs, which must keep growing across restarts of the process.
#pragma once

#include <chrono>
#include <cstdint>

namespace hearth {

inline std::uint64_t wall_micros() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace hearth
