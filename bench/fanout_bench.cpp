// One event to a 30,000-session guild inside one node: from publish to the
// last session queue (the shards' delivery counter), and on to the last client
// receiving it. Broker and node run in this process, as in `hearth all-in-one`;
// 30,000 sessions are multiplexed over 100 local connections.
//
//   build/bench/hearth_fanout_bench [sessions] [connections] [iterations] [plugin.so...]
// Plugins named after the iterations are loaded into the node (hook cost).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <variant>

#include "bench/in_process_cluster.hpp"
#include "hearth/client.hpp"

using namespace hearth;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

void report(const char* what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::printf("%-34s min %.3f  p50 %.3f  p90 %.3f  max %.3f ms\n", what, v.front(), v[v.size() / 2],
              v[v.size() * 9 / 10], v.back());
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned sessions = argc > 1 ? std::atoi(argv[1]) : 30000;
  const unsigned connections = argc > 2 ? std::atoi(argv[2]) : 100;
  const unsigned iterations = argc > 3 ? std::atoi(argv[3]) : 30;
  spdlog::set_level(spdlog::level::warn);

  const std::string frontend = "tcp://127.0.0.1:17400", listen = "tcp://127.0.0.1:17500";
  NodeConfig nc;
  nc.shards = 2;
  for (int i = 4; i < argc; ++i) {
    nc.plugins.push_back({"plugin" + std::to_string(i), argv[i], true, {}});
  }
  bench::InProcessCluster cluster(frontend, listen, nc);
  const Node& node = cluster.node();

  std::vector<std::unique_ptr<client::SessionClient>> clients;
  for (unsigned c = 0; c < connections; ++c) {
    clients.push_back(std::make_unique<client::SessionClient>(listen));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t_identify = Clock::now();
  for (unsigned s = 0; s < sessions; ++s) clients[s % connections]->identify(s, s, "t", {1});
  std::vector<client::Message> msgs;
  unsigned subscribed = 0;
  while (subscribed < sessions) {
    for (auto& c : clients) {
      msgs.clear();
      c->poll(msgs, std::chrono::milliseconds(0));
      for (auto& m : msgs) subscribed += std::holds_alternative<client::Subscribed>(m);
    }
  }
  std::printf(
      "sessions %u on %u connections, 2 shards; identify+subscribe all: %.0f ms "
      "(subscribe retries %llu under the fail-fast semaphore)\n",
      sessions, connections, ms_since(t_identify),
      static_cast<unsigned long long>(node.stats().subscribe_retries.load()));

  client::Publisher pub(frontend);
  std::string payload(100, 'x');
  std::vector<double> to_queue, to_client;
  for (unsigned i = 0; i < iterations + 3; ++i) {
    const std::uint64_t before = node.stats().deliveries.load();
    const auto t0 = Clock::now();
    pub.publish(1, 1, payload);
    // Sleep-poll (about 60 us granularity): spinning would take one of the
    // two cores from the shards being measured.
    while (node.stats().deliveries.load() < before + sessions) {
      std::this_thread::sleep_for(std::chrono::microseconds(10));
    }
    const double queued = ms_since(t0);
    unsigned received = 0;
    while (received < sessions) {
      std::this_thread::yield();
      for (auto& c : clients) {
        msgs.clear();
        c->poll(msgs, std::chrono::milliseconds(0));
        for (auto& m : msgs) received += std::holds_alternative<client::Event>(m);
      }
    }
    const double delivered = ms_since(t0);
    if (i >= 3) {  // the first rounds warm caches and allocators
      to_queue.push_back(queued);
      to_client.push_back(delivered);
    }
  }
  report("publish -> last session queue", to_queue);
  report("publish -> last client received", to_client);
  return 0;
}
