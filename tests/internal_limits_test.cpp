// Internal messages are checked as if an attacker wrote them: a RING or a
// REGISTER that would crash a node or cost it too much is refused.
#include "broker/internal_limits.hpp"

#include <gtest/gtest.h>

#include "broker/membership.hpp"
#include "common/internal.hpp"

namespace hearth {
namespace {

NodeView node(const std::string& name, std::uint32_t vnodes = 512, std::uint32_t roles = 1,
              std::uint64_t incarnation = 1) {
  NodeView n;
  n.name = name;
  n.roles = roles;
  n.vnodes = vnodes;
  n.incarnation = incarnation;
  return n;
}

RingUpdate ring_of(std::vector<NodeView> nodes, std::uint64_t version = 10) {
  RingUpdate u;
  u.version = version;
  u.nodes = std::move(nodes);
  return u;
}

TEST(InternalLimits, AValidRingPasses) {
  EXPECT_EQ(invalid_ring_update(ring_of({node("a"), node("b", 512, 2)}), 9), std::nullopt);
}

TEST(InternalLimits, WeightZeroIsRefusedAndWouldHaveThrown) {
  const auto u = ring_of({node("a"), node("x", 0)});
  ASSERT_TRUE(invalid_ring_update(u, 0));
  EXPECT_NE(invalid_ring_update(u, 0)->find("weight 0"), std::string::npos);
  EXPECT_THROW(u.build_ring(), std::invalid_argument) << "what used to kill every node";
}

TEST(InternalLimits, TotalsNodeCountsNamesAndVersionsAreChecked) {
  EXPECT_TRUE(invalid_ring_update(ring_of({node("a", kMaxNodeWeight + 1)}), 0));
  std::vector<NodeView> heavy;
  for (int i = 0; i < 9; ++i) heavy.push_back(node("n" + std::to_string(i), kMaxNodeWeight));
  auto refused = invalid_ring_update(ring_of(heavy), 0);
  ASSERT_TRUE(refused) << "9 x 8192 = 73,728 virtual nodes";
  EXPECT_NE(refused->find("virtual nodes"), std::string::npos);
  heavy.pop_back();
  EXPECT_EQ(invalid_ring_update(ring_of(heavy), 0), std::nullopt) << "8 x 8192 = 65,536 is allowed";

  std::vector<NodeView> many;
  for (std::size_t i = 0; i <= kMaxRingNodes; ++i)
    many.push_back(node("s" + std::to_string(i), 1, 2));
  EXPECT_TRUE(invalid_ring_update(ring_of(many), 0));

  EXPECT_TRUE(invalid_ring_update(ring_of({node("a"), node("a", 512, 2)}), 0)) << "duplicate";
  EXPECT_TRUE(invalid_ring_update(ring_of({node("bad\nname")}), 0));
  EXPECT_TRUE(invalid_ring_update(ring_of({node("")}), 0));
  EXPECT_TRUE(invalid_ring_update(ring_of({node("@pub")}), 0));
  EXPECT_TRUE(invalid_ring_update(ring_of({node(std::string(256, 'n'))}), 0));
  EXPECT_TRUE(invalid_ring_update(ring_of({node("a", 512, 0)}), 0)) << "no role";
  EXPECT_TRUE(invalid_ring_update(ring_of({node("a", 512, 4)}), 0)) << "unknown role";
  EXPECT_TRUE(invalid_ring_update(ring_of({node("a")}, 10), 10)) << "not newer";
  EXPECT_TRUE(invalid_ring_update(ring_of({node("a")}, 5), 10)) << "older";
  auto previous = ring_of({node("a")});
  previous.previous_version = 9;
  previous.previous_nodes = {node("x", 0)};
  EXPECT_TRUE(invalid_ring_update(previous, 0)) << "the previous ring is built too";
  previous.previous_nodes = {node("x")};
  EXPECT_EQ(invalid_ring_update(previous, 0), std::nullopt);
  previous.previous_version = 10;
  EXPECT_TRUE(invalid_ring_update(previous, 0)) << "the previous ring is older";
  EXPECT_EQ(invalid_ring_update(ring_of({node("a", 512, 1 | internal::kDraining)}), 0),
            std::nullopt)
      << "a draining node";
  auto pinned = ring_of({node("a")});
  pinned.pins[7] = "bad\x1bname";
  EXPECT_TRUE(invalid_ring_update(pinned, 0));
}

TEST(InternalLimits, TheDecoderRefusesWeightsWiderThan32Bits) {
  // [2, 65, version, mode, [[name, roles, vnodes, incarnation]], []]: 2^32 + 5
  // would have been truncated to a valid-looking weight of 5.
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> p(b);
  p.pack_array(6);
  p.pack(2);
  p.pack(65);
  p.pack(1);
  p.pack(0);
  p.pack_array(1);
  p.pack_array(4);
  p.pack(std::string("a"));
  p.pack(1);
  p.pack(std::uint64_t{1} << 32 | 5);
  p.pack(1);
  p.pack_array(0);
  wire::HeaderReader r(b.data(), b.size());
  ASSERT_TRUE(r.ok());
  decode_ring_update(r);
  EXPECT_FALSE(r.ok());
}

TEST(InternalLimits, MembershipRefusesOverweightRingsAndLiveNames) {
  using std::chrono::milliseconds;
  Membership m(milliseconds(3000));
  const auto t = Membership::Clock::now();
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(m.refusal(node("n" + std::to_string(i), kMaxNodeWeight), t), std::nullopt);
    m.upsert(node("n" + std::to_string(i), kMaxNodeWeight), t);
  }
  EXPECT_TRUE(m.refusal(node("extra", 1), t)) << "the ring is full";
  EXPECT_EQ(m.refusal(node("session-only", 512, 2), t), std::nullopt) << "no virtual nodes";
  EXPECT_EQ(m.refusal(node("n0", kMaxNodeWeight), t), std::nullopt) << "its own heartbeat";
  // Another incarnation under a name that registered 100 ms ago is refused;
  // a restart (the old one silent for a third of the timeout) gets in.
  EXPECT_TRUE(m.refusal(node("n1", kMaxNodeWeight, 1, 2), t + milliseconds(100)));
  EXPECT_EQ(m.refusal(node("n1", kMaxNodeWeight, 1, 2), t + milliseconds(1000)), std::nullopt);
}

}  // namespace
}  // namespace hearth
