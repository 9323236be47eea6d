// Message types spoken only between Hearth processes (broker <-> nodes).
// They share the public header layout ([version, type, fields...]) but are not
// part of the client protocol and may change between Hearth releases; a
// cluster runs one Hearth version. Layouts are documented in docs/design.md.
#pragma once

#include <cstdint>

namespace hearth::internal {

enum class Type : std::uint32_t {
  kRegister = 64,  // node -> broker: [name, roles, vnodes, incarnation, shards]
  kRing =
      65,  // broker -> node: [version, mode, [[name, vnodes, roles, inc]...], [[guild, name]...]]
  kForwardPublish = 66,  // broker -> guild node: [guild, kind, ack_id, publisher] + payload
  kSubscribe = 67,       // session node -> guild node: [guild, session, user]
  kSubscribeReply = 68,  // guild node -> session node: [guild, session, code, guild_seq, epoch]
  kUnsubscribe = 69,     // session node -> guild node: [guild, session]
  kPluginPublish = 71,   // node -> broker: [guild, kind] + payload (a plugin's publish, no ack)
  kPluginDeliver = 72,   // guild node -> session node: [session, kind] + payload (send_to_member)
  kFanout = 70,  // guild node -> session node: [guild, guild_seq, kind, exclude_user, epoch] + sids
                 // + payload
  // Planned guild moves (docs/design.md, "Handoff"):
  kHandoff = 73,            // old owner -> new owner: [guild, epoch, guild_seq, ring_version,
                            //   [[node, [session...], [user...]]...]]
  kHandoffEnd = 74,         // old owner's shard -> each guild node: [ring_version, shard, shards]
  kHandoffCheck = 75,       // session node -> new owner: [guild, shard]
  kHandoffCheckReply = 76,  // new owner -> session node: [guild, shard, code, epoch, guild_seq]
  kDeregister = 77,         // node -> broker: [name, incarnation]; the node has left for good
};

// kDraining: the node is leaving. It stays a member (alive) but owns no
// guilds, so its guilds move away as planned moves.
enum Role : std::uint32_t { kGuildRole = 1, kSessionRole = 2, kDraining = 4 };

// First byte of a destination frame naming a publisher rather than a node.
inline constexpr char kPublisherPrefix = '@';

}  // namespace hearth::internal
