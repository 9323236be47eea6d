// Message kinds of the push plugin (docs/push.md). Payloads are MessagePack.
#pragma once

#include <cstdint>

#include "shared/untrusted_msgpack.hpp"

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

using hearth::plugins::unpack_untrusted;

}  // namespace hearth::push
