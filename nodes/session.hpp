// Session-side state owned by one shard: client connections, the sessions
// multiplexed on them, and each session's link to the guilds it follows.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/frames.hpp"
#include "nodes/auth.hpp"
#include "nodes/event_batch.hpp"
#include "nodes/replay_buffer.hpp"

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
  std::uint32_t owner_id = 0;  // the shard's small number for `owner`: compared per event
  // During a planned move: the previous owner, whose events sequenced before
  // it handed the guild over are still delivered (0: no move under way).
  std::uint32_t moving_from_id = 0;
  std::uint64_t owner_incarnation = 0;
  std::uint64_t epoch = 0;  // of the last SUBSCRIBED(0): a move must keep it
  unsigned attempts = 0;
  Clock::time_point due{};
  std::uint64_t request_id = 0;   // the IDENTIFY or SUBSCRIBE that asked; 0 for a re-subscription
  bool confirmed_before = false;  // a SUBSCRIBED(0) was sent before: the next one says refetch
};

struct Connection;

struct Session {
  std::uint64_t id = 0;
  std::uint64_t user = 0;
  // The guilds its token grants; null: every guild.
  std::shared_ptr<const GuildGrant> grant;
  // Owned by the shard's connection map; nullptr while detached (the
  // connection went away and the session waits for a RESUME).
  Connection* connection = nullptr;
  std::uint64_t seq =
      0;  // seq of the last stream item (docs/protocol.md, "Sessions and their stream")
  std::array<unsigned char, 16> resume_token{};
  // While detached: the seq the client may have seen at most, and when the
  // grace period ends.
  std::uint64_t detached_at_seq = 0;
  Clock::time_point grace_ends{};
  ReplayBuffer replay;
  // A handful of guilds per session: a flat vector searched linearly beats a
  // hash map on the delivery path (one cache line instead of pointer chasing).
  std::vector<std::pair<std::uint64_t, GuildLink>> guilds;
  std::vector<void*> plugin_slots;  // one per loaded plugin
  // Per plugin, bytes sent with every SUBSCRIBE (set_subscription_data).
  std::vector<std::string> subscription_data;

  GuildLink* link(std::uint64_t guild) {
    for (auto& [guild_id, l] : guilds) {
      if (guild_id == guild) return &l;
    }
    return nullptr;
  }
};

struct Connection {
  std::string id;
  std::vector<std::uint64_t> sessions;
  Clock::time_point last_seen{};
  EventBatch batch;  // flushed by the shard's coalescing cadence
};

}  // namespace hearth
