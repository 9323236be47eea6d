#include "nodes/partitioner.hpp"

namespace hearth {

unsigned shard_of_connection(std::string_view routing_id, unsigned shards) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a: routing ids are a few bytes
  for (unsigned char c : routing_id) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return shard_of_key(h, shards);
}

}  // namespace hearth
