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
  Peer& p = entry(peer);
  if (p.attached.size() <= shard) p.attached.resize(shard + 1, 0);
  p.attached[shard] = count;
}

std::vector<unsigned> ConnectionTracker::occupied(const Peer& p) {
  std::vector<unsigned> out;
  for (unsigned i = 0; i < p.attached.size(); ++i) {
    if (p.attached[i] > 0) out.push_back(i);
  }
  return out;
}

std::uint64_t ConnectionTracker::attached(std::string_view peer) const {
  auto it = peers_.find(std::string(peer));
  if (it == peers_.end()) return 0;
  std::uint64_t total = 0;
  for (std::uint32_t n : it->second.attached) total += n;
  return total;
}

std::vector<unsigned> ConnectionTracker::shards_of(std::string_view peer, unsigned home) const {
  auto it = peers_.find(std::string(peer));
  std::vector<unsigned> out;
  if (it != peers_.end()) out = occupied(it->second);
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
    std::vector<unsigned> shards = occupied(it->second);
    if (!shards.empty()) out.emplace_back(it->first, std::move(shards));
    it = peers_.erase(it);
  }
  return out;
}

}  // namespace hearth
