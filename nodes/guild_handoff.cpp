#include "nodes/guild_handoff.hpp"

#include "common/internal.hpp"

namespace hearth {
namespace {

// Members' node names are ring members; more groups than this is garbage.
constexpr std::size_t kMaxGroups = 65535;

}  // namespace

Frames encode_handoff(const Guild& g, std::uint64_t ring_version) {
  std::size_t groups = 0;
  g.for_each_group([&](const std::string&, const Guild::NodeGroup&) { ++groups; });
  wire::HeaderWriter w(static_cast<std::uint32_t>(internal::Type::kHandoff), 5);
  w.u64(g.id()).u64(g.epoch()).u64(g.seq()).u64(ring_version).array(groups);
  std::string members;
  members.reserve(g.member_count() * 2 * sizeof(std::uint64_t));
  g.for_each_group([&](const std::string& node, const Guild::NodeGroup& group) {
    w.array(2).str(node).u64(group.sessions.size());
    for (std::size_t i = 0; i < group.sessions.size(); ++i) {
      const std::uint64_t pair[2] = {group.sessions[i], group.users[i]};
      members.append(reinterpret_cast<const char*>(pair), sizeof(pair));
    }
  });
  Frames out;
  out.push_back(frame_of(w.view()));
  out.push_back(frame_of(members));
  return out;
}

DecodedHandoff decode_handoff(wire::HeaderReader& r, std::string_view members) {
  DecodedHandoff h;
  h.guild = r.u64("guild");
  h.epoch = r.u64("epoch");
  h.guild_seq = r.u64("guild_seq");
  h.ring_version = r.u64("ring_version");
  std::size_t count = 0;
  const msgpack::object* groups = r.array("groups", kMaxGroups, &count);
  std::uint64_t total = 0;
  for (std::size_t i = 0; groups && i < count && r.ok(); ++i) {
    const msgpack::object& g = groups[i];
    if (g.type != msgpack::type::ARRAY || g.via.array.size != 2 ||
        g.via.array.ptr[0].type != msgpack::type::STR || g.via.array.ptr[0].via.str.size == 0 ||
        g.via.array.ptr[0].via.str.size > 255) {
      r.fail(wire::Code::kMalformed, "handoff group must be [node, count]");
      break;
    }
    const std::uint64_t n = r.u64_of(g.via.array.ptr[1], "count");
    total += n;
    if (total > members.size()) {
      r.fail(wire::Code::kMalformed, "handoff member counts exceed the members frame");
      break;
    }
    h.groups.emplace_back(
        std::string(g.via.array.ptr[0].via.str.ptr, g.via.array.ptr[0].via.str.size), n);
  }
  if (r.ok() && total * 2 * sizeof(std::uint64_t) != members.size()) {
    r.fail(wire::Code::kMalformed, "handoff members frame does not match its counts");
  }
  h.members = members;
  return h;
}

}  // namespace hearth
