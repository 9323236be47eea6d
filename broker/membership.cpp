#include "broker/membership.hpp"

namespace hearth {

bool Membership::upsert(const NodeView& node, Clock::time_point now) {
  last_seen_[node.name] = now;
  auto it = nodes_.find(node.name);
  if (it != nodes_.end() && it->second.roles == node.roles && it->second.vnodes == node.vnodes &&
      it->second.incarnation == node.incarnation) {
    return false;
  }
  nodes_[node.name] = node;
  return true;
}

void Membership::heard_from(std::string_view name, Clock::time_point now) {
  if (auto it = last_seen_.find(name); it != last_seen_.end()) it->second = now;
}

bool Membership::remove(const std::string& name, std::uint64_t incarnation) {
  auto it = nodes_.find(name);
  if (it == nodes_.end() || it->second.incarnation != incarnation) return false;
  nodes_.erase(it);
  last_seen_.erase(name);
  return true;
}

std::vector<std::string> Membership::expire(Clock::time_point now) {
  std::vector<std::string> gone;
  for (auto it = last_seen_.begin(); it != last_seen_.end();) {
    if (now - it->second > timeout_) {
      gone.push_back(it->first);
      nodes_.erase(it->first);
      it = last_seen_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

}  // namespace hearth
