#include "nodes/connection_tracker.hpp"

namespace hearth {

ConnectionTracker::Peer& ConnectionTracker::entry(std::string_view peer) {
  auto it = peers_.find(std::string(peer));
  if (it == peers_.end()) {
    it = peers_.emplace(std::string(peer), Peer{}).first;
    it->second.last_seen = Clock::now();
  }
  return it->second;
}

void ConnectionTracker::set_attached(std::string_view peer, unsigned shard, std::uint32_t count) {
  if (shard >= shards_) return;
  Peer& p = entry(peer);
  if (p.attached.empty()) p.attached.assign(shards_, 0);
  p.attached[shard] = count;
}

std::uint64_t ConnectionTracker::attached(std::string_view peer) const {
  auto it = peers_.find(std::string(peer));
  if (it == peers_.end()) return 0;
  std::uint64_t total = 0;
  for (std::uint32_t n : it->second.attached) total += n;
  return total;
}

std::vector<unsigned> ConnectionTracker::shards_of(std::string_view peer, unsigned home) const {
  std::vector<unsigned> out;
  auto it = peers_.find(std::string(peer));
  if (it != peers_.end()) {
    for (unsigned i = 0; i < it->second.attached.size(); ++i) {
      if (it->second.attached[i] > 0) out.push_back(i);
    }
  }
  if (out.empty()) out.push_back(home);
  return out;
}

std::vector<std::pair<std::string, std::vector<unsigned>>> ConnectionTracker::expire(
    Clock::time_point cutoff) {
  std::vector<std::pair<std::string, std::vector<unsigned>>> out;
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (it->second.last_seen >= cutoff) {
      ++it;
      continue;
    }
    std::vector<unsigned> shards;
    for (unsigned i = 0; i < it->second.attached.size(); ++i) {
      if (it->second.attached[i] > 0) shards.push_back(i);
    }
    if (!shards.empty()) out.emplace_back(it->first, std::move(shards));
    it = peers_.erase(it);
  }
  return out;
}

}  // namespace hearth
