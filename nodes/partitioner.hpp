// Manifold's partitioner: one fan-out frame's session ids split by owning
// shard, order within each shard kept as received.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "nodes/session_id.hpp"

namespace hearth {

// `packed` holds little-endian u64 session ids. Ids whose shard index is out of
// range are counted in *foreign and skipped. Returns false when `packed` is not
// a whole number of ids.
inline bool partition_sessions(std::string_view packed, unsigned shards,
                               std::vector<std::vector<std::uint64_t>>& out,
                               std::uint64_t* foreign) {
  if (packed.size() % sizeof(std::uint64_t) != 0) return false;
  out.resize(shards);
  for (auto& v : out) v.clear();
  const std::size_t n = packed.size() / sizeof(std::uint64_t);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t sid;
    std::memcpy(&sid, packed.data() + i * sizeof(sid), sizeof(sid));
    const unsigned shard = shard_of_session(sid);
    if (shard >= shards) {
      ++*foreign;
      continue;
    }
    out[shard].push_back(sid);
  }
  return true;
}

// Guilds and connections spread over shards by a hash of their key.
inline unsigned shard_of_key(std::uint64_t key, unsigned shards) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdULL;
  key ^= key >> 33;
  return static_cast<unsigned>(key % shards);
}

unsigned shard_of_connection(std::string_view routing_id, unsigned shards);

}  // namespace hearth
