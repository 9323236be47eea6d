#include "nodes/guild.hpp"

#include <bit>
#include <cstring>

namespace hearth {

static_assert(std::endian::native == std::endian::little,
              "session id lists travel as little-endian u64; add byte swaps for this host");

bool Guild::add(const std::string& node, std::uint64_t session, std::uint64_t user) {
  NodeGroup& g = groups_[node];
  if (g.position.count(session)) return false;
  g.position.emplace(session, g.sessions.size());
  g.sessions.push_back(session);
  g.users.push_back(user);
  g.packed_valid = false;
  ++members_;
  return true;
}

bool Guild::remove(const std::string& node, std::uint64_t session) {
  auto it = groups_.find(node);
  if (it == groups_.end()) return false;
  NodeGroup& g = it->second;
  auto pos = g.position.find(session);
  if (pos == g.position.end()) return false;
  // Swap-remove keeps removal O(1); order among sessions does not matter.
  const std::size_t i = pos->second;
  g.sessions[i] = g.sessions.back();
  g.users[i] = g.users.back();
  g.position[g.sessions[i]] = i;
  g.sessions.pop_back();
  g.users.pop_back();
  g.position.erase(session);
  g.packed_valid = false;
  --members_;
  if (g.sessions.empty()) groups_.erase(it);
  return true;
}

std::uint64_t Guild::user_of(const std::string& node, std::uint64_t session) const {
  auto it = groups_.find(node);
  if (it == groups_.end()) return 0;
  auto pos = it->second.position.find(session);
  return pos == it->second.position.end() ? 0 : it->second.users[pos->second];
}

void Guild::drop_node(const std::string& node) {
  auto it = groups_.find(node);
  if (it == groups_.end()) return;
  members_ -= it->second.sessions.size();
  groups_.erase(it);
}

void Guild::pack(NodeGroup& group) {
  group.packed.rebuild(group.sessions.size() * sizeof(std::uint64_t));
  if (!group.sessions.empty()) {
    std::memcpy(group.packed.data(), group.sessions.data(), group.packed.size());
  }
  group.packed_valid = true;
}

}  // namespace hearth
