// The hub's view of client connections: when each was last heard from, and
// how many sessions each shard has attached to it. The hub answers HEARTBEAT
// from it (HEARTBEAT_ACK's `sessions`), detaches the sessions of a connection
// that went silent, and knows which shards to tell when a connection stalls
// or goes away. Hub thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hearth {

class ConnectionTracker {
 public:
  using Clock = std::chrono::steady_clock;

  // Any message from the connection.
  void heard_from(std::string_view peer, Clock::time_point now) { entry(peer).last_seen = now; }

  // A shard's count of sessions attached to `peer` (as the shard reported it).
  void set_attached(std::string_view peer, unsigned shard, std::uint32_t count);

  // Sessions attached to `peer` over all shards.
  std::uint64_t attached(std::string_view peer) const;

  // Shards that hold sessions of `peer`; `home` when none does.
  std::vector<unsigned> shards_of(std::string_view peer, unsigned home) const;

  // Removes connections silent since before `cutoff` and returns them with
  // the shards that held their sessions.
  std::vector<std::pair<std::string, std::vector<unsigned>>> expire(Clock::time_point cutoff);

  void forget(std::string_view peer) { peers_.erase(std::string(peer)); }
  std::size_t size() const { return peers_.size(); }

 private:
  struct Peer {
    Clock::time_point last_seen{};
    std::vector<std::uint32_t> attached;  // per shard index; grows as shards report
  };
  Peer& entry(std::string_view peer);
  static std::vector<unsigned> occupied(const Peer& p);

  std::unordered_map<std::string, Peer> peers_;
};

}  // namespace hearth
