// The presence plugin's messages (docs/presence.md). Payloads are MessagePack.
#pragma once

#include <cstddef>
#include <cstdint>
#include <msgpack.hpp>

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

// Client and publisher bytes are untrusted: sizes and depth are bounded, so a
// crafted header (an array "of 4 billion") is refused before anything is
// allocated. Throws msgpack's exceptions (std::exception) on bad input.
inline msgpack::object_handle unpack_untrusted(const void* data, std::size_t size) {
  return msgpack::unpack(static_cast<const char*>(data), size, nullptr, nullptr,
                         msgpack::unpack_limit(/*array=*/100000, /*map=*/1000, /*str=*/1 << 20,
                                               /*bin=*/1 << 20, /*ext=*/1024, /*depth=*/8));
}

}  // namespace hearth::presence
