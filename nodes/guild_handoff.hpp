// The HANDOFF message of a planned guild move (docs/design.md, "Handoff"):
// the old owner sends the guild's epoch, sequence and members to the new
// owner, which continues the same sequence, so sessions see neither a gap nor
// a marker.
//
// Frames: [header, members]. The header is
//   [guild, epoch, guild_seq, ring_version, [[node, count]...]]
// and the members frame holds, group after group, `count` pairs of
// little-endian u64 (session, user). Members travel outside the header so a
// guild of any size fits (headers are capped at wire::kMaxHeaderBytes).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/frames.hpp"
#include "common/wire.hpp"
#include "nodes/guild.hpp"

namespace hearth {

// The two frames of g's HANDOFF, stamped with the ring that moved it.
Frames encode_handoff(const Guild& g, std::uint64_t ring_version);

struct DecodedHandoff {
  std::uint64_t guild = 0;
  std::uint64_t epoch = 0;
  std::uint64_t guild_seq = 0;
  std::uint64_t ring_version = 0;
  // Calls add(node, session, user) for every member; false if `members` does
  // not match the header's counts.
  template <class Add>
  bool for_each_member(Add&& add) const;

  std::vector<std::pair<std::string, std::uint64_t>> groups;  // node, member count
  std::string_view members;
};

// Reads the header fields after [version, type] and checks the members
// frame's size; errors are recorded in `r`.
DecodedHandoff decode_handoff(wire::HeaderReader& r, std::string_view members);

template <class Add>
bool DecodedHandoff::for_each_member(Add&& add) const {
  std::size_t offset = 0;
  for (const auto& [node, count] : groups) {
    for (std::uint64_t i = 0; i < count; ++i) {
      std::uint64_t pair[2];
      if (offset + sizeof(pair) > members.size()) return false;
      std::memcpy(pair, members.data() + offset, sizeof(pair));
      offset += sizeof(pair);
      add(node, pair[0], pair[1]);
    }
  }
  return offset == members.size();
}

}  // namespace hearth
