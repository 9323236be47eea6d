#include "broker/ring.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <stdexcept>

namespace hearth {
namespace {

constexpr unsigned kBucketBits = 16;
constexpr unsigned kBucketShift = 64 - kBucketBits;

// splitmix64's finalizer: a bijection with full avalanche, so sequential guild
// ids spread evenly over the ring.
std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

std::uint64_t md5_u64(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_md5(), nullptr) != 1 || len != 16) {
    throw std::runtime_error("md5 digest failed");
  }
  std::uint64_t v = 0;
  for (int i = 15; i >= 8; --i) v = (v << 8) | digest[i];
  return v;
}

Ring::Ring(RingSpec spec, std::uint64_t version) : spec_(std::move(spec)), version_(version) {
  if (spec_.members.size() > 0xffff)
    throw std::invalid_argument("a ring holds at most 65535 nodes");
  std::vector<std::pair<std::uint64_t, std::uint16_t>> points;
  for (std::size_t m = 0; m < spec_.members.size(); ++m) {
    const RingMember& member = spec_.members[m];
    if (member.vnodes == 0) throw std::invalid_argument("node '" + member.name + "' has weight 0");
    for (std::uint32_t i = 0; i < member.vnodes; ++i) {
      points.emplace_back(hash_string(member.name + std::to_string(i)),
                          static_cast<std::uint16_t>(m));
    }
  }
  std::sort(points.begin(), points.end());
  points_.reserve(points.size());
  owners_.reserve(points.size());
  for (auto& [point, owner] : points) {
    points_.push_back(point);
    owners_.push_back(owner);
  }
  buckets_.resize((std::size_t{1} << kBucketBits) + 1);
  std::size_t p = 0;
  for (std::size_t b = 0; b < (std::size_t{1} << kBucketBits); ++b) {
    const std::uint64_t start = static_cast<std::uint64_t>(b) << kBucketShift;
    while (p < points_.size() && points_[p] < start) ++p;
    buckets_[b] = static_cast<std::uint32_t>(p);
  }
  buckets_.back() = static_cast<std::uint32_t>(points_.size());
  for (auto& [guild, name] : spec_.pins) {
    int idx = index_of(name);
    if (idx != kNone) pinned_.emplace(guild, idx);
  }
}

int Ring::index_of(std::string_view name) const {
  for (std::size_t i = 0; i < spec_.members.size(); ++i) {
    if (spec_.members[i].name == name) return static_cast<int>(i);
  }
  return kNone;
}

std::uint64_t Ring::hash_key(std::uint64_t key) const {
  if (spec_.mode == HashMode::kFast) return mix64(key);
  char digits[24];
  int n = 0;
  do {
    digits[sizeof(digits) - 1 - n++] = static_cast<char>('0' + key % 10);
    key /= 10;
  } while (key != 0);
  return md5_u64(std::string_view(digits + sizeof(digits) - n, n));
}

std::uint64_t Ring::hash_string(std::string_view key) {
  return md5_u64(key);
}

std::size_t Ring::first_point_after(std::uint64_t hash) const {
  std::size_t i = buckets_[hash >> kBucketShift];
  const std::size_t end = points_.size();
  while (i < end && points_[i] <= hash) ++i;
  return i == end ? 0 : i;
}

int Ring::owner_of_hash(std::uint64_t hash) const {
  if (points_.empty()) return kNone;
  return owners_[first_point_after(hash)];
}

int Ring::find(std::uint64_t key) const {
  if (!pinned_.empty()) {
    auto it = pinned_.find(key);
    if (it != pinned_.end()) return it->second;
  }
  return owner_of_hash(hash_key(key));
}

int Ring::find_string(std::string_view key) const {
  return owner_of_hash(hash_string(key));
}

std::vector<int> Ring::walk(std::uint64_t hash, std::size_t n) const {
  std::vector<int> out;
  if (points_.empty()) return out;
  n = std::min(n, spec_.members.size());
  std::vector<bool> taken(spec_.members.size(), false);
  std::size_t i = first_point_after(hash);
  for (std::size_t steps = 0; steps < points_.size() && out.size() < n; ++steps) {
    int owner = owners_[i];
    if (!taken[owner]) {
      taken[owner] = true;
      out.push_back(owner);
    }
    if (++i == points_.size()) i = 0;
  }
  return out;
}

std::vector<int> Ring::find_n(std::uint64_t key, std::size_t n) const {
  std::vector<int> out = walk(hash_key(key), n);
  auto it = pinned_.find(key);
  if (it != pinned_.end() && n > 0) {
    out.erase(std::remove(out.begin(), out.end(), it->second), out.end());
    out.insert(out.begin(), it->second);
    if (out.size() > n) out.resize(n);
  }
  return out;
}

std::vector<int> Ring::find_n_string(std::string_view key, std::size_t n) const {
  return walk(hash_string(key), n);
}

}  // namespace hearth
