// Who the broker believes is alive: REGISTER joins and heartbeats, any
// traffic keeps a node alive, silence past the timeout removes it.
#include "broker/membership.hpp"

#include <gtest/gtest.h>

namespace hearth {
namespace {

using Clock = Membership::Clock;
using std::chrono::milliseconds;

NodeView node(const std::string& name, std::uint64_t incarnation = 1) {
  NodeView n;
  n.name = name;
  n.roles = 1;
  n.vnodes = 512;
  n.incarnation = incarnation;
  return n;
}

TEST(Membership, ARegisterJoinsAndOnlyAChangeIsNews) {
  Membership m(milliseconds(1000));
  const auto t = Clock::now();
  EXPECT_TRUE(m.upsert(node("a"), t));
  EXPECT_FALSE(m.upsert(node("a"), t + milliseconds(100))) << "a heartbeat changes nothing";
  EXPECT_TRUE(m.upsert(node("a", 2), t + milliseconds(200))) << "a restart does";
}

TEST(Membership, SilencePastTheTimeoutRemovesANode) {
  Membership m(milliseconds(1000));
  const auto t = Clock::now();
  m.upsert(node("a"), t);
  m.upsert(node("b"), t);
  m.upsert(node("b"), t + milliseconds(900));
  EXPECT_TRUE(m.expire(t + milliseconds(1000)).empty());
  EXPECT_EQ(m.expire(t + milliseconds(1001)), std::vector<std::string>{"a"});
  EXPECT_FALSE(m.contains("a"));
  EXPECT_TRUE(m.contains("b"));
}

TEST(Membership, TrafficFromANodeKeepsItAliveButNeverJoinsIt) {
  Membership m(milliseconds(1000));
  const auto t = Clock::now();
  m.upsert(node("busy"), t);
  // Its REGISTERs wait behind its own fan-out traffic; the traffic arrives.
  m.heard_from("busy", t + milliseconds(800));
  m.heard_from("busy", t + milliseconds(1600));
  EXPECT_TRUE(m.expire(t + milliseconds(2500)).empty());
  m.heard_from("stranger", t);
  EXPECT_FALSE(m.contains("stranger"));
  EXPECT_EQ(m.expire(t + milliseconds(2601)), std::vector<std::string>{"busy"});
}

}  // namespace
}  // namespace hearth
