// The demo's push traffic, for a node with the push plugin (docs/push.md):
// users who register a device and go offline, and mentions of them.
#pragma once

#include <cstdint>
#include <string>

namespace hearth::cli {

// Users `first_user` .. `first_user + count - 1`, user i a member of guild
// 1 + i % guilds, each register one device and leave. Returns how many the
// plugin accepted (0 when no push plugin answered).
unsigned register_offline_devices(const std::string& listen, std::uint64_t first_user,
                                  unsigned count, unsigned guilds);

// A PUSH_EVENT envelope: live sessions get `payload` as an event of `kind`;
// `user`, offline, gets a push.
std::string mention_envelope(std::uint64_t kind, const std::string& payload, std::uint64_t user);

}  // namespace hearth::cli
