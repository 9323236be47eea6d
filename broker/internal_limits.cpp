#include "broker/internal_limits.hpp"

#include <unordered_set>

#include "common/internal.hpp"
#include "common/log_text.hpp"

namespace hearth {

std::optional<std::string> invalid_node_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNodeNameBytes) {
    return "node name must be 1.." + std::to_string(kMaxNodeNameBytes) + " bytes; got " +
           std::to_string(name.size());
  }
  if (name[0] == internal::kPublisherPrefix)
    return std::string("node name must not start with '@'");
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return "node name '" + printable(name) + "' has a control character";
  }
  return std::nullopt;
}

std::optional<std::string> invalid_node_view(const NodeView& node) {
  if (auto bad = invalid_node_name(node.name)) return bad;
  const std::uint32_t serving = internal::kGuildRole | internal::kSessionRole;
  if ((node.roles & serving) == 0 || (node.roles & ~(serving | internal::kDraining)) != 0) {
    return "node '" + printable(node.name) + "' has roles " + std::to_string(node.roles) +
           "; expected 1 (guild), 2 (session) or 3 (both), plus 4 while draining";
  }
  if (node.vnodes == 0 || node.vnodes > kMaxNodeWeight) {
    return "node '" + printable(node.name) + "' has weight " + std::to_string(node.vnodes) +
           "; the weight must be in 1.." + std::to_string(kMaxNodeWeight);
  }
  return std::nullopt;
}

namespace {

// The checks of one list of nodes (a ring's, or the previous ring's).
std::optional<std::string> invalid_nodes(const std::vector<NodeView>& nodes) {
  if (nodes.size() > kMaxRingNodes) {
    return "ring lists " + std::to_string(nodes.size()) + " nodes; the limit is " +
           std::to_string(kMaxRingNodes);
  }
  std::unordered_set<std::string_view> names;
  std::uint64_t vnodes = 0;
  for (const NodeView& node : nodes) {
    if (auto bad = invalid_node_view(node)) return bad;
    if (!names.insert(node.name).second) {
      return "ring lists node '" + printable(node.name) + "' twice";
    }
    if (node.roles & internal::kGuildRole) vnodes += node.vnodes;
  }
  if (vnodes > kMaxRingVnodes) {
    return "ring holds " + std::to_string(vnodes) + " virtual nodes; the limit is " +
           std::to_string(kMaxRingVnodes);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> invalid_ring_update(const RingUpdate& update,
                                               std::uint64_t last_version) {
  if (update.version <= last_version) {
    return "ring version " + std::to_string(update.version) + " is not newer than " +
           std::to_string(last_version);
  }
  if (auto bad = invalid_nodes(update.nodes)) return bad;
  if (update.previous_version >= update.version) {
    return "previous ring version " + std::to_string(update.previous_version) +
           " is not older than " + std::to_string(update.version);
  }
  if (auto bad = invalid_nodes(update.previous_nodes)) return "previous ring: " + *bad;
  if (update.pins.size() > kMaxRingPins) {
    return "ring carries " + std::to_string(update.pins.size()) + " pins; the limit is " +
           std::to_string(kMaxRingPins);
  }
  for (const auto& [guild, name] : update.pins) {
    if (auto bad = invalid_node_name(name)) {
      return "pin of guild " + std::to_string(guild) + ": " + *bad;
    }
  }
  return std::nullopt;
}

}  // namespace hearth
