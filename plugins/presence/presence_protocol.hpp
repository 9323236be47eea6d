// The presence plugin's messages (docs/presence.md). Payloads are MessagePack.
#pragma once

#include <cstdint>

#include "shared/untrusted_msgpack.hpp"

namespace hearth::presence {

enum Status : std::uint8_t { kOffline = 0, kOnline = 1, kIdle = 2, kDnd = 3, kInvisible = 4 };

// Client -> plugin, PLUGIN_MESSAGE: [status 1..4, activity]
inline constexpr std::uint64_t kSetKind = 200;
// Guild event (EVENTS, in order with the guild's other events):
// [user, status, activity, version]
inline constexpr std::uint64_t kUpdateKind = 201;
// Plugin -> client, PLUGIN_MESSAGE on subscribe and on request:
// [guild, online_count, after, more, [[user, status, activity]...], version]
inline constexpr std::uint64_t kSnapshotKind = 202;
// Between the plugin's session side and guild side (never reaches clients):
// [user, session, status, activity, stamp]; session 0 only asks the guild to
// decide the user again. The stamp is the set time in wall-clock microseconds,
// strictly increasing per session node (directory.hpp).
inline constexpr std::uint64_t kInternalKind = 203;
// Client -> plugin, PLUGIN_MESSAGE: [guild, after] asks for the page of
// members whose user id is above `after`.
inline constexpr std::uint64_t kPageRequestKind = 204;
// Session side -> guild side (never reaches clients): [session, after]
inline constexpr std::uint64_t kInternalPageKind = 205;
// Plugin -> client, PLUGIN_MESSAGE: [text], the answer to a malformed request.
inline constexpr std::uint64_t kErrorKind = 206;
// Plugin -> client, PLUGIN_MESSAGE to the user's own sessions:
// [guild, status, activity], the user's own status (invisible included).
inline constexpr std::uint64_t kSelfKind = 207;
// To a directory guild (never reaches clients): sets, registrations
// (directory.hpp).
inline constexpr std::uint64_t kDirectoryKind = 208;
// Directory -> guild (never reaches clients): [user, status, activity, stamp].
inline constexpr std::uint64_t kApplyKind = 209;

inline constexpr std::size_t kMaxActivityBytes = 128;

using hearth::plugins::unpack_untrusted;

}  // namespace hearth::presence
