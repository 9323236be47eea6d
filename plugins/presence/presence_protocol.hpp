// The presence plugin's messages (docs/presence.md). Payloads are MessagePack.
#pragma once

#include <cstdint>

#include "shared/untrusted_msgpack.hpp"

namespace hearth::presence {

enum Status : std::uint8_t { kOffline = 0, kOnline = 1, kIdle = 2, kDnd = 3, kInvisible = 4 };

// Client -> plugin, PLUGIN_MESSAGE: [status, activity]
inline constexpr std::uint64_t kSetKind = 200;
// Guild event (EVENTS, in order with the guild's other events): [user, status, activity]
inline constexpr std::uint64_t kUpdateKind = 201;
// Plugin -> client, PLUGIN_MESSAGE on subscribe and on request:
// [guild, online_count, page, more, [[user, status, activity]...]]
inline constexpr std::uint64_t kSnapshotKind = 202;
// Between the plugin's session side and guild side (never reaches clients):
// [user, session, status, activity]
inline constexpr std::uint64_t kInternalKind = 203;
// Client -> plugin, PLUGIN_MESSAGE: [guild, page] asks for one page of the snapshot.
inline constexpr std::uint64_t kPageRequestKind = 204;
// Session side -> guild side: [session, page]
inline constexpr std::uint64_t kInternalPageKind = 205;
// Plugin -> client, PLUGIN_MESSAGE: [text], the answer to a malformed request.
inline constexpr std::uint64_t kErrorKind = 206;

using hearth::plugins::unpack_untrusted;

}  // namespace hearth::presence
