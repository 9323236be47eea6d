// Session ids carry the index of the shard that owns them, so the partitioner
// maps a session to its shard with a mask, not a lookup:
//   bits 63..40  node incarnation (random per node start)
//   bits 39..8   per-shard counter
//   bits  7..0   shard index
#pragma once

#include <cstdint>

namespace hearth {

inline constexpr unsigned kMaxShards = 256;

inline std::uint64_t make_session_id(std::uint32_t incarnation24, std::uint32_t counter,
                                     unsigned shard) {
  return (static_cast<std::uint64_t>(incarnation24 & 0xffffff) << 40) |
         (static_cast<std::uint64_t>(counter) << 8) | (shard & 0xff);
}

inline unsigned shard_of_session(std::uint64_t session_id) {
  return static_cast<unsigned>(session_id & 0xff);
}

}  // namespace hearth
