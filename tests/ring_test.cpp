#include "broker/ring.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "broker/ring_handle.hpp"

namespace hearth {
namespace {

RingSpec spec_of(int nodes, std::uint32_t vnodes = 512, HashMode mode = HashMode::kFast) {
  RingSpec spec;
  spec.mode = mode;
  for (int i = 0; i < nodes; ++i) spec.members.push_back({"node-" + std::to_string(i), vnodes});
  return spec;
}

std::map<std::string, int> counts(const Ring& ring, std::uint64_t keys) {
  std::map<std::string, int> c;
  for (std::uint64_t k = 1; k <= keys; ++k) ++c[ring.node_name(ring.find(k))];
  return c;
}

TEST(Ring, EmptyRingHasNoOwner) {
  Ring ring(RingSpec{}, 1);
  EXPECT_EQ(ring.find(42), Ring::kNone);
  EXPECT_TRUE(ring.find_n(42, 3).empty());
}

TEST(Ring, BalancesAcrossNodes) {
  for (HashMode mode : {HashMode::kFast, HashMode::kExHashRing}) {
    Ring ring(spec_of(10, 512, mode), 1);
    const int keys = 100000;
    auto c = counts(ring, keys);
    ASSERT_EQ(c.size(), 10u);
    for (auto& [name, n] : c) {
      EXPECT_NEAR(n, keys / 10, keys / 10 * 0.15) << name;
    }
  }
}

TEST(Ring, JoinMovesAboutOneNthAndOnlyToTheNewNode) {
  Ring before(spec_of(9), 1);
  Ring after(spec_of(10), 2);
  const int keys = 100000;
  int moved = 0;
  for (std::uint64_t k = 1; k <= keys; ++k) {
    const std::string& a = before.node_name(before.find(k));
    const std::string& b = after.node_name(after.find(k));
    if (a != b) {
      ++moved;
      EXPECT_EQ(b, "node-9") << "key " << k << " moved between old nodes";
    }
  }
  EXPECT_NEAR(moved, keys / 10, keys / 10 * 0.2);
}

TEST(Ring, LeaveMovesOnlyTheLeaversKeys) {
  Ring before(spec_of(10), 1);
  RingSpec spec = spec_of(10);
  spec.members.erase(spec.members.begin() + 3);
  Ring after(spec, 2);
  int moved = 0;
  for (std::uint64_t k = 1; k <= 100000; ++k) {
    const std::string& a = before.node_name(before.find(k));
    const std::string& b = after.node_name(after.find(k));
    if (a != b) {
      ++moved;
      EXPECT_EQ(a, "node-3");
    }
  }
  EXPECT_NEAR(moved, 10000, 2000);
}

TEST(Ring, WeightScalesShare) {
  RingSpec spec = spec_of(3, 256);
  spec.members[0].vnodes = 512;
  Ring ring(spec, 1);
  auto c = counts(ring, 100000);
  EXPECT_NEAR(static_cast<double>(c["node-0"]) / c["node-1"], 2.0, 0.35);
}

TEST(Ring, PinsOverrideTheHash) {
  RingSpec spec = spec_of(4);
  spec.pins[777] = "node-2";
  spec.pins[778] = "absent-node";  // ignored while that node is not a member
  Ring ring(spec, 1);
  EXPECT_EQ(ring.node_name(ring.find(777)), "node-2");
  Ring unpinned(spec_of(4), 1);
  EXPECT_EQ(ring.find(778), unpinned.find(778));
  auto owners = ring.find_n(777, 3);
  ASSERT_EQ(owners.size(), 3u);
  EXPECT_EQ(ring.node_name(owners[0]), "node-2");
}

TEST(Ring, FindNReturnsDistinctNodesPrimaryFirst) {
  Ring ring(spec_of(5), 1);
  for (std::uint64_t k = 1; k < 2000; ++k) {
    auto owners = ring.find_n(k, 3);
    ASSERT_EQ(owners.size(), 3u);
    EXPECT_EQ(owners[0], ring.find(k));
    EXPECT_EQ(std::set<int>(owners.begin(), owners.end()).size(), 3u);
  }
  EXPECT_EQ(ring.find_n(1, 99).size(), 5u);  // never more than there are nodes
}

TEST(Ring, RejectsZeroWeight) {
  RingSpec spec = spec_of(2);
  spec.members[1].vnodes = 0;
  EXPECT_THROW(Ring(spec, 1), std::invalid_argument);
}

TEST(RingHandle, ReadersSeeWholeSnapshotsWhileWriterPublishes) {
  RingHandle handle;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> lookups{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      RingReader reader(handle);
      std::uint64_t last_version = 0;
      std::uint64_t k = 0;
      while (!done) {
        const Ring& ring = reader.get();
        // Versions only move forward, and a snapshot is internally whole:
        // version v was built with (v % 5) + 1 nodes.
        ASSERT_GE(ring.version(), last_version);
        last_version = ring.version();
        if (ring.version() > 0) {
          ASSERT_EQ(ring.node_count(), ring.version() % 5 + 1);
          ASSERT_NE(ring.find(++k), Ring::kNone);
        }
        ++lookups;
      }
    });
  }
  for (std::uint64_t v = 1; v <= 200; ++v) {
    handle.publish(std::make_shared<const Ring>(spec_of(static_cast<int>(v % 5 + 1), 64), v));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(lookups.load(), 1000u);
  EXPECT_EQ(handle.version(), 200u);
}

}  // namespace
}  // namespace hearth
