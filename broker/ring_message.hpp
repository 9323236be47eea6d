// The RING message: the broker's view of live nodes, from which every process
// builds the same Ring.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "broker/ring.hpp"
#include "common/wire.hpp"

namespace hearth {

struct NodeView {
  std::string name;
  std::uint32_t roles = 0;  // internal::Role bits
  std::uint32_t vnodes = 512;
  std::uint64_t incarnation = 0;
};

struct RingUpdate {
  std::uint64_t version = 0;
  HashMode mode = HashMode::kFast;
  std::vector<NodeView> nodes;  // every live node, all roles
  std::unordered_map<std::uint64_t, std::string> pins;
  // The ring before this one, so that a node that just joined knows who owned
  // the guilds it takes over (and waits for their HANDOFF).
  std::uint64_t previous_version = 0;
  std::vector<NodeView> previous_nodes;

  // The ring over the guild-role nodes that are not draining.
  std::shared_ptr<const Ring> build_ring() const;
  // The ring before this one (empty when there was none).
  std::shared_ptr<const Ring> build_previous_ring() const;
};

std::string encode_ring_update(const RingUpdate& update);
// Reads the fields after [version, type]; errors are recorded in `reader`.
RingUpdate decode_ring_update(wire::HeaderReader& reader);

}  // namespace hearth
