// The ex_hash_ring compatibility mode against Discord's own placements
// (../shared/vectors/ex_hash_ring.csv), and the fast lookup against a plain
// reading of the same rule for rings the vectors do not cover.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "broker/ring.hpp"

namespace hearth {
namespace {

struct Row {
  std::string ring, key;
  std::uint64_t hash;
  std::string node;
  std::vector<std::string> nodes3;
};

std::vector<Row> load_vectors() {
  std::ifstream in(std::string(HEARTH_VECTORS_DIR) + "/ex_hash_ring.csv");
  EXPECT_TRUE(in) << "vectors not found at " << HEARTH_VECTORS_DIR;
  std::vector<Row> rows;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // the file has CRLF endings
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) f.push_back(cell);
    if (f.size() != 6) continue;
    Row r{f[0], f[2], std::stoull(f[3]), f[4], {}};
    std::stringstream nodes(f[5]);
    while (std::getline(nodes, cell, '|')) r.nodes3.push_back(cell);
    rows.push_back(std::move(r));
  }
  return rows;
}

Ring ring_named(const std::string& name) {
  RingSpec spec;
  spec.mode = HashMode::kExHashRing;
  if (name == "abc_x512") {
    for (auto n : {"a", "b", "c"}) spec.members.push_back({n, 512});
  } else if (name == "four_x32") {
    for (auto n : {"n1", "n2", "n3", "n4"}) spec.members.push_back({n, 32});
  } else {
    ADD_FAILURE() << "unknown ring " << name;
  }
  return Ring(spec, 1);
}

bool is_number(const std::string& s) {
  return !s.empty() && s.size() < 20 && s.find_first_not_of("0123456789") == std::string::npos;
}

TEST(RingVectors, EveryPlacementMatchesExHashRing) {
  const auto rows = load_vectors();
  ASSERT_GE(rows.size(), 400u);
  std::map<std::string, Ring> rings;
  for (const auto& r : rows) {
    if (!rings.count(r.ring)) rings.emplace(r.ring, ring_named(r.ring));
    const Ring& ring = rings.at(r.ring);
    EXPECT_EQ(Ring::hash_string(r.key), r.hash) << r.key;
    EXPECT_EQ(ring.node_name(ring.find_string(r.key)), r.node) << r.ring << " " << r.key;
    std::vector<std::string> got;
    for (int i : ring.find_n_string(r.key, 3)) got.push_back(ring.node_name(i));
    EXPECT_EQ(got, r.nodes3) << r.ring << " " << r.key;
    if (is_number(r.key)) {
      // An integer key hashes as its decimal digits: 1 and "1" collide.
      const std::uint64_t k = std::stoull(r.key);
      EXPECT_EQ(ring.hash_key(k), r.hash) << k;
      EXPECT_EQ(ring.node_name(ring.find(k)), r.node) << r.ring << " " << k;
      got.clear();
      for (int i : ring.find_n(k, 3)) got.push_back(ring.node_name(i));
      EXPECT_EQ(got, r.nodes3) << r.ring << " " << k;
    }
  }
}

// The rule of vectors/README.md read literally: every point, a linear scan.
std::string reference_owner(const RingSpec& spec, std::uint64_t key_hash) {
  std::vector<std::pair<std::uint64_t, std::string>> points;
  for (const auto& m : spec.members) {
    for (std::uint32_t i = 0; i < m.vnodes; ++i) {
      points.emplace_back(md5_u64(m.name + std::to_string(i)), m.name);
    }
  }
  std::sort(points.begin(), points.end());
  for (const auto& [p, name] : points) {
    if (p > key_hash) return name;
  }
  return points.front().second;
}

TEST(RingVectors, AnyRingBuiltByTheRuleAgreesWithTheReference) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 6; ++trial) {
    RingSpec spec;
    spec.mode = HashMode::kExHashRing;
    const int nodes = 1 + static_cast<int>(rng() % 7);
    for (int n = 0; n < nodes; ++n) {
      spec.members.push_back({"node-" + std::to_string(trial) + "-" + std::to_string(n),
                              static_cast<std::uint32_t>(1 + rng() % 300)});
    }
    Ring ring(spec, 1);
    for (int k = 0; k < 300; ++k) {
      const std::uint64_t key = rng() % 1000000;
      EXPECT_EQ(ring.node_name(ring.find(key)), reference_owner(spec, ring.hash_key(key)))
          << "trial " << trial << " key " << key;
    }
  }
}

}  // namespace
}  // namespace hearth
