// Ring lookups: the FastGlobal figures (one lookup; 2.5M lookups for 500,000
// sessions x 5 guilds reconnecting at once).
#include <benchmark/benchmark.h>

#include <random>

#include "broker/ring_handle.hpp"

namespace hearth {
namespace {

std::shared_ptr<const Ring> ring_of(int nodes, std::uint32_t vnodes, HashMode mode) {
  RingSpec spec;
  spec.mode = mode;
  for (int i = 0; i < nodes; ++i) spec.members.push_back({"node-" + std::to_string(i), vnodes});
  return std::make_shared<const Ring>(spec, 1);
}

std::vector<std::uint64_t> random_keys(std::size_t n) {
  std::mt19937_64 rng(1);
  std::vector<std::uint64_t> keys(n);
  for (auto& k : keys) k = rng() >> 1;  // Discord-style snowflake ids are < 2^63
  return keys;
}

// One lookup (hash + search) through a thread's RingReader, 10 nodes x 512 vnodes.
void BM_RingLookup(benchmark::State& state) {
  const auto mode = static_cast<HashMode>(state.range(0));
  RingHandle handle;
  handle.publish(ring_of(10, 512, mode));
  RingReader reader(handle);
  const auto keys = random_keys(1 << 16);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(reader.get().find(keys[i++ & 0xffff]));
  }
  state.SetLabel(mode == HashMode::kFast ? "fast" : "ex_hash_ring (md5)");
}
BENCHMARK(BM_RingLookup)
    ->Arg(static_cast<int>(HashMode::kFast))
    ->Arg(static_cast<int>(HashMode::kExHashRing));

// 500,000 sessions x 5 guilds = 2.5M lookups, one thread.
void BM_RingLookups2_5M(benchmark::State& state) {
  RingHandle handle;
  handle.publish(ring_of(10, 512, HashMode::kFast));
  RingReader reader(handle);
  const auto keys = random_keys(2500000);
  for (auto _ : state) {
    int sum = 0;
    for (std::uint64_t k : keys) sum += reader.get().find(k);
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(keys.size()));
}
BENCHMARK(BM_RingLookups2_5M)->Unit(benchmark::kMillisecond);

// Building a ring (what a membership change costs each process).
void BM_RingBuild(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(ring_of(10, 512, HashMode::kFast));
}
BENCHMARK(BM_RingBuild)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace hearth
