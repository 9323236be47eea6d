// Session ids name the shard that owns them and the slot that holds them, so
// the partitioner finds a session's shard with a mask and the shard finds the
// session with an array index, not a hash lookup:
//   bits 63..48  node incarnation (random per node start)
//   bits 47..32  slot generation (a reused slot never answers to an old id)
//   bits 31..8   slot index within the shard (16M sessions per shard)
//   bits  7..0   shard index
#pragma once

#include <cstdint>

namespace hearth {

inline constexpr unsigned kMaxShards = 256;
inline constexpr std::uint32_t kMaxSlots = 1u << 24;

inline std::uint64_t make_session_id(std::uint16_t incarnation, std::uint16_t generation,
                                     std::uint32_t slot, unsigned shard) {
  return (static_cast<std::uint64_t>(incarnation) << 48) |
         (static_cast<std::uint64_t>(generation) << 32) |
         (static_cast<std::uint64_t>(slot & (kMaxSlots - 1)) << 8) | (shard & 0xff);
}

inline unsigned shard_of_session(std::uint64_t session_id) {
  return static_cast<unsigned>(session_id & 0xff);
}

inline std::uint32_t slot_of_session(std::uint64_t session_id) {
  return static_cast<std::uint32_t>((session_id >> 8) & (kMaxSlots - 1));
}

}  // namespace hearth
