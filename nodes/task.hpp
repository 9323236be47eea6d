// Work the hub hands a shard. One struct for every kind keeps the queue simple;
// each kind uses the fields its comment names.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "broker/ring_message.hpp"
#include "common/frames.hpp"

namespace hearth {

struct Task {
  enum class Kind {
    kClient,             // peer = routing id; frames = [header, ...]
    kNodeMessage,        // peer = source node; frames = [header, ...] (SUBSCRIBE etc.)
    kPublish,            // guild, event_kind, ack_id, peer = publisher id; payload
    kDeliver,            // peer = source node; guild, guild_seq, event_kind, sessions; payload
    kRing,               // ring update
    kConnectionStalled,  // peer = routing id: close its sessions (SLOW_CONSUMER)
    kConnectionGone,     // peer = routing id: detach its sessions (they wait for RESUME)
    kShutdown,           // the node is stopping: close every session (SHUTTING_DOWN)
    kDrain,              // the node is leaving: RECONNECT every session, refuse new ones
  };

  Kind kind;
  std::string peer;
  std::string address;  // kClient IDENTIFY: the client's address (ZeroMQ Peer-Address), if known
  Frames frames;
  std::uint64_t guild = 0;
  std::uint64_t guild_seq = 0;
  std::uint64_t epoch = 0;  // kDeliver: the guild's epoch
  std::uint64_t event_kind = 0;
  std::uint64_t ack_id = 0;
  std::uint64_t exclude_user = 0;  // kPublish / kDeliver: that user's sessions skip it
  std::vector<std::uint64_t> sessions;
  zmq::message_t payload;
  std::shared_ptr<const RingUpdate> ring;
  std::shared_ptr<const Ring> built_ring;  // kRing: the same ring, built once by the hub
};

using TaskPtr = std::unique_ptr<Task>;

}  // namespace hearth
