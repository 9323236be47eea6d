// Session-side state owned by one shard: client connections, the sessions
// multiplexed on them, and each session's link to the guilds it follows.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/frames.hpp"

namespace hearth {

using Clock = std::chrono::steady_clock;

struct GuildLink {
  enum class State {
    kWaiting,  // to (re)subscribe at `due`
    kPending,  // SUBSCRIBE sent to `owner`, holding a permit
    kActive,   // events from `owner` are delivered
    kFailed,   // refused for good; the client was told
  };
  State state = State::kWaiting;
  std::string owner;
  std::uint64_t owner_incarnation = 0;
  unsigned attempts = 0;
  Clock::time_point due{};
};

struct Session {
  std::uint64_t id = 0;
  std::uint64_t user = 0;
  std::string connection;  // routing id
  std::uint64_t seq = 0;   // last per-session sequence number delivered
  std::unordered_map<std::uint64_t, GuildLink> guilds;
};

// One event waiting in a connection's outbound batch.
struct PendingEvent {
  std::uint64_t session, seq, guild, kind, guild_seq;
  zmq::message_t payload;
};

struct Connection {
  std::string id;
  std::vector<std::uint64_t> sessions;
  Clock::time_point last_seen{};
  std::vector<PendingEvent> batch;  // flushed at the end of each shard cycle
};

}  // namespace hearth
