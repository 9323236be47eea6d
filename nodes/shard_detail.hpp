// Helpers shared by the files that implement Shard; not part of any API.
#pragma once

#include <chrono>
#include <cstdint>

#include "common/internal.hpp"
#include "hearth/protocol.hpp"
#include "nodes/session.hpp"

namespace hearth::shard_detail {

using protocol::Code;
using protocol::Type;
using State = GuildLink::State;

inline constexpr auto kGuildIdle = std::chrono::seconds(60);
inline constexpr auto kSweepEvery = std::chrono::milliseconds(250);

inline std::uint32_t u32(internal::Type t) {
  return static_cast<std::uint32_t>(t);
}

// Refusals a retry cannot fix: the client is told and the link stops.
inline bool is_final(Code code) {
  return code == Code::kLimit || code == Code::kRejected;
}

}  // namespace hearth::shard_detail
