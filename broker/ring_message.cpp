#include "broker/ring_message.hpp"

#include "common/internal.hpp"

namespace hearth {

std::shared_ptr<const Ring> RingUpdate::build_ring() const {
  RingSpec spec;
  spec.mode = mode;
  spec.pins = pins;
  for (const NodeView& n : nodes) {
    if (n.roles & internal::kGuildRole) spec.members.push_back({n.name, n.vnodes});
  }
  return std::make_shared<const Ring>(std::move(spec), version);
}

std::string encode_ring_update(const RingUpdate& update) {
  wire::HeaderWriter w(static_cast<std::uint32_t>(internal::Type::kRing), 4);
  w.u64(update.version).u64(update.mode == HashMode::kExHashRing ? 1 : 0);
  w.array(update.nodes.size());
  for (const NodeView& n : update.nodes) {
    w.array(4).str(n.name).u64(n.roles).u64(n.vnodes).u64(n.incarnation);
  }
  w.array(update.pins.size());
  for (const auto& [guild, name] : update.pins) w.array(2).u64(guild).str(name);
  return std::string(w.view());
}

RingUpdate decode_ring_update(wire::HeaderReader& r) {
  RingUpdate u;
  u.version = r.u64("version");
  u.mode = r.u64("mode") == 1 ? HashMode::kExHashRing : HashMode::kFast;
  std::size_t count = 0;
  const msgpack::object* nodes = r.array("nodes", 65535, &count);
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
    v.roles = static_cast<std::uint32_t>(r.u64_of(f[1], "roles"));
    v.vnodes = static_cast<std::uint32_t>(r.u64_of(f[2], "vnodes"));
    v.incarnation = r.u64_of(f[3], "incarnation");
    u.nodes.push_back(std::move(v));
  }
  const msgpack::object* pins = r.array("pins", 1 << 20, &count);
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
  return u;
}

}  // namespace hearth
