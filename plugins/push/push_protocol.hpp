// Message kinds of the push plugin (docs/push.md). Payloads are MessagePack.
#pragma once

#include <cstddef>
#include <cstdint>
#include <msgpack.hpp>

namespace hearth::push {

// Client -> node PLUGIN_MESSAGE: [token]. Registers the device for the
// session's user, as a member of the session's guilds.
inline constexpr std::uint64_t kRegisterKind = 300;
// Client -> node PLUGIN_MESSAGE: [token]. Removes the device.
inline constexpr std::uint64_t kRemoveKind = 301;
// Node -> client PLUGIN_MESSAGE: [request_kind, ok, text]. Answers 300/301.
inline constexpr std::uint64_t kResultKind = 302;
// Publisher -> guild PUBLISH (default kind, option envelope_kind):
// [kind, payload, [user...], title, body]. Live sessions receive `payload` as
// an event of `kind`; the named users with no live session get a push.
inline constexpr std::uint64_t kDefaultEnvelopeKind = 310;

// Client and publisher bytes are untrusted: sizes and depth are bounded, so a
// crafted header (an array "of 4 billion") is refused before anything is
// allocated. Throws msgpack's exceptions (std::exception) on bad input.
inline msgpack::object_handle unpack_untrusted(const void* data, std::size_t size) {
  return msgpack::unpack(static_cast<const char*>(data), size, nullptr, nullptr,
                         msgpack::unpack_limit(/*array=*/100000, /*map=*/1000, /*str=*/1 << 20,
                                               /*bin=*/1 << 20, /*ext=*/1024, /*depth=*/8));
}

}  // namespace hearth::push
