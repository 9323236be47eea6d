#include "nodes/guild.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <map>

namespace hearth {
namespace {

std::map<std::string, std::vector<std::uint64_t>> groups(Guild& g) {
  std::map<std::string, std::vector<std::uint64_t>> out;
  g.for_each_node([&](const std::string& node, zmq::message_t& packed) {
    std::vector<std::uint64_t> ids(packed.size() / 8);
    std::memcpy(ids.data(), packed.data(), packed.size());
    std::sort(ids.begin(), ids.end());
    out[node] = ids;
  });
  return out;
}

TEST(Guild, GroupsMembersByNodeAndPacksEachOnce) {
  Guild g(1);
  EXPECT_TRUE(g.add("s1", 10));
  EXPECT_TRUE(g.add("s1", 11));
  EXPECT_TRUE(g.add("s2", 20));
  EXPECT_FALSE(g.add("s1", 10));
  EXPECT_EQ(g.member_count(), 3u);
  auto got = groups(g);
  EXPECT_EQ(got["s1"], (std::vector<std::uint64_t>{10, 11}));
  EXPECT_EQ(got["s2"], (std::vector<std::uint64_t>{20}));
}

TEST(Guild, RemovalRepacks) {
  Guild g(1);
  for (std::uint64_t s = 1; s <= 5; ++s) g.add("s1", s);
  groups(g);
  EXPECT_TRUE(g.remove("s1", 2));
  EXPECT_FALSE(g.remove("s1", 2));
  EXPECT_FALSE(g.remove("nowhere", 1));
  EXPECT_EQ(groups(g)["s1"], (std::vector<std::uint64_t>{1, 3, 4, 5}));
  EXPECT_EQ(g.member_count(), 4u);
}

TEST(Guild, DroppingANodeForgetsItsMembersOnly) {
  Guild g(1);
  g.add("s1", 1);
  g.add("s2", 2);
  g.drop_node("s1");
  EXPECT_EQ(g.member_count(), 1u);
  auto got = groups(g);
  EXPECT_EQ(got.count("s1"), 0u);
  EXPECT_EQ(got["s2"], (std::vector<std::uint64_t>{2}));
}

TEST(Guild, SequenceCountsUpFromOne) {
  Guild g(9);
  EXPECT_EQ(g.seq(), 0u);
  EXPECT_EQ(g.next_seq(), 1u);
  EXPECT_EQ(g.next_seq(), 2u);
}

}  // namespace
}  // namespace hearth
