// libFuzzer target: the internal-message decoders and validators a node or
// the broker runs on what arrives from the backend (RING, REGISTER,
// SUBSCRIBE, FANOUT and its packed session ids). Whatever the bytes, a ring
// that passes validation must build, and nothing may crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "broker/internal_limits.hpp"
#include "broker/membership.hpp"
#include "broker/ring_message.hpp"
#include "common/internal.hpp"
#include "common/wire.hpp"
#include "nodes/partitioner.hpp"

namespace {

using hearth::internal::Type;

void on_header(std::string_view header, std::string_view packed_ids) {
  hearth::wire::HeaderReader r(header.data(), header.size());
  if (!r.ok()) return;
  switch (static_cast<Type>(r.type())) {
    case Type::kRing: {
      const hearth::RingUpdate u = hearth::decode_ring_update(r);
      if (!r.ok()) return;
      if (!hearth::invalid_ring_update(u, 0)) {
        auto ring = u.build_ring();  // must not throw once validated
        ring->find(12345);
        ring->find_n(678, 3);
      }
      return;
    }
    case Type::kRegister: {
      hearth::NodeView node;
      node.name = std::string(r.str("name", hearth::kMaxNodeNameBytes));
      node.roles = static_cast<std::uint32_t>(std::min<std::uint64_t>(r.u64("roles"), 0xff));
      node.vnodes = static_cast<std::uint32_t>(
          std::min<std::uint64_t>(r.u64("vnodes"), std::uint64_t{hearth::kMaxNodeWeight} + 1));
      node.incarnation = r.u64("incarnation");
      if (!r.ok() || hearth::invalid_node_view(node)) return;
      static hearth::Membership membership(std::chrono::milliseconds(3000));
      const auto now = hearth::Membership::Clock::now();
      if (!membership.refusal(node, now)) membership.upsert(node, now);
      if (membership.nodes().size() > 64) membership.expire(now + std::chrono::hours(1));
      return;
    }
    case Type::kSubscribe: {
      r.u64("guild");
      r.u64("session");
      r.u64("user");
      if (r.has_more()) {
        std::size_t n = 0;
        const msgpack::object* items = r.array("subscription_data", 256, &n);
        for (std::size_t i = 0; items && i < n; ++i) {
          if (items[i].type != msgpack::type::BIN) break;
        }
      }
      return;
    }
    case Type::kSubscribeReply:
      r.u64("guild");
      r.u64("session");
      r.u64("code");
      r.u64("guild_seq");
      r.u64("epoch");
      if (r.has_more()) r.str("reason");
      return;
    case Type::kFanout: {
      r.u64("guild");
      r.u64("guild_seq");
      r.u64("kind");
      if (r.has_more()) r.u64("exclude_user");
      if (r.has_more()) r.u64("epoch");
      std::vector<std::vector<std::uint64_t>> partition;
      std::uint64_t foreign = 0;
      hearth::partition_sessions(packed_ids, 4, partition, &foreign);
      return;
    }
    default:
      r.u64("a");
      r.u64("b");
      return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t sep = in.find("\xff\xfe");
  on_header(in.substr(0, sep), sep == std::string_view::npos ? "" : in.substr(sep + 2));
  return 0;
}
