#include "broker/ring_message.hpp"

#include "broker/internal_limits.hpp"
#include "common/internal.hpp"

namespace hearth {

namespace {

std::shared_ptr<const Ring> ring_of(const std::vector<NodeView>& nodes, HashMode mode,
                                    const std::unordered_map<std::uint64_t, std::string>& pins,
                                    std::uint64_t version) {
  RingSpec spec;
  spec.mode = mode;
  spec.pins = pins;
  for (const NodeView& n : nodes) {
    if ((n.roles & internal::kGuildRole) && !(n.roles & internal::kDraining)) {
      spec.members.push_back({n.name, n.vnodes});
    }
  }
  return std::make_shared<const Ring>(std::move(spec), version);
}

void encode_nodes(wire::HeaderWriter& w, const std::vector<NodeView>& nodes) {
  w.array(nodes.size());
  for (const NodeView& n : nodes) {
    w.array(4).str(n.name).u64(n.roles).u64(n.vnodes).u64(n.incarnation);
  }
}

// A u32 field of a nested entry; wider values are refused, never truncated
// (a weight of 2^32 must not become 0).
std::uint32_t u32_of(wire::HeaderReader& r, const msgpack::object& o, const char* field) {
  const std::uint64_t v = r.u64_of(o, field);
  if (v > 0xffffffffu) {
    r.fail(wire::Code::kMalformed, std::string("field '") + field + "' exceeds 32 bits");
    return 0;
  }
  return static_cast<std::uint32_t>(v);
}

void decode_nodes(wire::HeaderReader& r, const char* field, std::vector<NodeView>& out) {
  std::size_t count = 0;
  const msgpack::object* nodes = r.array(field, kMaxRingNodes, &count);
  for (std::size_t i = 0; nodes && i < count && r.ok(); ++i) {
    const msgpack::object& n = nodes[i];
    if (n.type != msgpack::type::ARRAY || n.via.array.size < 4 ||
        n.via.array.ptr[0].type != msgpack::type::STR) {
      r.fail(wire::Code::kMalformed, "ring node entry must be [name, roles, vnodes, incarnation]");
      break;
    }
    const msgpack::object* f = n.via.array.ptr;
    NodeView v;
    v.name.assign(f[0].via.str.ptr, f[0].via.str.size);
    v.roles = u32_of(r, f[1], "roles");
    v.vnodes = u32_of(r, f[2], "vnodes");
    v.incarnation = r.u64_of(f[3], "incarnation");
    out.push_back(std::move(v));
  }
}

}  // namespace

std::shared_ptr<const Ring> RingUpdate::build_ring() const {
  return ring_of(nodes, mode, pins, version);
}

std::shared_ptr<const Ring> RingUpdate::build_previous_ring() const {
  return ring_of(previous_nodes, mode, pins, previous_version);
}

std::string encode_ring_update(const RingUpdate& update) {
  wire::HeaderWriter w(static_cast<std::uint32_t>(internal::Type::kRing), 6);
  w.u64(update.version).u64(update.mode == HashMode::kExHashRing ? 1 : 0);
  encode_nodes(w, update.nodes);
  w.array(update.pins.size());
  for (const auto& [guild, name] : update.pins) w.array(2).u64(guild).str(name);
  w.u64(update.previous_version);
  encode_nodes(w, update.previous_nodes);
  return std::string(w.view());
}

RingUpdate decode_ring_update(wire::HeaderReader& r) {
  RingUpdate u;
  u.version = r.u64("version");
  const std::uint64_t mode = r.u64("mode");
  if (mode > 1) r.fail(wire::Code::kMalformed, "ring mode must be 0 (fast) or 1 (ex_hash_ring)");
  u.mode = mode == 1 ? HashMode::kExHashRing : HashMode::kFast;
  decode_nodes(r, "nodes", u.nodes);
  std::size_t count = 0;
  const msgpack::object* pins = r.array("pins", kMaxRingPins, &count);
  for (std::size_t i = 0; pins && i < count && r.ok(); ++i) {
    const msgpack::object& p = pins[i];
    if (p.type != msgpack::type::ARRAY || p.via.array.size < 2 ||
        p.via.array.ptr[1].type != msgpack::type::STR) {
      r.fail(wire::Code::kMalformed, "ring pin entry must be [guild, node]");
      break;
    }
    const msgpack::object* f = p.via.array.ptr;
    u.pins[r.u64_of(f[0], "guild")] = std::string(f[1].via.str.ptr, f[1].via.str.size);
  }
  if (r.has_more()) {
    u.previous_version = r.u64("previous_version");
    decode_nodes(r, "previous_nodes", u.previous_nodes);
  }
  return u;
}

}  // namespace hearth
