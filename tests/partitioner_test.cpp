#include "nodes/partitioner.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "nodes/session_id.hpp"
#include "nodes/session_table.hpp"

namespace hearth {
namespace {

std::string pack(const std::vector<std::uint64_t>& ids) {
  std::string out(ids.size() * 8, '\0');
  std::memcpy(out.data(), ids.data(), out.size());
  return out;
}

TEST(SessionId, CarriesItsShard) {
  for (unsigned shard = 0; shard < kMaxShards; ++shard) {
    EXPECT_EQ(shard_of_session(make_session_id(0xabcd, 7, 12345, shard)), shard);
  }
  EXPECT_NE(make_session_id(1, 1, 1, 0), make_session_id(2, 1, 1, 0));
  EXPECT_NE(make_session_id(1, 1, 1, 0), make_session_id(1, 2, 1, 0));
}

TEST(Partitioner, SplitsByShardKeepingOrder) {
  std::vector<std::uint64_t> ids;
  for (std::uint32_t i = 0; i < 1000; ++i) ids.push_back(make_session_id(7, 1, i, i % 3));
  std::vector<std::vector<std::uint64_t>> out;
  std::uint64_t foreign = 0;
  ASSERT_TRUE(partition_sessions(pack(ids), 3, out, &foreign));
  ASSERT_EQ(out.size(), 3u);
  std::size_t total = 0;
  for (unsigned s = 0; s < 3; ++s) {
    total += out[s].size();
    for (std::size_t i = 0; i < out[s].size(); ++i) {
      EXPECT_EQ(shard_of_session(out[s][i]), s);
      if (i > 0) {
        EXPECT_LT(out[s][i - 1], out[s][i]) << "order within a shard changed";
      }
    }
  }
  EXPECT_EQ(total, ids.size());
  EXPECT_EQ(foreign, 0u);
}

TEST(Partitioner, CountsIdsOfShardsThatDoNotExist) {
  std::vector<std::vector<std::uint64_t>> out;
  std::uint64_t foreign = 0;
  ASSERT_TRUE(partition_sessions(pack({make_session_id(1, 1, 1, 0), make_session_id(1, 1, 2, 9)}),
                                 2, out, &foreign));
  EXPECT_EQ(foreign, 1u);
  EXPECT_EQ(out[0].size(), 1u);
}

TEST(Partitioner, RejectsAPartialId) {
  std::vector<std::vector<std::uint64_t>> out;
  std::uint64_t foreign = 0;
  EXPECT_FALSE(partition_sessions(std::string(12, '\0'), 2, out, &foreign));
}

TEST(Partitioner, ReusesBucketsBetweenCalls) {
  std::vector<std::vector<std::uint64_t>> out;
  std::uint64_t foreign = 0;
  partition_sessions(pack({make_session_id(1, 1, 1, 0)}), 2, out, &foreign);
  partition_sessions(pack({make_session_id(1, 1, 2, 1)}), 2, out, &foreign);
  EXPECT_TRUE(out[0].empty());
  EXPECT_EQ(out[1].size(), 1u);
}

TEST(Partitioner, SpreadsKeysOverShards) {
  std::vector<int> hits(4, 0);
  for (std::uint64_t g = 0; g < 40000; ++g) ++hits[shard_of_key(g, 4)];
  for (int h : hits) EXPECT_NEAR(h, 10000, 800);
}

}  // namespace
}  // namespace hearth

namespace hearth {
namespace {

TEST(SessionTable, FindsLiveSessionsByIdOnly) {
  SessionTable table(0x1234, 3);
  // A reference is only good until the next create(): keep ids, not pointers.
  const std::uint64_t a_id = table.create()->id;
  const std::uint64_t b_id = table.create()->id;
  EXPECT_NE(a_id, b_id);
  EXPECT_EQ(shard_of_session(a_id), 3u);
  EXPECT_EQ(table.find(a_id)->id, a_id);
  EXPECT_EQ(table.size(), 2u);
  table.erase(a_id);
  EXPECT_EQ(table.find(a_id), nullptr);
  EXPECT_EQ(table.size(), 1u);
  // The slot is reused under a new generation: the old id stays dead.
  Session* c = table.create();
  EXPECT_EQ(slot_of_session(c->id), slot_of_session(a_id));
  EXPECT_NE(c->id, a_id);
  EXPECT_EQ(table.find(a_id), nullptr);
  EXPECT_NE(table.find(c->id), nullptr);
  EXPECT_NE(table.find(b_id), nullptr);
  EXPECT_EQ(table.find(make_session_id(0x1234, 1, 999, 3)), nullptr);  // beyond the array
}

TEST(SessionTable, ForEachVisitsLiveSessionsOnly) {
  SessionTable table(1, 0);
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(table.create()->id);
  for (int i = 0; i < 10; i += 2) table.erase(ids[i]);
  int seen = 0;
  table.for_each([&](Session& s) {
    ++seen;
    EXPECT_EQ(table.find(s.id), &s);
  });
  EXPECT_EQ(seen, 5);
}

}  // namespace
}  // namespace hearth
