// The partitioner's share of a 30,000-session fan-out: split packed ids by shard.
#include <benchmark/benchmark.h>

#include <cstring>

#include "nodes/partitioner.hpp"

namespace hearth {
namespace {

void BM_Partition30k(benchmark::State& state) {
  const unsigned shards = static_cast<unsigned>(state.range(0));
  std::vector<std::uint64_t> ids;
  for (std::uint32_t i = 0; i < 30000; ++i) ids.push_back(make_session_id(7, 1, i, i % shards));
  std::string packed(ids.size() * 8, '\0');
  std::memcpy(packed.data(), ids.data(), packed.size());
  std::vector<std::vector<std::uint64_t>> out;
  std::uint64_t foreign = 0;
  for (auto _ : state) {
    partition_sessions(packed, shards, out, &foreign);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * 30000);
}
BENCHMARK(BM_Partition30k)->Arg(2)->Arg(8)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace hearth
