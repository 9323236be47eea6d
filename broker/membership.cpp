#include "broker/membership.hpp"

#include "broker/internal_limits.hpp"
#include "common/internal.hpp"
#include "common/log_text.hpp"

namespace hearth {

std::optional<std::string> Membership::refusal(const NodeView& node, Clock::time_point now) const {
  auto it = nodes_.find(node.name);
  if (it == nodes_.end() && nodes_.size() >= kMaxRingNodes) {
    return "the ring holds its maximum of " + std::to_string(kMaxRingNodes) + " nodes";
  }
  if (it != nodes_.end() && it->second.incarnation != node.incarnation) {
    auto last = registered_at_.find(node.name);
    if (last != registered_at_.end() && now - last->second < timeout_ / 3) {
      return "name '" + printable(node.name) + "' belongs to a live node (another incarnation " +
             "registered " +
             std::to_string(
                 std::chrono::duration_cast<std::chrono::milliseconds>(now - last->second)
                     .count()) +
             " ms ago)";
    }
  }
  std::uint64_t vnodes = node.roles & internal::kGuildRole ? node.vnodes : 0;
  for (const auto& [name, view] : nodes_) {
    if (name != node.name && (view.roles & internal::kGuildRole)) vnodes += view.vnodes;
  }
  if (vnodes > kMaxRingVnodes) {
    return "the ring would hold " + std::to_string(vnodes) + " virtual nodes; the limit is " +
           std::to_string(kMaxRingVnodes);
  }
  return std::nullopt;
}

bool Membership::upsert(const NodeView& node, Clock::time_point now) {
  last_seen_[node.name] = now;
  registered_at_[node.name] = now;
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
      registered_at_.erase(it->first);
      it = last_seen_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

}  // namespace hearth
