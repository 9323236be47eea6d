// Live nodes as the broker knows them: registered, heartbeating, or expired.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/ring_message.hpp"

namespace hearth {

class Membership {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Membership(std::chrono::milliseconds timeout) : timeout_(timeout) {}

  // Why this REGISTER (already a valid NodeView, see internal_limits.hpp)
  // cannot join, or nullopt: the ring would exceed its node or virtual-node
  // limits, or it claims the name of a live node under another incarnation.
  // A node restarted under its old name gets in once the old incarnation has
  // not registered for a third of the timeout.
  std::optional<std::string> refusal(const NodeView& node, Clock::time_point now) const;

  // A REGISTER (which doubles as the heartbeat). True when the node is new or
  // changed anything the ring depends on (roles, weight, incarnation).
  bool upsert(const NodeView& node, Clock::time_point now);

  // Any other message from a registered node: it is alive. A REGISTER can
  // wait behind a node's own traffic in the same pipe, so traffic counts too.
  void heard_from(std::string_view name, Clock::time_point now);

  // A node that said it left (DEREGISTER). False unless it was this incarnation.
  bool remove(const std::string& name, std::uint64_t incarnation);

  // Removes nodes not heard from within the timeout; returns their names.
  std::vector<std::string> expire(Clock::time_point now);

  const std::map<std::string, NodeView>& nodes() const { return nodes_; }
  bool contains(const std::string& name) const { return nodes_.count(name) != 0; }
  bool is_member(std::string_view name) const { return last_seen_.find(name) != last_seen_.end(); }

 private:
  std::chrono::milliseconds timeout_;
  std::map<std::string, NodeView> nodes_;
  std::map<std::string, Clock::time_point, std::less<>> last_seen_;
  // The last REGISTER of each node's current incarnation.
  std::map<std::string, Clock::time_point, std::less<>> registered_at_;
};

}  // namespace hearth
