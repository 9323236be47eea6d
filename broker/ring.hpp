// Consistent-hash ring mapping keys (guild ids) to the nodes that own them.
//
// A Ring is immutable once built: any number of threads may read one at once.
// New membership means a new Ring, published through RingHandle (ring_handle.hpp).
//
// Placement rule (shared with Discord's ex_hash_ring 7.0.0, see
// ../shared/vectors/README.md): virtual node i of node N sits at
// md5(N + decimal(i)) bytes 8..15 read as a little-endian u64; a key belongs to
// the first virtual node whose point is strictly greater than the key's hash,
// wrapping around. Modes differ only in how an integer key is hashed:
//   kExHashRing: md5 of the key's decimal digits, exactly as ex_hash_ring does;
//   kFast:       a 64-bit integer mixer (about 1 ns instead of about 250 ns).
// String keys are hashed with md5 in both modes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hearth {

enum class HashMode { kFast, kExHashRing };

struct RingMember {
  std::string name;
  std::uint32_t vnodes = 512;  // the node's weight
};

struct RingSpec {
  HashMode mode = HashMode::kFast;
  std::vector<RingMember> members;
  // Guild id -> node name: the guild lives on that node while it is a member.
  std::unordered_map<std::uint64_t, std::string> pins;
};

class Ring {
 public:
  static constexpr int kNone = -1;

  Ring(RingSpec spec, std::uint64_t version);

  std::uint64_t version() const { return version_; }
  HashMode mode() const { return spec_.mode; }
  bool empty() const { return points_.empty(); }
  std::size_t node_count() const { return spec_.members.size(); }
  const std::string& node_name(int index) const { return spec_.members[index].name; }
  const RingSpec& spec() const { return spec_; }
  // Index of the member with this name, or kNone.
  int index_of(std::string_view name) const;

  std::uint64_t hash_key(std::uint64_t key) const;
  static std::uint64_t hash_string(std::string_view key);

  // Owner of a key: a member index, or kNone when the ring is empty.
  int find(std::uint64_t key) const;
  int find_string(std::string_view key) const;
  // Up to n distinct owners, primary first, walking clockwise from the key.
  std::vector<int> find_n(std::uint64_t key, std::size_t n) const;
  std::vector<int> find_n_string(std::string_view key, std::size_t n) const;

 private:
  int owner_of_hash(std::uint64_t hash) const;
  std::size_t first_point_after(std::uint64_t hash) const;
  std::vector<int> walk(std::uint64_t hash, std::size_t n) const;

  RingSpec spec_;
  std::uint64_t version_;
  std::vector<std::uint64_t> points_;   // sorted virtual-node points
  std::vector<std::uint16_t> owners_;   // member index of each point
  std::vector<std::uint32_t> buckets_;  // first point index >= (bucket << shift)
  std::unordered_map<std::uint64_t, int> pinned_;
};

// md5(bytes) bytes 8..15 as a little-endian u64 (ex_hash_ring's key hash).
std::uint64_t md5_u64(std::string_view bytes);

}  // namespace hearth
