// Validation of what nodes and the broker tell each other. Every internal
// message is checked as if an attacker wrote it (docs/security.md): a bad one
// is refused and counted, never allowed to crash a process or build a ring
// that costs more than these limits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "broker/ring_message.hpp"

namespace hearth {

// A node's weight (`--weight`, its virtual nodes on the ring).
inline constexpr std::uint32_t kMaxNodeWeight = 8192;
// Virtual nodes of all guild nodes of a ring together: bounds what building
// a ring costs every process (65,536 md5s, about 20 ms, 1.5 MB).
inline constexpr std::uint64_t kMaxRingVnodes = 65536;
// Nodes of all roles in one ring.
inline constexpr std::size_t kMaxRingNodes = 1024;
inline constexpr std::size_t kMaxNodeNameBytes = 255;
// Pins carried by one RING.
inline constexpr std::size_t kMaxRingPins = 100000;

// Each returns nullopt when the input is acceptable, else why it is not.

// 1..255 bytes, no control characters (bytes below 0x20 and 0x7f), not
// starting with '@' (which names publishers in a destination frame).
std::optional<std::string> invalid_node_name(std::string_view name);

// One node's entry: its name, roles (1, 2 or 3, plus kDraining) and weight.
std::optional<std::string> invalid_node_view(const NodeView& node);

// A whole RING: every node entry (of the ring and of the previous ring it
// carries), no duplicate names, the totals above, pins naming valid nodes,
// and a version newer than `last_version` (the last ring accepted; versions
// only grow) and than the previous ring's.
std::optional<std::string> invalid_ring_update(const RingUpdate& update,
                                               std::uint64_t last_version);

}  // namespace hearth
